//! Group classes as patients see them: the timetable (`GET /api/v1/classes`, with places
//! left and never anyone's name) and booking a seat (`POST /api/v1/classes/{id}/seats`).
//! The seat objects and the problem mapping of class errors are shared with the staff side
//! and the manage link.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    classes::{
        self, ClassError, NewSeat, SeatBooked, SeatDetails, SeatIdempotency, SessionDetails,
    },
    domain::{
        FieldError,
        availability::OutsideReason,
        booking::{PatientDetails, parse_notes},
        classes::SeatRefusal,
        localtime,
    },
    http::{
        client::ClientAddr,
        problem::{ApiError, ApiResult},
        rate_limit::Limit,
    },
    state::AppState,
    store,
};

use super::{
    ApiTags,
    bookings::{BookingPatient, ConsentInput, NamedRef, PatientInput, short_name},
    path_id,
};

/// The longest span `GET /api/v1/classes` (and the staff list) answers for, in days.
pub const MAX_RANGE_DAYS: i64 = 31;

pub struct ClassesApi {
    pub state: Arc<AppState>,
}

/// A class session on the timetable.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct ClassItem {
    pub id: Uuid,
    pub service: NamedRef,
    /// The instructor.
    pub practitioner: NamedRef,
    /// RFC 3339 in UTC.
    pub start: String,
    pub end: String,
    /// Start in the clinic's time zone, with its offset.
    pub local_start: String,
    pub capacity: u32,
    /// Places still free to book.
    pub seats_left: u32,
    /// scheduled or cancelled.
    pub status: String,
}

#[derive(Debug, Object)]
pub struct ClassList {
    /// Sorted by start, then id.
    pub items: Vec<ClassItem>,
}

/// The class a seat is in.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct SeatClass {
    pub id: Uuid,
    pub service: NamedRef,
    pub practitioner: NamedRef,
    pub start: String,
    pub end: String,
    pub local_start: String,
}

/// A patient's seat in a class.
#[derive(Debug, Clone, Object, Serialize, Deserialize)]
pub struct Seat {
    pub id: Uuid,
    /// Short reference to quote on the phone.
    pub reference: String,
    /// confirmed, cancelled, attended or no_show.
    pub status: String,
    pub class: SeatClass,
    pub patient: BookingPatient,
    pub created_at: String,
}

/// A seat request.
#[derive(Debug, Object, Serialize)]
pub struct SeatRequest {
    pub patient: PatientInput,
    pub consent: ConsentInput,
    /// Up to 2,000 characters.
    pub notes: Option<String>,
}

/// The new seat and its manage link; the token is shown only here and in emails.
#[derive(Debug, Object, Serialize, Deserialize)]
pub struct SeatCreated {
    pub seat: Seat,
    pub manage_token: String,
    pub manage_url: String,
}

#[derive(ApiResponse)]
pub enum SeatCreatedResponse {
    /// Booked.
    #[oai(status = 201)]
    Created(Json<SeatCreated>, #[oai(header = "Location")] String),
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn local(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn count(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

pub fn class_item(d: &SessionDetails, tz: chrono_tz::Tz) -> ClassItem {
    let s = &d.session;
    ClassItem {
        id: s.id,
        service: NamedRef {
            id: d.service.id,
            name: d.service.name.clone(),
        },
        practitioner: NamedRef {
            id: d.practitioner.id,
            name: d.practitioner.name.clone(),
        },
        start: utc(s.starts_at),
        end: utc(s.ends_at),
        local_start: local(s.starts_at, tz),
        capacity: count(s.capacity),
        seats_left: count(d.seats_left()),
        status: s.status.clone(),
    }
}

fn seat_class(d: &SessionDetails, tz: chrono_tz::Tz) -> SeatClass {
    let item = class_item(d, tz);
    SeatClass {
        id: item.id,
        service: item.service,
        practitioner: item.practitioner,
        start: item.start,
        end: item.end,
        local_start: item.local_start,
    }
}

/// A seat with the patient's details, as staff see it.
pub fn seat_object(d: &SeatDetails, tz: chrono_tz::Tz) -> Seat {
    Seat {
        id: d.seat.id,
        reference: d.seat.reference.clone(),
        status: d.seat.status.clone(),
        class: seat_class(&d.class, tz),
        patient: BookingPatient {
            name: d.patient.name.clone(),
            email: d.patient.email.clone(),
            phone: d.patient.phone.clone(),
        },
        created_at: utc(d.seat.created_at),
    }
}

/// A seat as its manage link shows it: the name shortened and no phone, as for bookings.
pub fn public_seat_object(d: &SeatDetails, tz: chrono_tz::Tz) -> Seat {
    let mut seat = seat_object(d, tz);
    seat.patient.name = short_name(&seat.patient.name);
    seat.patient.phone = None;
    seat
}

/// Parses a `from`/`to` pair of local dates spanning at most [`MAX_RANGE_DAYS`] days into
/// the instants it covers.
pub fn local_range(
    tz: chrono_tz::Tz,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let from = localtime::check_date("from", from)?;
    let to = localtime::check_date("to", to)?;
    if to < from {
        return Err(FieldError::new("to", "must not be before from").into());
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(FieldError::new(
            "to",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        )
        .into());
    }
    Ok((
        localtime::instant_at(tz, from, 0),
        localtime::instant_at(tz, to, 24 * 60),
    ))
}

fn outside_message(reason: SeatRefusal) -> &'static str {
    match reason {
        SeatRefusal::Cancelled => "This class has been cancelled.",
        SeatRefusal::Started => "This class has already started.",
        SeatRefusal::Outside(OutsideReason::TooFarAhead) => {
            "This class is too far ahead to book yet."
        }
        SeatRefusal::Outside(_) => "This class starts too soon to book online.",
    }
}

/// Maps a refused class operation to its problem.
pub fn class_problem(err: ClassError, clinic_phone: &str) -> ApiError {
    match err {
        ClassError::Invalid(errors) => ApiError::validation(errors),
        ClassError::NotFound(what) => ApiError::not_found(what),
        ClassError::InstructorBusy => ApiError::conflict(
            "slot_unavailable",
            "Instructor unavailable",
            "The instructor already has an appointment or another class at that time.",
        ),
        ClassError::Outside(reason) => ApiError::rule(
            "outside_availability",
            "Not available",
            match reason {
                OutsideReason::Closed => "The clinic is closed at that time.",
                _ => "The instructor is away at that time.",
            },
        ),
        ClassError::SeatRefused(reason) => ApiError::rule(
            "outside_availability",
            "Not available",
            outside_message(reason),
        ),
        ClassError::Full => ApiError::conflict(
            "class_full",
            "Class full",
            "Every place in this class has been taken.",
        ),
        ClassError::AlreadyBooked => ApiError::conflict(
            "already_booked",
            "Already booked",
            "You already have a place in this class.",
        ),
        ClassError::LimitReached(n) => ApiError::rule(
            "booking_limit_reached",
            "Booking limit reached",
            format!(
                "You already hold {n} upcoming bookings, the most we take online. Please call {clinic_phone}."
            ),
        ),
        ClassError::CapacityBelowSeats => ApiError::rule(
            "capacity_below_seats",
            "Capacity below seats taken",
            "More places are already taken or held than the new capacity allows.",
        ),
        ClassError::TooLate => ApiError::rule(
            "too_late_to_change",
            "Too late to change online",
            format!(
                "This place can no longer be cancelled online. Please call the clinic on {clinic_phone}."
            ),
        ),
        ClassError::NotChangeable(status) => ApiError::rule(
            "booking_not_changeable",
            "Cannot be changed",
            format!("This is {status} and can no longer be changed."),
        ),
        ClassError::Replay(_) => {
            ApiError::internal("an idempotent replay reached the error mapper")
        }
        ClassError::Database(e) => ApiError::from(e),
    }
}

fn created_body(b: &SeatBooked, tz: chrono_tz::Tz, public_url: &str) -> SeatCreated {
    SeatCreated {
        seat: seat_object(&b.details, tz),
        manage_url: format!(
            "{}/manage/{}",
            public_url.trim_end_matches('/'),
            b.manage_token
        ),
        manage_token: b.manage_token.clone(),
    }
}

/// Answers a repeated Idempotency-Key: the first response if the request is the same.
fn replay(
    stored: entity::idempotency_key::Model,
    request_hash: &str,
) -> ApiResult<SeatCreatedResponse> {
    if stored.request_hash != request_hash {
        return Err(ApiError::rule(
            "idempotency_key_reused",
            "Idempotency key reused",
            "This Idempotency-Key was used with a different request body.",
        ));
    }
    let body: SeatCreated =
        serde_json::from_str(&stored.response_body).map_err(ApiError::internal)?;
    Ok(SeatCreatedResponse::Created(
        Json(body),
        stored.location.unwrap_or_default(),
    ))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Booking")]
impl ClassesApi {
    /// The class timetable between two local dates (inclusive, at most 31 days): each
    /// session with its places left. Cancelled sessions are listed too.
    #[oai(path = "/classes", method = "get")]
    async fn list(
        &self,
        /// First local date, `YYYY-MM-DD`.
        from: Query<NaiveDate>,
        /// Last local date (inclusive), `YYYY-MM-DD`.
        to: Query<NaiveDate>,
        /// Only sessions of this class service.
        service_id: Query<Option<Uuid>>,
    ) -> ApiResult<Json<ClassList>> {
        let tz = self.state.tz;
        let (from, until) = local_range(tz, from.0, to.0)?;
        let sessions =
            store::classes::sessions_between(&self.state.db, from, until, None, service_id.0)
                .await?;
        let items = classes::sessions_details(&self.state.db, sessions)
            .await?
            .iter()
            .filter(|d| d.service.active && d.service.online_bookable)
            .map(|d| class_item(d, tz))
            .collect();
        Ok(Json(ClassList { items }))
    }

    /// Books a seat in a class. Send an `Idempotency-Key` to make retries safe: the same key
    /// with the same body replays the first response for 24 hours.
    #[oai(path = "/classes/:id/seats", method = "post")]
    async fn book_seat(
        &self,
        id: Path<String>,
        body: Json<SeatRequest>,
        /// Any unique string per booking attempt (at most 200 characters).
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        client: ClientAddr,
    ) -> ApiResult<SeatCreatedResponse> {
        let state = &self.state;
        state.limits.check(Limit::Bookings, client.0)?;
        let session_id = path_id(&id, "class")?;
        let request = body.0;
        let idempotency = match idempotency_key.0.as_deref().map(str::trim) {
            Some(key) if key.is_empty() || key.len() > 200 => {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    "must be 1 to 200 characters",
                ));
            }
            Some(key) => {
                let mut hasher = Sha256::new();
                hasher.update(session_id.as_bytes());
                hasher.update(serde_json::to_vec(&request).map_err(ApiError::internal)?);
                let hash = hex::encode(hasher.finalize());
                let key = format!("seat:{key}");
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
        let notes = parse_notes(request.notes.as_deref()).map_err(|e| errors.push(e));
        let patient = PatientDetails::parse(
            &request.patient.name,
            &request.patient.email,
            request.patient.phone.as_deref(),
            request.consent.privacy,
            request.consent.marketing,
            &mut errors,
        );
        let (Ok(notes), Some(patient)) = (notes, patient) else {
            return Err(ApiError::validation(errors));
        };
        let tz = state.tz;
        let public_url = state.settings.server.public_url.clone();
        let render = move |b: &SeatBooked| {
            let created = created_body(b, tz, &public_url);
            let location = format!("/api/v1/manage/{}", b.manage_token);
            let body = serde_json::to_string(&created).unwrap_or_default();
            (201u16, body, Some(location))
        };
        let lookup = idempotency.clone();
        let idempotent = idempotency.map(|(key, request_hash)| SeatIdempotency {
            key,
            request_hash,
            render: &render,
        });
        let new = NewSeat {
            session_id,
            patient,
            notes,
        };
        let phone = &state.settings.clinic.phone;
        let booked = match classes::book_seat(state, new, idempotent).await {
            Ok(b) => b,
            Err(ClassError::Database(e)) if store::is_unique_violation(&e) => {
                // A concurrent request with the same Idempotency-Key won: answer as it did.
                if let Some((key, hash)) = lookup
                    && let Some(stored) =
                        store::bookings::find_idempotent(&state.db, &key, Utc::now()).await?
                {
                    return replay(stored, &hash);
                }
                return Err(ApiError::from(e));
            }
            Err(ClassError::Replay(stored)) => {
                let hash = lookup.map(|(_, hash)| hash).unwrap_or_default();
                return replay(*stored, &hash);
            }
            Err(e) => return Err(class_problem(e, phone)),
        };
        let (_, _, location) = render(&booked);
        Ok(SeatCreatedResponse::Created(
            Json(created_body(&booked, tz, &state.settings.server.public_url)),
            location.unwrap_or_default(),
        ))
    }
}
