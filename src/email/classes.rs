//! Class emails: to a seat holder when their seat is booked or cancelled, and when the class
//! changes or is cancelled. Each carries an invitation with one stable UID per seat and the
//! session's SEQUENCE (raised on every change), so calendar clients update one event.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::config::Settings;

use super::{BookingChange, BookingEmail, EmailKind, Recipient, compose, ical, outbox};

/// What the emails about one seat need to say.
#[derive(Debug, Clone)]
pub struct SeatEmail {
    pub seat_id: Uuid,
    pub reference: String,
    pub service_name: String,
    pub practitioner_name: String,
    pub patient_name: String,
    pub patient_email: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The session's iCalendar SEQUENCE.
    pub sequence: i32,
    pub manage_url: Option<String>,
}

/// A change a seat holder must hear about.
#[derive(Debug, Clone, Copy)]
pub enum SeatChange<'a> {
    Confirmed(&'a SeatEmail),
    ClassChanged {
        seat: &'a SeatEmail,
        previous_start: DateTime<Utc>,
    },
    ClassCancelled {
        seat: &'a SeatEmail,
        reason: &'a str,
    },
    SeatCancelled(&'a SeatEmail),
}

/// Writes the seat holder's email about `change` into the outbox (nothing without an
/// address). Pass the transaction of the change itself.
pub async fn seat_changed(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    change: SeatChange<'_>,
) -> Result<(), DbErr> {
    let now = Utc::now();
    let (seat, kind, method) = match change {
        SeatChange::Confirmed(s) => (s, EmailKind::SeatConfirmed, ical::Method::Request),
        SeatChange::ClassChanged { seat, .. } => {
            (seat, EmailKind::ClassChanged, ical::Method::Request)
        }
        SeatChange::ClassCancelled { seat, .. } => {
            (seat, EmailKind::ClassCancelled, ical::Method::Cancel)
        }
        SeatChange::SeatCancelled(s) => (s, EmailKind::SeatCancelled, ical::Method::Cancel),
    };
    let Some(address) = &seat.patient_email else {
        return Ok(());
    };
    let booking = BookingEmail {
        appointment_id: seat.seat_id,
        reference: seat.reference.clone(),
        service_name: seat.service_name.clone(),
        practitioner_name: seat.practitioner_name.clone(),
        practitioner_email: None,
        patient_name: seat.patient_name.clone(),
        patient_email: seat.patient_email.clone(),
        start: seat.start,
        end: seat.end,
        sequence: seat.sequence,
        manage_url: seat.manage_url.clone(),
        series: None,
    };
    let as_booking = match change {
        SeatChange::Confirmed(_) => BookingChange::Confirmed(&booking),
        SeatChange::ClassChanged { previous_start, .. } => BookingChange::Rescheduled {
            booking: &booking,
            previous_start,
        },
        SeatChange::ClassCancelled { reason, .. } => BookingChange::Cancelled {
            booking: &booking,
            reason: Some(reason).filter(|r| !r.trim().is_empty()),
        },
        SeatChange::SeatCancelled(_) => BookingChange::Cancelled {
            booking: &booking,
            reason: None,
        },
    };
    let templates = super::templates(settings)?;
    let vars = compose::booking_vars(settings, tz, as_booking);
    let to = Recipient::new(address, &seat.patient_name);
    let ics = compose::invite(settings, tz, &booking, method, &to, now);
    let email = compose::email(
        &templates,
        kind,
        &to,
        None,
        &vars,
        &compose::message_id_domain(settings),
    )?
    // The seat's id keys the outbox's per-recipient ordering, as a booking's id does.
    .with_booking(seat.seat_id, Some((ics, method.as_str())), now);
    outbox::enqueue(conn, &email).await.map(|_| ())
}
