//! The waitlist tables: entries, offers (and the practitioner time their open one-to-one offers
//! hold), and the freed places waiting out the grace period. Guarded updates (`… WHERE status
//! = 'open'`) make every change of state happen once, whichever instance tries.

use chrono::{DateTime, Duration, Utc};
use entity::{
    class_session, practitioner_hold, practitioner_service, service, waitlist_entry,
    waitlist_offer,
    waitlist_opening::{self, Column as OpeningColumn},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::domain::waitlist::{EntryStatus, OfferStatus};

/// `kind` of an opening.
pub const OPENING_CLASS: &str = "class";
pub const OPENING_SLOT: &str = "slot";

pub async fn insert_entry(
    conn: &impl ConnectionTrait,
    row: waitlist_entry::Model,
) -> Result<waitlist_entry::Model, DbErr> {
    row.into_active_model().insert(conn).await
}

pub async fn find_entry(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<waitlist_entry::Model>, DbErr> {
    waitlist_entry::Entity::find_by_id(id).one(conn).await
}

pub async fn find_entry_by_token_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<waitlist_entry::Model>, DbErr> {
    waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::ManageTokenHash.eq(hash))
        .one(conn)
        .await
}

/// Moves an entry from one of `from` to `to`; false when it was in none of them (another
/// worker or request changed it first). An ending status stamps `ended_at`.
pub async fn set_entry_status(
    conn: &impl ConnectionTrait,
    id: Uuid,
    from: &[EntryStatus],
    to: EntryStatus,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let ended = (!to.is_active()).then_some(now);
    let result = waitlist_entry::Entity::update_many()
        .col_expr(waitlist_entry::Column::Status, Expr::value(to.as_str()))
        .col_expr(waitlist_entry::Column::UpdatedAt, Expr::value(now))
        .col_expr(waitlist_entry::Column::EndedAt, Expr::value(ended))
        .filter(waitlist_entry::Column::Id.eq(id))
        .filter(waitlist_entry::Column::Status.is_in(from.iter().map(|s| s.as_str())))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn set_urgent(
    conn: &impl ConnectionTrait,
    id: Uuid,
    urgent: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    waitlist_entry::Entity::update_many()
        .col_expr(waitlist_entry::Column::Urgent, Expr::value(urgent))
        .col_expr(waitlist_entry::Column::UpdatedAt, Expr::value(now))
        .filter(waitlist_entry::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Waiting one-to-one entries that could want time of `practitioner_id` on local dates
/// [first, last] (YYYY-MM-DD): for a service the practitioner offers, with that practitioner
/// or anyone, whose dates meet the span.
pub async fn waiting_for_practitioner(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
    first: &str,
    last: &str,
) -> Result<Vec<waitlist_entry::Model>, DbErr> {
    let offered = Query::select()
        .column(practitioner_service::Column::ServiceId)
        .from(practitioner_service::Entity)
        .and_where(practitioner_service::Column::PractitionerId.eq(practitioner_id))
        .to_owned();
    waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::Status.eq(EntryStatus::Waiting.as_str()))
        .filter(waitlist_entry::Column::ServiceId.in_subquery(offered))
        .filter(
            Condition::any()
                .add(waitlist_entry::Column::PractitionerId.is_null())
                .add(waitlist_entry::Column::PractitionerId.eq(practitioner_id)),
        )
        .filter(waitlist_entry::Column::FromDate.lte(last))
        .filter(waitlist_entry::Column::ToDate.gte(first))
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .all(conn)
        .await
}

/// Waiting entries for a class session.
pub async fn waiting_for_session(
    conn: &impl ConnectionTrait,
    class_session_id: Uuid,
) -> Result<Vec<waitlist_entry::Model>, DbErr> {
    waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::Status.eq(EntryStatus::Waiting.as_str()))
        .filter(waitlist_entry::Column::ClassSessionId.eq(class_session_id))
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .all(conn)
        .await
}

/// Waiting or offered entries for a class session.
pub async fn waiting_or_offered_for_session(
    conn: &impl ConnectionTrait,
    class_session_id: Uuid,
) -> Result<Vec<waitlist_entry::Model>, DbErr> {
    waitlist_entry::Entity::find()
        .filter(
            waitlist_entry::Column::Status
                .is_in([EntryStatus::Waiting.as_str(), EntryStatus::Offered.as_str()]),
        )
        .filter(waitlist_entry::Column::ClassSessionId.eq(class_session_id))
        .all(conn)
        .await
}

/// Every offer ever made to these entries (to pass a place on, never back).
pub async fn offers_to(
    conn: &impl ConnectionTrait,
    entry_ids: &[Uuid],
) -> Result<Vec<waitlist_offer::Model>, DbErr> {
    if entry_ids.is_empty() {
        return Ok(Vec::new());
    }
    waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::EntryId.is_in(entry_ids.iter().copied()))
        .all(conn)
        .await
}

/// Services offered online, by id, for the names and rules of the places the worker offers.
pub async fn services(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<service::Model>, DbErr> {
    service::Entity::find()
        .filter(service::Column::Id.is_in(ids.iter().copied()))
        .filter(service::Column::Active.eq(true))
        .filter(service::Column::OnlineBookable.eq(true))
        .all(conn)
        .await
}

pub async fn insert_offer(
    conn: &impl ConnectionTrait,
    row: waitlist_offer::Model,
) -> Result<waitlist_offer::Model, DbErr> {
    row.into_active_model().insert(conn).await
}

pub async fn find_offer_by_token_hash(
    conn: &impl ConnectionTrait,
    hash: &str,
) -> Result<Option<waitlist_offer::Model>, DbErr> {
    waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::OfferTokenHash.eq(hash))
        .one(conn)
        .await
}

/// The open offer an entry holds, if any.
pub async fn open_offer_of(
    conn: &impl ConnectionTrait,
    entry_id: Uuid,
) -> Result<Option<waitlist_offer::Model>, DbErr> {
    waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::EntryId.eq(entry_id))
        .filter(waitlist_offer::Column::Status.eq(OfferStatus::Open.as_str()))
        .one(conn)
        .await
}

/// Closes an open offer as `to` and releases what it held (its `practitioner_holds` row, or
/// its session's held place); false when it was no longer open (claimed, declined, expired or
/// withdrawn first, by another request or worker). `still_valid_at` also requires the hold
/// not to have ended by then (a claim or decline).
pub async fn close_offer(
    conn: &impl ConnectionTrait,
    offer: &waitlist_offer::Model,
    to: OfferStatus,
    now: DateTime<Utc>,
    still_valid_at: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    let mut update = waitlist_offer::Entity::update_many()
        .col_expr(waitlist_offer::Column::Status, Expr::value(to.as_str()))
        .col_expr(waitlist_offer::Column::DecidedAt, Expr::value(Some(now)))
        .filter(waitlist_offer::Column::Id.eq(offer.id))
        .filter(waitlist_offer::Column::Status.eq(OfferStatus::Open.as_str()));
    if let Some(at) = still_valid_at {
        update = update.filter(waitlist_offer::Column::ExpiresAt.gt(at));
    }
    if update.exec(conn).await?.rows_affected != 1 {
        return Ok(false);
    }
    practitioner_hold::Entity::delete_many()
        .filter(practitioner_hold::Column::OfferId.eq(offer.id))
        .exec(conn)
        .await?;
    if let Some(session_id) = offer.class_session_id {
        use class_session::Column as C;
        class_session::Entity::update_many()
            .col_expr(C::SeatsHeld, Expr::col(C::SeatsHeld).sub(1))
            .col_expr(C::UpdatedAt, Expr::value(now))
            .filter(C::Id.eq(session_id))
            .filter(C::SeatsHeld.gt(0))
            .exec(conn)
            .await?;
    }
    Ok(true)
}

/// Holds one free place of a scheduled session for an offer: one guarded statement, like
/// taking a seat, so a held place is never one that is taken. False when none is free.
pub async fn hold_seat(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use class_session::Column as C;
    let result = class_session::Entity::update_many()
        .col_expr(C::SeatsHeld, Expr::col(C::SeatsHeld).add(1))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::Id.eq(session_id))
        .filter(C::Status.eq("scheduled"))
        .filter(
            Expr::col(C::SeatsTaken)
                .add(Expr::col(C::SeatsHeld))
                .lt(Expr::col(C::Capacity)),
        )
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Open seat offers of a session (it was cancelled: they are withdrawn).
pub async fn open_offers_of_session(
    conn: &impl ConnectionTrait,
    session_id: Uuid,
) -> Result<Vec<waitlist_offer::Model>, DbErr> {
    waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::Status.eq(OfferStatus::Open.as_str()))
        .filter(waitlist_offer::Column::ClassSessionId.eq(session_id))
        .all(conn)
        .await
}

/// Up to `limit` open offers whose hold has ended at `now`, oldest deadline first. On
/// PostgreSQL the rows stay locked by the caller's transaction and others skip them.
pub async fn lock_expired_offers(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<waitlist_offer::Model>, DbErr> {
    let query = waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::Status.eq(OfferStatus::Open.as_str()))
        .filter(waitlist_offer::Column::ExpiresAt.lte(now))
        .order_by_asc(waitlist_offer::Column::ExpiresAt)
        .limit(limit);
    match conn.get_database_backend() {
        DbBackend::Postgres => query.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        ),
        _ => query,
    }
    .all(conn)
    .await
}

/// Open one-to-one offers of a practitioner whose held time overlaps [from, until).
pub async fn open_offers_overlapping(
    conn: &impl ConnectionTrait,
    practitioner_id: Option<Uuid>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<waitlist_offer::Model>, DbErr> {
    let mut query = waitlist_offer::Entity::find()
        .filter(waitlist_offer::Column::Status.eq(OfferStatus::Open.as_str()))
        .filter(waitlist_offer::Column::BlockedFrom.lt(until))
        .filter(waitlist_offer::Column::BlockedUntil.gt(from));
    if let Some(id) = practitioner_id {
        query = query.filter(waitlist_offer::Column::PractitionerId.eq(id));
    }
    query.all(conn).await
}

/// Holds the practitioner time of an open one-to-one offer: a `practitioner_holds` row of
/// kind `offer`, so slot search and every booking read it as taken, and the database refuses
/// an overlapping hold or appointment (`practitioner_holds_no_overlap`).
pub async fn insert_hold(
    conn: &impl ConnectionTrait,
    offer: &waitlist_offer::Model,
) -> Result<(), DbErr> {
    let (Some(practitioner_id), Some(from), Some(until)) = (
        offer.practitioner_id,
        offer.blocked_from,
        offer.blocked_until,
    ) else {
        return Ok(());
    };
    practitioner_hold::Entity::insert(practitioner_hold::ActiveModel {
        practitioner_id: Set(practitioner_id),
        blocked_from: Set(from),
        blocked_until: Set(until),
        kind: Set("offer".to_string()),
        appointment_id: Set(None),
        class_session_id: Set(None),
        offer_id: Set(Some(offer.id)),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Writes a freed place; it becomes due at its `due_at`, or (when `None`) once the grace
/// period after `freed_at` has passed.
pub async fn insert_opening(
    conn: &impl ConnectionTrait,
    row: waitlist_opening::Model,
) -> Result<(), DbErr> {
    waitlist_opening::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await
        .map(|_| ())
}

/// Up to `limit` openings due at `now` (`grace` after they were freed, or their own due
/// time), oldest first, taken out of the table inside the caller's transaction: they are
/// processed exactly once if it commits and are back if it does not. On PostgreSQL other
/// workers skip the rows this transaction holds (`FOR UPDATE SKIP LOCKED`), like the outbox.
pub async fn take_due_openings(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    grace: Duration,
    limit: u64,
) -> Result<Vec<waitlist_opening::Model>, DbErr> {
    let due = Condition::any()
        .add(
            Condition::all()
                .add(OpeningColumn::DueAt.is_null())
                .add(OpeningColumn::FreedAt.lte(now - grace)),
        )
        .add(OpeningColumn::DueAt.lte(now));
    let query = waitlist_opening::Entity::find()
        .filter(due)
        .order_by_asc(OpeningColumn::FreedAt)
        .order_by_asc(OpeningColumn::Id)
        .limit(limit);
    let rows = match conn.get_database_backend() {
        DbBackend::Postgres => query.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        ),
        _ => query,
    }
    .all(conn)
    .await?;
    if !rows.is_empty() {
        waitlist_opening::Entity::delete_many()
            .filter(OpeningColumn::Id.is_in(rows.iter().map(|r| r.id)))
            .exec(conn)
            .await?;
    }
    Ok(rows)
}

/// Up to `limit` waiting entries whose window has passed: a last date before `today`
/// (YYYY-MM-DD), or a class session that has started by `now`. (An offered entry ends with
/// its offer.)
pub async fn entries_past(
    conn: &impl ConnectionTrait,
    today: &str,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, DbErr> {
    let started = Query::select()
        .column(class_session::Column::Id)
        .from(class_session::Entity)
        .and_where(class_session::Column::StartsAt.lte(now))
        .to_owned();
    waitlist_entry::Entity::find()
        .select_only()
        .column(waitlist_entry::Column::Id)
        .filter(waitlist_entry::Column::Status.eq(EntryStatus::Waiting.as_str()))
        .filter(
            Condition::any()
                .add(waitlist_entry::Column::ToDate.lt(today))
                .add(waitlist_entry::Column::ClassSessionId.in_subquery(started)),
        )
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// A page of the entries matching `filter` (the caller's scope and query), urgent first, then
/// the oldest.
pub async fn page(
    conn: &impl ConnectionTrait,
    filter: Condition,
    offset: u64,
    limit: u64,
) -> Result<(Vec<waitlist_entry::Model>, u64), DbErr> {
    let query = waitlist_entry::Entity::find().filter(filter);
    let total = query.clone().count(conn).await?;
    let items = query
        .order_by_desc(waitlist_entry::Column::Urgent)
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .order_by_asc(waitlist_entry::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(conn)
        .await?;
    Ok((items, total))
}

/// A patient's entries, oldest first.
pub async fn entries_of_patient(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
) -> Result<Vec<waitlist_entry::Model>, DbErr> {
    waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::PatientId.eq(patient_id))
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .all(conn)
        .await
}

/// Disables every link of a patient's entries and offers (erasure): token hashes go.
pub async fn forget_tokens_of_patient(
    conn: &impl ConnectionTrait,
    entry_ids: &[Uuid],
) -> Result<(), DbErr> {
    if entry_ids.is_empty() {
        return Ok(());
    }
    waitlist_entry::Entity::update_many()
        .col_expr(
            waitlist_entry::Column::ManageTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(waitlist_entry::Column::Id.is_in(entry_ids.iter().copied()))
        .exec(conn)
        .await?;
    waitlist_offer::Entity::update_many()
        .col_expr(
            waitlist_offer::Column::OfferTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(waitlist_offer::Column::EntryId.is_in(entry_ids.iter().copied()))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Deletes up to `limit` entries that ended before `before`, with their offers (the foreign
/// key cascades; deleted here too so SQLite needs no pragma for it). Returns how many.
pub async fn purge_ended(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let ids: Vec<Uuid> = waitlist_entry::Entity::find()
        .select_only()
        .column(waitlist_entry::Column::Id)
        .filter(waitlist_entry::Column::EndedAt.lt(before))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    waitlist_offer::Entity::delete_many()
        .filter(waitlist_offer::Column::EntryId.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(waitlist_entry::Entity::delete_many()
        .filter(waitlist_entry::Column::Id.is_in(ids))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes up to `limit` offers (of entries still kept) decided before `before`.
pub async fn purge_decided_offers(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    super::delete_batch::<waitlist_offer::Entity>(
        conn,
        waitlist_offer::Column::Id,
        Condition::all()
            .add(waitlist_offer::Column::Status.ne(OfferStatus::Open.as_str()))
            .add(waitlist_offer::Column::DecidedAt.lt(before)),
        limit,
    )
    .await
}

/// The services a practitioner offers, for their read of the waitlist.
pub async fn services_of_practitioner(
    conn: &impl ConnectionTrait,
    practitioner_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    practitioner_service::Entity::find()
        .select_only()
        .column(practitioner_service::Column::ServiceId)
        .filter(practitioner_service::Column::PractitionerId.eq(practitioner_id))
        .into_tuple()
        .all(conn)
        .await
}
