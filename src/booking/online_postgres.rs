//! The online booking on PostgreSQL. With one candidate practitioner it is decided on slot
//! search's per-instance copy (`online::decide_on_copy`), and the booking is one round trip:
//! the statement checks that the copy's schedule version is still current and the exclusion
//! constraint refuses a taken slot. Otherwise, or when the copy is refused or refuses, the
//! rulebook decides on what the pool reads now, in one round trip (`online::decide`; under
//! READ COMMITTED a transaction's reads see no more than these). Then the emails, the webhook
//! body and the idempotent response are rendered, and every row goes in with one statement
//! (`store::online_booking`). The exclusion constraint refuses an overlap that a concurrent
//! booking slipped in between the reads and the statement, as it did inside a transaction.

use chrono::{DateTime, Utc};
use entity::patient;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::{
    domain::booking,
    email::{self, BookingChange},
    state::AppState,
    store::{self, online_booking},
    webhooks::{self, EventType},
};

use super::{
    Booked, BookingError, Context, IdempotentResponse, ManageToken, NewBooking, email_view,
    online::{self, shown_details},
    place::REFERENCE_ATTEMPTS,
    write_error,
};

pub(super) async fn book_once(
    state: &AppState,
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
) -> Result<Booked, BookingError> {
    let ctx = Context::of(state);
    let db = &state.db;
    let now = Utc::now();
    let inputs =
        store::availability::static_inputs(&state.slot_inputs, db, new.service_id, now).await?;
    if let Some((decided, version)) = inputs
        .as_deref()
        .and_then(|inputs| online::decide_on_copy(ctx, inputs, new, now))
    {
        match write(state, new, idempotency, decided, Some(version), now).await {
            Err(BookingError::Database(e)) if online_booking::is_schedule_changed(&e) => {
                crate::metrics::booking_redecided();
                state.slot_inputs.clear();
            }
            other => return other,
        }
    }
    // The service and practitioners as the copy has them point to the calendars to read;
    // everything decided on is then read fresh, in one round trip.
    let guess = inputs.map(|inputs| (inputs.service.clone(), inputs.practitioners.clone()));
    let decided = online::decide(db, ctx, new, guess, now, false).await?;
    write(state, new, idempotency, decided, None, now).await
}

/// Renders what `decided` books and writes it in one statement; `schedule_version` is the
/// version of the copy it was decided on, if it was.
async fn write(
    state: &AppState,
    new: &NewBooking,
    idempotency: Option<&IdempotentResponse<'_>>,
    decided: online::Decided,
    schedule_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    let ctx = Context::of(state);
    let online::Decided {
        service,
        practitioner,
        ..
    } = decided;
    let practitioner_id = practitioner.id;
    let token = ManageToken::generate();
    let appointment_id = Uuid::new_v4();
    let new_patient_id = Uuid::new_v4();
    let limit = ctx.settings.booking.max_active_per_patient;
    let mut last = None;
    for _ in 0..REFERENCE_ATTEMPTS {
        let reference = booking::new_reference();
        let details = shown_details(
            &service,
            &practitioner,
            Uuid::nil(),
            new,
            &token,
            appointment_id,
            &reference,
            now,
        );
        let view = email_view(ctx.settings, &details, Some(&token.plain));
        let emails = email::prepare_booking_changed(
            ctx.settings,
            ctx.tz,
            BookingChange::Confirmed(&view),
            now,
        )?
        .into_emails();
        let webhook_body = webhooks::event_body(
            now,
            EventType::BookingCreated,
            webhooks::booking_data(&details.appointment),
        );
        let webhook_id = webhooks::new_webhook_id();
        let mut booked = Booked {
            details,
            manage_token: token.plain.clone(),
        };
        let rows = online_booking::OnlineRows {
            schedule_version,
            now,
            idempotency: idempotency.map(|i| {
                let (status, body, location) = (i.render)(&booked);
                online_booking::IdempotencyRow {
                    key: &i.key,
                    request_hash: &i.request_hash,
                    status,
                    body,
                    location,
                }
            }),
            new_patient_id,
            email: new.patient.email.as_str(),
            name: new.patient.name.as_str(),
            phone: new.patient.phone.as_ref().map(|p| p.as_str()),
            marketing_consent: new.patient.marketing_consent,
            limit,
            appointment: &booked.details.appointment,
            event_detail: serde_json::json!({
                "start": booked.details.appointment.starts_at,
                "practitioner_id": practitioner_id,
            }),
            webhook: (
                EventType::BookingCreated.as_str(),
                &webhook_id,
                &webhook_body,
            ),
            emails: &emails,
        };
        match state.online_bookings.insert(&rows).await {
            Ok(stored) => {
                // Shown back as this request gave them, as on SQLite.
                let shown = &booked.details.patient;
                booked.details.patient = patient::Model {
                    name: shown.name.clone(),
                    phone: shown.phone.clone(),
                    ..stored
                };
                booked.details.appointment.patient_id = booked.details.patient.id;
                return Ok(booked);
            }
            Err(e) if online_booking::is_reference_taken(&e) => {
                tracing::warn!("booking reference collision; trying another");
                last = Some(e);
            }
            Err(e) if online_booking::is_limit_reached(&e) => {
                return Err(BookingError::LimitReached(limit));
            }
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(BookingError::Database(last.unwrap_or_else(|| {
        DbErr::Custom("no booking reference".into())
    })))
}
