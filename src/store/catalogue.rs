//! Services, practitioners and the links between them.

use std::collections::HashMap;

use entity::{practitioner, practitioner_service, service};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Set,
};
use uuid::Uuid;

/// Services, in display order (category, then name). `public` keeps only active,
/// online-bookable ones.
pub async fn list_services(
    conn: &impl ConnectionTrait,
    public: bool,
) -> Result<Vec<service::Model>, DbErr> {
    let mut query = service::Entity::find()
        .order_by_asc(service::Column::Category)
        .order_by_asc(service::Column::Name);
    if public {
        query = query
            .filter(service::Column::Active.eq(true))
            .filter(service::Column::OnlineBookable.eq(true));
    }
    query.all(conn).await
}

pub async fn find_service(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<service::Model>, DbErr> {
    service::Entity::find_by_id(id).one(conn).await
}

/// A service that patients may see and book online.
pub async fn find_public_service(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<service::Model>, DbErr> {
    Ok(find_service(conn, id)
        .await?
        .filter(|s| s.active && s.online_bookable))
}

pub async fn insert_service(
    conn: &impl ConnectionTrait,
    model: service::Model,
) -> Result<service::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn update_service(
    conn: &impl ConnectionTrait,
    model: service::Model,
) -> Result<service::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

/// Practitioners ordered by name. `public` keeps only active, online-bookable ones.
pub async fn list_practitioners(
    conn: &impl ConnectionTrait,
    public: bool,
) -> Result<Vec<practitioner::Model>, DbErr> {
    let mut query = practitioner::Entity::find().order_by_asc(practitioner::Column::Name);
    if public {
        query = query
            .filter(practitioner::Column::Active.eq(true))
            .filter(practitioner::Column::OnlineBookable.eq(true));
    }
    query.all(conn).await
}

pub async fn find_practitioner(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<practitioner::Model>, DbErr> {
    practitioner::Entity::find_by_id(id).one(conn).await
}

pub async fn find_public_practitioner(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<practitioner::Model>, DbErr> {
    Ok(find_practitioner(conn, id)
        .await?
        .filter(|p| p.active && p.online_bookable))
}

pub async fn insert_practitioner(
    conn: &impl ConnectionTrait,
    model: practitioner::Model,
) -> Result<practitioner::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

/// Writes every column but the feed token, which only `store::feeds` changes: an edit that
/// read the row before a rotation must not put the old token back.
pub async fn update_practitioner(
    conn: &impl ConnectionTrait,
    model: practitioner::Model,
) -> Result<practitioner::Model, DbErr> {
    let mut active = model.into_active_model().reset_all();
    active.feed_token_hash = sea_orm::ActiveValue::NotSet;
    active.update(conn).await
}

/// Ids of the active, online-bookable practitioners offering `service_id`, in id order.
pub async fn public_practitioner_ids_for(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    public_practitioners_for_query(service_id)
        .select_only()
        .column(practitioner::Column::Id)
        .into_tuple()
        .all(conn)
        .await
}

/// The active, online-bookable practitioners offering `service_id`, by id.
pub fn public_practitioners_for_query(service_id: Uuid) -> Select<practitioner::Entity> {
    let offering = sea_orm::sea_query::Query::select()
        .column(practitioner_service::Column::PractitionerId)
        .from(practitioner_service::Entity)
        .and_where(practitioner_service::Column::ServiceId.eq(service_id))
        .to_owned();
    practitioner::Entity::find()
        .filter(practitioner::Column::Active.eq(true))
        .filter(practitioner::Column::OnlineBookable.eq(true))
        .filter(practitioner::Column::Id.in_subquery(offering))
        .order_by_asc(practitioner::Column::Id)
}

/// What an online booking decides on first, in one round trip on SQLite: the service (kept
/// only if it is public) and the public practitioners offering it, by id.
pub async fn public_service_and_practitioners(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
) -> Result<(Option<service::Model>, Vec<practitioner::Model>), DbErr> {
    let rows = super::batch::select_all(conn, public_service_queries(service_id)).await?;
    public_service_from_rows(rows)
}

/// The reads of [`public_service_and_practitioners`], for a caller that sends more with them.
pub fn public_service_queries(service_id: Uuid) -> Vec<sea_orm::sea_query::SelectStatement> {
    vec![
        service::Entity::find_by_id(service_id).into_query(),
        public_practitioners_for_query(service_id).into_query(),
    ]
}

/// [`public_service_and_practitioners`] from the rows of [`public_service_queries`] (the first
/// two of `rows`).
pub fn public_service_from_rows(
    rows: Vec<super::batch::Rows>,
) -> Result<(Option<service::Model>, Vec<practitioner::Model>), DbErr> {
    let mut rows = rows.into_iter();
    let service = rows
        .next()
        .unwrap_or_default()
        .first::<service::Model>()?
        .filter(|s| s.active && s.online_bookable);
    let practitioners = rows.next().unwrap_or_default().decode()?;
    Ok((service, practitioners))
}

/// All (practitioner, service) links.
pub async fn links(conn: &impl ConnectionTrait) -> Result<Vec<practitioner_service::Model>, DbErr> {
    practitioner_service::Entity::find()
        .order_by_asc(practitioner_service::Column::PractitionerId)
        .order_by_asc(practitioner_service::Column::ServiceId)
        .all(conn)
        .await
}

/// Service id → ids of the practitioners offering it.
pub fn practitioners_by_service(links: &[practitioner_service::Model]) -> HashMap<Uuid, Vec<Uuid>> {
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for link in links {
        map.entry(link.service_id)
            .or_default()
            .push(link.practitioner_id);
    }
    map
}

/// Practitioner id → ids of the services they offer.
pub fn services_by_practitioner(links: &[practitioner_service::Model]) -> HashMap<Uuid, Vec<Uuid>> {
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for link in links {
        map.entry(link.practitioner_id)
            .or_default()
            .push(link.service_id);
    }
    map
}

/// Makes `practitioner_ids` exactly the set of practitioners offering `service_id`.
pub async fn set_service_practitioners(
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    practitioner_ids: &[Uuid],
) -> Result<(), DbErr> {
    practitioner_service::Entity::delete_many()
        .filter(practitioner_service::Column::ServiceId.eq(service_id))
        .exec(conn)
        .await?;
    insert_links(
        conn,
        practitioner_ids.iter().map(|&p| (p, service_id)).collect(),
    )
    .await
}

/// Makes `service_ids` exactly the set of services `practitioner_id` offers.
pub async fn set_practitioner_services(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    service_ids: &[Uuid],
) -> Result<(), DbErr> {
    practitioner_service::Entity::delete_many()
        .filter(practitioner_service::Column::PractitionerId.eq(practitioner_id))
        .exec(conn)
        .await?;
    insert_links(
        conn,
        service_ids.iter().map(|&s| (practitioner_id, s)).collect(),
    )
    .await
}

async fn insert_links(conn: &impl ConnectionTrait, pairs: Vec<(Uuid, Uuid)>) -> Result<(), DbErr> {
    if pairs.is_empty() {
        return Ok(());
    }
    let rows =
        pairs.into_iter().map(
            |(practitioner_id, service_id)| practitioner_service::ActiveModel {
                practitioner_id: Set(practitioner_id),
                service_id: Set(service_id),
            },
        );
    practitioner_service::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Which of `ids` exist in the services table (for validating references).
pub async fn existing_service_ids(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    Ok(service::Entity::find()
        .filter(service::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect())
}

/// Which of `ids` exist in the practitioners table.
pub async fn existing_practitioner_ids(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    Ok(practitioner::Entity::find()
        .filter(practitioner::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}
