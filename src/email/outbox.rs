//! The outbox table: writing rows inside the caller's transaction, claiming due rows with a
//! lease (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite one `BEGIN IMMEDIATE` statement), and
//! recording the outcome. No transaction or row lock is held while a message is being sent:
//! the lease alone keeps other workers off a row (the worker extends it while it still has
//! rows to process), and when it expires (a crash mid-send) the row is claimable again.
//!
//! Only what the mail server says about a message counts toward `max_attempts`; a server
//! that cannot be reached, encrypted to or logged in to makes messages wait, backing off up
//! to `backoff_max_seconds`, for as long as it lasts. Emails about one booking to one
//! recipient go out in the order they were written: a row waits while an older one of the
//! same booking and recipient is pending.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use entity::outbox_message::{self, Column};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, sea_query::Expr,
};
use uuid::Uuid;

use crate::{config::OutboxSettings, store};

use super::{EmailKind, FailureKind, backoff::backoff};

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
    /// What the email is about: a booking, a class seat, or (for an offer's reminder) the
    /// waitlist offer the worker checks is still open before sending.
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
    if let Some(insert) = pending_insert(emails) {
        conn.execute(&insert).await?;
    }
    Ok(())
}

/// The statement [`enqueue_many`] runs (none for no emails), for a caller that batches its
/// writes.
pub fn pending_insert(emails: &[OutgoingEmail]) -> Option<sea_orm::sea_query::InsertStatement> {
    use sea_orm::QueryTrait;
    (!emails.is_empty()).then(|| {
        outbox_message::Entity::insert_many(emails.iter().map(|e| pending_row(Uuid::new_v4(), e)))
            .into_query()
    })
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
        failures: Set(0),
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

/// A lease end as the database keeps it (PostgreSQL stores microseconds), so that the value
/// read back compares equal to the one written.
pub fn lease_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(chrono::Duration::microseconds(1))
        .unwrap_or(at)
}

/// Claims up to `limit` pending rows that are due at `now` and not leased, leasing them until
/// `now + lease`; oldest due first. A row whose earlier lease ran out without an outcome (its
/// worker died mid-send, and it may have gone out) has that claim counted as an attempt. A
/// row waits while an older pending email of the same booking to the same recipient exists
/// (reminders hold nothing back), so those go out in order. Several workers (instances) may
/// call this at once: each row goes to one of them.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
) -> Result<Vec<outbox_message::Model>, DbErr> {
    let lease_until =
        lease_instant(now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::days(1)));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let backend = db.get_database_backend();
    let in_order = "NOT EXISTS (SELECT 1 FROM outbox_messages o \
                      WHERE o.appointment_id = m.appointment_id AND o.to_address = m.to_address \
                        AND o.status = 'pending' AND o.kind <> 'reminder' \
                        AND (o.created_at < m.created_at \
                             OR (o.created_at = m.created_at AND o.id < m.id)))";
    let set = "lease_until = {lease}, \
               attempts = attempts + CASE WHEN lease_until IS NULL THEN 0 ELSE 1 END";
    let mut rows = match backend {
        DbBackend::Postgres => {
            let sql = format!(
                "UPDATE outbox_messages SET {} \
                 WHERE id IN (SELECT m.id FROM outbox_messages m \
                   WHERE m.status = 'pending' AND m.next_attempt_at <= $2 \
                     AND (m.lease_until IS NULL OR m.lease_until < $2) AND {in_order} \
                   ORDER BY m.next_attempt_at LIMIT $3 FOR UPDATE OF m SKIP LOCKED) \
                 RETURNING *",
                set.replace("{lease}", "$1")
            );
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
            let sql = format!(
                "UPDATE outbox_messages SET {} \
                 WHERE id IN (SELECT m.id FROM outbox_messages m \
                   WHERE m.status = 'pending' AND m.next_attempt_at <= ? \
                     AND (m.lease_until IS NULL OR m.lease_until < ?) AND {in_order} \
                   ORDER BY m.next_attempt_at LIMIT ?) \
                 RETURNING *",
                set.replace("{lease}", "?")
            );
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

/// Extends the lease of the rows among `ids` that are still pending and still held until
/// `held_until` (by this worker) to `until`; returns the ids it extended. A row missing from
/// the answer was voided meanwhile, or its lease ran out and another worker took it.
pub async fn extend_leases(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
    held_until: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = outbox_message::Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(Some(lease_instant(until))))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::LeaseUntil.eq(held_until))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
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

/// Records a failed try of `kind`. A failure of the server (connect, timeout, greeting, TLS,
/// authentication, a broken connection) does not count: the row stays pending and waits the
/// backoff, however often that happens. A refusal counts: `dead` once the attempts reach
/// `max_attempts`; a permanent refusal (or a row that cannot become a message) is `dead` at
/// once. Returns the new status.
pub async fn mark_failed(
    db: &impl ConnectionTrait,
    row: &outbox_message::Model,
    kind: FailureKind,
    error: &str,
    settings: &OutboxSettings,
    now: DateTime<Utc>,
) -> Result<&'static str, DbErr> {
    let counted = !kind.is_server_level();
    let attempts = row.attempts.saturating_add(i32::from(counted));
    let failures = row.failures.saturating_add(1);
    let error: String = error.chars().take(1000).collect();
    let mut update = outbox_message::Entity::update_many()
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(Some(error)))
        .col_expr(Column::Attempts, Expr::value(attempts))
        .col_expr(Column::Failures, Expr::value(failures))
        .filter(Column::Id.eq(row.id))
        .filter(Column::Status.eq(PENDING));
    let used_up = u32::try_from(attempts).unwrap_or(0) >= settings.max_attempts;
    let status = if kind.is_permanent() || (counted && used_up) {
        update = update.col_expr(Column::Status, Expr::value(DEAD));
        DEAD
    } else {
        let wait = backoff(
            settings.backoff_base_seconds,
            settings.backoff_max_seconds,
            u32::try_from(failures).unwrap_or(u32::MAX),
        );
        let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        update = update.col_expr(Column::NextAttemptAt, Expr::value(next));
        PENDING
    };
    update.exec(db).await?;
    Ok(status)
}

/// Gives up on a row without trying it again (its attempts were used up by claims that never
/// recorded an outcome).
pub async fn mark_dead(db: &impl ConnectionTrait, id: Uuid, reason: &str) -> Result<(), DbErr> {
    outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(DEAD))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::LastError, Expr::value(Some(reason.to_string())))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(PENDING))
        .exec(db)
        .await?;
    Ok(())
}

/// Voids the pending reminders whose booking has started by `now`: a reminder not sent by
/// then is of no use. Rows a worker holds are left to it (it checks the same thing).
pub async fn void_started_reminders(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use entity::appointment;
    use sea_orm::sea_query::{ExprTrait, Query};
    // Correlated, so only the few pending reminders are looked at, not every past booking.
    let started = Query::select()
        .expr(Expr::val(1))
        .from(appointment::Entity)
        .and_where(
            Expr::col((appointment::Entity, appointment::Column::Id))
                .equals((outbox_message::Entity, Column::AppointmentId)),
        )
        .and_where(Expr::col((appointment::Entity, appointment::Column::StartsAt)).lte(now))
        .to_owned();
    let result = outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(VOID))
        .col_expr(
            Column::LastError,
            Expr::value(Some(
                "the booking started before the reminder could be sent",
            )),
        )
        .filter(Column::Kind.eq(EmailKind::Reminder.as_str()))
        .filter(Column::Status.eq(PENDING))
        .filter(
            sea_orm::Condition::any()
                .add(Column::LeaseUntil.is_null())
                .add(Column::LeaseUntil.lt(now)),
        )
        .filter(Expr::exists(started))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
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
    let updated = requeue(now)
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

/// Puts every dead row back in the queue with its attempts reset; returns how many.
pub async fn retry_dead(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(requeue(now)
        .filter(Column::Status.eq(DEAD))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Pending, due at `now`, with a fresh count of attempts and failures.
fn requeue(now: DateTime<Utc>) -> sea_orm::UpdateMany<outbox_message::Entity> {
    outbox_message::Entity::update_many()
        .col_expr(Column::Status, Expr::value(PENDING))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::Failures, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .col_expr(
            Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// How many rows are in each status (statuses without rows are left out).
pub async fn count_by_status(conn: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, DbErr> {
    outbox_message::Entity::find()
        .select_only()
        .column(Column::Status)
        .column_as(Column::Id.count(), "n")
        .group_by(Column::Status)
        .into_tuple()
        .all(conn)
        .await
}

/// When the oldest pending email was queued, reminders left out (a reminder is queued when
/// its booking is made and waits for its time on purpose).
pub async fn oldest_pending(conn: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, DbErr> {
    let oldest = outbox_message::Entity::find()
        .filter(Column::Status.eq(PENDING))
        .filter(Column::Kind.ne(EmailKind::Reminder.as_str()))
        .order_by_asc(Column::CreatedAt)
        .one(conn)
        .await?;
    Ok(oldest.map(|row| row.created_at))
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
