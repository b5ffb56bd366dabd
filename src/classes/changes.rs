//! Staff changes to existing sessions: move, resize or re-staff one (seat holders get an
//! updated invitation), cancel one (every seat cancelled and emailed), end a series early.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use entity::{class_series, class_session};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    config::Settings,
    domain::{
        FieldError,
        classes::{SeatStatus, SessionStatus},
        localtime,
    },
    email::{self, SeatChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    ClassError, SessionDetails, audit, blocked_range, seat_email, session_details,
    sessions::{capacity_of, check_instructor, clash},
    write_error,
};

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

/// Moves, resizes or re-staffs a session. A capacity below the places taken or held is
/// refused; a new time or instructor is checked like a new session. Any change (a resize
/// too) raises the SEQUENCE and emails every seat holder an updated invitation, so their
/// calendars and the class's emails never disagree on what the class is.
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
    next.sequence += 1;
    next.updated_at = now;
    let raised = next.capacity > current.capacity;
    let session = store::classes::update_session(&*txn, next)
        .await
        .map_err(write_error)?;
    if raised {
        // New places: the waitlist may offer them once the grace period has passed.
        crate::waitlist::record_opening(&*txn, crate::waitlist::Opening::Class(id), now).await?;
    }
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
/// confirmed seats are cancelled, each holder emailed (told `reason`), the events emitted.
pub async fn write_cancel(
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
    // Places held for the waitlist go with the session, and its entries end.
    let ctx = crate::booking::Context { settings, tz };
    crate::waitlist::offers::withdraw_for_session(txn, ctx, session.id, now).await?;
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
