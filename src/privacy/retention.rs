//! Keeping personal data no longer than needed: closed and spam enquiries past their
//! retention period, sent emails after `email.outbox.retention_days`, expired idempotency
//! keys (which hold copies of responses), webhook deliveries after `webhooks.retention_days`,
//! waitlist entries and offers `privacy.waitlist_retention_days` after they ended,
//! and the scrubbing of erased patients' emails once
//! sent or dead. Each kind is deleted in bounded batches, each batch its own short write
//! transaction, so a large backlog never holds the write lock for long.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::{state::AppState, store};

/// Rows one batch deletes or scrubs.
pub const BATCH: u64 = 500;

/// What one purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub enquiries: u64,
    pub idempotency_keys: u64,
    pub emails: u64,
    /// Email copies about erased patients that were scrubbed.
    pub scrubbed_emails: u64,
    pub webhook_deliveries: u64,
    /// Ended waitlist entries (with their offers).
    pub waitlist_entries: u64,
    /// Decided offers of entries still kept.
    pub waitlist_offers: u64,
}

/// One kind of expired or erased data.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Enquiries {
        closed_before: DateTime<Utc>,
        spam_before: DateTime<Utc>,
    },
    IdempotencyKeys {
        now: DateTime<Utc>,
    },
    Emails {
        before: DateTime<Utc>,
    },
    ErasedPatientsEmails,
    WebhookDeliveries {
        before: DateTime<Utc>,
    },
    WaitlistEntries {
        before: DateTime<Utc>,
    },
    WaitlistOffers {
        before: DateTime<Utc>,
    },
}

impl Kind {
    /// Deletes or scrubs one batch of this kind inside `txn`.
    async fn batch(self, txn: &DatabaseTransaction) -> Result<u64, DbErr> {
        match self {
            Kind::Enquiries {
                closed_before,
                spam_before,
            } => store::privacy::purge_enquiries(txn, closed_before, spam_before, BATCH).await,
            Kind::IdempotencyKeys { now } => {
                store::privacy::purge_idempotency(txn, now, BATCH).await
            }
            Kind::Emails { before } => store::privacy::purge_emails(txn, before, BATCH).await,
            Kind::ErasedPatientsEmails => store::privacy::scrub_erased_mail(txn, BATCH).await,
            Kind::WebhookDeliveries { before } => {
                crate::webhooks::deliveries::purge(txn, before, BATCH).await
            }
            Kind::WaitlistEntries { before } => {
                store::waitlist::purge_ended(txn, before, BATCH).await
            }
            Kind::WaitlistOffers { before } => {
                store::waitlist::purge_decided_offers(txn, before, BATCH).await
            }
        }
    }

    /// Runs batches of this kind, each in its own write transaction, until one is not full.
    async fn run(self, db: &DatabaseConnection) -> Result<u64, DbErr> {
        let mut total = 0;
        loop {
            let txn = store::begin_write(db).await?;
            let done = self.batch(&txn).await?;
            txn.commit().await?;
            total += done;
            if done < BATCH {
                return Ok(total);
            }
        }
    }
}

/// Deletes what has passed its retention period at `now`, and scrubs erased patients'
/// delivered emails.
pub async fn purge(state: &AppState, now: DateTime<Utc>) -> Result<Purged, DbErr> {
    let db = &state.db;
    let settings = &state.settings.enquiries;
    let enquiries = Kind::Enquiries {
        closed_before: now - Duration::days(i64::from(settings.retention_closed_days)),
        spam_before: now - Duration::days(i64::from(settings.retention_spam_days)),
    }
    .run(db)
    .await?;
    let idempotency_keys = Kind::IdempotencyKeys { now }.run(db).await?;
    let emails = Kind::Emails {
        before: now - Duration::days(i64::from(state.settings.email.outbox.retention_days)),
    }
    .run(db)
    .await?;
    let scrubbed_emails = Kind::ErasedPatientsEmails.run(db).await?;
    let webhook_deliveries = Kind::WebhookDeliveries {
        before: now - Duration::days(i64::from(state.settings.webhooks.retention_days)),
    }
    .run(db)
    .await?;
    let waitlist_before =
        now - Duration::days(i64::from(state.settings.privacy.waitlist_retention_days));
    let waitlist_entries = Kind::WaitlistEntries {
        before: waitlist_before,
    }
    .run(db)
    .await?;
    let waitlist_offers = Kind::WaitlistOffers {
        before: waitlist_before,
    }
    .run(db)
    .await?;
    if enquiries > 0 {
        tracing::info!(enquiries, "purged enquiries past their retention period");
    }
    Ok(Purged {
        enquiries,
        idempotency_keys,
        emails,
        scrubbed_emails,
        webhook_deliveries,
        waitlist_entries,
        waitlist_offers,
    })
}
