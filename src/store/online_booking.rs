//! PostgreSQL: an online booking's rows in one statement, through the function
//! `frontdesk_book_online` (see its migrations): the check that the schedule it was decided on
//! is current, the idempotency key, the patient (found and locked, or created), the limit of
//! upcoming bookings, the consents, the appointment under the exclusion constraint, its
//! history entry, its emails and its webhook deliveries. Bookings that wait for the database
//! at the same time are written together, several such calls in one statement ([`Queue`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{appointment, patient};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryResult, RuntimeErr, Statement, Value, sea_query::ArrayType,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::email::OutgoingEmail;

/// What the statement writes; everything was decided and rendered before it.
pub struct OnlineRows<'a> {
    /// The [`schedule_version`] the booking was decided at; `None` when it was decided on
    /// reads of its own.
    pub schedule_version: Option<i64>,
    pub now: DateTime<Utc>,
    pub idempotency: Option<IdempotencyRow<'a>>,
    /// The id a new patient record gets (an existing record keeps its own).
    pub new_patient_id: Uuid,
    pub email: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub marketing_consent: bool,
    pub limit: u32,
    pub appointment: &'a appointment::Model,
    /// The history entry's detail.
    pub event_detail: serde_json::Value,
    /// (event type, message id, signed body) of the `booking.created` deliveries.
    pub webhook: (&'a str, &'a str, &'a str),
    pub emails: &'a [OutgoingEmail],
}

/// An idempotency key with the response it replays.
pub struct IdempotencyRow<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

/// Writes the booking in a transaction of its own; returns the patient record it is for. A
/// schedule changed since `schedule_version` fails with [`is_schedule_changed`], a taken slot
/// with the exclusion constraint's error ([`super::is_overlap_violation`]), a reused idempotency
/// key with a unique violation, a reached limit with [`is_limit_reached`], a taken reference
/// with [`is_reference_taken`]; nothing is written then. [`Queue::insert`] does the same in a
/// batch.
pub async fn insert(
    conn: &impl ConnectionTrait,
    rows: &OnlineRows<'_>,
) -> Result<patient::Model, DbErr> {
    insert_values(conn, values(rows)).await
}

async fn insert_values(
    conn: &impl ConnectionTrait,
    values: Vec<Value>,
) -> Result<patient::Model, DbErr> {
    let sql = format!(
        "SELECT * FROM frontdesk_book_online({})",
        placeholders(0, values.len())
    );
    patient::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("patient".into()))
}

/// `$from+1, …, $from+count`.
fn placeholders(from: usize, count: usize) -> String {
    (from + 1..=from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The function's arguments, in order.
fn values(rows: &OnlineRows<'_>) -> Vec<Value> {
    let a = rows.appointment;
    let idem = rows.idempotency.as_ref();
    let (key, hash) = (
        idem.map(|i| i.key.to_string()),
        idem.map(|i| i.request_hash.to_string()),
    );
    let (status, body, location) = (
        idem.map(|i| i32::from(i.status)),
        idem.map(|i| i.body.clone()),
        idem.and_then(|i| i.location.clone()),
    );
    let (event_type, webhook_id, payload) = rows.webhook;
    let mut values: Vec<Value> = vec![
        rows.schedule_version.into(),
        rows.now.into(),
        key.into(),
        hash.into(),
        status.into(),
        body.into(),
        location.into(),
        rows.new_patient_id.into(),
        rows.email.into(),
        rows.name.into(),
        rows.phone.map(str::to_string).into(),
        rows.marketing_consent.into(),
        i64::from(rows.limit).into(),
        a.id.into(),
        a.reference.as_str().into(),
        a.service_id.into(),
        a.practitioner_id.into(),
        a.starts_at.into(),
        a.ends_at.into(),
        a.blocked_from.into(),
        a.blocked_until.into(),
        a.notes.as_str().into(),
        a.manage_token_hash.clone().into(),
        rows.event_detail.to_string().into(),
        event_type.into(),
        webhook_id.into(),
        payload.into(),
    ];
    values.extend(email_columns(rows.emails));
    values
}

/// Bookings waiting for a statement at most; past it callers wait to be queued.
const QUEUE_CAPACITY: usize = 1024;
/// Bookings in one statement at most: each is a subtransaction, and PostgreSQL keeps the
/// first 64 of a transaction in shared memory (past them, other sessions' visibility checks
/// look them up on disk).
pub const MAX_BATCH: usize = 16;
/// Statements in flight at once from one instance: half the default pool of 4 on PostgreSQL
/// (`store::connect`), which leaves the rest for slot search and the bookings' reads.
const WORKERS: usize = 2;

/// A booking waiting for a batch.
struct Job {
    /// The function's arguments.
    values: Vec<Value>,
    /// Where in the batch it goes: by practitioner, then by the start of its blocked time.
    order: (Uuid, DateTime<Utc>),
    answer: oneshot::Sender<Result<patient::Model, DbErr>>,
}

/// PostgreSQL's online bookings, written in batches with group commit. A booking queues
/// here; each of a few workers takes every booking waiting (up to [`MAX_BATCH`]) and writes
/// them with one statement: `frontdesk_book_online_try` once per booking, in order, each
/// seeing the ones before it, and each refusal undoing only its own booking. The statement
/// is its own transaction, so one commit (and one WAL flush) covers the batch, and every
/// booking is answered only after it. A batch of one is written as [`insert`] writes it.
/// Under light load every batch is one booking: nothing waits to gather a batch.
///
/// A batch is ordered by practitioner and then by the start of each booking's blocked time,
/// so every batch takes the practitioners' quarter-hour locks (see the function) in one
/// order, and two batches never wait on each other for them. A booking that still met a
/// deadlock inside a batch (through a patient's record, say) is written again on its own
/// once the batch has committed. A batch that the database refused as a whole (a statement
/// timeout) committed nothing, and each of its bookings is written again on its own; after
/// any other failure the batch may or may not have committed, and every booking of it is
/// answered with the error, as a booking written alone would be. The queue's depth and the
/// batches' sizes are the writer's metrics, as SQLite's single writer reports them.
#[derive(Clone)]
pub struct Queue {
    db: DatabaseConnection,
    queue: Option<mpsc::Sender<Job>>,
}

impl Queue {
    /// Starts the workers on PostgreSQL; elsewhere nothing (and [`Queue::insert`] writes
    /// directly). Needs a Tokio runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        let queue = (db.get_database_backend() == DbBackend::Postgres).then(|| {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..WORKERS {
                tokio::spawn(work(db.clone(), rx.clone()));
            }
            tx
        });
        Self { db, queue }
    }

    /// Writes the booking as [`insert`] does, in the next batch. It is written even if the
    /// caller goes away meanwhile.
    pub async fn insert(&self, rows: &OnlineRows<'_>) -> Result<patient::Model, DbErr> {
        let Some(queue) = &self.queue else {
            return insert(&self.db, rows).await;
        };
        // A caller that goes away while waiting for room leaves nothing queued.
        let permit = queue
            .reserve()
            .await
            .map_err(|_| DbErr::Custom("the booking queue has stopped".into()))?;
        let (answer, answered) = oneshot::channel();
        crate::metrics::writer_queued(1);
        permit.send(Job {
            values: values(rows),
            order: (
                rows.appointment.practitioner_id,
                rows.appointment.blocked_from,
            ),
            answer,
        });
        answered
            .await
            .map_err(|_| DbErr::Custom("the booking queue dropped a booking".into()))?
    }
}

async fn work(db: DatabaseConnection, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut jobs = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        crate::metrics::writer_queued(-i32::try_from(jobs.len()).unwrap_or(i32::MAX));
        crate::metrics::writer_batch(jobs.len());
        // In a task of its own, so that a panic costs this batch's answers, not the worker.
        if let Err(e) = tokio::spawn(write_batch(db.clone(), jobs)).await {
            tracing::error!(error = %e, "a batch of bookings was not answered");
        }
    }
}

/// Writes `jobs` and answers each: in one statement, and on their own those that cannot be
/// answered from it.
async fn write_batch(db: DatabaseConnection, mut jobs: Vec<Job>) {
    if jobs.len() == 1 {
        return write_alone(&db, jobs).await;
    }
    jobs.sort_by_key(|job| job.order);
    let bookings = jobs.iter().map(|job| job.values.clone()).collect();
    match insert_many(&db, bookings).await {
        Ok(outcomes) => {
            let mut again = Vec::new();
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Again => again.push(job),
                    // A caller that went away has its booking all the same.
                    Outcome::Done(result) => drop(job.answer.send(result)),
                }
            }
            write_alone(&db, again).await;
        }
        Err(e) if is_refused_by_server(&e) => {
            tracing::warn!(error = %e, "a batch of bookings was refused as a whole; writing each alone");
            write_alone(&db, jobs).await;
        }
        Err(e) => {
            for job in jobs {
                let _ = job.answer.send(Err(e.clone()));
            }
        }
    }
}

/// Writes each of `jobs` in a transaction of its own, all at once.
async fn write_alone(db: &DatabaseConnection, jobs: Vec<Job>) {
    futures_util::future::join_all(jobs.into_iter().map(|job| async move {
        let _ = job.answer.send(insert_values(db, job.values).await);
    }))
    .await;
}

/// Whether the database answered the statement with an error: it then rolled its transaction
/// back, and nothing of it was committed.
fn is_refused_by_server(err: &DbErr) -> bool {
    match err {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(**e, sea_orm::sqlx::Error::Database(_))
        }
        _ => false,
    }
}

/// What a batch did with one booking.
enum Outcome {
    /// Written (the patient record) or refused, as [`insert`] would answer.
    Done(Result<patient::Model, DbErr>),
    /// Neither: it met a deadlock (or a serialization failure) inside the batch.
    Again,
}

/// One statement, one transaction: `frontdesk_book_online_try` for each booking in turn.
async fn insert_many(
    conn: &impl ConnectionTrait,
    bookings: Vec<Vec<Value>>,
) -> Result<Vec<Outcome>, DbErr> {
    let count = bookings.len();
    let mut sql = String::new();
    let mut values = Vec::new();
    for (turn, booking) in bookings.into_iter().enumerate() {
        if turn > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str(&format!(
            "SELECT {turn} AS turn, t.* FROM frontdesk_book_online_try({}) t",
            placeholders(values.len(), booking.len())
        ));
        values.extend(booking);
    }
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    let mut outcomes: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
    // The statement has committed: from here on every booking gets an answer of its own.
    for row in rows {
        let turn = row.try_get::<i32>("", "turn").ok();
        if let Some(slot) = turn
            .and_then(|turn| usize::try_from(turn).ok())
            .and_then(|turn| outcomes.get_mut(turn))
        {
            *slot = Some(outcome(&row));
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Done(Err(DbErr::RecordNotFound("patient".into())))))
        .collect())
}

/// One booking's row of a batch's answer.
fn outcome(row: &QueryResult) -> Outcome {
    let state = match row.try_get::<Option<String>>("", "error_state") {
        Ok(state) => state,
        Err(e) => return Outcome::Done(Err(e)),
    };
    match state {
        Some(state) if matches!(state.as_str(), "40P01" | "40001") => Outcome::Again,
        Some(state) => {
            let message = row
                .try_get::<Option<String>>("", "error_message")
                .ok()
                .flatten()
                .unwrap_or_default();
            Outcome::Done(Err(super::refusal(&state, &message)))
        }
        None => Outcome::Done(patient::Model::from_query_result(row, "")),
    }
}

/// The rendered emails as the function reads them: one array per column, one element per
/// email (sent in PostgreSQL's binary format, read with `unnest`). A missing Reply-To or
/// invitation is `''`, which the function stores as NULL.
fn email_columns(emails: &[OutgoingEmail]) -> [Value; 11] {
    let text = |f: &dyn Fn(&OutgoingEmail) -> String| {
        Value::Array(
            ArrayType::String,
            Some(Box::new(emails.iter().map(|e| Value::from(f(e))).collect())),
        )
    };
    [
        text(&|e| e.kind.as_str().to_string()),
        text(&|e| e.to_address.clone()),
        text(&|e| e.to_name.clone()),
        text(&|e| e.reply_to.clone().unwrap_or_default()),
        text(&|e| e.subject.clone()),
        text(&|e| e.text_body.clone()),
        text(&|e| e.html_body.clone()),
        text(&|e| {
            e.ics
                .as_ref()
                .map(|(ics, _)| ics.clone())
                .unwrap_or_default()
        }),
        text(&|e| {
            e.ics
                .as_ref()
                .map(|(_, m)| m.to_string())
                .unwrap_or_default()
        }),
        text(&|e| e.message_id.clone()),
        Value::Array(
            ArrayType::ChronoDateTimeUtc,
            Some(Box::new(
                emails.iter().map(|e| Value::from(e.send_after)).collect(),
            )),
        ),
    ]
}

/// PostgreSQL: the version of everything a booking is decided on apart from the calendars
/// (services, practitioners, who offers what, working hours, time off, closures), which every
/// change to them moves on. `None` on SQLite.
pub async fn schedule_version(conn: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT version FROM schedule_version",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("schedule_version".into()))?;
    Ok(Some(row.try_get_by_index(0)?))
}

/// Whether the function refused because the booking was decided on a schedule that has
/// changed since (decide again on fresh reads).
pub fn is_schedule_changed(err: &DbErr) -> bool {
    err.to_string().contains("frontdesk: schedule changed")
}

/// Whether the function refused because the patient has reached the limit of upcoming
/// bookings.
pub fn is_limit_reached(err: &DbErr) -> bool {
    err.to_string().contains("frontdesk: booking limit reached")
}

/// Whether the appointment's reference was already taken (a fresh one should be tried).
pub fn is_reference_taken(err: &DbErr) -> bool {
    super::is_unique_violation(err) && err.to_string().contains("appointments_reference_key")
}
