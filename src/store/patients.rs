//! Patients and their consents.

use chrono::{DateTime, Utc};
use entity::{consent, patient};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, Set,
};
use uuid::Uuid;

use crate::domain::booking::PatientDetails;

/// Finds the patient with this email or creates one; name and phone are updated to the
/// latest the patient gave.
pub async fn upsert_by_email(
    conn: &impl ConnectionTrait,
    details: &PatientDetails,
    now: DateTime<Utc>,
) -> Result<patient::Model, DbErr> {
    let email = details.email.as_str();
    let existing = patient::Entity::find()
        .filter(patient::Column::Email.eq(email))
        .one(conn)
        .await?;
    let phone = details.phone.as_ref().map(|p| p.as_str().to_string());
    match existing {
        Some(found) => {
            let mut row = found.into_active_model();
            row.name = Set(details.name.as_str().to_string());
            if phone.is_some() {
                row.phone = Set(phone);
            }
            row.updated_at = Set(now);
            row.update(conn).await
        }
        None => {
            patient::ActiveModel {
                id: Set(Uuid::new_v4()),
                name: Set(details.name.as_str().to_string()),
                email: Set(Some(email.to_string())),
                phone: Set(phone),
                created_at: Set(now),
                updated_at: Set(now),
                erased_at: Set(None),
            }
            .insert(conn)
            .await
        }
    }
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<patient::Model>, DbErr> {
    patient::Entity::find_by_id(id).one(conn).await
}

/// Records the consents given with a booking or enquiry, with time and source.
pub async fn record_consents(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    privacy: bool,
    marketing: bool,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows = [("privacy", privacy), ("marketing", marketing)].map(|(kind, granted)| {
        consent::ActiveModel {
            id: Set(Uuid::new_v4()),
            patient_id: Set(patient_id),
            kind: Set(kind.to_string()),
            granted: Set(granted),
            at: Set(now),
            source: Set(source.to_string()),
        }
    });
    consent::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
