//! A freed place waiting out the grace period before the waitlist worker offers it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waitlist_openings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// class | slot
    pub kind: String,
    pub class_session_id: Option<Uuid>,
    pub practitioner_id: Option<Uuid>,
    /// The practitioner's time given back (blocked range, buffers included).
    pub free_from: Option<DateTimeUtc>,
    pub free_until: Option<DateTimeUtc>,
    pub freed_at: DateTimeUtc,
    /// None: due `waitlist.grace_seconds` after `freed_at`; set: due then (a place passed on).
    pub due_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
