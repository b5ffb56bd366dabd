//! One session of a group class: its time, instructor, capacity and seat counts. A CHECK keeps
//! `seats_taken + seats_held <= capacity`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "class_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub series_id: Option<Uuid>,
    pub starts_at: DateTimeUtc,
    pub ends_at: DateTimeUtc,
    /// `starts_at` minus the service's buffer before.
    pub blocked_from: DateTimeUtc,
    /// `ends_at` plus the service's buffer after.
    pub blocked_until: DateTimeUtc,
    pub capacity: i32,
    /// Confirmed (and attended or no-show) seats.
    pub seats_taken: i32,
    /// Places held by open waitlist offers.
    pub seats_held: i32,
    /// scheduled | cancelled
    pub status: String,
    pub cancel_reason: Option<String>,
    /// iCalendar SEQUENCE of every seat's invitation.
    pub sequence: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
