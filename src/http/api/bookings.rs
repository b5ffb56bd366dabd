//! Online booking and the patient's manage link: `POST /api/v1/bookings`,
//! `GET /api/v1/manage/{token}`, `POST …/cancel`, `POST …/reschedule`.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path},
    payload::Json,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    booking::{
        self, Actor, Booked, BookingDetails, BookingError, Cancellation, IdempotentResponse, Move,
        NewBooking,
    },
    domain::{
        FieldError,
        availability::OutsideReason,
        booking::{
            BookingStatus, PatientDetails, change_deadline, parse_notes, patient_may_change,
        },
    },
    http::{
        problem::{ApiError, ApiResult},
        rate_limit::Limit,
    },
    state::AppState,
    store,
};

use super::{
    ApiTags,
    classes::{Seat, class_problem, public_seat_object},
};
use crate::{
    classes::{self, SeatDetails},
    domain::classes::SeatStatus,
    http::client::ClientAddr,
};

pub struct BookingsApi {
    pub state: Arc<AppState>,
}

/// A name and id pair.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: Uuid,
    pub name: String,
}

/// The patient on a booking.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct BookingPatient {
    pub name: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
}

/// A booking as patients and staff see it.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct Booking {
    pub id: Uuid,
    /// Short reference to quote on the phone, e.g. `7KQ2M9XD`.
    pub reference: String,
    /// confirmed, arrived, completed, no_show or cancelled.
    pub status: String,
    pub service: NamedRef,
    pub practitioner: NamedRef,
    /// RFC 3339 in UTC.
    pub start: String,
    pub end: String,
    /// Start in the clinic's time zone, with its offset.
    pub local_start: String,
    pub patient: BookingPatient,
    pub notes: String,
    pub created_at: String,
    /// The course of treatment (series) this booking belongs to; null for a single booking.
    #[oai(nullable)]
    pub series_id: Option<Uuid>,
}

pub fn booking_object(d: &BookingDetails, tz: chrono_tz::Tz) -> Booking {
    let utc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let a = &d.appointment;
    Booking {
        id: a.id,
        reference: a.reference.clone(),
        status: a.status.clone(),
        service: NamedRef {
            id: d.service.id,
            name: d.service.name.clone(),
        },
        practitioner: NamedRef {
            id: d.practitioner.id,
            name: d.practitioner.name.clone(),
        },
        start: utc(a.starts_at),
        end: utc(a.ends_at),
        local_start: a
            .starts_at
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        patient: BookingPatient {
            name: d.patient.name.clone(),
            email: d.patient.email.clone(),
            phone: d.patient.phone.clone(),
        },
        notes: a.notes.clone(),
        created_at: utc(a.created_at),
        series_id: a.series_id,
    }
}

/// A booking as shown through its manage link. A link can be opened by whoever holds it, and a
/// booking made with someone else's address lands on their record, so the link shows the
/// patient's name shortened ("Jo B.") and no phone number.
pub fn public_booking_object(d: &BookingDetails, tz: chrono_tz::Tz) -> Booking {
    let mut booking = booking_object(d, tz);
    booking.patient.name = short_name(&booking.patient.name);
    booking.patient.phone = None;
    booking
}

pub(super) fn short_name(name: &str) -> String {
    let mut words = name.split_whitespace();
    match (words.next(), words.next_back()) {
        (Some(first), Some(last)) => {
            let initial: String = last.chars().take(1).collect();
            format!("{first} {initial}.")
        }
        (Some(first), None) => first.to_string(),
        _ => String::new(),
    }
}

#[derive(Debug, Object, Serialize)]
pub struct PatientInput {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
}

#[derive(Debug, Object, Serialize)]
pub struct ConsentInput {
    /// Must be true.
    pub privacy: bool,
    #[oai(default)]
    pub marketing: bool,
}

/// A booking request.
#[derive(Debug, Object, Serialize)]
pub struct BookingRequest {
    pub service_id: Uuid,
    /// Omit to let the clinic choose the free practitioner with the lightest day.
    pub practitioner_id: Option<Uuid>,
    /// A slot start from `GET /api/v1/availability`, RFC 3339 with an offset.
    pub start: String,
    pub patient: PatientInput,
    /// Up to 2,000 characters.
    pub notes: Option<String>,
    pub consent: ConsentInput,
}

/// The new booking and its manage link; the token is shown only here and in emails.
#[derive(Debug, Object, Serialize, Deserialize)]
pub struct BookingCreated {
    pub booking: Booking,
    pub manage_token: String,
    pub manage_url: String,
}

#[derive(ApiResponse)]
pub enum BookingCreatedResponse {
    /// Booked.
    #[oai(status = 201)]
    Created(Json<BookingCreated>, #[oai(header = "Location")] String),
}

/// A booking or a class seat seen through its manage link: exactly one of `booking` and
/// `seat` is present, the other absent.
#[derive(Debug, Object)]
pub struct ManagedBooking {
    /// The booking, when the link is a booking's; absent for a seat.
    #[oai(skip_serializing_if_is_none)]
    pub booking: Option<Booking>,
    /// The class seat, when the link is a seat's; absent for a booking.
    #[oai(skip_serializing_if_is_none)]
    pub seat: Option<Seat>,
    pub can_cancel: bool,
    /// Always false for a seat: a patient moves by cancelling and booking another session.
    pub can_reschedule: bool,
    /// The last moment the patient may cancel online.
    pub cancel_deadline: String,
}

#[derive(Debug, Object)]
pub struct BookingEnvelope {
    pub booking: Booking,
}

/// A cancellation through a manage link: exactly one of `booking` and `seat` is present.
#[derive(Debug, Object)]
pub struct ManagedEnvelope {
    /// The booking, when the link is a booking's; absent for a seat.
    #[oai(skip_serializing_if_is_none)]
    pub booking: Option<Booking>,
    /// The class seat, when the link is a seat's; absent for a booking.
    #[oai(skip_serializing_if_is_none)]
    pub seat: Option<Seat>,
}

#[derive(Debug, Object)]
pub struct CancelRequest {
    /// Why, in the patient's words (up to 500 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Object)]
pub struct RescheduleRequest {
    /// A slot start from `GET /api/v1/availability`.
    pub start: String,
    /// Another practitioner offering the same service; omit to stay with the same one.
    pub practitioner_id: Option<Uuid>,
}

/// Parses an RFC 3339 instant with an offset.
pub fn parse_start(field: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new(field, "must be an RFC 3339 date-time with an offset"))
}

fn outside_message(reason: OutsideReason) -> &'static str {
    match reason {
        OutsideReason::OffGrid => "That start time is not one of the service's slot times.",
        OutsideReason::OutsideWorkingHours => "Nobody offering this service works at that time.",
        OutsideReason::TimeOff => "The practitioner is away at that time.",
        OutsideReason::Closed => "The clinic is closed at that time.",
        OutsideReason::TooSoon => "That time is too soon (or in the past) to book online.",
        OutsideReason::TooFarAhead => "That time is too far ahead to book yet.",
    }
}

/// Maps a refused booking or change to its problem.
pub fn booking_problem(err: BookingError, clinic_phone: &str) -> ApiError {
    match err {
        BookingError::Invalid(errors) => ApiError::validation(errors),
        BookingError::SlotUnavailable => ApiError::conflict(
            "slot_unavailable",
            "Slot unavailable",
            "That time has just been taken. Please choose another slot.",
        ),
        BookingError::Outside(reason) => ApiError::rule(
            "outside_availability",
            "Not available",
            outside_message(reason),
        ),
        BookingError::NotOffered => ApiError::rule(
            "outside_availability",
            "Not available",
            "That practitioner does not offer this service online.",
        ),
        BookingError::ClassService => ApiError::rule(
            "outside_availability",
            "Not available",
            "This service is a group class: book a seat in one of its sessions instead.",
        ),
        BookingError::ServiceUnavailable => ApiError::rule(
            "outside_availability",
            "Not available",
            "This service is no longer offered. Please choose another or call the clinic.",
        ),
        BookingError::LimitReached(n) => ApiError::rule(
            "booking_limit_reached",
            "Booking limit reached",
            format!(
                "You already hold {n} upcoming bookings, the most we take online. Please call {clinic_phone}."
            ),
        ),
        BookingError::TooLate => ApiError::rule(
            "too_late_to_change",
            "Too late to change online",
            format!(
                "This booking can no longer be changed online. Please call the clinic on {clinic_phone}."
            ),
        ),
        BookingError::NotChangeable(status) => ApiError::rule(
            "booking_not_changeable",
            "Booking cannot be changed",
            format!("This booking is {status} and can no longer be changed."),
        ),
        BookingError::Replay(_) => {
            ApiError::internal("an idempotent replay reached the error mapper")
        }
        BookingError::Database(e) => ApiError::from(e),
    }
}

/// What a manage token opens: a booking or a class seat.
enum Managed {
    Booking(Box<BookingDetails>),
    Seat(Box<SeatDetails>),
}

impl BookingsApi {
    async fn by_token(&self, token: &str) -> ApiResult<Managed> {
        if let Some(d) = booking::find_by_token(&self.state, token).await? {
            return Ok(Managed::Booking(Box::new(d)));
        }
        classes::find_seat_by_token(&self.state, token)
            .await?
            .map(|s| Managed::Seat(Box::new(s)))
            .ok_or_else(|| ApiError::not_found("booking"))
    }

    fn managed_seat(&self, d: &SeatDetails) -> ManagedBooking {
        let now = Utc::now();
        let start = d.class.session.starts_at;
        let hours = booking::notice_hours(&self.state, &d.class.service, false);
        ManagedBooking {
            booking: None,
            seat: Some(public_seat_object(d, self.state.tz)),
            can_cancel: d.seat.status == SeatStatus::Confirmed.as_str()
                && now <= change_deadline(start, hours),
            can_reschedule: false,
            cancel_deadline: change_deadline(start, hours)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    fn phone(&self) -> &str {
        &self.state.settings.clinic.phone
    }

    fn managed(&self, d: &BookingDetails) -> ManagedBooking {
        let now = Utc::now();
        let status =
            BookingStatus::parse(&d.appointment.status).unwrap_or(BookingStatus::Cancelled);
        let start = d.appointment.starts_at;
        let cancel_hours = booking::notice_hours(&self.state, &d.service, false);
        let move_hours = booking::notice_hours(&self.state, &d.service, true);
        ManagedBooking {
            booking: Some(public_booking_object(d, self.state.tz)),
            seat: None,
            can_cancel: patient_may_change(status, start, cancel_hours, now),
            can_reschedule: patient_may_change(status, start, move_hours, now),
            cancel_deadline: change_deadline(start, cancel_hours)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Booking")]
impl BookingsApi {
    /// Books a slot. Send an `Idempotency-Key` to make retries safe: the same key with the
    /// same body replays the first response for 24 hours.
    #[oai(path = "/bookings", method = "post")]
    async fn create(
        &self,
        body: Json<BookingRequest>,
        /// Any unique string per booking attempt (at most 200 characters).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        client: ClientAddr,
    ) -> ApiResult<BookingCreatedResponse> {
        let state = &self.state;
        state.limits.check(Limit::Bookings, client.0)?;
        let request = body.0;
        let idempotency = match idempotency_key.0.as_deref().map(str::trim) {
            Some(key) if key.is_empty() || key.len() > 200 => {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    "must be 1 to 200 characters",
                ));
            }
            Some(key) => {
                let hash = hex::encode(Sha256::digest(
                    serde_json::to_vec(&request).map_err(ApiError::internal)?,
                ));
                let key = format!("booking:{key}");
                if let Some(stored) =
                    store::bookings::find_idempotent(&state.db, &key, Utc::now()).await?
                {
                    return replay(stored, &hash);
                }
                Some((key, hash))
            }
            None => None,
        };
        let mut errors = Vec::new();
        let start = parse_start("start", &request.start).map_err(|e| errors.push(e));
        let notes = parse_notes(request.notes.as_deref()).map_err(|e| errors.push(e));
        let patient = PatientDetails::parse(
            &request.patient.name,
            &request.patient.email,
            request.patient.phone.as_deref(),
            request.consent.privacy,
            request.consent.marketing,
            &mut errors,
        );
        let (Ok(start), Ok(notes), Some(patient)) = (start, notes, patient) else {
            return Err(ApiError::validation(errors));
        };
        let new = NewBooking {
            service_id: request.service_id,
            practitioner_id: request.practitioner_id,
            start,
            patient,
            notes,
        };
        let tz = state.tz;
        let public_url = state
            .settings
            .server
            .public_url
            .trim_end_matches('/')
            .to_string();
        let render = move |b: &Booked| {
            let created = created_body(b, tz, &public_url);
            let location = format!("/api/v1/manage/{}", b.manage_token);
            let body = serde_json::to_string(&created).unwrap_or_default();
            (201u16, body, Some(location))
        };
        let lookup = idempotency.clone();
        let idempotent = idempotency.map(|(key, request_hash)| IdempotentResponse {
            key,
            request_hash,
            render: &render,
        });
        let booked = match booking::book(state, new, idempotent).await {
            Ok(b) => b,
            Err(BookingError::Database(e)) if store::is_unique_violation(&e) => {
                // A concurrent request with the same Idempotency-Key won: answer as it did.
                if let Some((key, hash)) = lookup
                    && let Some(stored) =
                        store::bookings::find_idempotent(&state.db, &key, Utc::now()).await?
                {
                    return replay(stored, &hash);
                }
                return Err(ApiError::from(e));
            }
            Err(BookingError::Replay(stored)) => {
                let hash = lookup.map(|(_, hash)| hash).unwrap_or_default();
                return replay(*stored, &hash);
            }
            Err(e) => return Err(booking_problem(e, self.phone())),
        };
        let (_, _, location) = render(&booked);
        let created = created_body(&booked, tz, &state.settings.server.public_url);
        Ok(BookingCreatedResponse::Created(
            Json(created),
            location.unwrap_or_default(),
        ))
    }

    /// The booking or class seat a manage link opens (exactly one of `booking` and `seat`).
    #[oai(path = "/manage/:token", method = "get")]
    async fn manage(&self, token: Path<String>) -> ApiResult<Json<ManagedBooking>> {
        Ok(Json(match self.by_token(&token).await? {
            Managed::Booking(d) => self.managed(&d),
            Managed::Seat(d) => self.managed_seat(&d),
        }))
    }

    /// Cancels the booking or class seat (up to `cancel_notice_hours` before the start).
    /// Cancelling again answers 200 with the same state. The answer holds exactly one of
    /// `booking` and `seat`; a seat's cancellation frees exactly that seat.
    #[oai(path = "/manage/:token/cancel", method = "post")]
    async fn cancel(
        &self,
        token: Path<String>,
        body: Json<CancelRequest>,
        client: ClientAddr,
    ) -> ApiResult<Json<ManagedEnvelope>> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let reason = match body
            .0
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            Some(r) => Some(crate::domain::text::multi_line("reason", r, 500)?),
            None => None,
        };
        let d = match self.by_token(&token).await? {
            Managed::Booking(d) => d,
            Managed::Seat(seat) => {
                let d = classes::cancel_seat(&self.state, seat.seat.id, Actor::Patient, reason)
                    .await
                    .map_err(|e| class_problem(e, self.phone()))?;
                return Ok(Json(ManagedEnvelope {
                    booking: None,
                    seat: Some(public_seat_object(&d, self.state.tz)),
                }));
            }
        };
        let d = booking::cancel(
            &self.state,
            d.appointment.id,
            Actor::Patient,
            Cancellation::by_patient(reason),
            Some(&token),
        )
        .await
        .map_err(|e| booking_problem(e, self.phone()))?;
        Ok(Json(ManagedEnvelope {
            booking: Some(public_booking_object(&d, self.state.tz)),
            seat: None,
        }))
    }

    /// Moves the booking to another free slot of the same service (up to
    /// `reschedule_notice_hours` before the current start). Reference and id stay the same.
    /// A class seat cannot be moved (422 `not_reschedulable`).
    #[oai(path = "/manage/:token/reschedule", method = "post")]
    async fn reschedule(
        &self,
        token: Path<String>,
        body: Json<RescheduleRequest>,
        client: ClientAddr,
    ) -> ApiResult<Json<BookingEnvelope>> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let start = parse_start("start", &body.0.start)?;
        let d = match self.by_token(&token).await? {
            Managed::Booking(d) => d,
            Managed::Seat(_) => {
                return Err(ApiError::rule(
                    "not_reschedulable",
                    "Cannot be moved",
                    "A class place cannot be moved: cancel it and book another session.",
                ));
            }
        };
        let d = booking::reschedule(
            &self.state,
            d.appointment.id,
            Actor::Patient,
            Move {
                start,
                practitioner_id: body.0.practitioner_id,
                overrides: Vec::new(),
            },
            Some(&token),
        )
        .await
        .map_err(|e| booking_problem(e, self.phone()))?;
        Ok(Json(BookingEnvelope {
            booking: public_booking_object(&d, self.state.tz),
        }))
    }
}

fn created_body(b: &Booked, tz: chrono_tz::Tz, public_url: &str) -> BookingCreated {
    BookingCreated {
        booking: booking_object(&b.details, tz),
        manage_url: format!(
            "{}/manage/{}",
            public_url.trim_end_matches('/'),
            b.manage_token
        ),
        manage_token: b.manage_token.clone(),
    }
}

/// Answers a repeated Idempotency-Key: the first response if the body is the same.
fn replay(
    stored: entity::idempotency_key::Model,
    request_hash: &str,
) -> ApiResult<BookingCreatedResponse> {
    if stored.request_hash != request_hash {
        return Err(ApiError::rule(
            "idempotency_key_reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with a different request body.",
        ));
    }
    stored_response(stored)
}

fn stored_response(stored: entity::idempotency_key::Model) -> ApiResult<BookingCreatedResponse> {
    let body: BookingCreated =
        serde_json::from_str(&stored.response_body).map_err(ApiError::internal)?;
    Ok(BookingCreatedResponse::Created(
        Json(body),
        stored.location.unwrap_or_default(),
    ))
}
