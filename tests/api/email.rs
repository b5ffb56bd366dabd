//! Email through a real SMTP server on loopback: what each booking change sends, headers,
//! recipients and calendar invitations; retries, dead letters and staff retry; crash
//! recovery; reminders; the file transport. The worker is driven one step at a time with
//! `run_once`, and time is made to pass by moving `next_attempt_at`/`lease_until` in the
//! database.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use entity::{appointment, outbox_message, patient, practitioner, service};
use frontdesk::{
    email::{
        self, BookingChange, BookingEmail, EmailKind, Recipient,
        outbox::{self, OutgoingEmail},
        worker,
    },
    store,
};
use icalendar::{Component, DatePerhapsTime};
use mail_parser::MimeHeaders;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr,
};
use serde_json::json;
use uuid::Uuid;

use crate::{
    helpers::{TestApp, spawn_app, spawn_app_with_smtp},
    smtp::{Received, SmtpServer},
};

const PATIENT: &str = "pat.jones@patients.test";
const PRACTITIONER: &str = "sam.physio@clinic.test";
const STAFF_INBOX: &str = "frontdesk@example.com";

/// Inserts a service, practitioner, patient and confirmed appointment starting at `start`,
/// and returns what the emails about it need.
async fn booking_at(app: &TestApp, start: DateTime<Utc>) -> BookingEmail {
    let now = Utc::now();
    let suffix = Uuid::new_v4().simple().to_string();
    let service = service::ActiveModel {
        id: Set(Uuid::new_v4()),
        slug: Set(format!("sports-massage-{suffix}")),
        name: Set("Sports massage".into()),
        description: Set(String::new()),
        category: Set("sports_massage".into()),
        duration_minutes: Set(45),
        buffer_before_minutes: Set(0),
        buffer_after_minutes: Set(0),
        price_pence: Set(6000),
        active: Set(true),
        online_bookable: Set(true),
        slot_step_minutes: Set(None),
        min_notice_minutes: Set(None),
        max_advance_days: Set(None),
        cancel_notice_hours: Set(None),
        reschedule_notice_hours: Set(None),
        capacity: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.db)
    .await
    .expect("service");
    let practitioner = practitioner::ActiveModel {
        id: Set(Uuid::new_v4()),
        slug: Set(format!("sam-{suffix}")),
        name: Set("Sam Physio".into()),
        discipline: Set("physiotherapist".into()),
        title: Set("Physiotherapist".into()),
        bio: Set(String::new()),
        email: Set(Some(PRACTITIONER.into())),
        active: Set(true),
        online_bookable: Set(true),
        feed_token_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.db)
    .await
    .expect("practitioner");
    let patient = patient::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set("Pat Jones".into()),
        // (unique in the table; the emails go to PATIENT whatever is stored)
        email: Set(Some(format!("pat-{suffix}@patients.test"))),
        phone: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        erased_at: Set(None),
    }
    .insert(&app.db)
    .await
    .expect("patient");
    let end = start + Duration::minutes(45);
    let reference = format!("FD-{}", &suffix[..6].to_uppercase());
    let appointment = appointment::ActiveModel {
        id: Set(Uuid::new_v4()),
        reference: Set(reference.clone()),
        service_id: Set(service.id),
        practitioner_id: Set(practitioner.id),
        patient_id: Set(patient.id),
        status: Set("confirmed".into()),
        starts_at: Set(start),
        ends_at: Set(end),
        blocked_from: Set(start),
        blocked_until: Set(end),
        source: Set("online".into()),
        notes: Set(String::new()),
        manage_token_hash: Set(None),
        cancel_reason: Set(None),
        sequence: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        series_id: Set(None),
        series_start: Set(None),
    }
    .insert(&app.db)
    .await
    .expect("appointment");
    BookingEmail {
        appointment_id: appointment.id,
        reference,
        service_name: service.name,
        practitioner_name: practitioner.name,
        practitioner_email: Some(PRACTITIONER.into()),
        patient_name: patient.name,
        patient_email: Some(PATIENT.into()),
        start,
        end,
        sequence: 0,
        manage_url: Some(format!(
            "{}/manage/tok-{suffix}",
            app.settings.server.public_url
        )),
        series: None,
    }
}

/// Three days from now at a whole minute: far enough for a 24-hour reminder.
fn in_three_days() -> DateTime<Utc> {
    (Utc::now() + Duration::days(3))
        .duration_trunc(Duration::minutes(1))
        .expect("truncates")
}

/// Writes the emails of `change` in a transaction of its own, as the booking code does.
async fn record(app: &TestApp, change: BookingChange<'_>) {
    let txn = store::begin_write(&app.db).await.expect("begin");
    email::booking_changed(&txn, &app.settings, app.state.tz, change)
        .await
        .expect("booking_changed");
    txn.commit().await.expect("commit");
}

async fn rows(app: &TestApp) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .order_by_asc(outbox_message::Column::CreatedAt)
        .all(&app.db)
        .await
        .expect("outbox rows")
}

async fn row(app: &TestApp, id: Uuid) -> outbox_message::Model {
    outbox_message::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("row exists")
}

async fn run_once(app: &TestApp) -> usize {
    worker::run_once(&app.state).await.expect("worker step")
}

/// Makes every pending row due now, as if its wait had passed.
async fn make_due(app: &TestApp) {
    outbox_message::Entity::update_many()
        .col_expr(
            outbox_message::Column::NextAttemptAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .filter(outbox_message::Column::Status.eq("pending"))
        .exec(&app.db)
        .await
        .expect("make due");
}

/// The message received for `address`.
fn for_recipient<'a>(messages: &'a [Received], address: &str) -> Vec<&'a Received> {
    messages
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == address))
        .collect()
}

/// The `text/calendar` part: its `method` parameter and the parsed calendar.
fn calendar(message: &Received) -> Option<(String, icalendar::Calendar, String)> {
    let parsed = message.parsed();
    let part = parsed
        .attachments()
        .find(|p| p.is_content_type("text", "calendar"))?;
    let method = part
        .content_type()
        .and_then(|c| c.attribute("method"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(part.attachment_name(), Some("invite.ics"));
    let text = String::from_utf8(part.contents().to_vec()).expect("UTF-8 calendar");
    let cal: icalendar::Calendar = text.parse().expect("the invitation parses as iCalendar");
    Some((method, cal, text))
}

fn event(cal: &icalendar::Calendar) -> &icalendar::Event {
    let events: Vec<_> = cal.components.iter().filter_map(|c| c.as_event()).collect();
    assert_eq!(events.len(), 1, "one VEVENT");
    events[0]
}

fn utc_start(ev: &icalendar::Event) -> DateTime<Utc> {
    match ev.get_start() {
        Some(DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(t))) => t,
        other => panic!("DTSTART is not a UTC date-time: {other:?}"),
    }
}

fn utc_end(ev: &icalendar::Event) -> DateTime<Utc> {
    match ev.get_end() {
        Some(DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(t))) => t,
        other => panic!("DTEND is not a UTC date-time: {other:?}"),
    }
}

/// Subjects of the messages, by kind.
fn kinds(rows: &[outbox_message::Model]) -> Vec<(String, String, String)> {
    let mut kinds: Vec<_> = rows
        .iter()
        .map(|r| (r.kind.clone(), r.to_address.clone(), r.status.clone()))
        .collect();
    kinds.sort();
    kinds
}

fn triple(kind: &str, to: &str, status: &str) -> (String, String, String) {
    (kind.to_string(), to.to_string(), status.to_string())
}

#[tokio::test]
async fn a_confirmed_booking_emails_the_patient_practitioner_and_front_desk_once_each() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let booking = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&booking)).await;

    // Nothing leaves before the worker runs: the transaction only wrote rows.
    assert!(smtp.messages().is_empty());
    assert_eq!(run_once(&app).await, 3, "the reminder is not due yet");
    assert_eq!(run_once(&app).await, 0, "nothing is sent twice");

    let stored = rows(&app).await;
    assert_eq!(
        kinds(&stored),
        vec![
            triple("booking_confirmed", PATIENT, "sent"),
            triple("practitioner_notice", PRACTITIONER, "sent"),
            triple("reminder", PATIENT, "pending"),
            triple("staff_notice", STAFF_INBOX, "sent"),
        ]
    );
    let reminder = stored
        .iter()
        .find(|r| r.kind == "reminder")
        .expect("reminder");
    assert_eq!(
        reminder.next_attempt_at,
        booking.start - Duration::hours(24)
    );

    let messages = smtp.messages();
    assert_eq!(messages.len(), 3);
    for m in &messages {
        assert_eq!(m.rcpt_to.len(), 1, "one recipient per message");
        assert_eq!(m.mail_from, "bookings@example.com");
        let stored_row = stored
            .iter()
            .find(|r| r.to_address == m.rcpt_to[0] && r.status == "sent")
            .expect("a row per message");
        assert_eq!(m.header("Message-ID"), Some(stored_row.message_id.clone()));
        assert!(
            stored_row.message_id.ends_with("@example.com>"),
            "Message-ID uses the domain of email.from: {}",
            stored_row.message_id
        );
        let parsed = m.parsed();
        assert_eq!(
            parsed
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("bookings@example.com")
        );
        assert_eq!(parsed.subject(), Some(stored_row.subject.as_str()));
        assert!(parsed.body_html(0).is_some(), "an HTML alternative");
        let text = parsed.body_text(0).expect("a text part").to_string();
        for needle in [
            "Riverside Physio & Fitness",
            "12 Riverside Walk, London SE1 9AA",
            "020 7946 0000",
            "Sports massage",
            "Sam Physio",
            &booking.reference,
        ] {
            assert!(text.contains(needle), "{needle:?} missing from {text}");
        }
    }

    let patient = for_recipient(&messages, PATIENT);
    assert_eq!(patient.len(), 1);
    let patient = patient[0].parsed();
    let to = patient.to().and_then(|a| a.first()).expect("To");
    assert_eq!(
        (to.name(), to.address()),
        (Some("Pat Jones"), Some(PATIENT))
    );
    assert!(
        patient
            .subject()
            .is_some_and(|s| s.starts_with("Booking confirmed: Sports massage")),
        "{:?}",
        patient.subject()
    );
    let text = patient.body_text(0).expect("text").to_string();
    let local = booking.start.with_timezone(&chrono_tz::Europe::London);
    let local_end = booking.end.with_timezone(&chrono_tz::Europe::London);
    let expected_time = format!(
        "{}-{} {}",
        local.format("%H:%M"),
        local_end.format("%H:%M"),
        local.format("%Z")
    );
    assert!(
        text.contains(&expected_time),
        "{expected_time} missing: {text}"
    );
    assert!(text.contains(&local.format("%A %-d %B %Y").to_string()));
    assert!(text.contains(booking.manage_url.as_deref().expect("url")));

    let (method, cal, raw) = calendar(patient_message(&messages)).expect("an invitation");
    assert_eq!(method, "REQUEST");
    assert_eq!(cal.property_value("METHOD"), Some("REQUEST"));
    let ev = event(&cal);
    assert_eq!(
        ev.get_uid(),
        Some(format!("{}@frontdesk", booking.appointment_id).as_str())
    );
    assert_eq!(ev.get_sequence(), Some(0));
    assert_eq!(utc_start(ev), booking.start);
    assert_eq!(utc_end(ev), booking.end, "DTEND is the end of the session");
    let unfolded = raw.replace("\r\n ", "");
    for line in [
        "LOCATION:Riverside Physio & Fitness\\, 12 Riverside Walk\\, London SE1 9AA",
        "ORGANIZER;CN=\"Riverside Physio & Fitness\":mailto:bookings@example.com",
        &format!(
            "ATTENDEE;CN=\"Pat Jones\";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:mailto:{PATIENT}"
        ),
    ] {
        assert!(
            unfolded.contains(&format!("\r\n{line}\r\n")),
            "{line:?} missing from {raw}"
        );
    }

    // Only the patient's email carries an invitation.
    for address in [PRACTITIONER, STAFF_INBOX] {
        let m = for_recipient(&messages, address);
        assert_eq!(m.len(), 1);
        assert!(calendar(m[0]).is_none(), "{address} got an invitation");
    }
}

fn patient_message(messages: &[Received]) -> &Received {
    for_recipient(messages, PATIENT)
        .into_iter()
        .next()
        .expect("a message to the patient")
}

#[tokio::test]
async fn a_reschedule_and_a_cancellation_update_the_same_calendar_event() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let first_start = in_three_days();
    let mut booking = booking_at(&app, first_start).await;
    record(&app, BookingChange::Confirmed(&booking)).await;
    run_once(&app).await;
    smtp.clear();

    booking.start = first_start + Duration::days(1);
    booking.end = booking.start + Duration::minutes(45);
    booking.sequence = 1;
    record(
        &app,
        BookingChange::Rescheduled {
            booking: &booking,
            previous_start: first_start,
        },
    )
    .await;
    assert_eq!(run_once(&app).await, 3);
    let moved = smtp.messages();
    assert_eq!(moved.len(), 3);
    let patient = patient_message(&moved);
    let subject = patient.parsed().subject().map(str::to_string);
    assert!(
        subject
            .as_deref()
            .is_some_and(|s| s.starts_with("Booking moved")),
        "{subject:?}"
    );
    let (method, cal, _) = calendar(patient).expect("an invitation");
    assert_eq!(method, "REQUEST");
    let ev = event(&cal);
    assert_eq!(
        ev.get_uid(),
        Some(format!("{}@frontdesk", booking.appointment_id).as_str())
    );
    assert_eq!(ev.get_sequence(), Some(1));
    assert_eq!(utc_start(ev), booking.start);
    let old_when = email::local_when(first_start, app.state.tz);
    let text = patient.parsed().body_text(0).expect("text").to_string();
    assert!(
        text.contains(&old_when),
        "the old time {old_when} is named: {text}"
    );

    // One pending reminder, for the new time; the old one is void.
    let reminders: Vec<_> = rows(&app)
        .await
        .into_iter()
        .filter(|r| r.kind == "reminder")
        .map(|r| (r.status, r.next_attempt_at))
        .collect();
    assert_eq!(
        reminders,
        vec![
            ("void".to_string(), first_start - Duration::hours(24)),
            ("pending".to_string(), booking.start - Duration::hours(24)),
        ]
    );

    smtp.clear();
    booking.sequence = 2;
    record(
        &app,
        BookingChange::Cancelled {
            booking: &booking,
            reason: Some("Feeling better, thanks"),
        },
    )
    .await;
    assert_eq!(run_once(&app).await, 3);
    let cancelled = smtp.messages();
    let patient = patient_message(&cancelled);
    let (method, cal, raw) = calendar(patient).expect("a cancellation");
    assert_eq!(method, "CANCEL");
    assert_eq!(cal.property_value("METHOD"), Some("CANCEL"));
    let ev = event(&cal);
    assert_eq!(
        ev.get_uid(),
        Some(format!("{}@frontdesk", booking.appointment_id).as_str())
    );
    assert_eq!(ev.get_sequence(), Some(2));
    assert!(raw.contains("\r\nSTATUS:CANCELLED\r\n"));
    let staff = for_recipient(&cancelled, STAFF_INBOX);
    let staff_text = staff[0].parsed().body_text(0).expect("text").to_string();
    assert!(
        staff_text.contains("Feeling better, thanks"),
        "{staff_text}"
    );
    assert!(
        rows(&app)
            .await
            .iter()
            .filter(|r| r.kind == "reminder")
            .all(|r| r.status == "void"),
        "a cancelled booking has no pending reminder"
    );
}

#[tokio::test]
async fn only_the_front_desk_hears_of_a_booking_without_addresses_and_no_reminder_is_made() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let mut booking = booking_at(&app, in_three_days()).await;
    booking.patient_email = None;
    booking.practitioner_email = None;
    record(&app, BookingChange::Confirmed(&booking)).await;
    assert_eq!(
        kinds(&rows(&app).await),
        vec![triple("staff_notice", STAFF_INBOX, "pending")]
    );
}

#[tokio::test]
async fn no_reminder_is_made_when_disabled_or_when_its_time_has_passed() {
    let smtp = SmtpServer::start().await;
    // Disabled.
    let app = spawn_app_with_smtp(&smtp, |s| s.email.reminder_hours_before = 0).await;
    let booking = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&booking)).await;
    assert!(rows(&app).await.iter().all(|r| r.kind != "reminder"));
    // Booked less than 24 hours ahead.
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let booking = booking_at(&app, Utc::now() + Duration::hours(5)).await;
    record(&app, BookingChange::Confirmed(&booking)).await;
    let stored = rows(&app).await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|r| r.kind != "reminder"));
}

#[tokio::test]
async fn a_due_reminder_for_a_confirmed_booking_is_sent_to_the_patient() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let booking = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&booking)).await;
    run_once(&app).await;
    smtp.clear();
    make_due(&app).await;
    assert_eq!(run_once(&app).await, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec![PATIENT.to_string()]);
    let subject = messages[0].parsed().subject().map(str::to_string);
    assert!(
        subject
            .as_deref()
            .is_some_and(|s| s.starts_with("Reminder: Sports massage"))
    );
}

#[tokio::test]
async fn a_reminder_for_a_booking_cancelled_or_already_started_is_voided_and_never_sent() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let cancelled = booking_at(&app, in_three_days()).await;
    let started = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&cancelled)).await;
    record(&app, BookingChange::Confirmed(&started)).await;
    run_once(&app).await;
    smtp.clear();
    // The bookings change behind the outbox's back: the worker must still notice.
    appointment::Entity::update_many()
        .col_expr(appointment::Column::Status, Expr::value("cancelled"))
        .filter(appointment::Column::Id.eq(cancelled.appointment_id))
        .exec(&app.db)
        .await
        .expect("cancel");
    appointment::Entity::update_many()
        .col_expr(
            appointment::Column::StartsAt,
            Expr::value(Utc::now() - Duration::minutes(5)),
        )
        .filter(appointment::Column::Id.eq(started.appointment_id))
        .exec(&app.db)
        .await
        .expect("move into the past");
    make_due(&app).await;
    assert_eq!(
        run_once(&app).await,
        1,
        "the started booking's reminder is voided before anything is claimed"
    );
    assert!(smtp.messages().is_empty(), "no reminder went out");
    let reminders: Vec<_> = rows(&app)
        .await
        .into_iter()
        .filter(|r| r.kind == "reminder")
        .collect();
    assert_eq!(reminders.len(), 2);
    assert!(
        reminders.iter().all(|r| r.status == "void"),
        "{reminders:?}"
    );
    make_due(&app).await;
    assert_eq!(run_once(&app).await, 0);
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn while_smtp_is_down_emails_wait_with_backoff_and_go_out_once_it_is_back() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.reminder_hours_before = 0).await;
    smtp.stop().await;
    let booking = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&booking)).await;

    let before = Utc::now();
    assert_eq!(run_once(&app).await, 3);
    for r in rows(&app).await {
        assert_eq!(r.status, "pending");
        // A server that cannot be reached says nothing about the message: not an attempt.
        assert_eq!((r.attempts, r.failures), (0, 1));
        assert!(r.lease_until.is_none());
        assert!(r.last_error.is_some());
        // backoff_base_seconds = 30, ±20 %.
        let wait = (r.next_attempt_at - before).num_milliseconds();
        assert!((23_000..=37_000).contains(&wait), "waits {wait} ms");
    }
    assert_eq!(run_once(&app).await, 0, "nothing is due during the backoff");

    // Second failure: the wait doubles.
    make_due(&app).await;
    let before = Utc::now();
    assert_eq!(run_once(&app).await, 3);
    for r in rows(&app).await {
        assert_eq!((r.attempts, r.failures), (0, 2));
        let wait = (r.next_attempt_at - before).num_milliseconds();
        assert!((47_000..=73_000).contains(&wait), "waits {wait} ms");
    }

    smtp.resume().await;
    make_due(&app).await;
    assert_eq!(run_once(&app).await, 3);
    assert_eq!(smtp.messages().len(), 3);
    for r in rows(&app).await {
        assert_eq!(r.status, "sent", "{r:?}");
        assert_eq!((r.attempts, r.failures), (0, 2));
        assert!(r.sent_at.is_some());
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_the_email_waits_for_a_retry() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.smtp.timeout_seconds = 1).await;
    smtp.go_silent();
    let id = enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
    let started = std::time::Instant::now();
    assert_eq!(run_once(&app).await, 1);
    assert!(
        started.elapsed() < StdDuration::from_secs(15),
        "the step took {:?}",
        started.elapsed()
    );
    let r = row(&app, id).await;
    assert_eq!(
        (r.status.as_str(), r.attempts, r.failures),
        ("pending", 0, 1),
        "a timeout is not the message's fault: it waits and is not counted"
    );
    assert!(r.lease_until.is_none());
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer")),
        "{:?}",
        r.last_error
    );
}

#[tokio::test]
async fn a_recipient_refused_with_550_is_dead_visible_to_staff_and_can_be_retried() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.reminder_hours_before = 0).await;
    smtp.refuse_recipient(PATIENT, 550);
    let booking = booking_at(&app, in_three_days()).await;
    record(&app, BookingChange::Confirmed(&booking)).await;
    assert_eq!(run_once(&app).await, 3);
    let stored = rows(&app).await;
    let dead = stored
        .iter()
        .find(|r| r.to_address == PATIENT)
        .expect("patient row");
    assert_eq!((dead.status.as_str(), dead.attempts), ("dead", 1));
    assert!(
        dead.last_error
            .as_deref()
            .is_some_and(|e| e.contains("550")),
        "{:?}",
        dead.last_error
    );
    assert_eq!(smtp.messages().len(), 2, "the others went out");

    let admin = app.admin_token().await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let list = app
        .get_as(&reception, "/api/v1/staff/outbox?status=dead")
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["page"], 1);
    let item = &list.body["items"][0];
    assert_eq!(item["id"], dead.id.to_string());
    assert_eq!(item["kind"], "booking_confirmed");
    assert_eq!(item["to"], PATIENT);
    assert_eq!(item["status"], "dead");
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["message_id"], dead.message_id);
    assert!(
        item["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("550"))
    );
    assert!(item["sent_at"].is_null());

    let retry_path = format!("/api/v1/staff/outbox/{}/retry", dead.id);
    let retried = app.post_as(&reception, &retry_path, json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body["status"], "pending");
    assert_eq!(retried.body["attempts"], 0);
    app.post_as(&reception, &retry_path, json!({}))
        .await
        .assert_problem(422, "not_retryable");
    let audit = app.get_as(&admin, "/api/v1/staff/audit").await;
    assert!(
        audit.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["action"] == "retry" && e["entity_id"] == dead.id.to_string()),
        "{}",
        audit.body
    );

    smtp.accept_all();
    assert_eq!(run_once(&app).await, 1);
    let delivered = row(&app, dead.id).await;
    assert_eq!(delivered.status, "sent");
    let to_patient = for_recipient(&smtp.messages(), PATIENT)
        .into_iter()
        .map(|m| m.header("Message-ID"))
        .collect::<Vec<_>>();
    assert_eq!(to_patient, vec![Some(dead.message_id.clone())]);
}

#[tokio::test]
async fn a_recipient_refused_temporarily_is_retried_then_dead_after_max_attempts() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.outbox.max_attempts = 3).await;
    smtp.refuse_recipient(STAFF_INBOX, 451);
    let id = enqueue_one(&app, EmailKind::StaffNotice, STAFF_INBOX).await;
    for attempt in 1..=3 {
        make_due(&app).await;
        assert_eq!(run_once(&app).await, 1);
        let r = row(&app, id).await;
        assert_eq!(r.attempts, attempt);
        let expected = if attempt < 3 { "pending" } else { "dead" };
        assert_eq!(r.status, expected, "after attempt {attempt}");
        assert!(r.last_error.as_deref().is_some_and(|e| e.contains("451")));
    }
    make_due(&app).await;
    assert_eq!(run_once(&app).await, 0, "a dead email is not claimed");
    assert!(smtp.messages().is_empty());
}

/// Writes one email of `kind` to `to` through the generic interface.
async fn enqueue_one(app: &TestApp, kind: EmailKind, to: &str) -> Uuid {
    let txn = store::begin_write(&app.db).await.expect("begin");
    let id = email::enqueue(
        &txn,
        &app.settings,
        kind,
        &Recipient::new(to, "Front Desk"),
        Some(&Recipient::new("alex@visitors.test", "Alex Visitor")),
        &[
            ("reference", "EQ-1234"),
            ("name", "Alex Visitor"),
            ("email", "alex@visitors.test"),
            ("phone", ""),
            ("topic", "pilates"),
            (
                "message",
                "Do you run beginners' classes?\n..And on Saturdays?",
            ),
            ("preferred_contact", "email"),
        ],
    )
    .await
    .expect("enqueue");
    txn.commit().await.expect("commit");
    id
}

#[tokio::test]
async fn an_enquiry_email_carries_reply_to_and_survives_dot_stuffing() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    enqueue_one(&app, EmailKind::EnquiryReceived, STAFF_INBOX).await;
    assert_eq!(run_once(&app).await, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let parsed = messages[0].parsed();
    let reply_to = parsed.reply_to().and_then(|a| a.first()).expect("Reply-To");
    assert_eq!(
        (reply_to.name(), reply_to.address()),
        (Some("Alex Visitor"), Some("alex@visitors.test"))
    );
    assert_eq!(
        parsed.subject(),
        Some("[EQ-1234] New enquiry: pilates from Alex Visitor")
    );
    let text = parsed.body_text(0).expect("text").to_string();
    assert!(text.contains("\n..And on Saturdays?"), "{text}");
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_resends_once_with_the_same_message_id() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let id = enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;

    // A worker claims the row and sends it, then dies before recording the outcome.
    let claimed = outbox::claim_due(&app.db, Utc::now(), StdDuration::from_secs(300), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    app.state
        .mailer
        .deliver(&claimed[0], &app.settings.email)
        .await
        .expect("sent");
    assert_eq!(run_once(&app).await, 0, "the lease keeps other workers off");

    // The lease expires; the row is claimable again and goes out a second time.
    outbox_message::Entity::update_many()
        .col_expr(
            outbox_message::Column::LeaseUntil,
            Expr::value(Some(Utc::now() - Duration::seconds(1))),
        )
        .filter(outbox_message::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .expect("expire the lease");
    assert_eq!(run_once(&app).await, 1);
    assert_eq!(run_once(&app).await, 0);
    let r = row(&app, id).await;
    // The claim that found the lease run out counts as an attempt: it may have gone out.
    assert_eq!((r.status.as_str(), r.attempts), ("sent", 1));

    let ids: Vec<_> = smtp
        .messages()
        .iter()
        .map(|m| m.header("Message-ID"))
        .collect();
    assert_eq!(ids, vec![Some(r.message_id.clone()), Some(r.message_id)]);
}

#[tokio::test]
async fn concurrent_claims_never_hand_the_same_row_to_two_workers() {
    let app = spawn_app().await;
    for _ in 0..40 {
        enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
    }
    let mut claims = Vec::new();
    for _ in 0..4 {
        let db = app.db.clone();
        claims.push(tokio::spawn(async move {
            outbox::claim_due(&db, Utc::now(), StdDuration::from_secs(300), 15)
                .await
                .expect("claim")
        }));
    }
    let mut ids = Vec::new();
    for claim in claims {
        ids.extend(claim.await.expect("task").into_iter().map(|r| r.id));
    }
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "a row was claimed twice");
    assert_eq!(total, 40, "every due row was claimed once");
}

#[tokio::test]
async fn one_smtp_connection_carries_a_whole_batch() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    for _ in 0..10 {
        enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
    }
    assert_eq!(run_once(&app).await, 10);
    assert_eq!(smtp.messages().len(), 10);
    assert_eq!(smtp.connections(), 1, "the connection is reused");
}

#[tokio::test]
async fn header_injection_through_a_stored_row_is_defused_and_bad_rows_do_not_stop_the_worker() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let base = OutgoingEmail {
        kind: EmailKind::StaffNotice,
        to_address: "desk@clinic.test".into(),
        to_name: "Desk\r\nBcc: eve@evil.test".into(),
        reply_to: None,
        subject: "Hello\r\nBcc: eve@evil.test".into(),
        text_body: "Body".into(),
        html_body: "<p>Body</p>".into(),
        ics: None,
        message_id: format!("<{}@example.com>", Uuid::new_v4()),
        appointment_id: None,
        send_after: Utc::now(),
    };
    let mut bad_address = base.clone();
    bad_address.to_address = "not an address\r\n".into();
    bad_address.message_id = format!("<{}@example.com>", Uuid::new_v4());
    let mut bad_id = base.clone();
    bad_id.message_id = "<x@example.com>\r\nBcc: eve@evil.test".into();
    let mut bad_reply = base.clone();
    bad_reply.reply_to = Some("Eve\r\n <eve@evil.test".into());
    bad_reply.message_id = format!("<{}@example.com>", Uuid::new_v4());
    let txn = store::begin_write(&app.db).await.expect("begin");
    let good = outbox::enqueue(&txn, &base).await.expect("enqueue");
    let mut dead = Vec::new();
    for e in [&bad_address, &bad_id, &bad_reply] {
        dead.push(outbox::enqueue(&txn, e).await.expect("enqueue"));
    }
    txn.commit().await.expect("commit");

    assert_eq!(run_once(&app).await, 4);
    assert_eq!(row(&app, good).await.status, "sent");
    for id in dead {
        let r = row(&app, id).await;
        assert_eq!(r.status, "dead", "{r:?}");
        assert_eq!(r.attempts, 1, "a permanent failure is not retried");
    }
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec!["desk@clinic.test".to_string()]);
    let head = messages[0]
        .data
        .split("\r\n\r\n")
        .next()
        .expect("headers")
        .to_string();
    assert!(
        !head.to_ascii_lowercase().contains("\r\nbcc:"),
        "a Bcc header was injected: {head}"
    );
    let parsed = messages[0].parsed();
    assert_eq!(parsed.subject(), Some("Hello Bcc: eve@evil.test"));
}

#[tokio::test]
async fn the_file_transport_writes_a_parseable_eml_per_message() {
    let app = spawn_app().await;
    enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
    assert_eq!(run_once(&app).await, 1);
    let dir = app.settings.email.file_dir.clone();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("mail folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read(&files[0]).expect("read .eml");
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parses");
    let stored = rows(&app).await;
    assert_eq!(stored[0].status, "sent");
    assert_eq!(
        parsed.message_id().map(|id| format!("<{id}>")),
        Some(stored[0].message_id.clone())
    );
    assert_eq!(
        parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("alex@visitors.test")
    );
    assert!(parsed.body_text(0).is_some() && parsed.body_html(0).is_some());
}

#[tokio::test]
async fn the_outbox_list_is_newest_first_paginated_filtered_and_for_front_desk_roles() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for minutes_ago in [30, 20, 10] {
        let id = enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
        outbox_message::Entity::update_many()
            .col_expr(
                outbox_message::Column::CreatedAt,
                Expr::value(Utc::now() - Duration::minutes(minutes_ago)),
            )
            .filter(outbox_message::Column::Id.eq(id))
            .exec(&app.db)
            .await
            .expect("date the row");
        ids.push(id);
    }
    let admin = app.admin_token().await;
    let page = app
        .get_as(&admin, "/api/v1/staff/outbox?page=1&per_page=2")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["per_page"], 2);
    let listed: Vec<_> = page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(listed, vec![ids[2].to_string(), ids[1].to_string()]);
    let second = app
        .get_as(&admin, "/api/v1/staff/outbox?page=2&per_page=2")
        .await;
    assert_eq!(second.body["items"][0]["id"], ids[0].to_string());

    let sent = app.get_as(&admin, "/api/v1/staff/outbox?status=sent").await;
    assert_eq!(sent.body["total"], 0);
    let pending = app
        .get_as(&admin, "/api/v1/staff/outbox?status=pending")
        .await;
    assert_eq!(pending.body["total"], 3);
    app.get_as(&admin, "/api/v1/staff/outbox?status=lost")
        .await
        .assert_problem(422, "validation_failed");
    app.get_as(&admin, "/api/v1/staff/outbox?per_page=0")
        .await
        .assert_problem(422, "validation_failed");

    let retry = format!("/api/v1/staff/outbox/{}/retry", ids[0]);
    app.post_as(&admin, &retry, json!({}))
        .await
        .assert_problem(422, "not_retryable");
    app.post_as(
        &admin,
        &format!("/api/v1/staff/outbox/{}/retry", Uuid::new_v4()),
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");

    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    app.get_as(&own, "/api/v1/staff/outbox")
        .await
        .assert_problem(403, "forbidden");
    app.post_as(&own, &retry, json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/staff/outbox")
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn with_the_worker_enabled_the_service_delivers_on_its_own() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| {
        s.email.outbox.worker_enabled = true;
        s.email.outbox.poll_interval_ms = 50;
    })
    .await;
    enqueue_one(&app, EmailKind::EnquiryAck, "alex@visitors.test").await;
    // The one place a test waits: the background loop itself is what is under test.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    while smtp.messages().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not deliver within 10 s"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_broken_template_folder_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("booking_confirmed.txt"), "{% if %}").expect("write");
    let mut settings = crate::helpers::test_settings();
    settings.email.templates_dir = dir.path().to_path_buf();
    settings.database.url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("frontdesk.db").display()
    );
    let err = frontdesk::startup::Application::build(settings)
        .await
        .err()
        .expect("start-up refused");
    assert!(err.to_string().contains("email.templates_dir"), "{err}");
}
