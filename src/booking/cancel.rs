//! Cancelling a booking: by the patient through the manage link (within the notice), by
//! staff at any time, and by the clinic when time off or a closure takes the time away.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    domain::{
        booking::{self, BookingStatus},
        policy::{self, PatientChange},
    },
    email::{self, BookingChange},
    state::AppState,
    store,
    waitlist::{self, Opening},
    webhooks::{self, EventType},
};

use super::{Actor, BookingDetails, BookingError, Context, audit_staff, email_view};

/// Why a booking is cancelled and what the patient is told.
#[derive(Debug, Clone, Default)]
pub struct Cancellation {
    /// Stored on the booking and in its history (may be free text: erasure removes it).
    pub reason: Option<String>,
    /// The code the audit log records (never free text); `None` for a patient's own change.
    pub code: Option<String>,
    /// The reason the patient's email gives, when it differs from `reason`.
    pub told: Option<String>,
}

impl Cancellation {
    /// A patient's own cancellation with their optional reason.
    pub fn by_patient(reason: Option<String>) -> Self {
        Self {
            reason,
            ..Self::default()
        }
    }

    /// A staff cancellation: a reason code and an optional note.
    pub fn by_staff(code: &str, note: Option<&str>) -> Self {
        Self {
            reason: Some(match note {
                Some(note) => format!("{code}: {note}"),
                None => code.to_string(),
            }),
            code: Some(code.to_string()),
            ..Self::default()
        }
    }
}

/// Cancels a booking. Cancelling a cancelled booking changes nothing and succeeds.
/// Patients must be within the notice period; staff may cancel at any time.
pub async fn cancel(
    state: &AppState,
    appointment_id: Uuid,
    actor: Actor,
    why: Cancellation,
    manage_token: Option<&str>,
) -> Result<BookingDetails, BookingError> {
    let txn = state.writer.begin().await?;
    let details = write_cancellation(
        &txn,
        Context::of(state),
        appointment_id,
        actor,
        &why,
        manage_token,
        Utc::now(),
    )
    .await?;
    txn.commit().await?;
    Ok(details)
}

/// The cancellation's write: the booking and its service are read inside `txn`; the
/// history, the audit row, the emails and the voiding of reminders are written in it.
pub async fn write_cancellation(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    appointment_id: Uuid,
    actor: Actor,
    why: &Cancellation,
    manage_token: Option<&str>,
    now: DateTime<Utc>,
) -> Result<BookingDetails, BookingError> {
    let mut appt = store::bookings::find(txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let status = BookingStatus::parse(&appt.status).unwrap_or(BookingStatus::Cancelled);
    if status == BookingStatus::Cancelled {
        return Ok(super::details(txn, appt).await?);
    }
    let service = store::catalogue::find_service(txn, appt.service_id)
        .await?
        .ok_or(DbErr::RecordNotFound("service".into()))?;
    // Only a booking still ahead of its visit can be cancelled, by anyone; an arrived,
    // completed or no-show booking is history.
    if status != BookingStatus::Confirmed {
        return Err(BookingError::NotChangeable(status.as_str()));
    }
    if matches!(actor, Actor::Patient)
        && !booking::patient_may_change(
            status,
            appt.starts_at,
            policy::notice_hours(&service, &ctx.settings.policy, PatientChange::Cancel),
            now,
        )
    {
        return Err(BookingError::TooLate);
    }
    appt.status = BookingStatus::Cancelled.as_str().to_string();
    appt.cancel_reason = why.reason.clone();
    // Calendar clients (Outlook especially) want a CANCEL to outrank the last REQUEST.
    appt.sequence += 1;
    appt.updated_at = now;
    let appt = store::bookings::update(txn, appt).await?;
    // The time is free again: the waitlist may offer it once the grace period has passed.
    waitlist::record_opening(
        txn,
        Opening::Slot {
            practitioner_id: appt.practitioner_id,
            from: appt.blocked_from,
            until: appt.blocked_until,
        },
        now,
    )
    .await?;
    webhooks::emit_booking(txn, now, EventType::BookingCancelled, &appt).await?;
    store::bookings::record_event(
        txn,
        appt.id,
        "cancelled",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "reason": why.reason }),
        now,
    )
    .await?;
    audit_staff(
        txn,
        actor,
        "cancel",
        appt.id,
        serde_json::json!({ "reason": why.code }),
    )
    .await?;
    let details = super::details(txn, appt).await?;
    let view = email_view(ctx.settings, &details, manage_token);
    email::booking_changed(
        txn,
        ctx.settings,
        ctx.tz,
        BookingChange::Cancelled {
            booking: &view,
            reason: why.told.as_deref().or(why.reason.as_deref()),
        },
    )
    .await?;
    Ok(details)
}
