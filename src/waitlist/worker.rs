//! The waitlist worker: expires offers whose hold ended, ends entries whose window passed,
//! and turns freed places that have waited out `waitlist.grace_seconds` into offers.
//! `run_once` is one step at a given "now" (tests drive the clock through it); `run` repeats
//! it every `waitlist.poll_interval_ms` until shutdown. Any number of instances may run it:
//! each opening is taken inside the transaction that offers it (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, the single writer on SQLite), and every offer is a guarded write.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::{
    booking::Context,
    domain::{localtime, waitlist::EntryStatus},
    state::AppState,
    store,
};

use super::offers;

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Offers whose hold ended (their places passed on).
    pub expired_offers: usize,
    /// Entries whose dates passed or whose class started.
    pub expired_entries: usize,
    /// Freed places looked at.
    pub openings: usize,
    /// Offers made.
    pub offers: usize,
}

/// Openings one transaction takes.
const OPENINGS_PER_TXN: u64 = 1;

/// One step at `now`.
pub async fn run_once(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Step> {
    let mut step = Step {
        expired_offers: offers::expire_due(state, now).await?,
        expired_entries: expire_entries(state, now).await?,
        ..Step::default()
    };
    let grace = chrono::Duration::seconds(
        i64::try_from(state.settings.waitlist.grace_seconds).unwrap_or(i64::MAX / 1000),
    );
    loop {
        let txn = state.writer.begin().await?;
        let due = store::waitlist::take_due_openings(&*txn, now, grace, OPENINGS_PER_TXN).await?;
        if due.is_empty() {
            break;
        }
        let mut made = 0;
        for opening in &due {
            made += offers::offer_opening(&txn, Context::of(state), opening, now).await?;
        }
        txn.commit().await?;
        step.openings += due.len();
        step.offers += made;
    }
    if step.offers > 0 || step.expired_offers > 0 {
        // Held or released time changes what slot search lists.
        state.slot_answers.clear();
        state.busy.invalidate();
        tracing::info!(
            offers = step.offers,
            expired = step.expired_offers,
            "waitlist offers made or expired"
        );
    }
    Ok(step)
}

/// Ends waiting entries whose last date has passed or whose class has started.
async fn expire_entries(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    const BATCH: u64 = 100;
    let today = localtime::local_date(state.tz, now)
        .format("%Y-%m-%d")
        .to_string();
    let mut ended = 0;
    loop {
        let txn = state.writer.begin().await?;
        let ids = store::waitlist::entries_past(&*txn, &today, now, BATCH).await?;
        for id in &ids {
            if store::waitlist::set_entry_status(
                &*txn,
                *id,
                &[EntryStatus::Waiting],
                EntryStatus::Expired,
                now,
            )
            .await?
            {
                ended += 1;
            }
        }
        txn.commit().await?;
        if (ids.len() as u64) < BATCH {
            return Ok(ended);
        }
    }
}

/// Runs `run_once` every `waitlist.poll_interval_ms` until `shutdown` turns true. Errors are
/// logged and the loop goes on.
pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.settings.waitlist.poll_interval_ms.max(1));
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = run_once(&state, Utc::now()).await {
            tracing::warn!(error = %e, "waitlist step failed");
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
    tracing::debug!("waitlist worker stopped");
}
