//! Offers: finding the entry a freed place goes to and holding the place for it (the
//! worker), and the patient's claim and decline, the worker's expiry and the clinic's
//! withdrawal. Every change of an offer is one guarded UPDATE (`… AND status = 'open'`), so
//! it happens once whichever request or instance tries; the partial unique indexes on open
//! offers are the database's word on one open offer per entry and per place.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{practitioner, service, waitlist_entry, waitlist_offer, waitlist_opening};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::{
    auth::token,
    booking::{self, Booked, ClaimedSlot, Context, ManageToken, placement},
    classes::{self, SeatBooked},
    domain::{
        availability::{self, SlotQuery},
        localtime, policy,
        waitlist::{
            self as rules, EntryStatus, OfferStatus, Place, PlaceKey, SlotWish, Waiting, Want,
        },
    },
    email::{Recipient, waitlist::HeldPlace},
    state::AppState,
    store,
    webhooks::{self, EventType},
};

use super::{Opening, WaitlistError, pass_on};

/// Offers one opening may make at most (a freed morning can hold several slots).
const OFFERS_PER_OPENING: usize = 8;

/// An offer with the names it is shown with.
#[derive(Debug, Clone)]
pub struct OfferDetails {
    pub offer: waitlist_offer::Model,
    pub service: Option<service::Model>,
    pub practitioner: Option<practitioner::Model>,
    /// The session of a seat offer.
    pub class: Option<classes::SessionDetails>,
}

/// What a claim placed: a one-to-one booking or a class seat.
#[derive(Debug, Clone)]
pub enum ClaimedPlace {
    Booking(Booked),
    Seat(SeatBooked),
}

/// A claimed offer and what it placed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub offer: waitlist_offer::Model,
    pub placed: ClaimedPlace,
}

/// The offer an offer token opens, if any.
pub async fn find_by_token(
    conn: &impl ConnectionTrait,
    token_value: &str,
) -> Result<Option<OfferDetails>, DbErr> {
    let Some(offer) =
        store::waitlist::find_offer_by_token_hash(conn, &token::hash(token_value)).await?
    else {
        return Ok(None);
    };
    details(conn, offer).await.map(Some)
}

async fn details(
    conn: &impl ConnectionTrait,
    offer: waitlist_offer::Model,
) -> Result<OfferDetails, DbErr> {
    let service = match offer.service_id {
        Some(id) => store::catalogue::find_service(conn, id).await?,
        None => None,
    };
    let practitioner = match offer.practitioner_id {
        Some(id) => store::catalogue::find_practitioner(conn, id).await?,
        None => None,
    };
    let class = match offer.class_session_id {
        Some(id) => match store::classes::find_session(conn, id).await? {
            Some(session) => Some(classes::session_details(conn, session).await?),
            None => None,
        },
        None => None,
    };
    Ok(OfferDetails {
        offer,
        service,
        practitioner,
        class,
    })
}

/// Claims an offer: the offer closes (and its hold with it) and the place is booked for the
/// entry's patient in the same transaction — a slot by the rulebook without the
/// minimum-notice rule, a seat through the classes code. A refused booking leaves the offer
/// open.
pub async fn claim(state: &AppState, token_value: &str) -> Result<Claimed, WaitlistError> {
    let now = Utc::now();
    let hash = token::hash(token_value);
    let booking_token = ManageToken::generate();
    let txn = state.writer.begin().await?;
    let offer = store::waitlist::find_offer_by_token_hash(&*txn, &hash)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    if !store::waitlist::close_offer(&*txn, &offer, OfferStatus::Claimed, now, Some(now)).await? {
        return Err(WaitlistError::OfferClosed);
    }
    store::waitlist::set_entry_status(
        &*txn,
        offer.entry_id,
        &[EntryStatus::Offered],
        EntryStatus::Claimed,
        now,
    )
    .await?;
    let entry = store::waitlist::find_entry(&*txn, offer.entry_id)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    let placed = match (
        offer.class_session_id,
        offer.service_id,
        offer.practitioner_id,
        offer.starts_at,
    ) {
        (Some(session_id), ..) => ClaimedPlace::Seat(
            classes::write_claimed_seat(&txn, state, session_id, entry.patient_id, now).await?,
        ),
        (None, Some(service_id), Some(practitioner_id), Some(start)) => ClaimedPlace::Booking(
            booking::write_claimed_slot(
                &txn,
                Context::of(state),
                &ClaimedSlot {
                    service_id,
                    practitioner_id,
                    start,
                    patient_id: entry.patient_id,
                },
                booking_token,
                now,
            )
            .await?,
        ),
        _ => return Err(WaitlistError::OfferClosed),
    };
    webhooks::emit(
        &*txn,
        now,
        EventType::WaitlistClaimed,
        event_data(&offer, "claimed"),
    )
    .await?;
    txn.commit().await.map_err(|e| {
        if store::is_overlap_violation(&e) {
            WaitlistError::Booking(booking::BookingError::SlotUnavailable)
        } else {
            WaitlistError::Database(e)
        }
    })?;
    let offer = waitlist_offer::Model {
        status: OfferStatus::Claimed.as_str().to_string(),
        decided_at: Some(now),
        ..offer
    };
    Ok(Claimed { offer, placed })
}

/// Declines an offer: the place passes to the next entry at the worker's next step and the
/// entry waits again for other places. Declining again answers the same.
pub async fn decline(state: &AppState, token_value: &str) -> Result<OfferDetails, WaitlistError> {
    let now = Utc::now();
    let hash = token::hash(token_value);
    let txn = state.writer.begin().await?;
    let offer = store::waitlist::find_offer_by_token_hash(&*txn, &hash)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    if offer.status != OfferStatus::Declined.as_str()
        && !close_and_pass_on(&txn, &offer, OfferStatus::Declined, now, Some(now)).await?
    {
        return Err(WaitlistError::OfferClosed);
    }
    let offer = store::waitlist::find_offer_by_token_hash(&*txn, &hash)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    let shown = details(&*txn, offer).await?;
    txn.commit().await?;
    Ok(shown)
}

/// Closes an open offer as `to` and passes its place on (due at once); the entry waits
/// again. False when the offer was no longer open (or, with `valid_at`, its hold had ended).
pub(crate) async fn close_and_pass_on(
    txn: &DatabaseTransaction,
    offer: &waitlist_offer::Model,
    to: OfferStatus,
    now: DateTime<Utc>,
    valid_at: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    if !store::waitlist::close_offer(txn, offer, to, now, valid_at).await? {
        return Ok(false);
    }
    store::waitlist::set_entry_status(
        txn,
        offer.entry_id,
        &[EntryStatus::Offered],
        EntryStatus::Waiting,
        now,
    )
    .await?;
    if let Some(opening) = place_of(offer) {
        pass_on(txn, opening, now).await?;
    }
    Ok(true)
}

/// The freed place an offer held.
fn place_of(offer: &waitlist_offer::Model) -> Option<Opening> {
    if let Some(id) = offer.class_session_id {
        return Some(Opening::Class(id));
    }
    Some(Opening::Slot {
        practitioner_id: offer.practitioner_id?,
        from: offer.blocked_from?,
        until: offer.blocked_until?,
    })
}

/// Expires the offers whose hold ended by `now`: each passes its place on and its patient
/// is told. Returns how many expired.
pub(crate) async fn expire_due(state: &AppState, now: DateTime<Utc>) -> Result<usize, DbErr> {
    const BATCH: u64 = 20;
    let mut expired = 0;
    loop {
        let txn = state.writer.begin().await?;
        let due = store::waitlist::lock_expired_offers(&*txn, now, BATCH).await?;
        for offer in &due {
            if close_and_pass_on(&txn, offer, OfferStatus::Expired, now, None).await? {
                let shown = details(&*txn, offer.clone()).await?;
                if let Some(to) = recipient_of(&*txn, offer.entry_id).await? {
                    crate::email::waitlist::offer_expired(
                        &*txn,
                        &state.settings,
                        state.tz,
                        &to,
                        &held_place(&shown),
                        offer.expires_at,
                    )
                    .await?;
                }
                expired += 1;
            }
        }
        txn.commit().await?;
        if (due.len() as u64) < BATCH {
            return Ok(expired);
        }
    }
}

/// Withdraws the open one-to-one offers holding time of `practitioner_id` (or of anyone,
/// for a closure) inside [from, until): the time is no longer the clinic's to offer. Their
/// entries wait again, and each patient is told. Pass the transaction that takes the time
/// away.
pub async fn withdraw_inside(
    conn: &impl ConnectionTrait,
    ctx: Context<'_>,
    practitioner_id: Option<Uuid>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut withdrawn = Vec::new();
    for offer in
        store::waitlist::open_offers_overlapping(conn, practitioner_id, from, until).await?
    {
        if store::waitlist::close_offer(conn, &offer, OfferStatus::Withdrawn, now, None).await? {
            store::waitlist::set_entry_status(
                conn,
                offer.entry_id,
                &[EntryStatus::Offered],
                EntryStatus::Waiting,
                now,
            )
            .await?;
            tell_withdrawn(conn, ctx, &offer, true).await?;
            withdrawn.push(offer.id);
        }
    }
    Ok(withdrawn)
}

/// Makes the offers a due opening calls for, inside `txn`: while the freed time holds a free
/// place that a waiting entry wants, the first such entry in queue order is offered it.
/// Returns the offers made.
pub(crate) async fn offer_opening(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    opening: &waitlist_opening::Model,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    match (
        opening.class_session_id,
        opening.practitioner_id,
        opening.free_from,
        opening.free_until,
    ) {
        (Some(session_id), ..) => offer_seats(txn, ctx, session_id, now).await,
        (None, Some(practitioner_id), Some(from), Some(until)) => {
            offer_slots(txn, ctx, practitioner_id, from, until, now).await
        }
        _ => Ok(0),
    }
}

/// The seat offers a freed place in a class session calls for: while the session has a free
/// place, the first waiting entry for it (holding no seat there already) is offered one.
async fn offer_seats(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let Some(session) = store::classes::find_session(txn, session_id).await? else {
        return Ok(0);
    };
    if session.status != "scheduled"
        || !rules::offerable(session.starts_at, now, ctx.settings.waitlist.cutoff_minutes)
    {
        return Ok(0);
    }
    let rows = store::waitlist::waiting_for_session(txn, session_id).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let class = classes::session_details(txn, session).await?;
    let mut waiting: Vec<Waiting> = rows.iter().filter_map(waiting_of).collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let offered_before: HashSet<(Uuid, PlaceKey)> = store::waitlist::offers_to(txn, &ids)
        .await?
        .iter()
        .filter_map(|o| Some((o.entry_id, key_of(o)?)))
        .collect();
    let place = [Place::Seat {
        class_session_id: session_id,
    }];
    let mut made = 0;
    for _ in 0..OFFERS_PER_OPENING {
        let Some((entry_id, _)) = rules::first_match(ctx.tz, &waiting, &place, &offered_before)
        else {
            break;
        };
        waiting.retain(|w| w.entry_id != entry_id);
        let Some(entry) = rows.iter().find(|r| r.id == entry_id) else {
            continue;
        };
        // Someone who booked a seat meanwhile is not offered a second one.
        if store::classes::active_seat_of_patient(txn, session_id, entry.patient_id)
            .await?
            .is_some()
        {
            continue;
        }
        match hold_seat(txn, ctx, entry, &class, now).await? {
            Held::Offered => made += 1,
            Held::Lost => {}
            Held::Full => break,
        }
    }
    Ok(made)
}

/// How holding a place for an entry went.
enum Held {
    Offered,
    /// Another instance offered this entry something first.
    Lost,
    /// No place is free any more (or it is too late to hold one).
    Full,
}

/// Offers `entry` a place in the session: the entry moves from waiting to offered, one free
/// place becomes held (`seats_held`, a guarded UPDATE like taking a seat) and the offer row is
/// written, all in a savepoint. Then the email and the webhook.
async fn hold_seat(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    entry: &waitlist_entry::Model,
    class: &classes::SessionDetails,
    now: DateTime<Utc>,
) -> Result<Held, DbErr> {
    let settings = &ctx.settings.waitlist;
    let start = class.session.starts_at;
    let Some(expires_at) =
        rules::hold_end(now, start, settings.hold_minutes, settings.cutoff_minutes)
    else {
        return Ok(Held::Full);
    };
    let offer_token = ManageToken::generate();
    let attempt = txn.begin().await?;
    if !store::waitlist::set_entry_status(
        &attempt,
        entry.id,
        &[EntryStatus::Waiting],
        EntryStatus::Offered,
        now,
    )
    .await?
    {
        attempt.rollback().await?;
        return Ok(Held::Lost);
    }
    if !store::waitlist::hold_seat(&attempt, class.session.id, now).await? {
        attempt.rollback().await?;
        return Ok(Held::Full);
    }
    let inserted = store::waitlist::insert_offer(
        &attempt,
        waitlist_offer::Model {
            id: Uuid::new_v4(),
            entry_id: entry.id,
            offer_token_hash: Some(offer_token.hash.clone()),
            class_session_id: Some(class.session.id),
            service_id: None,
            practitioner_id: None,
            starts_at: Some(start),
            ends_at: Some(class.session.ends_at),
            blocked_from: None,
            blocked_until: None,
            status: OfferStatus::Open.as_str().to_string(),
            expires_at,
            created_at: now,
            decided_at: None,
        },
    )
    .await;
    let offer = match inserted {
        Ok(offer) => offer,
        Err(e) if store::is_unique_violation(&e) => {
            attempt.rollback().await?;
            return Ok(Held::Lost);
        }
        Err(e) => return Err(e),
    };
    attempt.commit().await?;
    let place = HeldPlace {
        service: class.service.name.clone(),
        practitioner: Some(class.practitioner.name.clone()),
        start,
    };
    announce(txn, ctx, entry, &offer, &place, &offer_token, now).await?;
    Ok(Held::Offered)
}

/// Tells the entry's patient (if they can still be emailed) of the offer just made, and emits
/// `waitlist.offered`.
async fn announce(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    entry: &waitlist_entry::Model,
    offer: &waitlist_offer::Model,
    place: &HeldPlace,
    offer_token: &ManageToken,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if let Some(to) = recipient_of(txn, entry.id).await? {
        crate::email::waitlist::offer_made(
            txn,
            ctx.settings,
            ctx.tz,
            &to,
            place,
            offer.expires_at,
            &offer_token.plain,
            offer.id,
            now,
        )
        .await?;
    }
    webhooks::emit(
        txn,
        now,
        EventType::WaitlistOffered,
        event_data(offer, "offered"),
    )
    .await
    .map(|_| ())
}

/// Withdraws the open seat offers of a session that was cancelled (each patient is told),
/// and ends the entries waiting for it (the session they wait for is gone). Pass the
/// cancellation's transaction.
pub async fn withdraw_for_session(
    conn: &impl ConnectionTrait,
    ctx: Context<'_>,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for offer in store::waitlist::open_offers_of_session(conn, session_id).await? {
        if store::waitlist::close_offer(conn, &offer, OfferStatus::Withdrawn, now, None).await? {
            tell_withdrawn(conn, ctx, &offer, false).await?;
        }
    }
    for entry in store::waitlist::waiting_or_offered_for_session(conn, session_id).await? {
        store::waitlist::set_entry_status(
            conn,
            entry.id,
            &[EntryStatus::Waiting, EntryStatus::Offered],
            EntryStatus::Expired,
            now,
        )
        .await?;
    }
    Ok(())
}

async fn offer_slots(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    practitioner_id: Uuid,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let (tz, cutoff) = (ctx.tz, ctx.settings.waitlist.cutoff_minutes);
    if !rules::offerable(until, now, cutoff) {
        return Ok(0);
    }
    let (first, last) = (
        localtime::local_date(tz, from),
        localtime::local_date(tz, until),
    );
    let ymd = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let rows =
        store::waitlist::waiting_for_practitioner(txn, practitioner_id, &ymd(first), &ymd(last))
            .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut waiting: Vec<Waiting> = rows.iter().filter_map(waiting_of).collect();
    let mut service_ids: Vec<Uuid> = rows.iter().filter_map(|r| r.service_id).collect();
    service_ids.sort();
    service_ids.dedup();
    let mut services = Vec::new();
    for service in store::waitlist::services(txn, &service_ids).await? {
        // Offered only where an online booking could go: the practitioner offers it online.
        if store::catalogue::public_practitioner_ids_for(txn, service.id)
            .await?
            .contains(&practitioner_id)
        {
            services.push(service);
        }
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut offered_before: HashSet<(Uuid, PlaceKey)> = store::waitlist::offers_to(txn, &ids)
        .await?
        .iter()
        .filter_map(|o| Some((o.entry_id, key_of(o)?)))
        .collect();
    let read_from = localtime::instant_at(tz, first, 0) - Duration::days(1);
    let read_until = localtime::instant_at(tz, last, 24 * 60) + Duration::days(1);
    let mut made = 0;
    for _ in 0..OFFERS_PER_OPENING {
        // Read again each round: the offer just made holds its time now.
        let (schedules, closures) =
            store::availability::load(txn, &[practitioner_id], read_from, read_until, None).await?;
        let mut places = Vec::new();
        for service in &services {
            // No minimum notice: a claim is placed without it (the clinic makes the offer);
            // the cutoff below is the waitlist's own limit.
            let mut service_rules = policy::rules_for(service, &ctx.settings.policy);
            service_rules.min_notice_minutes = 0;
            let query = SlotQuery {
                tz,
                now,
                from: first,
                to: last,
                rules: service_rules,
            };
            for slot in availability::free_slots(&query, &schedules, &closures) {
                let (_, blocked_from, blocked_until) = placement::blocked(service, slot.start);
                if blocked_from < until
                    && blocked_until > from
                    && rules::offerable(slot.start, now, cutoff)
                {
                    places.push(Place::Slot {
                        service_id: service.id,
                        practitioner_id,
                        start: slot.start,
                    });
                }
            }
        }
        places.sort_by_key(|p| match p {
            Place::Slot { start, .. } => Some(*start),
            Place::Seat { .. } => None,
        });
        let Some((entry_id, place)) = rules::first_match(tz, &waiting, &places, &offered_before)
        else {
            break;
        };
        // Whatever happens next, this entry is done with this opening.
        waiting.retain(|w| w.entry_id != entry_id);
        offered_before.insert((entry_id, place.key()));
        let (
            Some(entry),
            Place::Slot {
                service_id, start, ..
            },
        ) = (rows.iter().find(|r| r.id == entry_id), place)
        else {
            continue;
        };
        let Some(service) = services.iter().find(|s| s.id == service_id) else {
            continue;
        };
        if hold_slot(txn, ctx, entry, service, practitioner_id, start, now).await? {
            made += 1;
        }
    }
    Ok(made)
}

/// Offers `entry` the slot: the entry moves from waiting to offered, the offer row is written
/// and its `practitioner_holds` row takes the time, all in a savepoint, so losing a race
/// (another instance offered this entry or this time first, or a booking took it) undoes
/// only this offer. Then the email and the webhook.
async fn hold_slot(
    txn: &DatabaseTransaction,
    ctx: Context<'_>,
    entry: &waitlist_entry::Model,
    service: &service::Model,
    practitioner_id: Uuid,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let settings = &ctx.settings.waitlist;
    let Some(expires_at) =
        rules::hold_end(now, start, settings.hold_minutes, settings.cutoff_minutes)
    else {
        return Ok(false);
    };
    let (end, blocked_from, blocked_until) = placement::blocked(service, start);
    let offer_token = ManageToken::generate();
    let attempt = txn.begin().await?;
    if !store::waitlist::set_entry_status(
        &attempt,
        entry.id,
        &[EntryStatus::Waiting],
        EntryStatus::Offered,
        now,
    )
    .await?
    {
        attempt.rollback().await?;
        return Ok(false);
    }
    let inserted = store::waitlist::insert_offer(
        &attempt,
        waitlist_offer::Model {
            id: Uuid::new_v4(),
            entry_id: entry.id,
            offer_token_hash: Some(offer_token.hash.clone()),
            class_session_id: None,
            service_id: Some(service.id),
            practitioner_id: Some(practitioner_id),
            starts_at: Some(start),
            ends_at: Some(end),
            blocked_from: Some(blocked_from),
            blocked_until: Some(blocked_until),
            status: OfferStatus::Open.as_str().to_string(),
            expires_at,
            created_at: now,
            decided_at: None,
        },
    )
    .await;
    let held = match inserted {
        Ok(offer) => store::waitlist::insert_hold(&attempt, &offer)
            .await
            .map(|()| offer),
        Err(e) => Err(e),
    };
    let offer = match held {
        Ok(offer) => offer,
        Err(e) if store::is_unique_violation(&e) || store::is_overlap_violation(&e) => {
            attempt.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    attempt.commit().await?;
    let shown = details(txn, offer.clone()).await?;
    announce(
        txn,
        ctx,
        entry,
        &offer,
        &held_place(&shown),
        &offer_token,
        now,
    )
    .await?;
    Ok(true)
}

/// The `data` of a waitlist webhook event: ids and the entry's status.
fn event_data(offer: &waitlist_offer::Model, status: &str) -> serde_json::Value {
    serde_json::json!({
        "entry_id": offer.entry_id,
        "offer_id": offer.id,
        "status": status,
    })
}

/// The place's identity, for passing a place on and never back.
fn key_of(offer: &waitlist_offer::Model) -> Option<PlaceKey> {
    match (
        offer.class_session_id,
        offer.practitioner_id,
        offer.starts_at,
    ) {
        (Some(session), _, _) => Some(PlaceKey::Session(session)),
        (None, Some(practitioner), Some(start)) => Some(PlaceKey::Time(practitioner, start)),
        _ => None,
    }
}

/// An entry row as the matching sees it; `None` for a row that does not parse.
pub(crate) fn waiting_of(row: &waitlist_entry::Model) -> Option<Waiting> {
    let want = match (row.class_session_id, row.service_id) {
        (Some(session), _) => Want::Class(session),
        (None, Some(service_id)) => {
            let date = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            };
            let minute = |m: Option<i32>| m.and_then(|m| u32::try_from(m).ok());
            Want::Slot(SlotWish {
                service_id,
                practitioner_id: row.practitioner_id,
                from: date(&row.from_date)?,
                to: date(&row.to_date)?,
                earliest: minute(row.earliest_minute),
                latest: minute(row.latest_minute),
            })
        }
        (None, None) => return None,
    };
    Some(Waiting {
        entry_id: row.id,
        urgent: row.urgent,
        created_at: row.created_at,
        want,
    })
}

/// Emails the patient of a withdrawn offer that the place is gone and whether their entry
/// still waits.
async fn tell_withdrawn(
    conn: &impl ConnectionTrait,
    ctx: Context<'_>,
    offer: &waitlist_offer::Model,
    still_waiting: bool,
) -> Result<(), DbErr> {
    let Some(to) = recipient_of(conn, offer.entry_id).await? else {
        return Ok(());
    };
    let shown = details(conn, offer.clone()).await?;
    crate::email::waitlist::offer_withdrawn(
        conn,
        ctx.settings,
        ctx.tz,
        &to,
        &held_place(&shown),
        still_waiting,
    )
    .await
}

/// Who an entry's emails go to: its patient, unless erased or without an address.
async fn recipient_of(
    conn: &impl ConnectionTrait,
    entry_id: Uuid,
) -> Result<Option<Recipient>, DbErr> {
    let Some(entry) = store::waitlist::find_entry(conn, entry_id).await? else {
        return Ok(None);
    };
    let Some(patient) = store::patients::find(conn, entry.patient_id).await? else {
        return Ok(None);
    };
    Ok(patient
        .email
        .filter(|_| patient.erased_at.is_none())
        .map(|address| Recipient::new(address, patient.name)))
}

fn held_place(d: &OfferDetails) -> HeldPlace {
    let service = d.service.as_ref().or(d.class.as_ref().map(|c| &c.service));
    let practitioner = d
        .practitioner
        .as_ref()
        .or(d.class.as_ref().map(|c| &c.practitioner));
    HeldPlace {
        service: service.map(|s| s.name.clone()).unwrap_or_default(),
        practitioner: practitioner.map(|p| p.name.clone()),
        start: d.offer.starts_at.unwrap_or(d.offer.expires_at),
    }
}
