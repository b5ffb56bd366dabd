//! The booking service: every placement, move, cancellation and attendance of an appointment,
//! each one write transaction. One job per file:
//!
//! - `placement`: where an appointment may go — reads the practitioner's calendar inside the
//!   transaction and asks the domain rulebook (`domain::rulebook::decide`), with the caller's
//!   overrides; the online path also chooses among free practitioners.
//! - `online`: online bookings, with everything that needs no decision done before the write
//!   slot.
//! - `place`: bookings by staff, and the confirmed appointment every new booking inserts.
//! - `reschedule`, `cancel`, `attendance`: changes to an existing booking.
//! - `patients`: which patient record a booking uses (never changing an existing one), and
//!   the one staff operation that changes stored details.
//!
//! The double-booking guard is the rulebook's answer on what the transaction read (SQLite's
//! `BEGIN IMMEDIATE` serialises writers) plus, on PostgreSQL, the exclusion constraint
//! `practitioner_holds_no_overlap` on the hold every active appointment has (SQLSTATE 23P01),
//! which refuses whatever slips past a concurrent check. Each operation prepares what needs
//! no database (tokens, hashes, parsed input) first; its `write_*` function takes the open
//! transaction and those inputs, re-reads what it decides on, and writes.

mod attendance;
mod cancel;
mod online;
mod online_postgres;
pub mod patients;
mod place;
pub(crate) mod placement;
mod reschedule;
pub mod series;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use entity::{appointment, patient, practitioner, service};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::{
    auth::token,
    config::Settings,
    domain::{
        FieldError,
        availability::OutsideReason,
        booking::PatientDetails,
        policy::{self, PatientChange},
        rulebook::Rule,
        text::{EmailAddress, PersonName, PhoneNumber},
    },
    email::BookingEmail,
    state::AppState,
    store,
};

pub use attendance::record_attendance;
pub use cancel::{Cancellation, cancel, write_cancellation};
pub use online::{Ahead, book, write_online};
pub use place::{
    ClaimedSlot, book_by_staff, insert_with_fresh_reference, write_claimed_slot,
    write_staff_booking,
};
pub use reschedule::{Move, reschedule, write_reschedule};

/// A validated online booking request.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub service_id: Uuid,
    pub practitioner_id: Option<Uuid>,
    pub start: DateTime<Utc>,
    pub patient: PatientDetails,
    pub notes: String,
}

/// A booking taken by staff on the phone or at the desk. The patient's email is optional;
/// without one, no patient email is sent.
#[derive(Debug, Clone)]
pub struct StaffBooking {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub start: DateTime<Utc>,
    pub patient_name: PersonName,
    pub patient_email: Option<EmailAddress>,
    pub patient_phone: Option<PhoneNumber>,
    pub notes: String,
    /// Time off and closures the request sets aside (audited).
    pub overrides: Vec<Rule>,
}

/// Why a booking or a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("the slot is taken")]
    SlotUnavailable,
    #[error("not a bookable slot: {0}")]
    Outside(OutsideReason),
    #[error("the practitioner does not offer this service online")]
    NotOffered,
    #[error("the service is no longer offered")]
    ServiceUnavailable,
    /// A group class: booked by seats in its sessions, never as an appointment.
    #[error("the service is a class")]
    ClassService,
    #[error("too many upcoming bookings")]
    LimitReached(u32),
    #[error("too late to change")]
    TooLate,
    #[error("the booking is {0}")]
    NotChangeable(&'static str),
    /// The request's Idempotency-Key was already answered: replay that answer.
    #[error("already answered")]
    Replay(Box<entity::idempotency_key::Model>),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Who made a change, for the booking's history.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Patient,
    Staff(Uuid),
}

impl Actor {
    fn name(self) -> &'static str {
        match self {
            Actor::Patient => "patient",
            Actor::Staff(_) => "staff",
        }
    }

    fn staff_id(self) -> Option<Uuid> {
        match self {
            Actor::Patient => None,
            Actor::Staff(id) => Some(id),
        }
    }
}

/// A booking with the names it is shown with.
#[derive(Debug, Clone)]
pub struct BookingDetails {
    pub appointment: appointment::Model,
    pub service: service::Model,
    pub practitioner: practitioner::Model,
    pub patient: patient::Model,
}

/// A new booking and its manage token (shown once).
#[derive(Debug, Clone)]
pub struct Booked {
    pub details: BookingDetails,
    pub manage_token: String,
}

/// The response an idempotent request answered with: status, body and Location.
pub type StoredResponse = (u16, String, Option<String>);

/// An idempotency key to record with the booking, in the same transaction.
pub struct IdempotentResponse<'a> {
    pub key: String,
    pub request_hash: String,
    /// Renders the response to store.
    pub render: &'a (dyn Fn(&Booked) -> StoredResponse + Send + Sync),
}

/// What every write needs besides the transaction: the settings and the clinic's zone.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub tz: Tz,
}

impl<'a> Context<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self {
            settings: &state.settings,
            tz: state.tz,
        }
    }
}

/// A fresh manage token and its hash, made before the transaction opens.
#[derive(Debug, Clone)]
pub struct ManageToken {
    pub plain: String,
    pub hash: String,
}

impl ManageToken {
    pub fn generate() -> Self {
        let plain = token::generate();
        let hash = token::hash(&plain);
        Self { plain, hash }
    }
}

/// What the emails about a booking say; the manage link only when the token is at hand.
/// (Every cancellation email links to `{public_url}/book` to book again.)
fn email_view(settings: &Settings, d: &BookingDetails, manage_token: Option<&str>) -> BookingEmail {
    let public_url = settings.server.public_url.trim_end_matches('/');
    BookingEmail {
        appointment_id: d.appointment.id,
        reference: d.appointment.reference.clone(),
        service_name: d.service.name.clone(),
        practitioner_name: d.practitioner.name.clone(),
        practitioner_email: d.practitioner.email.clone(),
        patient_name: d.patient.name.clone(),
        patient_email: d.patient.email.clone(),
        start: d.appointment.starts_at,
        end: d.appointment.ends_at,
        sequence: d.appointment.sequence,
        manage_url: manage_token.map(|t| format!("{public_url}/manage/{t}")),
        series: d.appointment.series_id.map(|id| {
            (
                id,
                d.appointment
                    .series_start
                    .unwrap_or(d.appointment.starts_at),
            )
        }),
    }
}

/// Counts a booking attempt's outcome (online or by staff) for `/metrics` (a replayed answer is not a new
/// attempt, and a database failure is an error, not a decision).
fn counted(result: Result<Booked, BookingError>) -> Result<Booked, BookingError> {
    use crate::metrics::{BookingOutcome, booking};
    match &result {
        Ok(_) => booking(BookingOutcome::Confirmed),
        Err(BookingError::SlotUnavailable) => booking(BookingOutcome::Conflict),
        Err(BookingError::Replay(_) | BookingError::Database(_)) => {}
        Err(_) => booking(BookingOutcome::Refused),
    }
    result
}

/// Maps a failed write: PostgreSQL's overlap refusal is a lost race for the slot.
fn write_error(err: DbErr) -> BookingError {
    if store::is_overlap_violation(&err) {
        BookingError::SlotUnavailable
    } else {
        BookingError::Database(err)
    }
}

/// Records a staff action on a booking in the audit log (patients' own actions are in the
/// booking's history only). `detail` holds codes, ids and times, never free text.
async fn audit_staff(
    conn: &impl ConnectionTrait,
    actor: Actor,
    action: &str,
    appointment_id: Uuid,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    match actor {
        Actor::Patient => Ok(()),
        Actor::Staff(id) => {
            store::audit::record(
                conn,
                Some(id),
                action,
                "booking",
                Some(appointment_id),
                detail,
            )
            .await
        }
    }
}

/// The booking a manage token opens, if any.
pub async fn find_by_token(
    state: &AppState,
    token_value: &str,
) -> Result<Option<BookingDetails>, DbErr> {
    let Some(appt) =
        store::bookings::find_by_token_hash(&state.db, &token::hash(token_value)).await?
    else {
        return Ok(None);
    };
    details(&state.db, appt).await.map(Some)
}

/// The service's notice period for patient changes, in hours.
pub fn notice_hours(state: &AppState, service: &service::Model, reschedule: bool) -> u32 {
    let change = if reschedule {
        PatientChange::Reschedule
    } else {
        PatientChange::Cancel
    };
    policy::notice_hours(service, &state.settings.policy, change)
}

/// Reads the names a booking is shown with.
pub async fn details(
    conn: &impl ConnectionTrait,
    appointment: appointment::Model,
) -> Result<BookingDetails, DbErr> {
    let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
    let service = store::catalogue::find_service(conn, appointment.service_id)
        .await?
        .ok_or_else(|| missing("service"))?;
    let practitioner = store::catalogue::find_practitioner(conn, appointment.practitioner_id)
        .await?
        .ok_or_else(|| missing("practitioner"))?;
    let patient = store::patients::find(conn, appointment.patient_id)
        .await?
        .ok_or_else(|| missing("patient"))?;
    Ok(BookingDetails {
        appointment,
        service,
        practitioner,
        patient,
    })
}

/// `details` for many appointments, in three queries.
pub async fn details_many(
    conn: &impl ConnectionTrait,
    appointments: Vec<appointment::Model>,
) -> Result<Vec<BookingDetails>, DbErr> {
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
    let patient_ids: Vec<Uuid> = appointments.iter().map(|a| a.patient_id).collect();
    let patients: HashMap<Uuid, patient::Model> = store::patients::find_many(conn, &patient_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    appointments
        .into_iter()
        .map(|appointment| {
            let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
            Ok(BookingDetails {
                service: services
                    .get(&appointment.service_id)
                    .cloned()
                    .ok_or_else(|| missing("service"))?,
                practitioner: practitioners
                    .get(&appointment.practitioner_id)
                    .cloned()
                    .ok_or_else(|| missing("practitioner"))?,
                patient: patients
                    .get(&appointment.patient_id)
                    .cloned()
                    .ok_or_else(|| missing("patient"))?,
                appointment,
            })
        })
        .collect()
}
