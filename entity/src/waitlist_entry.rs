//! A patient waiting for a class place or a one-to-one slot.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waitlist_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Set for a class entry.
    pub class_session_id: Option<Uuid>,
    /// Set for a one-to-one entry, with the dates below.
    pub service_id: Option<Uuid>,
    /// A one-to-one entry that wants one practitioner only.
    pub practitioner_id: Option<Uuid>,
    /// Local dates, YYYY-MM-DD, inclusive.
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    /// Minutes after local midnight a slot may start from / until (inclusive).
    pub earliest_minute: Option<i32>,
    pub latest_minute: Option<i32>,
    pub patient_id: Uuid,
    /// waiting | offered | claimed | left | expired
    pub status: String,
    /// Staff-marked: offered before everyone else.
    pub urgent: bool,
    /// SHA-256 of the manage token; null once erased.
    pub manage_token_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When it stopped waiting for good (claimed, left, expired).
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
