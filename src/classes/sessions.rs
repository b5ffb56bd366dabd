//! New class sessions: one-off, or a weekly series (skipping dates that clash, listed with
//! reasons), each checked against the instructor's time, time off and closures.

use chrono::{DateTime, NaiveDate, Utc};
use entity::{class_series, class_session, service};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        availability::OutsideReason,
        classes::{self, SessionStatus},
    },
    state::AppState,
    store,
};

use super::{ClassError, SessionDetails, audit, blocked_range, session_details, write_error};

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

pub(super) async fn check_instructor(
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
pub(super) async fn clash(
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

pub(super) fn capacity_of(
    requested: Option<i32>,
    service: &service::Model,
) -> Result<i32, ClassError> {
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
