//! Staff view of outgoing email: what is waiting, sent, dead or void, and retrying dead ones,
//! one or all at once (admin and reception).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::outbox_message;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    domain::catalogue::Role,
    email::outbox::{self, RetryOutcome},
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::StaffAuth,
    },
    state::AppState,
    store,
};

use super::{ApiTags, path_id};

pub struct StaffOutboxApi {
    pub state: Arc<AppState>,
}

/// Where an outgoing email stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting to be sent (or, for a reminder, for its time).
    Pending,
    /// Accepted by the mail server (or written to a file).
    Sent,
    /// Given up: a permanent refusal or too many failed attempts. Staff may retry it.
    Dead,
    /// Not to be sent any more (a reminder for a booking that was cancelled or moved).
    Void,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => outbox::PENDING,
            OutboxStatus::Sent => outbox::SENT,
            OutboxStatus::Dead => outbox::DEAD,
            OutboxStatus::Void => outbox::VOID,
        }
    }

    fn parse(s: &str) -> OutboxStatus {
        match s {
            outbox::SENT => OutboxStatus::Sent,
            outbox::DEAD => OutboxStatus::Dead,
            outbox::VOID => OutboxStatus::Void,
            _ => OutboxStatus::Pending,
        }
    }
}

/// One outgoing email.
#[derive(Debug, Object)]
pub struct OutboxItem {
    pub id: Uuid,
    /// booking_confirmed, booking_rescheduled, booking_cancelled, practitioner_notice,
    /// staff_notice, reminder, enquiry_received or enquiry_ack.
    pub kind: String,
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    pub status: OutboxStatus,
    /// Attempts the mail server refused (plus claims that ended without an outcome); these
    /// count toward `email.outbox.max_attempts`. Tries that could not reach the server do not.
    pub attempts: i32,
    /// When the next attempt is due (for a reminder: when it will be sent).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last try failed: the mail server's answer, or why it could not be reached.
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub sent_at: Option<DateTime<Utc>>,
    /// The Message-ID header, the same on every attempt.
    pub message_id: String,
    /// The booking the email is about, if any.
    #[oai(nullable)]
    pub appointment_id: Option<Uuid>,
}

/// What a bulk retry did.
#[derive(Debug, Object)]
pub struct RetriedCount {
    /// How many dead emails were put back in the queue.
    pub retried: u64,
}

impl From<outbox_message::Model> for OutboxItem {
    fn from(m: outbox_message::Model) -> Self {
        Self {
            id: m.id,
            status: OutboxStatus::parse(&m.status),
            kind: m.kind,
            to: m.to_address,
            subject: m.subject,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
            created_at: m.created_at,
            sent_at: m.sent_at,
            message_id: m.message_id,
            appointment_id: m.appointment_id,
        }
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffEmail")]
impl StaffOutboxApi {
    /// Outgoing email, newest first, optionally only one status (admin, reception).
    #[oai(path = "/outbox", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        status: Query<Option<OutboxStatus>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<OutboxItem>>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let (items, total) = outbox::page(
            &self.state.db,
            status.0.map(OutboxStatus::as_str),
            paging.page,
            paging.per_page,
        )
        .await?;
        Ok(Json(paging.wrap(
            items.into_iter().map(OutboxItem::from).collect(),
            total,
        )))
    }

    /// Puts every dead email back in the queue with its attempts reset (admin, reception),
    /// e.g. after the mail server or its settings were mended. `status` must be `dead`.
    #[oai(path = "/outbox/retry", method = "post")]
    async fn retry_all(
        &self,
        auth: StaffAuth,
        status: Query<OutboxStatus>,
    ) -> ApiResult<Json<RetriedCount>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        if status.0 != OutboxStatus::Dead {
            return Err(ApiError::field(
                "status",
                "only dead emails can be retried; use status=dead",
            ));
        }
        let txn = store::begin_write(&self.state.db).await?;
        let retried = outbox::retry_dead(&txn, Utc::now()).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "retry_all",
            "outbox_message",
            None,
            serde_json::json!({ "status": "dead", "retried": retried }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(RetriedCount { retried }))
    }

    /// Puts a dead email back in the queue with its attempts reset (admin, reception).
    /// Anything but a dead email is 422 `not_retryable`.
    #[oai(path = "/outbox/:id/retry", method = "post")]
    async fn retry(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<OutboxItem>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let id = path_id(&id, "outgoing email")?;
        let txn = store::begin_write(&self.state.db).await?;
        let row = match outbox::retry(&txn, id, Utc::now()).await? {
            RetryOutcome::Retried(row) => row,
            RetryOutcome::NotFound => return Err(ApiError::not_found("outgoing email")),
            RetryOutcome::NotRetryable(status) => {
                return Err(ApiError::rule(
                    "not_retryable",
                    "Not retryable",
                    format!("Only a dead email can be retried; this one is {status}."),
                ));
            }
        };
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "retry",
            "outbox_message",
            Some(row.id),
            serde_json::json!({ "kind": row.kind }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json((*row).into()))
    }
}
