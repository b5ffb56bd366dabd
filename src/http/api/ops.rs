//! Liveness, readiness and metrics.

use std::sync::Arc;

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, payload::PlainText};
use sea_orm::ConnectionTrait;

use crate::{email::outbox, metrics::OutboxGauges, state::AppState};

use super::ApiTags;

pub struct OpsApi {
    pub state: Arc<AppState>,
}

#[derive(Object)]
pub struct HealthStatus {
    /// `ok` or `unavailable`.
    pub status: String,
}

/// Whether this instance can serve: its database, and how its email is going.
#[derive(Object)]
pub struct ReadinessStatus {
    /// `ok`; `degraded` when email is failing (still serving); `unavailable` when the
    /// database does not answer.
    pub status: String,
    /// `ok` or `unavailable`.
    pub database: String,
    /// `failing` when this instance's last delivery try failed for a server-level reason
    /// (connect, timeout, TLS, authentication, a broken connection) and none has reached the
    /// server since; otherwise `ok` (always with the file transport).
    pub email: String,
}

#[derive(ApiResponse)]
pub enum Readiness {
    /// The database answers (email trouble makes it `degraded`, not unready).
    #[oai(status = 200)]
    Ready(Json<ReadinessStatus>),
    /// The database does not answer.
    #[oai(status = 503)]
    NotReady(Json<ReadinessStatus>),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// The process is up.
    #[oai(path = "/health/live", method = "get")]
    async fn live(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".into(),
        })
    }

    /// The service can reach its database; `degraded` while email cannot reach its server.
    #[oai(path = "/health/ready", method = "get")]
    async fn ready(&self) -> Readiness {
        let backend = self.state.db.get_database_backend();
        let ping = self
            .state
            .db
            .execute_raw(sea_orm::Statement::from_string(backend, "SELECT 1"))
            .await;
        let email_failing = self.state.mailer.health().is_some_and(|h| h.is_failing());
        let email = if email_failing { "failing" } else { "ok" }.to_string();
        match ping {
            Ok(_) => Readiness::Ready(Json(ReadinessStatus {
                status: if email_failing { "degraded" } else { "ok" }.into(),
                database: "ok".into(),
                email,
            })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                Readiness::NotReady(Json(ReadinessStatus {
                    status: "unavailable".into(),
                    database: "unavailable".into(),
                    email,
                }))
            }
        }
    }

    /// Request counters, outbox gauges and SMTP failures in the Prometheus text format.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self) -> PlainText<String> {
        // Read at scrape time; a database that does not answer leaves the gauges as they were.
        match outbox_gauges(&self.state).await {
            Ok(gauges) => crate::metrics::record_outbox(&gauges),
            Err(e) => tracing::warn!(error = %e, "outbox gauges not available"),
        }
        let failures = self
            .state
            .mailer
            .health()
            .map(|h| h.failure_counts())
            .unwrap_or_else(|| {
                crate::email::FailureKind::SMTP
                    .iter()
                    .map(|k| (k.as_str(), 0))
                    .collect()
            });
        crate::metrics::record_smtp_failures(&failures);
        let out = self.state.metrics.render();
        PlainText(out)
    }
}

async fn outbox_gauges(state: &AppState) -> Result<OutboxGauges, sea_orm::DbErr> {
    let counts = outbox::count_by_status(&state.db).await?;
    let now = chrono::Utc::now();
    let oldest = outbox::oldest_pending(&state.db).await?;
    let by_status = [outbox::PENDING, outbox::SENT, outbox::DEAD, outbox::VOID]
        .into_iter()
        .map(|status| {
            let n = counts
                .iter()
                .find(|(s, _)| s == status)
                .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
                .unwrap_or(0);
            (status, n)
        })
        .collect();
    Ok(OutboxGauges {
        by_status,
        oldest_pending_seconds: oldest
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
    })
}
