//! The outbox worker: claims due rows, sends each one without holding a transaction or a row
//! lock, and records the outcome. `run_once_at` is one step at a given "now" (tests drive the
//! clock through it); `run` repeats `run_once` every `email.outbox.poll_interval_ms` until
//! shutdown.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{appointment, outbox_message, waitlist_offer};
use sea_orm::EntityTrait;
use tokio::{sync::watch, time::Instant};

use crate::state::AppState;

use super::{EmailKind, outbox, transport::redact};

/// Rows claimed per step.
pub const BATCH: u64 = 25;

/// How long a claimed row stays reserved for this worker: room for two deliveries that run
/// into the SMTP timeout. The worker extends the lease of the rows it still holds whenever
/// less than one message's processing time is left, so another worker picks a row up only
/// after a crash, and then within minutes.
pub fn lease(state: &AppState) -> Duration {
    state.mailer.max_delivery_time() * 2 + Duration::from_secs(60)
}

/// The longest processing of one message may take: the reminder check, the delivery, and
/// recording the outcome (retried past a busy database).
fn per_message(state: &AppState) -> Duration {
    state.mailer.max_delivery_time() + Duration::from_secs(30)
}

/// "Now" during one step: the instant the step was started at, moving on with real time.
#[derive(Debug, Clone, Copy)]
struct StepClock {
    start: DateTime<Utc>,
    at: Instant,
}

impl StepClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.at.elapsed()).unwrap_or_default()
    }
}

/// One step now.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    run_once_at(state, Utc::now()).await
}

/// One step at `now`: voids reminders whose booking has started, claims a batch of due rows,
/// delivers each and records the outcome, extending the lease of the rows still held when
/// needed, so that a row is never free for another worker while this one processes it.
/// Returns how many rows were claimed.
pub async fn run_once_at(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let clock = StepClock {
        start: now,
        at: Instant::now(),
    };
    let voided = outbox::void_started_reminders(&state.db, now).await?;
    if voided > 0 {
        tracing::info!(voided, "reminders not sent by the start of their booking");
    }
    let lease = lease(state);
    // Measured from before the claim, as the database's lease is: never later than it.
    let mut lease_end = Instant::now() + lease;
    let rows = outbox::claim_due(&state.db, now, lease, BATCH).await?;
    let count = rows.len();
    let Some(mut held_until) = rows.first().and_then(|r| r.lease_until) else {
        return Ok(count);
    };
    let budget = per_message(state);
    let mut rows = std::collections::VecDeque::from(rows);
    while let Some(row) = rows.pop_front() {
        if Instant::now() + budget > lease_end {
            let started = Instant::now();
            let until = outbox::lease_instant(
                clock.now() + chrono::Duration::from_std(lease).unwrap_or_default(),
            );
            let ids: Vec<_> = std::iter::once(row.id)
                .chain(rows.iter().map(|r| r.id))
                .collect();
            let kept: HashSet<_> = outbox::extend_leases(&state.db, &ids, held_until, until)
                .await?
                .into_iter()
                .collect();
            held_until = until;
            lease_end = started + lease;
            rows.retain(|r| kept.contains(&r.id));
            if !kept.contains(&row.id) {
                tracing::warn!(id = %row.id, "lease lost before processing; left to its holder");
                continue;
            }
        }
        process(state, &row, clock).await?;
    }
    Ok(count)
}

async fn process(
    state: &AppState,
    row: &outbox_message::Model,
    clock: StepClock,
) -> anyhow::Result<()> {
    let email = &state.settings.email;
    let domain = row
        .to_address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("");
    let obsolete = if row.kind == EmailKind::Reminder.as_str() {
        reminder_obsolete(state, row, clock.now()).await?
    } else if row.kind == EmailKind::WaitlistOfferReminder.as_str() {
        offer_reminder_obsolete(state, row, clock.now()).await?
    } else {
        None
    };
    if let Some(reason) = obsolete {
        outbox::mark_void(&state.db, row.id, reason).await?;
        tracing::info!(id = %row.id, kind = %row.kind, reason, "reminder not sent");
        return Ok(());
    }
    if u32::try_from(row.attempts).unwrap_or(u32::MAX) >= email.outbox.max_attempts {
        // Claimed again and again without an outcome: a worker died on it each time, and
        // it may have gone out each time.
        let error = "no outcome recorded after the maximum number of attempts";
        outbox::mark_dead(&state.db, row.id, error).await?;
        tracing::warn!(id = %row.id, kind = %row.kind, to_domain = domain, "{error}");
        return Ok(());
    }
    match state.mailer.deliver(row, email).await {
        Ok(()) => {
            // The email is out: recording that must not give up at the first busy database,
            // or the row would be sent again when its lease ends.
            let mut marked = outbox::mark_sent(&state.db, row.id, clock.now()).await;
            for wait_ms in [50, 200, 1000] {
                if marked.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                marked = outbox::mark_sent(&state.db, row.id, clock.now()).await;
            }
            if let Err(e) = marked {
                tracing::error!(id = %row.id, error = %e, "sent but not marked; it may go again");
            }
            tracing::info!(
                id = %row.id, kind = %row.kind, to_domain = domain, failures = row.failures,
                "email sent"
            );
        }
        Err(e) => {
            let status = outbox::mark_failed(
                &state.db,
                row,
                e.kind,
                &e.message,
                &email.outbox,
                clock.now(),
            )
            .await?;
            tracing::warn!(
                id = %row.id, kind = %row.kind, to_domain = domain, attempts = row.attempts,
                failure = e.kind.as_str(), status, error = %redact(&e.message),
                "email not sent"
            );
        }
    }
    Ok(())
}

/// Why a reminder should no longer go out, if it should not: its booking is gone, no longer
/// confirmed, or already started.
async fn reminder_obsolete(
    state: &AppState,
    row: &outbox_message::Model,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<&'static str>> {
    let Some(appointment_id) = row.appointment_id else {
        return Ok(Some("the reminder names no booking"));
    };
    let Some(appointment) = appointment::Entity::find_by_id(appointment_id)
        .one(&state.db)
        .await?
    else {
        return Ok(Some("the booking no longer exists"));
    };
    if appointment.status != "confirmed" {
        return Ok(Some("the booking is no longer confirmed"));
    }
    if appointment.starts_at <= now {
        return Ok(Some("the booking has already started"));
    }
    Ok(None)
}

/// Why an offer's reminder should no longer go out, if it should not: the offer is gone, no
/// longer open (claimed, declined, expired or withdrawn), or its hold has ended.
async fn offer_reminder_obsolete(
    state: &AppState,
    row: &outbox_message::Model,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<&'static str>> {
    let Some(offer_id) = row.appointment_id else {
        return Ok(Some("the reminder names no offer"));
    };
    let Some(offer) = waitlist_offer::Entity::find_by_id(offer_id)
        .one(&state.db)
        .await?
    else {
        return Ok(Some("the offer no longer exists"));
    };
    if offer.status != crate::domain::waitlist::OfferStatus::Open.as_str() {
        return Ok(Some("the offer is no longer open"));
    }
    if offer.expires_at <= now {
        return Ok(Some("the offer's hold has ended"));
    }
    Ok(None)
}

/// Runs `run_once` every `email.outbox.poll_interval_ms` (at once again after a full batch)
/// until `shutdown` turns true. Errors are logged and the loop goes on: the database may be
/// back at the next tick.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.settings.email.outbox.poll_interval_ms.max(1));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let busy = match run_once(&state).await {
            Ok(n) => n as u64 >= BATCH,
            Err(e) => {
                tracing::warn!(error = %e, "outbox step failed");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!("outbox worker stopped");
}
