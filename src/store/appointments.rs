//! Appointments: the reads that availability and booking need.

use chrono::{DateTime, Utc};
use entity::{appointment, practitioner_hold, time_off};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
    sea_query::{Expr, ExprTrait, Query, UnionType},
};
use uuid::Uuid;

/// Statuses that no longer hold their time.
pub const INACTIVE_STATUSES: [&str; 1] = ["cancelled"];

/// (practitioner, blocked_from, blocked_until) of everything that holds the given
/// practitioners' time — active appointments, scheduled class sessions and waitlist offers
/// (`practitioner_holds`) — overlapping [from, until), ordered by start. `except` leaves one
/// appointment out (the one being moved).
pub async fn blocked_ranges(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    blocked_ranges_query(practitioner_ids, from, until, except)
        .into_tuple()
        .all(conn)
        .await
}

/// A row of [`blocked_ranges_query`].
#[derive(Debug, sea_orm::FromQueryResult, serde::Deserialize)]
pub struct BlockedRange {
    pub practitioner_id: Uuid,
    pub blocked_from: DateTime<Utc>,
    pub blocked_until: DateTime<Utc>,
}

/// The query of [`blocked_ranges`]: its rows are (practitioner, blocked_from, blocked_until).
pub fn blocked_ranges_query(
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Select<practitioner_hold::Entity> {
    use practitioner_hold::Column as H;
    let mut query = practitioner_hold::Entity::find();
    if let Some(id) = except {
        query = query.filter(
            Condition::any()
                .add(H::AppointmentId.is_null())
                .add(H::AppointmentId.ne(id)),
        );
    }
    query
        .select_only()
        .column(H::PractitionerId)
        .column(H::BlockedFrom)
        .column(H::BlockedUntil)
        .filter(H::PractitionerId.is_in(practitioner_ids.iter().copied()))
        .filter(H::BlockedFrom.lt(until))
        .filter(H::BlockedUntil.gt(from))
        .order_by_asc(H::BlockedFrom)
}

/// (practitioner, start, end) of everything that blocks the given practitioners' time in
/// [from, until): their holds (appointments, class sessions, offers) and time off, in one
/// round trip.
pub async fn busy_ranges(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    use practitioner_hold::Column as H;
    let ids = || practitioner_ids.iter().copied();
    let mut query = Query::select()
        .column(H::PractitionerId)
        .column(H::BlockedFrom)
        .column(H::BlockedUntil)
        .from(practitioner_hold::Entity)
        .and_where(Expr::col(H::PractitionerId).is_in(ids()))
        .and_where(Expr::col(H::BlockedFrom).lt(until))
        .and_where(Expr::col(H::BlockedUntil).gt(from))
        .to_owned();
    let time_off = Query::select()
        .column(time_off::Column::PractitionerId)
        .column(time_off::Column::StartsAt)
        .column(time_off::Column::EndsAt)
        .from(time_off::Entity)
        .and_where(Expr::col(time_off::Column::PractitionerId).is_in(ids()))
        .and_where(Expr::col(time_off::Column::StartsAt).lt(until))
        .and_where(Expr::col(time_off::Column::EndsAt).gt(from))
        .to_owned();
    query.union(UnionType::All, time_off);
    conn.query_all(&query)
        .await?
        .into_iter()
        .map(|row| {
            Ok((
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
            ))
        })
        .collect()
}

/// Confirmed appointments whose time `[start, end)` overlaps [from, until), of one
/// practitioner or of everyone, soonest first.
pub async fn confirmed_between(
    conn: &impl ConnectionTrait,
    practitioner_id: Option<Uuid>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<appointment::Model>, DbErr> {
    let mut query = appointment::Entity::find()
        .filter(
            appointment::Column::Status
                .eq(crate::domain::booking::BookingStatus::Confirmed.as_str()),
        )
        .filter(appointment::Column::StartsAt.lt(until))
        .filter(appointment::Column::EndsAt.gt(from));
    if let Some(id) = practitioner_id {
        query = query.filter(appointment::Column::PractitionerId.eq(id));
    }
    query
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::Id)
        .all(conn)
        .await
}
