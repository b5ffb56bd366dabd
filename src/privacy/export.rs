//! Subject access: every record held about a patient, read in one go and audited.

use entity::{
    appointment, appointment_event, audit_log, consent, enquiry, enquiry_note, idempotency_key,
    outbox_message, patient, waitlist_entry, waitlist_offer,
};

use crate::classes::SeatDetails;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::{state::AppState, store};

/// Everything held about one patient.
#[derive(Debug, Clone)]
pub struct Held {
    pub patient: patient::Model,
    /// Oldest first.
    pub consents: Vec<consent::Model>,
    /// Latest start first.
    pub appointments: Vec<appointment::Model>,
    /// The appointments' history, oldest first.
    pub events: Vec<appointment_event::Model>,
    /// Class seats, newest first, with their classes.
    pub seats: Vec<SeatDetails>,
    /// Enquiries sent from the patient's address, oldest first, with staff notes.
    pub enquiries: Vec<(enquiry::Model, Vec<enquiry_note::Model>)>,
    /// Emails to the patient or about their bookings, oldest first.
    pub emails: Vec<outbox_message::Model>,
    /// Audit rows about the patient or their bookings, oldest first.
    pub audit: Vec<audit_log::Model>,
    /// Stored replies to their idempotent booking requests.
    pub idempotent_replies: Vec<idempotency_key::Model>,
    /// Their waitlist entries, oldest first, each with the offers made to it.
    pub waitlist: Vec<(waitlist_entry::Model, Vec<waitlist_offer::Model>)>,
}

/// Reads everything held about the patient; `None` when there is no such patient.
pub async fn gather(state: &AppState, patient_id: Uuid) -> Result<Option<Held>, DbErr> {
    let db = &state.db;
    let Some(patient) = store::patients::find(db, patient_id).await? else {
        return Ok(None);
    };
    let appointments =
        store::patients::appointments(db, patient.id, store::patients::Scope::All).await?;
    let ids: Vec<Uuid> = appointments.iter().map(|a| a.id).collect();
    let events = store::patients::events_of(db, &ids).await?;
    let mut seats = Vec::new();
    for seat in store::classes::seats_of_patient(db, patient.id).await? {
        seats.push(crate::classes::seat_details(db, seat).await?);
    }
    // Emails, audit rows and stored replies about a seat are keyed by its id, as a booking's.
    let ids: Vec<Uuid> = ids
        .into_iter()
        .chain(seats.iter().map(|s| s.seat.id))
        .collect();
    let enquiries = match &patient.email {
        Some(email) => store::patients::enquiries_from(db, email).await?,
        None => Vec::new(),
    };
    let emails = store::patients::emails(db, patient.email.as_deref(), &ids).await?;
    let consents = store::patients::consents(db, patient.id).await?;
    let audit = store::privacy::audit_about(db, patient.id, &ids).await?;
    let idempotent_replies = store::privacy::idempotent_replies_about(db, &ids).await?;
    let entries = store::waitlist::entries_of_patient(db, patient.id).await?;
    let entry_ids: Vec<Uuid> = entries.iter().map(|e| e.id).collect();
    let mut offers = store::waitlist::offers_to(db, &entry_ids).await?;
    offers.sort_by_key(|o| o.created_at);
    let waitlist = entries
        .into_iter()
        .map(|e| {
            let mine = offers
                .iter()
                .filter(|o| o.entry_id == e.id)
                .cloned()
                .collect();
            (e, mine)
        })
        .collect();
    Ok(Some(Held {
        patient,
        consents,
        appointments,
        events,
        seats,
        enquiries,
        emails,
        audit,
        idempotent_replies,
        waitlist,
    }))
}

/// Gathers the export and records in the audit log (with counts only) that `staff_id` took
/// it.
pub async fn export(
    state: &AppState,
    patient_id: Uuid,
    staff_id: Uuid,
) -> Result<Option<Held>, DbErr> {
    let Some(held) = gather(state, patient_id).await? else {
        return Ok(None);
    };
    let txn = store::begin_write(&state.db).await?;
    store::audit::record(
        &txn,
        Some(staff_id),
        "export",
        "patient",
        Some(patient_id),
        serde_json::json!({
            "appointments": held.appointments.len(),
            "seats": held.seats.len(),
            "enquiries": held.enquiries.len(),
            "waitlist_entries": held.waitlist.len(),
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(Some(held))
}
