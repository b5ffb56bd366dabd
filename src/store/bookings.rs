//! Appointments as bookings: create, find by id or manage token, change, history, and the
//! stored responses of idempotent requests.

use chrono::{DateTime, Utc};
use entity::{appointment, appointment_event, idempotency_key};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::domain::booking::BookingStatus;

pub async fn insert(
    conn: &impl ConnectionTrait,
    model: appointment::Model,
) -> Result<appointment::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
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

/// Confirmed bookings of a patient that start after `now`.
pub async fn count_upcoming_for_patient(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(patient_id))
        .filter(appointment::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .filter(appointment::Column::StartsAt.gt(now))
        .count(conn)
        .await
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
    appointment_event::ActiveModel {
        id: Set(Uuid::new_v4()),
        appointment_id: Set(appointment_id),
        at: Set(at),
        kind: Set(kind.to_string()),
        actor: Set(actor.to_string()),
        staff_id: Set(staff_id),
        detail: Set(detail.to_string()),
    }
    .insert(conn)
    .await?;
    Ok(())
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

pub async fn store_idempotent(
    conn: &impl ConnectionTrait,
    model: idempotency_key::Model,
) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_by_id(model.key.clone())
        .exec(conn)
        .await?;
    model.into_active_model().reset_all().insert(conn).await?;
    Ok(())
}

/// Forgets expired idempotency keys (they hold copies of responses).
pub async fn purge_idempotency(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected)
}
