//! Policy resolution: a service's own policy values over the clinic's (`policy.*`). The slot
//! listing, the rulebook and the manage link all read their rules from here.

use entity::service;

use crate::config::PolicySettings;

use super::availability::ServiceRules;

/// The rules the calendar applies to `s`: its duration and buffers, and each policy value the
/// service sets itself, else the clinic's.
pub fn rules_for(s: &service::Model, policy: &PolicySettings) -> ServiceRules {
    let over =
        |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    ServiceRules {
        duration_minutes: over(Some(s.duration_minutes), 0),
        buffer_before_minutes: over(Some(s.buffer_before_minutes), 0),
        buffer_after_minutes: over(Some(s.buffer_after_minutes), 0),
        step_minutes: over(s.slot_step_minutes, policy.slot_step_minutes),
        min_notice_minutes: over(s.min_notice_minutes, policy.min_notice_minutes),
        max_advance_days: over(s.max_advance_days, policy.max_advance_days),
    }
}

/// What a patient is changing through the manage link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientChange {
    Cancel,
    Reschedule,
}

/// The service's notice period for a patient's change, in hours.
pub fn notice_hours(s: &service::Model, policy: &PolicySettings, change: PatientChange) -> u32 {
    let (own, default) = match change {
        PatientChange::Reschedule => (s.reschedule_notice_hours, policy.reschedule_notice_hours),
        PatientChange::Cancel => (s.cancel_notice_hours, policy.cancel_notice_hours),
    };
    own.and_then(|h| u32::try_from(h).ok()).unwrap_or(default)
}
