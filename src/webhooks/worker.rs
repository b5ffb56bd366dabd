//! The delivery worker: claims due deliveries, posts them (a batch at once, no transaction or
//! row lock held meanwhile) and records each outcome. `run_once(state, now)` is one step, so
//! tests drive it with their own clock; `run` repeats it every `webhooks.poll_interval_ms`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entity::{webhook_delivery, webhook_endpoint};
use tokio::sync::watch;

use crate::state::AppState;

use super::{client, deliveries, endpoints, signing};

/// Deliveries claimed (and posted concurrently) per step.
pub const BATCH: u64 = 25;

/// Why a 410 turns an endpoint off.
pub const GONE_REASON: &str = "The receiver answered 410 Gone.";

/// How long a claimed delivery stays reserved: a batch is posted concurrently, so each
/// attempt ends within the timeout; twice that plus a minute covers recording the outcome.
pub fn lease(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.webhooks.timeout_seconds * 2 + 60)
}

/// One step at `now`: claims due deliveries, posts each and records the outcome. Returns how
/// many were claimed.
pub async fn run_once(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let rows = deliveries::claim_due(&state.db, now, lease(state), BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<_> = rows.iter().map(|r| r.endpoint_id).collect();
    ids.sort();
    ids.dedup();
    let by_id: HashMap<_, _> = endpoints::many(&state.db, ids)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let count = rows.len();
    let attempts = rows.iter().map(|row| async {
        match by_id.get(&row.endpoint_id) {
            Some(endpoint) => deliver(state, endpoint, row, now).await,
            None => deliveries::release(&state.db, row.id)
                .await
                .map_err(anyhow::Error::from),
        }
    });
    for result in futures_util::future::join_all(attempts).await {
        result?;
    }
    Ok(count)
}

async fn deliver(
    state: &AppState,
    endpoint: &webhook_endpoint::Model,
    row: &webhook_delivery::Model,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let settings = &state.settings.webhooks;
    let timestamp = now.timestamp();
    let signature = signing::signature_header(
        endpoints::signing_secrets(endpoint, now),
        &row.webhook_id,
        timestamp,
        &row.payload,
    );
    let outgoing = client::Outgoing {
        webhook_id: &row.webhook_id,
        timestamp,
        signature: &signature,
        body: &row.payload,
    };
    let outcome = client::post(
        &endpoint.url,
        &outgoing,
        Duration::from_secs(settings.timeout_seconds),
        settings.allow_private_targets,
    )
    .await;
    let elapsed = chrono::Duration::from_std(outcome.duration).unwrap_or_default();
    let error_text = match (outcome.status, &outcome.error) {
        (_, Some(e)) => Some(e.clone()),
        (Some(code), None) if !(200..300).contains(&code) => {
            Some(format!("the receiver answered {code}"))
        }
        _ => None,
    };
    let attempt = deliveries::Attempt {
        at: now + elapsed,
        status_code: outcome.status,
        error: error_text.as_deref(),
        duration_ms: i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX),
    };
    let host = url::Url::parse(&endpoint.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    match outcome.status {
        Some(code) if (200..300).contains(&code) => {
            // Posted: recording that must survive a busy moment, or it would go again.
            let mut marked = deliveries::mark_delivered(&state.db, row, &attempt).await;
            for wait_ms in [50, 200, 1000] {
                if marked.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                marked = deliveries::mark_delivered(&state.db, row, &attempt).await;
            }
            if let Err(e) = marked {
                tracing::error!(id = %row.id, error = %e, "webhook delivered but not marked; it may go again");
            }
            tracing::info!(
                id = %row.id, event = %row.event_type, host, status = code,
                attempt = row.attempts, "webhook delivered"
            );
        }
        Some(410) => {
            endpoints::disable(&state.db, endpoint.id, GONE_REASON, attempt.at).await?;
            state.webhook_subscribers.forget();
            deliveries::mark_failed(
                &state.db,
                row,
                &attempt,
                &settings.retry_schedule_seconds,
                true,
            )
            .await?;
            tracing::warn!(endpoint = %endpoint.id, host, "webhook endpoint answered 410; disabled");
        }
        _ => {
            let status = deliveries::mark_failed(
                &state.db,
                row,
                &attempt,
                &settings.retry_schedule_seconds,
                false,
            )
            .await?;
            tracing::warn!(
                id = %row.id, event = %row.event_type, host, attempt = row.attempts, status,
                error = error_text.as_deref().unwrap_or(""), "webhook not delivered"
            );
        }
    }
    Ok(())
}

/// Runs `run_once` every `webhooks.poll_interval_ms` (at once again after a full batch) until
/// `shutdown` turns true. Errors are logged and the loop goes on.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.settings.webhooks.poll_interval_ms.max(1));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let busy = match run_once(&state, Utc::now()).await {
            Ok(n) => n as u64 >= BATCH,
            Err(e) => {
                tracing::warn!(error = %e, "webhook step failed");
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
    tracing::debug!("webhook worker stopped");
}
