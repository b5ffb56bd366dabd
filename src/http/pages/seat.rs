//! The manage page for a seat in a class: what the server renders before the script runs (the
//! class, the seat's status and until when it can be cancelled). A seat is never moved: the
//! patient cancels it and books another session, and the page says so.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::{
    booking,
    classes::SeatDetails,
    domain::{
        booking::change_deadline,
        classes::{SeatStatus, SessionStatus},
    },
    state::AppState,
};

use super::{
    html::{escape, phone_link},
    manage::when,
};

fn status_text(status: SeatStatus) -> &'static str {
    match status {
        SeatStatus::Confirmed => "Confirmed",
        SeatStatus::Cancelled => "Cancelled",
        SeatStatus::Attended => "Attended",
        SeatStatus::NoShow => "Missed",
    }
}

/// What the patient may do with the seat, said before they try.
fn policy_text(state: &AppState, d: &SeatDetails, can_cancel: bool, hours: u32) -> String {
    let phone = phone_link(&state.settings);
    let status = SeatStatus::parse(&d.seat.status).unwrap_or(SeatStatus::Cancelled);
    let another = format!(
        "<a href=\"/book?service={}\">book another session</a>",
        escape(&d.class.service.slug)
    );
    if SessionStatus::parse(&d.class.session.status) == Some(SessionStatus::Cancelled) {
        return format!(
            "<p>This class has been cancelled by the clinic, so your place is cancelled too. \
             You can {another} or call us on {phone}.</p>"
        );
    }
    if status == SeatStatus::Cancelled {
        return format!(
            "<p>This place has been cancelled. You can {another} or call us on {phone}.</p>"
        );
    }
    if status != SeatStatus::Confirmed || d.class.session.starts_at <= Utc::now() {
        return format!(
            "<p>This class has passed. To come again, {another} or call us on {phone}.</p>"
        );
    }
    let mut out = if can_cancel {
        format!(
            "<p>You can cancel your place online until <strong>{}</strong> ({hours} hours before the class).</p>",
            when(change_deadline(d.class.session.starts_at, hours), state.tz)
        )
    } else {
        format!(
            "<p>It is less than {hours} hours before your class, so your place can no longer be cancelled online.</p>\
             <p class=\"callout\">To cancel now, please call us on {phone}.</p>"
        )
    };
    out.push_str(
        "<p>A place in a class cannot be moved to another time: to move, cancel and book another session.</p>",
    );
    out
}

/// The seat's summary, policy and (when it can work) the cancel button.
pub fn summary(state: &AppState, d: &SeatDetails, now: DateTime<Utc>) -> String {
    let status = SeatStatus::parse(&d.seat.status).unwrap_or(SeatStatus::Cancelled);
    let start = d.class.session.starts_at;
    let hours = booking::notice_hours(state, &d.class.service, false);
    let can_cancel = status == SeatStatus::Confirmed && now <= change_deadline(start, hours);
    let cancelled = status == SeatStatus::Cancelled;
    let heading = if cancelled {
        "Your cancelled place"
    } else {
        "Your place in a class"
    };
    let status_class = if cancelled {
        "tag tag-cancelled"
    } else {
        "tag"
    };
    // Only the button that can work; the script shows it once it is ready.
    let actions = if can_cancel {
        "<div id=\"actions\" class=\"actions\" hidden><button type=\"button\" class=\"button button-secondary\" \
         id=\"cancel-start\" hidden>Cancel my place</button></div>"
    } else {
        ""
    };
    format!(
        "<div id=\"app\">\n<h1 tabindex=\"-1\" id=\"heading\">{heading}</h1>\n\
         <div id=\"notice\" role=\"status\" aria-live=\"polite\"></div>\n\
         <dl class=\"summary\" id=\"summary\">\
         <div><dt>Reference</dt><dd id=\"summary-reference\">{reference}</dd></div>\
         <div><dt>Class</dt><dd id=\"summary-service\">{service}</dd></div>\
         <div><dt>With</dt><dd id=\"summary-practitioner\">{practitioner}</dd></div>\
         <div><dt>When</dt><dd id=\"summary-when\" data-start=\"{start}\">{when}</dd></div>\
         <div><dt>Status</dt><dd id=\"summary-status\"><span class=\"{status_class}\">{status}</span></dd></div>\
         </dl>\n<div id=\"policy\">{policy}</div>\n{actions}\n<div id=\"panel\"></div>\n</div>",
        reference = escape(&d.seat.reference),
        service = escape(&d.class.service.name),
        practitioner = escape(&d.class.practitioner.name),
        start = start.to_rfc3339_opts(SecondsFormat::Secs, true),
        when = escape(&when(start, state.tz)),
        status = status_text(status),
        policy = policy_text(state, d, can_cancel, hours),
    )
}
