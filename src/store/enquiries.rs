//! Enquiries, their staff notes, the inbox listing and retention.

use chrono::{DateTime, Utc};
use entity::{enquiry, enquiry_note};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func},
};
use uuid::Uuid;

pub async fn insert(
    conn: &impl ConnectionTrait,
    model: enquiry::Model,
) -> Result<enquiry::Model, DbErr> {
    model.into_active_model().reset_all().insert(conn).await
}

pub async fn update(
    conn: &impl ConnectionTrait,
    model: enquiry::Model,
) -> Result<enquiry::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<enquiry::Model>, DbErr> {
    enquiry::Entity::find_by_id(id).one(conn).await
}

/// An enquiry with the same email and message received since `since` (a double submit).
pub async fn find_duplicate(
    conn: &impl ConnectionTrait,
    email: &str,
    message: &str,
    since: DateTime<Utc>,
) -> Result<Option<enquiry::Model>, DbErr> {
    enquiry::Entity::find()
        .filter(enquiry::Column::Email.eq(email))
        .filter(enquiry::Column::ReceivedAt.gte(since))
        .filter(enquiry::Column::Message.eq(message))
        .order_by_asc(enquiry::Column::ReceivedAt)
        .one(conn)
        .await
}

/// Inbox filters; `q` matches name, email, phone, reference or message, ignoring case.
#[derive(Debug, Default)]
pub struct InboxFilter {
    pub status: Option<String>,
    pub topic: Option<String>,
    pub q: Option<String>,
}

/// One page of the inbox, newest first, and the total.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: &InboxFilter,
    page: u64,
    per_page: u64,
) -> Result<(Vec<enquiry::Model>, u64), DbErr> {
    let mut query = enquiry::Entity::find();
    if let Some(status) = &filter.status {
        query = query.filter(enquiry::Column::Status.eq(status.as_str()));
    }
    if let Some(topic) = &filter.topic {
        query = query.filter(enquiry::Column::Topic.eq(topic.as_str()));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let escaped = super::escape_like(&q.to_lowercase());
        let pattern = format!("%{escaped}%");
        let mut any = Condition::any();
        for col in [
            enquiry::Column::Name,
            enquiry::Column::Email,
            enquiry::Column::Phone,
            enquiry::Column::Reference,
            enquiry::Column::Message,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(col)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
            );
        }
        query = query.filter(any);
    }
    let total = query.clone().count(conn).await?;
    let offset = super::page_offset(page, per_page);
    let items = query
        .order_by_desc(enquiry::Column::ReceivedAt)
        .order_by_desc(enquiry::Column::Id)
        .offset(offset)
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}

pub async fn add_note(
    conn: &impl ConnectionTrait,
    enquiry_id: Uuid,
    author_id: Uuid,
    author_name: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    enquiry_note::ActiveModel {
        id: Set(Uuid::new_v4()),
        enquiry_id: Set(enquiry_id),
        author_id: Set(Some(author_id)),
        author_name: Set(author_name.to_string()),
        at: Set(at),
        text: Set(text.to_string()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

pub async fn notes(
    conn: &impl ConnectionTrait,
    enquiry_id: Uuid,
) -> Result<Vec<enquiry_note::Model>, DbErr> {
    enquiry_note::Entity::find()
        .filter(enquiry_note::Column::EnquiryId.eq(enquiry_id))
        .order_by_asc(enquiry_note::Column::At)
        .all(conn)
        .await
}
