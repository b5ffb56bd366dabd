//! Online bookings. What needs no decision is settled before the write slot ([`Ahead`]): the
//! manage token and its hash, the appointment's id and reference, and the emails, rendered
//! from the service and practitioner as read just before. The slot then reads only what it
//! decides on (the service, who offers it, what overlaps the slot, the patient), asks the
//! rulebook, and writes rows: the patient if new, the appointment, then everything else in one
//! round trip (`store::batch`). Emails rendered from something the slot no longer agrees with (a
//! renamed or re-timed service, another practitioner chosen, a reference collision) are
//! rendered again inside it, so what is sent is always what was booked. The practitioner's
//! name and address are not decided on: they are shown as read just before the slot. PostgreSQL, which has no single
//! writer, books in one statement instead (`online_postgres`).

use chrono::{DateTime, Utc};
use entity::{patient, practitioner};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{
    domain::{FieldError, booking, rulebook::Overrides},
    email::{self, BookingChange, BookingEmail, PreparedEmails},
    state::AppState,
    store,
    webhooks::{self, EventType, subscribers::Subscribers},
};

use super::{
    Actor, Booked, BookingDetails, BookingError, Context, IdempotentResponse, ManageToken,
    NewBooking, counted, email_view, patients, place, placement, write_error,
};

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

async fn book_once(
    state: &AppState,
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
) -> Result<Booked, BookingError> {
    if !state.writer.is_queued() {
        return super::online_postgres::book_once(state, new, idempotency).await;
    }
    let ctx = Context::of(state);
    let ahead = Ahead::prepare(&state.db, ctx, new, Utc::now()).await?;
    let txn = state.writer.begin().await?;
    let booked = write_online(
        &txn,
        ctx,
        &state.webhook_subscribers,
        new,
        idempotency,
        ahead,
    )
    .await?;
    txn.commit().await.map_err(write_error)?;
    Ok(booked)
}

/// What an online booking settles before it takes the write slot.
pub struct Ahead {
    pub token: ManageToken,
    pub appointment_id: Uuid,
    /// Tried first; the insert chooses another if it is taken.
    pub reference: String,
    pub now: DateTime<Utc>,
    /// The emails, rendered for the practitioner the request names (or the only one offering
    /// the service), with the view and the practitioner they were rendered from; none when
    /// the slot has a choice to make or the reads found nothing to render.
    rendered: Option<Rendered>,
}

struct Rendered {
    view: BookingEmail,
    practitioner: practitioner::Model,
    emails: PreparedEmails,
}

impl Ahead {
    /// Chooses the ids, the reference and the token, and renders the emails from the
    /// service and practitioner as `conn` (the pool, outside the write slot) reads them. What
    /// these reads find decides nothing: the slot reads again.
    pub async fn prepare(
        conn: &impl ConnectionTrait,
        ctx: Context<'_>,
        new: &NewBooking,
        now: DateTime<Utc>,
    ) -> Result<Self, DbErr> {
        let mut ahead = Self {
            token: ManageToken::generate(),
            appointment_id: Uuid::new_v4(),
            reference: booking::new_reference(),
            now,
            rendered: None,
        };
        let Some(service) = store::catalogue::find_public_service(conn, new.service_id).await?
        else {
            return Ok(ahead);
        };
        let practitioner_id = match new.practitioner_id {
            Some(id) => id,
            None => match store::catalogue::public_practitioner_ids_for(conn, service.id)
                .await?
                .as_slice()
            {
                [only] => *only,
                _ => return Ok(ahead),
            },
        };
        let Some(practitioner) = store::catalogue::find_practitioner(conn, practitioner_id).await?
        else {
            return Ok(ahead);
        };
        let details = shown_details(
            &service,
            &practitioner,
            Uuid::nil(),
            new,
            &ahead.token,
            ahead.appointment_id,
            &ahead.reference,
            now,
        );
        let view = email_view(ctx.settings, &details, Some(&ahead.token.plain));
        let emails = email::prepare_booking_changed(
            ctx.settings,
            ctx.tz,
            BookingChange::Confirmed(&view),
            now,
        )?;
        ahead.rendered = Some(Rendered {
            view,
            practitioner,
            emails,
        });
        Ok(ahead)
    }
}

/// The booking as it will be shown and emailed: the appointment this request creates, and the
/// patient's name, address and phone as the request gave them (the form is public: the
/// address alone must not reveal a stored record's name or phone).
#[allow(clippy::too_many_arguments)]
pub(super) fn shown_details(
    service: &entity::service::Model,
    practitioner: &practitioner::Model,
    patient_id: Uuid,
    new: &NewBooking,
    token: &ManageToken,
    appointment_id: Uuid,
    reference: &str,
    now: DateTime<Utc>,
) -> BookingDetails {
    let mut appointment = place::confirmed_model(
        service,
        practitioner.id,
        patient_id,
        new.start,
        new.notes.clone(),
        Actor::Patient,
        token,
        now,
        None,
    );
    appointment.id = appointment_id;
    appointment.reference = reference.to_string();
    BookingDetails {
        appointment,
        service: service.clone(),
        practitioner: practitioner.clone(),
        patient: patient::Model {
            id: patient_id,
            name: new.patient.name.as_str().to_string(),
            email: Some(new.patient.email.as_str().to_string()),
            phone: new.patient.phone.as_ref().map(|p| p.as_str().to_string()),
            created_at: now,
            updated_at: now,
            erased_at: None,
        },
    }
}

/// The online booking's write: everything it decides on (the service, who offers it, what
/// overlaps the slot, the patient's other bookings, the idempotency key) is read inside `txn`.
pub async fn write_online(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    subscribers: &Subscribers,
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
    ahead: Ahead,
) -> Result<Booked, BookingError> {
    let Ahead {
        token,
        appointment_id,
        reference,
        now,
        rendered,
    } = ahead;
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
    let (patient, created) = patients::for_public_booking(txn, &new.patient, now).await?;
    let limit = ctx.settings.booking.max_active_per_patient;
    // A patient created just now has no other bookings to count.
    if !created
        && store::bookings::count_upcoming_for_patient(txn, patient.id, now).await?
            >= u64::from(limit)
    {
        return Err(BookingError::LimitReached(limit));
    }
    let (practitioner, rendered) = match rendered {
        Some(r) if r.practitioner.id == practitioner_id => {
            (r.practitioner, Some((r.view, r.emails)))
        }
        _ => (
            store::catalogue::find_practitioner(txn, practitioner_id)
                .await?
                .ok_or(DbErr::RecordNotFound("practitioner".into()))?,
            None,
        ),
    };
    let mut details = shown_details(
        &service,
        &practitioner,
        patient.id,
        new,
        &token,
        appointment_id,
        &reference,
        now,
    );
    details.patient = patient::Model {
        name: details.patient.name,
        phone: details.patient.phone,
        ..patient
    };
    details.appointment = place::insert_with_fresh_reference(txn, details.appointment, {
        let mut first = Some(reference);
        move || first.take().unwrap_or_else(booking::new_reference)
    })
    .await
    .map_err(write_error)?;
    let view = email_view(ctx.settings, &details, Some(&token.plain));
    let emails = match rendered {
        Some((rendered_view, emails)) if rendered_view == view => emails,
        _ => email::prepare_booking_changed(
            ctx.settings,
            ctx.tz,
            BookingChange::Confirmed(&view),
            now,
        )?,
    };
    // The rest of the rows in one round trip: consents, history, webhook deliveries, emails.
    let appointment = &details.appointment;
    let mut writes = vec![
        store::patients::consents_insert(
            details.patient.id,
            true,
            new.patient.marketing_consent,
            "online_booking",
            now,
        ),
        store::bookings::event_insert(
            appointment.id,
            "created",
            Actor::Patient.name(),
            None,
            serde_json::json!({
                "start": appointment.starts_at,
                "practitioner_id": appointment.practitioner_id,
            }),
            now,
        ),
    ];
    let subscribed = subscribers.of(txn, EventType::BookingCreated).await?;
    writes.extend(webhooks::delivery_inserts(
        &subscribed,
        now,
        EventType::BookingCreated,
        webhooks::booking_data(appointment),
    )?);
    writes.extend(emails.insert_for_new_booking());
    store::batch::insert_all(txn, &writes).await?;
    let booked = Booked {
        details,
        manage_token: token.plain,
    };
    if let Some(idem) = idempotency {
        let (status, body, location) = (idem.render)(&booked);
        store::bookings::complete_idempotent(txn, &idem.key, status, body, location).await?;
    }
    Ok(booked)
}
