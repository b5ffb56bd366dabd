//! Staff management of time off and clinic closures.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::{closure, time_off};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    domain::{FieldError, catalogue::Role, text},
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult, ClassConflict, ProblemConflict},
        security::StaffAuth,
    },
    schedule::{self, OnConflict, ScheduleError},
    state::AppState,
    store::{self, catalogue as catalogue_store, schedule as schedule_store},
};

use super::{ApiTags, bookings::booking_problem, path_id};

pub struct StaffScheduleApi {
    pub state: Arc<AppState>,
}

/// A period in which a practitioner cannot be booked.
#[derive(Debug, Object)]
pub struct TimeOff {
    pub id: Uuid,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// A period in which the whole clinic is closed.
#[derive(Debug, Object)]
pub struct Closure {
    pub id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
}

/// What to do with confirmed bookings inside a new period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, poem_openapi::Enum)]
pub enum OnConflictMode {
    #[default]
    #[oai(rename = "reject")]
    Reject,
    #[oai(rename = "cancel")]
    Cancel,
    #[oai(rename = "keep")]
    Keep,
}

/// A period to block: `starts_at` before `ends_at`, at most 366 days long.
#[derive(Object)]
pub struct NewPeriod {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[oai(default)]
    pub reason: String,
    /// Confirmed bookings inside the period: `reject` (default) answers 409
    /// `conflicts_with_bookings` and writes nothing; `cancel` cancels them (reason
    /// `clinic_unavailable`; each patient is emailed with a link to book again); `keep`
    /// leaves them (audited).
    #[oai(default)]
    pub on_conflict: OnConflictMode,
}

/// A new time off and the bookings it cancelled.
#[derive(Debug, Object)]
pub struct TimeOffCreatedBody {
    #[oai(flatten)]
    pub time_off: TimeOff,
    /// Ids of the bookings, then of the class sessions, cancelled by `"on_conflict": "cancel"`.
    pub cancelled: Vec<Uuid>,
}

/// A new closure and the bookings it cancelled.
#[derive(Debug, Object)]
pub struct ClosureCreatedBody {
    #[oai(flatten)]
    pub closure: Closure,
    /// Ids of the bookings, then of the class sessions, cancelled by `"on_conflict": "cancel"`.
    pub cancelled: Vec<Uuid>,
}

#[derive(ApiResponse)]
pub enum TimeOffCreated {
    #[oai(status = 201)]
    Created(Json<TimeOffCreatedBody>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum ClosureCreated {
    #[oai(status = 201)]
    Created(Json<ClosureCreatedBody>, #[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Removed.
    #[oai(status = 204)]
    NoContent,
}

impl From<time_off::Model> for TimeOff {
    fn from(t: time_off::Model) -> Self {
        Self {
            id: t.id,
            practitioner_id: t.practitioner_id,
            starts_at: t.starts_at,
            ends_at: t.ends_at,
            reason: t.reason,
        }
    }
}

impl From<closure::Model> for Closure {
    fn from(c: closure::Model) -> Self {
        Self {
            id: c.id,
            starts_at: c.starts_at,
            ends_at: c.ends_at,
            reason: c.reason,
        }
    }
}

/// Validates a period for the schedule service.
fn parse_period(p: &NewPeriod) -> Result<schedule::NewPeriod, Vec<FieldError>> {
    Ok(schedule::NewPeriod {
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        reason: check_period(p)?,
        on_conflict: match p.on_conflict {
            OnConflictMode::Reject => OnConflict::Reject,
            OnConflictMode::Cancel => OnConflict::Cancel,
            OnConflictMode::Keep => OnConflict::Keep,
        },
    })
}

/// Maps a refused time off or closure to its problem.
fn schedule_problem(err: ScheduleError, clinic_phone: &str) -> ApiError {
    match err {
        ScheduleError::PractitionerNotFound => ApiError::not_found("practitioner"),
        ScheduleError::Conflicts(conflicts, classes) => ApiError::conflicts_with_bookings(
            conflicts
                .into_iter()
                .map(|c| ProblemConflict {
                    booking_id: c.booking_id,
                    reference: c.reference,
                    start: c.start,
                    practitioner_id: c.practitioner_id,
                })
                .collect(),
            classes
                .into_iter()
                .map(|c| ClassConflict {
                    class_id: c.class_id,
                    start: c.start,
                    practitioner_id: c.practitioner_id,
                    seats_taken: u32::try_from(c.seats_taken).unwrap_or(0),
                })
                .collect(),
        ),
        ScheduleError::Class(e) => super::classes::class_problem(e, clinic_phone),
        ScheduleError::Booking(e) => booking_problem(e, clinic_phone),
        ScheduleError::Database(e) => ApiError::from(e),
    }
}

/// Validates a period; returns the trimmed reason.
fn check_period(p: &NewPeriod) -> Result<String, Vec<FieldError>> {
    let mut errors = Vec::new();
    if p.ends_at <= p.starts_at {
        errors.push(FieldError::new("ends_at", "must be after starts_at"));
    } else if p.ends_at - p.starts_at > Duration::days(366) {
        errors.push(FieldError::new(
            "ends_at",
            "at most 366 days after starts_at",
        ));
    }
    let reason = if p.reason.trim().is_empty() {
        Ok(String::new())
    } else {
        text::single_line("reason", &p.reason, 200)
    };
    match reason {
        Ok(r) if errors.is_empty() => Ok(r),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(e);
            Err(errors)
        }
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffSchedule")]
impl StaffScheduleApi {
    /// A practitioner's time off that has not yet ended, soonest first.
    #[oai(path = "/practitioners/:id/time-off", method = "get")]
    async fn list_time_off(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<TimeOff>>> {
        let id = path_id(&id, "practitioner")?;
        if !auth.0.may_manage_practitioner(id) {
            return Err(ApiError::forbidden());
        }
        let paging = PageRequest::parse(page.0, per_page.0)?;
        catalogue_store::find_practitioner(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("practitioner"))?;
        let rows = schedule_store::upcoming_time_off(&self.state.db, &[id], Utc::now()).await?;
        Ok(Json(
            paging.slice(rows.into_iter().map(TimeOff::from).collect()),
        ))
    }

    /// Books time off for a practitioner (admin, reception, or the practitioner). Confirmed
    /// bookings inside it are settled by `on_conflict`.
    #[oai(path = "/practitioners/:id/time-off", method = "post")]
    async fn add_time_off(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<NewPeriod>,
    ) -> ApiResult<TimeOffCreated> {
        let id = path_id(&id, "practitioner")?;
        if !auth.0.may_manage_practitioner(id) {
            return Err(ApiError::forbidden());
        }
        let period = parse_period(&body)?;
        let created = schedule::add_time_off(&self.state, auth.0.id, id, period)
            .await
            .map_err(|e| schedule_problem(e, &self.state.settings.clinic.phone))?;
        let location = format!("/api/v1/staff/practitioners/{id}/time-off");
        Ok(TimeOffCreated::Created(
            Json(TimeOffCreatedBody {
                time_off: created.row.into(),
                cancelled: created.cancelled,
            }),
            location,
        ))
    }

    /// Removes a time-off period (admin, reception, or the practitioner).
    #[oai(path = "/time-off/:id", method = "delete")]
    async fn delete_time_off(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Deleted> {
        let id = path_id(&id, "time off")?;
        let txn = store::begin_write(&self.state.db).await?;
        let row = schedule_store::find_time_off(&txn, id)
            .await?
            .filter(|t| auth.0.may_manage_practitioner(t.practitioner_id))
            .ok_or_else(|| ApiError::not_found("time off"))?;
        schedule_store::delete_time_off(&txn, id).await?;
        // The practitioner's time is back: the waitlist may offer it after the grace period.
        crate::waitlist::record_opening(
            &txn,
            crate::waitlist::Opening::Slot {
                practitioner_id: row.practitioner_id,
                from: row.starts_at,
                until: row.ends_at,
            },
            chrono::Utc::now(),
        )
        .await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "delete",
            "time_off",
            Some(id),
            serde_json::json!({ "practitioner_id": row.practitioner_id, "starts_at": row.starts_at, "ends_at": row.ends_at }),
        )
        .await?;
        txn.commit().await?;
        Ok(Deleted::NoContent)
    }

    /// Clinic closures that have not yet ended, soonest first.
    #[oai(path = "/closures", method = "get")]
    async fn list_closures(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Closure>>> {
        let _ = auth;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let now = Utc::now();
        let rows = schedule_store::upcoming_closures(&self.state.db, now).await?;
        Ok(Json(
            paging.slice(rows.into_iter().map(Closure::from).collect()),
        ))
    }

    /// Closes the clinic for a period (admin, reception): nobody can be booked then, online
    /// or (without the `closure` override) by staff. Confirmed bookings inside it are settled
    /// by `on_conflict`.
    #[oai(path = "/closures", method = "post")]
    async fn add_closure(
        &self,
        auth: StaffAuth,
        body: Json<NewPeriod>,
    ) -> ApiResult<ClosureCreated> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let period = parse_period(&body)?;
        let created = schedule::add_closure(&self.state, auth.0.id, period)
            .await
            .map_err(|e| schedule_problem(e, &self.state.settings.clinic.phone))?;
        let location = format!("/api/v1/staff/closures/{}", created.row.id);
        Ok(ClosureCreated::Created(
            Json(ClosureCreatedBody {
                closure: created.row.into(),
                cancelled: created.cancelled,
            }),
            location,
        ))
    }

    /// Removes a closure (admin, reception).
    #[oai(path = "/closures/:id", method = "delete")]
    async fn delete_closure(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Deleted> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let id = path_id(&id, "closure")?;
        let txn = store::begin_write(&self.state.db).await?;
        let row = schedule_store::find_closure(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("closure"))?;
        schedule_store::delete_closure(&txn, id).await?;
        // Everyone's time in it is back: the waitlist may offer it after the grace period.
        for practitioner in store::catalogue::list_practitioners(&txn, true).await? {
            crate::waitlist::record_opening(
                &txn,
                crate::waitlist::Opening::Slot {
                    practitioner_id: practitioner.id,
                    from: row.starts_at,
                    until: row.ends_at,
                },
                chrono::Utc::now(),
            )
            .await?;
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "delete",
            "closure",
            Some(id),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(Deleted::NoContent)
    }
}
