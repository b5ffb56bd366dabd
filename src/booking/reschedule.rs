//! Moving a booking: by the patient through the manage link (to a free slot, within the
//! notice) or by staff (with staff overrides). The booking keeps its id and reference; the
//! old time is freed only when the new one is secured, because both happen in one UPDATE.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    domain::{
        booking::{self, BookingStatus},
        policy::{self, PatientChange},
        rulebook::{Overrides, Rule},
    },
    email::{self, BookingChange},
    state::AppState,
    store,
    waitlist::{self, Opening},
    webhooks::{self, EventType},
};

use super::{
    Actor, BookingDetails, BookingError, Context, ManageToken, audit_staff, email_view, placement,
    write_error,
};

/// Where a booking is to go.
#[derive(Debug, Clone)]
pub struct Move {
    pub start: DateTime<Utc>,
    /// Another practitioner offering the service; `None` keeps the current one.
    pub practitioner_id: Option<Uuid>,
    /// For staff: time off and closures the request sets aside (audited).
    pub overrides: Vec<Rule>,
}

/// Moves a booking. `manage_token` is the patient's own link when they act through it; a
/// staff move issues a fresh link for the patient's email (the earlier one stops working,
/// as only a hash of it is kept).
pub async fn reschedule(
    state: &AppState,
    appointment_id: Uuid,
    actor: Actor,
    to: Move,
    manage_token: Option<&str>,
) -> Result<BookingDetails, BookingError> {
    let fresh = match actor {
        Actor::Staff(_) => Some(ManageToken::generate()),
        Actor::Patient => None,
    };
    let txn = state.writer.begin().await?;
    let details = write_reschedule(
        &txn,
        Context::of(state),
        appointment_id,
        actor,
        &to,
        fresh,
        manage_token,
        Utc::now(),
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(details)
}

/// The reschedule's write: the booking's current time, practitioner and sequence, its
/// service's state, who offers it and the calendar are all read inside `txn`.
#[allow(clippy::too_many_arguments)]
pub async fn write_reschedule(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    appointment_id: Uuid,
    actor: Actor,
    to: &Move,
    fresh_token: Option<ManageToken>,
    manage_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<BookingDetails, BookingError> {
    let mut appt = store::bookings::find(txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let status = BookingStatus::parse(&appt.status).unwrap_or(BookingStatus::Cancelled);
    if status != BookingStatus::Confirmed {
        return Err(BookingError::NotChangeable(status.as_str()));
    }
    let service = store::catalogue::find_service(txn, appt.service_id)
        .await?
        .ok_or(DbErr::RecordNotFound("service".into()))?;
    // A deactivated service takes no new times; a patient also needs it bookable online.
    let offered = match actor {
        Actor::Patient => service.active && service.online_bookable,
        Actor::Staff(_) => service.active,
    };
    if !offered {
        return Err(BookingError::ServiceUnavailable);
    }
    if matches!(actor, Actor::Patient)
        && !booking::patient_may_change(
            status,
            appt.starts_at,
            policy::notice_hours(&service, &ctx.settings.policy, PatientChange::Reschedule),
            now,
        )
    {
        return Err(BookingError::TooLate);
    }
    // Without a new practitioner the booking stays with the one it has now.
    let requested = to.practitioner_id.unwrap_or(appt.practitioner_id);
    let (chosen, allowed) = match actor {
        Actor::Patient => {
            let candidates = placement::online_candidates(txn, service.id, Some(requested)).await?;
            placement::choose(
                txn,
                ctx,
                &service,
                &candidates,
                to.start,
                now,
                Some(appt.id),
                Overrides::NONE,
            )
            .await?
        }
        Actor::Staff(_) => {
            placement::staff_candidate(txn, &service, requested).await?;
            placement::choose(
                txn,
                ctx,
                &service,
                &[requested],
                to.start,
                now,
                Some(appt.id),
                Overrides::staff(to.overrides.iter().copied()),
            )
            .await?
        }
    };
    let previous_start = appt.starts_at;
    // The old time is free once the move commits: the waitlist may offer it.
    let freed = Opening::Slot {
        practitioner_id: appt.practitioner_id,
        from: appt.blocked_from,
        until: appt.blocked_until,
    };
    let (end, blocked_from, blocked_until) = placement::blocked(&service, to.start);
    appt.practitioner_id = chosen;
    appt.starts_at = to.start;
    appt.ends_at = end;
    appt.blocked_from = blocked_from;
    appt.blocked_until = blocked_until;
    appt.sequence += 1;
    appt.updated_at = now;
    // An erased booking has no link to renew.
    let fresh_token = fresh_token.filter(|_| appt.manage_token_hash.is_some());
    if let Some(token) = &fresh_token {
        appt.manage_token_hash = Some(token.hash.clone());
    }
    let appt = store::bookings::update(txn, appt)
        .await
        .map_err(write_error)?;
    waitlist::record_opening(txn, freed, now).await?;
    webhooks::emit_booking(txn, now, EventType::BookingRescheduled, &appt).await?;
    store::bookings::record_event(
        txn,
        appt.id,
        "rescheduled",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "from": previous_start, "to": to.start, "practitioner_id": chosen }),
        now,
    )
    .await?;
    audit_staff(
        txn,
        actor,
        "reschedule",
        appt.id,
        serde_json::json!({
            "from": previous_start,
            "to": to.start,
            "practitioner_id": chosen,
            "overrides": allowed.overridden.listed_names(),
        }),
    )
    .await?;
    let details = super::details(txn, appt).await?;
    let link = manage_token.or(fresh_token.as_ref().map(|t| t.plain.as_str()));
    let view = email_view(ctx.settings, &details, link);
    email::booking_changed(
        txn,
        ctx.settings,
        ctx.tz,
        BookingChange::Rescheduled {
            booking: &view,
            previous_start,
        },
    )
    .await?;
    Ok(details)
}
