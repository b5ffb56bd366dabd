//! Courses of treatment: the series row and the appointments booked in it.

use entity::{appointment, series};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

pub async fn insert(
    conn: &impl ConnectionTrait,
    model: series::Model,
) -> Result<series::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<series::Model>, DbErr> {
    series::Entity::find_by_id(id).one(conn).await
}

pub async fn update(
    conn: &impl ConnectionTrait,
    model: series::Model,
) -> Result<series::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

/// Every appointment of the series, in order of start.
pub async fn appointments(
    conn: &impl ConnectionTrait,
    series_id: Uuid,
) -> Result<Vec<appointment::Model>, DbErr> {
    appointment::Entity::find()
        .filter(appointment::Column::SeriesId.eq(series_id))
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::Id)
        .all(conn)
        .await
}
