//! PostgreSQL: an online booking's rows in one statement, through the function
//! `frontdesk_book_online` (see its migrations): the check that the schedule it was decided on
//! is current, the idempotency key, the patient (found and locked, or created), the limit of
//! upcoming bookings, the consents, the appointment under the exclusion constraint, its
//! history entry, its emails and its webhook deliveries.

use chrono::{DateTime, Utc};
use entity::{appointment, patient};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value, sea_query::ArrayType,
};
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

/// Writes the booking; returns the patient record it is for. A schedule changed since
/// `schedule_version` fails with [`is_schedule_changed`], a taken slot with the exclusion
/// constraint's error ([`super::is_overlap_violation`]), a reused idempotency key with a unique
/// violation, a reached limit with [`is_limit_reached`], a taken reference with
/// [`is_reference_taken`]; nothing is written then.
pub async fn insert(
    conn: &impl ConnectionTrait,
    rows: &OnlineRows<'_>,
) -> Result<patient::Model, DbErr> {
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
    let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT * FROM frontdesk_book_online({})",
        placeholders.join(", ")
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
