//! Liveness, readiness and metrics.

use std::sync::Arc;

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, payload::PlainText};
use sea_orm::ConnectionTrait;

use crate::state::AppState;

use super::ApiTags;

pub struct OpsApi {
    pub state: Arc<AppState>,
}

#[derive(Object)]
pub struct HealthStatus {
    /// `ok` or `unavailable`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum Readiness {
    /// The database answers.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database does not answer.
    #[oai(status = 503)]
    NotReady(Json<HealthStatus>),
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

    /// The service can reach its database.
    #[oai(path = "/health/ready", method = "get")]
    async fn ready(&self) -> Readiness {
        let backend = self.state.db.get_database_backend();
        let ping = self
            .state
            .db
            .execute_raw(sea_orm::Statement::from_string(backend, "SELECT 1"))
            .await;
        match ping {
            Ok(_) => Readiness::Ready(Json(HealthStatus {
                status: "ok".into(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                Readiness::NotReady(Json(HealthStatus {
                    status: "unavailable".into(),
                }))
            }
        }
    }

    /// Request counters in the Prometheus text format.
    #[oai(path = "/metrics", method = "get")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.state.metrics.render())
    }
}
