//! Staff changes to the schedule that can take time away from booked patients: a
//! practitioner's time off and clinic closures. A confirmed booking or a scheduled class
//! session inside the new period is a conflict, settled by `on_conflict`: refuse (nothing
//! written), cancel them in the same transaction (reason `clinic_unavailable`, each patient
//! or seat holder emailed, reminders voided), or keep them (audited). A waitlist offer holding
//! time inside the new period is withdrawn in the same transaction.

use chrono::{DateTime, Utc};
use entity::{appointment, class_session, closure, time_off};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    booking::{self, Actor, BookingError, Cancellation, Context},
    state::AppState,
    store,
};

/// The reason code of bookings cancelled because the time was taken away.
pub const CLINIC_UNAVAILABLE: &str = "clinic_unavailable";

/// What the patient's email says about it.
const TOLD: &str = "The clinic is unavailable at that time. We are sorry for the inconvenience.";

/// What to do with confirmed bookings inside a new period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    #[default]
    Reject,
    Cancel,
    Keep,
}

impl OnConflict {
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Reject => "reject",
            OnConflict::Cancel => "cancel",
            OnConflict::Keep => "keep",
        }
    }
}

/// A validated period to block.
#[derive(Debug, Clone)]
pub struct NewPeriod {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub on_conflict: OnConflict,
}

/// A confirmed booking that the period covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub booking_id: Uuid,
    pub reference: String,
    pub start: DateTime<Utc>,
    pub practitioner_id: Uuid,
}

impl From<&appointment::Model> for Conflict {
    fn from(a: &appointment::Model) -> Self {
        Self {
            booking_id: a.id,
            reference: a.reference.clone(),
            start: a.starts_at,
            practitioner_id: a.practitioner_id,
        }
    }
}

/// A scheduled class session that the period covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassConflict {
    pub class_id: Uuid,
    pub start: DateTime<Utc>,
    pub practitioner_id: Uuid,
    pub seats_taken: i32,
}

impl From<&class_session::Model> for ClassConflict {
    fn from(s: &class_session::Model) -> Self {
        Self {
            class_id: s.id,
            start: s.starts_at,
            practitioner_id: s.practitioner_id,
            seats_taken: s.seats_taken,
        }
    }
}

/// Why a period was not created.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no such practitioner")]
    PractitionerNotFound,
    #[error("the period covers confirmed bookings or class sessions")]
    Conflicts(Vec<Conflict>, Vec<ClassConflict>),
    #[error(transparent)]
    Class(#[from] crate::classes::ClassError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// A created period and the bookings (and class sessions) it cancelled.
#[derive(Debug, Clone)]
pub struct Created<T> {
    pub row: T,
    pub cancelled: Vec<Uuid>,
}

/// Books time off for a practitioner.
pub async fn add_time_off(
    state: &AppState,
    staff_id: Uuid,
    practitioner_id: Uuid,
    period: NewPeriod,
) -> Result<Created<time_off::Model>, ScheduleError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let created = write_time_off(
        &txn,
        Context::of(state),
        staff_id,
        practitioner_id,
        &period,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Time off's write: the practitioner and the bookings in the period are read inside `txn`.
pub async fn write_time_off(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    staff_id: Uuid,
    practitioner_id: Uuid,
    period: &NewPeriod,
    now: DateTime<Utc>,
) -> Result<Created<time_off::Model>, ScheduleError> {
    store::catalogue::find_practitioner(txn, practitioner_id)
        .await?
        .ok_or(ScheduleError::PractitionerNotFound)?;
    let inside = store::appointments::confirmed_between(
        txn,
        Some(practitioner_id),
        period.starts_at,
        period.ends_at,
    )
    .await?;
    let classes = store::classes::scheduled_between(
        txn,
        Some(practitioner_id),
        period.starts_at,
        period.ends_at,
    )
    .await?;
    let cancelled = settle(
        txn,
        ctx,
        staff_id,
        &inside,
        &classes,
        period.on_conflict,
        now,
    )
    .await?;
    crate::waitlist::offers::withdraw_inside(
        txn,
        ctx,
        Some(practitioner_id),
        period.starts_at,
        period.ends_at,
        now,
    )
    .await?;
    let row = store::schedule::insert_time_off(
        txn,
        time_off::Model {
            id: Uuid::new_v4(),
            practitioner_id,
            starts_at: period.starts_at,
            ends_at: period.ends_at,
            reason: period.reason.clone(),
            created_at: now,
        },
    )
    .await?;
    store::audit::record(
        txn,
        Some(staff_id),
        "create",
        "time_off",
        Some(row.id),
        serde_json::json!({
            "practitioner_id": practitioner_id,
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
            "on_conflict": period.on_conflict.as_str(),
            "bookings_inside": inside.iter().map(|a| a.id).collect::<Vec<_>>(),
            "classes_inside": classes.iter().map(|c| c.id).collect::<Vec<_>>(),
            "cancelled": cancelled,
        }),
    )
    .await?;
    Ok(Created { row, cancelled })
}

/// Closes the clinic for a period.
pub async fn add_closure(
    state: &AppState,
    staff_id: Uuid,
    period: NewPeriod,
) -> Result<Created<closure::Model>, ScheduleError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let created = write_closure(&txn, Context::of(state), staff_id, &period, now).await?;
    txn.commit().await?;
    Ok(created)
}

/// The closure's write: the bookings in the period are read inside `txn`.
pub async fn write_closure(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    staff_id: Uuid,
    period: &NewPeriod,
    now: DateTime<Utc>,
) -> Result<Created<closure::Model>, ScheduleError> {
    let inside =
        store::appointments::confirmed_between(txn, None, period.starts_at, period.ends_at).await?;
    let classes =
        store::classes::scheduled_between(txn, None, period.starts_at, period.ends_at).await?;
    let cancelled = settle(
        txn,
        ctx,
        staff_id,
        &inside,
        &classes,
        period.on_conflict,
        now,
    )
    .await?;
    crate::waitlist::offers::withdraw_inside(txn, ctx, None, period.starts_at, period.ends_at, now)
        .await?;
    let row = store::schedule::insert_closure(
        txn,
        closure::Model {
            id: Uuid::new_v4(),
            starts_at: period.starts_at,
            ends_at: period.ends_at,
            reason: period.reason.clone(),
            created_at: now,
        },
    )
    .await?;
    store::audit::record(
        txn,
        Some(staff_id),
        "create",
        "closure",
        Some(row.id),
        serde_json::json!({
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
            "on_conflict": period.on_conflict.as_str(),
            "bookings_inside": inside.iter().map(|a| a.id).collect::<Vec<_>>(),
            "classes_inside": classes.iter().map(|c| c.id).collect::<Vec<_>>(),
            "cancelled": cancelled,
        }),
    )
    .await?;
    Ok(Created { row, cancelled })
}

/// Applies `on_conflict` to the confirmed bookings and scheduled class sessions inside a new
/// period, in its transaction; returns the ids of those cancelled (bookings, then classes).
async fn settle(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    staff_id: Uuid,
    inside: &[appointment::Model],
    classes: &[class_session::Model],
    on_conflict: OnConflict,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, ScheduleError> {
    match on_conflict {
        OnConflict::Reject if !inside.is_empty() || !classes.is_empty() => {
            Err(ScheduleError::Conflicts(
                inside.iter().map(Conflict::from).collect(),
                classes.iter().map(ClassConflict::from).collect(),
            ))
        }
        OnConflict::Reject | OnConflict::Keep => Ok(Vec::new()),
        OnConflict::Cancel => {
            let why = Cancellation {
                reason: Some(CLINIC_UNAVAILABLE.to_string()),
                code: Some(CLINIC_UNAVAILABLE.to_string()),
                told: Some(TOLD.to_string()),
            };
            let mut cancelled = Vec::with_capacity(inside.len() + classes.len());
            for appt in inside {
                booking::write_cancellation(
                    txn,
                    ctx,
                    appt.id,
                    Actor::Staff(staff_id),
                    &why,
                    None,
                    now,
                )
                .await?;
                cancelled.push(appt.id);
            }
            for class in classes {
                let Some(locked) = store::classes::find_session_for_update(txn, class.id).await?
                else {
                    continue;
                };
                // Every seat holder is told why, as patients of cancelled bookings are.
                crate::classes::write_cancel(txn, ctx.settings, ctx.tz, locked, TOLD, now).await?;
                cancelled.push(class.id);
            }
            Ok(cancelled)
        }
    }
}
