//! Where an appointment may go: reads the practitioners' calendars inside the caller's write
//! transaction and asks the rulebook (`domain::rulebook::decide`). Every path that places or
//! moves an appointment comes through here, with its overrides.

use chrono::{DateTime, Duration, Utc};
use entity::service;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        availability::{self, OutsideReason, Unavailable},
        localtime, policy,
        rulebook::{self, Allowed, Overrides},
    },
    store,
};

use super::{BookingError, Context};

/// Which of a service's practitioners an online booking or a patient's move may go to, read
/// inside the transaction: active, online-bookable practitioners offering it.
pub(super) async fn online_candidates(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    requested: Option<Uuid>,
) -> Result<Vec<Uuid>, BookingError> {
    let offering = store::catalogue::public_practitioner_ids_for(conn, service_id).await?;
    candidates_among(conn, offering, requested).await
}

/// [`online_candidates`] from the practitioners offering the service, as already read.
pub(super) async fn candidates_among(
    conn: &impl ConnectionTrait,
    offering: Vec<Uuid>,
    requested: Option<Uuid>,
) -> Result<Vec<Uuid>, BookingError> {
    match requested {
        None => Ok(offering),
        Some(pid) if offering.contains(&pid) => Ok(vec![pid]),
        Some(pid) => {
            if store::catalogue::find_practitioner(conn, pid)
                .await?
                .is_some()
            {
                Err(BookingError::NotOffered)
            } else {
                Err(BookingError::Invalid(vec![FieldError::new(
                    "practitioner_id",
                    "no such practitioner",
                )]))
            }
        }
    }
}

/// Checks that a staff booking's practitioner is active and offers the service, read inside
/// the transaction.
pub(super) async fn staff_candidate(
    txn: &DatabaseTransaction,
    service: &service::Model,
    practitioner_id: Uuid,
) -> Result<(), BookingError> {
    let practitioner = store::catalogue::find_practitioner(txn, practitioner_id)
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new(
                "practitioner_id",
                "no such active practitioner",
            )])
        })?;
    let links = store::catalogue::links(txn).await?;
    if links
        .iter()
        .any(|l| l.practitioner_id == practitioner.id && l.service_id == service.id)
    {
        Ok(())
    } else {
        Err(BookingError::NotOffered)
    }
}

/// Decides which of `candidates` gets `start`, on what `conn` reads now (the write
/// transaction; on PostgreSQL an online booking may read just before its one insert, the
/// exclusion constraint refusing whatever overlaps in between). Among the ones the rulebook
/// allows, the one with the fewest active appointments that local day wins (ties: lowest id).
/// `except` is the appointment being moved.
#[allow(clippy::too_many_arguments)]
pub(super) async fn choose(
    conn: &impl ConnectionTrait,
    ctx: Context<'_>,
    service: &service::Model,
    candidates: &[Uuid],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    except: Option<Uuid>,
    overrides: Overrides,
) -> Result<(Uuid, Allowed), BookingError> {
    let (from, until) = read_window(ctx, service, candidates.len(), start, now);
    let (schedules, closures) =
        store::availability::load(conn, candidates, from, until, except).await?;
    decide(ctx, service, &schedules, &closures, start, now, overrides)
}

/// What [`choose`] reads of the calendars for `candidate_count` candidates: the rulebook asks
/// of appointments, time off and closures only whether they overlap the blocked range, so that
/// is all it is fed; with a choice to make, the local day too, for the load. (An
/// unrepresentable range is refused as taken; the wide read is then moot.)
pub(super) fn read_window(
    ctx: Context<'_>,
    service: &service::Model,
    candidate_count: usize,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let tz = ctx.tz;
    let rules = policy::rules_for(service, &ctx.settings.policy);
    let (day_start, day_end) = local_day(ctx, start);
    match rulebook::blocked_range(&rules, start) {
        Some(b) if candidate_count == 1 => (b.start, b.end),
        Some(b) => (b.start.min(day_start), b.end.max(day_end)),
        None => {
            // The query spans the neighbouring local dates too.
            let query = availability::local_day_query(tz, now, start, rules);
            let span_start = localtime::instant_at(tz, query.from, 0);
            let span_end = localtime::instant_at(tz, query.to, 24 * 60);
            (
                span_start.min(start) - Duration::days(1),
                span_end.max(start) + Duration::days(1),
            )
        }
    }
}

/// The local day of `start`, as instants: the load is counted on it.
fn local_day(ctx: Context<'_>, start: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = localtime::local_date(ctx.tz, start);
    (
        localtime::instant_at(ctx.tz, day, 0),
        localtime::instant_at(ctx.tz, day, 24 * 60),
    )
}

/// [`choose`]'s decision on calendars already read over its [`read_window`].
pub(super) fn decide(
    ctx: Context<'_>,
    service: &service::Model,
    schedules: &[availability::PractitionerSchedule],
    closures: &[availability::Range],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    overrides: Overrides,
) -> Result<(Uuid, Allowed), BookingError> {
    let rules = policy::rules_for(service, &ctx.settings.policy);
    let query = availability::local_day_query(ctx.tz, now, start, rules);
    let (day_start, day_end) = local_day(ctx, start);
    let mut best: Option<(usize, Uuid, Allowed)> = None;
    let mut first_refusal: Option<Unavailable> = None;
    for schedule in schedules {
        match rulebook::decide(&query, schedule, closures, start, overrides) {
            Ok(allowed) => {
                let load = schedule
                    .appointments
                    .iter()
                    .filter(|a| a.start < day_end && a.end > day_start)
                    .count();
                let better = match best {
                    None => true,
                    Some((best_load, best_id, _)) => {
                        (load, schedule.practitioner_id) < (best_load, best_id)
                    }
                };
                if better {
                    best = Some((load, schedule.practitioner_id, allowed));
                }
            }
            // "Taken" wins over "outside": the slot exists but someone got it first.
            Err(Unavailable::Taken) => first_refusal = Some(Unavailable::Taken),
            Err(other) => {
                if first_refusal.is_none() {
                    first_refusal = Some(other);
                }
            }
        }
    }
    match (best, first_refusal) {
        (Some((_, id, allowed)), _) => Ok((id, allowed)),
        (None, Some(Unavailable::Taken)) => Err(BookingError::SlotUnavailable),
        (None, Some(Unavailable::Outside(reason))) => Err(BookingError::Outside(reason)),
        (None, None) => Err(BookingError::Outside(OutsideReason::OutsideWorkingHours)),
    }
}

/// The instants an appointment of `service` at `start` occupies: (end, blocked from, blocked
/// until).
pub(crate) fn blocked(
    service: &service::Model,
    start: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let minutes = |m: i32| Duration::minutes(i64::from(m.max(0)));
    let end = start + minutes(service.duration_minutes);
    (
        end,
        start - minutes(service.buffer_before_minutes),
        end + minutes(service.buffer_after_minutes),
    )
}
