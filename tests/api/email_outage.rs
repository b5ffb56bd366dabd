//! Email through outages: a mail server that is down, cut mid-session or refusing logins
//! makes emails wait (never `dead`), and when it is back every email arrives once, in order
//! per booking. The worker's clock is driven with `run_once_at`, so no test waits for the
//! backoff to pass.

use std::{collections::HashMap, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use entity::outbox_message;
use frontdesk::{
    email::{self, EmailKind, Recipient, outbox, worker},
    store,
};
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    availability::{clinic_with_one_practitioner, in_days, slots, starts},
    helpers::{TestApp, spawn_app, spawn_app_with_smtp},
    smtp::SmtpServer,
};

pub async fn rows(app: &TestApp) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .order_by_asc(outbox_message::Column::CreatedAt)
        .all(&app.db)
        .await
        .expect("outbox rows")
}

pub async fn step_at(app: &TestApp, now: DateTime<Utc>) -> usize {
    worker::run_once_at(&app.state, now)
        .await
        .expect("worker step")
}

/// Writes one enquiry acknowledgement to `to`, due now.
pub async fn enqueue_ack(app: &TestApp, to: &str) -> Uuid {
    let txn = store::begin_write(&app.db).await.expect("begin");
    let id = email::enqueue(
        &txn,
        &app.settings,
        EmailKind::EnquiryAck,
        &Recipient::new(to, "Alex Visitor"),
        None,
        &[("reference", "EQ-1"), ("preferred_contact", "email")],
    )
    .await
    .expect("enqueue");
    txn.commit().await.expect("commit");
    id
}

pub async fn readiness(app: &TestApp) -> (u16, Value) {
    let reply = app.get("/health/ready").await;
    (reply.status.as_u16(), reply.body)
}

/// The value of one sample line of `/metrics`, e.g. `frontdesk_smtp_failures_total{kind="tls"}`.
pub async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{sample} missing from {text}"))
        .parse()
        .expect("a number")
}

fn booking(service: &str, start: &str, email: &str) -> Value {
    json!({
        "service_id": service,
        "start": start,
        "patient": { "name": "Jo Bloggs", "email": email },
        "consent": { "privacy": true, "marketing": false }
    })
}

/// Books `start` for `email`; returns the booking id and manage token.
async fn book(app: &TestApp, service: &str, start: &str, email: &str) -> (String, String) {
    let reply = app
        .post("/api/v1/bookings", booking(service, start, email))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    (
        reply.body["booking"]["id"]
            .as_str()
            .expect("id")
            .to_string(),
        reply.body["manage_token"]
            .as_str()
            .expect("token")
            .to_string(),
    )
}

/// A clinic whose practitioner has an address (so every change makes three emails), and
/// free starts five days ahead (every fourth one is an hour later: a session and its buffer).
async fn clinic(app: &TestApp) -> (String, Vec<String>) {
    let (admin, practitioner, service) = clinic_with_one_practitioner(app).await;
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}"),
            json!({ "email": "amara@clinic.test" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let day = in_days(5);
    let free = starts(&slots(app, &format!("service_id={service}&from={day}&to={day}")).await);
    assert!(free.len() >= 16, "{free:?}");
    (service, free)
}

fn assert_nothing_dead(rows: &[outbox_message::Model], when: &str) {
    let dead: Vec<_> = rows.iter().filter(|r| r.status == "dead").collect();
    assert!(dead.is_empty(), "{when}: {dead:#?}");
}

#[tokio::test]
async fn an_outage_longer_than_every_backoff_loses_nothing_and_each_email_arrives_once_in_order() {
    let smtp = SmtpServer::start().await;
    // The defaults: 8 attempts, 30 s doubling to 900 s. Every backoff summed is about an
    // hour; the outage below lasts three.
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let (service, free) = clinic(&app).await;

    // A booking while all is well leaves a live pooled connection behind.
    book(&app, &service, &free[0], "first@patients.test").await;
    let mut now = Utc::now();
    assert_eq!(step_at(&app, now).await, 3);
    assert_eq!(smtp.messages().len(), 3);
    let before_outage = smtp.messages().len();

    // The server goes down, cutting that connection mid-session; meanwhile two bookings,
    // a reschedule and a cancellation.
    smtp.stop().await;
    let (_, moved_token) = book(&app, &service, &free[4], "moved@patients.test").await;
    let (_, cancelled_token) = book(&app, &service, &free[8], "cancelled@patients.test").await;
    let reply = app
        .post(
            &format!("/api/v1/manage/{moved_token}/reschedule"),
            json!({ "start": free[12] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = app
        .post(
            &format!("/api/v1/manage/{cancelled_token}/cancel"),
            json!({ "reason": "Feeling better" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let outage_end = now + Duration::hours(3);
    let mut steps = 0;
    while now < outage_end {
        step_at(&app, now).await;
        steps += 1;
        assert!(steps < 1000, "the outage loop does not end");
        let stored = rows(&app).await;
        assert_nothing_dead(&stored, &format!("at {now}"));
        // Jump to the next try that falls due (rows held back behind an older email of
        // their booking are due already; reminders wait days for their time).
        now = stored
            .iter()
            .filter(|r| r.status == "pending" && r.kind != "reminder")
            .map(|r| r.next_attempt_at)
            .filter(|at| *at > now)
            .min()
            .unwrap_or(outage_end);
    }
    let stored = rows(&app).await;
    let waiting: Vec<_> = stored
        .iter()
        .filter(|r| r.status == "pending" && r.kind != "reminder")
        .collect();
    // 2 bookings, a reschedule and a cancellation, three emails each.
    assert_eq!(waiting.len(), 12, "{waiting:#?}");
    for r in &waiting {
        assert_eq!(r.attempts, 0, "an unreachable server never counts: {r:?}");
        let held_back = waiting.iter().any(|o| {
            o.appointment_id == r.appointment_id
                && o.to_address == r.to_address
                && o.created_at < r.created_at
        });
        if held_back {
            // A change's email waits for the confirmation before it.
            assert_eq!(r.failures, 0, "{r:?}");
            continue;
        }
        assert!(r.failures >= 8, "it was tried all along: {r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains("connect"))
        );
        let wait = r.next_attempt_at - now;
        assert!(
            wait <= Duration::seconds(900),
            "waits {wait} at most the maximum"
        );
    }
    assert_eq!(smtp.messages().len(), before_outage, "nothing got through");
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "status": "degraded", "database": "ok", "email": "failing" })
    );
    assert!(metric(&app, "frontdesk_smtp_failures_total{kind=\"connect\"}").await >= 64.0);
    assert_eq!(
        metric(&app, "frontdesk_outbox_messages{status=\"dead\"}").await,
        0.0
    );
    assert!(metric(&app, "frontdesk_outbox_oldest_pending_seconds").await > 0.0);

    // Back, but the first session to reach DATA is cut before the message is accepted.
    smtp.resume().await;
    smtp.hang_up_at_data(1);
    let mut steps = 0;
    loop {
        now += Duration::seconds(901);
        step_at(&app, now).await;
        let stored = rows(&app).await;
        assert_nothing_dead(&stored, "after the outage");
        if stored
            .iter()
            .all(|r| r.status != "pending" || r.kind == "reminder")
        {
            break;
        }
        steps += 1;
        assert!(steps < 20, "emails still waiting: {stored:#?}");
    }
    assert_eq!(
        readiness(&app).await.1,
        json!({ "status": "ok", "database": "ok", "email": "ok" })
    );
    assert!(
        metric(&app, "frontdesk_smtp_failures_total{kind=\"connection\"}").await >= 1.0,
        "the session cut at DATA"
    );

    // Every email exactly once, and per booking and recipient in the order written.
    let stored = rows(&app).await;
    let received = smtp.messages();
    let mut seen = HashMap::new();
    for (i, m) in received.iter().enumerate() {
        let id = m.header("Message-ID").expect("Message-ID");
        assert!(seen.insert(id.clone(), i).is_none(), "{id} arrived twice");
    }
    let sent: Vec<_> = stored.iter().filter(|r| r.status == "sent").collect();
    assert_eq!(sent.len(), received.len());
    assert_eq!(sent.len(), 15);
    let mut by_thread: HashMap<(Option<Uuid>, String), Vec<&outbox_message::Model>> =
        HashMap::new();
    for r in &sent {
        assert!(seen.contains_key(&r.message_id), "{r:?} never arrived");
        by_thread
            .entry((r.appointment_id, r.to_address.clone()))
            .or_default()
            .push(r);
    }
    for ((_, to), thread) in &by_thread {
        let mut written = thread.clone();
        written.sort_by_key(|r| (r.created_at, r.id));
        let arrival: Vec<_> = written.iter().map(|r| seen[&r.message_id]).collect();
        let mut sorted = arrival.clone();
        sorted.sort();
        assert_eq!(
            arrival, sorted,
            "emails to {to} about one booking out of order"
        );
    }
    let kinds_to = |address: &str| -> Vec<String> {
        let mut thread: Vec<_> = sent.iter().filter(|r| r.to_address == address).collect();
        thread.sort_by_key(|r| seen[&r.message_id]);
        thread.iter().map(|r| r.kind.clone()).collect()
    };
    assert_eq!(
        kinds_to("moved@patients.test"),
        ["booking_confirmed", "booking_rescheduled"]
    );
    assert_eq!(
        kinds_to("cancelled@patients.test"),
        ["booking_confirmed", "booking_cancelled"]
    );
    // The moved booking's reminder waits for its new time; the cancelled one's is void.
    let reminders: Vec<_> = stored
        .iter()
        .filter(|r| r.kind == "reminder")
        .map(|r| (r.to_address.as_str(), r.status.as_str()))
        .collect();
    assert!(reminders.contains(&("moved@patients.test", "pending")));
    assert!(reminders.contains(&("cancelled@patients.test", "void")));
}

#[tokio::test]
async fn a_short_outage_that_cuts_the_live_connection_does_not_kill_a_confirmation() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.outbox.max_attempts = 2).await;
    let (service, free) = clinic(&app).await;
    book(&app, &service, &free[0], "first@patients.test").await;
    let now = Utc::now();
    assert_eq!(step_at(&app, now).await, 3);
    let connections = smtp.connections();

    // Down for three seconds: the pooled connection is cut and reconnecting is refused.
    smtp.stop().await;
    book(&app, &service, &free[4], "second@patients.test").await;
    assert_eq!(step_at(&app, now + Duration::seconds(1)).await, 3);
    let confirmation = rows(&app)
        .await
        .into_iter()
        .find(|r| r.to_address == "second@patients.test" && r.kind == "booking_confirmed")
        .expect("the confirmation");
    assert_eq!(
        (confirmation.status.as_str(), confirmation.attempts),
        ("pending", 0),
        "neither the broken connection nor the refused reconnect counts"
    );
    assert_eq!(
        confirmation.failures, 1,
        "one try: the broken connection and the reconnect are one attempt"
    );
    assert!(confirmation.next_attempt_at >= now + Duration::seconds(24));
    assert_eq!(
        step_at(&app, now + Duration::seconds(2)).await,
        0,
        "backing off"
    );
    smtp.resume().await;

    // Once the backoff has passed, it goes out, once.
    assert_eq!(step_at(&app, now + Duration::seconds(40)).await, 3);
    let delivered = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == confirmation.id)
        .expect("row");
    assert_eq!(delivered.status, "sent");
    let to_second: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to == ["second@patients.test"])
        .collect();
    assert_eq!(to_second.len(), 1);
    assert_eq!(
        to_second[0].header("Message-ID"),
        Some(confirmation.message_id)
    );
    assert!(smtp.connections() > connections, "a fresh connection");
}

#[tokio::test]
async fn a_reminder_not_sent_by_the_start_of_its_booking_becomes_void() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let (service, free) = clinic(&app).await;
    smtp.stop().await;
    book(&app, &service, &free[0], "jo@patients.test").await;
    let start: DateTime<Utc> = free[0].parse().expect("RFC 3339 start");
    let reminder = rows(&app)
        .await
        .into_iter()
        .find(|r| r.kind == "reminder")
        .expect("a reminder");
    assert_eq!(reminder.next_attempt_at, start - Duration::hours(24));

    // Its time comes during the outage: it waits (behind its confirmation) like any other
    // email…
    step_at(&app, reminder.next_attempt_at + Duration::seconds(1)).await;
    let waiting = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == reminder.id)
        .expect("row");
    assert_eq!(waiting.status, "pending");

    // …until the booking starts: then it is of no use, and never goes out.
    smtp.resume().await;
    step_at(&app, start + Duration::seconds(1)).await;
    let voided = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == reminder.id)
        .expect("row");
    assert_eq!(voided.status, "void");
    assert!(
        smtp.messages().iter().all(|m| m
            .parsed()
            .subject()
            .is_none_or(|s| !s.starts_with("Reminder"))),
        "no reminder went out"
    );
}

#[tokio::test]
async fn every_dead_email_can_be_sent_again_at_once_by_the_front_desk() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    smtp.refuse_recipient("one@visitors.test", 550);
    smtp.refuse_recipient("two@visitors.test", 550);
    let dead = [
        enqueue_ack(&app, "one@visitors.test").await,
        enqueue_ack(&app, "two@visitors.test").await,
    ];
    let fine = enqueue_ack(&app, "three@visitors.test").await;
    assert_eq!(step_at(&app, Utc::now()).await, 3);
    let statuses = |stored: &[outbox_message::Model]| -> Vec<(Uuid, String, i32)> {
        stored
            .iter()
            .map(|r| (r.id, r.status.clone(), r.attempts))
            .collect()
    };
    let stored = rows(&app).await;
    assert!(statuses(&stored).contains(&(dead[0], "dead".into(), 1)));
    assert!(statuses(&stored).contains(&(dead[1], "dead".into(), 1)));
    assert!(statuses(&stored).contains(&(fine, "sent".into(), 0)));

    let admin = app.admin_token().await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    let path = "/api/v1/staff/outbox/retry?status=dead";
    app.post_as(&own, path, json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.post(path, json!({}))
        .await
        .assert_problem(401, "unauthorized");
    let wrong = app
        .post_as(
            &reception,
            "/api/v1/staff/outbox/retry?status=sent",
            json!({}),
        )
        .await;
    wrong.assert_problem(422, "validation_failed");
    assert_eq!(wrong.error_fields(), ["status"]);
    app.post_as(
        &reception,
        "/api/v1/staff/outbox/retry?status=lost",
        json!({}),
    )
    .await
    .assert_problem(422, "validation_failed");

    let retried = app.post_as(&reception, path, json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.body, json!({ "retried": 2 }));
    let stored = rows(&app).await;
    assert!(statuses(&stored).contains(&(dead[0], "pending".into(), 0)));
    assert!(statuses(&stored).contains(&(dead[1], "pending".into(), 0)));
    assert!(statuses(&stored).contains(&(fine, "sent".into(), 0)));
    let again = app.post_as(&admin, path, json!({})).await;
    assert_eq!(again.body, json!({ "retried": 0 }), "nothing dead is left");
    let audit = app.get_as(&admin, "/api/v1/staff/audit").await;
    assert!(
        audit.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["action"] == "retry_all"),
        "{}",
        audit.body
    );

    smtp.accept_all();
    assert_eq!(step_at(&app, Utc::now()).await, 2);
    let addresses: Vec<_> = smtp
        .messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    assert_eq!(
        addresses,
        [
            "three@visitors.test",
            "one@visitors.test",
            "two@visitors.test"
        ]
    );
}

#[tokio::test]
async fn a_row_being_processed_is_never_handed_to_a_second_worker() {
    let app = spawn_app().await;
    let ids = [
        enqueue_ack(&app, "a@visitors.test").await,
        enqueue_ack(&app, "b@visitors.test").await,
    ];
    let now = Utc::now();
    let lease = StdDuration::from_secs(60);
    let mine = outbox::claim_due(&app.db, now, lease, 10)
        .await
        .expect("claim");
    assert_eq!(mine.len(), 2);
    let held = mine[0].lease_until.expect("leased");

    // Still processing near the end of the lease: the worker extends it, and a second
    // worker looking after the first lease would have ended finds nothing.
    let later = now + Duration::seconds(50);
    let extended = outbox::extend_leases(&app.db, &ids, held, later + Duration::seconds(60))
        .await
        .expect("extend");
    assert_eq!(extended.len(), 2);
    let other = outbox::claim_due(&app.db, now + Duration::seconds(61), lease, 10)
        .await
        .expect("claim");
    assert!(other.is_empty(), "taken mid-processing: {other:?}");

    // Once the extended lease has run out too (the first worker died), another worker takes
    // the rows, counting the lost claim as an attempt; the first can no longer extend them.
    let taken = outbox::claim_due(&app.db, now + Duration::seconds(200), lease, 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 2);
    assert!(taken.iter().all(|r| r.attempts == 1), "{taken:?}");
    let late = outbox::extend_leases(
        &app.db,
        &ids,
        outbox::lease_instant(later + Duration::seconds(60)),
        now + Duration::seconds(400),
    )
    .await
    .expect("extend");
    assert!(late.is_empty(), "a lost lease cannot be extended");
}

#[tokio::test]
async fn staff_notices_about_one_booking_wait_for_the_earlier_ones() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let (service, free) = clinic(&app).await;
    smtp.refuse_recipient("frontdesk@example.com", 451);
    let (_, token) = book(&app, &service, &free[0], "jo@patients.test").await;
    let now = Utc::now();
    assert_eq!(step_at(&app, now).await, 3);
    smtp.accept_all();
    let reply = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // The first staff notice is backing off; the cancellation notice must not overtake it.
    assert_eq!(
        step_at(&app, now + Duration::seconds(1)).await,
        2,
        "the patient's and practitioner's cancellations only"
    );
    let to_desk = |app_rows: &[outbox_message::Model]| -> Vec<(String, String)> {
        app_rows
            .iter()
            .filter(|r| r.to_address == "frontdesk@example.com")
            .map(|r| (r.status.clone(), r.subject.clone()))
            .collect()
    };
    let stored = rows(&app).await;
    assert!(
        to_desk(&stored)
            .iter()
            .all(|(status, _)| status == "pending"),
        "{:?}",
        to_desk(&stored)
    );
    step_at(&app, now + Duration::minutes(2)).await;
    step_at(&app, now + Duration::minutes(3)).await;
    let desk: Vec<_> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.rcpt_to == ["frontdesk@example.com"])
        .map(|m| m.parsed().subject().unwrap_or_default().to_string())
        .collect();
    assert_eq!(desk.len(), 2, "{desk:?}");
    let written: Vec<_> = rows(&app)
        .await
        .into_iter()
        .filter(|r| r.to_address == "frontdesk@example.com")
        .map(|r| r.subject)
        .collect();
    assert_eq!(desk, written, "in the order they were written");
}

#[tokio::test]
async fn readiness_is_503_when_the_database_does_not_answer_and_ok_with_file_email() {
    let app = spawn_app().await;
    assert_eq!(
        readiness(&app).await,
        (
            200,
            json!({ "status": "ok", "database": "ok", "email": "ok" })
        ),
        "the file transport is always ok"
    );
    app.state.db.clone().close().await.expect("close the pool");
    assert_eq!(
        readiness(&app).await,
        (
            503,
            json!({ "status": "unavailable", "database": "unavailable", "email": "ok" })
        )
    );
}

#[tokio::test]
async fn a_pooled_connection_broken_by_a_server_restart_is_replaced_within_the_same_try() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    enqueue_ack(&app, "first@visitors.test").await;
    assert_eq!(step_at(&app, Utc::now()).await, 1);
    assert_eq!(smtp.connections(), 1);

    // The server restarts between two messages, dropping the idle connection.
    smtp.stop().await;
    smtp.resume().await;
    let id = enqueue_ack(&app, "second@visitors.test").await;
    assert_eq!(step_at(&app, Utc::now()).await, 1);
    let r = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .expect("row");
    assert_eq!(
        (r.status.as_str(), r.attempts, r.failures),
        ("sent", 0, 0),
        "sent at the first try, on a fresh connection: {r:?}"
    );
    assert_eq!(smtp.connections(), 2);
    assert_eq!(smtp.messages().len(), 2);
    assert_eq!(readiness(&app).await.1["email"], "ok");
}

#[tokio::test]
async fn a_server_closing_the_channel_with_421_is_an_outage_not_a_refusal() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |s| s.email.outbox.max_attempts = 1).await;
    smtp.refuse_recipient("busy@visitors.test", 421);
    smtp.refuse_recipient("later@visitors.test", 451);
    let closing = enqueue_ack(&app, "busy@visitors.test").await;
    let refused = enqueue_ack(&app, "later@visitors.test").await;
    let mut now = Utc::now();
    for _ in 0..3 {
        step_at(&app, now).await;
        now += Duration::seconds(901);
    }
    let stored = rows(&app).await;
    let find = |id| stored.iter().find(|r| r.id == id).expect("row");
    assert_eq!(
        (find(closing).status.as_str(), find(closing).attempts),
        ("pending", 0),
        "421 says nothing about the message"
    );
    assert_eq!(
        (find(refused).status.as_str(), find(refused).attempts),
        ("dead", 1),
        "451 is this message refused, and max_attempts is 1"
    );
}
