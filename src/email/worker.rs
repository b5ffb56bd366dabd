//! The outbox worker: claims due rows, sends each one without holding a transaction or a row
//! lock, and records the outcome. `run_once` is one step (tests drive it directly); `run`
//! repeats it every `email.outbox.poll_interval_ms` until shutdown.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use entity::{appointment, outbox_message};
use sea_orm::EntityTrait;
use tokio::sync::watch;

use crate::state::AppState;

use super::{EmailKind, outbox, transport::redact};

/// Rows claimed per step.
pub const BATCH: u64 = 25;

/// How long a claimed row stays reserved for this worker: room for two deliveries that run
/// into the SMTP timeout (rows the worker cannot reach in time are given back), so another
/// worker picks a row up only after a crash, and then within minutes.
pub fn lease(state: &AppState) -> Duration {
    state.mailer.max_delivery_time() * 2 + Duration::from_secs(60)
}

/// One step: claims a batch of due rows, delivers each and records the outcome. Returns how
/// many rows were claimed (attempted, voided or given back).
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let now = Utc::now();
    let lease = lease(state);
    // Measured from before the claim, as the database's lease is: never later than it.
    let lease_end = tokio::time::Instant::now() + lease;
    let rows = outbox::claim_due(&state.db, now, lease, BATCH).await?;
    let budget = state.mailer.max_delivery_time();
    let count = rows.len();
    let mut rows = rows.into_iter();
    while let Some(row) = rows.next() {
        if tokio::time::Instant::now() + budget > lease_end {
            // Out of lease time: give the rest back rather than risk a second worker sending
            // them at the same moment.
            outbox::release(&state.db, row.id).await?;
            for rest in rows.by_ref() {
                outbox::release(&state.db, rest.id).await?;
            }
            break;
        }
        process(state, &row).await?;
    }
    Ok(count)
}

async fn process(state: &AppState, row: &outbox_message::Model) -> anyhow::Result<()> {
    let email = &state.settings.email;
    let domain = row
        .to_address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("");
    if row.kind == EmailKind::Reminder.as_str()
        && let Some(reason) = reminder_obsolete(state, row).await?
    {
        outbox::mark_void(&state.db, row.id, reason).await?;
        tracing::info!(id = %row.id, kind = %row.kind, reason, "reminder not sent");
        return Ok(());
    }
    if u32::try_from(row.attempts).unwrap_or(u32::MAX) > email.outbox.max_attempts {
        // Claimed more often than allowed without an outcome: a worker died on it each time.
        let error = "no outcome recorded after the maximum number of attempts";
        outbox::mark_failed(&state.db, row, error, true, &email.outbox, Utc::now()).await?;
        tracing::warn!(id = %row.id, kind = %row.kind, to_domain = domain, "{error}");
        return Ok(());
    }
    match state.mailer.deliver(row, email).await {
        Ok(()) => {
            // The email is out: recording that must not give up at the first busy database,
            // or the row would be sent again when its lease ends.
            let mut marked = outbox::mark_sent(&state.db, row.id, Utc::now()).await;
            for wait_ms in [50, 200, 1000] {
                if marked.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                marked = outbox::mark_sent(&state.db, row.id, Utc::now()).await;
            }
            if let Err(e) = marked {
                tracing::error!(id = %row.id, error = %e, "sent but not marked; it may go again");
            }
            tracing::info!(
                id = %row.id, kind = %row.kind, to_domain = domain, attempt = row.attempts,
                "email sent"
            );
        }
        Err(e) => {
            let status = outbox::mark_failed(
                &state.db,
                row,
                &e.message,
                e.permanent,
                &email.outbox,
                Utc::now(),
            )
            .await?;
            tracing::warn!(
                id = %row.id, kind = %row.kind, to_domain = domain, attempt = row.attempts,
                permanent = e.permanent, status, error = %redact(&e.message),
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
    if appointment.starts_at <= Utc::now() {
        return Ok(Some("the booking has already started"));
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
