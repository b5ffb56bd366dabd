//! New bookings: online (`book`) and by staff (`book_by_staff`). Each prepares its token
//! before the transaction and then runs one `write_*` function inside it.

use chrono::{DateTime, Utc};
use entity::{appointment, patient, service};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        booking::{self, BookingStatus},
        rulebook::{Allowed, Overrides},
    },
    email::{self, BookingChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    Actor, Booked, BookingDetails, BookingError, Context, IdempotentResponse, ManageToken,
    NewBooking, StaffBooking, audit_staff, email_view, patients, placement, write_error,
};

/// How many fresh references a booking tries before giving up (a collision of 40 random bits
/// is already rare; two in a row would be a broken generator).
const REFERENCE_ATTEMPTS: usize = 5;

/// Inserts `model` with a reference from `new_reference`, trying a fresh one when the
/// reference is already taken. Each attempt runs in a savepoint, so a refused insert leaves
/// the transaction usable on PostgreSQL too.
pub async fn insert_with_fresh_reference(
    txn: &DatabaseTransaction,
    mut model: appointment::Model,
    mut new_reference: impl FnMut() -> String,
) -> Result<appointment::Model, DbErr> {
    let mut last = None;
    for _ in 0..REFERENCE_ATTEMPTS {
        model.reference = new_reference();
        let attempt = txn.begin().await?;
        match store::bookings::insert(&attempt, model.clone()).await {
            Ok(row) => {
                attempt.commit().await?;
                return Ok(row);
            }
            Err(err) if store::is_unique_violation(&err) => {
                attempt.rollback().await?;
                tracing::warn!("booking reference collision; trying another");
                last = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| DbErr::Custom("no booking reference".into())))
}

/// Inserts a confirmed appointment and its "created" history entry.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_confirmed(
    txn: &DatabaseTransaction,
    service: &service::Model,
    practitioner_id: Uuid,
    patient_id: Uuid,
    start: DateTime<Utc>,
    notes: String,
    actor: Actor,
    token: &ManageToken,
    now: DateTime<Utc>,
    series_id: Option<Uuid>,
) -> Result<appointment::Model, BookingError> {
    let (end, blocked_from, blocked_until) = placement::blocked(service, start);
    let appointment = insert_with_fresh_reference(
        txn,
        appointment::Model {
            id: Uuid::new_v4(),
            reference: String::new(),
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
            manage_token_hash: Some(token.hash.clone()),
            cancel_reason: None,
            sequence: 0,
            created_at: now,
            updated_at: now,
            series_id,
            series_start: series_id.map(|_| start),
        },
        booking::new_reference,
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
    Ok(appointment)
}

/// Books an online slot: accepted if and only if the rulebook, without overrides, allows it
/// on what the write transaction reads.
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
        match book_once(state, &new, idempotency.as_ref()).await {
            Err(BookingError::SlotUnavailable) => continue,
            other => return counted(other),
        }
    }
    counted(book_once(state, &new, idempotency.as_ref()).await)
}

/// Counts an online booking attempt's outcome for `/metrics` (a replayed answer is not a new
/// attempt, and a database failure is an error, not a decision).
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
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
) -> Result<Booked, BookingError> {
    let token = ManageToken::generate();
    let txn = state.writer.begin().await?;
    let booked = write_online(
        &txn,
        Context::of(state),
        new,
        idempotency,
        token,
        Utc::now(),
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(booked)
}

/// The online booking's write: everything it decides on (the service, who offers it, the
/// calendar, the patient's other bookings, the idempotency key) is read inside `txn`.
pub async fn write_online(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
    token: ManageToken,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    if let Some(idem) = idempotency {
        if let Some(stored) = store::bookings::find_idempotent(txn, &idem.key, now).await? {
            return Err(BookingError::Replay(Box::new(stored)));
        }
        store::bookings::claim_idempotent(txn, &idem.key, &idem.request_hash, now).await?;
    }
    let service = store::catalogue::find_public_service(txn, new.service_id)
        .await?
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new("service_id", "no such service")])
        })?;
    if service.capacity > 1 {
        return Err(BookingError::ClassService);
    }
    let candidates = placement::online_candidates(txn, service.id, new.practitioner_id).await?;
    let (practitioner_id, _) = placement::choose(
        txn,
        ctx,
        &service,
        &candidates,
        new.start,
        now,
        None,
        Overrides::NONE,
    )
    .await?;
    let patient = patients::for_public_booking(txn, &new.patient, now).await?;
    let limit = ctx.settings.booking.max_active_per_patient;
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
    let appointment = insert_confirmed(
        txn,
        &service,
        practitioner_id,
        patient.id,
        new.start,
        new.notes.clone(),
        Actor::Patient,
        &token,
        now,
        None,
    )
    .await?;
    webhooks::emit_booking(txn, now, EventType::BookingCreated, &appointment).await?;
    let practitioner = store::catalogue::find_practitioner(txn, practitioner_id)
        .await?
        .ok_or(DbErr::RecordNotFound("practitioner".into()))?;
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
        manage_token: token.plain,
    };
    let view = email_view(ctx.settings, &booked.details, Some(&booked.manage_token));
    email::booking_changed(txn, ctx.settings, ctx.tz, BookingChange::Confirmed(&view)).await?;
    if let Some(idem) = idempotency {
        let (status, body, location) = (idem.render)(&booked);
        store::bookings::complete_idempotent(txn, &idem.key, status, body, location).await?;
    }
    Ok(booked)
}

/// Books on behalf of a patient. Staff set aside grid, hours, notice and horizon; time off
/// and closures only as the request lists them (audited); never another appointment.
pub async fn book_by_staff(
    state: &AppState,
    request: StaffBooking,
    staff_id: Uuid,
) -> Result<Booked, BookingError> {
    let token = ManageToken::generate();
    let txn = state.writer.begin().await?;
    let booked = write_staff_booking(
        &txn,
        Context::of(state),
        &request,
        staff_id,
        token,
        Utc::now(),
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(booked)
}

/// The staff booking's write: the service, the practitioner and the calendar are read inside
/// `txn`.
pub async fn write_staff_booking(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    request: &StaffBooking,
    staff_id: Uuid,
    token: ManageToken,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    let actor = Actor::Staff(staff_id);
    let service = store::catalogue::find_service(txn, request.service_id)
        .await?
        .filter(|s| s.active)
        .ok_or_else(|| {
            BookingError::Invalid(vec![FieldError::new(
                "service_id",
                "no such active service",
            )])
        })?;
    if service.capacity > 1 {
        return Err(BookingError::ClassService);
    }
    placement::staff_candidate(txn, &service, request.practitioner_id).await?;
    let overrides = Overrides::staff(request.overrides.iter().copied());
    let (practitioner_id, allowed) = placement::choose(
        txn,
        ctx,
        &service,
        &[request.practitioner_id],
        request.start,
        now,
        None,
        overrides,
    )
    .await?;
    let patient = patients::for_staff_booking(txn, request, now).await?;
    let appointment = insert_confirmed(
        txn,
        &service,
        practitioner_id,
        patient.id,
        request.start,
        request.notes.clone(),
        actor,
        &token,
        now,
        None,
    )
    .await?;
    webhooks::emit_booking(txn, now, EventType::BookingCreated, &appointment).await?;
    audit_staff(
        txn,
        actor,
        "create",
        appointment.id,
        placement_audit(&appointment, allowed),
    )
    .await?;
    let details = super::details(txn, appointment).await?;
    let view = email_view(ctx.settings, &details, Some(&token.plain));
    email::booking_changed(txn, ctx.settings, ctx.tz, BookingChange::Confirmed(&view)).await?;
    Ok(Booked {
        details,
        manage_token: token.plain,
    })
}

/// The audit detail of a staff placement: where it went and which listed rules it set aside.
pub(super) fn placement_audit(
    appointment: &appointment::Model,
    allowed: Allowed,
) -> serde_json::Value {
    serde_json::json!({
        "start": appointment.starts_at,
        "practitioner_id": appointment.practitioner_id,
        "overrides": allowed.overridden.listed_names(),
    })
}
