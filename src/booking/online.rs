//! Online bookings. What needs no decision is settled before the write slot ([`Ahead`]): the
//! manage token and its hash, the appointment's id and reference, and the emails, rendered
//! from the service and practitioner as slot search's per-instance copy has them. The slot
//! then reads in one round trip everything it decides on (the service, who offers it, the
//! patient, and the calendars over the window the copy points to), asks the rulebook, and
//! writes every row in one atomic round trip (`store::batch::insert_atomic`). What the fresh
//! reads disagree with is done again inside the slot: calendars for other practitioners or
//! another window are read again, and emails rendered from a renamed or re-timed service,
//! another practitioner or a reference taken meanwhile are rendered again, so what is sent is
//! always what was booked. PostgreSQL, which has no single writer, books in one statement
//! instead (`online_postgres`).

use chrono::{DateTime, Utc};
use entity::{patient, practitioner, service};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryTrait};
use uuid::Uuid;

use crate::{
    domain::{FieldError, availability, booking, rulebook::Overrides},
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
    let ahead = Ahead::prepare(&state.slot_inputs, &state.db, ctx, new, Utc::now()).await?;
    // Without an idempotency key to claim, the booking's only write is one atomic batch, so
    // it needs no savepoint of its own.
    let txn = match idempotency {
        None => state.writer.begin_bare().await?,
        Some(_) => state.writer.begin().await?,
    };
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
    /// The service and the practitioners offering it, as read before the slot: from them the
    /// slot knows which calendars over which window it will decide on, and reads those with
    /// everything else in one round trip (then checks they are still the ones).
    read: Option<(service::Model, Vec<practitioner::Model>)>,
}

struct Rendered {
    view: BookingEmail,
    practitioner: practitioner::Model,
    emails: PreparedEmails,
}

impl Ahead {
    /// Chooses the ids, the reference and the token, and renders the emails from the
    /// service and practitioner as the slot-search copy in `cache` has them (read through
    /// `conn`, the pool, outside the write slot, when missing). What it finds decides nothing:
    /// the slot reads again.
    pub async fn prepare(
        cache: &store::availability::StaticCache,
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
            read: None,
        };
        let Some(inputs) =
            store::availability::static_inputs(cache, conn, new.service_id, now).await?
        else {
            return Ok(ahead);
        };
        let (service, offering) = (inputs.service.clone(), inputs.practitioners.clone());
        let practitioner = match new.practitioner_id {
            Some(id) => offering.iter().find(|p| p.id == id).cloned(),
            None => match offering.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
        };
        ahead.read = Some((service.clone(), offering));
        let Some(practitioner) = practitioner else {
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

/// What an online booking decided: the service and the practitioner chosen, as read in one
/// go, and the patient holding the request's address if asked for.
pub(super) struct Decided {
    pub service: service::Model,
    pub practitioner: practitioner::Model,
    pub patient: Option<patient::Model>,
}

/// PostgreSQL: the rulebook's answer from slot search's copy alone, for a booking with one
/// candidate practitioner (the one named, or the only one offering the service), with the
/// schedule version the copy was read at. The calendar is left out: the exclusion constraint
/// refuses a taken slot as the rulebook would ("taken" is its last check), and the statement
/// refuses the copy if the schedule changed since. `None` (decide on fresh reads instead) when
/// there is a choice of practitioner, the copy has no version, or the copy refuses: a refusal
/// is only ever given on fresh reads.
pub(super) fn decide_on_copy(
    ctx: Context<'_>,
    inputs: &store::availability::StaticInputs,
    new: &NewBooking,
    now: DateTime<Utc>,
) -> Option<(Decided, i64)> {
    let version = inputs.schedule_version?;
    if inputs.service.capacity > 1 {
        return None;
    }
    let practitioner = match (new.practitioner_id, inputs.practitioners.as_slice()) {
        (Some(id), offering) => offering.iter().find(|p| p.id == id)?,
        (None, [only]) => only,
        (None, _) => return None,
    };
    let schedule = availability::PractitionerSchedule {
        practitioner_id: practitioner.id,
        week: inputs
            .weeks
            .get(&practitioner.id)
            .cloned()
            .unwrap_or_default(),
        appointments: Vec::new(),
        time_off: inputs
            .time_off
            .get(&practitioner.id)
            .cloned()
            .unwrap_or_default(),
    };
    placement::decide(
        ctx,
        &inputs.service,
        &[schedule],
        &inputs.closures,
        new.start,
        now,
        Overrides::NONE,
    )
    .ok()?;
    let decided = Decided {
        service: inputs.service.clone(),
        practitioner: practitioner.clone(),
        patient: None,
    };
    Some((decided, version))
}

/// Reads what an online booking decides on through `conn` in one round trip and asks the
/// rulebook: the service, who offers it, (with `with_patient`) the patient, and the calendars
/// that `guess` (the service and practitioners as read earlier, from slot search's copy) points
/// to, which practitioners over which window. The calendars are used only if they are exactly
/// what the fresh service and practitioners call for; otherwise they are read again.
pub(super) async fn decide(
    conn: &impl ConnectionTrait,
    ctx: Context<'_>,
    new: &NewBooking,
    guess: Option<(service::Model, Vec<practitioner::Model>)>,
    now: DateTime<Utc>,
    with_patient: bool,
) -> Result<Decided, BookingError> {
    let guess = guess.and_then(|(service, offering)| {
        let offering: Vec<Uuid> = offering.iter().map(|p| p.id).collect();
        let candidates = match new.practitioner_id {
            None => offering,
            Some(id) if offering.contains(&id) => vec![id],
            Some(_) => return None,
        };
        let window = placement::read_window(ctx, &service, candidates.len(), new.start, now);
        Some((candidates, window))
    });
    let mut selects = store::catalogue::public_service_queries(new.service_id);
    let fixed = selects.len() + usize::from(with_patient);
    if with_patient {
        selects
            .push(store::patients::by_email_locked_query(new.patient.email.as_str()).into_query());
    }
    if let Some((candidates, (from, until))) = &guess {
        selects.extend(store::availability::queries(
            candidates, *from, *until, None,
        ));
    }
    let mut rows = store::batch::select_all(conn, selects).await?;
    let calendars = rows.split_off(rows.len().min(fixed));
    let patient = if with_patient {
        rows.pop().unwrap_or_default().first::<patient::Model>()?
    } else {
        None
    };
    let (service, offering) = store::catalogue::public_service_from_rows(rows)?;
    let service = service.ok_or_else(|| {
        BookingError::Invalid(vec![FieldError::new("service_id", "no such service")])
    })?;
    if service.capacity > 1 {
        return Err(BookingError::ClassService);
    }
    let offering_ids = offering.iter().map(|p| p.id).collect();
    let candidates = placement::candidates_among(conn, offering_ids, new.practitioner_id).await?;
    let window = placement::read_window(ctx, &service, candidates.len(), new.start, now);
    let (schedules, closures) = match guess {
        Some(guessed) if guessed == (candidates.clone(), window) => {
            store::availability::assemble(&candidates, calendars)?
        }
        _ => store::availability::load(conn, &candidates, window.0, window.1, None).await?,
    };
    let (practitioner_id, _) = placement::decide(
        ctx,
        &service,
        &schedules,
        &closures,
        new.start,
        now,
        Overrides::NONE,
    )?;
    let practitioner = offering
        .into_iter()
        .find(|p| p.id == practitioner_id)
        .ok_or(DbErr::RecordNotFound("practitioner".into()))?;
    Ok(Decided {
        service,
        practitioner,
        patient,
    })
}

/// The online booking's write: everything it decides on (the service, who offers it, what
/// overlaps the slot, the patient's other bookings, the idempotency key) is read inside `txn`.
/// Without an idempotency key its only write is one `store::batch::insert_atomic` call, so it
/// may run in a bare write slot (`Writer::begin_bare`).
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
        read,
    } = ahead;
    if let Some(idem) = idempotency {
        if let Some(stored) = store::bookings::find_idempotent(txn, &idem.key, now).await? {
            return Err(BookingError::Replay(Box::new(stored)));
        }
        store::bookings::claim_idempotent(txn, &idem.key, &idem.request_hash, now).await?;
    }
    let Decided {
        service,
        practitioner,
        patient: found,
    } = decide(txn, ctx, new, read, now, true).await?;
    // A new patient's row goes in with the appointment. Only on SQLite: its single writer
    // lets no other insert in between; PostgreSQL settles two first bookings racing for one
    // address in `for_public_booking`.
    let (patient, created, patient_insert) = match found {
        Some(found) => (found, false, None),
        None if txn.get_database_backend() == DbBackend::Sqlite => {
            let patient = store::patients::new_from(
                new.patient.email.as_str(),
                new.patient.name.as_str(),
                new.patient.phone.as_ref().map(|p| p.as_str()),
                now,
            );
            let insert = store::patients::insert_statement(patient.clone());
            (patient, true, Some(insert))
        }
        None => {
            let (patient, created) = patients::for_public_booking(txn, &new.patient, now).await?;
            (patient, created, None)
        }
    };
    let limit = ctx.settings.booking.max_active_per_patient;
    // A patient created just now has no other bookings to count.
    if !created
        && store::bookings::count_upcoming_for_patient(txn, patient.id, now).await?
            >= u64::from(limit)
    {
        return Err(BookingError::LimitReached(limit));
    }
    // The emails rendered ahead are kept only if they were rendered from exactly the
    // practitioner read in the slot (slot search's copy may be seconds old).
    let mut rendered = rendered
        .filter(|r| r.practitioner == practitioner)
        .map(|r| (r.view, r.emails));
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
    let subscribed = subscribers.of(txn, EventType::BookingCreated).await?;
    // Every row in one atomic round trip: the patient if new, the appointment, its consents,
    // history, webhook deliveries and emails. A reference taken meanwhile undoes the batch;
    // another is chosen, the emails are rendered again, and the batch goes in again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let view = email_view(ctx.settings, &details, Some(&token.plain));
        let emails = match rendered.take() {
            Some((rendered_view, emails)) if rendered_view == view => emails,
            _ => email::prepare_booking_changed(
                ctx.settings,
                ctx.tz,
                BookingChange::Confirmed(&view),
                now,
            )?,
        };
        let appointment = &details.appointment;
        let mut writes: Vec<_> = patient_insert.iter().cloned().collect();
        writes.push(store::bookings::insert_statement(appointment.clone()));
        writes.push(store::patients::consents_insert(
            details.patient.id,
            true,
            new.patient.marketing_consent,
            "online_booking",
            now,
        ));
        writes.push(store::bookings::event_insert(
            appointment.id,
            "created",
            Actor::Patient.name(),
            None,
            serde_json::json!({
                "start": appointment.starts_at,
                "practitioner_id": appointment.practitioner_id,
            }),
            now,
        ));
        writes.extend(webhooks::delivery_inserts(
            &subscribed,
            now,
            EventType::BookingCreated,
            webhooks::booking_data(appointment),
        )?);
        writes.extend(emails.insert_for_new_booking());
        match store::batch::insert_atomic(txn, &writes).await {
            Ok(()) => break,
            Err(err)
                if attempts < place::REFERENCE_ATTEMPTS
                    && store::is_unique_violation(&err)
                    && store::bookings::reference_taken(txn, &appointment.reference).await? =>
            {
                tracing::warn!("booking reference collision; trying another");
                details.appointment.reference = booking::new_reference();
            }
            Err(err) => return Err(write_error(err)),
        }
    }
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
