//! Group classes: sessions (one-off or weekly series) that block their instructor's time like
//! appointments, and seats that patients or staff book in them. Every write runs in one
//! transaction through the single writer (`state.writer`), as bookings do. One job per file:
//!
//! - `sessions`: staff create sessions, one-off or as a weekly series.
//! - `changes`: staff move, resize and cancel sessions, and end series.
//! - `seats`: online and staff seat bookings (and a claimed offer's seat).
//! - `seat_changes`: seat cancellations and attendance.
//!
//! Two guarantees are the database's, not this code's: a session's places (the guarded
//! UPDATE in `store::classes::take_seat` and the table's CHECK), and the instructor's time
//! (`practitioner_holds`, kept by triggers, with PostgreSQL's exclusion constraint or
//! SQLite's trigger refusing an overlap). The checks here only turn the common cases into
//! clear answers before the database has to refuse.

mod changes;
mod seat_changes;
mod seats;
mod sessions;

use chrono::{DateTime, Utc};
use entity::{class_seat, class_session, patient, practitioner, service};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::{FieldError, availability::OutsideReason, classes::SeatRefusal},
    email::SeatEmail,
    store,
};

pub use changes::{
    SeriesEnded, SessionChange, cancel_session, end_series, update_session, write_cancel,
};
pub use seat_changes::{cancel_seat, record_seat_attendance};
pub use seats::{
    NewSeat, Place, SeatBooked, SeatIdempotency, StaffSeat, book_seat, book_seat_by_staff,
    find_seat_by_token, seat_details, write_claimed_seat, write_seat,
};
pub use sessions::{NewSeries, NewSession, SeriesCreated, create_series, create_session};

/// Why a class operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The instructor's time is taken (by an appointment, another class or an offer).
    #[error("the instructor is busy then")]
    InstructorBusy,
    /// Time off or a closure covers the session's time.
    #[error("not available: {0}")]
    Outside(OutsideReason),
    #[error("the seat cannot be booked")]
    SeatRefused(SeatRefusal),
    #[error("the class is full")]
    Full,
    #[error("the patient already holds a seat")]
    AlreadyBooked,
    #[error("too many upcoming bookings")]
    LimitReached(u32),
    #[error("the capacity is below the seats taken")]
    CapacityBelowSeats,
    #[error("too late to change")]
    TooLate,
    #[error("the seat is {0}")]
    NotChangeable(&'static str),
    /// The request's Idempotency-Key was already answered: replay that answer.
    #[error("already answered")]
    Replay(Box<entity::idempotency_key::Model>),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Maps a failed write: an overlap refusal is the instructor's time taken meanwhile, the
/// seat index a second seat for the same patient.
pub(crate) fn write_error(err: DbErr) -> ClassError {
    if store::is_overlap_violation(&err) {
        ClassError::InstructorBusy
    } else if store::classes::is_already_booked(&err) {
        ClassError::AlreadyBooked
    } else {
        ClassError::Database(err)
    }
}

/// A session with the names it is shown with.
#[derive(Debug, Clone)]
pub struct SessionDetails {
    pub session: class_session::Model,
    pub service: service::Model,
    pub practitioner: practitioner::Model,
}

impl SessionDetails {
    /// Places still free: capacity minus seats taken and places held by offers.
    pub fn seats_left(&self) -> i32 {
        (self.session.capacity - self.session.seats_taken - self.session.seats_held).max(0)
    }
}

/// A seat with its session and patient.
#[derive(Debug, Clone)]
pub struct SeatDetails {
    pub seat: class_seat::Model,
    pub class: SessionDetails,
    pub patient: patient::Model,
}

/// Reads the names a session is shown with.
pub async fn session_details(
    conn: &impl ConnectionTrait,
    session: class_session::Model,
) -> Result<SessionDetails, DbErr> {
    let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
    let service = store::catalogue::find_service(conn, session.service_id)
        .await?
        .ok_or_else(|| missing("service"))?;
    let practitioner = store::catalogue::find_practitioner(conn, session.practitioner_id)
        .await?
        .ok_or_else(|| missing("practitioner"))?;
    Ok(SessionDetails {
        session,
        service,
        practitioner,
    })
}

/// `session_details` for many sessions, with one read of the catalogue.
pub async fn sessions_details(
    conn: &impl ConnectionTrait,
    sessions: Vec<class_session::Model>,
) -> Result<Vec<SessionDetails>, DbErr> {
    use std::collections::HashMap;
    let services: HashMap<Uuid, service::Model> = store::catalogue::list_services(conn, false)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let practitioners: HashMap<Uuid, practitioner::Model> =
        store::catalogue::list_practitioners(conn, false)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
    sessions
        .into_iter()
        .map(|session| {
            let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
            Ok(SessionDetails {
                service: services
                    .get(&session.service_id)
                    .cloned()
                    .ok_or_else(|| missing("service"))?,
                practitioner: practitioners
                    .get(&session.practitioner_id)
                    .cloned()
                    .ok_or_else(|| missing("practitioner"))?,
                session,
            })
        })
        .collect()
}

/// What a seat's emails say; the manage link only when the token is at hand.
pub(crate) fn seat_email(
    settings: &Settings,
    seat: &class_seat::Model,
    class: &SessionDetails,
    patient: &patient::Model,
    manage_token: Option<&str>,
) -> SeatEmail {
    let public_url = settings.server.public_url.trim_end_matches('/');
    SeatEmail {
        seat_id: seat.id,
        reference: seat.reference.clone(),
        service_name: class.service.name.clone(),
        practitioner_name: class.practitioner.name.clone(),
        patient_name: patient.name.clone(),
        patient_email: patient.email.clone(),
        start: class.session.starts_at,
        end: class.session.ends_at,
        sequence: class.session.sequence,
        manage_url: manage_token.map(|t| format!("{public_url}/manage/{t}")),
    }
}

/// Records a staff action on a class or seat in the audit log: codes, ids and times only.
pub(crate) async fn audit(
    conn: &impl ConnectionTrait,
    staff_id: Uuid,
    action: &str,
    entity: &str,
    id: Uuid,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    store::audit::record(conn, Some(staff_id), action, entity, Some(id), detail).await
}

/// The instant a class at `start` ends and the range it blocks, with the service's buffers.
pub fn blocked_range(
    service: &service::Model,
    start: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let minutes = |m: i32| chrono::Duration::minutes(i64::from(m.max(0)));
    let end = start + minutes(service.duration_minutes);
    (
        end,
        start - minutes(service.buffer_before_minutes),
        end + minutes(service.buffer_after_minutes),
    )
}
