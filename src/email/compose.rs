//! Turning a booking change or an enquiry into rendered outbox rows: the template variables,
//! the calendar invitation and the Message-ID.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use minijinja::Value;
use sea_orm::DbErr;
use uuid::Uuid;

use crate::config::Settings;

use super::{
    BookingChange, BookingEmail, EmailKind, OutgoingEmail, Recipient, Templates, ical, render,
    transport,
};

impl OutgoingEmail {
    pub(super) fn with_booking(
        mut self,
        appointment_id: Uuid,
        ics: Option<(String, &'static str)>,
        send_after: DateTime<Utc>,
    ) -> Self {
        self.appointment_id = Some(appointment_id);
        self.ics = ics;
        self.send_after = send_after;
        self
    }
}

pub(super) fn email(
    templates: &Templates,
    kind: EmailKind,
    to: &Recipient,
    reply_to: Option<&Recipient>,
    vars: &render::Vars,
    domain: &str,
) -> Result<OutgoingEmail, DbErr> {
    let mut vars = vars.clone();
    let recipient_name = if to.name.trim().is_empty() {
        "there".to_string()
    } else {
        to.name.clone()
    };
    vars.insert("recipient_name".to_string(), Value::from(recipient_name));
    let rendered = templates
        .render(kind, &vars)
        .map_err(|e| DbErr::Custom(format!("email template: {e}")))?;
    Ok(OutgoingEmail {
        kind,
        to_address: to.address.trim().to_string(),
        to_name: transport::display_name(&to.name).unwrap_or_default(),
        reply_to: reply_to.map(Recipient::mailbox),
        subject: rendered.subject,
        text_body: rendered.text,
        html_body: rendered.html,
        ics: None,
        message_id: format!("<{}@{domain}>", Uuid::new_v4()),
        appointment_id: None,
        send_after: Utc::now(),
    })
}

/// The domain of `email.from`, for Message-IDs.
pub(super) fn message_id_domain(settings: &Settings) -> String {
    settings
        .email
        .from
        .parse::<Mailbox>()
        .map(|m| m.email.domain().to_string())
        .unwrap_or_else(|_| "frontdesk.invalid".to_string())
}

pub(super) fn clinic_vars(settings: &Settings) -> render::Vars {
    let clinic = &settings.clinic;
    let mut vars = render::Vars::new();
    for (key, value) in [
        ("clinic_name", &clinic.name),
        ("clinic_address", &clinic.address),
        ("clinic_phone", &clinic.phone),
        ("clinic_email", &clinic.email),
    ] {
        vars.insert(key.to_string(), Value::from(value.as_str()));
    }
    vars
}

/// "Monday 31 March 2030 at 09:30 BST": a local date and time with the zone's abbreviation.
pub fn local_when(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%A %-d %B %Y at %H:%M %Z")
        .to_string()
}

pub(super) fn booking_vars(settings: &Settings, tz: Tz, change: BookingChange<'_>) -> render::Vars {
    let b = change.booking();
    let start = b.start.with_timezone(&tz);
    let end = b.end.with_timezone(&tz);
    let mut vars = clinic_vars(settings);
    let mut set = |key: &str, value: Value| {
        vars.insert(key.to_string(), value);
    };
    set("change", Value::from(change.name()));
    set("reference", Value::from(b.reference.as_str()));
    set("service", Value::from(b.service_name.as_str()));
    set("practitioner", Value::from(b.practitioner_name.as_str()));
    set("patient_name", Value::from(b.patient_name.as_str()));
    set("patient_email", Value::from(b.patient_email.clone()));
    set(
        "date",
        Value::from(start.format("%A %-d %B %Y").to_string()),
    );
    set("time", Value::from(start.format("%H:%M").to_string()));
    set("end_time", Value::from(end.format("%H:%M").to_string()));
    set("zone", Value::from(start.format("%Z").to_string()));
    set("when", Value::from(local_when(b.start, tz)));
    set("manage_url", Value::from(b.manage_url.clone()));
    let public_url = settings.server.public_url.trim_end_matches('/');
    set("book_url", Value::from(format!("{public_url}/book")));
    match change {
        BookingChange::Rescheduled { previous_start, .. } => {
            set("previous_when", Value::from(local_when(previous_start, tz)));
        }
        BookingChange::Cancelled {
            reason: Some(reason),
            ..
        } => set("reason", Value::from(reason)),
        _ => {}
    }
    vars
}

pub(super) fn invite(
    settings: &Settings,
    tz: Tz,
    booking: &BookingEmail,
    method: ical::Method,
    attendee: &Recipient,
    now: DateTime<Utc>,
) -> String {
    let organizer = organizer(settings);
    let summary = format!(
        "{} with {}",
        booking.service_name, booking.practitioner_name
    );
    let mut description = format!(
        "{} at {}. Reference {}.",
        summary, settings.clinic.name, booking.reference
    );
    if let Some(url) = &booking.manage_url {
        description.push_str(&format!("\nView, change or cancel: {url}"));
    }
    description.push_str(&format!("\nPhone: {}", settings.clinic.phone));
    ical::render(&ical::Invite {
        method,
        appointment_id: booking.appointment_id,
        sequence: booking.sequence,
        start: booking.start,
        end: booking.end,
        stamp: now,
        summary: &summary,
        location: &format!("{}, {}", settings.clinic.name, settings.clinic.address),
        description: &description,
        organizer_name: &settings.clinic.name,
        organizer_email: &organizer,
        attendee_name: &attendee.name,
        attendee_email: &attendee.address,
        recurrence: booking
            .series
            .map(|(series_id, recurrence_id)| ical::Recurrence::Occurrence {
                series_id,
                tz,
                recurrence_id,
            }),
    })
}

/// The organizer address of invitations: the address of `email.from`.
pub(super) fn organizer(settings: &Settings) -> String {
    settings
        .email
        .from
        .parse::<Mailbox>()
        .map(|m| m.email.to_string())
        .unwrap_or_default()
}
