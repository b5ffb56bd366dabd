//! An appointment: a patient's session with a practitioner, and the range it blocks.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "appointments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub reference: String,
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub patient_id: Uuid,
    pub status: String,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    /// `starts_at` minus the service's buffer before.
    pub blocked_from: DateTimeUtc,
    /// `ends_at` plus the service's buffer after.
    pub blocked_until: DateTimeUtc,
    pub source: String,
    pub notes: String,
    pub manage_token_hash: Option<String>,
    pub cancel_reason: Option<String>,
    pub sequence: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The course of treatment this appointment belongs to, if any.
    pub series_id: Option<Uuid>,
    /// The start it was first booked at in its series (its RECURRENCE-ID).
    pub series_start: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
