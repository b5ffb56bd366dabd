//! The availability engine of DESIGN §4: which (start, practitioner) pairs are free for a
//! service. Pure: the caller reads schedules, appointments and closures and passes "now".

use chrono::{DateTime, Days, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{hours::WeeklyInterval, localtime};

/// A half-open span of time `[start, end)`; empty when `end <= start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Range {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Range {
    /// Whether the two ranges share an instant. An empty range overlaps nothing, and ranges
    /// that merely touch (`a.end == b.start`) do not overlap.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < self.end
            && other.start < other.end
            && self.start < other.end
            && other.start < self.end
    }
}

/// What a service needs from the calendar, with policy overrides already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceRules {
    /// 0 offers no slots.
    pub duration_minutes: u32,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    /// Distance between candidate starts within a working interval; 0 offers no slots.
    pub step_minutes: u32,
    pub min_notice_minutes: u32,
    /// Horizon in real 24-hour days after now (not local calendar days).
    pub max_advance_days: u32,
}

/// One practitioner's week and everything that already blocks their time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PractitionerSchedule {
    pub practitioner_id: Uuid,
    pub week: Vec<WeeklyInterval>,
    /// Other active appointments' blocked ranges (start − their buffer before, end + their
    /// buffer after). A reschedule must leave out the appointment being moved.
    pub appointments: Vec<Range>,
    pub time_off: Vec<Range>,
}

/// A search for one service's slots over local dates `from..=to` in the clinic's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotQuery {
    pub tz: Tz,
    pub now: DateTime<Utc>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rules: ServiceRules,
}

/// A bookable time with one practitioner; `end - start` is the service's duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub practitioner_id: Uuid,
}

/// Why a requested (start, practitioner) cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// A real slot, but it overlaps another appointment (HTTP 409).
    #[error("the slot is already taken")]
    Taken,
    /// Not a bookable slot at all (HTTP 422).
    #[error("not a bookable slot: {0}")]
    Outside(OutsideReason),
}

/// Why a start is not a bookable slot at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutsideReason {
    #[error("the start is not on the service's slot grid")]
    OffGrid,
    #[error("the practitioner does not work then")]
    OutsideWorkingHours,
    #[error("the practitioner is away then")]
    TimeOff,
    #[error("the clinic is closed then")]
    Closed,
    #[error("it starts sooner than the minimum notice allows")]
    TooSoon,
    #[error("it starts beyond the booking horizon")]
    TooFarAhead,
}

/// Free slots of `schedules` for the query's dates, sorted by (start, practitioner_id).
///
/// Cost is linear in working intervals, candidates and busy ranges (plus the sorts): each
/// practitioner's busy ranges are merged once and swept with a pointer as candidates rise.
pub fn free_slots(
    query: &SlotQuery,
    schedules: &[PractitionerSchedule],
    closures: &[Range],
) -> Vec<Slot> {
    let Some(plan) = Plan::new(query) else {
        return Vec::new();
    };
    let dates = plan.dates(query);
    let closures: Vec<Span> = closures.iter().map(Span::from).collect();
    let mut slots = Vec::new();
    let mut starts = Vec::new();
    let mut busy = Vec::new();
    for schedule in schedules {
        starts.clear();
        for span in working_spans(query.tz, dates, &schedule.week) {
            plan.push_candidates(span, &mut starts);
        }
        // Overlapping working intervals of one day yield the same starts twice.
        starts.sort_unstable();
        starts.dedup();

        busy.clear();
        busy.extend(schedule.appointments.iter().map(Span::from));
        busy.extend(schedule.time_off.iter().map(Span::from));
        busy.extend_from_slice(&closures);
        coalesce(&mut busy);

        let mut sweep = Sweep {
            busy: &busy,
            next: 0,
        };
        for &start in &starts {
            if sweep.hits(plan.blocked(start)) {
                continue;
            }
            // Both convert: a candidate ends inside a working span, which is a real instant.
            if let (Some(start), Some(end)) = (instant(start), instant(start + plan.duration)) {
                slots.push(Slot {
                    start,
                    end,
                    practitioner_id: schedule.practitioner_id,
                });
            }
        }
    }
    // Each practitioner's slots are already one sorted run, which the stable sort merges.
    slots.sort_by_key(|s| (s.start, s.practitioner_id));
    slots.dedup_by_key(|s| (s.start, s.practitioner_id));
    slots
}

/// Decides one requested (start, practitioner) on what the booking transaction read. It is
/// `Ok` exactly when `free_slots(query, [schedule], closures)` lists a slot at `start`;
/// build the query with [`local_day_query`]. When several reasons apply, the first of
/// TooSoon/TooFarAhead, OffGrid/OutsideWorkingHours, Closed, TimeOff, Taken is given.
pub fn check_slot(
    query: &SlotQuery,
    schedule: &PractitionerSchedule,
    closures: &[Range],
    start: DateTime<Utc>,
) -> Result<(), Unavailable> {
    use OutsideReason::*;
    let outside = |reason| Err(Unavailable::Outside(reason));
    let Some(plan) = Plan::new(query) else {
        return outside(OffGrid);
    };
    let start = nanos(start);
    if start < plan.earliest {
        return outside(TooSoon);
    }
    if start > plan.latest {
        return outside(TooFarAhead);
    }
    let mut fits_off_grid = false;
    let mut on_grid = false;
    for span in working_spans(query.tz, plan.dates(query), &schedule.week) {
        match plan.place(span, start) {
            Placement::OnGrid => {
                on_grid = true;
                break;
            }
            Placement::OffGrid => fits_off_grid = true,
            Placement::Outside => {}
        }
    }
    if !on_grid {
        return outside(if fits_off_grid {
            OffGrid
        } else {
            OutsideWorkingHours
        });
    }
    let blocked = plan.blocked(start);
    let hits = |ranges: &[Range]| ranges.iter().any(|r| Span::from(r).overlaps(blocked));
    if hits(closures) {
        outside(Closed)
    } else if hits(&schedule.time_off) {
        outside(TimeOff)
    } else if hits(&schedule.appointments) {
        Err(Unavailable::Taken)
    } else {
        Ok(())
    }
}

/// The query `check_slot` needs for a requested start: its local date, and a day either
/// side, because near a DST change at midnight a slot of one day's working interval can fall
/// on the neighbouring local date (America/St_Johns before 2011 changed at 00:01).
pub fn local_day_query(
    tz: Tz,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    rules: ServiceRules,
) -> SlotQuery {
    let day = local_date(tz, start);
    SlotQuery {
        tz,
        now,
        from: day.checked_sub_days(Days::new(1)).unwrap_or(day),
        to: day.checked_add_days(Days::new(1)).unwrap_or(day),
        rules,
    }
}

/// An instant as nanoseconds since the Unix epoch. Exact for every `DateTime<Utc>` and far
/// from overflow for any u32 of minutes, and plain integer arithmetic in the hot loop, where
/// chrono's calendar arithmetic cost more than everything else together.
type Nanos = i128;

const NANOS_PER_MINUTE: Nanos = 60_000_000_000;

fn nanos(at: DateTime<Utc>) -> Nanos {
    Nanos::from(at.timestamp()) * 1_000_000_000 + Nanos::from(at.timestamp_subsec_nanos())
}

fn instant(n: Nanos) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(n.div_euclid(1_000_000_000)).ok()?;
    let rest = u32::try_from(n.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(seconds, rest)
}

/// A `Range` in nanoseconds: `[start, end)`, empty when `end <= start`. An empty span
/// overlaps nothing, and spans that merely touch do not overlap.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: Nanos,
    end: Nanos,
}

impl Span {
    fn overlaps(self, other: Span) -> bool {
        self.start < self.end
            && other.start < other.end
            && self.start < other.end
            && other.start < self.end
    }
}

impl From<&Range> for Span {
    fn from(r: &Range) -> Span {
        Span {
            start: nanos(r.start),
            end: nanos(r.end),
        }
    }
}

/// The service's rules and the query's notice/horizon window, in nanoseconds.
struct Plan {
    duration: Nanos,
    before: Nanos,
    after: Nanos,
    step: Nanos,
    earliest: Nanos,
    latest: Nanos,
}

enum Placement {
    OnGrid,
    OffGrid,
    Outside,
}

impl Plan {
    /// `None` when the rules admit no slot at all (zero duration or zero step).
    fn new(query: &SlotQuery) -> Option<Plan> {
        let rules = &query.rules;
        if rules.duration_minutes == 0 || rules.step_minutes == 0 {
            return None;
        }
        let minutes = |m: u32| Nanos::from(m) * NANOS_PER_MINUTE;
        let now = nanos(query.now);
        Some(Plan {
            duration: minutes(rules.duration_minutes),
            before: minutes(rules.buffer_before_minutes),
            after: minutes(rules.buffer_after_minutes),
            step: minutes(rules.step_minutes),
            earliest: now + minutes(rules.min_notice_minutes),
            latest: now + Nanos::from(rules.max_advance_days) * 24 * 60 * NANOS_PER_MINUTE,
        })
    }

    /// The query's dates, narrowed to those whose working intervals could reach the window.
    /// A slot of local date D starts within a day of D's midnight, so two days of margin
    /// lose nothing; the narrowing keeps a long range cheap and far dates from overflowing.
    fn dates(&self, query: &SlotQuery) -> (NaiveDate, NaiveDate) {
        let margin = Days::new(2);
        let clamped = |n| instant(n).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let lo = local_date(query.tz, clamped(self.earliest))
            .checked_sub_days(margin)
            .unwrap_or(NaiveDate::MIN);
        let hi = local_date(query.tz, clamped(self.latest))
            .checked_add_days(margin)
            .unwrap_or(NaiveDate::MAX);
        // instant_at adds up to a day and may search two days back through a gap.
        let safe_lo = NaiveDate::MIN.checked_add_days(Days::new(3));
        let safe_hi = NaiveDate::MAX.checked_sub_days(Days::new(3));
        let from = query.from.max(lo).max(safe_lo.unwrap_or(NaiveDate::MAX));
        let to = query.to.min(hi).min(safe_hi.unwrap_or(NaiveDate::MIN));
        (from, to)
    }

    /// Appends the grid starts of one working span that fall inside the window.
    fn push_candidates(&self, span: Span, out: &mut Vec<Nanos>) {
        let mut t = span.start;
        while t <= self.latest && t + self.duration <= span.end {
            if t >= self.earliest {
                out.push(t);
            }
            t += self.step;
        }
    }

    /// Where `start` falls relative to one working span; the same grid as push_candidates.
    fn place(&self, span: Span, start: Nanos) -> Placement {
        if start < span.start || start + self.duration > span.end {
            Placement::Outside
        } else if (start - span.start) % self.step == 0 {
            Placement::OnGrid
        } else {
            Placement::OffGrid
        }
    }

    /// What a booking at `start` occupies: `[start − buffer before, end + buffer after)`.
    fn blocked(&self, start: Nanos) -> Span {
        Span {
            start: start - self.before,
            end: start + self.duration + self.after,
        }
    }
}

/// The practitioner's working intervals on each date of `from..=to`, as instants `[a, b)`.
fn working_spans(
    tz: Tz,
    (from, to): (NaiveDate, NaiveDate),
    week: &[WeeklyInterval],
) -> impl Iterator<Item = Span> + '_ {
    std::iter::successors(Some(from), |d| d.succ_opt())
        .take_while(move |d| *d <= to)
        .flat_map(move |date| {
            week.iter()
                .filter(move |iv| iv.applies_on(date))
                .map(move |iv| Span {
                    // Minute 1440 is the next midnight; anything later is clamped to it.
                    start: nanos(localtime::instant_at(tz, date, iv.start_minute.min(1440))),
                    end: nanos(localtime::instant_at(tz, date, iv.end_minute.min(1440))),
                })
        })
}

/// Sorts spans by start and merges those that overlap or touch, dropping empty ones, so
/// that a pointer can sweep them.
fn coalesce(spans: &mut Vec<Span>) {
    spans.retain(|s| s.start < s.end);
    spans.sort_unstable_by_key(|s| s.start);
    spans.dedup_by(|next, kept| {
        let joins = next.start <= kept.end;
        if joins {
            kept.end = kept.end.max(next.end);
        }
        joins
    });
}

/// A pointer into sorted, disjoint busy spans, for queries whose starts never decrease.
struct Sweep<'a> {
    busy: &'a [Span],
    next: usize,
}

impl Sweep<'_> {
    fn hits(&mut self, blocked: Span) -> bool {
        while let Some(b) = self.busy.get(self.next)
            && b.end <= blocked.start
        {
            self.next += 1;
        }
        self.busy
            .get(self.next)
            .is_some_and(|b| b.overlaps(blocked))
    }
}

/// The local date of an instant, without chrono's panic at the ends of its range.
fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc).date()
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeDelta, Weekday};
    use chrono_tz::{America::St_Johns, Australia, Europe::London, UTC};
    use proptest::{collection::vec, prelude::*, sample::select};

    use super::*;
    use crate::domain::hours::parse_clock;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("test instant")
    }

    /// A time on Monday 2026-01-05 in UTC, the zone of the plain rule tests.
    fn monday(clock: &str) -> DateTime<Utc> {
        utc(&format!("2026-01-05T{clock}:00Z"))
    }

    fn busy(from: &str, to: &str) -> Range {
        Range {
            start: monday(from),
            end: monday(to),
        }
    }

    fn weekly(weekday: u8, start: &str, end: &str) -> WeeklyInterval {
        WeeklyInterval {
            weekday,
            start_minute: parse_clock(start).expect("clock"),
            end_minute: parse_clock(end).expect("clock"),
            valid_from: None,
            valid_until: None,
        }
    }

    fn daily(start: &str, end: &str) -> Vec<WeeklyInterval> {
        (0..7).map(|day| weekly(day, start, end)).collect()
    }

    fn rules(duration_minutes: u32, step_minutes: u32) -> ServiceRules {
        ServiceRules {
            duration_minutes,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            step_minutes,
            min_notice_minutes: 0,
            max_advance_days: 100_000,
        }
    }

    /// A query asked long before the dates, so notice and horizon do not interfere.
    fn query(tz: Tz, from: &str, to: &str, rules: ServiceRules) -> SlotQuery {
        SlotQuery {
            tz,
            now: utc("2000-01-01T00:00:00Z"),
            from: date(from),
            to: date(to),
            rules,
        }
    }

    fn monday_query(rules: ServiceRules) -> SlotQuery {
        query(UTC, "2026-01-05", "2026-01-05", rules)
    }

    fn practitioner(n: u128, week: Vec<WeeklyInterval>) -> PractitionerSchedule {
        PractitionerSchedule {
            practitioner_id: Uuid::from_u128(n),
            week,
            appointments: Vec::new(),
            time_off: Vec::new(),
        }
    }

    /// Slot starts as local wall-clock times with their offsets.
    fn local_starts(tz: Tz, slots: &[Slot]) -> Vec<String> {
        let format = |s: &Slot| s.start.with_timezone(&tz).format("%H:%M%:z").to_string();
        slots.iter().map(format).collect()
    }

    fn clocks(slots: &[Slot]) -> Vec<String> {
        slots
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect()
    }

    fn slots_of(q: &SlotQuery, schedule: &PractitionerSchedule) -> Vec<Slot> {
        free_slots(q, std::slice::from_ref(schedule), &[])
    }

    /// A 09:00–17:00 day on each date: same local times, UTC instants a day plus `shift` apart.
    fn assert_day_shifts(tz: Tz, before: &str, after: &str, shift_hours: i64) {
        let q = query(tz, before, after, rules(60, 60));
        let slots = slots_of(&q, &practitioner(1, daily("09:00", "17:00")));
        let on = |day: &str| -> Vec<Slot> {
            let day = date(day);
            slots
                .iter()
                .filter(|s| local_date(tz, s.start) == day)
                .copied()
                .collect()
        };
        let (first, second) = (on(before), on(after));
        let times = |slots: &[Slot]| -> Vec<String> {
            let format = |s: &Slot| s.start.with_timezone(&tz).format("%H:%M").to_string();
            slots.iter().map(format).collect()
        };
        assert_eq!(times(&first), times(&second));
        assert_eq!(first.len(), 8);
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(
                b.start - a.start,
                TimeDelta::days(1) + TimeDelta::hours(shift_hours)
            );
        }
    }

    #[test]
    fn londons_2026_changes_fall_on_the_last_sundays_of_march_and_october() {
        for day in ["2026-03-29", "2026-10-25"] {
            let day = date(day);
            assert_eq!(day.weekday(), Weekday::Sun);
            assert_ne!((day + TimeDelta::days(7)).month(), day.month());
            let offset = |at: DateTime<Utc>| London.offset_from_utc_datetime(&at.naive_utc()).fix();
            let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
            assert_ne!(offset(midnight), offset(midnight + TimeDelta::hours(12)));
        }
    }

    #[test]
    fn a_working_day_either_side_of_a_london_change_keeps_its_local_times() {
        assert_day_shifts(London, "2026-03-28", "2026-03-29", -1);
        assert_day_shifts(London, "2026-10-24", "2026-10-25", 1);
        let q = query(London, "2026-03-29", "2026-03-29", rules(60, 60));
        let slots = slots_of(&q, &practitioner(1, daily("09:00", "17:00")));
        assert_eq!(slots[0].start, utc("2026-03-29T08:00:00Z"));
    }

    #[test]
    fn an_interval_across_the_spring_gap_steps_in_real_time() {
        let week = vec![weekly(6, "00:30", "03:00")];
        let q = query(London, "2026-03-29", "2026-03-29", rules(30, 30));
        let slots = slots_of(&q, &practitioner(1, week.clone()));
        // 01:00–02:00 does not exist: 1.5 real hours hold three slots.
        assert_eq!(
            local_starts(London, &slots),
            ["00:30+00:00", "02:00+01:00", "02:30+01:00"]
        );
        let ordinary = query(London, "2026-03-22", "2026-03-22", rules(30, 30));
        assert_eq!(slots_of(&ordinary, &practitioner(1, week)).len(), 5);
    }

    #[test]
    fn an_interval_across_the_autumn_overlap_yields_its_real_length() {
        let week = vec![weekly(6, "00:30", "03:00")];
        let q = query(London, "2026-10-25", "2026-10-25", rules(30, 30));
        let slots = slots_of(&q, &practitioner(1, week));
        // 01:00–02:00 happens twice: 3.5 real hours hold seven slots.
        assert_eq!(
            local_starts(London, &slots),
            [
                "00:30+01:00",
                "01:00+01:00",
                "01:30+01:00",
                "01:00+00:00",
                "01:30+00:00",
                "02:00+00:00",
                "02:30+00:00",
            ]
        );
        assert_eq!(slots[0].start, utc("2026-10-24T23:30:00Z"));
    }

    #[test]
    fn lord_howe_shifts_by_half_an_hour() {
        let tz = Australia::Lord_Howe;
        let week = vec![weekly(6, "01:00", "04:00")];
        let spring = query(tz, "2026-10-04", "2026-10-04", rules(30, 30));
        assert_eq!(
            local_starts(tz, &slots_of(&spring, &practitioner(1, week))),
            [
                "01:00+10:30",
                "01:30+10:30",
                "02:30+11:00",
                "03:00+11:00",
                "03:30+11:00"
            ]
        );
        let week = vec![weekly(6, "01:00", "03:00")];
        let autumn = query(tz, "2026-04-05", "2026-04-05", rules(30, 30));
        assert_eq!(
            local_starts(tz, &slots_of(&autumn, &practitioner(1, week))),
            [
                "01:00+11:00",
                "01:30+11:00",
                "01:30+10:30",
                "02:00+10:30",
                "02:30+10:30"
            ]
        );
    }

    #[test]
    fn sydney_springs_forward_in_october() {
        let tz = Australia::Sydney;
        assert_day_shifts(tz, "2026-10-03", "2026-10-04", -1);
        let q = query(tz, "2026-10-04", "2026-10-04", rules(30, 30));
        let slots = slots_of(&q, &practitioner(1, vec![weekly(6, "01:00", "04:00")]));
        assert_eq!(
            local_starts(tz, &slots),
            ["01:00+10:00", "01:30+10:00", "03:00+11:00", "03:30+11:00"]
        );
    }

    #[test]
    fn an_interval_may_end_at_midnight() {
        let q = monday_query(rules(60, 60));
        let slots = slots_of(&q, &practitioner(1, vec![weekly(0, "22:00", "24:00")]));
        assert_eq!(clocks(&slots), ["22:00", "23:00"]);
        assert_eq!(slots[1].end, utc("2026-01-06T00:00:00Z"));
    }

    #[test]
    fn buffers_on_both_sides_keep_slots_clear_of_appointments() {
        let mut r = rules(30, 15);
        r.buffer_before_minutes = 10;
        r.buffer_after_minutes = 5;
        let mut p = practitioner(1, vec![weekly(0, "09:00", "13:00")]);
        p.appointments = vec![busy("10:30", "11:00")];
        let slots = slots_of(&monday_query(r), &p);
        // 09:45 blocks until 10:20; 10:00 would block until 10:35. 11:15 blocks from 11:05.
        assert_eq!(
            clocks(&slots),
            [
                "09:00", "09:15", "09:30", "09:45", "11:15", "11:30", "11:45", "12:00", "12:15",
                "12:30"
            ]
        );
    }

    #[test]
    fn back_to_back_appointments_leave_the_edges_free() {
        let mut p = practitioner(1, vec![weekly(0, "09:00", "13:00")]);
        p.appointments = vec![busy("11:00", "12:00"), busy("10:00", "11:00")];
        let slots = slots_of(&monday_query(rules(60, 30)), &p);
        assert_eq!(clocks(&slots), ["09:00", "12:00"]);
        assert_eq!(slots[0].end, monday("10:00"));
    }

    #[test]
    fn time_off_covering_part_of_a_slot_removes_it() {
        let mut p = practitioner(1, vec![weekly(0, "09:00", "12:00")]);
        p.time_off = vec![busy("10:15", "10:30")];
        let slots = slots_of(&monday_query(rules(60, 30)), &p);
        assert_eq!(clocks(&slots), ["09:00", "10:30", "11:00"]);
    }

    #[test]
    fn ranges_overlap_only_when_they_share_an_instant() {
        let morning = busy("09:00", "10:00");
        assert!(morning.overlaps(&busy("09:59", "11:00")));
        assert!(!morning.overlaps(&busy("10:00", "11:00")));
        assert!(!morning.overlaps(&busy("09:30", "09:30")));
        assert!(!morning.overlaps(&busy("09:45", "09:15")));
    }

    #[test]
    fn closures_apply_to_every_practitioner_and_output_is_sorted() {
        let week = vec![weekly(0, "09:00", "12:00")];
        let schedules = [practitioner(2, week.clone()), practitioner(1, week)];
        let slots = free_slots(
            &monday_query(rules(60, 60)),
            &schedules,
            &[busy("10:30", "10:45")],
        );
        let got: Vec<(String, u128)> = slots
            .iter()
            .map(|s| {
                (
                    s.start.format("%H:%M").to_string(),
                    s.practitioner_id.as_u128(),
                )
            })
            .collect();
        let want = [("09:00", 1), ("09:00", 2), ("11:00", 1), ("11:00", 2)];
        assert_eq!(got, want.map(|(t, p)| (t.to_string(), p)));
    }

    #[test]
    fn validity_dates_are_inclusive() {
        let mut iv = weekly(0, "09:00", "10:00");
        iv.valid_from = Some(date("2026-01-12"));
        iv.valid_until = Some(date("2026-01-26"));
        let q = query(UTC, "2026-01-05", "2026-02-02", rules(60, 60));
        let days: Vec<String> = slots_of(&q, &practitioner(1, vec![iv]))
            .iter()
            .map(|s| s.start.format("%m-%d").to_string())
            .collect();
        assert_eq!(days, ["01-12", "01-19", "01-26"]);
    }

    #[test]
    fn min_notice_allows_a_start_exactly_at_the_limit() {
        let mut r = rules(15, 15);
        r.min_notice_minutes = 10;
        let p = practitioner(1, vec![weekly(0, "09:00", "10:00")]);
        let mut q = monday_query(r);
        q.now = monday("08:50");
        assert_eq!(clocks(&slots_of(&q, &p))[0], "09:00");
        q.now += TimeDelta::seconds(1);
        assert_eq!(clocks(&slots_of(&q, &p))[0], "09:15");
    }

    #[test]
    fn max_advance_allows_a_start_exactly_at_the_horizon() {
        let mut r = rules(15, 15);
        r.max_advance_days = 1;
        let mut q = query(UTC, "2026-01-05", "2026-01-07", r);
        q.now = monday("09:00");
        let slots = slots_of(&q, &practitioner(1, daily("09:00", "10:00")));
        assert_eq!(slots.len(), 5);
        assert_eq!(slots[4].start, utc("2026-01-06T09:00:00Z"));
    }

    #[test]
    fn the_step_spaces_candidate_starts() {
        let p = practitioner(1, vec![weekly(0, "09:00", "11:00")]);
        let every_15 = slots_of(&monday_query(rules(45, 15)), &p);
        assert_eq!(
            clocks(&every_15),
            ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15"]
        );
        let every_60 = slots_of(&monday_query(rules(45, 60)), &p);
        assert_eq!(clocks(&every_60), ["09:00", "10:00"]);
    }

    #[test]
    fn an_interval_shorter_than_the_service_has_no_slots() {
        let q = monday_query(rules(45, 15));
        assert!(slots_of(&q, &practitioner(1, vec![weekly(0, "09:00", "09:30")])).is_empty());
        let exact = slots_of(&q, &practitioner(1, vec![weekly(0, "09:00", "09:45")]));
        assert_eq!(clocks(&exact), ["09:00"]);
    }

    #[test]
    fn overlapping_intervals_do_not_duplicate_starts() {
        let q = monday_query(rules(60, 60));
        let same_grid = vec![weekly(0, "09:00", "12:00"), weekly(0, "10:00", "13:00")];
        let slots = slots_of(&q, &practitioner(1, same_grid));
        assert_eq!(clocks(&slots), ["09:00", "10:00", "11:00", "12:00"]);
        let offset_grids = vec![weekly(0, "09:00", "11:00"), weekly(0, "09:30", "11:30")];
        let slots = slots_of(&q, &practitioner(1, offset_grids));
        assert_eq!(clocks(&slots), ["09:00", "09:30", "10:00", "10:30"]);
    }

    #[test]
    fn degenerate_rules_offer_nothing() {
        let p = practitioner(1, daily("09:00", "17:00"));
        assert!(slots_of(&monday_query(rules(0, 15)), &p).is_empty());
        assert!(slots_of(&monday_query(rules(30, 0)), &p).is_empty());
        let outside = Err(Unavailable::Outside(OutsideReason::OffGrid));
        assert_eq!(
            check_slot(&monday_query(rules(30, 0)), &p, &[], monday("09:00")),
            outside
        );
        let mut huge = rules(u32::MAX, u32::MAX);
        huge.buffer_before_minutes = u32::MAX;
        huge.buffer_after_minutes = u32::MAX;
        huge.min_notice_minutes = u32::MAX;
        huge.max_advance_days = u32::MAX;
        assert!(slots_of(&monday_query(huge), &p).is_empty());
    }

    #[test]
    fn check_slot_names_why_a_start_is_unavailable() {
        use OutsideReason::*;
        let mut r = rules(60, 30);
        r.min_notice_minutes = 60;
        r.max_advance_days = 7;
        let mut p = practitioner(1, daily("09:00", "13:00"));
        p.appointments = vec![busy("10:00", "11:00")];
        p.time_off = vec![busy("11:00", "11:30")];
        let tuesday = Range {
            start: utc("2026-01-06T00:00:00Z"),
            end: utc("2026-01-07T00:00:00Z"),
        };
        let now = monday("08:30");
        let cases = [
            ("2026-01-05T09:00:00Z", Err(Unavailable::Outside(TooSoon))),
            ("2026-01-05T09:30:00Z", Err(Unavailable::Taken)),
            ("2026-01-05T09:45:00Z", Err(Unavailable::Outside(OffGrid))),
            ("2026-01-05T11:00:00Z", Err(Unavailable::Outside(TimeOff))),
            ("2026-01-05T11:30:00Z", Ok(())),
            ("2026-01-05T11:30:00.5Z", Err(Unavailable::Outside(OffGrid))),
            (
                "2026-01-05T12:30:00Z",
                Err(Unavailable::Outside(OutsideWorkingHours)),
            ),
            (
                "2026-01-05T14:00:00Z",
                Err(Unavailable::Outside(OutsideWorkingHours)),
            ),
            ("2026-01-06T09:00:00Z", Err(Unavailable::Outside(Closed))),
            (
                "2026-01-12T09:00:00Z",
                Err(Unavailable::Outside(TooFarAhead)),
            ),
        ];
        for (start, want) in cases {
            let start = utc(start);
            let q = local_day_query(UTC, now, start, r);
            assert_eq!(check_slot(&q, &p, &[tuesday], start), want, "{start}");
        }
    }

    #[test]
    fn a_slot_on_the_previous_local_date_is_listed_and_books() {
        // St John's fell back at 00:01 in 2006: a Sunday 00:00 interval runs into Saturday.
        let p = practitioner(1, vec![weekly(6, "00:00", "02:00")]);
        let mut sunday = query(St_Johns, "2006-10-29", "2006-10-29", rules(15, 15));
        let second = slots_of(&sunday, &p)[1].start;
        assert_eq!(second, utc("2006-10-29T02:45:00Z"));
        assert_eq!(local_date(St_Johns, second), date("2006-10-28"));
        let q = local_day_query(St_Johns, sunday.now, second, sunday.rules);
        assert_eq!(check_slot(&q, &p, &[], second), Ok(()));
        // A horizon ending on Saturday's local date still reaches Sunday's interval.
        sunday.now = utc("2006-10-28T02:50:00Z");
        sunday.rules.max_advance_days = 1;
        assert_eq!(
            local_date(St_Johns, sunday.now + TimeDelta::days(1)),
            date("2006-10-28")
        );
        let starts: Vec<_> = slots_of(&sunday, &p).iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            [utc("2006-10-29T02:30:00Z"), utc("2006-10-29T02:45:00Z")]
        );
    }

    // ---- Properties on random small worlds around DST changes ----

    /// Zones with a date just before one of their changes (or none, for UTC).
    const SCENES: [(Tz, &str); 8] = [
        (London, "2026-03-27"),
        (London, "2026-10-23"),
        (Australia::Lord_Howe, "2026-10-02"),
        (Australia::Lord_Howe, "2026-04-03"),
        (Australia::Sydney, "2026-10-02"),
        (Australia::Sydney, "2026-04-03"),
        (UTC, "2026-06-01"),
        (St_Johns, "2006-10-27"),
    ];

    #[derive(Debug, Clone)]
    struct World {
        query: SlotQuery,
        schedules: Vec<PractitionerSchedule>,
        closures: Vec<Range>,
    }

    fn minutes(m: i64) -> TimeDelta {
        TimeDelta::minutes(m)
    }

    /// Mostly on the weekdays of the query's `days + 1` dates and valid throughout, so that
    /// most worlds have slots.
    fn any_interval(from: NaiveDate, days: u32) -> impl Strategy<Value = WeeklyInterval> {
        let first = from.weekday().num_days_from_monday();
        let weekday = prop_oneof![4 => 0..=days, 1 => 0u32..7].prop_map(move |d| (first + d) % 7);
        let date = (-2i64..5).prop_map(move |d| Some(from + TimeDelta::days(d)));
        let validity = prop_oneof![3 => Just(None), 1 => date];
        let len = prop_oneof![3 => 60u32..600, 1 => 1u32..120];
        (weekday, 0u32..1440, len, validity.clone(), validity).prop_map(
            |(weekday, start, len, valid_from, valid_until)| WeeklyInterval {
                weekday: u8::try_from(weekday).unwrap_or(0),
                start_minute: start,
                end_minute: (start + len).min(1440),
                valid_from,
                valid_until,
            },
        )
    }

    /// Mostly ordinary ranges, with some empty or inverted ones.
    fn any_range(origin: DateTime<Utc>) -> impl Strategy<Value = Range> {
        (-720i64..5000, -30i64..300).prop_map(move |(offset, len)| Range {
            start: origin + minutes(offset),
            end: origin + minutes(offset + len),
        })
    }

    fn any_rules() -> impl Strategy<Value = ServiceRules> {
        let steps = select(vec![1u32, 5, 10, 15, 20, 30, 45, 60, 90]);
        // Mostly a notice and horizon that leave the dates bookable; sometimes ones that cut in.
        let notice = prop_oneof![3 => 0u32..=120, 1 => 0u32..=3000];
        let advance = prop_oneof![3 => 6u32..=10, 1 => 0u32..=5];
        (1u32..=120, steps, 0u32..=30, 0u32..=30, notice, advance).prop_map(
            |(duration, step, before, after, notice, advance)| ServiceRules {
                duration_minutes: duration,
                buffer_before_minutes: before,
                buffer_after_minutes: after,
                step_minutes: step,
                min_notice_minutes: notice,
                max_advance_days: advance,
            },
        )
    }

    /// A few days near a DST change (or none), one or two practitioners.
    fn any_world() -> impl Strategy<Value = World> {
        let dates = (0i64..2, prop_oneof![1 => Just(-1i64), 8 => 0i64..3]);
        (select(SCENES.to_vec()), dates).prop_flat_map(|((tz, base), (from, days))| {
            let base = date(base);
            let from = base + TimeDelta::days(from);
            let origin = localtime::instant_at(tz, base, 0);
            let schedule = (
                vec(any_interval(from, u32::try_from(days).unwrap_or(0)), 0..6),
                vec(any_range(origin), 0..8),
                vec(any_range(origin), 0..3),
            );
            let now = (-2880i64..1440, prop_oneof![Just(0i64), 0i64..60]);
            let closures = vec(any_range(origin), 0..3);
            (any_rules(), now, vec(schedule, 1..=2), closures).prop_map(
                move |(rules, (now_min, now_sec), parts, closures)| {
                    let schedules = parts
                        .into_iter()
                        .zip((1..=10).rev())
                        .map(
                            |((week, appointments, time_off), id)| PractitionerSchedule {
                                // Descending ids, so that the output sort is exercised.
                                practitioner_id: Uuid::from_u128(id),
                                week,
                                appointments,
                                time_off,
                            },
                        )
                        .collect();
                    World {
                        query: SlotQuery {
                            tz,
                            now: origin + minutes(now_min) + TimeDelta::seconds(now_sec),
                            from,
                            to: from + TimeDelta::days(days),
                            rules,
                        },
                        schedules,
                        closures,
                    }
                },
            )
        })
    }

    fn days_of(q: &SlotQuery) -> impl Iterator<Item = NaiveDate> {
        let to = q.to;
        q.from.iter_days().take_while(move |d| *d <= to)
    }

    /// The working intervals applying on `day`, as instants, computed independently.
    fn spans_on(
        q: &SlotQuery,
        week: &[WeeklyInterval],
        day: NaiveDate,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        week.iter()
            .filter(|iv| iv.applies_on(day))
            .map(|iv| {
                (
                    localtime::instant_at(q.tz, day, iv.start_minute.min(1440)),
                    localtime::instant_at(q.tz, day, iv.end_minute.min(1440)),
                )
            })
            .collect()
    }

    fn blocked_by(r: &ServiceRules, start: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let m = |v: u32| minutes(i64::from(v));
        (
            start - m(r.buffer_before_minutes),
            start + m(r.duration_minutes) + m(r.buffer_after_minutes),
        )
    }

    fn intersects((from, until): (DateTime<Utc>, DateTime<Utc>), r: &Range) -> bool {
        r.start < r.end && r.start < until && from < r.end
    }

    /// DESIGN §4 read literally: try every minute of every day.
    fn brute_force(
        q: &SlotQuery,
        schedules: &[PractitionerSchedule],
        closures: &[Range],
    ) -> Vec<Slot> {
        let r = &q.rules;
        let step = i64::from(r.step_minutes) * 60;
        let duration = minutes(i64::from(r.duration_minutes));
        let earliest = q.now + minutes(i64::from(r.min_notice_minutes));
        let latest = q.now + TimeDelta::days(i64::from(r.max_advance_days));
        let mut out = Vec::new();
        for s in schedules {
            for day in days_of(q) {
                let spans = spans_on(q, &s.week, day);
                let mut t = localtime::instant_at(q.tz, day, 0);
                while t < localtime::instant_at(q.tz, day, 1440) {
                    let on_grid = spans.iter().any(|&(a, b)| {
                        a <= t && t + duration <= b && (t - a).num_seconds() % step == 0
                    });
                    let blocked = blocked_by(r, t);
                    let busy = s
                        .appointments
                        .iter()
                        .chain(&s.time_off)
                        .chain(closures)
                        .any(|b| intersects(blocked, b));
                    if on_grid && earliest <= t && t <= latest && !busy {
                        out.push(Slot {
                            start: t,
                            end: t + duration,
                            practitioner_id: s.practitioner_id,
                        });
                    }
                    t += minutes(1);
                }
            }
        }
        out.sort_by_key(|s| (s.start, s.practitioner_id));
        out.dedup();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn free_slots_equals_trying_every_minute(w in any_world()) {
            let got = free_slots(&w.query, &w.schedules, &w.closures);
            prop_assert_eq!(got, brute_force(&w.query, &w.schedules, &w.closures));
        }

        #[test]
        fn slots_are_free_inside_hours_sorted_and_unique(w in any_world()) {
            let q = &w.query;
            let slots = free_slots(q, &w.schedules, &w.closures);
            for pair in slots.windows(2) {
                prop_assert!((pair[0].start, pair[0].practitioner_id) < (pair[1].start, pair[1].practitioner_id));
            }
            for slot in &slots {
                let s = w.schedules.iter().find(|s| s.practitioner_id == slot.practitioner_id);
                let s = s.expect("a slot belongs to a listed practitioner");
                let blocked = blocked_by(&q.rules, slot.start);
                let mut busy = s.appointments.iter().chain(&s.time_off).chain(&w.closures);
                prop_assert!(!busy.any(|b| intersects(blocked, b)));
                let inside = days_of(q)
                    .flat_map(|day| spans_on(q, &s.week, day))
                    .any(|(a, b)| a <= slot.start && slot.end <= b);
                prop_assert!(inside);
                prop_assert_eq!(slot.end - slot.start, minutes(i64::from(q.rules.duration_minutes)));
            }
        }

        #[test]
        fn check_slot_agrees_with_free_slots(w in any_world()) {
            let (q, s) = (&w.query, &w.schedules[0]);
            let listed = free_slots(q, std::slice::from_ref(s), &w.closures);
            let listed: Vec<DateTime<Utc>> = listed.iter().map(|slot| slot.start).collect();
            let lenient = |appointments: bool, time_off: bool| {
                let mut s = s.clone();
                if !appointments { s.appointments.clear(); }
                if !time_off { s.time_off.clear(); }
                s
            };
            let without_appointments = free_slots(q, &[lenient(false, true)], &w.closures);
            let without_busy = free_slots(q, &[lenient(false, false)], &[]);
            let is_in = |slots: &[Slot], t| slots.iter().any(|slot| slot.start == t);
            let first = localtime::instant_at(q.tz, q.from, 0) - TimeDelta::hours(2);
            let probes = (0..).map(|i| first + minutes(7 * i)).take(5 * 1440 / 7);
            for t in listed.iter().copied().chain(probes) {
                let verdict = check_slot(q, s, &w.closures, t);
                prop_assert_eq!(verdict.is_ok(), listed.contains(&t), "{}", t);
                match verdict {
                    Err(Unavailable::Taken) => prop_assert!(is_in(&without_appointments, t)),
                    Err(Unavailable::Outside(OutsideReason::TimeOff | OutsideReason::Closed)) => {
                        prop_assert!(is_in(&without_busy, t));
                    }
                    Err(Unavailable::Outside(OutsideReason::TooSoon)) => {
                        prop_assert!(t < q.now + minutes(i64::from(q.rules.min_notice_minutes)));
                    }
                    Err(Unavailable::Outside(OutsideReason::TooFarAhead)) => {
                        prop_assert!(t > q.now + TimeDelta::days(i64::from(q.rules.max_advance_days)));
                    }
                    Err(Unavailable::Outside(_)) => prop_assert!(!is_in(&without_busy, t)),
                    Ok(()) => {}
                }
            }
        }

        #[test]
        fn every_listed_slot_books_with_its_local_day_query(w in any_world()) {
            let q = &w.query;
            for slot in free_slots(q, &w.schedules, &w.closures) {
                let s = w.schedules.iter().find(|s| s.practitioner_id == slot.practitioner_id);
                let s = s.expect("a slot belongs to a listed practitioner");
                let day = local_day_query(q.tz, q.now, slot.start, q.rules);
                prop_assert_eq!(check_slot(&day, s, &w.closures, slot.start), Ok(()));
            }
        }
    }

    fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
        let (min, max) = (
            DateTime::<Utc>::MIN_UTC.timestamp(),
            DateTime::<Utc>::MAX_UTC.timestamp(),
        );
        let near = -4_000_000_000i64..4_000_000_000;
        prop_oneof![min..=max, near]
            .prop_map(|secs| DateTime::from_timestamp(secs, 0).unwrap_or_default())
    }

    fn any_minutes() -> impl Strategy<Value = u32> {
        prop_oneof![any::<u32>(), 0u32..1500]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn extreme_inputs_do_not_panic(
            tz in select(SCENES.map(|(tz, _)| tz).to_vec()),
            now in any_instant(),
            from_days in prop_oneof![any::<i32>(), 730_000i32..750_000],
            len in 0u64..3,
            raw in (any_minutes(), any_minutes(), any_minutes(), any_minutes(), any_minutes(), any::<u32>()),
            week in vec((0u8..7, any_minutes(), any_minutes()), 0..4),
            ranges in vec((any_instant(), any_instant()), 0..4),
            probe in any_instant(),
        ) {
            let from = NaiveDate::from_num_days_from_ce_opt(from_days).unwrap_or(NaiveDate::MIN);
            let (duration, before, after, step, notice, advance) = raw;
            let q = SlotQuery {
                tz,
                now,
                from,
                to: from.checked_add_days(Days::new(len)).unwrap_or(from),
                rules: ServiceRules {
                    duration_minutes: duration,
                    buffer_before_minutes: before,
                    buffer_after_minutes: after,
                    step_minutes: step,
                    min_notice_minutes: notice,
                    max_advance_days: advance,
                },
            };
            let ranges: Vec<Range> = ranges.into_iter().map(|(start, end)| Range { start, end }).collect();
            let mut p = practitioner(1, week.into_iter().map(|(weekday, start, end)| WeeklyInterval {
                weekday, start_minute: start, end_minute: end, valid_from: None, valid_until: None,
            }).collect());
            p.appointments = ranges.clone();
            let slots = free_slots(&q, std::slice::from_ref(&p), &ranges);
            for slot in &slots {
                prop_assert!(slot.start >= now);
                prop_assert_eq!(check_slot(&q, &p, &ranges, slot.start), Ok(()));
            }
            let day = local_day_query(tz, now, probe, q.rules);
            let verdict = check_slot(&day, &p, &ranges, probe);
            prop_assert!(verdict.is_err() || probe >= now);
        }
    }
}
