//! Reads for the staff calendar and the practitioners' calendar feeds: appointments with
//! their service and patient names in one joined query, whatever the number of days or
//! practitioners.

use chrono::{DateTime, Utc};
use entity::{appointment, patient, service};
use sea_orm::{
    ConnectionTrait, DbErr, FromQueryResult,
    sea_query::{Expr, ExprTrait, Order, Query},
};
use uuid::Uuid;

use super::appointments::INACTIVE_STATUSES;

/// An appointment as a calendar shows it: times, status, service and patient name. No
/// contact details: a calendar (and a feed that leaves the building) does not need them.
#[derive(Debug, Clone, FromQueryResult)]
pub struct CalendarAppointment {
    pub id: Uuid,
    pub reference: String,
    pub status: String,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub sequence: i32,
    pub updated_at: DateTime<Utc>,
    pub service_id: Uuid,
    pub service_name: String,
    pub patient_name: String,
    /// The course of treatment it belongs to, if any.
    pub series_id: Option<Uuid>,
}

/// Appointments that overlap [from, until), ordered by start: of the given practitioners, or
/// of everyone when `practitioner_ids` is `None`; cancelled ones only when asked.
pub async fn appointments_between(
    conn: &impl ConnectionTrait,
    practitioner_ids: Option<&[Uuid]>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    include_cancelled: bool,
) -> Result<Vec<CalendarAppointment>, DbErr> {
    use appointment::Column as A;
    let a = |c: A| (appointment::Entity, c);
    let mut query = Query::select();
    query
        .columns([
            a(A::Id),
            a(A::Reference),
            a(A::Status),
            a(A::PractitionerId),
            a(A::StartsAt),
            a(A::EndsAt),
            a(A::Sequence),
            a(A::UpdatedAt),
            a(A::ServiceId),
            a(A::SeriesId),
        ])
        .expr_as(
            Expr::col((service::Entity, service::Column::Name)),
            "service_name",
        )
        .expr_as(
            Expr::col((patient::Entity, patient::Column::Name)),
            "patient_name",
        )
        .from(appointment::Entity)
        .inner_join(
            service::Entity,
            Expr::col((service::Entity, service::Column::Id)).equals(a(A::ServiceId)),
        )
        .inner_join(
            patient::Entity,
            Expr::col((patient::Entity, patient::Column::Id)).equals(a(A::PatientId)),
        )
        .and_where(Expr::col(a(A::StartsAt)).lt(until))
        .and_where(Expr::col(a(A::EndsAt)).gt(from))
        .order_by(a(A::StartsAt), Order::Asc)
        .order_by(a(A::Id), Order::Asc);
    if let Some(ids) = practitioner_ids {
        query.and_where(Expr::col(a(A::PractitionerId)).is_in(ids.iter().copied()));
    }
    if !include_cancelled {
        query.and_where(Expr::col(a(A::Status)).is_not_in(INACTIVE_STATUSES));
    }
    conn.query_all(&query)
        .await?
        .iter()
        .map(|row| CalendarAppointment::from_query_result(row, ""))
        .collect()
}
