//! The webhook endpoint table: registering, changing, rotating secrets, disabling.

use chrono::{DateTime, Duration, Utc};
use entity::webhook_endpoint::{self, Column};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{EventType, signing};

/// How long the secret replaced by a rotation keeps signing.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// The event types an endpoint subscribes to (unknown names, if any, are ignored).
pub fn events_of(endpoint: &webhook_endpoint::Model) -> Vec<EventType> {
    serde_json::from_str::<Vec<String>>(&endpoint.events)
        .unwrap_or_default()
        .iter()
        .filter_map(|s| EventType::parse(s))
        .collect()
}

fn events_json(events: &[EventType]) -> String {
    serde_json::Value::from(events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

/// The secrets that sign at `now`: the current one, and the previous one during a rotation.
pub fn signing_secrets(endpoint: &webhook_endpoint::Model, now: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) && until > now
    {
        secrets.push(previous.as_str());
    }
    secrets
}

/// Registers an endpoint with a fresh secret.
pub async fn insert(
    conn: &impl ConnectionTrait,
    url: &str,
    events: &[EventType],
    description: Option<String>,
    now: DateTime<Utc>,
) -> Result<webhook_endpoint::Model, DbErr> {
    webhook_endpoint::ActiveModel {
        id: Set(Uuid::new_v4()),
        url: Set(url.to_string()),
        events: Set(events_json(events)),
        description: Set(description),
        active: Set(true),
        secret: Set(signing::new_secret()),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        disabled_reason: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id).one(conn).await
}

/// Every active endpoint (few per clinic).
pub async fn active(conn: &impl ConnectionTrait) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(Column::Active.eq(true))
        .all(conn)
        .await
}

/// The endpoints with these ids.
pub async fn many(
    conn: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(Column::Id.is_in(ids))
        .all(conn)
        .await
}

/// Oldest first, one page.
pub async fn page(
    conn: &impl ConnectionTrait,
    page: u64,
    per_page: u64,
) -> Result<(Vec<webhook_endpoint::Model>, u64), DbErr> {
    let total = webhook_endpoint::Entity::find().count(conn).await?;
    let items = webhook_endpoint::Entity::find()
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .offset(crate::store::page_offset(page, per_page))
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Change {
    pub url: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub active: Option<bool>,
}

pub async fn update(
    conn: &impl ConnectionTrait,
    current: webhook_endpoint::Model,
    change: Change,
    now: DateTime<Utc>,
) -> Result<webhook_endpoint::Model, DbErr> {
    let mut row: webhook_endpoint::ActiveModel = current.into();
    if let Some(url) = change.url {
        row.url = Set(url);
    }
    if let Some(events) = change.events {
        row.events = Set(events_json(&events));
    }
    if let Some(description) = change.description {
        row.description = Set(description);
    }
    if let Some(active) = change.active {
        row.active = Set(active);
        // Turned on (again) by staff: whatever disabled it is resolved.
        if active {
            row.disabled_reason = Set(None);
        }
    }
    row.updated_at = Set(now);
    row.update(conn).await
}

/// Replaces the secret; the old one keeps signing for `ROTATION_OVERLAP_HOURS`. Returns the
/// endpoint with its new secret.
pub async fn rotate_secret(
    conn: &impl ConnectionTrait,
    current: webhook_endpoint::Model,
    now: DateTime<Utc>,
) -> Result<webhook_endpoint::Model, DbErr> {
    let previous = current.secret.clone();
    let mut row: webhook_endpoint::ActiveModel = current.into();
    row.secret = Set(signing::new_secret());
    row.previous_secret = Set(Some(previous));
    row.previous_secret_expires_at = Set(Some(now + Duration::hours(ROTATION_OVERLAP_HOURS)));
    row.updated_at = Set(now);
    row.update(conn).await
}

/// Turns an endpoint off on the receiver's word (a 410 answer).
pub async fn disable(
    conn: &impl ConnectionTrait,
    id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    webhook_endpoint::Entity::update_many()
        .col_expr(Column::Active, Expr::value(false))
        .col_expr(
            Column::DisabledReason,
            Expr::value(Some(reason.to_string())),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes an endpoint and its delivery log.
pub async fn delete(conn: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    entity::webhook_delivery::Entity::delete_many()
        .filter(entity::webhook_delivery::Column::EndpointId.eq(id))
        .exec(conn)
        .await?;
    let deleted = webhook_endpoint::Entity::delete_by_id(id)
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected == 1)
}
