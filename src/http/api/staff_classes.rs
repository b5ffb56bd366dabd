//! Staff side of group classes: sessions (one-off and weekly series), the roster of seats,
//! seats booked and cancelled by staff, and attendance. Admin and reception manage every
//! class; practitioners see their own sessions and record attendance at them.

use std::sync::Arc;

use chrono::NaiveDate;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    booking::Actor,
    classes::{self, NewSeries, NewSession, SeatDetails, SessionChange, SessionDetails, StaffSeat},
    domain::{
        FieldError,
        catalogue::{Role, vocabulary},
        classes::SeatStatus,
        hours,
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
    bookings::parse_start,
    classes::{ClassItem, Seat, SeatCreated, class_item, class_problem, local_range, seat_object},
    path_id,
    staff_bookings::{StaffPatientInput, parse_patient},
    staff_practitioners::Weekday,
};

pub struct StaffClassesApi {
    pub state: Arc<AppState>,
}

const MANAGERS: &[Role] = &[Role::Admin, Role::Reception];

/// A class session as staff see it, with its roster.
#[derive(Debug, Object)]
pub struct StaffClass {
    pub id: Uuid,
    pub service: super::bookings::NamedRef,
    pub practitioner: super::bookings::NamedRef,
    pub start: String,
    pub end: String,
    pub local_start: String,
    pub capacity: u32,
    pub seats_left: u32,
    /// Confirmed, attended and no-show seats.
    pub seats_taken: u32,
    /// Places held by open waitlist offers.
    pub seats_held: u32,
    /// scheduled or cancelled.
    pub status: String,
    #[oai(nullable)]
    pub cancel_reason: Option<String>,
    /// The weekly series it belongs to; null for a one-off session.
    #[oai(nullable)]
    pub series_id: Option<Uuid>,
    /// Every seat, cancelled ones included, oldest first.
    pub seats: Vec<Seat>,
}

/// A class session in the staff list (the roster is on the session itself).
#[derive(Debug, Object)]
pub struct StaffClassItem {
    #[oai(flatten)]
    pub class: ClassItem,
    pub seats_taken: u32,
    pub seats_held: u32,
    #[oai(nullable)]
    pub series_id: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct NewClassRequest {
    /// A service with capacity above 1.
    pub service_id: Uuid,
    /// The instructor: an active practitioner offering the service.
    pub practitioner_id: Uuid,
    /// RFC 3339 with an offset.
    pub starts_at: String,
    /// 1–500; the service's capacity when absent.
    pub capacity: Option<u32>,
}

#[derive(ApiResponse)]
pub enum StaffClassCreated {
    #[oai(status = 201)]
    Created(Json<StaffClass>, #[oai(header = "Location")] String),
}

/// Fields to change; absent fields stay as they are. A new time or instructor emails every
/// seat holder an updated invitation.
#[derive(Debug, Object)]
pub struct ClassPatch {
    /// RFC 3339 with an offset.
    pub starts_at: Option<String>,
    /// Not below the places taken or held (422 `capacity_below_seats`).
    pub capacity: Option<u32>,
    pub practitioner_id: Option<Uuid>,
}

#[derive(Debug, Object)]
pub struct ClassCancelRequest {
    /// Told to every seat holder (up to 500 characters).
    pub reason: String,
}

#[derive(Debug, Object)]
pub struct StaffSeatRequest {
    pub patient: StaffPatientInput,
    pub notes: Option<String>,
}

#[derive(ApiResponse)]
pub enum StaffSeatCreated {
    #[oai(status = 201)]
    Created(Json<SeatCreated>, #[oai(header = "Location")] String),
}

#[derive(Debug, Object)]
pub struct SeatCancelRequest {
    /// A code or short note (up to 500 characters).
    pub reason: Option<String>,
}

vocabulary!(
    /// Attendance at a class.
    SeatAttendance {
        Attended = "attended",
        NoShow = "no_show",
    }
);

#[derive(Debug, Object)]
pub struct SeatAttendanceRequest {
    pub status: SeatAttendance,
}

/// A weekly class series.
#[derive(Debug, Object)]
pub struct ClassSeriesRequest {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub weekday: Weekday,
    /// Local start, `HH:MM`.
    pub start: String,
    /// First local date (inclusive).
    pub valid_from: NaiveDate,
    /// Last local date (inclusive); at most 53 sessions.
    pub valid_until: NaiveDate,
    pub capacity: Option<u32>,
    /// Local dates with no session.
    #[oai(default)]
    pub except: Vec<NaiveDate>,
}

/// A date a series did not create a session on.
#[derive(Debug, Object)]
pub struct SkippedDate {
    pub date: NaiveDate,
    /// excepted, closure, time_off or taken.
    pub reason: String,
}

#[derive(Debug, Object)]
pub struct ClassSeriesCreated {
    pub series_id: Uuid,
    pub sessions: Vec<StaffClass>,
    pub skipped: Vec<SkippedDate>,
}

#[derive(ApiResponse)]
pub enum ClassSeriesCreatedResponse {
    #[oai(status = 201)]
    Created(Json<ClassSeriesCreated>),
}

#[derive(Debug, Object)]
pub struct ClassSeriesPatch {
    /// The series' new last local date: later sessions are cancelled and their seats emailed.
    pub valid_until: NaiveDate,
}

#[derive(Debug, Object)]
pub struct ClassSeriesEnded {
    pub series_id: Uuid,
    pub valid_until: NaiveDate,
    /// The sessions this cancelled.
    pub cancelled: Vec<Uuid>,
}

fn count(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn capacity(v: Option<u32>) -> Option<i32> {
    v.map(|c| i32::try_from(c).unwrap_or(i32::MAX))
}

impl StaffClassesApi {
    fn problem(&self, e: classes::ClassError) -> ApiError {
        class_problem(e, &self.state.settings.clinic.phone)
    }

    async fn staff_class(&self, d: SessionDetails) -> ApiResult<StaffClass> {
        let tz = self.state.tz;
        let seats = store::classes::seats_of(&self.state.db, d.session.id).await?;
        let ids: Vec<Uuid> = seats.iter().map(|s| s.patient_id).collect();
        let patients: std::collections::HashMap<Uuid, entity::patient::Model> =
            store::patients::find_many(&self.state.db, &ids)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
        let mut objects = Vec::with_capacity(seats.len());
        for seat in seats {
            let patient = patients
                .get(&seat.patient_id)
                .cloned()
                .ok_or_else(|| ApiError::internal("a seat's patient is missing"))?;
            objects.push(seat_object(
                &SeatDetails {
                    seat,
                    class: d.clone(),
                    patient,
                },
                tz,
            ));
        }
        let item = class_item(&d, tz);
        Ok(StaffClass {
            id: item.id,
            service: item.service,
            practitioner: item.practitioner,
            start: item.start,
            end: item.end,
            local_start: item.local_start,
            capacity: item.capacity,
            seats_left: item.seats_left,
            seats_taken: count(d.session.seats_taken),
            seats_held: count(d.session.seats_held),
            status: item.status,
            cancel_reason: d.session.cancel_reason.clone(),
            series_id: d.session.series_id,
            seats: objects,
        })
    }

    /// The session, if the caller may see it (a practitioner only their own; others 404).
    async fn visible(&self, staff: &Staff, id: Uuid) -> ApiResult<SessionDetails> {
        let session = store::classes::find_session(&self.state.db, id)
            .await?
            .filter(|s| staff.may_manage_practitioner(s.practitioner_id))
            .ok_or_else(|| ApiError::not_found("class"))?;
        Ok(classes::session_details(&self.state.db, session).await?)
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffClasses")]
impl StaffClassesApi {
    /// Class sessions starting between two local dates (inclusive, at most 31 days), by
    /// start; practitioners see their own.
    #[oai(path = "/classes", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: StaffAuth,
        /// First local date, `YYYY-MM-DD`.
        from: Query<NaiveDate>,
        /// Last local date (inclusive), `YYYY-MM-DD`.
        to: Query<NaiveDate>,
        practitioner_id: Query<Option<Uuid>>,
        service_id: Query<Option<Uuid>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<StaffClassItem>>> {
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let tz = self.state.tz;
        let (from, until) = local_range(tz, from.0, to.0)?;
        let only: Option<Vec<Uuid>> = match (auth.0.role, auth.0.practitioner_id) {
            (Role::Practitioner, own) => Some(own.into_iter().collect()),
            _ => practitioner_id.0.map(|id| vec![id]),
        };
        let sessions = store::classes::sessions_between(
            &self.state.db,
            from,
            until,
            only.as_deref(),
            service_id.0,
        )
        .await?;
        let items = classes::sessions_details(&self.state.db, sessions)
            .await?
            .iter()
            .map(|d| StaffClassItem {
                class: class_item(d, tz),
                seats_taken: count(d.session.seats_taken),
                seats_held: count(d.session.seats_held),
                series_id: d.session.series_id,
            })
            .collect();
        Ok(Json(paging.slice(items)))
    }

    /// Creates a one-off class session (admin, reception). The instructor's appointments and
    /// other classes refuse it (409 `slot_unavailable`), as do their time off and closures
    /// (422 `outside_availability`).
    #[oai(path = "/classes", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<NewClassRequest>,
    ) -> ApiResult<StaffClassCreated> {
        auth.0.require(MANAGERS)?;
        let b = body.0;
        let start = parse_start("starts_at", &b.starts_at)?;
        let d = classes::create_session(
            &self.state,
            NewSession {
                service_id: b.service_id,
                practitioner_id: b.practitioner_id,
                start,
                capacity: capacity(b.capacity),
            },
            auth.0.id,
        )
        .await
        .map_err(|e| self.problem(e))?;
        let location = format!("/api/v1/staff/classes/{}", d.session.id);
        Ok(StaffClassCreated::Created(
            Json(self.staff_class(d).await?),
            location,
        ))
    }

    /// One class session with its roster (every seat with the patient's details).
    #[oai(path = "/classes/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<StaffClass>> {
        let d = self.visible(&auth.0, path_id(&id, "class")?).await?;
        Ok(Json(self.staff_class(d).await?))
    }

    /// Moves, resizes or re-staffs a session (admin, reception). A new time or instructor is
    /// checked like a new session and emails every seat holder an updated invitation.
    #[oai(path = "/classes/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<ClassPatch>,
    ) -> ApiResult<Json<StaffClass>> {
        auth.0.require(MANAGERS)?;
        let id = path_id(&id, "class")?;
        let b = body.0;
        let start = b
            .starts_at
            .as_deref()
            .map(|s| parse_start("starts_at", s))
            .transpose()?;
        let d = classes::update_session(
            &self.state,
            id,
            SessionChange {
                start,
                capacity: capacity(b.capacity),
                practitioner_id: b.practitioner_id,
            },
            auth.0.id,
        )
        .await
        .map_err(|e| self.problem(e))?;
        Ok(Json(self.staff_class(d).await?))
    }

    /// Cancels a session (admin, reception): every seat is cancelled and its holder emailed.
    #[oai(path = "/classes/:id/cancel", method = "post")]
    async fn cancel(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<ClassCancelRequest>,
    ) -> ApiResult<Json<StaffClass>> {
        auth.0.require(MANAGERS)?;
        let id = path_id(&id, "class")?;
        let reason = crate::domain::text::multi_line("reason", body.0.reason.trim(), 500)?;
        if reason.is_empty() {
            return Err(ApiError::field("reason", "must not be empty"));
        }
        let d = classes::cancel_session(&self.state, id, reason, auth.0.id)
            .await
            .map_err(|e| self.problem(e))?;
        Ok(Json(self.staff_class(d).await?))
    }

    /// Books a seat for a patient (admin, reception); notice and horizon do not apply.
    #[oai(path = "/classes/:id/seats", method = "post")]
    async fn book_seat(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<StaffSeatRequest>,
    ) -> ApiResult<StaffSeatCreated> {
        auth.0.require(MANAGERS)?;
        let session_id = path_id(&id, "class")?;
        let mut errors: Vec<FieldError> = Vec::new();
        let Some((name, email, phone, notes)) =
            parse_patient(&body.0.patient, body.0.notes.as_deref(), &mut errors)
        else {
            return Err(ApiError::validation(errors));
        };
        let booked = classes::book_seat_by_staff(
            &self.state,
            StaffSeat {
                session_id,
                name,
                email,
                phone,
                notes,
            },
            auth.0.id,
        )
        .await
        .map_err(|e| self.problem(e))?;
        let public_url = self.state.settings.server.public_url.trim_end_matches('/');
        Ok(StaffSeatCreated::Created(
            Json(SeatCreated {
                seat: seat_object(&booked.details, self.state.tz),
                manage_url: format!("{public_url}/manage/{}", booked.manage_token),
                manage_token: booked.manage_token,
            }),
            format!("/api/v1/staff/classes/{session_id}"),
        ))
    }

    /// Cancels a seat (admin, reception) and frees exactly its place.
    #[oai(path = "/seats/:id/cancel", method = "post")]
    async fn cancel_seat(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<SeatCancelRequest>,
    ) -> ApiResult<Json<Seat>> {
        auth.0.require(MANAGERS)?;
        let id = path_id(&id, "seat")?;
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
        let d = classes::cancel_seat(&self.state, id, Actor::Staff(auth.0.id), reason)
            .await
            .map_err(|e| self.problem(e))?;
        Ok(Json(seat_object(&d, self.state.tz)))
    }

    /// Records attendance at a class: `attended` or `no_show`. Practitioners may record it
    /// for their own sessions.
    #[oai(path = "/seats/:id/attendance", method = "post")]
    async fn attendance(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<SeatAttendanceRequest>,
    ) -> ApiResult<Json<Seat>> {
        let id = path_id(&id, "seat")?;
        let seat = store::classes::find_seat(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("seat"))?;
        let session = store::classes::find_session(&self.state.db, seat.class_session_id)
            .await?
            .ok_or_else(|| ApiError::not_found("seat"))?;
        if !auth.0.may_manage_practitioner(session.practitioner_id) {
            return Err(ApiError::not_found("seat"));
        }
        let status = match body.0.status {
            SeatAttendance::Attended => SeatStatus::Attended,
            SeatAttendance::NoShow => SeatStatus::NoShow,
        };
        let d = classes::record_seat_attendance(&self.state, id, status, auth.0.id)
            .await
            .map_err(|e| self.problem(e))?;
        Ok(Json(seat_object(&d, self.state.tz)))
    }

    /// Creates a weekly class series (admin, reception): one session every `weekday` at the
    /// local time `start`, from `valid_from` to `valid_until`. Dates in `except`, and dates
    /// that hit a closure, the instructor's time off or their appointments and other
    /// classes, are skipped and listed with a reason.
    #[oai(path = "/class-series", method = "post")]
    async fn create_series(
        &self,
        auth: StaffAuth,
        body: Json<ClassSeriesRequest>,
    ) -> ApiResult<ClassSeriesCreatedResponse> {
        auth.0.require(MANAGERS)?;
        let b = body.0;
        let mut errors = Vec::new();
        let start_minute = hours::parse_clock(&b.start).filter(|m| *m < 24 * 60);
        if start_minute.is_none() {
            errors.push(FieldError::new("start", "must be a time HH:MM"));
        }
        for (field, date) in [("valid_from", b.valid_from), ("valid_until", b.valid_until)] {
            if let Err(e) = crate::domain::localtime::check_date(field, date) {
                errors.push(e);
            }
        }
        if b.valid_until < b.valid_from {
            errors.push(FieldError::new(
                "valid_until",
                "must not be before valid_from",
            ));
        }
        if b.except.len() > 100 {
            errors.push(FieldError::new("except", "at most 100 dates"));
        }
        let (Some(start_minute), true) = (start_minute, errors.is_empty()) else {
            return Err(ApiError::validation(errors));
        };
        let weekday = hours::WEEKDAYS
            .iter()
            .position(|d| *d == b.weekday.as_str())
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0);
        let created = classes::create_series(
            &self.state,
            NewSeries {
                service_id: b.service_id,
                practitioner_id: b.practitioner_id,
                weekday,
                start_minute,
                valid_from: b.valid_from,
                valid_until: b.valid_until,
                capacity: capacity(b.capacity),
                except: b.except,
            },
            auth.0.id,
        )
        .await
        .map_err(|e| self.problem(e))?;
        let mut sessions = Vec::with_capacity(created.sessions.len());
        for d in created.sessions {
            sessions.push(self.staff_class(d).await?);
        }
        Ok(ClassSeriesCreatedResponse::Created(Json(
            ClassSeriesCreated {
                series_id: created.series.id,
                sessions,
                skipped: created
                    .skipped
                    .into_iter()
                    .map(|(date, reason)| SkippedDate {
                        date,
                        reason: reason.to_string(),
                    })
                    .collect(),
            },
        )))
    }

    /// Ends a series (admin, reception): `valid_until` moves earlier, and every later session
    /// is cancelled with its seats emailed.
    #[oai(path = "/class-series/:id", method = "patch")]
    async fn end_series(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<ClassSeriesPatch>,
    ) -> ApiResult<Json<ClassSeriesEnded>> {
        auth.0.require(MANAGERS)?;
        let id = path_id(&id, "class series")?;
        let until = crate::domain::localtime::check_date("valid_until", body.0.valid_until)?;
        let ended = classes::end_series(&self.state, id, until, auth.0.id)
            .await
            .map_err(|e| self.problem(e))?;
        Ok(Json(ClassSeriesEnded {
            series_id: ended.series.id,
            valid_until: ended.series.valid_until,
            cancelled: ended.cancelled,
        }))
    }
}
