//! The waitlist: patients wait for a class place or a one-to-one slot; when a place frees,
//! after `waitlist.grace_seconds` the first matching entry (urgent first, then oldest) is
//! emailed an offer that holds the place for `waitlist.hold_minutes`; claiming it books
//! through the booking rulebook, declining or letting it expire passes it on.
//!
//! - `record_opening`: the ONE call by which code that frees a place (a cancellation, a move,
//!   time off removed) tells the waitlist, in its own transaction.
//! - `entries`: join, look up, leave; the staff list and the urgent mark.
//! - `offers`: making offers for a freed place, claim, decline, expiry, withdrawal.
//! - `worker`: one step at a given "now" (`run_once`), and the loop started at start-up.
//!
//! A held one-to-one slot is a `practitioner_holds` row of kind `offer`: slot search and every
//! booking read it as taken, and the database refuses anything overlapping it. The claim
//! closes its own offer (deleting the hold) first, in the claim's transaction, so the time is
//! free to it alone.

pub mod entries;
pub mod offers;
pub mod worker;

use chrono::{DateTime, Utc};
use entity::waitlist_opening;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::{booking::BookingError, classes::ClassError, domain::FieldError, store};

pub use entries::{JoinRequest, JoinWant, Joined, join};
pub use offers::{Claimed, ClaimedPlace, claim, decline};

/// A freed place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A seat in a class session.
    Class(Uuid),
    /// A practitioner's time [from, until) given back (an appointment's blocked range, a
    /// removed time off).
    Slot {
        practitioner_id: Uuid,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

/// Records a freed place in the caller's transaction; the worker offers it once
/// `waitlist.grace_seconds` have passed after `now`, if it is still free then.
pub async fn record_opening(
    conn: &impl ConnectionTrait,
    opening: Opening,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    insert_opening(conn, opening, now, None).await
}

/// Records a place passed on by a decline, an expiry or a leave: due at once (its grace
/// period was served when it first freed).
pub(crate) async fn pass_on(
    conn: &impl ConnectionTrait,
    opening: Opening,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    insert_opening(conn, opening, now, Some(now)).await
}

async fn insert_opening(
    conn: &impl ConnectionTrait,
    opening: Opening,
    now: DateTime<Utc>,
    due_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    let (kind, class_session_id, practitioner_id, free_from, free_until) = match opening {
        Opening::Class(id) => (store::waitlist::OPENING_CLASS, Some(id), None, None, None),
        Opening::Slot {
            practitioner_id,
            from,
            until,
        } => (
            store::waitlist::OPENING_SLOT,
            None,
            Some(practitioner_id),
            Some(from),
            Some(until),
        ),
    };
    store::waitlist::insert_opening(
        conn,
        waitlist_opening::Model {
            id: Uuid::new_v4(),
            kind: kind.to_string(),
            class_session_id,
            practitioner_id,
            free_from,
            free_until,
            freed_at: now,
            due_at,
        },
    )
    .await
}

/// Why a waitlist request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("no such entry or offer")]
    NotFound,
    /// The offer was claimed, declined, withdrawn or its hold ended.
    #[error("the offer is no longer open")]
    OfferClosed,
    /// The claim's booking was refused by the rulebook or the patient's limits.
    #[error(transparent)]
    Booking(BookingError),
    /// The claim's seat was refused (the class was cancelled or started, the patient holds a
    /// seat there already or is at the booking limit).
    #[error(transparent)]
    Class(ClassError),
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl From<ClassError> for WaitlistError {
    fn from(err: ClassError) -> Self {
        match err {
            ClassError::Database(e) => WaitlistError::Database(e),
            other => WaitlistError::Class(other),
        }
    }
}

impl From<BookingError> for WaitlistError {
    fn from(err: BookingError) -> Self {
        match err {
            BookingError::Database(e) => WaitlistError::Database(e),
            other => WaitlistError::Booking(other),
        }
    }
}
