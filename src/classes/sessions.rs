//! Staff changes to class sessions: create one, create a weekly series (skipping dates that
//! clash, listed with reasons), move or resize one (seat holders get an updated invitation),
//! cancel one (every seat cancelled and emailed), and end a series early.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use entity::{class_series, class_session, service};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::{
        FieldError,
        availability::OutsideReason,
        classes::{self, SeatStatus, SessionStatus},
        localtime,
    },
    email::{self, SeatChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    ClassError, SessionDetails, audit, blocked_range, seat_email, session_details, write_error,
};

/// A one-off session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub start: DateTime<Utc>,
    /// The service's capacity when `None`.
    pub capacity: Option<i32>,
}

/// A weekly series to create: every `weekday` (0 = Monday) at `start_minute` local time from
/// `valid_from` to `valid_until`, except the dates listed.
#[derive(Debug, Clone)]
pub struct NewSeries {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub weekday: u32,
    pub start_minute: u32,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub capacity: Option<i32>,
    pub except: Vec<NaiveDate>,
}

/// A created series: its sessions and the dates it skipped, with reasons.
#[derive(Debug, Clone)]
pub struct SeriesCreated {
    pub series: class_series::Model,
    pub sessions: Vec<SessionDetails>,
    pub skipped: Vec<(NaiveDate, &'static str)>,
}

/// A change to a session; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct SessionChange {
    pub start: Option<DateTime<Utc>>,
    pub capacity: Option<i32>,
    pub practitioner_id: Option<Uuid>,
}

/// A series ended early: the series as it now is and the sessions cancelled.
#[derive(Debug, Clone)]
pub struct SeriesEnded {
    pub series: class_series::Model,
    pub cancelled: Vec<Uuid>,
}

/// The class service and an instructor who offers it, both active, read inside `txn`.
async fn class_service(
    txn: &DatabaseTransaction,
    service_id: Uuid,
    practitioner_id: Uuid,
) -> Result<service::Model, ClassError> {
    let invalid = |field: &str, message: &str| {
        ClassError::Invalid(vec![FieldError::new(field, message.to_string())])
    };
    let service = store::catalogue::find_service(txn, service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| invalid("service_id", "no such active service"))?;
    if service.capacity <= 1 {
        return Err(invalid(
            "service_id",
            "is a one-to-one service; classes need a service with capacity above 1",
        ));
    }
    check_instructor(txn, &service, practitioner_id).await?;
    Ok(service)
}

async fn check_instructor(
    txn: &DatabaseTransaction,
    service: &service::Model,
    practitioner_id: Uuid,
) -> Result<(), ClassError> {
    let active = store::catalogue::find_practitioner(txn, practitioner_id)
        .await?
        .is_some_and(|p| p.active);
    let offers = store::catalogue::links(txn)
        .await?
        .iter()
        .any(|l| l.practitioner_id == practitioner_id && l.service_id == service.id);
    if active && offers {
        Ok(())
    } else {
        Err(ClassError::Invalid(vec![FieldError::new(
            "practitioner_id",
            "no such active practitioner offering this service",
        )]))
    }
}

/// Why the instructor cannot teach in [from, until): a closure, their time off, or their
/// time already held (appointment, another class, an offer). `except` is the session moved.
async fn clash(
    txn: &DatabaseTransaction,
    practitioner_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<Option<ClassError>, DbErr> {
    if !store::schedule::closures_between(txn, from, until)
        .await?
        .is_empty()
    {
        return Ok(Some(ClassError::Outside(OutsideReason::Closed)));
    }
    if !store::schedule::time_off_between(txn, &[practitioner_id], from, until)
        .await?
        .is_empty()
    {
        return Ok(Some(ClassError::Outside(OutsideReason::TimeOff)));
    }
    if store::classes::practitioner_busy(txn, practitioner_id, from, until, except).await? {
        return Ok(Some(ClassError::InstructorBusy));
    }
    Ok(None)
}

fn capacity_of(requested: Option<i32>, service: &service::Model) -> Result<i32, ClassError> {
    let capacity = requested.unwrap_or(service.capacity);
    if (1..=classes::MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(ClassError::Invalid(vec![FieldError::new(
            "capacity",
            format!("must be from 1 to {}", classes::MAX_CAPACITY),
        )]))
    }
}

fn new_session_row(
    service: &service::Model,
    practitioner_id: Uuid,
    start: DateTime<Utc>,
    capacity: i32,
    series_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> class_session::Model {
    let (end, blocked_from, blocked_until) = blocked_range(service, start);
    class_session::Model {
        id: Uuid::new_v4(),
        service_id: service.id,
        practitioner_id,
        series_id,
        starts_at: start,
        ends_at: end,
        blocked_from,
        blocked_until,
        capacity,
        seats_taken: 0,
        seats_held: 0,
        status: SessionStatus::Scheduled.as_str().to_string(),
        cancel_reason: None,
        sequence: 0,
        created_at: now,
        updated_at: now,
    }
}

/// Creates a one-off session. Time off and closures refuse it (`Outside`); the instructor's
/// other appointments and classes too (`InstructorBusy`, also when one lands meanwhile).
pub async fn create_session(
    state: &AppState,
    new: NewSession,
    staff_id: Uuid,
) -> Result<SessionDetails, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let service = class_service(&txn, new.service_id, new.practitioner_id).await?;
    let capacity = capacity_of(new.capacity, &service)?;
    let row = new_session_row(
        &service,
        new.practitioner_id,
        new.start,
        capacity,
        None,
        now,
    );
    if let Some(refusal) = clash(
        &txn,
        row.practitioner_id,
        row.blocked_from,
        row.blocked_until,
        None,
    )
    .await?
    {
        return Err(refusal);
    }
    let session = store::classes::insert_session(&*txn, row)
        .await
        .map_err(write_error)?;
    audit(
        &*txn,
        staff_id,
        "create",
        "class",
        session.id,
        serde_json::json!({ "start": session.starts_at, "practitioner_id": session.practitioner_id,
                            "capacity": session.capacity }),
    )
    .await?;
    let details = session_details(&*txn, session).await?;
    txn.commit().await.map_err(write_error)?;
    Ok(details)
}

/// Creates a weekly series and its sessions in one transaction. Dates listed in `except`, or
/// that hit a closure, the instructor's time off or their other appointments and classes,
/// are skipped and listed with a reason (`excepted`, `closure`, `time_off`, `taken`).
pub async fn create_series(
    state: &AppState,
    new: NewSeries,
    staff_id: Uuid,
) -> Result<SeriesCreated, ClassError> {
    let now = Utc::now();
    let dates = classes::weekly_dates(
        state.tz,
        new.weekday,
        new.start_minute,
        new.valid_from,
        new.valid_until,
    );
    if dates.len() > classes::MAX_SERIES_SESSIONS {
        return Err(ClassError::Invalid(vec![FieldError::new(
            "valid_until",
            format!(
                "a series has at most {} sessions",
                classes::MAX_SERIES_SESSIONS
            ),
        )]));
    }
    let txn = state.writer.begin().await?;
    let service = class_service(&txn, new.service_id, new.practitioner_id).await?;
    let capacity = capacity_of(new.capacity, &service)?;
    let series = store::classes::insert_series(
        &*txn,
        class_series::Model {
            id: Uuid::new_v4(),
            service_id: service.id,
            practitioner_id: new.practitioner_id,
            weekday: new.weekday as i32,
            start_minute: new.start_minute as i32,
            valid_from: new.valid_from,
            valid_until: new.valid_until,
            capacity,
            created_at: now,
        },
    )
    .await?;
    let mut sessions = Vec::new();
    let mut skipped = Vec::new();
    for date in dates {
        if new.except.contains(&date.date) {
            skipped.push((date.date, "excepted"));
            continue;
        }
        let row = new_session_row(
            &service,
            new.practitioner_id,
            date.start,
            capacity,
            Some(series.id),
            now,
        );
        let reason = match clash(
            &txn,
            row.practitioner_id,
            row.blocked_from,
            row.blocked_until,
            None,
        )
        .await?
        {
            Some(ClassError::Outside(OutsideReason::Closed)) => Some("closure"),
            Some(ClassError::Outside(_)) => Some("time_off"),
            Some(_) => Some("taken"),
            None => None,
        };
        if let Some(reason) = reason {
            skipped.push((date.date, reason));
            continue;
        }
        // A savepoint per session: one lost to a concurrent booking is skipped, not fatal.
        let attempt = txn.begin().await?;
        match store::classes::insert_session(&attempt, row).await {
            Ok(session) => {
                attempt.commit().await?;
                sessions.push(session);
            }
            Err(e) if store::is_overlap_violation(&e) => {
                attempt.rollback().await?;
                skipped.push((date.date, "taken"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    audit(
        &*txn,
        staff_id,
        "create",
        "class_series",
        series.id,
        serde_json::json!({ "sessions": sessions.len(), "skipped": skipped.len() }),
    )
    .await?;
    let sessions = super::sessions_details(&*txn, sessions).await?;
    txn.commit().await.map_err(write_error)?;
    Ok(SeriesCreated {
        series,
        sessions,
        skipped,
    })
}

/// Moves, resizes or re-staffs a session. A capacity below the places taken or held is
/// refused; a new time or instructor is checked like a new session, and every seat holder is
/// emailed an updated invitation (SEQUENCE raised).
pub async fn update_session(
    state: &AppState,
    id: Uuid,
    change: SessionChange,
    staff_id: Uuid,
) -> Result<SessionDetails, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let current = store::classes::find_session_for_update(&*txn, id)
        .await?
        .ok_or(ClassError::NotFound("class"))?;
    if current.status == SessionStatus::Cancelled.as_str() {
        return Err(ClassError::NotChangeable("cancelled"));
    }
    let service = store::catalogue::find_service(&*txn, current.service_id)
        .await?
        .ok_or(DbErr::RecordNotFound("service".into()))?;
    let mut next = current.clone();
    let mut fields = Vec::new();
    if let Some(capacity) = change.capacity
        && capacity != current.capacity
    {
        next.capacity = capacity_of(Some(capacity), &service)?;
        if current.seats_taken + current.seats_held > next.capacity {
            return Err(ClassError::CapacityBelowSeats);
        }
        fields.push("capacity");
    }
    if let Some(pid) = change.practitioner_id
        && pid != current.practitioner_id
    {
        check_instructor(&txn, &service, pid).await?;
        next.practitioner_id = pid;
        fields.push("practitioner_id");
    }
    if let Some(start) = change.start
        && start != current.starts_at
    {
        (next.ends_at, next.blocked_from, next.blocked_until) = blocked_range(&service, start);
        next.starts_at = start;
        fields.push("starts_at");
    }
    if fields.is_empty() {
        let details = session_details(&*txn, current).await?;
        txn.commit().await?;
        return Ok(details);
    }
    let moved =
        next.starts_at != current.starts_at || next.practitioner_id != current.practitioner_id;
    if moved
        && let Some(refusal) = clash(
            &txn,
            next.practitioner_id,
            next.blocked_from,
            next.blocked_until,
            Some(id),
        )
        .await?
    {
        return Err(refusal);
    }
    if moved {
        next.sequence += 1;
    }
    next.updated_at = now;
    let session = store::classes::update_session(&*txn, next)
        .await
        .map_err(write_error)?;
    audit(
        &*txn,
        staff_id,
        "update",
        "class",
        id,
        serde_json::json!({ "fields": fields }),
    )
    .await?;
    let details = session_details(&*txn, session).await?;
    if moved {
        for seat in store::classes::seats_of(&*txn, id).await? {
            if seat.status != SeatStatus::Confirmed.as_str() {
                continue;
            }
            let Some(patient) = store::patients::find(&*txn, seat.patient_id).await? else {
                continue;
            };
            let view = seat_email(&state.settings, &seat, &details, &patient, None);
            email::seat_changed(
                &*txn,
                &state.settings,
                state.tz,
                SeatChange::ClassChanged {
                    seat: &view,
                    previous_start: current.starts_at,
                },
            )
            .await?;
        }
    }
    txn.commit().await.map_err(write_error)?;
    Ok(details)
}

/// Cancels a session with a reason: every confirmed seat is cancelled and its holder emailed
/// (CANCEL). Cancelling a cancelled session changes nothing.
pub async fn cancel_session(
    state: &AppState,
    id: Uuid,
    reason: String,
    staff_id: Uuid,
) -> Result<SessionDetails, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let session = store::classes::find_session_for_update(&*txn, id)
        .await?
        .ok_or(ClassError::NotFound("class"))?;
    let session = write_cancel(&txn, &state.settings, state.tz, session, &reason, now).await?;
    audit(
        &*txn,
        staff_id,
        "cancel",
        "class",
        id,
        serde_json::json!({ "status": session.status }),
    )
    .await?;
    let details = session_details(&*txn, session).await?;
    txn.commit().await?;
    Ok(details)
}

/// The cancellation's write, on a session locked by the caller: the session and each of its
/// confirmed seats are cancelled, each holder emailed, the events emitted.
async fn write_cancel(
    txn: &DatabaseTransaction,
    settings: &Settings,
    tz: Tz,
    session: class_session::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<class_session::Model, ClassError> {
    if session.status == SessionStatus::Cancelled.as_str() {
        return Ok(session);
    }
    let seats = store::classes::seats_of(txn, session.id).await?;
    let confirmed: Vec<_> = seats
        .into_iter()
        .filter(|s| s.status == SeatStatus::Confirmed.as_str())
        .collect();
    let mut next = session;
    next.status = SessionStatus::Cancelled.as_str().to_string();
    next.cancel_reason = Some(reason.to_string());
    next.sequence += 1;
    next.seats_taken -= i32::try_from(confirmed.len()).unwrap_or(i32::MAX);
    next.seats_taken = next.seats_taken.max(0);
    next.updated_at = now;
    let session = store::classes::update_session(txn, next).await?;
    let details = session_details(txn, session.clone()).await?;
    for seat in confirmed {
        let mut cancelled = seat;
        cancelled.status = SeatStatus::Cancelled.as_str().to_string();
        cancelled.cancel_reason = Some("class_cancelled".to_string());
        cancelled.updated_at = now;
        let cancelled = store::classes::update_seat(txn, cancelled).await?;
        webhooks::emit_seat(txn, now, EventType::ClassSeatCancelled, &cancelled).await?;
        if let Some(patient) = store::patients::find(txn, cancelled.patient_id).await? {
            let view = seat_email(settings, &cancelled, &details, &patient, None);
            email::seat_changed(
                txn,
                settings,
                tz,
                SeatChange::ClassCancelled {
                    seat: &view,
                    reason,
                },
            )
            .await?;
        }
    }
    webhooks::emit_class_cancelled(txn, now, &session).await?;
    Ok(session)
}

/// Ends a series on `valid_until` (a local date, not after its current end): every later
/// scheduled session is cancelled and its seats emailed.
pub async fn end_series(
    state: &AppState,
    series_id: Uuid,
    valid_until: NaiveDate,
    staff_id: Uuid,
) -> Result<SeriesEnded, ClassError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let mut series = store::classes::find_series(&*txn, series_id)
        .await?
        .ok_or(ClassError::NotFound("class series"))?;
    if valid_until > series.valid_until {
        return Err(ClassError::Invalid(vec![FieldError::new(
            "valid_until",
            "can only end a series earlier; create another series to add sessions",
        )]));
    }
    let prior_day = series.valid_from - Duration::days(1);
    if valid_until < prior_day {
        return Err(ClassError::Invalid(vec![FieldError::new(
            "valid_until",
            "must not be more than a day before the series' first date",
        )]));
    }
    series.valid_until = valid_until;
    let series = store::classes::update_series(&*txn, series).await?;
    let after = valid_until
        .succ_opt()
        .map(|d| localtime::instant_at(state.tz, d, 0))
        .ok_or_else(|| ClassError::Invalid(vec![FieldError::new("valid_until", "out of range")]))?;
    let mut cancelled = Vec::new();
    for session in store::classes::series_sessions_from(&*txn, series_id, after).await? {
        let locked = store::classes::find_session_for_update(&*txn, session.id)
            .await?
            .ok_or(DbErr::RecordNotFound("class".into()))?;
        let done =
            write_cancel(&txn, &state.settings, state.tz, locked, "series_ended", now).await?;
        cancelled.push(done.id);
    }
    audit(
        &*txn,
        staff_id,
        "end",
        "class_series",
        series_id,
        serde_json::json!({ "valid_until": valid_until, "cancelled": cancelled.len() }),
    )
    .await?;
    txn.commit().await?;
    Ok(SeriesEnded { series, cancelled })
}
