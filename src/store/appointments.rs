//! Appointments: the reads that availability and booking need.

use chrono::{DateTime, Utc};
use entity::{appointment, time_off, waitlist_offer};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query, UnionType},
};
use uuid::Uuid;

/// Statuses that no longer hold their time.
pub const INACTIVE_STATUSES: [&str; 1] = ["cancelled"];

/// (practitioner, blocked_from, blocked_until) of every active appointment of the given
/// practitioners whose blocked range overlaps [from, until), ordered by start.
/// `except` leaves one appointment out (the one being moved).
pub async fn blocked_ranges(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    let mut query = appointment::Entity::find();
    if let Some(id) = except {
        query = query.filter(appointment::Column::Id.ne(id));
    }
    query
        .select_only()
        .column(appointment::Column::PractitionerId)
        .column(appointment::Column::BlockedFrom)
        .column(appointment::Column::BlockedUntil)
        .filter(appointment::Column::PractitionerId.is_in(practitioner_ids.iter().copied()))
        .filter(appointment::Column::Status.is_not_in(INACTIVE_STATUSES))
        .filter(appointment::Column::BlockedFrom.lt(until))
        .filter(appointment::Column::BlockedUntil.gt(from))
        .order_by_asc(appointment::Column::BlockedFrom)
        .into_tuple()
        .all(conn)
        .await
}

/// (practitioner, start, end) of everything that blocks the given practitioners' time in
/// [from, until): active appointments' blocked ranges, time off and the time open waitlist
/// offers hold, in one round trip.
pub async fn busy_ranges(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    let ids = || practitioner_ids.iter().copied();
    let mut query = Query::select()
        .column(appointment::Column::PractitionerId)
        .column(appointment::Column::BlockedFrom)
        .column(appointment::Column::BlockedUntil)
        .from(appointment::Entity)
        .and_where(Expr::col(appointment::Column::PractitionerId).is_in(ids()))
        .and_where(Expr::col(appointment::Column::Status).is_not_in(INACTIVE_STATUSES))
        .and_where(Expr::col(appointment::Column::BlockedFrom).lt(until))
        .and_where(Expr::col(appointment::Column::BlockedUntil).gt(from))
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
    let held = Query::select()
        .column(waitlist_offer::Column::PractitionerId)
        .column(waitlist_offer::Column::BlockedFrom)
        .column(waitlist_offer::Column::BlockedUntil)
        .from(waitlist_offer::Entity)
        .and_where(Expr::col(waitlist_offer::Column::PractitionerId).is_in(ids()))
        .and_where(Expr::col(waitlist_offer::Column::Status).eq("open"))
        .and_where(Expr::col(waitlist_offer::Column::BlockedFrom).lt(until))
        .and_where(Expr::col(waitlist_offer::Column::BlockedUntil).gt(from))
        .to_owned();
    query.union(UnionType::All, time_off);
    query.union(UnionType::All, held);
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
