//! Group classes in the database: series, sessions, seats and the practitioner holds they
//! meet. Seat counts change only through the guarded UPDATEs here (`take_seat`,
//! `release_seat`); the table's CHECK is the last word on capacity.

use chrono::{DateTime, Utc};
use entity::{class_seat, class_series, class_session, practitioner_hold};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, ExprTrait, SelectStatement},
};
use uuid::Uuid;

use crate::domain::classes::{SeatStatus, SessionStatus};

/// Seat statuses that hold a place (everything but `cancelled`).
pub const ACTIVE_SEAT_STATUSES: [&str; 3] = ["confirmed", "attended", "no_show"];

/// Inserts a row as given and returns it (SQLite answers without RETURNING, as bookings do).
async fn insert_model<A>(conn: &impl ConnectionTrait, active: A) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    <A::Entity as EntityTrait>::insert(active)
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

pub async fn insert_series(
    conn: &impl ConnectionTrait,
    model: class_series::Model,
) -> Result<class_series::Model, DbErr> {
    insert_model(conn, model.clone().into_active_model().reset_all()).await?;
    Ok(model)
}

pub async fn find_series(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<class_series::Model>, DbErr> {
    class_series::Entity::find_by_id(id).one(conn).await
}

pub async fn update_series(
    conn: &impl ConnectionTrait,
    model: class_series::Model,
) -> Result<class_series::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

pub async fn insert_session(
    conn: &impl ConnectionTrait,
    model: class_session::Model,
) -> Result<class_session::Model, DbErr> {
    insert_model(conn, model.clone().into_active_model().reset_all()).await?;
    Ok(model)
}

pub async fn find_session(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<class_session::Model>, DbErr> {
    class_session::Entity::find_by_id(id).one(conn).await
}

/// The session, locked against concurrent changes (PostgreSQL; SQLite has one writer).
pub async fn find_session_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<class_session::Model>, DbErr> {
    class_session::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

pub async fn update_session(
    conn: &impl ConnectionTrait,
    model: class_session::Model,
) -> Result<class_session::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

/// Sessions starting in [from, until), by start then id; of some practitioners or services
/// when given.
pub async fn sessions_between(
    conn: &impl ConnectionTrait,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    practitioner_ids: Option<&[Uuid]>,
    service_id: Option<Uuid>,
) -> Result<Vec<class_session::Model>, DbErr> {
    use class_session::Column as C;
    let mut query = class_session::Entity::find()
        .filter(C::StartsAt.gte(from))
        .filter(C::StartsAt.lt(until));
    if let Some(ids) = practitioner_ids {
        query = query.filter(C::PractitionerId.is_in(ids.iter().copied()));
    }
    if let Some(id) = service_id {
        query = query.filter(C::ServiceId.eq(id));
    }
    query
        .order_by_asc(C::StartsAt)
        .order_by_asc(C::Id)
        .all(conn)
        .await
}

/// Scheduled sessions of a series that start at or after `from`.
pub async fn series_sessions_from(
    conn: &impl ConnectionTrait,
    series_id: Uuid,
    from: DateTime<Utc>,
) -> Result<Vec<class_session::Model>, DbErr> {
    use class_session::Column as C;
    class_session::Entity::find()
        .filter(C::SeriesId.eq(series_id))
        .filter(C::Status.eq(SessionStatus::Scheduled.as_str()))
        .filter(C::StartsAt.gte(from))
        .order_by_asc(C::StartsAt)
        .all(conn)
        .await
}

/// Takes one place in a scheduled session that has one free: one guarded statement, so that
/// concurrent bookings (on any instance) can never take more places than there are. `false`
/// when none was free or the session is not scheduled.
pub async fn take_seat(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use class_session::Column as C;
    let result = class_session::Entity::update_many()
        .col_expr(C::SeatsTaken, Expr::col(C::SeatsTaken).add(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(session_id))
        .filter(C::Status.eq(SessionStatus::Scheduled.as_str()))
        .filter(
            Expr::col(C::SeatsTaken)
                .add(Expr::col(C::SeatsHeld))
                .lt(Expr::col(C::Capacity)),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Turns a place held by a waitlist offer into a taken one (the offer was claimed): one
/// guarded statement, like `take_seat`. `false` when no place was held or the session is
/// not scheduled.
pub async fn take_held_seat(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use class_session::Column as C;
    let result = class_session::Entity::update_many()
        .col_expr(C::SeatsTaken, Expr::col(C::SeatsTaken).add(1))
        .col_expr(C::SeatsHeld, Expr::col(C::SeatsHeld).sub(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(session_id))
        .filter(C::Status.eq(SessionStatus::Scheduled.as_str()))
        .filter(C::SeatsHeld.gt(0))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives one place back (a seat was cancelled).
pub async fn release_seat(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use class_session::Column as C;
    class_session::Entity::update_many()
        .col_expr(C::SeatsTaken, Expr::col(C::SeatsTaken).sub(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(session_id))
        .filter(C::SeatsTaken.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn insert_seat(
    conn: &impl ConnectionTrait,
    model: class_seat::Model,
) -> Result<class_seat::Model, DbErr> {
    match conn.get_database_backend() {
        DbBackend::Sqlite => {
            insert_model(conn, model.clone().into_active_model().reset_all()).await?;
            Ok(model)
        }
        _ => model.into_active_model().reset_all().insert(conn).await,
    }
}

pub async fn find_seat(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<class_seat::Model>, DbErr> {
    class_seat::Entity::find_by_id(id).one(conn).await
}

pub async fn find_seat_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<class_seat::Model>, DbErr> {
    class_seat::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

pub async fn find_seat_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<class_seat::Model>, DbErr> {
    class_seat::Entity::find()
        .filter(class_seat::Column::ManageTokenHash.eq(token_hash))
        .one(conn)
        .await
}

pub async fn update_seat(
    conn: &impl ConnectionTrait,
    model: class_seat::Model,
) -> Result<class_seat::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

/// Every seat of a session (cancelled ones too), oldest first.
pub async fn seats_of(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
) -> Result<Vec<class_seat::Model>, DbErr> {
    class_seat::Entity::find()
        .filter(class_seat::Column::ClassSessionId.eq(session_id))
        .order_by_asc(class_seat::Column::CreatedAt)
        .order_by_asc(class_seat::Column::Id)
        .all(conn)
        .await
}

/// The patient's active seat in the session, if any.
pub async fn active_seat_of_patient(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
    patient_id: Uuid,
) -> Result<Option<class_seat::Model>, DbErr> {
    class_seat::Entity::find()
        .filter(class_seat::Column::ClassSessionId.eq(session_id))
        .filter(class_seat::Column::PatientId.eq(patient_id))
        .filter(class_seat::Column::Status.is_in(ACTIVE_SEAT_STATUSES))
        .one(conn)
        .await
}

/// Confirmed seats of a patient in scheduled sessions that start after `now`.
pub async fn count_upcoming_seats(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let upcoming = upcoming_sessions(now);
    class_seat::Entity::find()
        .filter(class_seat::Column::PatientId.eq(patient_id))
        .filter(class_seat::Column::Status.eq(SeatStatus::Confirmed.as_str()))
        .filter(class_seat::Column::ClassSessionId.in_subquery(upcoming))
        .count(conn)
        .await
}

/// Whether anything else holds the practitioner's time in [from, until): an appointment,
/// another class session or an offer. `except_session` leaves out the session being moved.
pub async fn practitioner_busy(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except_session: Option<Uuid>,
) -> Result<bool, DbErr> {
    use practitioner_hold::Column as H;
    let mut query = practitioner_hold::Entity::find()
        .filter(H::PractitionerId.eq(practitioner_id))
        .filter(H::BlockedFrom.lt(until))
        .filter(H::BlockedUntil.gt(from));
    if let Some(id) = except_session {
        query = query.filter(
            sea_orm::Condition::any()
                .add(H::ClassSessionId.is_null())
                .add(H::ClassSessionId.ne(id)),
        );
    }
    Ok(query.count(conn).await? > 0)
}

/// Whether an error is the "one active seat per patient per session" index refusing.
pub fn is_already_booked(err: &DbErr) -> bool {
    super::is_unique_violation(err) && err.to_string().contains("idx_class_seats_one_per_patient")
        || err
            .to_string()
            .contains("class_seats.class_session_id, class_seats.patient_id")
}

/// Confirmed seats of a patient in scheduled sessions that start after `now`.
pub async fn upcoming_seats(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<class_seat::Model>, DbErr> {
    let upcoming = upcoming_sessions(now);
    class_seat::Entity::find()
        .filter(class_seat::Column::PatientId.eq(patient_id))
        .filter(class_seat::Column::Status.eq(SeatStatus::Confirmed.as_str()))
        .filter(class_seat::Column::ClassSessionId.in_subquery(upcoming))
        .all(conn)
        .await
}

/// Every seat of a patient, newest first.
pub async fn seats_of_patient(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
) -> Result<Vec<class_seat::Model>, DbErr> {
    class_seat::Entity::find()
        .filter(class_seat::Column::PatientId.eq(patient_id))
        .order_by_desc(class_seat::Column::CreatedAt)
        .all(conn)
        .await
}

/// The ids of scheduled sessions that start after `now`, as a subquery.
fn upcoming_sessions(now: DateTime<Utc>) -> SelectStatement {
    use class_session::Column as S;
    class_session::Entity::find()
        .select_only()
        .column(S::Id)
        .filter(S::StartsAt.gt(now))
        .filter(S::Status.eq(SessionStatus::Scheduled.as_str()))
        .into_query()
}

/// Scheduled sessions whose time `[start, end)` overlaps [from, until), of one instructor or
/// of everyone, soonest first.
pub async fn scheduled_between(
    conn: &impl ConnectionTrait,
    practitioner_id: Option<Uuid>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<class_session::Model>, DbErr> {
    use class_session::Column as C;
    let mut query = class_session::Entity::find()
        .filter(C::Status.eq(SessionStatus::Scheduled.as_str()))
        .filter(C::StartsAt.lt(until))
        .filter(C::EndsAt.gt(from));
    if let Some(id) = practitioner_id {
        query = query.filter(C::PractitionerId.eq(id));
    }
    query
        .order_by_asc(C::StartsAt)
        .order_by_asc(C::Id)
        .all(conn)
        .await
}
