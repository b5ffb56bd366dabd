//! New seats: booked online (by the class service's notice and horizon, within the booking
//! limit) or by staff, or claimed from a waitlist offer's held place. A seat only ever
//! changes itself and its session's count: never the class or another seat.

use chrono::{DateTime, Utc};
use entity::{class_seat, patient};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    auth::token,
    booking::{ManageToken, StoredResponse},
    domain::{
        booking::{self as booking_rules, PatientDetails},
        classes::{SeatRefusal, SeatStatus, SessionStatus, seat_refusal},
        policy,
        text::{EmailAddress, PersonName, PhoneNumber},
    },
    email::{self, SeatChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    ClassError, SeatDetails, SessionDetails, audit, seat_email, session_details, write_error,
};

/// How many fresh references a seat tries before giving up (as bookings do).
const REFERENCE_ATTEMPTS: usize = 5;

/// A validated online seat request.
#[derive(Debug, Clone)]
pub struct NewSeat {
    pub session_id: Uuid,
    pub patient: PatientDetails,
    pub notes: String,
}

/// A seat booked by staff on the phone or at the desk; without an address, no email.
#[derive(Debug, Clone)]
pub struct StaffSeat {
    pub session_id: Uuid,
    pub name: PersonName,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub notes: String,
}

/// A new seat and its manage token (shown once).
#[derive(Debug, Clone)]
pub struct SeatBooked {
    pub details: SeatDetails,
    pub manage_token: String,
}

/// An idempotency key to record with the seat, in the same transaction.
pub struct SeatIdempotency<'a> {
    pub key: String,
    pub request_hash: String,
    pub render: &'a (dyn Fn(&SeatBooked) -> StoredResponse + Send + Sync),
}

/// Reads what a seat is shown with.
pub async fn seat_details(
    conn: &impl sea_orm::ConnectionTrait,
    seat: class_seat::Model,
) -> Result<SeatDetails, DbErr> {
    let session = store::classes::find_session(conn, seat.class_session_id)
        .await?
        .ok_or(DbErr::RecordNotFound("class".into()))?;
    let class = session_details(conn, session).await?;
    let patient = store::patients::find(conn, seat.patient_id)
        .await?
        .ok_or(DbErr::RecordNotFound("patient".into()))?;
    Ok(SeatDetails {
        seat,
        class,
        patient,
    })
}

/// The seat a manage token opens, if any.
pub async fn find_seat_by_token(
    state: &AppState,
    token_value: &str,
) -> Result<Option<SeatDetails>, DbErr> {
    let Some(seat) =
        store::classes::find_seat_by_token_hash(&state.db, &token::hash(token_value)).await?
    else {
        return Ok(None);
    };
    seat_details(&state.db, seat).await.map(Some)
}

/// Where a new seat's place comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A free place (online and staff bookings).
    Free,
    /// A place held for a waitlist offer that is being claimed.
    Held,
}

/// Takes a place for `patient` in the session and inserts the seat (`source`: online, staff
/// or waitlist): refused when the patient already holds one there, or when no place is free
/// (or held, for `Place::Held`) — a guarded UPDATE decides. Pass the caller's write
/// transaction; the seat's emails and events are the caller's.
#[allow(clippy::too_many_arguments)]
pub async fn write_seat(
    txn: &DatabaseTransaction,
    class: &SessionDetails,
    patient: &patient::Model,
    notes: String,
    source: &str,
    place: Place,
    token: &ManageToken,
    now: DateTime<Utc>,
) -> Result<class_seat::Model, ClassError> {
    let session_id = class.session.id;
    if store::classes::active_seat_of_patient(txn, session_id, patient.id)
        .await?
        .is_some()
    {
        return Err(ClassError::AlreadyBooked);
    }
    let taken = match place {
        Place::Free => store::classes::take_seat(txn, session_id, now).await?,
        Place::Held => store::classes::take_held_seat(txn, session_id, now).await?,
    };
    if !taken {
        let status = store::classes::find_session(txn, session_id)
            .await?
            .map(|s| s.status);
        return Err(match status.as_deref() {
            Some("scheduled") => ClassError::Full,
            _ => ClassError::SeatRefused(SeatRefusal::Cancelled),
        });
    }
    let mut row = class_seat::Model {
        id: Uuid::new_v4(),
        reference: String::new(),
        class_session_id: session_id,
        patient_id: patient.id,
        status: SeatStatus::Confirmed.as_str().to_string(),
        notes,
        source: source.to_string(),
        manage_token_hash: Some(token.hash.clone()),
        cancel_reason: None,
        created_at: now,
        updated_at: now,
    };
    for _ in 0..REFERENCE_ATTEMPTS {
        row.reference = booking_rules::new_reference();
        let attempt = txn.begin().await?;
        match store::classes::insert_seat(&attempt, row.clone()).await {
            Ok(seat) => {
                attempt.commit().await?;
                return Ok(seat);
            }
            Err(e) if store::classes::is_already_booked(&e) => {
                attempt.rollback().await?;
                return Err(ClassError::AlreadyBooked);
            }
            Err(e) if store::is_unique_violation(&e) => {
                attempt.rollback().await?;
                tracing::warn!("seat reference collision; trying another");
            }
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(ClassError::Database(DbErr::Custom(
        "no seat reference".into(),
    )))
}

/// Books a seat online: the session must be scheduled and within the class service's notice
/// and horizon, the patient must not hold a seat in it already nor be at the booking limit,
/// and a place must be free.
pub async fn book_seat(
    state: &AppState,
    new: NewSeat,
    idempotency: Option<SeatIdempotency<'_>>,
) -> Result<SeatBooked, ClassError> {
    let token = ManageToken::generate();
    let now = Utc::now();
    let settings = &state.settings;
    let txn = state.writer.begin().await?;
    if let Some(idem) = &idempotency {
        if let Some(stored) = store::bookings::find_idempotent(&*txn, &idem.key, now).await? {
            return Err(ClassError::Replay(Box::new(stored)));
        }
        store::bookings::claim_idempotent(&*txn, &idem.key, &idem.request_hash, now).await?;
    }
    let session = store::classes::find_session(&*txn, new.session_id)
        .await?
        .ok_or(ClassError::NotFound("class"))?;
    let class = session_details(&*txn, session).await?;
    if !(class.service.active && class.service.online_bookable) {
        return Err(ClassError::NotFound("class"));
    }
    let rules = policy::rules_for(&class.service, &settings.policy);
    let status = SessionStatus::parse(&class.session.status).unwrap_or(SessionStatus::Cancelled);
    if let Some(refusal) = seat_refusal(status, class.session.starts_at, &rules, now) {
        return Err(ClassError::SeatRefused(refusal));
    }
    let patient = store::patients::find_or_create_by_email(
        &*txn,
        new.patient.email.as_str(),
        new.patient.name.as_str(),
        new.patient.phone.as_ref().map(|p| p.as_str()),
        now,
    )
    .await?;
    let limit = settings.booking.max_active_per_patient;
    if store::bookings::count_upcoming_for_patient(&*txn, patient.id, now).await?
        >= u64::from(limit)
    {
        return Err(ClassError::LimitReached(limit));
    }
    let seat = write_seat(
        &txn,
        &class,
        &patient,
        new.notes.clone(),
        "online",
        Place::Free,
        &token,
        now,
    )
    .await?;
    store::patients::record_consents(
        &*txn,
        patient.id,
        true,
        new.patient.marketing_consent,
        "class_booking",
        now,
    )
    .await?;
    webhooks::emit_seat(&*txn, now, EventType::ClassSeatBooked, &seat).await?;
    // Shown back (and emailed) as this request gave them, never the stored record's, as for
    // bookings: the form is public.
    let shown = patient::Model {
        name: new.patient.name.as_str().to_string(),
        phone: new.patient.phone.as_ref().map(|p| p.as_str().to_string()),
        ..patient
    };
    let class = session_details(
        &*txn,
        store::classes::find_session(&*txn, class.session.id)
            .await?
            .ok_or(DbErr::RecordNotFound("class".into()))?,
    )
    .await?;
    let view = seat_email(settings, &seat, &class, &shown, Some(&token.plain));
    email::seat_changed(&*txn, settings, state.tz, SeatChange::Confirmed(&view)).await?;
    let booked = SeatBooked {
        details: SeatDetails {
            seat,
            class,
            patient: shown,
        },
        manage_token: token.plain,
    };
    if let Some(idem) = &idempotency {
        let (status, body, location) = (idem.render)(&booked);
        store::bookings::complete_idempotent(&*txn, &idem.key, status, body, location).await?;
    }
    txn.commit().await.map_err(write_error)?;
    Ok(booked)
}

/// Books a seat for a patient by staff: notice and horizon do not apply (a class that has
/// ended or was cancelled still refuses), nor does the online booking limit.
pub async fn book_seat_by_staff(
    state: &AppState,
    request: StaffSeat,
    staff_id: Uuid,
) -> Result<SeatBooked, ClassError> {
    let token = ManageToken::generate();
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let session = store::classes::find_session(&*txn, request.session_id)
        .await?
        .ok_or(ClassError::NotFound("class"))?;
    if session.status == SessionStatus::Cancelled.as_str() {
        return Err(ClassError::SeatRefused(SeatRefusal::Cancelled));
    }
    if session.ends_at <= now {
        return Err(ClassError::SeatRefused(SeatRefusal::Started));
    }
    let class = session_details(&*txn, session).await?;
    let phone = request.phone.as_ref().map(|p| p.as_str());
    let patient = match &request.email {
        Some(email) => {
            store::patients::find_or_create_by_email(
                &*txn,
                email.as_str(),
                request.name.as_str(),
                phone,
                now,
            )
            .await?
        }
        None => {
            store::patients::insert_without_email(&*txn, request.name.as_str(), phone, now).await?
        }
    };
    let seat = write_seat(
        &txn,
        &class,
        &patient,
        request.notes.clone(),
        "staff",
        Place::Free,
        &token,
        now,
    )
    .await?;
    webhooks::emit_seat(&*txn, now, EventType::ClassSeatBooked, &seat).await?;
    audit(
        &*txn,
        staff_id,
        "create",
        "class_seat",
        seat.id,
        serde_json::json!({ "class_id": seat.class_session_id }),
    )
    .await?;
    let details = seat_details(&*txn, seat).await?;
    let view = seat_email(
        &state.settings,
        &details.seat,
        &details.class,
        &details.patient,
        Some(&token.plain),
    );
    email::seat_changed(
        &*txn,
        &state.settings,
        state.tz,
        SeatChange::Confirmed(&view),
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(SeatBooked {
        details,
        manage_token: token.plain,
    })
}

/// A seat placed by a waitlist claim, in the claim's transaction (which has released the
/// place the offer held): the session must be scheduled and not started — no notice rule,
/// the clinic made the offer — and the patient must not hold a seat there already nor be at
/// the booking limit. Emails and the webhook as for any seat.
pub async fn write_claimed_seat(
    txn: &DatabaseTransaction,
    state: &AppState,
    session_id: Uuid,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<SeatBooked, ClassError> {
    let token = ManageToken::generate();
    let settings = &state.settings;
    let session = store::classes::find_session(txn, session_id)
        .await?
        .ok_or(ClassError::NotFound("class"))?;
    if session.status == SessionStatus::Cancelled.as_str() {
        return Err(ClassError::SeatRefused(SeatRefusal::Cancelled));
    }
    if session.starts_at <= now {
        return Err(ClassError::SeatRefused(SeatRefusal::Started));
    }
    let class = session_details(txn, session).await?;
    let patient = store::patients::find(txn, patient_id)
        .await?
        .filter(|p| p.erased_at.is_none())
        .ok_or(ClassError::NotFound("patient"))?;
    let limit = settings.booking.max_active_per_patient;
    if store::bookings::count_upcoming_for_patient(txn, patient.id, now).await? >= u64::from(limit)
    {
        return Err(ClassError::LimitReached(limit));
    }
    let seat = write_seat(
        txn,
        &class,
        &patient,
        String::new(),
        "waitlist",
        // The claim released the offer's held place just before, in this transaction.
        Place::Free,
        &token,
        now,
    )
    .await?;
    webhooks::emit_seat(txn, now, EventType::ClassSeatBooked, &seat).await?;
    let details = seat_details(txn, seat).await?;
    let view = seat_email(
        settings,
        &details.seat,
        &details.class,
        &details.patient,
        Some(&token.plain),
    );
    email::seat_changed(txn, settings, state.tz, SeatChange::Confirmed(&view)).await?;
    Ok(SeatBooked {
        details,
        manage_token: token.plain,
    })
}
