//! The waitlist's rules, pure: what an entry asks for, which entry a freed place goes to
//! (urgent first, then oldest), when a place may still be offered (not within the cutoff of
//! its start) and when an offer's hold ends. The worker reads the rows and asks these.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{FieldError, hours, localtime};

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    Waiting,
    /// Holds an open offer.
    Offered,
    Claimed,
    Left,
    /// Its window or session passed before it got a place.
    Expired,
}

impl EntryStatus {
    pub const ALL: [EntryStatus; 5] = [
        EntryStatus::Waiting,
        EntryStatus::Offered,
        EntryStatus::Claimed,
        EntryStatus::Left,
        EntryStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Waiting => "waiting",
            EntryStatus::Offered => "offered",
            EntryStatus::Claimed => "claimed",
            EntryStatus::Left => "left",
            EntryStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<EntryStatus> {
        EntryStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the entry still waits for (or holds) a place.
    pub fn is_active(self) -> bool {
        matches!(self, EntryStatus::Waiting | EntryStatus::Offered)
    }
}

/// Where an offer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferStatus {
    Open,
    Claimed,
    Declined,
    Expired,
    /// Taken back by the clinic (the time was closed, the entry left or was erased).
    Withdrawn,
}

impl OfferStatus {
    pub const ALL: [OfferStatus; 5] = [
        OfferStatus::Open,
        OfferStatus::Claimed,
        OfferStatus::Declined,
        OfferStatus::Expired,
        OfferStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Open => "open",
            OfferStatus::Claimed => "claimed",
            OfferStatus::Declined => "declined",
            OfferStatus::Expired => "expired",
            OfferStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<OfferStatus> {
        OfferStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a one-to-one entry waits for: a slot of a service, maybe with one practitioner, on a
/// local date in [from, to], starting (local time) within [earliest, latest] when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotWish {
    pub service_id: Uuid,
    pub practitioner_id: Option<Uuid>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Minutes after local midnight.
    pub earliest: Option<u32>,
    pub latest: Option<u32>,
}

/// The longest span of dates one entry may wait for.
pub const MAX_WAIT_DAYS: i64 = 366;

impl SlotWish {
    /// Parses the dates and the time-of-day window of a join request, collecting errors.
    /// `today` is the clinic's local date: a window that has already passed is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        service_id: Uuid,
        practitioner_id: Option<Uuid>,
        from: &str,
        to: &str,
        earliest: Option<&str>,
        latest: Option<&str>,
        today: NaiveDate,
        errors: &mut Vec<FieldError>,
    ) -> Option<SlotWish> {
        let date = |field: &str, raw: &str, errors: &mut Vec<FieldError>| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| FieldError::new(field, "must be a date, YYYY-MM-DD"))
                .and_then(|d| localtime::check_date(field, d))
                .map_err(|e| errors.push(e))
                .ok()
        };
        let clock = |field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>| match raw {
            None => Some(None),
            Some(raw) => match hours::parse_clock(raw.trim()) {
                Some(m) => Some(Some(m)),
                None => {
                    errors.push(FieldError::new(field, "must be a time, HH:MM"));
                    None
                }
            },
        };
        let from = date("from", from, errors);
        let to = date("to", to, errors);
        let earliest = clock("earliest", earliest, errors);
        let latest = clock("latest", latest, errors);
        let (from, to, earliest, latest) = (from?, to?, earliest?, latest?);
        let before = errors.len();
        if to < from {
            errors.push(FieldError::new("to", "must not be before from"));
        } else if (to - from).num_days() >= MAX_WAIT_DAYS {
            errors.push(FieldError::new(
                "to",
                format!("must be within {MAX_WAIT_DAYS} days of from"),
            ));
        }
        if to < today {
            errors.push(FieldError::new("to", "must not be in the past"));
        }
        if let (Some(e), Some(l)) = (earliest, latest)
            && l < e
        {
            errors.push(FieldError::new("latest", "must not be before earliest"));
        }
        (errors.len() == before).then_some(SlotWish {
            service_id,
            practitioner_id,
            from,
            to,
            earliest,
            latest,
        })
    }

    /// Whether a slot of `service_id` with `practitioner_id` starting at `start` is one this
    /// entry waits for.
    pub fn wants(
        &self,
        tz: Tz,
        service_id: Uuid,
        practitioner_id: Uuid,
        start: DateTime<Utc>,
    ) -> bool {
        if service_id != self.service_id
            || self.practitioner_id.is_some_and(|p| p != practitioner_id)
        {
            return false;
        }
        let local = start.with_timezone(&tz);
        let date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        date >= self.from
            && date <= self.to
            && self.earliest.is_none_or(|e| minute >= e)
            && self.latest.is_none_or(|l| minute <= l)
    }

    /// Whether the entry's last date is over at `now`.
    pub fn has_passed(&self, tz: Tz, now: DateTime<Utc>) -> bool {
        localtime::local_date(tz, now) > self.to
    }
}

/// What an entry waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    Class(Uuid),
    Slot(SlotWish),
}

/// A waiting entry, as the matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub entry_id: Uuid,
    pub urgent: bool,
    pub created_at: DateTime<Utc>,
    pub want: Want,
}

/// A place that is free to offer: a seat in a session, or a one-to-one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    Seat {
        class_session_id: Uuid,
    },
    Slot {
        service_id: Uuid,
        practitioner_id: Uuid,
        start: DateTime<Utc>,
    },
}

impl Place {
    /// The place's identity across offers: a session, or a practitioner's start (two services
    /// at one start are the same time of the same person).
    pub fn key(&self) -> PlaceKey {
        match *self {
            Place::Seat { class_session_id } => PlaceKey::Session(class_session_id),
            Place::Slot {
                practitioner_id,
                start,
                ..
            } => PlaceKey::Time(practitioner_id, start),
        }
    }
}

/// See [`Place::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaceKey {
    Session(Uuid),
    Time(Uuid, DateTime<Utc>),
}

/// The order entries are offered places in: staff-marked urgent first, then the oldest, then
/// by id so the order is total.
pub fn queue_order(entries: &mut [Waiting]) {
    entries.sort_by_key(|e| (!e.urgent, e.created_at, e.entry_id));
}

/// Whether `entry` waits for `place`.
pub fn wants(tz: Tz, entry: &Waiting, place: &Place) -> bool {
    match (&entry.want, place) {
        (Want::Class(wanted), Place::Seat { class_session_id }) => wanted == class_session_id,
        (
            Want::Slot(wish),
            Place::Slot {
                service_id,
                practitioner_id,
                start,
            },
        ) => wish.wants(tz, *service_id, *practitioner_id, *start),
        _ => false,
    }
}

/// The first entry in queue order that waits for one of `places` (free, in the caller's
/// order of preference) and was not offered that place before (`offered_before`: entry and
/// place pairs of earlier offers, which a decline or expiry passes on, never back).
pub fn first_match(
    tz: Tz,
    entries: &[Waiting],
    places: &[Place],
    offered_before: &HashSet<(Uuid, PlaceKey)>,
) -> Option<(Uuid, Place)> {
    let mut queue: Vec<Waiting> = entries.to_vec();
    queue_order(&mut queue);
    queue.iter().find_map(|entry| {
        places
            .iter()
            .find(|place| {
                wants(tz, entry, place) && !offered_before.contains(&(entry.entry_id, place.key()))
            })
            .map(|place| (entry.entry_id, *place))
    })
}

/// Whether a place starting at `start` may still be offered at `now`: not within
/// `cutoff_minutes` of its start.
pub fn offerable(start: DateTime<Utc>, now: DateTime<Utc>, cutoff_minutes: u32) -> bool {
    start - Duration::minutes(i64::from(cutoff_minutes)) > now
}

/// When an offer made at `now` for a place starting at `start` stops holding it: the earlier
/// of `hold_minutes` after the offer and `cutoff_minutes` before the start. `None` when that
/// is not after `now` (too late to offer).
pub fn hold_end(
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    hold_minutes: u32,
    cutoff_minutes: u32,
) -> Option<DateTime<Utc>> {
    let end = (now + Duration::minutes(i64::from(hold_minutes)))
        .min(start - Duration::minutes(i64::from(cutoff_minutes)));
    (end > now).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::Europe::London;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn wish(service: Uuid, practitioner: Option<Uuid>) -> SlotWish {
        SlotWish {
            service_id: service,
            practitioner_id: practitioner,
            from: NaiveDate::from_ymd_opt(2026, 6, 1).expect("date"),
            to: NaiveDate::from_ymd_opt(2026, 6, 7).expect("date"),
            earliest: Some(9 * 60),
            latest: Some(12 * 60),
        }
    }

    fn waiting(n: u128, urgent: bool, created: &str, want: Want) -> Waiting {
        Waiting {
            entry_id: id(n),
            urgent,
            created_at: at(created),
            want,
        }
    }

    fn slot(service: Uuid, practitioner: Uuid, start: &str) -> Place {
        Place::Slot {
            service_id: service,
            practitioner_id: practitioner,
            start: at(start),
        }
    }

    #[test]
    fn a_slot_wish_matches_service_practitioner_dates_and_local_time_of_day() {
        let (service, p1, p2) = (id(1), id(2), id(3));
        let any = wish(service, None);
        let only_p1 = wish(service, Some(p1));
        // 2026-06-03 10:00 in London is 09:00 UTC (BST).
        let ten = at("2026-06-03T09:00:00Z");
        assert!(any.wants(TZ, service, p2, ten));
        assert!(only_p1.wants(TZ, service, p1, ten));
        assert!(!only_p1.wants(TZ, service, p2, ten));
        assert!(!any.wants(TZ, id(9), p1, ten), "another service");
        // 08:45 local is before earliest; 12:00 local is the last allowed start.
        assert!(!any.wants(TZ, service, p1, at("2026-06-03T07:45:00Z")));
        assert!(any.wants(TZ, service, p1, at("2026-06-03T11:00:00Z")));
        assert!(!any.wants(TZ, service, p1, at("2026-06-03T11:15:00Z")));
        // Dates are local and inclusive at both ends.
        assert!(any.wants(TZ, service, p1, at("2026-06-07T10:00:00Z")));
        assert!(!any.wants(TZ, service, p1, at("2026-06-08T08:00:00Z")));
        assert!(!any.wants(TZ, service, p1, at("2026-05-31T10:00:00Z")));
    }

    #[test]
    fn urgent_entries_come_first_then_the_oldest() {
        let service = id(1);
        let mut queue = vec![
            waiting(
                10,
                false,
                "2026-05-01T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
            waiting(
                11,
                true,
                "2026-05-03T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
            waiting(
                12,
                false,
                "2026-04-01T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
            waiting(
                13,
                true,
                "2026-05-02T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
        ];
        queue_order(&mut queue);
        let order: Vec<Uuid> = queue.iter().map(|e| e.entry_id).collect();
        assert_eq!(order, vec![id(13), id(11), id(12), id(10)]);
    }

    #[test]
    fn the_first_waiting_entry_that_wants_a_place_gets_it() {
        let (service, p1, p2, class) = (id(1), id(2), id(3), id(4));
        let entries = vec![
            // Oldest, but only for p2.
            waiting(
                10,
                false,
                "2026-04-01T10:00:00Z",
                Want::Slot(wish(service, Some(p2))),
            ),
            waiting(11, false, "2026-04-02T10:00:00Z", Want::Class(class)),
            waiting(
                12,
                false,
                "2026-04-03T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
            waiting(
                13,
                false,
                "2026-04-04T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
        ];
        let free = [slot(service, p1, "2026-06-03T09:00:00Z")];
        let none = HashSet::new();
        assert_eq!(
            first_match(TZ, &entries, &free, &none),
            Some((id(12), free[0]))
        );
        let seat = [Place::Seat {
            class_session_id: class,
        }];
        assert_eq!(
            first_match(TZ, &entries, &seat, &none),
            Some((id(11), seat[0]))
        );
        assert_eq!(
            first_match(
                TZ,
                &entries,
                &[Place::Seat {
                    class_session_id: id(99)
                }],
                &none
            ),
            None
        );
    }

    #[test]
    fn a_place_declined_or_expired_passes_to_the_next_entry_never_back() {
        let (service, p1) = (id(1), id(2));
        let entries = vec![
            waiting(
                10,
                false,
                "2026-04-01T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
            waiting(
                11,
                false,
                "2026-04-02T10:00:00Z",
                Want::Slot(wish(service, None)),
            ),
        ];
        let place = slot(service, p1, "2026-06-03T09:00:00Z");
        let mut before = HashSet::new();
        before.insert((id(10), place.key()));
        assert_eq!(
            first_match(TZ, &entries, &[place], &before),
            Some((id(11), place))
        );
        before.insert((id(11), place.key()));
        assert_eq!(first_match(TZ, &entries, &[place], &before), None);
        // Another time is another place: the first entry may get that one.
        let later = slot(service, p1, "2026-06-03T10:00:00Z");
        assert_eq!(
            first_match(TZ, &entries, &[place, later], &before),
            Some((id(10), later))
        );
    }

    #[test]
    fn no_offer_within_the_cutoff_and_the_hold_ends_at_the_earlier_limit() {
        let now = at("2026-06-03T08:00:00Z");
        assert!(offerable(at("2026-06-03T09:01:00Z"), now, 60));
        assert!(!offerable(at("2026-06-03T09:00:00Z"), now, 60));
        // Far ahead: hold_minutes after the offer.
        assert_eq!(
            hold_end(now, at("2026-06-05T09:00:00Z"), 30, 60),
            Some(at("2026-06-03T08:30:00Z"))
        );
        // Close: cutoff_minutes before the start.
        assert_eq!(
            hold_end(now, at("2026-06-03T09:10:00Z"), 30, 60),
            Some(at("2026-06-03T08:10:00Z"))
        );
        assert_eq!(hold_end(now, at("2026-06-03T09:00:00Z"), 30, 60), None);
    }

    #[test]
    fn a_join_request_is_parsed_with_every_error_named() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
        let mut errors = Vec::new();
        let parsed = SlotWish::parse(
            id(1),
            None,
            "2026-06-02",
            "2026-06-09",
            Some("09:00"),
            Some("12:30"),
            today,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            parsed.map(|w| (w.earliest, w.latest)),
            Some((Some(540), Some(750)))
        );

        for (from, to, earliest, latest, field) in [
            ("2026-06-09", "2026-06-02", None, None, "to"),
            ("2026-05-01", "2026-05-31", None, None, "to"),
            ("2026-06-01", "2027-06-02", None, None, "to"),
            ("2026-13-01", "2026-06-02", None, None, "from"),
            ("2026-06-01", "2026-06-02", Some("9am"), None, "earliest"),
            (
                "2026-06-01",
                "2026-06-02",
                Some("12:00"),
                Some("09:00"),
                "latest",
            ),
        ] {
            let mut errors = Vec::new();
            let parsed =
                SlotWish::parse(id(1), None, from, to, earliest, latest, today, &mut errors);
            assert!(parsed.is_none(), "{from} {to} {earliest:?} {latest:?}");
            assert!(
                errors.iter().any(|e| e.field == field),
                "{from} {to}: {errors:?}"
            );
        }
    }

    #[test]
    fn statuses_read_back_as_written() {
        for s in EntryStatus::ALL {
            assert_eq!(EntryStatus::parse(s.as_str()), Some(s));
        }
        for s in OfferStatus::ALL {
            assert_eq!(OfferStatus::parse(s.as_str()), Some(s));
        }
        assert!(EntryStatus::Offered.is_active());
        assert!(!EntryStatus::Left.is_active());
    }
}
