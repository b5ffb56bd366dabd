//! Courses of treatment: a weekly series of staff bookings, previewed and then created in one
//! write transaction, and cancelled one, the following or all occurrences at a time.
//!
//! Every occurrence is placed exactly like a staff booking (`placement::choose` with the
//! request's overrides), so the rulebook and the double-booking guarantee are the same ones.
//! [`write_series`] is the series' one write: tokens and the series id are made before it.

use chrono::{DateTime, Utc};
use entity::{appointment, series, service};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        availability::OutsideReason,
        booking::BookingStatus,
        rulebook::{Allowed, Overrides},
        series::{SeriesEnd, WeeklyRule},
    },
    email::{self, SeriesEmail},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    Actor, Booked, BookingError, Cancellation, Context, ManageToken, StaffBooking, audit_staff,
    email_view, patients, place, placement, write_cancellation, write_error,
};

/// How many times a series is tried again after losing a race for one of its times to a
/// concurrent booking (the next try sees that booking and reports or skips it).
const ATTEMPTS: usize = 3;

/// What to do when some occurrences cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Book nothing and report them.
    Fail,
    /// Book the others and list the skipped ones.
    Skip,
}

/// Why an occurrence cannot be booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictReason {
    Taken,
    TimeOff,
    Closure,
}

impl ConflictReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictReason::Taken => "taken",
            ConflictReason::TimeOff => "time_off",
            ConflictReason::Closure => "closure",
        }
    }
}

/// A course of treatment to preview or book: the first occurrence as a staff booking (its
/// `start` is the rule's first start) and the weekly rule.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    pub booking: StaffBooking,
    pub rule: WeeklyRule,
    pub on_conflict: OnConflict,
}

/// One occurrence of a preview: free, or why not.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub conflict: Option<ConflictReason>,
}

/// A booked series.
#[derive(Debug, Clone)]
pub struct SeriesCreated {
    pub series: series::Model,
    pub bookings: Vec<Booked>,
    pub skipped: Vec<(DateTime<Utc>, ConflictReason)>,
}

/// Why a series was refused.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// `on_conflict: fail` and these occurrences cannot be booked (or none can).
    #[error("{} occurrence(s) conflict", .0.len())]
    Conflicts(Vec<(DateTime<Utc>, ConflictReason)>),
    #[error(transparent)]
    Booking(#[from] BookingError),
}

impl From<DbErr> for SeriesError {
    fn from(err: DbErr) -> Self {
        SeriesError::Booking(BookingError::Database(err))
    }
}

/// The service and practitioner of a series, checked inside the transaction.
async fn service_for(
    txn: &DatabaseTransaction,
    request: &StaffBooking,
) -> Result<service::Model, BookingError> {
    let service = store::catalogue::find_service(txn, request.service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new(
                "service_id",
                "no such active service",
            )])
        })?;
    placement::staff_candidate(txn, &service, request.practitioner_id).await?;
    Ok(service)
}

/// The rulebook's answer for one occurrence, as a staff booking with the request's overrides.
async fn check(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    service: &service::Model,
    request: &StaffBooking,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Result<Allowed, ConflictReason>, BookingError> {
    let overrides = Overrides::staff(request.overrides.iter().copied());
    match placement::choose(
        txn,
        ctx,
        service,
        &[request.practitioner_id],
        start,
        now,
        None,
        overrides,
    )
    .await
    {
        Ok((_, allowed)) => Ok(Ok(allowed)),
        Err(BookingError::SlotUnavailable) => Ok(Err(ConflictReason::Taken)),
        Err(BookingError::Outside(OutsideReason::TimeOff)) => Ok(Err(ConflictReason::TimeOff)),
        Err(BookingError::Outside(OutsideReason::Closed)) => Ok(Err(ConflictReason::Closure)),
        Err(other) => Err(other),
    }
}

/// Every occurrence of the rule and whether the rulebook would book it now. Writes nothing.
pub async fn preview(
    state: &AppState,
    request: &SeriesRequest,
) -> Result<Vec<Occurrence>, BookingError> {
    let ctx = Context::of(state);
    let now = Utc::now();
    let txn = state.db.begin().await?;
    let service = service_for(&txn, &request.booking).await?;
    let mut out = Vec::new();
    for start in request.rule.occurrences(ctx.tz) {
        let conflict = check(&txn, ctx, &service, &request.booking, start, now)
            .await?
            .err();
        out.push(Occurrence { start, conflict });
    }
    txn.rollback().await?;
    Ok(out)
}

/// Books a series in one write transaction. A time lost to a concurrent booking between the
/// check and the insert (PostgreSQL's exclusion constraint) makes the whole attempt fail, and
/// the next attempt sees that booking: it is then reported (`fail`) or skipped (`skip`).
pub async fn create(
    state: &AppState,
    request: &SeriesRequest,
    staff_id: Uuid,
) -> Result<SeriesCreated, SeriesError> {
    let count = request.rule.occurrences(state.tz).len();
    for attempt in 1..=ATTEMPTS {
        let tokens: Vec<ManageToken> = (0..count).map(|_| ManageToken::generate()).collect();
        let series_id = Uuid::new_v4();
        let txn = state.writer.begin().await.map_err(BookingError::from)?;
        let written = write_series(
            &txn,
            Context::of(state),
            request,
            staff_id,
            series_id,
            tokens,
            Utc::now(),
        )
        .await;
        let result = match written {
            Ok(created) => txn
                .commit()
                .await
                .map(|()| created)
                .map_err(|e| SeriesError::Booking(write_error(e))),
            Err(err) => Err(err),
        };
        match result {
            Err(SeriesError::Booking(BookingError::SlotUnavailable)) if attempt < ATTEMPTS => {
                tracing::info!("series lost a time to a concurrent booking; trying again");
            }
            other => return other,
        }
    }
    Err(SeriesError::Booking(BookingError::SlotUnavailable))
}

/// The series' write: every occurrence is checked on what `txn` reads, then (unless `fail`
/// meets a conflict) the series row, each booking with its history and audit row, the
/// series' audit row and its emails are written. `tokens` holds one fresh manage token per
/// occurrence of the rule. Emits `series.created` and one `booking.created` per occurrence.
pub async fn write_series(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    request: &SeriesRequest,
    staff_id: Uuid,
    series_id: Uuid,
    tokens: Vec<ManageToken>,
    now: DateTime<Utc>,
) -> Result<SeriesCreated, SeriesError> {
    let actor = Actor::Staff(staff_id);
    let staff_booking = &request.booking;
    let service = service_for(txn, staff_booking).await?;
    let starts = request.rule.occurrences(ctx.tz);
    let mut free = Vec::new();
    let mut skipped = Vec::new();
    for start in &starts {
        match check(txn, ctx, &service, staff_booking, *start, now).await? {
            Ok(allowed) => free.push((*start, allowed)),
            Err(reason) => skipped.push((*start, reason)),
        }
    }
    if free.is_empty() || (request.on_conflict == OnConflict::Fail && !skipped.is_empty()) {
        return Err(SeriesError::Conflicts(skipped));
    }
    let patient = patients::for_staff_booking(txn, staff_booking, now).await?;
    let (count, until) = match request.rule.end {
        SeriesEnd::Count(n) => (Some(n as i32), None),
        SeriesEnd::Until(date) => (None, Some(date.format("%Y-%m-%d").to_string())),
    };
    let series = store::series::insert(
        txn,
        series::Model {
            id: series_id,
            patient_id: patient.id,
            service_id: service.id,
            practitioner_id: staff_booking.practitioner_id,
            first_start: request.rule.first_start,
            every_weeks: request.rule.every_weeks as i32,
            count,
            until,
            time_zone: ctx.tz.name().to_string(),
            status: "active".to_string(),
            created_by: Some(staff_id),
            created_at: now,
            updated_at: now,
        },
    )
    .await?;
    let mut booked = Vec::new();
    for ((start, allowed), token) in free.iter().zip(tokens) {
        let appointment = place::insert_confirmed(
            txn,
            &service,
            staff_booking.practitioner_id,
            patient.id,
            *start,
            staff_booking.notes.clone(),
            actor,
            &token,
            now,
            Some(series_id),
        )
        .await?;
        webhooks::emit_booking(txn, now, EventType::BookingCreated, &appointment).await?;
        let mut detail = place::placement_audit(&appointment, *allowed);
        detail["series_id"] = serde_json::json!(series_id);
        audit_staff(txn, actor, "create", appointment.id, detail).await?;
        booked.push((appointment, token.plain));
    }
    let (appointments, plain): (Vec<appointment::Model>, Vec<String>) = booked.into_iter().unzip();
    let booking_ids: Vec<Uuid> = appointments.iter().map(|a| a.id).collect();
    webhooks::emit(
        txn,
        now,
        EventType::SeriesCreated,
        serde_json::json!({ "series_id": series_id, "status": "active", "booking_ids": booking_ids }),
    )
    .await?;
    let details = super::details_many(txn, appointments).await?;
    let bookings: Vec<Booked> = details
        .into_iter()
        .zip(plain)
        .map(|(details, manage_token)| Booked {
            details,
            manage_token,
        })
        .collect();
    let reasons: Vec<serde_json::Value> = skipped
        .iter()
        .map(|(start, reason)| serde_json::json!({ "start": start, "reason": reason.as_str() }))
        .collect();
    store::audit::record(
        txn,
        Some(staff_id),
        "create",
        "series",
        Some(series_id),
        serde_json::json!({
            "service_id": service.id,
            "practitioner_id": staff_booking.practitioner_id,
            "every_weeks": request.rule.every_weeks,
            "booking_ids": bookings.iter().map(|b| b.details.appointment.id).collect::<Vec<_>>(),
            "skipped": reasons,
            "overrides": Overrides::staff(staff_booking.overrides.iter().copied()).listed_names(),
        }),
    )
    .await?;
    let views = bookings
        .iter()
        .map(|b| email_view(ctx.settings, &b.details, Some(&b.manage_token)))
        .collect();
    email::series_confirmed(
        txn,
        ctx.settings,
        ctx.tz,
        &SeriesEmail {
            series_id,
            every_weeks: request.rule.every_weeks,
            count: match request.rule.end {
                SeriesEnd::Count(n) => Some(n),
                SeriesEnd::Until(_) => None,
            },
            until: request.rule.until_instant(ctx.tz),
            first_start: request.rule.first_start,
            last_start: starts.last().copied().unwrap_or(request.rule.first_start),
            skipped: skipped.iter().map(|(s, _)| *s).collect(),
            bookings: views,
        },
    )
    .await?;
    Ok(SeriesCreated {
        series,
        bookings,
        skipped,
    })
}

/// Which occurrences a cancellation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    This,
    /// The named occurrence and every later one.
    Following,
    All,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::This => "this",
            Scope::Following => "following",
            Scope::All => "all",
        }
    }
}

/// Cancels a booking and, for an occurrence of a series, the following or all occurrences,
/// in one transaction. Answers the ids of the bookings in scope that are cancelled now.
/// Occurrences already attended (or missed) are history and stay as they are; a single
/// booking with `following` or `all` is just cancelled.
pub async fn cancel_scoped(
    state: &AppState,
    appointment_id: Uuid,
    staff_id: Uuid,
    why: Cancellation,
    scope: Scope,
    only_practitioner: Option<Uuid>,
) -> Result<Vec<Uuid>, BookingError> {
    let txn = state.writer.begin().await?;
    let ids = write_scoped_cancellation(
        &txn,
        Context::of(state),
        appointment_id,
        staff_id,
        &why,
        scope,
        only_practitioner,
        Utc::now(),
    )
    .await?;
    txn.commit().await?;
    Ok(ids)
}

/// The scoped cancellation's write. `only_practitioner` limits the scope to one
/// practitioner's occurrences (a practitioner cancels only their own).
#[allow(clippy::too_many_arguments)]
pub async fn write_scoped_cancellation(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    appointment_id: Uuid,
    staff_id: Uuid,
    why: &Cancellation,
    scope: Scope,
    only_practitioner: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, BookingError> {
    let actor = Actor::Staff(staff_id);
    let named = store::bookings::find(txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let in_scope: Vec<appointment::Model> = match (named.series_id, scope) {
        (None, _) | (_, Scope::This) => vec![named.clone()],
        (Some(series_id), _) => store::series::appointments(txn, series_id)
            .await?
            .into_iter()
            .filter(|a| {
                a.id == named.id
                    || ((scope == Scope::All || a.starts_at >= named.starts_at)
                        && only_practitioner.is_none_or(|p| p == a.practitioner_id))
            })
            .collect(),
    };
    let mut cancelled = Vec::new();
    for appt in in_scope {
        let status = BookingStatus::parse(&appt.status);
        // Only the named booking may refuse (it is what the caller asked about); the others
        // in scope that are already history are left alone.
        if appt.id != named.id && status != Some(BookingStatus::Confirmed) {
            if status == Some(BookingStatus::Cancelled) {
                cancelled.push(appt.id);
            }
            continue;
        }
        let d = write_cancellation(txn, ctx, appt.id, actor, why, None, now).await?;
        cancelled.push(d.appointment.id);
    }
    if let Some(series_id) = named.series_id {
        if scope == Scope::All
            && let Some(mut series) = store::series::find(txn, series_id).await?
        {
            series.status = "cancelled".to_string();
            series.updated_at = now;
            store::series::update(txn, series).await?;
        }
        store::audit::record(
            txn,
            Some(staff_id),
            "cancel",
            "series",
            Some(series_id),
            serde_json::json!({
                "scope": scope.as_str(),
                "booking_id": named.id,
                "booking_ids": cancelled,
                "reason": why.code,
            }),
        )
        .await?;
    }
    Ok(cancelled)
}
