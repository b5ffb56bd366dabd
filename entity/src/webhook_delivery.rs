//! One event for one webhook endpoint: waiting, delivered or failed, with its last outcome.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_type: String,
    /// `msg_…`, the `webhook-id` header: the same on every attempt and replay.
    pub webhook_id: String,
    /// The exact JSON body that is signed and sent.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// pending | delivered | failed
    pub status: String,
    /// Attempts started (counted when a worker claims the row).
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// A worker holds the row until then; once it has passed, the row may be claimed again.
    pub lease_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
    /// How long the last attempt took, connect to response head.
    pub last_duration_ms: Option<i32>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
