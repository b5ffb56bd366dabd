//! Creating staff accounts: shared by the admin API, the `create-staff` command and the
//! first-run bootstrap.

use chrono::Utc;
use entity::staff_user;
use sea_orm::{ConnectionTrait, DbErr};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{
    auth::password,
    domain::{
        FieldError,
        catalogue::Role,
        text::{EmailAddress, PersonName},
    },
    store,
};

/// A validated request for a new account.
pub struct NewStaff {
    pub email: EmailAddress,
    pub name: PersonName,
    pub role: Role,
    pub practitioner_id: Option<Uuid>,
}

/// A checked and hashed password, made before any transaction opens: argon2 takes tens of
/// milliseconds, and SQLite's write lock must not wait on it.
pub struct PreparedPassword {
    hash: String,
    generated: Option<String>,
}

/// Checks the policy and hashes `password`, or generates one (returned once by `create`).
pub async fn prepare_password(
    password: Option<SecretString>,
) -> Result<PreparedPassword, CreateStaffError> {
    if let Some(p) = &password
        && let Err(e) = password::check_policy("password", p.expose_secret())
    {
        return Err(CreateStaffError::Invalid(vec![e]));
    }
    let (secret, generated) = match password {
        Some(p) => (p, None),
        None => {
            let p = password::generate();
            (SecretString::from(p.clone()), Some(p))
        }
    };
    Ok(PreparedPassword {
        hash: password::hash(secret).await?,
        generated,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CreateStaffError {
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("a staff account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] DbErr),
    #[error(transparent)]
    Hashing(#[from] anyhow::Error),
}

/// Creates the account; returns it and the generated password, if one was generated.
pub async fn create(
    conn: &impl ConnectionTrait,
    new: NewStaff,
    password: PreparedPassword,
) -> Result<(staff_user::Model, Option<String>), CreateStaffError> {
    let mut errors = Vec::new();
    match (new.role, new.practitioner_id) {
        (Role::Practitioner, None) => errors.push(FieldError::new(
            "practitioner_id",
            "is required for the practitioner role",
        )),
        (_, Some(pid))
            if store::catalogue::find_practitioner(conn, pid)
                .await?
                .is_none() =>
        {
            errors.push(FieldError::new("practitioner_id", "no such practitioner"));
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err(CreateStaffError::Invalid(errors));
    }
    if store::staff::find_user_by_email(conn, new.email.as_str())
        .await?
        .is_some()
    {
        return Err(CreateStaffError::EmailTaken);
    }
    let now = Utc::now();
    let user = staff_user::Model {
        id: Uuid::new_v4(),
        email: new.email.into_inner(),
        name: new.name.into_inner(),
        role: new.role.as_str().to_string(),
        practitioner_id: new.practitioner_id,
        password_hash: password.hash,
        active: true,
        created_at: now,
        updated_at: now,
    };
    let user = store::staff::insert_user(conn, user).await.map_err(|e| {
        if store::is_unique_violation(&e) {
            CreateStaffError::EmailTaken
        } else {
            CreateStaffError::Database(e)
        }
    })?;
    Ok((user, password.generated))
}
