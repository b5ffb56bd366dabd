//! Staff sign-in: login (rate-limited per client, throttled per submitted address), logout and
//! "who am I".

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;

use crate::{
    auth::{password, token},
    http::{
        client::ClientAddr,
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

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Exchanges a staff email and password for a bearer token. Failed attempts are counted
    /// per submitted address, whether or not an account has it: past `auth.lockout_threshold`
    /// within 15 minutes the address answers 429 until its oldest failure stops counting.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        body: Json<LoginRequest>,
        client: ClientAddr,
    ) -> ApiResult<Json<LoginResponse>> {
        let state = &self.state;
        state.limits.check(Limit::Login, client.0)?;
        let now = Utc::now();
        let email = body.email.trim().to_lowercase();
        if let Err(wait) = state.login_throttle.check(&email, Instant::now()) {
            return Err(ApiError::rate_limited(wait.as_secs().max(1)));
        }
        let candidate = SecretString::from(body.0.password);
        let user = store::staff::find_user_by_email(&state.db, &email)
            .await?
            .filter(|u| u.active);
        // An unknown address costs the same verification as a known one, so neither the
        // answer nor its timing tells which addresses have accounts.
        let stored = user.as_ref().map_or_else(
            || password::DUMMY_HASH.to_string(),
            |u| u.password_hash.clone(),
        );
        let verified = state.hashing.verify(candidate, stored).await?;
        let Some(user) = user.filter(|_| verified) else {
            state.login_throttle.record_failure(&email, Instant::now());
            tracing::info!("failed staff login");
            return Err(ApiError::invalid_credentials());
        };
        state.login_throttle.clear(&email);
        let secret = token::generate();
        let expires_at = now + Duration::hours(i64::from(state.settings.auth.session_hours));
        let txn = store::begin_write(&state.db).await?;
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
