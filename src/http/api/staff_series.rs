//! Courses of treatment (series): preview every occurrence of a weekly rule, then book them
//! all in one go. Each occurrence is checked like a staff booking; cancelling with a scope is
//! on `/staff/bookings/{id}/cancel`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use uuid::Uuid;

use crate::{
    booking::{
        StaffBooking,
        series::{self, ConflictReason, OnConflict, SeriesError, SeriesRequest},
    },
    domain::{FieldError, catalogue::vocabulary, localtime, series::WeeklyRule},
    http::{
        problem::{ApiError, ApiResult, OccurrenceConflict},
        security::StaffAuth,
    },
    state::AppState,
};

use super::{
    ApiTags,
    bookings::{Booking, booking_object, booking_problem, parse_start},
    staff_bookings::{OverrideRule, StaffPatientInput, listed, parse_patient},
};

pub struct StaffSeriesApi {
    pub state: Arc<AppState>,
}

vocabulary!(
    /// What a series does with occurrences that cannot be booked.
    SeriesOnConflict {
        Fail = "fail",
        Skip = "skip",
    }
);

fn one() -> i64 {
    1
}

/// A weekly course of treatment: the first start, then every `every_weeks` weeks at the same
/// local wall-clock time, `count` times (at most 52) or up to the local date `until`
/// (exactly one of the two).
#[derive(Debug, Object)]
pub struct SeriesPreviewRequest {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    /// RFC 3339 with an offset.
    pub first_start: String,
    #[oai(default = "one")]
    pub every_weeks: i64,
    pub count: Option<i64>,
    /// A local date in the clinic's zone (inclusive).
    pub until: Option<NaiveDate>,
    pub patient: StaffPatientInput,
    pub notes: Option<String>,
    /// `time_off` and/or `closure`, as for a staff booking.
    #[oai(default)]
    pub overrides: Vec<OverrideRule>,
}

/// A series to book: the preview's fields plus what to do with conflicts.
#[derive(Debug, Object)]
pub struct SeriesCreateRequest {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    /// RFC 3339 with an offset.
    pub first_start: String,
    #[oai(default = "one")]
    pub every_weeks: i64,
    pub count: Option<i64>,
    /// A local date in the clinic's zone (inclusive).
    pub until: Option<NaiveDate>,
    pub patient: StaffPatientInput,
    pub notes: Option<String>,
    /// `time_off` and/or `closure`, as for a staff booking.
    #[oai(default)]
    pub overrides: Vec<OverrideRule>,
    /// `fail` (default): any conflict → 409 `series_conflicts` and nothing booked; `skip`:
    /// book the free occurrences and list the others in `skipped`.
    pub on_conflict: Option<SeriesOnConflict>,
}

/// One occurrence of a previewed series.
#[derive(Debug, Object)]
pub struct PreviewOccurrence {
    /// RFC 3339 in UTC.
    pub start: String,
    /// The start in the clinic's time zone, with its offset.
    pub local_start: String,
    /// free or conflict.
    pub status: String,
    /// For a conflict: taken, time_off or closure.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

#[derive(Debug, Object)]
pub struct SeriesPreview {
    pub occurrences: Vec<PreviewOccurrence>,
}

/// An occurrence a series did not book.
#[derive(Debug, Object)]
pub struct SkippedOccurrence {
    /// RFC 3339 in UTC.
    pub start: String,
    /// taken, time_off or closure.
    pub reason: String,
}

#[derive(Debug, Object)]
pub struct SeriesCreated {
    pub series_id: Uuid,
    /// The booked occurrences, by start; each has its own manage link, emailed to the patient.
    pub bookings: Vec<Booking>,
    pub skipped: Vec<SkippedOccurrence>,
}

#[derive(ApiResponse)]
pub enum SeriesCreatedResponse {
    #[oai(status = 201)]
    Created(Json<SeriesCreated>),
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The request's parts, parsed; every field error is collected.
#[allow(clippy::too_many_arguments)]
fn parse_request(
    state: &AppState,
    service_id: Uuid,
    practitioner_id: Uuid,
    first_start: &str,
    every_weeks: i64,
    count: Option<i64>,
    until: Option<NaiveDate>,
    patient: &StaffPatientInput,
    notes: Option<&str>,
    overrides: &[OverrideRule],
    on_conflict: OnConflict,
) -> ApiResult<SeriesRequest> {
    let mut errors: Vec<FieldError> = Vec::new();
    let start = parse_start("first_start", first_start).map_err(|e| errors.push(e));
    let until = match until.map(|d| localtime::check_date("until", d)).transpose() {
        Ok(u) => u,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let rule = match start {
        Ok(start) => WeeklyRule::parse(state.tz, start, every_weeks, count, until)
            .map_err(|e| errors.extend(e)),
        Err(()) => Err(()),
    };
    let patient = parse_patient(patient, notes, &mut errors);
    let (Ok(rule), Some((name, email, phone, notes))) = (rule, patient) else {
        return Err(ApiError::validation(errors));
    };
    Ok(SeriesRequest {
        booking: StaffBooking {
            service_id,
            practitioner_id,
            start: rule.first_start,
            patient_name: name,
            patient_email: email,
            patient_phone: phone,
            notes,
            overrides: listed(overrides),
        },
        rule,
        on_conflict,
    })
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffBookings")]
impl StaffSeriesApi {
    /// Every occurrence of a weekly series and whether it can be booked now (other
    /// appointments, time off and closures, as for a staff booking). Books nothing.
    #[oai(path = "/series/preview", method = "post")]
    async fn preview(
        &self,
        auth: StaffAuth,
        body: Json<SeriesPreviewRequest>,
    ) -> ApiResult<Json<SeriesPreview>> {
        let b = body.0;
        if !auth.0.may_manage_practitioner(b.practitioner_id) {
            return Err(ApiError::forbidden());
        }
        let request = parse_request(
            &self.state,
            b.service_id,
            b.practitioner_id,
            &b.first_start,
            b.every_weeks,
            b.count,
            b.until,
            &b.patient,
            b.notes.as_deref(),
            &b.overrides,
            OnConflict::Fail,
        )?;
        let tz = self.state.tz;
        let occurrences = series::preview(&self.state, &request)
            .await
            .map_err(|e| booking_problem(e, &self.state.settings.clinic.phone))?
            .into_iter()
            .map(|o| PreviewOccurrence {
                start: utc(o.start),
                local_start: o
                    .start
                    .with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, false),
                status: if o.conflict.is_some() {
                    "conflict"
                } else {
                    "free"
                }
                .to_string(),
                reason: o.conflict.map(|r| r.as_str().to_string()),
            })
            .collect();
        Ok(Json(SeriesPreview { occurrences }))
    }

    /// Books a weekly series in one transaction: one booking per occurrence, each with its
    /// own manage link; the patient gets one confirmation listing every date and one
    /// recurring calendar invitation. With `on_conflict: fail` (default) any conflict answers
    /// 409 `series_conflicts` with `conflicts: [{"start", "reason"}]` and books nothing.
    #[oai(path = "/series", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<SeriesCreateRequest>,
    ) -> ApiResult<SeriesCreatedResponse> {
        let b = body.0;
        if !auth.0.may_manage_practitioner(b.practitioner_id) {
            return Err(ApiError::forbidden());
        }
        let on_conflict = match b.on_conflict {
            Some(SeriesOnConflict::Skip) => OnConflict::Skip,
            Some(SeriesOnConflict::Fail) | None => OnConflict::Fail,
        };
        let request = parse_request(
            &self.state,
            b.service_id,
            b.practitioner_id,
            &b.first_start,
            b.every_weeks,
            b.count,
            b.until,
            &b.patient,
            b.notes.as_deref(),
            &b.overrides,
            on_conflict,
        )?;
        let phone = &self.state.settings.clinic.phone;
        let created = series::create(&self.state, &request, auth.0.id)
            .await
            .map_err(|e| match e {
                SeriesError::Conflicts(list) => ApiError::series_conflicts(
                    list.into_iter()
                        .map(|(start, reason)| OccurrenceConflict {
                            start: utc(start),
                            reason: reason_name(reason),
                        })
                        .collect(),
                ),
                SeriesError::Booking(e) => booking_problem(e, phone),
            })?;
        Ok(SeriesCreatedResponse::Created(Json(SeriesCreated {
            series_id: created.series.id,
            bookings: created
                .bookings
                .iter()
                .map(|b| booking_object(&b.details, self.state.tz))
                .collect(),
            skipped: created
                .skipped
                .into_iter()
                .map(|(start, reason)| SkippedOccurrence {
                    start: utc(start),
                    reason: reason_name(reason),
                })
                .collect(),
        })))
    }
}

fn reason_name(reason: ConflictReason) -> String {
    reason.as_str().to_string()
}
