//! Booking, cancelling and rescheduling: the transactions behind the public booking API and
//! the staff calendar. The double-booking guard is here and in the database: every write
//! re-reads the practitioner's schedule inside a write transaction (`BEGIN IMMEDIATE` on
//! SQLite, which serialises writers) and asks `availability::check_slot` — the same function
//! that lists slots; on PostgreSQL the exclusion constraint `appointments_no_overlap` refuses
//! whatever slips past a concurrent check (SQLSTATE 23P01).

use chrono::{DateTime, Duration, Utc};
use entity::{appointment, patient, practitioner, service};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    auth::token,
    domain::{
        FieldError,
        availability::{self, OutsideReason, Unavailable},
        booking::{self, BookingStatus, PatientDetails},
        localtime,
        text::{EmailAddress, PersonName, PhoneNumber},
    },
    email::{self, BookingChange, BookingEmail},
    http::api::availability::rules_for,
    state::AppState,
    store,
};

/// A validated online booking request.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub service_id: Uuid,
    pub practitioner_id: Option<Uuid>,
    pub start: DateTime<Utc>,
    pub patient: PatientDetails,
    pub notes: String,
}

/// Why a booking or a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error("the slot is taken")]
    SlotUnavailable,
    #[error("not a bookable slot: {0}")]
    Outside(OutsideReason),
    #[error("the practitioner does not offer this service online")]
    NotOffered,
    #[error("too many upcoming bookings")]
    LimitReached(u32),
    #[error("too late to change")]
    TooLate,
    #[error("the booking is {0}")]
    NotChangeable(&'static str),
    /// The request's Idempotency-Key was already answered: replay that answer.
    #[error("already answered")]
    Replay(Box<entity::idempotency_key::Model>),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Who made a change, for the booking's history.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Patient,
    Staff(Uuid),
}

impl Actor {
    fn name(self) -> &'static str {
        match self {
            Actor::Patient => "patient",
            Actor::Staff(_) => "staff",
        }
    }

    fn staff_id(self) -> Option<Uuid> {
        match self {
            Actor::Patient => None,
            Actor::Staff(id) => Some(id),
        }
    }
}

/// A booking with the names it is shown with.
#[derive(Debug, Clone)]
pub struct BookingDetails {
    pub appointment: appointment::Model,
    pub service: service::Model,
    pub practitioner: practitioner::Model,
    pub patient: patient::Model,
}

/// A new booking and its manage token (shown once).
#[derive(Debug, Clone)]
pub struct Booked {
    pub details: BookingDetails,
    pub manage_token: String,
}

/// The response an idempotent request answered with: status, body and Location.
pub type StoredResponse = (u16, String, Option<String>);

/// An idempotency key to record with the booking, in the same transaction.
pub struct IdempotentResponse<'a> {
    pub key: String,
    pub request_hash: String,
    /// Renders the response to store.
    pub render: &'a (dyn Fn(&Booked) -> StoredResponse + Send + Sync),
}

/// Which of a service's practitioners a booking may go to.
async fn candidates(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    requested: Option<Uuid>,
) -> Result<Vec<Uuid>, BookingError> {
    let offering = store::catalogue::public_practitioner_ids_for(conn, service_id).await?;
    match requested {
        None => Ok(offering),
        Some(pid) if offering.contains(&pid) => Ok(vec![pid]),
        Some(pid) => {
            if store::catalogue::find_practitioner(conn, pid)
                .await?
                .is_some()
            {
                Err(BookingError::NotOffered)
            } else {
                Err(BookingError::Invalid(vec![FieldError::new(
                    "practitioner_id",
                    "no such practitioner",
                )]))
            }
        }
    }
}

/// Decides which candidate gets `start`, reading everything inside `txn`. Among free
/// practitioners, the one with the fewest active appointments that local day wins (ties:
/// lowest id). `except` is the appointment being moved.
async fn choose_practitioner(
    txn: &DatabaseTransaction,
    state: &AppState,
    service: &service::Model,
    candidates: &[Uuid],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<Uuid, BookingError> {
    let tz = state.tz;
    let rules = rules_for(service, &state.settings.policy);
    let query = availability::local_day_query(tz, now, start, rules);
    // The query spans the neighbouring local dates too; the load is counted on the local day.
    let span_start = localtime::instant_at(tz, query.from, 0);
    let span_end = localtime::instant_at(tz, query.to, 24 * 60);
    let day = localtime::local_date(tz, start);
    let (day_start, day_end) = (
        localtime::instant_at(tz, day, 0),
        localtime::instant_at(tz, day, 24 * 60),
    );
    let (schedules, closures) = store::availability::load(
        txn,
        candidates,
        span_start - Duration::days(1),
        span_end + Duration::days(1),
        except,
    )
    .await?;
    let mut best: Option<(usize, Uuid)> = None;
    let mut first_refusal: Option<Unavailable> = None;
    for schedule in &schedules {
        match availability::check_slot(&query, schedule, &closures, start) {
            Ok(()) => {
                let load = schedule
                    .appointments
                    .iter()
                    .filter(|a| a.start < day_end && a.end > day_start)
                    .count();
                let better = match best {
                    None => true,
                    Some((best_load, best_id)) => {
                        (load, schedule.practitioner_id) < (best_load, best_id)
                    }
                };
                if better {
                    best = Some((load, schedule.practitioner_id));
                }
            }
            // "Taken" wins over "outside": the slot exists but someone got it first.
            Err(Unavailable::Taken) => first_refusal = Some(Unavailable::Taken),
            Err(other) => {
                if first_refusal.is_none() {
                    first_refusal = Some(other);
                }
            }
        }
    }
    match (best, first_refusal) {
        (Some((_, id)), _) => Ok(id),
        (None, Some(Unavailable::Taken)) => Err(BookingError::SlotUnavailable),
        (None, Some(Unavailable::Outside(reason))) => Err(BookingError::Outside(reason)),
        (None, None) => Err(BookingError::Outside(OutsideReason::OutsideWorkingHours)),
    }
}

fn blocked(
    service: &service::Model,
    start: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
    let minutes = |m: i32| Duration::minutes(i64::from(m.max(0)));
    let end = start + minutes(service.duration_minutes);
    (
        end,
        start - minutes(service.buffer_before_minutes),
        end + minutes(service.buffer_after_minutes),
    )
}

/// What the emails about a booking say; the manage link only when the token is at hand
/// (at creation, and when the patient acts through the link).
fn email_view(state: &AppState, d: &BookingDetails, manage_token: Option<&str>) -> BookingEmail {
    let public_url = state.settings.server.public_url.trim_end_matches('/');
    BookingEmail {
        appointment_id: d.appointment.id,
        reference: d.appointment.reference.clone(),
        service_name: d.service.name.clone(),
        practitioner_name: d.practitioner.name.clone(),
        practitioner_email: d.practitioner.email.clone(),
        patient_name: d.patient.name.clone(),
        patient_email: d.patient.email.clone(),
        start: d.appointment.starts_at,
        end: d.appointment.ends_at,
        sequence: d.appointment.sequence,
        manage_url: manage_token.map(|t| format!("{public_url}/manage/{t}")),
    }
}

/// Inserts a confirmed appointment with a fresh manage token and its "created" history entry;
/// returns it with the token (shown once).
#[allow(clippy::too_many_arguments)]
async fn insert_confirmed(
    txn: &DatabaseTransaction,
    service: &service::Model,
    practitioner_id: Uuid,
    patient_id: Uuid,
    start: DateTime<Utc>,
    notes: String,
    actor: Actor,
    now: DateTime<Utc>,
    identity: NewIdentity,
) -> Result<(appointment::Model, String), BookingError> {
    let NewIdentity {
        id,
        reference,
        manage_token,
        token_hash,
    } = identity;
    let (end, blocked_from, blocked_until) = blocked(service, start);
    let appointment = store::bookings::insert(
        txn,
        appointment::Model {
            id,
            reference,
            service_id: service.id,
            practitioner_id,
            patient_id,
            status: BookingStatus::Confirmed.as_str().to_string(),
            starts_at: start,
            ends_at: end,
            blocked_from,
            blocked_until,
            source: match actor {
                Actor::Patient => "online",
                Actor::Staff(_) => "staff",
            }
            .to_string(),
            notes,
            manage_token_hash: Some(token_hash),
            cancel_reason: None,
            sequence: 0,
            created_at: now,
            updated_at: now,
        },
    )
    .await
    .map_err(write_error)?;
    store::bookings::record_event(
        txn,
        appointment.id,
        "created",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "start": start, "practitioner_id": practitioner_id }),
        now,
    )
    .await?;
    Ok((appointment, manage_token))
}

/// Maps a failed write: PostgreSQL's overlap refusal is a lost race for the slot.
fn write_error(err: DbErr) -> BookingError {
    if store::is_overlap_violation(&err) {
        BookingError::SlotUnavailable
    } else {
        BookingError::Database(err)
    }
}

/// Books an online slot: accepted if and only if it is free by `availability::check_slot` at
/// this moment, read inside the write transaction.
pub async fn book(
    state: &AppState,
    new: NewBooking,
    idempotency: Option<IdempotentResponse<'_>>,
) -> Result<Booked, BookingError> {
    // On PostgreSQL two concurrent "any practitioner" bookings can choose the same person; the
    // later insert meets the exclusion constraint. A new attempt sees the earlier booking and
    // chooses another free practitioner if there is one.
    let attempts = if new.practitioner_id.is_none() { 3 } else { 1 };
    for _ in 1..attempts {
        match book_once(state, new.clone(), idempotency.as_ref()).await {
            Err(BookingError::SlotUnavailable) => continue,
            other => return counted(other),
        }
    }
    counted(book_once(state, new, idempotency.as_ref()).await)
}

/// Counts a booking attempt's outcome for `/metrics` (a replayed answer is not a new attempt,
/// and a database failure is an error, not a decision).
fn counted(result: Result<Booked, BookingError>) -> Result<Booked, BookingError> {
    use crate::metrics::{BookingOutcome, booking};
    match &result {
        Ok(_) => booking(BookingOutcome::Confirmed),
        Err(BookingError::SlotUnavailable) => booking(BookingOutcome::Conflict),
        Err(BookingError::Replay(_) | BookingError::Database(_)) => {}
        Err(_) => booking(BookingOutcome::Refused),
    }
    result
}

async fn book_once(
    state: &AppState,
    new: NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
) -> Result<Booked, BookingError> {
    let now = Utc::now();
    let db = &state.db;
    let service = store::catalogue::find_public_service(db, new.service_id)
        .await?
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new("service_id", "no such service")])
        })?;
    let candidates = candidates(db, service.id, new.practitioner_id).await?;
    // Everything that does not depend on what the transaction reads is done before the write
    // slot: the new booking's id, reference and token hash, and — when the practitioner is
    // named — its emails, rendered for them.
    let identity = NewIdentity::generate();
    let prepared = match new.practitioner_id {
        Some(pid) => match store::catalogue::find_practitioner(db, pid).await? {
            Some(practitioner) => {
                let view = new_booking_view(state, &service, &practitioner, &new, &identity);
                let emails = email::prepare_booking_changed(
                    &state.settings,
                    state.tz,
                    BookingChange::Confirmed(&view),
                    now,
                )?;
                Some((practitioner, emails))
            }
            None => None,
        },
        None => None,
    };
    state
        .writer
        .write(async |txn| {
            book_in(
                txn,
                state,
                new,
                service,
                &candidates,
                identity,
                prepared,
                idempotency,
                now,
            )
            .await
        })
        .await
        .map_err(|e| match e {
            BookingError::Database(e) => write_error(e),
            other => other,
        })
}

/// A new booking's id, reference and manage token, made before its transaction.
struct NewIdentity {
    id: Uuid,
    reference: String,
    manage_token: String,
    token_hash: String,
}

impl NewIdentity {
    fn generate() -> Self {
        let manage_token = token::generate();
        Self {
            id: Uuid::new_v4(),
            reference: booking::new_reference(),
            token_hash: token::hash(&manage_token),
            manage_token,
        }
    }
}

/// What the emails of a new online booking say (as `email_view` would for the stored one).
fn new_booking_view(
    state: &AppState,
    service: &service::Model,
    practitioner: &practitioner::Model,
    new: &NewBooking,
    identity: &NewIdentity,
) -> BookingEmail {
    let public_url = state.settings.server.public_url.trim_end_matches('/');
    let (end, _, _) = blocked(service, new.start);
    BookingEmail {
        appointment_id: identity.id,
        reference: identity.reference.clone(),
        service_name: service.name.clone(),
        practitioner_name: practitioner.name.clone(),
        practitioner_email: practitioner.email.clone(),
        patient_name: new.patient.name.as_str().to_string(),
        patient_email: Some(new.patient.email.as_str().to_string()),
        start: new.start,
        end,
        sequence: 0,
        manage_url: Some(format!("{public_url}/manage/{}", identity.manage_token)),
    }
}

/// The booking transaction itself: check, claim, insert, emails — run in the write slot.
#[allow(clippy::too_many_arguments)]
async fn book_in(
    txn: &DatabaseTransaction,
    state: &AppState,
    new: NewBooking,
    service: service::Model,
    candidates: &[Uuid],
    identity: NewIdentity,
    prepared: Option<(practitioner::Model, email::PreparedEmails)>,
    idempotency: Option<&IdempotentResponse<'_>>,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    if let Some(idem) = idempotency {
        if let Some(stored) = store::bookings::find_idempotent(txn, &idem.key, now).await? {
            return Err(BookingError::Replay(Box::new(stored)));
        }
        store::bookings::claim_idempotent(txn, &idem.key, &idem.request_hash, now).await?;
    }
    let practitioner_id =
        choose_practitioner(txn, state, &service, candidates, new.start, now, None).await?;
    let patient = store::patients::upsert_by_email(txn, &new.patient, now, false).await?;
    let limit = state.settings.booking.max_active_per_patient;
    if store::bookings::count_upcoming_for_patient(txn, patient.id, now).await? >= u64::from(limit)
    {
        return Err(BookingError::LimitReached(limit));
    }
    store::patients::record_consents(
        txn,
        patient.id,
        true,
        new.patient.marketing_consent,
        "online_booking",
        now,
    )
    .await?;
    let (appointment, manage_token) = insert_confirmed(
        txn,
        &service,
        practitioner_id,
        patient.id,
        new.start,
        new.notes,
        Actor::Patient,
        now,
        identity,
    )
    .await?;
    // The emails rendered before the slot are for the named practitioner; one chosen here
    // (any practitioner) is read and rendered now.
    let (practitioner, emails) = match prepared {
        Some((practitioner, emails)) if practitioner.id == practitioner_id => {
            (practitioner, Some(emails))
        }
        _ => (
            store::catalogue::find_practitioner(txn, practitioner_id)
                .await?
                .ok_or(DbErr::RecordNotFound("practitioner".into()))?,
            None,
        ),
    };
    // Shown back (and emailed) as this request gave them, never the stored record's: the
    // form is public, and the address alone must not reveal anyone's name or phone.
    let shown = patient::Model {
        name: new.patient.name.as_str().to_string(),
        phone: new.patient.phone.as_ref().map(|p| p.as_str().to_string()),
        ..patient
    };
    let booked = Booked {
        details: BookingDetails {
            appointment,
            service,
            practitioner,
            patient: shown,
        },
        manage_token,
    };
    let emails = match emails {
        Some(emails) => emails,
        None => {
            let view = email_view(state, &booked.details, Some(&booked.manage_token));
            email::prepare_booking_changed(
                &state.settings,
                state.tz,
                BookingChange::Confirmed(&view),
                now,
            )?
        }
    };
    emails.write(txn).await?;
    if let Some(idem) = idempotency {
        let (status, body, location) = (idem.render)(&booked);
        store::bookings::complete_idempotent(txn, &idem.key, status, body, location).await?;
    }
    Ok(booked)
}

/// Loads the names a booking is shown with.
pub async fn details(
    conn: &impl ConnectionTrait,
    appointment: appointment::Model,
) -> Result<BookingDetails, DbErr> {
    let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
    let service = store::catalogue::find_service(conn, appointment.service_id)
        .await?
        .ok_or_else(|| missing("service"))?;
    let practitioner = store::catalogue::find_practitioner(conn, appointment.practitioner_id)
        .await?
        .ok_or_else(|| missing("practitioner"))?;
    let patient = store::patients::find(conn, appointment.patient_id)
        .await?
        .ok_or_else(|| missing("patient"))?;
    Ok(BookingDetails {
        appointment,
        service,
        practitioner,
        patient,
    })
}

/// Loads the names for many bookings at once: one query each for services, practitioners and
/// patients, whatever the number of bookings.
pub async fn details_many(
    conn: &impl ConnectionTrait,
    appointments: Vec<appointment::Model>,
) -> Result<Vec<BookingDetails>, DbErr> {
    use std::collections::HashMap;
    let services: HashMap<Uuid, service::Model> = store::catalogue::list_services(conn, false)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let practitioners: HashMap<Uuid, practitioner::Model> =
        store::catalogue::list_practitioners(conn, false)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
    let patient_ids: Vec<Uuid> = appointments.iter().map(|a| a.patient_id).collect();
    let patients: HashMap<Uuid, patient::Model> = store::patients::find_many(conn, &patient_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    appointments
        .into_iter()
        .map(|appointment| {
            let missing = |what: &str| DbErr::RecordNotFound(what.to_string());
            Ok(BookingDetails {
                service: services
                    .get(&appointment.service_id)
                    .cloned()
                    .ok_or_else(|| missing("service"))?,
                practitioner: practitioners
                    .get(&appointment.practitioner_id)
                    .cloned()
                    .ok_or_else(|| missing("practitioner"))?,
                patient: patients
                    .get(&appointment.patient_id)
                    .cloned()
                    .ok_or_else(|| missing("patient"))?,
                appointment,
            })
        })
        .collect()
}

/// The service's notice period for patient changes, in hours.
pub fn notice_hours(state: &AppState, service: &service::Model, reschedule: bool) -> u32 {
    let (own, default) = if reschedule {
        (
            service.reschedule_notice_hours,
            state.settings.policy.reschedule_notice_hours,
        )
    } else {
        (
            service.cancel_notice_hours,
            state.settings.policy.cancel_notice_hours,
        )
    };
    own.and_then(|h| u32::try_from(h).ok()).unwrap_or(default)
}

/// Cancels a booking. Cancelling a cancelled booking changes nothing and succeeds.
/// Patients must be within the notice period; staff may cancel at any time.
pub async fn cancel(
    state: &AppState,
    appointment_id: Uuid,
    actor: Actor,
    reason: Option<String>,
    manage_token: Option<&str>,
) -> Result<BookingDetails, BookingError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let mut appt = store::bookings::find(&txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let status = BookingStatus::parse(&appt.status).unwrap_or(BookingStatus::Cancelled);
    if status == BookingStatus::Cancelled {
        let details = details(&txn, appt).await?;
        txn.commit().await?;
        return Ok(details);
    }
    let service = store::catalogue::find_service(&txn, appt.service_id)
        .await?
        .ok_or(DbErr::RecordNotFound("service".into()))?;
    // Only a booking still ahead of its visit can be cancelled, by anyone; an arrived,
    // completed or no-show booking is history.
    if status != BookingStatus::Confirmed {
        return Err(BookingError::NotChangeable(status.as_str()));
    }
    if matches!(actor, Actor::Patient)
        && !booking::patient_may_change(
            status,
            appt.starts_at,
            notice_hours(state, &service, false),
            now,
        )
    {
        return Err(BookingError::TooLate);
    }
    appt.status = BookingStatus::Cancelled.as_str().to_string();
    appt.cancel_reason = reason.clone();
    // Calendar clients (Outlook especially) want a CANCEL to outrank the last REQUEST.
    appt.sequence += 1;
    appt.updated_at = now;
    let appt = store::bookings::update(&txn, appt).await?;
    store::bookings::record_event(
        &txn,
        appt.id,
        "cancelled",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "reason": reason }),
        now,
    )
    .await?;
    audit_staff(
        &txn,
        actor,
        "cancel",
        appt.id,
        serde_json::json!({ "reason": reason }),
    )
    .await?;
    let details = details(&txn, appt).await?;
    let view = email_view(state, &details, manage_token);
    email::booking_changed(
        &txn,
        &state.settings,
        state.tz,
        BookingChange::Cancelled {
            booking: &view,
            reason: reason.as_deref(),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(details)
}

/// Moves a booking to `start` (optionally another practitioner offering the service). The
/// booking keeps its id and reference; the old time is freed only when the new one is
/// secured, because both happen in one UPDATE inside one transaction.
pub async fn reschedule(
    state: &AppState,
    appointment_id: Uuid,
    actor: Actor,
    start: DateTime<Utc>,
    practitioner_id: Option<Uuid>,
    manage_token: Option<&str>,
) -> Result<BookingDetails, BookingError> {
    let now = Utc::now();
    let db = &state.db;
    let current = store::bookings::find(db, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let service = store::catalogue::find_service(db, current.service_id)
        .await?
        .ok_or(DbErr::RecordNotFound("service".into()))?;
    // Without a new practitioner the booking stays with the same one.
    let requested = practitioner_id.or(Some(current.practitioner_id));
    let candidates = match actor {
        Actor::Patient => candidates(db, service.id, requested).await?,
        Actor::Staff(_) => Vec::new(),
    };
    let txn = state.writer.begin().await?;
    let mut appt = store::bookings::find(&txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let status = BookingStatus::parse(&appt.status).unwrap_or(BookingStatus::Cancelled);
    if status != BookingStatus::Confirmed {
        return Err(BookingError::NotChangeable(status.as_str()));
    }
    if matches!(actor, Actor::Patient)
        && !booking::patient_may_change(
            status,
            appt.starts_at,
            notice_hours(state, &service, true),
            now,
        )
    {
        return Err(BookingError::TooLate);
    }
    let chosen = match actor {
        Actor::Patient => {
            choose_practitioner(
                &txn,
                state,
                &service,
                &candidates,
                start,
                now,
                Some(appt.id),
            )
            .await?
        }
        Actor::Staff(_) => {
            // The practitioner as read inside the transaction, unless another was asked for.
            let pid = practitioner_id.unwrap_or(appt.practitioner_id);
            check_staff_slot(&txn, &service, pid, start, Some(appt.id)).await?;
            pid
        }
    };
    let previous_start = appt.starts_at;
    let (end, blocked_from, blocked_until) = blocked(&service, start);
    appt.practitioner_id = chosen;
    appt.starts_at = start;
    appt.ends_at = end;
    appt.blocked_from = blocked_from;
    appt.blocked_until = blocked_until;
    appt.sequence += 1;
    appt.updated_at = now;
    let appt = store::bookings::update(&txn, appt)
        .await
        .map_err(write_error)?;
    store::bookings::record_event(
        &txn,
        appt.id,
        "rescheduled",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "from": previous_start, "to": start, "practitioner_id": chosen }),
        now,
    )
    .await?;
    audit_staff(
        &txn,
        actor,
        "reschedule",
        appt.id,
        serde_json::json!({ "from": previous_start, "to": start }),
    )
    .await?;
    let details = details(&txn, appt).await?;
    let view = email_view(state, &details, manage_token);
    email::booking_changed(
        &txn,
        &state.settings,
        state.tz,
        BookingChange::Rescheduled {
            booking: &view,
            previous_start,
        },
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(details)
}

/// The booking a manage token opens, if any.
pub async fn find_by_token(
    state: &AppState,
    token_value: &str,
) -> Result<Option<BookingDetails>, DbErr> {
    let Some(appt) =
        store::bookings::find_by_token_hash(&state.db, &token::hash(token_value)).await?
    else {
        return Ok(None);
    };
    details(&state.db, appt).await.map(Some)
}

/// Records a staff action on a booking in the audit log (patients' own actions are in the
/// booking's history only).
async fn audit_staff(
    conn: &impl ConnectionTrait,
    actor: Actor,
    action: &str,
    appointment_id: Uuid,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    match actor {
        Actor::Patient => Ok(()),
        Actor::Staff(id) => {
            store::audit::record(
                conn,
                Some(id),
                action,
                "booking",
                Some(appointment_id),
                detail,
            )
            .await
        }
    }
}

/// Staff may book outside the grid, the working hours, the notice and the horizon, but never
/// over another appointment: the only check is for an overlapping blocked range (and, on
/// PostgreSQL, the exclusion constraint). The practitioner must be active and offer the
/// service.
async fn check_staff_slot(
    txn: &DatabaseTransaction,
    service: &service::Model,
    practitioner_id: Uuid,
    start: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<(), BookingError> {
    let practitioner = store::catalogue::find_practitioner(txn, practitioner_id)
        .await?
        .filter(|p| p.active)
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new(
                "practitioner_id",
                "no such active practitioner",
            )])
        })?;
    let links = store::catalogue::links(txn).await?;
    if !links
        .iter()
        .any(|l| l.practitioner_id == practitioner.id && l.service_id == service.id)
    {
        return Err(BookingError::NotOffered);
    }
    let (_, blocked_from, blocked_until) = blocked(service, start);
    let clashes = store::appointments::blocked_ranges(
        txn,
        &[practitioner_id],
        blocked_from,
        blocked_until,
        except,
    )
    .await?;
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(BookingError::SlotUnavailable)
    }
}

/// A booking taken by staff on the phone or at the desk. The patient's email is optional;
/// without one, no patient email is sent.
#[derive(Debug, Clone)]
pub struct StaffBooking {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub start: DateTime<Utc>,
    pub patient_name: PersonName,
    pub patient_email: Option<EmailAddress>,
    pub patient_phone: Option<PhoneNumber>,
    pub notes: String,
}

/// Books on behalf of a patient (see [`check_staff_slot`] for what staff may override).
pub async fn book_by_staff(
    state: &AppState,
    request: StaffBooking,
    staff_id: Uuid,
) -> Result<Booked, BookingError> {
    let now = Utc::now();
    let actor = Actor::Staff(staff_id);
    let service = store::catalogue::find_service(&state.db, request.service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new(
                "service_id",
                "no such active service",
            )])
        })?;
    let txn = state.writer.begin().await?;
    check_staff_slot(&txn, &service, request.practitioner_id, request.start, None).await?;
    let patient = match &request.patient_email {
        Some(email) => {
            let details = PatientDetails {
                name: request.patient_name.clone(),
                email: email.clone(),
                phone: request.patient_phone.clone(),
                marketing_consent: false,
            };
            store::patients::upsert_by_email(&txn, &details, now, true).await?
        }
        None => {
            store::patients::insert_without_email(
                &txn,
                request.patient_name.as_str(),
                request.patient_phone.as_ref().map(|p| p.as_str()),
                now,
            )
            .await?
        }
    };
    let (appointment, manage_token) = insert_confirmed(
        &txn,
        &service,
        request.practitioner_id,
        patient.id,
        request.start,
        request.notes,
        actor,
        now,
        NewIdentity::generate(),
    )
    .await?;
    audit_staff(
        &txn,
        actor,
        "create",
        appointment.id,
        serde_json::json!({ "start": appointment.starts_at, "practitioner_id": appointment.practitioner_id }),
    )
    .await?;
    let details = details(&txn, appointment).await?;
    let view = email_view(state, &details, Some(&manage_token));
    email::booking_changed(
        &txn,
        &state.settings,
        state.tz,
        BookingChange::Confirmed(&view),
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(Booked {
        details,
        manage_token,
    })
}

/// Records attendance: a confirmed booking may become arrived, completed or no_show; an
/// arrived one completed or no_show. Setting the current status again changes nothing.
pub async fn record_attendance(
    state: &AppState,
    appointment_id: Uuid,
    staff_id: Uuid,
    next: BookingStatus,
) -> Result<BookingDetails, BookingError> {
    use BookingStatus::*;
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let mut appt = store::bookings::find(&txn, appointment_id)
        .await?
        .ok_or(DbErr::RecordNotFound("appointment".into()))?;
    let current = BookingStatus::parse(&appt.status).unwrap_or(Cancelled);
    if current != next {
        let allowed = matches!(
            (current, next),
            (Confirmed, Arrived | Completed | NoShow) | (Arrived, Completed | NoShow)
        );
        if !allowed || !matches!(next, Arrived | Completed | NoShow) {
            return Err(BookingError::NotChangeable(current.as_str()));
        }
        appt.status = next.as_str().to_string();
        appt.updated_at = now;
        appt = store::bookings::update(&txn, appt).await?;
        store::bookings::record_event(
            &txn,
            appt.id,
            next.as_str(),
            "staff",
            Some(staff_id),
            serde_json::json!({ "from": current.as_str() }),
            now,
        )
        .await?;
        audit_staff(
            &txn,
            Actor::Staff(staff_id),
            "attendance",
            appt.id,
            serde_json::json!({ "from": current.as_str(), "to": next.as_str() }),
        )
        .await?;
    }
    let details = details(&txn, appt).await?;
    txn.commit().await?;
    Ok(details)
}
