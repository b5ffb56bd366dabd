//! Weekly working hours: local wall-clock intervals per weekday, with optional validity dates.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{FieldError, localtime};

/// One working interval of a practitioner's week, in the clinic's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyInterval {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Minutes after local midnight; `end_minute` may be 1440 (midnight at the end of the day).
    pub start_minute: u32,
    pub end_minute: u32,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

impl WeeklyInterval {
    /// Whether this interval applies on a local date.
    pub fn applies_on(&self, date: NaiveDate) -> bool {
        u32::from(self.weekday) == date.weekday().num_days_from_monday()
            && self.valid_from.is_none_or(|from| date >= from)
            && self.valid_until.is_none_or(|until| date <= until)
    }

    fn validity_overlaps(&self, other: &WeeklyInterval) -> bool {
        let starts_before_other_ends = match (self.valid_from, other.valid_until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.valid_from, self.valid_until) {
            (Some(from), Some(until)) => from <= until,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }
}

/// A week's intervals on each local date of `from..=to`, as instants `[start, end)` in date
/// order. Each end is converted on its own date, so a working day across a DST change is as
/// long as the clock says, and an interval that falls wholly in a spring-forward gap (empty
/// once converted) is left out.
pub fn working_periods(
    tz: Tz,
    from: NaiveDate,
    to: NaiveDate,
    week: &[WeeklyInterval],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut sorted: Vec<&WeeklyInterval> = week.iter().collect();
    sorted.sort_by_key(|iv| iv.start_minute);
    std::iter::successors(Some(from), |d| d.succ_opt())
        .take_while(|d| *d <= to)
        .flat_map(|date| {
            sorted
                .iter()
                .filter(move |iv| iv.applies_on(date))
                .map(move |iv| {
                    (
                        localtime::instant_at(tz, date, iv.start_minute.min(1440)),
                        localtime::instant_at(tz, date, iv.end_minute.min(1440)),
                    )
                })
                .filter(|(start, end)| start < end)
                .collect::<Vec<_>>()
        })
        .collect()
}

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Parses `monday` … `sunday`.
pub fn parse_weekday(s: &str) -> Option<u8> {
    WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(s.trim()))
        .and_then(|i| u8::try_from(i).ok())
}

/// Parses `HH:MM` (00:00–24:00) into minutes after midnight.
pub fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// Formats minutes after midnight as `HH:MM`.
pub fn format_clock(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Checks a whole week: each interval has start < end and valid_from ≤ valid_until, and no
/// two intervals of the same weekday whose validity periods meet overlap in time.
pub fn validate_week(intervals: &[WeeklyInterval]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (i, iv) in intervals.iter().enumerate() {
        if iv.start_minute >= iv.end_minute {
            errors.push(FieldError::new(
                format!("intervals[{i}].end"),
                "must be after start",
            ));
        }
        if let (Some(from), Some(until)) = (iv.valid_from, iv.valid_until)
            && from > until
        {
            errors.push(FieldError::new(
                format!("intervals[{i}].valid_until"),
                "must not be before valid_from",
            ));
        }
    }
    if errors.is_empty() {
        let mut order: Vec<usize> = (0..intervals.len()).collect();
        order.sort_by_key(|&i| (intervals[i].weekday, intervals[i].start_minute));
        for (pos, &i) in order.iter().enumerate() {
            for &j in &order[pos + 1..] {
                let (a, b) = (&intervals[i], &intervals[j]);
                if b.weekday != a.weekday || b.start_minute >= a.end_minute {
                    continue;
                }
                if a.validity_overlaps(b) {
                    errors.push(FieldError::new(
                        format!("intervals[{j}]"),
                        format!(
                            "overlaps intervals[{i}] on {}",
                            WEEKDAYS[usize::from(a.weekday) % 7]
                        ),
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(weekday: u8, start: &str, end: &str) -> WeeklyInterval {
        WeeklyInterval {
            weekday,
            start_minute: parse_clock(start).expect("clock"),
            end_minute: parse_clock(end).expect("clock"),
            valid_from: None,
            valid_until: None,
        }
    }

    #[test]
    fn clocks_parse_and_format() {
        assert_eq!(parse_clock("09:30"), Some(570));
        assert_eq!(parse_clock("24:00"), Some(1440));
        for bad in ["9:30", "24:01", "12:60", "ab:cd", "", "12"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert_eq!(format_clock(570), "09:30");
    }

    #[test]
    fn a_week_with_overlapping_intervals_is_rejected() {
        let week = [iv(0, "09:00", "13:00"), iv(0, "12:00", "17:00")];
        let errors = validate_week(&week).expect_err("overlap");
        assert_eq!(errors[0].field, "intervals[1]");
        assert!(validate_week(&[iv(0, "09:00", "13:00"), iv(0, "13:00", "17:00")]).is_ok());
        assert!(validate_week(&[iv(0, "09:00", "13:00"), iv(1, "09:00", "13:00")]).is_ok());
    }

    #[test]
    fn intervals_valid_in_different_periods_may_overlap() {
        let date = |s: &str| s.parse::<NaiveDate>().expect("date");
        let mut a = iv(2, "09:00", "17:00");
        a.valid_until = Some(date("2026-12-31"));
        let mut b = iv(2, "10:00", "18:00");
        b.valid_from = Some(date("2027-01-01"));
        assert!(validate_week(&[a.clone(), b.clone()]).is_ok());
        b.valid_from = Some(date("2026-12-31"));
        assert!(validate_week(&[a, b]).is_err());
    }

    #[test]
    fn working_periods_follow_the_clock_across_a_dst_change() {
        let date = |s: &str| s.parse::<NaiveDate>().expect("date");
        let tz = chrono_tz::Europe::London;
        // Saturday 2027-03-27 (GMT) and Sunday 2027-03-28, when 01:00 GMT becomes 02:00 BST.
        let week = [
            iv(5, "09:00", "17:00"),
            iv(6, "00:30", "03:00"),
            iv(6, "01:10", "01:50"),
        ];
        let periods = working_periods(tz, date("2027-03-27"), date("2027-03-28"), &week);
        let text: Vec<(String, String)> = periods
            .iter()
            .map(|(a, b)| (a.to_rfc3339(), b.to_rfc3339()))
            .collect();
        assert_eq!(
            text,
            [
                (
                    "2027-03-27T09:00:00+00:00".to_string(),
                    "2027-03-27T17:00:00+00:00".to_string()
                ),
                // 00:30 GMT to 03:00 BST is 90 real minutes; 01:10–01:50 does not exist.
                (
                    "2027-03-28T00:30:00+00:00".to_string(),
                    "2027-03-28T02:00:00+00:00".to_string()
                ),
            ]
        );
    }

    #[test]
    fn start_must_precede_end() {
        let errors = validate_week(&[iv(0, "13:00", "09:00")]).expect_err("inverted");
        assert_eq!(errors[0].field, "intervals[0].end");
    }
}
