//! The staff bearer-token scheme and role checks.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use crate::{auth::token, domain::catalogue::Role, state::AppState, store};

use super::problem::{ApiError, ApiResult};

/// The signed-in staff member behind a request.
#[derive(Debug, Clone)]
pub struct Staff {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub practitioner_id: Option<Uuid>,
    pub token_hash: String,
}

impl Staff {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Admin and reception act for every practitioner; a practitioner only for themself.
    pub fn may_manage_practitioner(&self, practitioner_id: Uuid) -> bool {
        match self.role {
            Role::Admin | Role::Reception => true,
            Role::Practitioner => self.practitioner_id == Some(practitioner_id),
        }
    }
}

/// Staff bearer token from `POST /api/v1/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "staff_from_token")]
pub struct StaffAuth(pub Staff);

async fn staff_from_token(req: &Request, bearer: Bearer) -> poem::Result<Staff> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token_hash = token::hash(&bearer.token);
    let user = store::staff::user_for_session(&state.db, &token_hash, chrono::Utc::now())
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::unauthorized("The token is unknown, expired or revoked."))?;
    let role = Role::parse(&user.role).ok_or_else(ApiError::forbidden)?;
    Ok(Staff {
        id: user.id,
        email: user.email,
        name: user.name,
        role,
        practitioner_id: user.practitioner_id,
        token_hash,
    })
}
