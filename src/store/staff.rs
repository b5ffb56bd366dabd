//! Staff accounts and login sessions.

use chrono::{DateTime, Utc};
use entity::{staff_session, staff_user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use uuid::Uuid;

pub async fn count_users(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    staff_user::Entity::find().count(conn).await
}

pub async fn list_users(conn: &impl ConnectionTrait) -> Result<Vec<staff_user::Model>, DbErr> {
    staff_user::Entity::find()
        .order_by_asc(staff_user::Column::Name)
        .all(conn)
        .await
}

pub async fn find_user(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<staff_user::Model>, DbErr> {
    staff_user::Entity::find_by_id(id).one(conn).await
}

pub async fn find_user_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<staff_user::Model>, DbErr> {
    staff_user::Entity::find()
        .filter(staff_user::Column::Email.eq(email))
        .one(conn)
        .await
}

pub async fn insert_user(
    conn: &impl ConnectionTrait,
    model: staff_user::Model,
) -> Result<staff_user::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn update_user(
    conn: &impl ConnectionTrait,
    model: staff_user::Model,
) -> Result<staff_user::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

pub async fn insert_session(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    token_hash: String,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    staff_session::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        token_hash: Set(token_hash),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The active user behind a live (unexpired, unrevoked) session token hash.
pub async fn user_for_session(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<staff_user::Model>, DbErr> {
    let Some(session) = staff_session::Entity::find()
        .filter(staff_session::Column::TokenHash.eq(token_hash))
        .filter(staff_session::Column::RevokedAt.is_null())
        .filter(staff_session::Column::ExpiresAt.gt(now))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(find_user(conn, session.user_id).await?.filter(|u| u.active))
}

pub async fn revoke_session(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    staff_session::Entity::update_many()
        .col_expr(staff_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(staff_session::Column::TokenHash.eq(token_hash))
        .filter(staff_session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes every session of a user at once (deactivation, password change).
pub async fn revoke_all_sessions(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    staff_session::Entity::update_many()
        .col_expr(staff_session::Column::RevokedAt, Expr::value(Some(now)))
        .filter(staff_session::Column::UserId.eq(user_id))
        .filter(staff_session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}
