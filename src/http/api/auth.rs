//! Staff sign-in: login (rate-limited per IP, slowed per account), logout and "who am I".

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use poem::web::RemoteAddr;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;

use crate::{
    auth::{password, token},
    http::{
        problem::{ApiError, ApiResult},
        rate_limit::Limit,
        security::StaffAuth,
    },
    state::AppState,
    store,
};

use super::{ApiTags, staff_users::StaffUser};

pub struct AuthApi {
    pub state: Arc<AppState>,
}

#[derive(Object)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Object)]
pub struct LoginResponse {
    /// Bearer token for `Authorization: Bearer <token>`; shown only here.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub staff: StaffUser,
}

#[derive(ApiResponse)]
pub enum LoggedOut {
    /// The token is revoked.
    #[oai(status = 204)]
    NoContent,
}

/// How long an account is locked after `failures` failed logins in a row.
fn lock_for(failures: u32, threshold: u32) -> Option<Duration> {
    if failures < threshold {
        return None;
    }
    let doublings = (failures - threshold).min(5);
    Some(Duration::seconds(30 << doublings).min(Duration::minutes(15)))
}

pub fn client_ip(remote: &RemoteAddr) -> Option<std::net::IpAddr> {
    remote.as_socket_addr().map(|a| a.ip())
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Exchanges a staff email and password for a bearer token.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        body: Json<LoginRequest>,
        remote: &RemoteAddr,
    ) -> ApiResult<Json<LoginResponse>> {
        let state = &self.state;
        state.limits.check(Limit::Login, client_ip(remote))?;
        let now = Utc::now();
        let email = body.email.trim().to_lowercase();
        let candidate = SecretString::from(body.0.password);
        let user = store::staff::find_user_by_email(&state.db, &email)
            .await?
            .filter(|u| u.active);
        let Some(user) = user else {
            // Same work as for a real account, so timing does not reveal which emails exist.
            password::verify(candidate, password::DUMMY_HASH.to_string()).await;
            return Err(ApiError::invalid_credentials());
        };
        if let Some(until) = user.locked_until.filter(|until| *until > now) {
            let wait = (until - now).num_seconds().max(1) as u64;
            return Err(ApiError::rate_limited(wait));
        }
        if !password::verify(candidate, user.password_hash.clone()).await {
            let failures = u32::try_from(user.failed_logins).unwrap_or(0) + 1;
            let locked_until =
                lock_for(failures, state.settings.auth.lockout_threshold).map(|d| now + d);
            store::staff::record_failed_login(&state.db, &user, locked_until).await?;
            tracing::info!(user = %user.id, failures, "failed staff login");
            return Err(ApiError::invalid_credentials());
        }
        let secret = token::generate();
        let expires_at = now + Duration::hours(i64::from(state.settings.auth.session_hours));
        let txn = store::begin_write(&state.db).await?;
        store::staff::clear_failed_logins(&txn, user.id).await?;
        store::staff::insert_session(&txn, user.id, token::hash(&secret), now, expires_at).await?;
        store::audit::record(
            &txn,
            Some(user.id),
            "login",
            "staff_user",
            Some(user.id),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(LoginResponse {
            token: secret,
            expires_at,
            staff: StaffUser::from(user),
        }))
    }

    /// Revokes the token used for this request.
    #[oai(path = "/logout", method = "post")]
    async fn logout(&self, auth: StaffAuth) -> ApiResult<LoggedOut> {
        store::staff::revoke_session(&self.state.db, &auth.0.token_hash, Utc::now()).await?;
        Ok(LoggedOut::NoContent)
    }

    /// The signed-in staff member.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: StaffAuth) -> ApiResult<Json<StaffUser>> {
        let user = store::staff::find_user(&self.state.db, auth.0.id)
            .await?
            .ok_or_else(|| ApiError::unauthorized("The account no longer exists."))?;
        Ok(Json(StaffUser::from(user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_lock_after_the_threshold_with_growing_waits() {
        assert_eq!(lock_for(4, 5), None);
        assert_eq!(lock_for(5, 5), Some(Duration::seconds(30)));
        assert_eq!(lock_for(6, 5), Some(Duration::seconds(60)));
        assert_eq!(lock_for(50, 5), Some(Duration::minutes(15)));
    }
}
