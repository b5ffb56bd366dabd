//! Which patient record a booking uses, and the one way stored details change.
//!
//! A booking never changes an existing patient: the public form is open to anyone who types
//! an address, and a practitioner's booking must not rewrite (or reveal) another patient's
//! record. Admin and reception change stored details with [`update`] (audited, codes only).

use chrono::{DateTime, Utc};
use entity::patient;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        booking::PatientDetails,
        text::{EmailAddress, PersonName, PhoneNumber},
    },
    state::AppState,
    store,
};

use super::StaffBooking;

/// The patient an online booking is for: the existing record with this address, untouched,
/// or a new one from the request (then `true`).
pub async fn for_public_booking(
    conn: &impl ConnectionTrait,
    details: &PatientDetails,
    now: DateTime<Utc>,
) -> Result<(patient::Model, bool), DbErr> {
    store::patients::find_or_insert_by_email(
        conn,
        details.email.as_str(),
        details.name.as_str(),
        details.phone.as_ref().map(|p| p.as_str()),
        now,
    )
    .await
}

/// The patient a staff booking is for: the existing record with the address, untouched, a
/// new one with it, or (without an address) a new record.
pub(super) async fn for_staff_booking(
    txn: &DatabaseTransaction,
    request: &StaffBooking,
    now: DateTime<Utc>,
) -> Result<patient::Model, DbErr> {
    let phone = request.patient_phone.as_ref().map(|p| p.as_str());
    match &request.patient_email {
        Some(email) => {
            store::patients::find_or_create_by_email(
                txn,
                email.as_str(),
                request.patient_name.as_str(),
                phone,
                now,
            )
            .await
        }
        None => {
            store::patients::insert_without_email(txn, request.patient_name.as_str(), phone, now)
                .await
        }
    }
}

/// A change to a patient's stored details; `None` leaves a field as it is, `Some(None)`
/// clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct PatientUpdate {
    pub name: Option<PersonName>,
    pub email: Option<Option<EmailAddress>>,
    pub phone: Option<Option<PhoneNumber>>,
}

/// Why a patient update was refused.
#[derive(Debug, thiserror::Error)]
pub enum PatientUpdateError {
    #[error("no such patient")]
    NotFound,
    #[error("the patient was erased")]
    Erased,
    #[error("another patient has this address")]
    EmailTaken,
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Changes a patient's stored details (admin, reception), audited with the names of the
/// changed fields only.
pub async fn update(
    state: &AppState,
    patient_id: Uuid,
    change: PatientUpdate,
    staff_id: Uuid,
) -> Result<patient::Model, PatientUpdateError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let patient = write_update(&txn, patient_id, change, staff_id, now).await?;
    txn.commit().await.map_err(|e| {
        if store::is_unique_violation(&e) {
            PatientUpdateError::EmailTaken
        } else {
            PatientUpdateError::Database(e)
        }
    })?;
    Ok(patient)
}

/// The update's write: the patient (locked) and any holder of the new address are read
/// inside `txn`.
pub async fn write_update(
    txn: &DatabaseTransaction,
    patient_id: Uuid,
    change: PatientUpdate,
    staff_id: Uuid,
    now: DateTime<Utc>,
) -> Result<patient::Model, PatientUpdateError> {
    let current = store::patients::find_for_update(txn, patient_id)
        .await?
        .ok_or(PatientUpdateError::NotFound)?;
    if current.erased_at.is_some() {
        return Err(PatientUpdateError::Erased);
    }
    let mut next = current.clone();
    if let Some(name) = &change.name {
        next.name = name.as_str().to_string();
    }
    if let Some(email) = &change.email {
        let email = email.as_ref().map(|e| e.as_str().to_string());
        if let Some(address) = &email
            && let Some(holder) = store::patients::find_by_email(txn, address).await?
            && holder.id != current.id
        {
            return Err(PatientUpdateError::EmailTaken);
        }
        next.email = email;
    }
    if let Some(phone) = &change.phone {
        next.phone = phone.as_ref().map(|p| p.as_str().to_string());
    }
    let mut fields = Vec::new();
    if next.name != current.name {
        fields.push("name");
    }
    if next.email != current.email {
        fields.push("email");
    }
    if next.phone != current.phone {
        fields.push("phone");
    }
    if fields.is_empty() {
        return Ok(current);
    }
    next.updated_at = now;
    let updated = store::patients::update(txn, next).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            PatientUpdateError::EmailTaken
        } else {
            PatientUpdateError::Database(e)
        }
    })?;
    store::audit::record(
        txn,
        Some(staff_id),
        "update",
        "patient",
        Some(patient_id),
        serde_json::json!({ "fields": fields }),
    )
    .await?;
    Ok(updated)
}
