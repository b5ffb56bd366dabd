//! Enquiry intake: a parsed contact-form submission becomes a stored enquiry, with the staff
//! notification (Reply-To the enquirer) and the acknowledgement written into the outbox in
//! the same transaction. A double submit within a few minutes is stored once; the honeypot's
//! catch is stored as spam and emails nobody.

use chrono::{DateTime, Duration, Utc};
use entity::enquiry;
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::{
        FieldError,
        booking::new_reference,
        enquiry::{EnquiryStatus, NewEnquiry},
    },
    email::{self, EmailKind, Recipient},
    state::AppState,
    store,
};

/// A double submit of the same message from the same address within this window is stored once.
const DUPLICATE_WINDOW_MINUTES: i64 = 10;

/// A parsed submission and what the edge knows about it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub enquiry: NewEnquiry,
    /// A service the enquiry is about (checked inside the transaction).
    pub service_id: Option<Uuid>,
    /// The honeypot was filled in.
    pub is_spam: bool,
    /// A one-way hash of the client address.
    pub ip_hash: String,
}

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("invalid submission")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Receives a submission; returns the reference to quote (the earlier one for a double
/// submit).
pub async fn receive(state: &AppState, submission: Submission) -> Result<String, IntakeError> {
    let txn = store::begin_write(&state.db).await?;
    let reference = write_intake(&txn, &state.settings, &submission, Utc::now()).await?;
    txn.commit().await?;
    Ok(reference)
}

/// The intake's write: the service and any earlier identical submission are read inside
/// `txn`.
pub async fn write_intake(
    txn: &DatabaseTransaction,
    settings: &Settings,
    submission: &Submission,
    now: DateTime<Utc>,
) -> Result<String, IntakeError> {
    let new = &submission.enquiry;
    if let Some(service_id) = submission.service_id
        && store::catalogue::find_service(txn, service_id)
            .await?
            .is_none()
    {
        return Err(IntakeError::Invalid(vec![FieldError::new(
            "service_id",
            "no such service",
        )]));
    }
    if let Some(earlier) = store::enquiries::find_duplicate(
        txn,
        new.email.as_str(),
        &new.message,
        now - Duration::minutes(DUPLICATE_WINDOW_MINUTES),
    )
    .await?
    {
        return Ok(earlier.reference);
    }
    let status = if submission.is_spam {
        EnquiryStatus::Spam
    } else {
        EnquiryStatus::New
    };
    let row = store::enquiries::insert(
        txn,
        enquiry::Model {
            id: Uuid::new_v4(),
            reference: format!("E{}", new_reference()),
            status: status.as_str().to_string(),
            name: new.name.as_str().to_string(),
            email: new.email.as_str().to_string(),
            phone: new.phone.as_ref().map(|p| p.as_str().to_string()),
            topic: new.topic.as_str().to_string(),
            service_id: submission.service_id,
            message: new.message.clone(),
            preferred_contact: new.preferred_contact.as_str().to_string(),
            marketing_consent: new.marketing_consent,
            ip_hash: submission.ip_hash.clone(),
            assignee_id: None,
            received_at: now,
            updated_at: now,
        },
    )
    .await?;
    if submission.is_spam {
        tracing::info!(domain = %new.email.domain(), "enquiry caught by the honeypot");
        return Ok(row.reference);
    }
    crate::webhooks::emit_enquiry(txn, now, &row).await?;
    let enquirer = Recipient::new(row.email.clone(), row.name.clone());
    let vars: Vec<(&str, &str)> = vec![
        ("reference", &row.reference),
        ("name", &row.name),
        ("email", &row.email),
        ("phone", row.phone.as_deref().unwrap_or("")),
        ("topic", &row.topic),
        ("message", &row.message),
        ("preferred_contact", &row.preferred_contact),
        ("response_time", &settings.enquiries.response_time),
    ];
    email::enqueue(
        txn,
        settings,
        EmailKind::EnquiryReceived,
        &Recipient::staff_inbox(settings),
        Some(&enquirer),
        &vars,
    )
    .await?;
    email::enqueue(txn, settings, EmailKind::EnquiryAck, &enquirer, None, &vars).await?;
    Ok(row.reference)
}
