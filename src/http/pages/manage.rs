//! `/manage/{token}`: the page behind the link in every booking and seat email. The server
//! renders the booking (or the seat, see `seat`) and what the patient may still do (with the
//! deadlines from the policy); the script adds cancelling and moving through
//! `/api/v1/manage/{token}`.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use poem::{
    Response, handler,
    http::StatusCode,
    web::{Data, Path, Query},
};

use crate::{
    booking::{self, BookingDetails},
    classes,
    domain::booking::{BookingStatus, change_deadline, patient_may_change},
    state::AppState,
};

use super::{
    PageParams, Pages,
    html::{self, Shell, escape, phone_link},
    html_response, seat,
};

/// A local date and time in the clinic's zone, e.g. "Tuesday 3 December 2026 at 09:15 GMT".
pub(super) fn when(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz)
        .format("%A %-d %B %Y at %H:%M %Z")
        .to_string()
}

fn status_text(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::Confirmed => "Confirmed",
        BookingStatus::Arrived => "Arrived",
        BookingStatus::Completed => "Completed",
        BookingStatus::NoShow => "Missed",
        BookingStatus::Cancelled => "Cancelled",
    }
}

/// What the patient may do, said before they try.
fn policy_text(state: &AppState, d: &BookingDetails, now: DateTime<Utc>) -> String {
    let a = &d.appointment;
    let tz = state.tz;
    let status = BookingStatus::parse(&a.status).unwrap_or(BookingStatus::Cancelled);
    let phone = phone_link(&state.settings);
    if status == BookingStatus::Cancelled {
        return format!(
            "<p>This booking has been cancelled. You can <a href=\"/book?service={}\">book another appointment</a> \
             or call us on {phone}.</p>",
            escape(&d.service.slug)
        );
    }
    if status != BookingStatus::Confirmed || a.starts_at <= now {
        return format!(
            "<p>This appointment has passed. To book again, <a href=\"/book\">book online</a> or call us on {phone}.</p>"
        );
    }
    let cancel_hours = booking::notice_hours(state, &d.service, false);
    let move_hours = booking::notice_hours(state, &d.service, true);
    let can_cancel = patient_may_change(status, a.starts_at, cancel_hours, now);
    let can_move = patient_may_change(status, a.starts_at, move_hours, now);
    let cancel_by = when(change_deadline(a.starts_at, cancel_hours), tz);
    let move_by = when(change_deadline(a.starts_at, move_hours), tz);
    let mut out = String::new();
    match (can_move, can_cancel) {
        (true, true) if cancel_by == move_by => out.push_str(&format!(
            "<p>You can change the time or cancel online until <strong>{cancel_by}</strong> \
             ({cancel_hours} hours before your appointment).</p>"
        )),
        _ => {
            out.push_str(&if can_move {
                format!("<p>You can change the time online until <strong>{move_by}</strong> ({move_hours} hours before).</p>")
            } else {
                format!("<p>It is less than {move_hours} hours before your appointment, so the time can no longer be changed online.</p>")
            });
            out.push_str(&if can_cancel {
                format!("<p>You can cancel online until <strong>{cancel_by}</strong> ({cancel_hours} hours before).</p>")
            } else {
                format!("<p>It is less than {cancel_hours} hours before your appointment, so it can no longer be cancelled online.</p>")
            });
        }
    }
    if !can_move || !can_cancel {
        out.push_str(&format!(
            "<p class=\"callout\">To change or cancel now, please call us on {phone}.</p>"
        ));
    }
    out
}

fn summary(state: &AppState, d: &BookingDetails, now: DateTime<Utc>) -> String {
    let a = &d.appointment;
    let status = BookingStatus::parse(&a.status).unwrap_or(BookingStatus::Cancelled);
    let heading = if status == BookingStatus::Cancelled {
        "Your cancelled booking"
    } else {
        "Your booking"
    };
    let start = a.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let status_class = if status == BookingStatus::Cancelled {
        "tag tag-cancelled"
    } else {
        "tag"
    };
    // Only the buttons that can work; the script shows them once it is ready.
    let can = |reschedule| {
        patient_may_change(
            status,
            a.starts_at,
            booking::notice_hours(state, &d.service, reschedule),
            now,
        )
    };
    let mut actions = String::new();
    if can(true) {
        actions.push_str("<button type=\"button\" class=\"button\" id=\"reschedule-start\" hidden>Change the time</button>");
    }
    if can(false) {
        actions.push_str("<button type=\"button\" class=\"button button-secondary\" id=\"cancel-start\" hidden>Cancel this booking</button>");
    }
    if !actions.is_empty() {
        actions = format!("<div id=\"actions\" class=\"actions\" hidden>{actions}</div>");
    }
    format!(
        "<div id=\"app\">\n<h1 tabindex=\"-1\" id=\"heading\">{heading}</h1>\n\
         <div id=\"notice\" role=\"status\" aria-live=\"polite\"></div>\n\
         <dl class=\"summary\" id=\"summary\">\
         <div><dt>Reference</dt><dd id=\"summary-reference\">{reference}</dd></div>\
         <div><dt>Appointment</dt><dd id=\"summary-service\">{service}</dd></div>\
         <div><dt>With</dt><dd id=\"summary-practitioner\">{practitioner}</dd></div>\
         <div><dt>When</dt><dd id=\"summary-when\" data-start=\"{start}\">{when}</dd></div>\
         <div><dt>Status</dt><dd id=\"summary-status\"><span class=\"{status_class}\">{status}</span></dd></div>\
         </dl>\n<div id=\"policy\">{policy}</div>\n{actions}\n<div id=\"panel\"></div>\n</div>",
        reference = escape(&a.reference),
        service = escape(&d.service.name),
        practitioner = escape(&d.practitioner.name),
        when = escape(&when(a.starts_at, state.tz)),
        status = status_text(status),
        policy = policy_text(state, d, now),
    )
}

/// What a manage link opens: a booking or a seat in a class.
enum Managed {
    Booking(Box<BookingDetails>),
    Seat(Box<classes::SeatDetails>),
}

async fn find(state: &AppState, token: &str) -> Result<Option<Managed>, sea_orm::DbErr> {
    if let Some(d) = booking::find_by_token(state, token).await? {
        return Ok(Some(Managed::Booking(Box::new(d))));
    }
    Ok(classes::find_seat_by_token(state, token)
        .await?
        .map(|d| Managed::Seat(Box::new(d))))
}

#[handler]
pub async fn page(
    state: Data<&Arc<AppState>>,
    pages: Data<&Arc<Pages>>,
    Path(token): Path<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let settings = &state.settings;
    let shell = |title, status, body: String, script| {
        let html = html::page(
            settings,
            &pages.assets,
            Shell {
                title,
                script,
                embedded: params.embedded(),
                data: params.embed_data(&pages),
                body,
            },
        );
        html_response(&pages, status, html, true)
    };
    match find(&state, &token).await {
        // The script reads the token from the path; the page carries no copy of it.
        Ok(Some(Managed::Booking(d))) => {
            let body = summary(&state, &d, Utc::now());
            shell("Your booking", StatusCode::OK, body, Some("manage.js"))
        }
        Ok(Some(Managed::Seat(d))) => {
            let body = seat::summary(&state, &d, Utc::now());
            shell(
                "Your place in a class",
                StatusCode::OK,
                body,
                Some("manage.js"),
            )
        }
        Ok(None) => shell(
            "Booking not found",
            StatusCode::NOT_FOUND,
            html::manage_not_found_body(settings),
            None,
        ),
        Err(e) => {
            tracing::error!(error = %e, "manage page: database error");
            shell(
                "Sorry, there is a problem",
                StatusCode::SERVICE_UNAVAILABLE,
                html::unavailable_body(settings),
                None,
            )
        }
    }
}
