//! A webhook endpoint: a URL that receives signed events of the types it subscribes to.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// JSON array of event type names, e.g. `["booking.created"]`.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    pub description: Option<String>,
    pub active: bool,
    /// `whsec_<base64>`: a credential, shown once and never logged.
    pub secret: String,
    /// The secret before the last rotation; it keeps signing until `previous_secret_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Why the service turned the endpoint off (e.g. it answered 410 Gone).
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

// Written by hand so that a secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("webhook_endpoint::Model")
            .field("id", &self.id)
            .field("events", &self.events)
            .field("active", &self.active)
            .field("disabled_reason", &self.disabled_reason)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
