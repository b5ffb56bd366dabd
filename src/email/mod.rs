//! Email: what each booking change or enquiry sends, written into the outbox in the caller's
//! transaction (`outbox`), rendered from template files (`render`) with calendar invitations
//! (`ical`), and delivered later by the worker (`worker`) through SMTP or files (`transport`).

pub mod backoff;
mod classes;
mod compose;
pub mod health;
pub mod ical;
pub mod outbox;
pub mod render;
mod series;
pub mod smtp;
pub mod transport;
mod vtimezone;
pub mod waitlist;
pub mod worker;

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::Mailbox;
use minijinja::Value;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::config::Settings;

pub use classes::{SeatChange, SeatEmail, seat_changed};
pub use compose::local_when;
pub use health::{DeliveryHealth, FailureKind};
pub use outbox::OutgoingEmail;
pub use render::{Rendered, Templates};
pub use series::{SeriesEmail, series_confirmed};
pub use transport::{Mailer, SendError};

/// Every kind of email the service sends; the name is the stem of its template files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// To the patient, with a REQUEST invitation.
    BookingConfirmed,
    /// To the patient, with a REQUEST invitation of a higher SEQUENCE.
    BookingRescheduled,
    /// To the patient, with a CANCEL.
    BookingCancelled,
    /// To the practitioner: a booking with them was made, moved or cancelled.
    PractitionerNotice,
    /// To `email.staff_inbox`: a booking was made, moved or cancelled.
    StaffNotice,
    /// To the patient, `email.reminder_hours_before` the start.
    Reminder,
    /// To `email.staff_inbox`, Reply-To the enquirer.
    EnquiryReceived,
    /// To the enquirer: we have your enquiry.
    EnquiryAck,
    /// To a patient: a class seat is booked, with a REQUEST invitation (one UID per seat).
    SeatConfirmed,
    /// To each seat holder: the class moved or changed instructor (REQUEST, higher SEQUENCE).
    ClassChanged,
    /// To each seat holder: the class is cancelled, with a CANCEL.
    ClassCancelled,
    /// To a patient: their class seat is cancelled, with a CANCEL.
    SeatCancelled,
    /// To the patient: on the waiting list, with the link to see or leave the entry.
    WaitlistJoined,
    /// To the patient: a place is held for them, with the link to claim or decline it.
    WaitlistOffer,
    /// To the patient: the hold ran out and the place was passed on.
    WaitlistOfferExpired,
    /// To the patient: the clinic took back the place held for them (time off, a closure,
    /// the class cancelled), and what became of their entry.
    WaitlistOfferWithdrawn,
    /// To the patient: halfway through the hold, a reminder that the place is still held for
    /// them until its deadline (void once the offer is no longer open).
    WaitlistOfferReminder,
}

impl EmailKind {
    pub const ALL: [EmailKind; 17] = [
        EmailKind::BookingConfirmed,
        EmailKind::BookingRescheduled,
        EmailKind::BookingCancelled,
        EmailKind::PractitionerNotice,
        EmailKind::StaffNotice,
        EmailKind::Reminder,
        EmailKind::EnquiryReceived,
        EmailKind::EnquiryAck,
        EmailKind::SeatConfirmed,
        EmailKind::ClassChanged,
        EmailKind::ClassCancelled,
        EmailKind::SeatCancelled,
        EmailKind::WaitlistJoined,
        EmailKind::WaitlistOffer,
        EmailKind::WaitlistOfferExpired,
        EmailKind::WaitlistOfferWithdrawn,
        EmailKind::WaitlistOfferReminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::BookingConfirmed => "booking_confirmed",
            EmailKind::BookingRescheduled => "booking_rescheduled",
            EmailKind::BookingCancelled => "booking_cancelled",
            EmailKind::PractitionerNotice => "practitioner_notice",
            EmailKind::StaffNotice => "staff_notice",
            EmailKind::Reminder => "reminder",
            EmailKind::EnquiryReceived => "enquiry_received",
            EmailKind::EnquiryAck => "enquiry_ack",
            EmailKind::SeatConfirmed => "seat_confirmed",
            EmailKind::ClassChanged => "class_changed",
            EmailKind::ClassCancelled => "class_cancelled",
            EmailKind::SeatCancelled => "seat_cancelled",
            EmailKind::WaitlistJoined => "waitlist_joined",
            EmailKind::WaitlistOffer => "waitlist_offer",
            EmailKind::WaitlistOfferExpired => "waitlist_offer_expired",
            EmailKind::WaitlistOfferWithdrawn => "waitlist_offer_withdrawn",
            EmailKind::WaitlistOfferReminder => "waitlist_offer_reminder",
        }
    }

    pub fn parse(s: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the emails about one booking need to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingEmail {
    pub appointment_id: Uuid,
    pub reference: String,
    pub service_name: String,
    pub practitioner_name: String,
    pub practitioner_email: Option<String>,
    pub patient_name: String,
    pub patient_email: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The booking's iCalendar SEQUENCE (incremented on every change).
    pub sequence: i32,
    pub manage_url: Option<String>,
    /// For an occurrence of a course of treatment: the series and the start the occurrence
    /// was first booked at (its RECURRENCE-ID in the series' recurring invitation).
    pub series: Option<(Uuid, DateTime<Utc>)>,
}

/// A change to a booking that people must hear about.
#[derive(Debug, Clone, Copy)]
pub enum BookingChange<'a> {
    Confirmed(&'a BookingEmail),
    Rescheduled {
        booking: &'a BookingEmail,
        previous_start: DateTime<Utc>,
    },
    Cancelled {
        booking: &'a BookingEmail,
        reason: Option<&'a str>,
    },
}

impl<'a> BookingChange<'a> {
    fn booking(&self) -> &'a BookingEmail {
        match *self {
            BookingChange::Confirmed(b) => b,
            BookingChange::Rescheduled { booking, .. } => booking,
            BookingChange::Cancelled { booking, .. } => booking,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            BookingChange::Confirmed(_) => "confirmed",
            BookingChange::Rescheduled { .. } => "rescheduled",
            BookingChange::Cancelled { .. } => "cancelled",
        }
    }
}

/// Who an email goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    /// A display name (may be empty); control characters are dropped before it reaches a header.
    pub name: String,
}

impl Recipient {
    pub fn new(address: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            name: name.into(),
        }
    }

    /// `email.staff_inbox`, named after the clinic unless the setting names it.
    pub fn staff_inbox(settings: &Settings) -> Recipient {
        match settings.email.staff_inbox.parse::<Mailbox>() {
            Ok(mailbox) => Recipient::new(
                mailbox.email.to_string(),
                mailbox
                    .name
                    .unwrap_or_else(|| format!("{} front desk", settings.clinic.name)),
            ),
            Err(_) => Recipient::new(settings.email.staff_inbox.trim(), ""),
        }
    }

    /// `Name <address>` for a Reply-To header.
    fn mailbox(&self) -> String {
        match (
            transport::display_name(&self.name),
            self.address.trim().parse(),
        ) {
            (name, Ok(address)) => Mailbox::new(name, address).to_string(),
            (_, Err(_)) => self.address.trim().to_string(),
        }
    }
}

/// Writes every email a booking change causes into the outbox (patient — only when
/// patient_email is Some —, practitioner when practitioner_email is Some, and
/// email.staff_inbox), voids/schedules reminders (a reminder email.reminder_hours_before the
/// start, as a pending row whose next_attempt_at is that time; none when 0, when that time is
/// already past, or when there is no patient email; voided on cancel and on reschedule, then
/// rescheduled).
///
/// Pass the transaction of the change itself, so the emails exist if and only if it commits.
pub async fn booking_changed(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    change: BookingChange<'_>,
) -> Result<(), DbErr> {
    prepare_booking_changed(settings, tz, change, Utc::now())?
        .write(conn)
        .await
}

/// The emails of one booking change, rendered and not yet written: rendering needs no
/// database, so a writer can do it before taking the write slot and only write the rows in it.
#[derive(Debug)]
pub struct PreparedEmails {
    appointment_id: Uuid,
    emails: Vec<OutgoingEmail>,
}

impl PreparedEmails {
    /// Writes the rows (in one statement) after voiding the booking's pending reminder: a
    /// booking has at most one, for its current time. Pass the transaction of the change.
    pub async fn write(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        outbox::void_reminders(conn, self.appointment_id).await?;
        outbox::enqueue_many(conn, &self.emails).await
    }

    /// What [`PreparedEmails::write`] runs for a booking created in the same transaction
    /// (nothing to void): the one insert of its rows, for a caller that batches its writes.
    pub fn insert_for_new_booking(&self) -> Option<sea_orm::sea_query::InsertStatement> {
        outbox::pending_insert(&self.emails)
    }

    /// The rendered rows, for a caller that writes them itself (the single-statement booking
    /// on PostgreSQL).
    pub fn into_emails(self) -> Vec<OutgoingEmail> {
        self.emails
    }
}

/// Renders what [`booking_changed`] writes, as of `now`.
pub fn prepare_booking_changed(
    settings: &Settings,
    tz: Tz,
    change: BookingChange<'_>,
    now: DateTime<Utc>,
) -> Result<PreparedEmails, DbErr> {
    let templates = templates(settings)?;
    let booking = change.booking();
    let vars = compose::booking_vars(settings, tz, change);
    let domain = compose::message_id_domain(settings);
    let mut emails = Vec::with_capacity(4);

    if let Some(address) = &booking.patient_email {
        let (kind, method) = match change {
            BookingChange::Confirmed(_) => (EmailKind::BookingConfirmed, ical::Method::Request),
            BookingChange::Rescheduled { .. } => {
                (EmailKind::BookingRescheduled, ical::Method::Request)
            }
            BookingChange::Cancelled { .. } => (EmailKind::BookingCancelled, ical::Method::Cancel),
        };
        let to = Recipient::new(address, &booking.patient_name);
        let ics = compose::invite(settings, tz, booking, method, &to, now);
        emails.push(
            compose::email(&templates, kind, &to, None, &vars, &domain)?.with_booking(
                booking.appointment_id,
                Some((ics, method.as_str())),
                now,
            ),
        );
    }
    if let Some(address) = &booking.practitioner_email {
        let to = Recipient::new(address, &booking.practitioner_name);
        emails.push(
            compose::email(
                &templates,
                EmailKind::PractitionerNotice,
                &to,
                None,
                &vars,
                &domain,
            )?
            .with_booking(booking.appointment_id, None, now),
        );
    }
    let staff = Recipient::staff_inbox(settings);
    emails.push(
        compose::email(
            &templates,
            EmailKind::StaffNotice,
            &staff,
            None,
            &vars,
            &domain,
        )?
        .with_booking(booking.appointment_id, None, now),
    );
    if let (false, Some(address)) = (
        matches!(change, BookingChange::Cancelled { .. }),
        &booking.patient_email,
    ) {
        let hours = settings.email.reminder_hours_before;
        let at = booking.start - chrono::Duration::hours(i64::from(hours));
        if hours > 0 && at > now {
            let to = Recipient::new(address, &booking.patient_name);
            emails.push(
                compose::email(&templates, EmailKind::Reminder, &to, None, &vars, &domain)?
                    .with_booking(booking.appointment_id, None, at),
            );
        }
    }
    Ok(PreparedEmails {
        appointment_id: booking.appointment_id,
        emails,
    })
}

/// Renders `kind` with the clinic's details and `vars` and writes it into the outbox, due now;
/// for emails that are not about a booking (enquiries). Pass the transaction of the change
/// that causes it.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    kind: EmailKind,
    to: &Recipient,
    reply_to: Option<&Recipient>,
    vars: &[(&str, &str)],
) -> Result<Uuid, DbErr> {
    enqueue_at(conn, settings, kind, to, reply_to, vars, None, Utc::now()).await
}

/// [`enqueue`], not sent before `send_after`, and keyed to `about` (the row the worker checks
/// before sending, as a booking's id keys its reminder).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enqueue_at(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    kind: EmailKind,
    to: &Recipient,
    reply_to: Option<&Recipient>,
    vars: &[(&str, &str)],
    about: Option<Uuid>,
    send_after: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let templates = templates(settings)?;
    let mut all = compose::clinic_vars(settings);
    for (key, value) in vars {
        all.insert(key.to_string(), Value::from(*value));
    }
    let mut email = compose::email(
        &templates,
        kind,
        to,
        reply_to,
        &all,
        &compose::message_id_domain(settings),
    )?;
    email.appointment_id = about;
    email.send_after = send_after;
    outbox::enqueue(conn, &email).await
}

/// Checks at start-up that the template folder is complete and renders.
pub fn check_templates(dir: &Path) -> Result<(), render::TemplateError> {
    Templates::for_dir(dir).map(|_| ())
}

fn templates(settings: &Settings) -> Result<std::sync::Arc<Templates>, DbErr> {
    Templates::for_dir(&settings.email.templates_dir)
        .map_err(|e| DbErr::Custom(format!("email.templates_dir: {e}")))
}
