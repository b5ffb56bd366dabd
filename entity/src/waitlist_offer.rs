//! One place held for one waitlist entry until claimed, declined, expired or withdrawn.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "waitlist_offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub entry_id: Uuid,
    /// SHA-256 of the offer token; null once erased.
    pub offer_token_hash: Option<String>,
    /// Set for a seat in a class session.
    pub class_session_id: Option<Uuid>,
    /// The held one-to-one slot.
    pub service_id: Option<Uuid>,
    pub practitioner_id: Option<Uuid>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    /// The practitioner's time the hold keeps (the service's buffers applied).
    pub blocked_from: Option<DateTimeUtc>,
    pub blocked_until: Option<DateTimeUtc>,
    /// open | claimed | declined | expired | withdrawn
    pub status: String,
    /// When the hold ends.
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
