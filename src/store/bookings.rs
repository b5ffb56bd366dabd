//! Appointments as bookings: create, find by id or manage token, change, history, and the
//! stored responses of idempotent requests.

use chrono::{DateTime, Utc};
use entity::{appointment, appointment_event, idempotency_key};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
    sea_query::InsertStatement,
};
use uuid::Uuid;

use crate::domain::booking::BookingStatus;

pub async fn insert(
    conn: &impl ConnectionTrait,
    model: appointment::Model,
) -> Result<appointment::Model, DbErr> {
    match conn.get_database_backend() {
        // SQLite has no RETURNING here, so `insert` would read the row back; it stores what it
        // is given (text timestamps at full precision), so the model is the row.
        DbBackend::Sqlite => {
            conn.execute(&insert_statement(model.clone())).await?;
            Ok(model)
        }
        _ => model.into_active_model().reset_all().insert(conn).await,
    }
}

/// The statement inserting `model` as it is, for a caller that batches its writes (on SQLite
/// the stored row is the model; see [`insert`]).
pub fn insert_statement(model: appointment::Model) -> InsertStatement {
    appointment::Entity::insert(model.into_active_model().reset_all()).into_query()
}

/// Whether an appointment already has `reference`.
pub async fn reference_taken(conn: &impl ConnectionTrait, reference: &str) -> Result<bool, DbErr> {
    Ok(appointment::Entity::find()
        .filter(appointment::Column::Reference.eq(reference))
        .count(conn)
        .await?
        > 0)
}

pub async fn update(
    conn: &impl ConnectionTrait,
    model: appointment::Model,
) -> Result<appointment::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<appointment::Model>, DbErr> {
    appointment::Entity::find_by_id(id).one(conn).await
}

pub async fn find_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<appointment::Model>, DbErr> {
    appointment::Entity::find()
        .filter(appointment::Column::ManageTokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Confirmed bookings and class seats of a patient that start after `now`: both count
/// toward `booking.max_active_per_patient`.
pub async fn count_upcoming_for_patient(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let appointments = appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(patient_id))
        .filter(appointment::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .filter(appointment::Column::StartsAt.gt(now))
        .count(conn)
        .await?;
    let seats = super::classes::count_upcoming_seats(conn, patient_id, now).await?;
    Ok(appointments + seats)
}

/// Appends to a booking's history.
pub async fn record_event(
    conn: &impl ConnectionTrait,
    appointment_id: Uuid,
    kind: &str,
    actor: &str,
    staff_id: Option<Uuid>,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    conn.execute(&event_insert(
        appointment_id,
        kind,
        actor,
        staff_id,
        detail,
        at,
    ))
    .await?;
    Ok(())
}

/// The statement [`record_event`] runs, for a caller that batches its writes.
pub fn event_insert(
    appointment_id: Uuid,
    kind: &str,
    actor: &str,
    staff_id: Option<Uuid>,
    detail: serde_json::Value,
    at: DateTime<Utc>,
) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::QueryTrait;
    appointment_event::Entity::insert(appointment_event::ActiveModel {
        id: Set(Uuid::new_v4()),
        appointment_id: Set(appointment_id),
        at: Set(at),
        kind: Set(kind.to_string()),
        actor: Set(actor.to_string()),
        staff_id: Set(staff_id),
        detail: Set(detail.to_string()),
    })
    .into_query()
}

pub async fn events(
    conn: &impl ConnectionTrait,
    appointment_id: Uuid,
) -> Result<Vec<appointment_event::Model>, DbErr> {
    appointment_event::Entity::find()
        .filter(appointment_event::Column::AppointmentId.eq(appointment_id))
        .order_by_asc(appointment_event::Column::At)
        .all(conn)
        .await
}

/// A live stored response for an idempotency key.
pub async fn find_idempotent(
    conn: &impl ConnectionTrait,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    Ok(idempotency_key::Entity::find_by_id(key.to_string())
        .one(conn)
        .await?
        .filter(|k| k.expires_at > now))
}

/// Claims an idempotency key inside the booking's transaction, before anything is booked: a
/// concurrent request with the same key then waits on the key's unique index (PostgreSQL) or
/// on the write lock (SQLite) and finds the first answer instead of booking again.
pub async fn claim_idempotent(
    conn: &impl ConnectionTrait,
    key: &str,
    request_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .exec(conn)
        .await?;
    idempotency_key::ActiveModel {
        key: Set(key.to_string()),
        request_hash: Set(request_hash.to_string()),
        status_code: Set(0),
        response_body: Set(String::new()),
        location: Set(None),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::hours(24)),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Stores the answer for a claimed key (same transaction as the claim).
pub async fn complete_idempotent(
    conn: &impl ConnectionTrait,
    key: &str,
    status_code: u16,
    body: String,
    location: Option<String>,
) -> Result<(), DbErr> {
    idempotency_key::ActiveModel {
        key: Set(key.to_string()),
        status_code: Set(i32::from(status_code)),
        response_body: Set(body),
        location: Set(location),
        ..Default::default()
    }
    .update(conn)
    .await?;
    Ok(())
}

/// Filters of the staff booking list.
#[derive(Debug, Default)]
pub struct BookingFilter {
    /// Bookings starting at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Bookings starting before this instant.
    pub until: Option<DateTime<Utc>>,
    pub practitioner_id: Option<Uuid>,
    pub status: Option<String>,
    /// The patient's email, lower-cased.
    pub patient_email: Option<String>,
}

/// One page of bookings, soonest first, and the total.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: &BookingFilter,
    page: u64,
    per_page: u64,
) -> Result<(Vec<appointment::Model>, u64), DbErr> {
    let mut query = appointment::Entity::find();
    if let Some(from) = filter.from {
        query = query.filter(appointment::Column::StartsAt.gte(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(appointment::Column::StartsAt.lt(until));
    }
    if let Some(p) = filter.practitioner_id {
        query = query.filter(appointment::Column::PractitionerId.eq(p));
    }
    if let Some(status) = &filter.status {
        query = query.filter(appointment::Column::Status.eq(status.as_str()));
    }
    if let Some(email) = &filter.patient_email {
        let patients = sea_orm::sea_query::Query::select()
            .column(entity::patient::Column::Id)
            .from(entity::patient::Entity)
            .and_where(entity::patient::Column::Email.eq(email.as_str()))
            .to_owned();
        query = query.filter(appointment::Column::PatientId.in_subquery(patients));
    }
    let total = query.clone().count(conn).await?;
    let offset = super::page_offset(page, per_page);
    let items = query
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::Id)
        .offset(offset)
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}
