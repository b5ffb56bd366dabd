//! Working hours, time off and clinic closures.

use chrono::{DateTime, Utc};
use entity::{closure, time_off, working_hours};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Select, Set,
};
use uuid::Uuid;

use crate::domain::hours::WeeklyInterval;

/// The weekly intervals of the given practitioners, ordered by weekday then start.
pub async fn working_hours_of(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
) -> Result<Vec<working_hours::Model>, DbErr> {
    working_hours_query(practitioner_ids).all(conn).await
}

/// The query of [`working_hours_of`].
pub fn working_hours_query(practitioner_ids: &[Uuid]) -> Select<working_hours::Entity> {
    working_hours::Entity::find()
        .filter(working_hours::Column::PractitionerId.is_in(practitioner_ids.iter().copied()))
        .order_by_asc(working_hours::Column::PractitionerId)
        .order_by_asc(working_hours::Column::Weekday)
        .order_by_asc(working_hours::Column::StartMinute)
}

/// Replaces a practitioner's whole week with `intervals`.
pub async fn replace_week(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    intervals: &[WeeklyInterval],
) -> Result<(), DbErr> {
    working_hours::Entity::delete_many()
        .filter(working_hours::Column::PractitionerId.eq(practitioner_id))
        .exec(conn)
        .await?;
    if intervals.is_empty() {
        return Ok(());
    }
    let rows = intervals.iter().map(|iv| working_hours::ActiveModel {
        id: Set(Uuid::new_v4()),
        practitioner_id: Set(practitioner_id),
        weekday: Set(i16::from(iv.weekday)),
        start_minute: Set(iv.start_minute as i32),
        end_minute: Set(iv.end_minute as i32),
        valid_from: Set(iv.valid_from),
        valid_until: Set(iv.valid_until),
    });
    working_hours::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Converts stored rows back into domain intervals.
pub fn to_interval(row: &working_hours::Model) -> WeeklyInterval {
    WeeklyInterval {
        weekday: u8::try_from(row.weekday).unwrap_or(0),
        start_minute: u32::try_from(row.start_minute).unwrap_or(0),
        end_minute: u32::try_from(row.end_minute).unwrap_or(0),
        valid_from: row.valid_from,
        valid_until: row.valid_until,
    }
}

/// Time off of the given practitioners that overlaps [from, until).
pub async fn time_off_between(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<time_off::Model>, DbErr> {
    time_off_query(practitioner_ids, from, until)
        .all(conn)
        .await
}

/// The query of [`time_off_between`].
pub fn time_off_query(
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Select<time_off::Entity> {
    time_off::Entity::find()
        .filter(time_off::Column::PractitionerId.is_in(practitioner_ids.iter().copied()))
        .filter(time_off::Column::StartsAt.lt(until))
        .filter(time_off::Column::EndsAt.gt(from))
        .order_by_asc(time_off::Column::StartsAt)
}

/// All time off of these practitioners that has not yet ended, soonest first.
pub async fn upcoming_time_off(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<time_off::Model>, DbErr> {
    time_off::Entity::find()
        .filter(time_off::Column::PractitionerId.is_in(practitioner_ids.iter().copied()))
        .filter(time_off::Column::EndsAt.gt(now))
        .order_by_asc(time_off::Column::StartsAt)
        .all(conn)
        .await
}

pub async fn insert_time_off(
    conn: &impl ConnectionTrait,
    model: time_off::Model,
) -> Result<time_off::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn find_time_off(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<time_off::Model>, DbErr> {
    time_off::Entity::find_by_id(id).one(conn).await
}

pub async fn delete_time_off(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    time_off::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

/// Closures overlapping [from, until).
pub async fn closures_between(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<closure::Model>, DbErr> {
    closures_query(from, until).all(conn).await
}

/// The query of [`closures_between`].
pub fn closures_query(from: DateTime<Utc>, until: DateTime<Utc>) -> Select<closure::Entity> {
    closure::Entity::find()
        .filter(closure::Column::StartsAt.lt(until))
        .filter(closure::Column::EndsAt.gt(from))
        .order_by_asc(closure::Column::StartsAt)
}

/// Closures that have not yet ended, soonest first.
pub async fn upcoming_closures(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<closure::Model>, DbErr> {
    closure::Entity::find()
        .filter(closure::Column::EndsAt.gt(now))
        .order_by_asc(closure::Column::StartsAt)
        .all(conn)
        .await
}

pub async fn insert_closure(
    conn: &impl ConnectionTrait,
    model: closure::Model,
) -> Result<closure::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn find_closure(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<closure::Model>, DbErr> {
    closure::Entity::find_by_id(id).one(conn).await
}

pub async fn delete_closure(conn: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    closure::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}
