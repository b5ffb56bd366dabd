//! Signed webhooks (Standard Webhooks): events are written as delivery rows in the same
//! transaction as the change that causes them (`emit`), and a worker posts them to each
//! subscribed endpoint with a signature, retrying on a fixed schedule.
//!
//! Files: `signing` (secrets and signatures), `target` (which addresses may be contacted),
//! `client` (one HTTP attempt), `endpoints` and `deliveries` (tables), `subscribers` (who
//! subscribes to what, cached for the booking write slot), `worker` (the loop).

pub mod client;
pub mod deliveries;
pub mod endpoints;
pub mod signing;
pub mod subscribers;
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
        .map(|e| e.id)
        .collect();
    emit_to(conn, &subscribed, now, event, data).await
}

/// `emit` to endpoints found subscribed (perhaps from `subscribers`' copy): each delivery is
/// written only if its endpoint is still active when the row goes in.
pub async fn emit_to(
    conn: &impl ConnectionTrait,
    subscribed: &[uuid::Uuid],
    now: DateTime<Utc>,
    event: EventType,
    data: serde_json::Value,
) -> Result<u64, DbErr> {
    if subscribed.is_empty() {
        return Ok(0);
    }
    let body = event_body(now, event, data);
    // One message id per event: an endpoint sees the same id on every retry and replay.
    let webhook_id = new_webhook_id();
    let mut written = 0;
    for endpoint in subscribed {
        if deliveries::insert_if_active(conn, *endpoint, event, &webhook_id, &body, now).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// What [`emit_to`] runs, for a caller that batches its writes.
pub fn delivery_inserts(
    subscribed: &[uuid::Uuid],
    now: DateTime<Utc>,
    event: EventType,
    data: serde_json::Value,
) -> Result<Vec<sea_orm::sea_query::InsertStatement>, DbErr> {
    if subscribed.is_empty() {
        return Ok(Vec::new());
    }
    let body = event_body(now, event, data);
    let webhook_id = new_webhook_id();
    subscribed
        .iter()
        .map(|endpoint| {
            deliveries::insert_if_active_statement(*endpoint, event, &webhook_id, &body, now)
        })
        .collect()
}

/// The signed body of an event: its type, time and data.
pub fn event_body(now: DateTime<Utc>, event: EventType, data: serde_json::Value) -> String {
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

/// A fresh message id: one per event, the same for every endpoint and every retry.
pub fn new_webhook_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
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
