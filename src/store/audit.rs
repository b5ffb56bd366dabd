//! The audit log: one row per staff change, written in the same transaction as the change.

use entity::audit_log;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryOrder, QuerySelect,
    Set,
};
use uuid::Uuid;

/// Records that `actor` did `action` to `entity` `entity_id`; `detail` is a JSON summary that
/// never holds secrets.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: Option<Uuid>,
    action: &str,
    entity: &str,
    entity_id: Option<Uuid>,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        id: Set(Uuid::new_v4()),
        at: Set(chrono::Utc::now()),
        actor_id: Set(actor),
        action: Set(action.to_string()),
        entity: Set(entity.to_string()),
        entity_id: Set(entity_id.map(|id| id.to_string())),
        detail: Set(detail.to_string()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Newest first, one page.
pub async fn page(
    conn: &impl ConnectionTrait,
    page: u64,
    per_page: u64,
) -> Result<(Vec<audit_log::Model>, u64), DbErr> {
    let total = audit_log::Entity::find().count(conn).await?;
    let items = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::At)
        .offset(super::page_offset(page, per_page))
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}
