//! Turning clinic wall-clock times into instants, by the rules of DESIGN §4: a time in a
//! spring-forward gap moves to the first instant after the gap; an ambiguous time (autumn
//! overlap) takes the earlier instant. Never unwraps a conversion.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant of `minute` minutes after local midnight on `date` (1440 = next midnight).
/// Dates near the ends of chrono's range saturate instead of overflowing; the HTTP edge only
/// lets through dates from [`EARLIEST_YEAR`] to [`LATEST_YEAR`] anyway.
pub fn instant_at(tz: Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    let local = midnight
        .checked_add_signed(Duration::minutes(i64::from(minute)))
        .unwrap_or(midnight);
    local_to_utc(tz, local)
}

/// The range of calendar years the service accepts in queries.
pub const EARLIEST_YEAR: i32 = 2000;
pub const LATEST_YEAR: i32 = 2200;

/// Checks that a query date lies in a sensible range (a clinic diary, not chrono's limits).
pub fn check_date(field: &str, date: NaiveDate) -> Result<NaiveDate, super::FieldError> {
    use chrono::Datelike;
    if (EARLIEST_YEAR..=LATEST_YEAR).contains(&date.year()) {
        Ok(date)
    } else {
        Err(super::FieldError::new(
            field,
            format!("must be a date between the years {EARLIEST_YEAR} and {LATEST_YEAR}"),
        ))
    }
}

/// Resolves a local date-time in `tz` to an instant.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant after the gap containing `local`: walk back to the last minute that
/// exists, then the gap starts one minute later in that minute's offset.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // No zone has a gap longer than a day; 48 h of one-minute steps is a safe bound.
    for _ in 0..(48 * 60) {
        probe -= Duration::minutes(1);
        let before = match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => t,
            LocalResult::Ambiguous(_, later) => later,
            LocalResult::None => continue,
        };
        return before.with_timezone(&Utc) + Duration::minutes(1);
    }
    // Unreachable for real zones; fall back to reading the time as UTC.
    Utc.from_utc_datetime(&local)
}

/// The local calendar date of an instant in the clinic's zone.
pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::London;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_to_the_end_of_the_gap() {
        // 2026-03-29 01:00 GMT → 02:00 BST; 01:30 does not exist.
        let t = instant_at(London, d(2026, 3, 29), 90);
        assert_eq!(t.to_rfc3339(), "2026-03-29T01:00:00+00:00");
    }

    #[test]
    fn an_ambiguous_autumn_time_takes_the_earlier_instant() {
        // 2026-10-25 01:30 happens twice: first at 00:30 UTC (BST).
        let t = instant_at(London, d(2026, 10, 25), 90);
        assert_eq!(t.to_rfc3339(), "2026-10-25T00:30:00+00:00");
    }

    #[test]
    fn ordinary_times_follow_the_offset_of_the_day() {
        assert_eq!(
            instant_at(London, d(2026, 7, 1), 9 * 60).to_rfc3339(),
            "2026-07-01T08:00:00+00:00"
        );
        assert_eq!(
            instant_at(London, d(2026, 12, 1), 9 * 60).to_rfc3339(),
            "2026-12-01T09:00:00+00:00"
        );
    }

    #[test]
    fn lord_howe_half_hour_gap() {
        // Australia/Lord_Howe springs forward 02:00 → 02:30 on 2026-10-04.
        let tz: Tz = "Australia/Lord_Howe".parse().expect("known zone");
        let t = instant_at(tz, d(2026, 10, 4), 2 * 60 + 10);
        assert_eq!(t, instant_at(tz, d(2026, 10, 4), 2 * 60 + 30));
    }
}
