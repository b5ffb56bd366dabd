//! Attendance: arrived, completed, no-show.

use chrono::Utc;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::{
    domain::booking::BookingStatus,
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{Actor, BookingDetails, BookingError, audit_staff};

/// Records attendance: a confirmed booking may become arrived, completed or no_show; an
/// arrived one completed or no_show. Setting the current status again changes nothing.
pub async fn record_attendance(
    state: &AppState,
    appointment_id: Uuid,
    staff_id: Uuid,
    next: BookingStatus,
) -> Result<BookingDetails, BookingError> {
    use BookingStatus::*;
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let mut appt = store::bookings::find(&txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let current = BookingStatus::parse(&appt.status).unwrap_or(Cancelled);
    if current != next {
        let allowed = matches!(
            (current, next),
            (Confirmed, Arrived | Completed | NoShow) | (Arrived, Completed | NoShow)
        );
        if !allowed || !matches!(next, Arrived | Completed | NoShow) {
            return Err(BookingError::NotChangeable(current.as_str()));
        }
        appt.status = next.as_str().to_string();
        appt.updated_at = now;
        appt = store::bookings::update(&txn, appt).await?;
        webhooks::emit_booking(&txn, now, EventType::BookingAttendance, &appt).await?;
        store::bookings::record_event(
            &txn,
            appt.id,
            next.as_str(),
            "staff",
            Some(staff_id),
            serde_json::json!({ "from": current.as_str() }),
            now,
        )
        .await?;
        audit_staff(
            &txn,
            Actor::Staff(staff_id),
            "attendance",
            appt.id,
            serde_json::json!({ "from": current.as_str(), "to": next.as_str() }),
        )
        .await?;
    }
    let details = super::details(&txn, appt).await?;
    txn.commit().await?;
    Ok(details)
}
