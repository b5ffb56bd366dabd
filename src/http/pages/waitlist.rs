//! `/waitlist/{token}` (a waitlist entry: what it waits for, leaving it) and
//! `/waitlist/offers/{token}` (a place held for the patient: claiming or declining it), the
//! pages behind the waitlist's emailed links. The server renders what the entry or offer is and
//! where it stands; `waitlist.js` and `offer.js` add leaving, claiming and declining through
//! the JSON API. A link that opens nothing gets the friendly 404 with the clinic's phone, as
//! `/manage` does.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use entity::waitlist_entry;
use poem::{
    Response, handler,
    http::StatusCode,
    web::{Data, Path, Query},
};
use sea_orm::DbErr;

use crate::{
    classes,
    domain::{
        hours::format_clock,
        waitlist::{EntryStatus, OfferStatus},
    },
    state::AppState,
    store,
    waitlist::{self, offers::OfferDetails},
};

use super::{
    PageParams, Pages,
    html::{self, Shell, escape, phone_link},
    html_response,
    manage::when,
};

/// Summary rows for a place: a class session, or an appointment. `start` (when the place has
/// one) lets the script add the patient's own time.
fn place_rows(
    class: bool,
    service: &str,
    who: &str,
    at: &str,
    start: Option<DateTime<Utc>>,
) -> String {
    let start = start
        .map(|t| {
            format!(
                " data-start=\"{}\"",
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            )
        })
        .unwrap_or_default();
    format!(
        "<div><dt>{what}</dt><dd>{service}</dd></div>\
         <div><dt>With</dt><dd>{who}</dd></div>\
         <div><dt>When</dt><dd{start}>{at}</dd></div>",
        what = if class { "Class" } else { "Appointment" },
        service = escape(service),
        who = escape(who),
        at = escape(at),
    )
}

fn long_date(ymd: &str) -> String {
    NaiveDate::parse_from_str(ymd, "%Y-%m-%d")
        .map(|d| d.format("%A %-d %B %Y").to_string())
        .unwrap_or_else(|_| ymd.to_string())
}

/// An offer whose hold has ended is expired, whether or not the worker got to it (as the API
/// answers).
fn offer_status(d: &OfferDetails, now: DateTime<Utc>) -> OfferStatus {
    match OfferStatus::parse(&d.offer.status) {
        Some(OfferStatus::Open) if d.offer.expires_at <= now => OfferStatus::Expired,
        Some(status) => status,
        None => OfferStatus::Expired,
    }
}

/// The offer as the server can say it.
fn offer_body(state: &AppState, d: &OfferDetails, now: DateTime<Utc>) -> String {
    let phone = phone_link(&state.settings);
    let rows = match (&d.class, &d.service, &d.practitioner, d.offer.starts_at) {
        (Some(c), ..) => place_rows(
            true,
            &c.service.name,
            &c.practitioner.name,
            &when(c.session.starts_at, state.tz),
            Some(c.session.starts_at),
        ),
        (None, Some(s), Some(p), Some(start)) => {
            place_rows(false, &s.name, &p.name, &when(start, state.tz), Some(start))
        }
        _ => String::new(),
    };
    let book_again = format!("<a href=\"/book\">Book another time</a> or call us on {phone}.");
    let (heading, text) = match offer_status(d, now) {
        OfferStatus::Open => (
            "A place is free for you",
            format!(
                "<p class=\"callout\" id=\"deadline\">Held for you until <strong>{}</strong>. After that it goes to the next person on the waitlist.</p>\
                 <noscript><p>Claiming a place online needs JavaScript. Please call us on {phone} to claim it.</p></noscript>",
                escape(&when(d.offer.expires_at, state.tz))
            ),
        ),
        OfferStatus::Claimed => (
            "You have claimed this place",
            "<p>It is booked for you. Your confirmation email has a link to see or cancel it.</p>"
                .to_string(),
        ),
        OfferStatus::Declined => (
            "You declined this place",
            format!("<p>We have offered it to the next person on the waitlist. {book_again}</p>"),
        ),
        OfferStatus::Withdrawn => (
            "This offer has been withdrawn",
            format!("<p>The place is no longer available. {book_again}</p>"),
        ),
        OfferStatus::Expired => (
            "This offer has ended",
            format!("<p>The time it was held for you has passed. {book_again}</p>"),
        ),
    };
    format!(
        "<div id=\"app\">\n<h1 tabindex=\"-1\">{heading}</h1>\n\
         <dl class=\"summary\" id=\"summary\">{rows}</dl>\n{text}\n</div>"
    )
}

/// What an entry waits for, as summary rows: the class session, or the service and days.
async fn entry_rows(state: &AppState, e: &waitlist_entry::Model) -> Result<String, DbErr> {
    if let Some(id) = e.class_session_id {
        let Some(session) = store::classes::find_session(&state.db, id).await? else {
            return Ok(String::new());
        };
        let c = classes::session_details(&state.db, session).await?;
        return Ok(place_rows(
            true,
            &c.service.name,
            &c.practitioner.name,
            &when(c.session.starts_at, state.tz),
            Some(c.session.starts_at),
        ));
    }
    let service = match e.service_id {
        Some(id) => store::catalogue::find_service(&state.db, id).await?,
        None => None,
    };
    let practitioner = match e.practitioner_id {
        Some(id) => store::catalogue::find_practitioner(&state.db, id).await?,
        None => None,
    };
    let days = match (e.from_date.as_deref(), e.to_date.as_deref()) {
        (Some(from), Some(to)) if from != to => format!("{} to {}", long_date(from), long_date(to)),
        (Some(from), _) => long_date(from),
        _ => String::new(),
    };
    let clock = |m: Option<i32>| m.and_then(|m| u32::try_from(m).ok()).map(format_clock);
    let hours = match (clock(e.earliest_minute), clock(e.latest_minute)) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("from {a}"),
        (None, Some(b)) => format!("until {b}"),
        (None, None) => "any time".to_string(),
    };
    Ok(place_rows(
        false,
        service.as_ref().map_or("", |s| s.name.as_str()),
        practitioner
            .as_ref()
            .map_or("Anyone who offers it", |p| p.name.as_str()),
        &format!("{days}, {hours} ({} time)", state.tz.name()),
        None,
    ))
}

/// The entry as the server can say it.
async fn entry_body(state: &AppState, e: &waitlist_entry::Model) -> Result<String, DbErr> {
    let phone = phone_link(&state.settings);
    let rows = entry_rows(state, e).await?;
    let status = EntryStatus::parse(&e.status).unwrap_or(EntryStatus::Expired);
    let (heading, text) = match status {
        EntryStatus::Waiting => (
            "You are on the waitlist",
            "If a place frees up, we will email you with a link to claim it.",
        ),
        EntryStatus::Offered => (
            "We have offered you a place",
            "Check your email for the offer, and claim the place before the time the email gives.",
        ),
        EntryStatus::Claimed => (
            "You claimed a place",
            "It is booked for you. Your confirmation email has a link to see or cancel it.",
        ),
        EntryStatus::Left => (
            "You have left the waitlist",
            "We will not offer you any more places for this.",
        ),
        EntryStatus::Expired => (
            "This waitlist entry has ended",
            "The dates it was for have passed.",
        ),
    };
    let leave = if status.is_active() {
        format!("<noscript><p>To leave the waitlist, please call us on {phone}.</p></noscript>")
    } else {
        String::new()
    };
    Ok(format!(
        "<div id=\"app\">\n<h1 tabindex=\"-1\">{heading}</h1>\n\
         <dl class=\"summary\" id=\"summary\">{rows}</dl>\n<p>{text}</p>\n{leave}\n</div>"
    ))
}

/// What a page found: its title, body and script, or nothing.
type Found = Result<Option<(&'static str, String, &'static str)>, DbErr>;

/// Renders one of the two pages, or the friendly 404, or "there is a problem".
fn respond(
    state: &AppState,
    pages: &Pages,
    params: &PageParams,
    found: Found,
    not_found: (&'static str, &'static str, &'static str),
) -> Response {
    let settings = &state.settings;
    let (title, status, body, script) = match found {
        Ok(Some((title, body, script))) => (title, StatusCode::OK, body, Some(script)),
        Ok(None) => (
            not_found.0,
            StatusCode::NOT_FOUND,
            html::not_found_body(settings, not_found.1, not_found.2),
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "waitlist page: database error");
            (
                "Sorry, there is a problem",
                StatusCode::SERVICE_UNAVAILABLE,
                html::unavailable_body(settings),
                None,
            )
        }
    };
    let html = html::page(
        settings,
        &pages.assets,
        Shell {
            title,
            script,
            embedded: params.embedded(),
            data: params.embed_data(pages),
            body,
        },
    );
    // The token in the path is a secret: no-store and no referrer, as on the manage page.
    html_response(pages, status, html, true)
}

#[handler]
pub async fn offer_page(
    state: Data<&Arc<AppState>>,
    pages: Data<&Arc<Pages>>,
    Path(token): Path<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let found = waitlist::offers::find_by_token(&state.db, &token)
        .await
        .map(|d| {
            d.map(|d| {
                let body = offer_body(&state, &d, Utc::now());
                ("Your place from the waitlist", body, "offer.js")
            })
        });
    respond(
        &state,
        &pages,
        &params,
        found,
        (
            "Offer not found",
            "offer",
            "ask whether a place is still free",
        ),
    )
}

#[handler]
pub async fn entry_page(
    state: Data<&Arc<AppState>>,
    pages: Data<&Arc<Pages>>,
    Path(token): Path<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let found = match waitlist::entries::find_by_token(&state.db, &token).await {
        Ok(Some(e)) => entry_body(&state, &e)
            .await
            .map(|body| Some(("Your place on the waitlist", body, "waitlist.js"))),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    respond(
        &state,
        &pages,
        &params,
        found,
        (
            "Waitlist place not found",
            "waitlist place",
            "check or leave the waitlist",
        ),
    )
}
