//! The rulebook: the one function that decides whether an appointment may be placed at, or
//! moved to, a time — for online bookings, staff bookings, staff and manage-link reschedules,
//! and any later path (series, waitlist claims) — with the rules a caller may set aside named
//! explicitly. Pure: the caller reads the schedule inside its transaction and passes "now" in
//! the query.
//!
//! Without overrides the answer is exactly [`availability::check_slot`]'s, so listing and
//! booking agree. Staff set aside the grid, working hours, notice and horizon; time off and
//! closures only when the request lists them. Other appointments are never overridden.

use chrono::{DateTime, Duration, Utc};

use super::availability::{
    self, OutsideReason, PractitionerSchedule, Range, ServiceRules, SlotQuery, Unavailable,
};

/// A rule of DESIGN §4 that a caller may set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The service's slot grid.
    Grid,
    /// The practitioner's working hours (setting them aside also sets aside the grid).
    Hours,
    /// `min_notice_minutes`.
    Notice,
    /// `max_advance_days`.
    Horizon,
    /// The practitioner's time off.
    TimeOff,
    /// Clinic closures.
    Closure,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Grid,
        Rule::Hours,
        Rule::Notice,
        Rule::Horizon,
        Rule::TimeOff,
        Rule::Closure,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The name a request and the audit log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Grid => "grid",
            Rule::Hours => "hours",
            Rule::Notice => "notice",
            Rule::Horizon => "horizon",
            Rule::TimeOff => "time_off",
            Rule::Closure => "closure",
        }
    }
}

/// A set of rules set aside for one placement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides(u8);

impl Overrides {
    /// Every rule applies: the online booking and the manage link.
    pub const NONE: Overrides = Overrides(0);

    /// What staff may always set aside (grid, hours, notice, horizon), plus the rules their
    /// request lists (time off, closure).
    pub fn staff(listed: impl IntoIterator<Item = Rule>) -> Overrides {
        [Rule::Grid, Rule::Hours, Rule::Notice, Rule::Horizon]
            .into_iter()
            .chain(listed)
            .fold(Overrides::NONE, Overrides::with)
    }

    pub fn with(self, rule: Rule) -> Overrides {
        Overrides(self.0 | rule.bit())
    }

    pub fn contains(self, rule: Rule) -> bool {
        self.0 & rule.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules in the set, in a fixed order.
    pub fn rules(self) -> Vec<Rule> {
        Rule::ALL
            .into_iter()
            .filter(|r| self.contains(*r))
            .collect()
    }

    /// The names of the rules in the set that only an explicit request may set aside (time
    /// off, closure): what the audit log records when one was actually set aside.
    pub fn listed_names(self) -> Vec<&'static str> {
        self.rules()
            .into_iter()
            .filter(|r| matches!(r, Rule::TimeOff | Rule::Closure))
            .map(Rule::as_str)
            .collect()
    }
}

/// The rulebook's yes: which of the overrides it was given were actually needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub overridden: Overrides,
}

/// Decides whether an appointment of the query's service may start at `start` with the
/// practitioner of `schedule`, given everything else already on the calendar (`schedule`'s
/// appointments must leave out one being moved) and the clinic's `closures`. Build the query
/// with [`availability::local_day_query`]. Refusals come in check_slot's order: notice and
/// horizon, grid and hours, closure, time off, taken.
pub fn decide(
    query: &SlotQuery,
    schedule: &PractitionerSchedule,
    closures: &[Range],
    start: DateTime<Utc>,
    overrides: Overrides,
) -> Result<Allowed, Unavailable> {
    if overrides.is_empty() {
        return availability::check_slot(query, schedule, closures, start).map(|()| Allowed {
            overridden: Overrides::NONE,
        });
    }
    use OutsideReason::*;
    let outside = |reason| Err(Unavailable::Outside(reason));
    let rules = query.rules;
    let mut overridden = Overrides::NONE;
    // Whether a rule that `hit` refuses; a hit that is overridden is noted instead.
    let refuses = |overridden: &mut Overrides, rule: Rule, hit: bool| -> bool {
        if hit && overrides.contains(rule) {
            *overridden = overridden.with(rule);
        }
        hit && !overrides.contains(rule)
    };
    if rules.duration_minutes == 0 {
        return outside(OffGrid);
    }
    let earliest = query
        .now
        .checked_add_signed(Duration::minutes(i64::from(rules.min_notice_minutes)));
    if refuses(
        &mut overridden,
        Rule::Notice,
        earliest.is_some_and(|e| start < e),
    ) {
        return outside(TooSoon);
    }
    let latest = query
        .now
        .checked_add_signed(Duration::days(i64::from(rules.max_advance_days)));
    if refuses(
        &mut overridden,
        Rule::Horizon,
        latest.is_some_and(|l| start > l),
    ) {
        return outside(TooFarAhead);
    }
    match working_hours(query, schedule, start, overrides.contains(Rule::Grid)) {
        Ok(()) => {}
        Err(reason) => {
            let rule = if reason == OffGrid {
                Rule::Grid
            } else {
                Rule::Hours
            };
            // Setting the hours aside sets the grid aside too: there is no grid outside them.
            let excused = overrides.contains(rule) || overrides.contains(Rule::Hours);
            if !excused {
                return outside(reason);
            }
            overridden = overridden.with(rule);
        }
    }
    let blocked = blocked_range(&rules, start);
    let hits = |ranges: &[Range]| blocked.is_some_and(|b| ranges.iter().any(|r| r.overlaps(&b)));
    if refuses(&mut overridden, Rule::Closure, hits(closures)) {
        return outside(Closed);
    }
    if refuses(&mut overridden, Rule::TimeOff, hits(&schedule.time_off)) {
        return outside(TimeOff);
    }
    // An appointment that cannot even be placed in time overlaps everything.
    if blocked.is_none() || hits(&schedule.appointments) {
        return Err(Unavailable::Taken);
    }
    Ok(Allowed { overridden })
}

/// Whether `start` lies on the grid within the practitioner's hours, asked of the slot engine
/// with nothing else on the calendar and notice and horizon out of the way.
fn working_hours(
    query: &SlotQuery,
    schedule: &PractitionerSchedule,
    start: DateTime<Utc>,
    grid_overridden: bool,
) -> Result<(), OutsideReason> {
    let bare = PractitionerSchedule {
        practitioner_id: schedule.practitioner_id,
        week: schedule.week.clone(),
        appointments: Vec::new(),
        time_off: Vec::new(),
    };
    let mut rules = query.rules;
    rules.min_notice_minutes = 0;
    rules.max_advance_days = 1;
    if grid_overridden {
        rules.step_minutes = rules.step_minutes.max(1);
    }
    let probe = SlotQuery {
        now: start,
        rules,
        ..*query
    };
    match availability::check_slot(&probe, &bare, &[], start) {
        Ok(()) => Ok(()),
        Err(Unavailable::Outside(reason)) => Err(reason),
        // Nothing is on the bare calendar, so nothing can be taken.
        Err(Unavailable::Taken) => Ok(()),
    }
}

/// What an appointment at `start` occupies: `[start − buffer before, end + buffer after)`;
/// `None` beyond the representable range of instants.
pub fn blocked_range(rules: &ServiceRules, start: DateTime<Utc>) -> Option<Range> {
    let minutes = |m: u32| Duration::minutes(i64::from(m));
    let from = start.checked_sub_signed(minutes(rules.buffer_before_minutes))?;
    let until = start
        .checked_add_signed(minutes(rules.duration_minutes))?
        .checked_add_signed(minutes(rules.buffer_after_minutes))?;
    Some(Range {
        start: from,
        end: until,
    })
}

#[cfg(test)]
mod tests {
    use chrono_tz::UTC;
    use uuid::Uuid;

    use super::*;
    use crate::domain::hours::WeeklyInterval;

    fn at(clock: &str) -> DateTime<Utc> {
        format!("2026-01-05T{clock}:00Z").parse().expect("instant")
    }

    fn range(from: &str, to: &str) -> Range {
        Range {
            start: at(from),
            end: at(to),
        }
    }

    /// Monday 2026-01-05, 09:00–17:00 UTC, 60-minute sessions on an hourly grid, asked at
    /// 08:00 the same day with two hours' notice and a one-day horizon.
    fn setup() -> (SlotQuery, PractitionerSchedule) {
        let rules = ServiceRules {
            duration_minutes: 60,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            step_minutes: 60,
            min_notice_minutes: 120,
            max_advance_days: 1,
        };
        let query = availability::local_day_query(UTC, at("08:00"), at("12:00"), rules);
        let schedule = PractitionerSchedule {
            practitioner_id: Uuid::from_u128(1),
            week: vec![WeeklyInterval {
                weekday: 0,
                start_minute: 9 * 60,
                end_minute: 17 * 60,
                valid_from: None,
                valid_until: None,
            }],
            appointments: vec![range("14:00", "15:00")],
            time_off: vec![range("15:00", "16:00")],
        };
        (query, schedule)
    }

    fn outside(reason: OutsideReason) -> Result<Allowed, Unavailable> {
        Err(Unavailable::Outside(reason))
    }

    #[test]
    fn without_overrides_the_rulebook_is_the_slot_check() {
        let (query, schedule) = setup();
        let closures = [range("16:00", "17:00")];
        for clock in [
            "09:00", "10:00", "10:30", "12:00", "14:00", "15:00", "16:00", "18:00",
        ] {
            let start = at(clock);
            assert_eq!(
                decide(&query, &schedule, &closures, start, Overrides::NONE).map(|_| ()),
                availability::check_slot(&query, &schedule, &closures, start),
                "{clock}"
            );
        }
    }

    #[test]
    fn staff_set_aside_grid_hours_and_notice_but_not_other_appointments() {
        let (query, schedule) = setup();
        let staff = Overrides::staff([]);
        // Within the notice, off the grid, after hours: all fine for staff.
        for clock in ["09:00", "12:30", "20:00"] {
            assert!(
                decide(&query, &schedule, &[], at(clock), staff).is_ok(),
                "{clock}"
            );
        }
        let allowed = decide(&query, &schedule, &[], at("20:00"), staff).expect("allowed");
        assert!(allowed.overridden.contains(Rule::Hours));
        assert_eq!(
            decide(&query, &schedule, &[], at("13:30"), staff),
            Err(Unavailable::Taken)
        );
        assert_eq!(
            decide(&query, &schedule, &[], at("14:00"), Overrides::NONE),
            Err(Unavailable::Taken)
        );
    }

    #[test]
    fn time_off_and_closures_refuse_staff_unless_listed() {
        let (query, schedule) = setup();
        let closures = [range("16:00", "17:00")];
        let staff = Overrides::staff([]);
        assert_eq!(
            decide(&query, &schedule, &closures, at("15:00"), staff),
            outside(OutsideReason::TimeOff)
        );
        assert_eq!(
            decide(&query, &schedule, &closures, at("16:00"), staff),
            outside(OutsideReason::Closed)
        );
        let listed = Overrides::staff([Rule::TimeOff, Rule::Closure]);
        let allowed = decide(&query, &schedule, &closures, at("16:00"), listed).expect("allowed");
        assert_eq!(allowed.overridden.listed_names(), ["closure"]);
        let allowed = decide(&query, &schedule, &closures, at("15:00"), listed).expect("allowed");
        assert_eq!(allowed.overridden.listed_names(), ["time_off"]);
        // Listing only the closure does not excuse the time off.
        assert_eq!(
            decide(
                &query,
                &schedule,
                &closures,
                at("15:00"),
                Overrides::staff([Rule::Closure])
            ),
            outside(OutsideReason::TimeOff)
        );
    }

    #[test]
    fn a_single_override_sets_aside_only_its_rule() {
        let (query, schedule) = setup();
        let notice_only = Overrides::NONE.with(Rule::Notice);
        // A waitlist claim: inside the notice is fine, off the grid or after hours is not.
        assert!(decide(&query, &schedule, &[], at("09:00"), notice_only).is_ok());
        assert_eq!(
            decide(&query, &schedule, &[], at("10:30"), notice_only),
            outside(OutsideReason::OffGrid)
        );
        assert_eq!(
            decide(&query, &schedule, &[], at("20:00"), notice_only),
            outside(OutsideReason::OutsideWorkingHours)
        );
        let grid_only = Overrides::NONE.with(Rule::Grid);
        assert!(decide(&query, &schedule, &[], at("12:30"), grid_only).is_ok());
        assert_eq!(
            decide(&query, &schedule, &[], at("09:00"), grid_only),
            outside(OutsideReason::TooSoon)
        );
    }
}
