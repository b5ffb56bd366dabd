//! Appointments: the reads that availability and booking need.

use chrono::{DateTime, Utc};
use entity::appointment;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Statuses that no longer hold their time.
pub const INACTIVE_STATUSES: [&str; 1] = ["cancelled"];

/// (practitioner, blocked_from, blocked_until) of every active appointment of the given
/// practitioners whose blocked range overlaps [from, until), ordered by start.
pub async fn blocked_ranges(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>, DbErr> {
    appointment::Entity::find()
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
