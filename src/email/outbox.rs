//! The outbox table: writing rows inside the caller's transaction, claiming due rows with a
//! lease (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite one `BEGIN IMMEDIATE` statement), and
//! recording the outcome. No transaction or row lock is held while a message is being sent:
//! the lease alone keeps other workers off a row, and when it expires (a crash mid-send) the
//! row is claimable again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::outbox_message::{self, Column};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, sea_query::Expr,
};
use uuid::Uuid;

use crate::{config::OutboxSettings, store};

use super::EmailKind;

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const DEAD: &str = "dead";
pub const VOID: &str = "void";

/// A rendered email, ready to be written into the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub kind: EmailKind,
    pub to_address: String,
    pub to_name: String,
    /// A mailbox (`Name <address>` or an address) for the Reply-To header.
    pub reply_to: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// The iCalendar object and its method (`REQUEST` or `CANCEL`).
    pub ics: Option<(String, &'static str)>,
    /// `<uuid@domain>`, unique.
    pub message_id: String,
    pub appointment_id: Option<Uuid>,
    /// Not sent before this instant (a reminder's time; now for everything else).
    pub send_after: DateTime<Utc>,
}

/// Writes `email` as a pending row; pass the transaction of the change that causes it.
pub async fn enqueue(conn: &impl ConnectionTrait, email: &OutgoingEmail) -> Result<Uuid, DbErr> {
    let id = Uuid::new_v4();
    outbox_message::Entity::insert(pending_row(id, email))
        .exec_without_returning(conn)
        .await?;
    Ok(id)
}

/// Writes every email as a pending row in one statement (nothing for none).
pub async fn enqueue_many(
    conn: &impl ConnectionTrait,
    emails: &[OutgoingEmail],
) -> Result<(), DbErr> {
    if emails.is_empty() {
        return Ok(());
    }
    outbox_message::Entity::insert_many(emails.iter().map(|e| pending_row(Uuid::new_v4(), e)))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn pending_row(id: Uuid, email: &OutgoingEmail) -> outbox_message::ActiveModel {
    outbox_message::ActiveModel {
        id: Set(id),
        kind: Set(email.kind.as_str().to_string()),
        to_address: Set(email.to_address.clone()),
        to_name: Set(email.to_name.clone()),
        reply_to: Set(email.reply_to.clone()),
        subject: Set(email.subject.clone()),
        text_body: Set(email.text_body.clone()),
        html_body: Set(email.html_body.clone()),
        ics: Set(email.ics.as_ref().map(|(ics, _)| ics.clone())),
        ics_method: Set(email.ics.as_ref().map(|(_, m)| m.to_string())),
        message_id: Set(email.message_id.clone()),
        appointment_id: Set(email.appointment_id),
        status: Set(PENDING.to_string()),
        attempts: Set(0),
        next_attempt_at: Set(email.send_after),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(Utc::now()),
        sent_at: Set(None),
    }
}

/// Voids the pending reminders of an appointment (it was cancelled or moved); returns how many.
pub async fn void_reminders(
    conn: &impl ConnectionTrait,
    appointment_id: Uuid,
) -> Result<u64, DbErr> {
    let result = outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(VOID))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::AppointmentId.eq(appointment_id))
        .filter(Column::Kind.eq(EmailKind::Reminder.as_str()))
        .filter(Column::Status.eq(PENDING))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Claims up to `limit` pending rows that are due at `now` and not leased, leasing them until
/// `now + lease` and counting the attempt; oldest due first. Several workers (instances) may
/// call this at once: each row goes to one of them.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<outbox_message::Model>, DbErr> {
    let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let backend = db.get_database_backend();
    let mut rows = match backend {
        DbBackend::Postgres => {
            let sql = "UPDATE outbox_messages SET lease_until = $1, attempts = attempts + 1 \
                       WHERE id IN (SELECT id FROM outbox_messages \
                         WHERE status = 'pending' AND next_attempt_at <= $2 \
                           AND (lease_until IS NULL OR lease_until < $2) \
                         ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
                       RETURNING *";
            let stmt = Statement::from_sql_and_values(
                backend,
                sql,
                [lease_until.into(), now.into(), limit.into()],
            );
            outbox_message::Entity::find()
                .from_raw_sql(stmt)
                .all(db)
                .await?
        }
        _ => {
            // One UPDATE … RETURNING in a BEGIN IMMEDIATE transaction: SQLite has a single
            // writer, so no other worker can claim the same rows in between.
            let sql = "UPDATE outbox_messages SET lease_until = ?, attempts = attempts + 1 \
                       WHERE id IN (SELECT id FROM outbox_messages \
                         WHERE status = 'pending' AND next_attempt_at <= ? \
                           AND (lease_until IS NULL OR lease_until < ?) \
                         ORDER BY next_attempt_at LIMIT ?) \
                       RETURNING *";
            let stmt = Statement::from_sql_and_values(
                backend,
                sql,
                [lease_until.into(), now.into(), now.into(), limit.into()],
            );
            let txn = store::begin_write(db).await?;
            let rows = outbox_message::Entity::find()
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

/// Records a successful delivery.
pub async fn mark_sent(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(SENT))
        .col_expr(Column::SentAt, Expr::value(Some(now)))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::Id.eq(id))
        // A reminder voided (booking moved or cancelled) while it was on its way stays void.
        .filter(Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: `dead` when `permanent` or when the attempts are used up,
/// otherwise pending again after the backoff. Returns the new status.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    row: &outbox_message::Model,
    error: &str,
    permanent: bool,
    settings: &OutboxSettings,
    now: DateTime<Utc>,
) -> Result<&'static str, DbErr> {
    let attempts = u32::try_from(row.attempts).unwrap_or(0);
    let error: String = error.chars().take(1000).collect();
    let mut update = outbox_message::Entity::update_many()
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(Some(error)))
        .filter(Column::Id.eq(row.id))
        .filter(Column::Status.eq(PENDING));
    let status = if permanent || attempts >= settings.max_attempts {
        update = update.col_expr(Column::Status, Expr::value(DEAD));
        DEAD
    } else {
        let wait = backoff(settings.backoff_base_seconds, attempts);
        let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        update = update.col_expr(Column::NextAttemptAt, Expr::value(next));
        PENDING
    };
    update.exec(db).await?;
    Ok(status)
}

/// Records that a row will not be sent (a reminder whose booking was cancelled or is past).
pub async fn mark_void(db: &impl ConnectionTrait, id: Uuid, reason: &str) -> Result<(), DbErr> {
    outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(VOID))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(Some(reason.to_string())))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives a claimed row back without counting the attempt (the worker ran out of lease time
/// before reaching it).
pub async fn release(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    // Scoped: `ExprTrait` also has `min`/`max`, which would shadow `Ord`'s elsewhere.
    use sea_orm::sea_query::ExprTrait;
    outbox_message::Entity::update_many()
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// How long to wait after the `attempt`-th failed attempt: base·2^(attempt−1), ±20 % jitter
/// so that messages that failed together do not retry together, at most one hour.
pub fn backoff(base_seconds: u64, attempt: u32) -> Duration {
    backoff_with_jitter(base_seconds, attempt, rand::random_range(0.8..=1.2))
}

/// `backoff` with the jitter factor given.
pub fn backoff_with_jitter(base_seconds: u64, attempt: u32, factor: f64) -> Duration {
    const CAP_SECONDS: f64 = 3600.0;
    let exponent = attempt.saturating_sub(1).min(32);
    let seconds = (base_seconds as f64) * 2f64.powi(exponent as i32) * factor;
    Duration::from_secs_f64(seconds.clamp(0.0, CAP_SECONDS))
}

/// What a staff retry did.
pub enum RetryOutcome {
    Retried(Box<outbox_message::Model>),
    NotRetryable(String),
    NotFound,
}

/// Puts a dead row back in the queue with its attempts reset.
pub async fn retry(
    conn: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<RetryOutcome, DbErr> {
    let updated = outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(PENDING))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(DEAD))
        .exec(conn)
        .await?;
    let row = outbox_message::Entity::find_by_id(id).one(conn).await?;
    Ok(match row {
        None => RetryOutcome::NotFound,
        Some(row) if updated.rows_affected == 1 => RetryOutcome::Retried(Box::new(row)),
        Some(row) => RetryOutcome::NotRetryable(row.status),
    })
}

/// Newest first, one page, optionally only one status.
pub async fn page(
    conn: &impl ConnectionTrait,
    status: Option<&str>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<outbox_message::Model>, u64), DbErr> {
    let mut query = outbox_message::Entity::find();
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

/// Deletes sent and voided emails created before `before`: the copies of what went out are
/// personal data too. Pending and dead rows stay until they are delivered or handled.
pub async fn purge_delivered(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(outbox_message::Entity::delete_many()
        .filter(outbox_message::Column::Status.is_in(["sent", "void"]))
        .filter(outbox_message::Column::CreatedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_an_hour() {
        let secs = |n| backoff_with_jitter(30, n, 1.0).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [30, 60, 120, 240]);
        assert_eq!(secs(8), 3600);
        assert_eq!(secs(u32::MAX), 3600);
        assert_eq!(backoff_with_jitter(30, 1, 0.8).as_secs(), 24);
        assert_eq!(backoff_with_jitter(30, 1, 1.2).as_secs(), 36);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let wait = backoff(100, 2).as_secs_f64();
            assert!((160.0..=240.0).contains(&wait), "{wait}");
        }
    }
}
