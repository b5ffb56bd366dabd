//! The secret tokens of practitioners' calendar feeds, kept only as SHA-256 hashes.

use entity::practitioner;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

/// The practitioner whose feed token hashes to `token_hash`.
pub async fn practitioner_by_token_hash(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<practitioner::Model>, DbErr> {
    practitioner::Entity::find()
        .filter(practitioner::Column::FeedTokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// Gives a practitioner who has no feed yet this token hash. `false` when they already had
/// one (perhaps set a moment ago by a concurrent request), which stays as it is.
pub async fn create_token(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    token_hash: &str,
) -> Result<bool, DbErr> {
    let result = practitioner::Entity::update_many()
        .col_expr(practitioner::Column::FeedTokenHash, Expr::value(token_hash))
        .filter(practitioner::Column::Id.eq(practitioner_id))
        .filter(practitioner::Column::FeedTokenHash.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Replaces a practitioner's feed token hash, so the previous URL stops working at once.
pub async fn replace_token(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    token_hash: &str,
) -> Result<bool, DbErr> {
    let result = practitioner::Entity::update_many()
        .col_expr(practitioner::Column::FeedTokenHash, Expr::value(token_hash))
        .filter(practitioner::Column::Id.eq(practitioner_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
