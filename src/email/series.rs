//! A course of treatment's emails: the patient gets one confirmation listing every date with
//! its own manage link and one recurring invitation (RRULE, EXDATE for skipped dates); the
//! practitioner and the front desk get one notice listing the dates; each occurrence gets its
//! own reminder.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::Value;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::config::Settings;

use super::{
    BookingChange, BookingEmail, EmailKind, Recipient, compose, ical, local_when, outbox, templates,
};

/// What a new series' emails say.
#[derive(Debug, Clone)]
pub struct SeriesEmail {
    pub series_id: Uuid,
    pub every_weeks: u32,
    /// Exactly one of `count` (occurrences the rule gives, skipped ones included) and
    /// `until` (the last instant an occurrence may start).
    pub count: Option<u32>,
    pub until: Option<DateTime<Utc>>,
    /// The first and last starts the rule gives (DTSTART, and the span of the zone's rules).
    pub first_start: DateTime<Utc>,
    pub last_start: DateTime<Utc>,
    /// Starts the rule gives that were not booked.
    pub skipped: Vec<DateTime<Utc>>,
    /// The booked occurrences, in order, each with its manage link.
    pub bookings: Vec<BookingEmail>,
}

/// Writes the series' emails into the outbox; pass the series' own transaction.
pub async fn series_confirmed(
    conn: &impl ConnectionTrait,
    settings: &Settings,
    tz: Tz,
    series: &SeriesEmail,
) -> Result<(), DbErr> {
    let Some(first) = series.bookings.first() else {
        return Ok(());
    };
    let templates = templates(settings)?;
    let now = Utc::now();
    let domain = compose::message_id_domain(settings);
    let mut vars = compose::booking_vars(settings, tz, BookingChange::Confirmed(first));
    let occurrences: Vec<Value> = series
        .bookings
        .iter()
        .map(|b| {
            Value::from_pairs([
                ("when", Value::from(local_when(b.start, tz))),
                ("reference", Value::from(b.reference.as_str())),
                ("manage_url", Value::from(b.manage_url.clone())),
            ])
        })
        .collect();
    let skipped: Vec<String> = series.skipped.iter().map(|t| local_when(*t, tz)).collect();
    vars.insert("occurrences".to_string(), Value::from(occurrences));
    vars.insert("skipped".to_string(), Value::from(skipped));
    vars.insert(
        "occurrence_count".to_string(),
        Value::from(series.bookings.len()),
    );

    if let Some(address) = &first.patient_email {
        let to = Recipient::new(address, &first.patient_name);
        let ics = invite(settings, tz, series, first, &to, now);
        let email = compose::email(
            &templates,
            EmailKind::BookingConfirmed,
            &to,
            None,
            &vars,
            &domain,
        )?
        .with_booking(
            first.appointment_id,
            Some((ics, ical::Method::Request.as_str())),
            now,
        );
        outbox::enqueue(conn, &email).await?;
    }
    if let Some(address) = &first.practitioner_email {
        let to = Recipient::new(address, &first.practitioner_name);
        let email = compose::email(
            &templates,
            EmailKind::PractitionerNotice,
            &to,
            None,
            &vars,
            &domain,
        )?
        .with_booking(first.appointment_id, None, now);
        outbox::enqueue(conn, &email).await?;
    }
    let staff = Recipient::staff_inbox(settings);
    let email = compose::email(
        &templates,
        EmailKind::StaffNotice,
        &staff,
        None,
        &vars,
        &domain,
    )?
    .with_booking(first.appointment_id, None, now);
    outbox::enqueue(conn, &email).await?;

    // One reminder per occurrence, each tied to its own booking so that cancelling or moving
    // one occurrence voids exactly its reminder.
    let hours = settings.email.reminder_hours_before;
    for booking in &series.bookings {
        let Some(address) = &booking.patient_email else {
            continue;
        };
        let at = booking.start - chrono::Duration::hours(i64::from(hours));
        if hours == 0 || at <= now {
            continue;
        }
        let to = Recipient::new(address, &booking.patient_name);
        let vars = compose::booking_vars(settings, tz, BookingChange::Confirmed(booking));
        let email = compose::email(&templates, EmailKind::Reminder, &to, None, &vars, &domain)?
            .with_booking(booking.appointment_id, None, at);
        outbox::enqueue(conn, &email).await?;
    }
    Ok(())
}

/// The series' one recurring invitation.
fn invite(
    settings: &Settings,
    tz: Tz,
    series: &SeriesEmail,
    first: &BookingEmail,
    attendee: &Recipient,
    now: DateTime<Utc>,
) -> String {
    let organizer = compose::organizer(settings);
    let summary = format!("{} with {}", first.service_name, first.practitioner_name);
    let mut description = format!(
        "{} at {}: a course of {} sessions.",
        summary,
        settings.clinic.name,
        series.bookings.len()
    );
    for b in &series.bookings {
        description.push_str(&format!(
            "\n{} (reference {})",
            local_when(b.start, tz),
            b.reference
        ));
        if let Some(url) = &b.manage_url {
            description.push_str(&format!(": {url}"));
        }
    }
    description.push_str(&format!("\nPhone: {}", settings.clinic.phone));
    let length = first.end - first.start;
    ical::render(&ical::Invite {
        method: ical::Method::Request,
        appointment_id: first.appointment_id,
        sequence: 0,
        start: series.first_start,
        end: series.first_start + length,
        stamp: now,
        summary: &summary,
        location: &format!("{}, {}", settings.clinic.name, settings.clinic.address),
        description: &description,
        organizer_name: &settings.clinic.name,
        organizer_email: &organizer,
        attendee_name: &attendee.name,
        attendee_email: &attendee.address,
        recurrence: Some(ical::Recurrence::Series {
            series_id: series.series_id,
            tz,
            every_weeks: series.every_weeks,
            count: series.count,
            until: series.until,
            last_start: series.last_start,
            skipped: &series.skipped,
        }),
    })
}
