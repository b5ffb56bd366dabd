//! Erasure: the patient's future confirmed bookings are cancelled first, as staff, so they
//! hear of it while their address is still known; then one transaction anonymises every copy
//! of their data (`store::privacy::erase`). The cancellation emails it queued keep the
//! patient's details only until each is sent or dead (see `retention::purge`).

use chrono::{DateTime, Utc};
use entity::patient;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::{
    booking::{self, Actor, BookingError, Cancellation},
    classes::{self, ClassError},
    state::AppState,
    store::{self, privacy::Erasure},
};

/// The reason given on bookings cancelled by an erasure (shown in the cancellation email).
const ERASURE_CANCEL_REASON: &str = "Your personal data was erased from our records.";

/// The audit code of those cancellations.
const ERASURE_CODE: &str = "erasure";

/// How often erasure re-cancels when a new booking arrives while it runs.
const ERASURE_ROUNDS: usize = 3;

/// The outcome of an erasure.
#[derive(Debug, Clone)]
pub struct Erased {
    /// The patient as now stored.
    pub patient: patient::Model,
    pub erased_at: DateTime<Utc>,
    /// True when the patient had been erased before; nothing was changed this time.
    pub already_erased: bool,
    /// References of the future bookings and class seats that were cancelled (with emails)
    /// before erasing.
    pub cancelled: Vec<String>,
    pub changed: Erasure,
}

/// Why an erasure did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("no such patient")]
    NotFound,
    /// New bookings kept arriving; the future ones are cancelled but nothing is erased yet.
    #[error("erasure interrupted")]
    Interrupted,
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Class(#[from] ClassError),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Erases a patient's personal data on behalf of `staff_id`. Erasing again changes nothing.
pub async fn erase(
    state: &AppState,
    patient_id: Uuid,
    staff_id: Uuid,
) -> Result<Erased, ErasureError> {
    let since = Utc::now();
    let mut cancelled = Vec::new();
    let mut cancelled_ids = Vec::new();
    for _ in 0..ERASURE_ROUNDS {
        let patient = store::patients::find(&state.db, patient_id)
            .await?
            .ok_or(ErasureError::NotFound)?;
        if let Some(erased_at) = patient.erased_at {
            return Ok(Erased {
                patient,
                erased_at,
                already_erased: cancelled.is_empty(),
                cancelled,
                changed: Erasure::default(),
            });
        }
        let now = Utc::now();
        // Each cancellation is its own transaction with its emails, as when staff cancel.
        for appt in store::patients::upcoming_confirmed(&state.db, patient_id, now).await? {
            let d = booking::cancel(
                state,
                appt.id,
                Actor::Staff(staff_id),
                Cancellation {
                    reason: Some(ERASURE_CANCEL_REASON.to_string()),
                    code: Some(ERASURE_CODE.to_string()),
                    told: None,
                },
                None,
            )
            .await?;
            cancelled.push(d.appointment.reference);
            cancelled_ids.push(d.appointment.id);
        }
        // Class seats likewise: the place is freed and the patient told.
        for seat in store::classes::upcoming_seats(&state.db, patient_id, now).await? {
            let d = classes::cancel_seat(
                state,
                seat.id,
                Actor::Staff(staff_id),
                Some(ERASURE_CODE.to_string()),
            )
            .await?;
            cancelled.push(d.seat.reference);
            cancelled_ids.push(d.seat.id);
        }
        let txn = store::begin_write(&state.db).await?;
        // Locked first: a booking for this patient either committed before (and is seen
        // below) or waits and then no longer finds the erased address.
        let Some(patient) = store::patients::find_for_update(&txn, patient_id).await? else {
            return Err(ErasureError::NotFound);
        };
        if patient.erased_at.is_some() {
            txn.commit().await?;
            continue;
        }
        if !store::patients::upcoming_confirmed(&txn, patient_id, now)
            .await?
            .is_empty()
            || !store::classes::upcoming_seats(&txn, patient_id, now)
                .await?
                .is_empty()
        {
            // A booking arrived meanwhile: cancel it too, then try again.
            txn.rollback().await?;
            continue;
        }
        // Off the waiting list: an offer they hold passes to the next entry.
        crate::waitlist::entries::end_for_patient(&txn, patient_id, now).await?;
        let (patient, changed) =
            store::privacy::erase(&txn, patient, &cancelled_ids, since, now).await?;
        store::audit::record(
            &txn,
            Some(staff_id),
            "erase",
            "patient",
            Some(patient_id),
            serde_json::json!({
                "cancelled_bookings": cancelled.len(),
                "appointments_kept": changed.appointments,
                "enquiries_anonymised": changed.enquiries,
                "emails_scrubbed": changed.emails,
            }),
        )
        .await?;
        txn.commit().await?;
        return Ok(Erased {
            patient,
            erased_at: now,
            already_erased: false,
            cancelled,
            changed,
        });
    }
    Err(ErasureError::Interrupted)
}
