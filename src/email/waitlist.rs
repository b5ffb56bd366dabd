//! The waitlist's emails to the patient: joined (with the manage link), a place offered (with
//! the claim link and the hold's deadline) with a reminder due halfway through the hold, an
//! offer expired, and an offer withdrawn. Written into the outbox in the transaction of the
//! change that causes them.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::config::Settings;

use super::{EmailKind, Recipient, enqueue, enqueue_at, local_when};

/// The place an offer holds, as its emails describe it.
#[derive(Debug, Clone)]
pub struct HeldPlace {
    /// The service (or class) name.
    pub service: String,
    /// The practitioner or instructor, when the place names one.
    pub practitioner: Option<String>,
    pub start: DateTime<Utc>,
}

/// "You are on the waiting list for {wanted}", with `{public_url}/waitlist/{token}`.
pub async fn joined(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    to: &Recipient,
    wanted: &str,
    manage_token: &str,
) -> Result<(), DbErr> {
    let manage_url = format!("{}/waitlist/{manage_token}", public_url(settings));
    enqueue(
        conn,
        settings,
        EmailKind::WaitlistJoined,
        to,
        None,
        &[("wanted", wanted), ("manage_url", &manage_url)],
    )
    .await
    .map(|_| ())
}

/// "A place is free and held for you until {deadline}", with
/// `{public_url}/waitlist/offers/{offer_token}`; and the reminder of it, due halfway between
/// `now` (the offer) and the deadline, keyed to `offer_id` so the outbox worker voids it
/// once the offer is no longer open.
#[allow(clippy::too_many_arguments)]
pub async fn offer_made(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    to: &Recipient,
    place: &HeldPlace,
    deadline: DateTime<Utc>,
    offer_token: &str,
    offer_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let offer_url = format!("{}/waitlist/offers/{offer_token}", public_url(settings));
    let when = local_when(place.start, tz);
    let deadline_local = local_when(deadline, tz);
    let vars = [
        ("service", place.service.as_str()),
        ("practitioner", place.practitioner.as_deref().unwrap_or("")),
        ("when", &when),
        ("deadline", &deadline_local),
        ("offer_url", &offer_url),
    ];
    enqueue(conn, settings, EmailKind::WaitlistOffer, to, None, &vars).await?;
    let remind_at = reminder_at(now, deadline);
    if remind_at > now {
        enqueue_at(
            conn,
            settings,
            EmailKind::WaitlistOfferReminder,
            to,
            None,
            &vars,
            Some(offer_id),
            remind_at,
        )
        .await?;
    }
    Ok(())
}

/// When an offer's reminder is due: halfway through its hold.
pub fn reminder_at(offered: DateTime<Utc>, deadline: DateTime<Utc>) -> DateTime<Utc> {
    offered + (deadline - offered) / 2
}

/// "The hold ran out at {deadline}; the place was passed on."
pub async fn offer_expired(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    to: &Recipient,
    place: &HeldPlace,
    deadline: DateTime<Utc>,
) -> Result<(), DbErr> {
    let when = local_when(place.start, tz);
    let deadline = local_when(deadline, tz);
    enqueue(
        conn,
        settings,
        EmailKind::WaitlistOfferExpired,
        to,
        None,
        &[
            ("service", &place.service),
            ("when", &when),
            ("deadline", &deadline),
        ],
    )
    .await
    .map(|_| ())
}

/// "The place held for you is no longer available", and whether the entry still waits
/// (`still_waiting`) or ended with the class it waited for.
pub async fn offer_withdrawn(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    to: &Recipient,
    place: &HeldPlace,
    still_waiting: bool,
) -> Result<(), DbErr> {
    let when = local_when(place.start, tz);
    enqueue(
        conn,
        settings,
        EmailKind::WaitlistOfferWithdrawn,
        to,
        None,
        &[
            ("service", &place.service),
            ("when", &when),
            // Templates test it for truth: empty is false.
            ("still_waiting", if still_waiting { "yes" } else { "" }),
        ],
    )
    .await
    .map(|_| ())
}

fn public_url(settings: &Settings) -> &str {
    settings.server.public_url.trim_end_matches('/')
}
