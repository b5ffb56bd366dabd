//! Staff accounts and the audit log (admin only).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{audit_log, staff_user};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    accounts::{self, CreateStaffError, NewStaff},
    auth::password,
    domain::{
        FieldError,
        catalogue::Role,
        text::{EmailAddress, PersonName},
    },
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::StaffAuth,
    },
    state::AppState,
    store,
};

use super::{ApiTags, path_id};

pub struct StaffUsersApi {
    pub state: Arc<AppState>,
}

/// A staff account.
#[derive(Debug, Object)]
pub struct StaffUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The practitioner record of a practitioner account.
    #[oai(nullable)]
    pub practitioner_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<staff_user::Model> for StaffUser {
    fn from(u: staff_user::Model) -> Self {
        Self {
            id: u.id,
            role: Role::parse(&u.role).unwrap_or(Role::Reception),
            email: u.email,
            name: u.name,
            practitioner_id: u.practitioner_id,
            active: u.active,
            created_at: u.created_at,
        }
    }
}

#[derive(Object)]
pub struct NewStaffUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub practitioner_id: Option<Uuid>,
    /// 12–128 characters; when absent one is generated and returned once.
    pub password: Option<String>,
}

#[derive(Object)]
pub struct CreatedStaffUser {
    pub user: StaffUser,
    /// The generated password, when none was given. Shown only here.
    #[oai(skip_serializing_if_is_none)]
    pub password: Option<String>,
}

#[derive(Object)]
pub struct StaffUserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `false` deactivates the account and revokes its sessions at once.
    pub active: Option<bool>,
    /// A new password (12–128 characters); revokes the account's sessions.
    pub password: Option<String>,
}

#[derive(ApiResponse)]
pub enum StaffUserCreated {
    #[oai(status = 201)]
    Created(Json<CreatedStaffUser>, #[oai(header = "Location")] String),
}

/// One entry of the audit log.
#[derive(Debug, Object)]
pub struct AuditEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The staff member who made the change (none for system actions).
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub entity: String,
    #[oai(nullable)]
    pub entity_id: Option<String>,
    pub detail: serde_json::Value,
}

impl From<audit_log::Model> for AuditEntry {
    fn from(a: audit_log::Model) -> Self {
        Self {
            id: a.id,
            at: a.at,
            actor_id: a.actor_id,
            detail: serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::Null),
            action: a.action,
            entity: a.entity,
            entity_id: a.entity_id,
        }
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffAdmin")]
impl StaffUsersApi {
    /// All staff accounts (admin).
    #[oai(path = "/users", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<StaffUser>>> {
        auth.0.require(&[Role::Admin])?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let users = store::staff::list_users(&self.state.db).await?;
        Ok(Json(
            paging.slice(users.into_iter().map(StaffUser::from).collect()),
        ))
    }

    /// Creates a staff account (admin). Without a password, one is generated and returned once.
    #[oai(path = "/users", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<NewStaffUser>,
    ) -> ApiResult<StaffUserCreated> {
        auth.0.require(&[Role::Admin])?;
        let body = body.0;
        let mut errors = Vec::new();
        let email = EmailAddress::parse("email", &body.email).map_err(|e| errors.push(e));
        let name = PersonName::parse("name", &body.name).map_err(|e| errors.push(e));
        let (Ok(email), Ok(name)) = (email, name) else {
            return Err(ApiError::validation(errors));
        };
        let new = NewStaff {
            email,
            name,
            role: body.role,
            practitioner_id: body.practitioner_id,
        };
        let problem = |e: CreateStaffError| match e {
            CreateStaffError::Invalid(errors) => ApiError::validation(errors),
            CreateStaffError::EmailTaken => ApiError::conflict(
                "email_taken",
                "Email taken",
                "A staff account with this email already exists.",
            ),
            CreateStaffError::Database(e) => ApiError::from(e),
            CreateStaffError::Hashing(e) => ApiError::internal(e),
        };
        // Hashing counts against `auth.max_concurrent_hashes` like a login does.
        let slot = self.state.hashing.reserve().await?;
        let password = accounts::prepare_password(body.password.map(SecretString::from))
            .await
            .map_err(problem)?;
        drop(slot);
        let txn = store::begin_write(&self.state.db).await?;
        let (user, generated) = accounts::create(&txn, new, password)
            .await
            .map_err(problem)?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "create",
            "staff_user",
            Some(user.id),
            serde_json::json!({ "role": user.role }),
        )
        .await?;
        txn.commit().await?;
        let location = format!("/api/v1/staff/users/{}", user.id);
        Ok(StaffUserCreated::Created(
            Json(CreatedStaffUser {
                user: user.into(),
                password: generated,
            }),
            location,
        ))
    }

    /// Changes a staff account's name, role, active flag or password (admin).
    #[oai(path = "/users/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<StaffUserPatch>,
    ) -> ApiResult<Json<StaffUser>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "staff user")?;
        let body = body.0;
        let mut errors: Vec<FieldError> = Vec::new();
        let name = body
            .name
            .as_deref()
            .map(|n| PersonName::parse("name", n))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if let Some(p) = &body.password
            && let Err(e) = password::check_policy("password", p)
        {
            errors.push(e);
        }
        if id == auth.0.id
            && (body.active == Some(false) || body.role.is_some_and(|r| r != Role::Admin))
        {
            errors.push(FieldError::new(
                "active",
                "admins cannot deactivate or demote their own account",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let password_changed = body.password.is_some();
        let new_hash = match body.password {
            Some(p) => Some(
                self.state
                    .hashing
                    .hash(SecretString::from(p))
                    .await?
                    .map_err(ApiError::internal)?,
            ),
            None => None,
        };
        let txn = store::begin_write(&self.state.db).await?;
        let mut user = store::staff::find_user(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("staff user"))?;
        let mut revoke = false;
        if let Some(name) = name {
            user.name = name.into_inner();
        }
        if let Some(role) = body.role {
            if role == Role::Practitioner && user.practitioner_id.is_none() {
                return Err(ApiError::field(
                    "role",
                    "a practitioner account needs a linked practitioner",
                ));
            }
            user.role = role.as_str().to_string();
            revoke = true;
        }
        if let Some(active) = body.active {
            revoke |= user.active && !active;
            user.active = active;
        }
        if let Some(hash) = new_hash {
            user.password_hash = hash;
            revoke = true;
        }
        let now = Utc::now();
        user.updated_at = now;
        let user = store::staff::update_user(&txn, user).await?;
        if revoke {
            store::staff::revoke_all_sessions(&txn, user.id, now).await?;
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "update",
            "staff_user",
            Some(user.id),
            serde_json::json!({
                "role": user.role,
                "active": user.active,
                "password_changed": password_changed,
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(user.into()))
    }

    /// The audit log, newest first (admin).
    #[oai(path = "/audit", method = "get")]
    async fn audit(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<AuditEntry>>> {
        auth.0.require(&[Role::Admin])?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let (items, total) =
            store::audit::page(&self.state.db, paging.page, paging.per_page).await?;
        Ok(Json(paging.wrap(
            items.into_iter().map(AuditEntry::from).collect(),
            total,
        )))
    }
}
