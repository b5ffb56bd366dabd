//! Courses of treatment: the dates of a weekly series. Every occurrence is at the first one's
//! local wall-clock time in the clinic's zone — weeks are added to the local date and the
//! result converted again (never 7×24 h added to an instant), so a 09:00 course stays at 09:00
//! across the clock changes.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use super::{FieldError, localtime};

/// The most occurrences one series may have.
pub const MAX_OCCURRENCES: u32 = 52;
/// The longest interval between occurrences, in weeks.
pub const MAX_EVERY_WEEKS: u32 = 12;

/// Where a series ends: after a number of occurrences, or on a local date (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesEnd {
    Count(u32),
    Until(NaiveDate),
}

/// A validated weekly rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyRule {
    pub first_start: DateTime<Utc>,
    pub every_weeks: u32,
    pub end: SeriesEnd,
}

impl WeeklyRule {
    /// Checks the rule's parts: an interval of 1 to [`MAX_EVERY_WEEKS`], exactly one of
    /// `count` (1 to [`MAX_OCCURRENCES`]) or `until` (not before the first date, and giving at
    /// most [`MAX_OCCURRENCES`] occurrences).
    pub fn parse(
        tz: Tz,
        first_start: DateTime<Utc>,
        every_weeks: i64,
        count: Option<i64>,
        until: Option<NaiveDate>,
    ) -> Result<WeeklyRule, Vec<FieldError>> {
        let mut errors = Vec::new();
        let every = match u32::try_from(every_weeks) {
            Ok(n) if (1..=MAX_EVERY_WEEKS).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "every_weeks",
                    format!("must be from 1 to {MAX_EVERY_WEEKS}"),
                ));
                1
            }
        };
        let end = match (count, until) {
            (Some(_), Some(_)) | (None, None) => {
                errors.push(FieldError::new(
                    "count",
                    "give exactly one of count or until",
                ));
                None
            }
            (Some(n), None) => match u32::try_from(n) {
                Ok(n) if (1..=MAX_OCCURRENCES).contains(&n) => Some(SeriesEnd::Count(n)),
                _ => {
                    errors.push(FieldError::new(
                        "count",
                        format!("must be from 1 to {MAX_OCCURRENCES}"),
                    ));
                    None
                }
            },
            (None, Some(date)) => {
                let first_date = localtime::local_date(tz, first_start);
                if date < first_date {
                    errors.push(FieldError::new(
                        "until",
                        "must not be before the first occurrence's date",
                    ));
                    None
                } else {
                    let weeks = (date - first_date).num_days() / 7 / i64::from(every);
                    if weeks >= i64::from(MAX_OCCURRENCES) {
                        errors.push(FieldError::new(
                            "until",
                            format!("gives more than {MAX_OCCURRENCES} occurrences"),
                        ));
                        None
                    } else {
                        Some(SeriesEnd::Until(date))
                    }
                }
            }
        };
        match (errors.is_empty(), end) {
            (true, Some(end)) => Ok(WeeklyRule {
                first_start,
                every_weeks: every,
                end,
            }),
            _ => Err(errors),
        }
    }

    /// The start of every occurrence, in order: the first one's local time on the local date
    /// `every_weeks` weeks on, each converted by the clinic's local-time rules.
    pub fn occurrences(&self, tz: Tz) -> Vec<DateTime<Utc>> {
        let local = self.first_start.with_timezone(&tz);
        let first_date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        let mut out = Vec::new();
        for k in 0..MAX_OCCURRENCES {
            if let SeriesEnd::Count(n) = self.end
                && k >= n
            {
                break;
            }
            let Some(date) =
                first_date.checked_add_signed(Duration::weeks(i64::from(k * self.every_weeks)))
            else {
                break;
            };
            if let SeriesEnd::Until(until) = self.end
                && date > until
            {
                break;
            }
            let start = if k == 0 {
                self.first_start
            } else {
                localtime::instant_at(tz, date, minute)
            };
            out.push(start);
        }
        out
    }

    /// The instant the last occurrence may start by, for an RRULE's UNTIL: the end of the
    /// `until` date in the clinic's zone.
    pub fn until_instant(&self, tz: Tz) -> Option<DateTime<Utc>> {
        match self.end {
            SeriesEnd::Count(_) => None,
            SeriesEnd::Until(date) => {
                Some(localtime::instant_at(tz, date, 24 * 60) - Duration::seconds(1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn london() -> Tz {
        chrono_tz::Europe::London
    }

    #[test]
    fn weekly_occurrences_keep_the_local_time_across_both_clock_changes() {
        let tz = london();
        // Tuesday 2027-03-16 09:00 GMT; BST starts 2027-03-28, ends 2027-10-31.
        let first = Utc.with_ymd_and_hms(2027, 3, 16, 9, 0, 0).single().unwrap();
        let rule = WeeklyRule::parse(tz, first, 1, Some(34), None).unwrap();
        let all = rule.occurrences(tz);
        assert_eq!(all.len(), 34);
        for t in &all {
            let local = t.with_timezone(&tz);
            assert_eq!((local.hour(), local.minute()), (9, 0), "{t}");
        }
        assert_eq!(all[2] - all[1], Duration::hours(7 * 24 - 1));
    }

    #[test]
    fn until_is_inclusive_and_count_and_until_are_exclusive() {
        let tz = london();
        let first = Utc.with_ymd_and_hms(2027, 1, 5, 9, 0, 0).single().unwrap();
        let until = NaiveDate::from_ymd_opt(2027, 1, 26).unwrap();
        let rule = WeeklyRule::parse(tz, first, 1, None, Some(until)).unwrap();
        assert_eq!(rule.occurrences(tz).len(), 4);
        let rule = WeeklyRule::parse(tz, first, 2, None, Some(until)).unwrap();
        assert_eq!(rule.occurrences(tz).len(), 2);
        assert!(WeeklyRule::parse(tz, first, 1, Some(3), Some(until)).is_err());
        assert!(WeeklyRule::parse(tz, first, 1, None, None).is_err());
        assert!(WeeklyRule::parse(tz, first, 1, Some(53), None).is_err());
        assert!(WeeklyRule::parse(tz, first, 0, Some(3), None).is_err());
    }
}
