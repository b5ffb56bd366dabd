//! New bookings by staff (`book_by_staff`), and what every new booking shares: the confirmed
//! appointment, its reference and its "created" history entry (`online` books through these
//! too). Each prepares its token before the transaction and then runs one `write_*` function
//! inside it.

use chrono::{DateTime, Utc};
use entity::{appointment, service};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        booking::{self, BookingStatus},
        rulebook::{Allowed, Overrides, Rule},
    },
    email::{self, BookingChange},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{
    Actor, Booked, BookingDetails, BookingError, Context, ManageToken, StaffBooking, audit_staff,
    counted, email_view, patients, placement, write_error,
};

/// How many fresh references a booking tries before giving up (a collision of 40 random bits
/// is already rare; two in a row would be a broken generator).
pub(super) const REFERENCE_ATTEMPTS: usize = 5;

/// Inserts `model` with a reference from `new_reference`, trying a fresh one when the
/// reference is already taken. On PostgreSQL each attempt runs in a savepoint, so a refused
/// insert leaves the transaction usable; SQLite undoes a refused statement by itself, so it
/// needs none.
pub async fn insert_with_fresh_reference(
    txn: &DatabaseTransaction,
    mut model: appointment::Model,
    mut new_reference: impl FnMut() -> String,
) -> Result<appointment::Model, DbErr> {
    let mut last = None;
    let savepoints = txn.get_database_backend() != DbBackend::Sqlite;
    for _ in 0..REFERENCE_ATTEMPTS {
        model.reference = new_reference();
        if !savepoints {
            match store::bookings::insert(txn, model.clone()).await {
                Err(err) if store::is_unique_violation(&err) => {
                    tracing::warn!("booking reference collision; trying another");
                    last = Some(err);
                    continue;
                }
                other => return other,
            }
        }
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

/// A confirmed appointment of `service` at `start`, not yet inserted: a fresh id, and the
/// reference left for the insert to choose.
#[allow(clippy::too_many_arguments)]
pub(super) fn confirmed_model(
    service: &service::Model,
    practitioner_id: Uuid,
    patient_id: Uuid,
    start: DateTime<Utc>,
    notes: String,
    actor: Actor,
    token: &ManageToken,
    now: DateTime<Utc>,
    series_id: Option<Uuid>,
) -> appointment::Model {
    let (end, blocked_from, blocked_until) = placement::blocked(service, start);
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
    }
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
    let model = confirmed_model(
        service,
        practitioner_id,
        patient_id,
        start,
        notes,
        actor,
        token,
        now,
        series_id,
    );
    insert_model(txn, model, None, actor, now).await
}

/// Inserts `model` (with `reference` if it is still free, else a fresh one) and its "created"
/// history entry.
pub(super) async fn insert_model(
    txn: &DatabaseTransaction,
    model: appointment::Model,
    mut reference: Option<String>,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<appointment::Model, BookingError> {
    let appointment = insert_with_fresh_reference(txn, model, || {
        reference.take().unwrap_or_else(booking::new_reference)
    })
    .await
    .map_err(write_error)?;
    store::bookings::record_event(
        txn,
        appointment.id,
        "created",
        actor.name(),
        actor.staff_id(),
        serde_json::json!({ "start": appointment.starts_at, "practitioner_id": appointment.practitioner_id }),
        now,
    )
    .await?;
    Ok(appointment)
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
    let booked = match write_staff_booking(
        &txn,
        Context::of(state),
        &request,
        staff_id,
        token,
        Utc::now(),
    )
    .await
    {
        Ok(booked) => booked,
        Err(e) => return counted(Err(e)),
    };
    counted(txn.commit().await.map_err(write_error).map(|()| booked))
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

/// A one-to-one place a waitlist offer held, claimed by the patient it was offered to.
#[derive(Debug, Clone)]
pub struct ClaimedSlot {
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub start: DateTime<Utc>,
    pub patient_id: Uuid,
}

/// The claim's write: placed by the rulebook like an online booking but without the
/// minimum-notice rule (the clinic made the offer), with the patient's booking limit, the
/// webhook and the emails of any booking. The caller closes the offer (and so its hold) in
/// `txn` first, so the held time reads as free to this claim and to nobody else.
pub async fn write_claimed_slot(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    claim: &ClaimedSlot,
    token: ManageToken,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    let service = store::catalogue::find_public_service(txn, claim.service_id)
        .await?
        .ok_or(BookingError::ServiceUnavailable)?;
    let candidates =
        placement::online_candidates(txn, service.id, Some(claim.practitioner_id)).await?;
    let (practitioner_id, _) = placement::choose(
        txn,
        ctx,
        &service,
        &candidates,
        claim.start,
        now,
        None,
        Overrides::NONE.with(Rule::Notice),
    )
    .await?;
    let patient = store::patients::find(txn, claim.patient_id)
        .await?
        .filter(|p| p.erased_at.is_none())
        .ok_or(DbErr::RecordNotFound("patient".into()))?;
    let limit = ctx.settings.booking.max_active_per_patient;
    if store::bookings::count_upcoming_for_patient(txn, patient.id, now).await? >= u64::from(limit)
    {
        return Err(BookingError::LimitReached(limit));
    }
    let appointment = insert_confirmed(
        txn,
        &service,
        practitioner_id,
        patient.id,
        claim.start,
        String::new(),
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
    let booked = Booked {
        details: BookingDetails {
            appointment,
            service,
            practitioner,
            patient,
        },
        manage_token: token.plain,
    };
    let view = email_view(ctx.settings, &booked.details, Some(&booked.manage_token));
    email::booking_changed(txn, ctx.settings, ctx.tz, BookingChange::Confirmed(&view)).await?;
    Ok(booked)
}
