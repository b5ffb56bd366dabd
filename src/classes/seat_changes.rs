//! Changes to existing seats: cancelled by the patient through the manage link (within the
//! cancel notice) or by staff, and marked attended or no-show. Each frees or keeps exactly
//! its own place.

use chrono::Utc;
use uuid::Uuid;

use crate::{
    booking::Actor,
    domain::{
        booking as booking_rules,
        classes::SeatStatus,
        policy::{self, PatientChange},
    },
    email::{self, SeatChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{ClassError, SeatDetails, audit, seat_email, seats::seat_details};

/// Cancels a seat and frees exactly its place. Patients must be within the class service's
/// cancel notice; staff may cancel any time. Cancelling a cancelled seat changes nothing.
pub async fn cancel_seat(
    state: &AppState,
    seat_id: Uuid,
    actor: Actor,
    reason: Option<String>,
) -> Result<SeatDetails, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let session_id = store::classes::find_seat(&*txn, seat_id)
        .await?
        .ok_or(ClassError::NotFound("seat"))?
        .class_session_id;
    // Session before seat, the order every class write locks in, so a seat cancellation
    // and a class cancellation never wait for each other (PostgreSQL).
    store::classes::find_session_for_update(&*txn, session_id).await?;
    let seat = store::classes::find_seat_for_update(&*txn, seat_id)
        .await?
        .ok_or(ClassError::NotFound("seat"))?;
    if seat.status == SeatStatus::Cancelled.as_str() {
        let details = seat_details(&*txn, seat).await?;
        txn.commit().await?;
        return Ok(details);
    }
    if seat.status != SeatStatus::Confirmed.as_str() {
        return Err(ClassError::NotChangeable(
            SeatStatus::parse(&seat.status).map_or("closed", |s| s.as_str()),
        ));
    }
    let details = seat_details(&*txn, seat).await?;
    if let Actor::Patient = actor {
        let hours = policy::notice_hours(
            &details.class.service,
            &state.settings.policy,
            PatientChange::Cancel,
        );
        if now > booking_rules::change_deadline(details.class.session.starts_at, hours) {
            return Err(ClassError::TooLate);
        }
    }
    let mut next = details.seat.clone();
    next.status = SeatStatus::Cancelled.as_str().to_string();
    next.cancel_reason = reason;
    next.updated_at = now;
    let seat = store::classes::update_seat(&*txn, next).await?;
    store::classes::release_seat(&*txn, seat.class_session_id, now).await?;
    // The place is free: the waitlist may offer it once the grace period has passed.
    crate::waitlist::record_opening(
        &*txn,
        crate::waitlist::Opening::Class(seat.class_session_id),
        now,
    )
    .await?;
    webhooks::emit_seat(&*txn, now, EventType::ClassSeatCancelled, &seat).await?;
    if let Actor::Staff(staff_id) = actor {
        audit(
            &*txn,
            staff_id,
            "cancel",
            "class_seat",
            seat.id,
            serde_json::json!({ "class_id": seat.class_session_id }),
        )
        .await?;
    }
    let details = seat_details(&*txn, seat).await?;
    let view = seat_email(
        &state.settings,
        &details.seat,
        &details.class,
        &details.patient,
        None,
    );
    email::seat_changed(
        &*txn,
        &state.settings,
        state.tz,
        SeatChange::SeatCancelled(&view),
    )
    .await?;
    txn.commit().await?;
    Ok(details)
}

/// Records whether a seat holder came (`attended` or `no_show`); a cancelled seat refuses.
pub async fn record_seat_attendance(
    state: &AppState,
    seat_id: Uuid,
    status: SeatStatus,
    staff_id: Uuid,
) -> Result<SeatDetails, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let seat = store::classes::find_seat_for_update(&*txn, seat_id)
        .await?
        .ok_or(ClassError::NotFound("seat"))?;
    if seat.status == SeatStatus::Cancelled.as_str() {
        return Err(ClassError::NotChangeable("cancelled"));
    }
    let mut next = seat;
    next.status = status.as_str().to_string();
    next.updated_at = now;
    let seat = store::classes::update_seat(&*txn, next).await?;
    audit(
        &*txn,
        staff_id,
        "attendance",
        "class_seat",
        seat.id,
        serde_json::json!({ "status": seat.status }),
    )
    .await?;
    let details = seat_details(&*txn, seat).await?;
    txn.commit().await?;
    Ok(details)
}
