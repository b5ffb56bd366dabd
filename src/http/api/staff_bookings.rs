//! The front desk's bookings: phone and walk-in bookings, the booking list, cancellations
//! with reasons, reschedules and attendance.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use entity::appointment;
use poem_openapi::{
    ApiResponse, Object, OpenApi, Union,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    booking::{self, Actor, BookingDetails, Cancellation, Move, StaffBooking, series::Scope},
    domain::{
        FieldError,
        booking::{BookingStatus, parse_notes},
        catalogue::{Role, vocabulary},
        localtime,
        rulebook::Rule,
        text::{self, EmailAddress, PersonName, PhoneNumber},
    },
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    state::AppState,
    store,
};

use super::{
    ApiTags,
    bookings::{Booking, booking_object, booking_problem, parse_start},
    path_id,
};

pub struct StaffBookingsApi {
    pub state: Arc<AppState>,
}

vocabulary!(
    /// Why a booking was cancelled.
    CancelReason {
        FeelingBetter = "feeling_better",
        ConditionWorse = "condition_worse",
        Illness = "illness",
        Away = "away",
        Work = "work",
        Other = "other",
    }
);

vocabulary!(
    /// A rule a staff booking or move may set aside when the request lists it.
    OverrideRule {
        TimeOff = "time_off",
        Closure = "closure",
    }
);

impl OverrideRule {
    fn rule(self) -> Rule {
        match self {
            OverrideRule::TimeOff => Rule::TimeOff,
            OverrideRule::Closure => Rule::Closure,
        }
    }
}

/// The rules listed in a request, for the rulebook.
pub(super) fn listed(overrides: &[OverrideRule]) -> Vec<Rule> {
    overrides.iter().map(|o| o.rule()).collect()
}

vocabulary!(
    /// Attendance to record.
    Attendance {
        Arrived = "arrived",
        Completed = "completed",
        NoShow = "no_show",
    }
);

#[derive(Debug, Object)]
pub struct StaffPatientInput {
    pub name: String,
    /// Optional: without it the patient gets no email.
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A booking taken by phone or at the desk. Staff may book outside the slot grid, working
/// hours, notice and horizon, but never over another appointment; time off and closures
/// refuse it (422 `outside_availability`) unless `overrides` lists them (audited). An
/// existing patient with the address is booked as stored: their details do not change.
#[derive(Debug, Object)]
pub struct StaffBookingRequest {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    /// RFC 3339 with an offset.
    pub start: String,
    pub patient: StaffPatientInput,
    pub notes: Option<String>,
    /// `time_off` and/or `closure`: book even though the practitioner is away or the clinic
    /// is closed then.
    #[oai(default)]
    pub overrides: Vec<OverrideRule>,
}

vocabulary!(
    /// Which bookings of a course of treatment a cancellation covers.
    CancelScope {
        This = "this",
        Following = "following",
        All = "all",
    }
);

#[derive(Debug, Object)]
pub struct StaffCancelRequest {
    pub reason: CancelReason,
    /// Up to 500 characters.
    pub note: Option<String>,
    /// For a booking of a series: `this` (the booking alone), `following` (it and every later
    /// occurrence) or `all` (every occurrence not yet attended). A single booking is just
    /// cancelled whatever the scope. With a scope, the answer is `{"cancelled": [ids]}`;
    /// without one, the booking as before.
    pub scope: Option<CancelScope>,
}

/// The bookings a scoped cancellation cancelled.
#[derive(Debug, Object)]
pub struct ScopedCancellation {
    /// Every booking in the scope that is now cancelled (for `following`, the named booking
    /// included).
    pub cancelled: Vec<Uuid>,
}

/// A cancellation's answer: the booking, or with `scope` the ids cancelled.
#[derive(Debug, Union)]
#[oai(one_of = true)]
pub enum CancelAnswer {
    Booking(Box<StaffBookingView>),
    Scoped(ScopedCancellation),
}

#[derive(Debug, Object)]
pub struct StaffRescheduleRequest {
    pub start: String,
    /// Another practitioner offering the service; omit to keep the same one.
    pub practitioner_id: Option<Uuid>,
    /// `time_off` and/or `closure`, as for a staff booking.
    #[oai(default)]
    pub overrides: Vec<OverrideRule>,
}

#[derive(Debug, Object)]
pub struct AttendanceRequest {
    pub status: Attendance,
}

/// One entry of a booking's history.
#[derive(Debug, Object)]
pub struct BookingEvent {
    pub at: String,
    /// created, rescheduled, cancelled, arrived, completed, no_show.
    pub kind: String,
    /// patient, staff or system.
    pub actor: String,
    #[oai(nullable)]
    pub staff_id: Option<Uuid>,
    pub detail: serde_json::Value,
}

/// A booking with what staff also need: where it came from, why it was cancelled, its history.
#[derive(Debug, Object)]
pub struct StaffBookingView {
    pub booking: Booking,
    /// online or staff.
    pub source: String,
    #[oai(nullable)]
    pub cancel_reason: Option<String>,
    pub events: Vec<BookingEvent>,
}

#[derive(ApiResponse)]
pub enum StaffBookingCreated {
    #[oai(status = 201)]
    Created(Json<StaffBookingView>, #[oai(header = "Location")] String),
}

/// A staff booking's patient and notes, parsed; every field error is collected.
pub(super) fn parse_patient(
    patient: &StaffPatientInput,
    notes: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<(
    PersonName,
    Option<EmailAddress>,
    Option<PhoneNumber>,
    String,
)> {
    let name = PersonName::parse("patient.name", &patient.name).map_err(|e| errors.push(e));
    let email = match patient
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) => EmailAddress::parse("patient.email", e)
            .map(Some)
            .map_err(|e| errors.push(e)),
        None => Ok(None),
    };
    let phone = match patient
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => PhoneNumber::parse("patient.phone", p)
            .map(Some)
            .map_err(|e| errors.push(e)),
        None => Ok(None),
    };
    let notes = parse_notes(notes).map_err(|e| errors.push(e));
    match (name, email, phone, notes) {
        (Ok(name), Ok(email), Ok(phone), Ok(notes)) => Some((name, email, phone, notes)),
        _ => None,
    }
}

fn local_bound(state: &AppState, date: NaiveDate, end: bool) -> DateTime<Utc> {
    localtime::instant_at(state.tz, date, if end { 24 * 60 } else { 0 })
}

impl StaffBookingsApi {
    /// The booking, if the caller may see it (a practitioner only their own; others 404).
    async fn visible(&self, staff: &Staff, id: Uuid) -> ApiResult<appointment::Model> {
        store::bookings::find(&self.state.db, id)
            .await?
            .filter(|a| staff.may_manage_practitioner(a.practitioner_id))
            .ok_or_else(|| ApiError::not_found("booking"))
    }

    async fn view(&self, d: BookingDetails) -> ApiResult<StaffBookingView> {
        let events = store::bookings::events(&self.state.db, d.appointment.id).await?;
        Ok(StaffBookingView {
            booking: booking_object(&d, self.state.tz),
            source: d.appointment.source.clone(),
            cancel_reason: d.appointment.cancel_reason.clone(),
            events: events
                .into_iter()
                .map(|e| BookingEvent {
                    at: e.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    kind: e.kind,
                    actor: e.actor,
                    staff_id: e.staff_id,
                    detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
                })
                .collect(),
        })
    }

    fn phone(&self) -> &str {
        &self.state.settings.clinic.phone
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffBookings")]
impl StaffBookingsApi {
    /// Bookings, soonest first, filtered by local dates, practitioner, status or patient
    /// email. Practitioners see only their own.
    #[oai(path = "/bookings", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: StaffAuth,
        /// First local date (inclusive).
        from: Query<Option<NaiveDate>>,
        /// Last local date (inclusive).
        to: Query<Option<NaiveDate>>,
        practitioner_id: Query<Option<Uuid>>,
        status: Query<Option<BookingStatus>>,
        /// The patient's email address (exact, any case).
        email: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Booking>>> {
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let practitioner = match (auth.0.role, practitioner_id.0) {
            (Role::Practitioner, Some(p)) if Some(p) != auth.0.practitioner_id => {
                return Err(ApiError::forbidden());
            }
            (Role::Practitioner, _) => {
                Some(auth.0.practitioner_id.ok_or_else(ApiError::forbidden)?)
            }
            (_, p) => p,
        };
        let from = from
            .0
            .map(|d| localtime::check_date("from", d))
            .transpose()?;
        let to = to.0.map(|d| localtime::check_date("to", d)).transpose()?;
        let filter = store::bookings::BookingFilter {
            from: from.map(|d| local_bound(&self.state, d, false)),
            until: to.map(|d| local_bound(&self.state, d, true)),
            practitioner_id: practitioner,
            status: status.0.map(|s| s.as_str().to_string()),
            patient_email: email.0.map(|e| e.trim().to_lowercase()),
        };
        let (rows, total) =
            store::bookings::page(&self.state.db, &filter, paging.page, paging.per_page).await?;
        let items = booking::details_many(&self.state.db, rows)
            .await?
            .iter()
            .map(|d| booking_object(d, self.state.tz))
            .collect();
        Ok(Json(paging.wrap(items, total)))
    }

    /// Books on behalf of a patient (admin, reception; a practitioner for themself).
    #[oai(path = "/bookings", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<StaffBookingRequest>,
    ) -> ApiResult<StaffBookingCreated> {
        let request = body.0;
        if !auth.0.may_manage_practitioner(request.practitioner_id) {
            return Err(ApiError::forbidden());
        }
        let mut errors: Vec<FieldError> = Vec::new();
        let start = parse_start("start", &request.start).map_err(|e| errors.push(e));
        let patient = parse_patient(&request.patient, request.notes.as_deref(), &mut errors);
        let (Ok(start), Some((name, email, phone, notes))) = (start, patient) else {
            return Err(ApiError::validation(errors));
        };
        let booked = booking::book_by_staff(
            &self.state,
            StaffBooking {
                service_id: request.service_id,
                practitioner_id: request.practitioner_id,
                start,
                patient_name: name,
                patient_email: email,
                patient_phone: phone,
                notes,
                overrides: listed(&request.overrides),
            },
            auth.0.id,
        )
        .await
        .map_err(|e| booking_problem(e, self.phone()))?;
        let location = format!("/api/v1/staff/bookings/{}", booked.details.appointment.id);
        Ok(StaffBookingCreated::Created(
            Json(self.view(booked.details).await?),
            location,
        ))
    }

    /// One booking with its history.
    #[oai(path = "/bookings/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<StaffBookingView>> {
        let appt = self.visible(&auth.0, path_id(&id, "booking")?).await?;
        let d = booking::details(&self.state.db, appt).await?;
        Ok(Json(self.view(d).await?))
    }

    /// Cancels with a reason at any time; the patient, practitioner and front desk are told.
    #[oai(path = "/bookings/:id/cancel", method = "post")]
    async fn cancel(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<StaffCancelRequest>,
    ) -> ApiResult<Json<CancelAnswer>> {
        let appt = self.visible(&auth.0, path_id(&id, "booking")?).await?;
        let note = match body
            .0
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(n) => Some(text::multi_line("note", n, 500)?),
            None => None,
        };
        let why = Cancellation::by_staff(body.0.reason.as_str(), note.as_deref());
        if let Some(scope) = body.0.scope {
            let scope = match scope {
                CancelScope::This => Scope::This,
                CancelScope::Following => Scope::Following,
                CancelScope::All => Scope::All,
            };
            let only_practitioner = match auth.0.role {
                Role::Practitioner => auth.0.practitioner_id,
                _ => None,
            };
            let cancelled = booking::series::cancel_scoped(
                &self.state,
                appt.id,
                auth.0.id,
                why,
                scope,
                only_practitioner,
            )
            .await
            .map_err(|e| booking_problem(e, self.phone()))?;
            return Ok(Json(CancelAnswer::Scoped(ScopedCancellation { cancelled })));
        }
        let d = booking::cancel(&self.state, appt.id, Actor::Staff(auth.0.id), why, None)
            .await
            .map_err(|e| booking_problem(e, self.phone()))?;
        Ok(Json(CancelAnswer::Booking(Box::new(self.view(d).await?))))
    }

    /// Moves a booking (staff may leave the grid and hours, never overlap another booking).
    #[oai(path = "/bookings/:id/reschedule", method = "post")]
    async fn reschedule(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<StaffRescheduleRequest>,
    ) -> ApiResult<Json<StaffBookingView>> {
        let appt = self.visible(&auth.0, path_id(&id, "booking")?).await?;
        let start = parse_start("start", &body.0.start)?;
        if let Some(p) = body.0.practitioner_id
            && !auth.0.may_manage_practitioner(p)
        {
            return Err(ApiError::forbidden());
        }
        let d = booking::reschedule(
            &self.state,
            appt.id,
            Actor::Staff(auth.0.id),
            Move {
                start,
                practitioner_id: body.0.practitioner_id,
                overrides: listed(&body.0.overrides),
            },
            None,
        )
        .await
        .map_err(|e| booking_problem(e, self.phone()))?;
        Ok(Json(self.view(d).await?))
    }

    /// Records that the patient arrived, completed the session or did not show.
    #[oai(path = "/bookings/:id/attendance", method = "post")]
    async fn attendance(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<AttendanceRequest>,
    ) -> ApiResult<Json<StaffBookingView>> {
        let appt = self.visible(&auth.0, path_id(&id, "booking")?).await?;
        let next = match body.0.status {
            Attendance::Arrived => BookingStatus::Arrived,
            Attendance::Completed => BookingStatus::Completed,
            Attendance::NoShow => BookingStatus::NoShow,
        };
        let d = booking::record_attendance(&self.state, appt.id, auth.0.id, next)
            .await
            .map_err(|e| booking_problem(e, self.phone()))?;
        Ok(Json(self.view(d).await?))
    }
}
