//! The webhook delivery table: rows written inside the caller's transaction, claimed with a
//! lease (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite one `UPDATE … RETURNING` in a
//! `BEGIN IMMEDIATE` transaction) so that several workers never post one event at the same
//! time, and the outcome of each attempt. No lock is held while a request is in flight.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::webhook_delivery::{self, Column};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, sea_query::Expr,
};
use uuid::Uuid;

use crate::store;

use super::{DELIVERED, EventType, FAILED, PENDING};

/// Writes one pending delivery of an event to an endpoint, only if the endpoint still exists
/// and is active, checked by the same statement: the caller's list of subscribers may be a
/// cached one (`subscribers`). Pass the transaction of the change. Returns whether it wrote.
pub async fn insert_if_active(
    conn: &impl ConnectionTrait,
    endpoint_id: Uuid,
    event: EventType,
    webhook_id: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let insert = insert_if_active_statement(endpoint_id, event, webhook_id, body, now)?;
    Ok(conn.execute(&insert).await?.rows_affected() == 1)
}

/// The statement [`insert_if_active`] runs, for a caller that batches its writes.
pub fn insert_if_active_statement(
    endpoint_id: Uuid,
    event: EventType,
    webhook_id: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<sea_orm::sea_query::InsertStatement, DbErr> {
    use entity::webhook_endpoint;
    use sea_orm::sea_query::Query;
    let endpoint = Query::select()
        .expr(Expr::val(Uuid::new_v4()))
        .column(webhook_endpoint::Column::Id)
        .expr(Expr::val(event.as_str()))
        .expr(Expr::val(webhook_id))
        .expr(Expr::val(body))
        .expr(Expr::val(PENDING))
        .expr(Expr::val(0i32))
        .expr(Expr::val(now))
        .expr(Expr::val(now))
        .from(webhook_endpoint::Entity)
        .and_where(webhook_endpoint::Column::Id.eq(endpoint_id))
        .and_where(webhook_endpoint::Column::Active.eq(true))
        .to_owned();
    let insert = Query::insert()
        .into_table(webhook_delivery::Entity)
        .columns([
            Column::Id,
            Column::EndpointId,
            Column::EventType,
            Column::WebhookId,
            Column::Payload,
            Column::Status,
            Column::Attempts,
            Column::NextAttemptAt,
            Column::CreatedAt,
        ])
        .select_from(endpoint)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    Ok(insert)
}

/// Claims up to `limit` pending deliveries of active endpoints that are due at `now` and not
/// leased, leasing them until `now + lease` and counting the attempt; oldest due first. Any
/// number of workers may call this at once: each row goes to one of them.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>, DbErr> {
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let backend = db.get_database_backend();
    let mut rows = match backend {
        DbBackend::Postgres => {
            let sql = "UPDATE webhook_deliveries SET lease_until = $1, attempts = attempts + 1 \
                       WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                         JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.active \
                         WHERE d.status = 'pending' AND d.next_attempt_at <= $2 \
                           AND (d.lease_until IS NULL OR d.lease_until < $2) \
                         ORDER BY d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED) \
                       RETURNING *";
            let stmt = Statement::from_sql_and_values(
                backend,
                sql,
                [lease_until.into(), now.into(), limit.into()],
            );
            webhook_delivery::Entity::find()
                .from_raw_sql(stmt)
                .all(db)
                .await?
        }
        _ => {
            // SQLite has a single writer: nothing can claim the same rows in between.
            let sql = "UPDATE webhook_deliveries SET lease_until = ?, attempts = attempts + 1 \
                       WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                         JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.active \
                         WHERE d.status = 'pending' AND d.next_attempt_at <= ? \
                           AND (d.lease_until IS NULL OR d.lease_until < ?) \
                         ORDER BY d.next_attempt_at LIMIT ?) \
                       RETURNING *";
            let stmt = Statement::from_sql_and_values(
                backend,
                sql,
                [lease_until.into(), now.into(), now.into(), limit.into()],
            );
            let txn = store::begin_write(db).await?;
            let rows = webhook_delivery::Entity::find()
                .from_raw_sql(stmt)
                .all(&txn)
                .await?;
            txn.commit().await?;
            rows
        }
    };
    rows.sort_by_key(|r| (r.next_attempt_at, r.created_at));
    Ok(rows)
}

/// What one attempt ended with, to record.
pub struct Attempt<'a> {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
}

fn recorded(
    update: sea_orm::UpdateMany<webhook_delivery::Entity>,
    attempt: &Attempt<'_>,
) -> sea_orm::UpdateMany<webhook_delivery::Entity> {
    let error: Option<String> = attempt.error.map(|e| e.chars().take(1000).collect());
    update
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            Column::LastStatusCode,
            Expr::value(attempt.status_code.map(i32::from)),
        )
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::LastAttemptAt, Expr::value(Some(attempt.at)))
        .col_expr(
            Column::LastDurationMs,
            Expr::value(Some(attempt.duration_ms)),
        )
}

/// Records a 2xx answer.
pub async fn mark_delivered(
    db: &impl ConnectionTrait,
    row: &webhook_delivery::Model,
    attempt: &Attempt<'_>,
) -> Result<(), DbErr> {
    recorded(webhook_delivery::Entity::update_many(), attempt)
        .col_expr(Column::Status, Expr::value(DELIVERED))
        .col_expr(Column::DeliveredAt, Expr::value(Some(attempt.at)))
        .filter(Column::Id.eq(row.id))
        .filter(Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: pending again after the schedule's wait for this attempt, or
/// `failed` when the schedule is used up or `give_up`. Returns the new status.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    row: &webhook_delivery::Model,
    attempt: &Attempt<'_>,
    schedule: &[u64],
    give_up: bool,
) -> Result<&'static str, DbErr> {
    let update = recorded(webhook_delivery::Entity::update_many(), attempt)
        .filter(Column::Id.eq(row.id))
        .filter(Column::Status.eq(PENDING));
    let (update, status) = match next_wait(schedule, row.attempts) {
        Some(wait) if !give_up => {
            let next = attempt.at
                + chrono::Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX / 1000));
            (
                update.col_expr(Column::NextAttemptAt, Expr::value(next)),
                PENDING,
            )
        }
        _ => (update.col_expr(Column::Status, Expr::value(FAILED)), FAILED),
    };
    update.exec(db).await?;
    Ok(status)
}

/// The wait after the `attempts`-th failed attempt, or `None` when no retry is left.
pub fn next_wait(schedule: &[u64], attempts: i32) -> Option<u64> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    schedule.get(index).copied()
}

/// Gives a claimed row back without counting the attempt (its endpoint vanished meanwhile).
pub async fn release(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    use sea_orm::sea_query::ExprTrait;
    webhook_delivery::Entity::update_many()
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<webhook_delivery::Model>, DbErr> {
    webhook_delivery::Entity::find_by_id(id).one(conn).await
}

/// What a replay did.
pub enum ReplayOutcome {
    Queued(Box<webhook_delivery::Model>),
    /// A worker is posting it right now.
    InFlight,
    NotFound,
}

/// Sends a delivery again (same body, same `webhook-id`): pending, due at `now`, with the
/// whole retry schedule ahead of it.
pub async fn replay(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<ReplayOutcome, DbErr> {
    use sea_orm::sea_query::ExprTrait;
    let updated = webhook_delivery::Entity::update_many()
        .col_expr(Column::Status, Expr::value(PENDING))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(Column::LeaseUntil.is_null())
                .add(Expr::col(Column::LeaseUntil).lt(now)),
        )
        .exec(conn)
        .await?;
    Ok(match find(conn, id).await? {
        None => ReplayOutcome::NotFound,
        Some(row) if updated.rows_affected == 1 => ReplayOutcome::Queued(Box::new(row)),
        Some(_) => ReplayOutcome::InFlight,
    })
}

/// One endpoint's deliveries, newest first, optionally only one status.
pub async fn page(
    conn: &impl ConnectionTrait,
    endpoint_id: Uuid,
    status: Option<&str>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<webhook_delivery::Model>, u64), DbErr> {
    let mut query = webhook_delivery::Entity::find().filter(Column::EndpointId.eq(endpoint_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status));
    }
    let total = query.clone().count(conn).await?;
    let items = query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .offset(store::page_offset(page, per_page))
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}

/// Deletes at most `limit` deliveries of events older than `before`; the retention pass
/// calls it batch by batch.
pub async fn purge(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    store::delete_batch::<webhook_delivery::Entity>(
        conn,
        Column::Id,
        Condition::all().add(Column::CreatedAt.lt(before)),
        limit,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failed_attempt_waits_its_step_of_the_schedule_then_none_is_left() {
        let schedule = [5, 300, 1800];
        assert_eq!(next_wait(&schedule, 1), Some(5));
        assert_eq!(next_wait(&schedule, 2), Some(300));
        assert_eq!(next_wait(&schedule, 3), Some(1800));
        assert_eq!(next_wait(&schedule, 4), None);
        assert_eq!(next_wait(&schedule, 0), None);
        assert_eq!(next_wait(&[], 1), None);
    }
}
