//! Keeping personal data no longer than needed: closed and spam enquiries past their
//! retention period, sent emails after `email.outbox.retention_days`, and expired
//! idempotency keys (which hold copies of responses), and webhook deliveries after
//! `webhooks.retention_days`.

use chrono::{DateTime, Duration, Utc};

use crate::{state::AppState, store};

/// What one purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub enquiries: u64,
    pub idempotency_keys: u64,
    pub emails: u64,
}

/// Deletes what has passed its retention period at `now`.
pub async fn purge(state: &AppState, now: DateTime<Utc>) -> Result<Purged, sea_orm::DbErr> {
    let settings = &state.settings.enquiries;
    let txn = store::begin_write(&state.db).await?;
    let enquiries = store::enquiries::purge(
        &txn,
        now - Duration::days(i64::from(settings.retention_closed_days)),
        now - Duration::days(i64::from(settings.retention_spam_days)),
    )
    .await?;
    let idempotency_keys = store::bookings::purge_idempotency(&txn, now).await?;
    let emails = crate::email::outbox::purge_delivered(
        &txn,
        now - Duration::days(i64::from(state.settings.email.outbox.retention_days)),
    )
    .await?;
    let webhook_deliveries = crate::webhooks::deliveries::purge(
        &txn,
        now - Duration::days(i64::from(state.settings.webhooks.retention_days)),
    )
    .await?;
    txn.commit().await?;
    if webhook_deliveries > 0 {
        tracing::info!(
            webhook_deliveries,
            "purged webhook deliveries past their retention"
        );
    }
    if enquiries > 0 {
        tracing::info!(enquiries, "purged enquiries past their retention period");
    }
    Ok(Purged {
        enquiries,
        idempotency_keys,
        emails,
    })
}
