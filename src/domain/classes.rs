//! Group classes: the pure rules. Which dates a weekly class series gives (at a local
//! wall-clock time, DST-stable: each date is converted on its own, never 7×24 h added to an
//! instant), whether a patient may still take a seat, and the vocabularies of sessions and
//! seats.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{
    availability::{OutsideReason, ServiceRules},
    catalogue::vocabulary,
    localtime,
};

vocabulary!(
    /// Where a class session is in its life.
    SessionStatus {
        Scheduled = "scheduled",
        Cancelled = "cancelled",
    }
);

vocabulary!(
    /// Where a seat is in its life.
    SeatStatus {
        Confirmed = "confirmed",
        Cancelled = "cancelled",
        Attended = "attended",
        NoShow = "no_show",
    }
);

/// The most sessions one series may create (a year of weekly classes).
pub const MAX_SERIES_SESSIONS: usize = 53;

/// The most places a class may have.
pub const MAX_CAPACITY: i32 = 500;

/// One date of a weekly series and the instant it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesDate {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
}

/// Every date from `valid_from` to `valid_until` (inclusive) that falls on `weekday`
/// (0 = Monday), with the instant of `start_minute` local time that day.
pub fn weekly_dates(
    tz: Tz,
    weekday: u32,
    start_minute: u32,
    valid_from: NaiveDate,
    valid_until: NaiveDate,
) -> Vec<SeriesDate> {
    let shift =
        (i64::from(weekday) - i64::from(valid_from.weekday().num_days_from_monday())).rem_euclid(7);
    let mut dates = Vec::new();
    let mut date = valid_from.checked_add_signed(Duration::days(shift));
    while let Some(d) = date.filter(|d| *d <= valid_until) {
        dates.push(SeriesDate {
            date: d,
            start: localtime::instant_at(tz, d, start_minute),
        });
        date = d.checked_add_signed(Duration::days(7));
    }
    dates
}

/// Why a patient may not take a seat in a session now, if they may not: the session was
/// cancelled or has started, or it is within the notice or beyond the horizon of the class
/// service's booking policy.
pub fn seat_refusal(
    status: SessionStatus,
    start: DateTime<Utc>,
    rules: &ServiceRules,
    now: DateTime<Utc>,
) -> Option<SeatRefusal> {
    if status == SessionStatus::Cancelled {
        return Some(SeatRefusal::Cancelled);
    }
    if start <= now {
        return Some(SeatRefusal::Started);
    }
    let earliest = now.checked_add_signed(Duration::minutes(i64::from(rules.min_notice_minutes)));
    if earliest.is_some_and(|e| start < e) {
        return Some(SeatRefusal::Outside(OutsideReason::TooSoon));
    }
    let latest = now.checked_add_signed(Duration::days(i64::from(rules.max_advance_days)));
    if latest.is_some_and(|l| start > l) {
        return Some(SeatRefusal::Outside(OutsideReason::TooFarAhead));
    }
    None
}

/// Why a seat cannot be taken (all answered 422 `outside_availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatRefusal {
    Cancelled,
    Started,
    Outside(OutsideReason),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(notice: u32, horizon: u32) -> ServiceRules {
        ServiceRules {
            duration_minutes: 60,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            step_minutes: 60,
            min_notice_minutes: notice,
            max_advance_days: horizon,
        }
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn a_weekly_series_keeps_its_local_time_across_the_clock_change() {
        let tz: Tz = "Europe/London".parse().expect("zone");
        // Tuesdays 18:30 from 10 March to 7 April 2026: British Summer Time starts 29 March.
        let dates = weekly_dates(tz, 1, 18 * 60 + 30, date("2026-03-09"), date("2026-04-07"));
        let local: Vec<String> = dates
            .iter()
            .map(|d| d.start.with_timezone(&tz).format("%F %H:%M %Z").to_string())
            .collect();
        assert_eq!(
            local,
            [
                "2026-03-10 18:30 GMT",
                "2026-03-17 18:30 GMT",
                "2026-03-24 18:30 GMT",
                "2026-03-31 18:30 BST",
                "2026-04-07 18:30 BST",
            ]
        );
        assert_eq!(dates[3].start.to_rfc3339(), "2026-03-31T17:30:00+00:00");
    }

    #[test]
    fn a_series_of_one_day_or_none_gives_what_the_range_holds() {
        let tz = chrono_tz::UTC;
        // 2026-03-09 is a Monday.
        assert_eq!(
            weekly_dates(tz, 0, 600, date("2026-03-09"), date("2026-03-09")).len(),
            1
        );
        assert!(weekly_dates(tz, 1, 600, date("2026-03-09"), date("2026-03-09")).is_empty());
        assert!(weekly_dates(tz, 0, 600, date("2026-03-10"), date("2026-03-09")).is_empty());
    }

    #[test]
    fn seats_are_refused_when_cancelled_started_too_soon_or_too_far() {
        let now: DateTime<Utc> = "2026-03-09T10:00:00Z".parse().expect("now");
        let r = rules(120, 30);
        let scheduled = SessionStatus::Scheduled;
        assert_eq!(
            seat_refusal(scheduled, now + Duration::hours(3), &r, now),
            None
        );
        assert_eq!(
            seat_refusal(SessionStatus::Cancelled, now + Duration::hours(3), &r, now),
            Some(SeatRefusal::Cancelled)
        );
        assert_eq!(
            seat_refusal(scheduled, now - Duration::minutes(1), &r, now),
            Some(SeatRefusal::Started)
        );
        assert_eq!(
            seat_refusal(scheduled, now + Duration::minutes(90), &r, now),
            Some(SeatRefusal::Outside(OutsideReason::TooSoon))
        );
        assert_eq!(
            seat_refusal(scheduled, now + Duration::days(31), &r, now),
            Some(SeatRefusal::Outside(OutsideReason::TooFarAhead))
        );
    }
}
