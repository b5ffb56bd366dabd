//! Signed webhooks (Standard Webhooks): events are written as delivery rows in the same
//! transaction as the change that causes them (`emit`), and a worker posts them to each
//! subscribed endpoint with a signature, retrying on a fixed schedule.
//!
//! Files: `signing` (secrets and signatures), `target` (which addresses may be contacted),
//! `client` (one HTTP attempt), `endpoints` and `deliveries` (tables), `worker` (the loop).

pub mod client;
pub mod deliveries;
pub mod endpoints;
pub mod signing;
pub mod target;
pub mod worker;

use chrono::{DateTime, SecondsFormat, Utc};
use entity::appointment;
use sea_orm::{ConnectionTrait, DbErr};

/// Every event type an endpoint may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    BookingCreated,
    BookingRescheduled,
    BookingCancelled,
    BookingAttendance,
    ClassSeatBooked,
    ClassSeatCancelled,
    ClassCancelled,
    WaitlistOffered,
    WaitlistClaimed,
    EnquiryReceived,
    SeriesCreated,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        EventType::BookingCreated,
        EventType::BookingRescheduled,
        EventType::BookingCancelled,
        EventType::BookingAttendance,
        EventType::ClassSeatBooked,
        EventType::ClassSeatCancelled,
        EventType::ClassCancelled,
        EventType::WaitlistOffered,
        EventType::WaitlistClaimed,
        EventType::EnquiryReceived,
        EventType::SeriesCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BookingCreated => "booking.created",
            EventType::BookingRescheduled => "booking.rescheduled",
            EventType::BookingCancelled => "booking.cancelled",
            EventType::BookingAttendance => "booking.attendance",
            EventType::ClassSeatBooked => "class_seat.booked",
            EventType::ClassSeatCancelled => "class_seat.cancelled",
            EventType::ClassCancelled => "class.cancelled",
            EventType::WaitlistOffered => "waitlist.offered",
            EventType::WaitlistClaimed => "waitlist.claimed",
            EventType::EnquiryReceived => "enquiry.received",
            EventType::SeriesCreated => "series.created",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Writes one pending delivery of `event` for each active endpoint subscribed to it; pass the
/// transaction of the change, so the event exists exactly when the change does. Returns how
/// many deliveries were written. `data` holds ids and facts only, never contact details.
pub async fn emit(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: EventType,
    data: serde_json::Value,
) -> Result<u64, DbErr> {
    let subscribed: Vec<_> = endpoints::active(conn)
        .await?
        .into_iter()
        .filter(|e| endpoints::events_of(e).contains(&event))
        .collect();
    if subscribed.is_empty() {
        return Ok(0);
    }
    let body = serde_json::json!({
        "type": event.as_str(),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    // One message id per event: an endpoint sees the same id on every retry and replay.
    let webhook_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    for endpoint in &subscribed {
        deliveries::insert(conn, endpoint.id, event, &webhook_id, &body, now).await?;
    }
    Ok(subscribed.len() as u64)
}

/// `emit` for a booking event, with the booking's ids, reference, times and status.
pub async fn emit_booking(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: EventType,
    booking: &appointment::Model,
) -> Result<u64, DbErr> {
    emit(conn, now, event, booking_data(booking)).await
}

/// The `data` of a booking event.
pub fn booking_data(b: &appointment::Model) -> serde_json::Value {
    serde_json::json!({
        "booking_id": b.id,
        "reference": b.reference,
        "status": b.status,
        "service_id": b.service_id,
        "practitioner_id": b.practitioner_id,
        "start": b.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "end": b.ends_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "series_id": b.series_id,
    })
}

/// `emit` of `enquiry.received`: the enquiry's id, reference and topic (never its text or the
/// enquirer's contact details).
pub async fn emit_enquiry(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    enquiry: &entity::enquiry::Model,
) -> Result<u64, DbErr> {
    let data = serde_json::json!({
        "enquiry_id": enquiry.id,
        "reference": enquiry.reference,
        "topic": enquiry.topic,
    });
    emit(conn, now, EventType::EnquiryReceived, data).await
}

/// `emit` of a seat event (`class_seat.booked`, `class_seat.cancelled`): the seat's id, its
/// class, reference and status.
pub async fn emit_seat(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    event: EventType,
    seat: &entity::class_seat::Model,
) -> Result<u64, DbErr> {
    let data = serde_json::json!({
        "seat_id": seat.id,
        "class_id": seat.class_session_id,
        "reference": seat.reference,
        "status": seat.status,
    });
    emit(conn, now, event, data).await
}

/// `emit` of `class.cancelled`: the class's id and status.
pub async fn emit_class_cancelled(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    session: &entity::class_session::Model,
) -> Result<u64, DbErr> {
    let data = serde_json::json!({ "class_id": session.id, "status": session.status });
    emit(conn, now, EventType::ClassCancelled, data).await
}
