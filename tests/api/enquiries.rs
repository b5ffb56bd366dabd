//! The contact form, its spam defences, the staff inbox and retention.

use chrono::{Duration, Utc};
use entity::{enquiry, outbox_message};
use frontdesk::{email::worker, privacy::retention};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, spawn_app_with_smtp};
use crate::smtp::SmtpServer;

fn form(email: &str, message: &str) -> Value {
    json!({
        "name": "Sam Taylor",
        "email": email,
        "phone": "07700 900456",
        "topic": "physio",
        "message": message,
        "preferred_contact": "email",
        "consent": { "privacy": true, "marketing": false },
        "website": ""
    })
}

async fn enquiries(app: &TestApp) -> Vec<enquiry::Model> {
    enquiry::Entity::find()
        .all(&app.db)
        .await
        .expect("enquiries")
}

async fn outbox(app: &TestApp) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .all(&app.db)
        .await
        .expect("outbox")
}

#[tokio::test]
async fn an_enquiry_is_acknowledged_and_reaches_staff_with_reply_to_the_enquirer() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let reply = app
        .post(
            "/api/v1/enquiries",
            form(
                "sam@example.com",
                "My shoulder hurts when I swim front crawl.",
            ),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let reference = reply.body["reference"]
        .as_str()
        .expect("reference")
        .to_string();
    assert!(
        reference.starts_with('E') && reference.len() == 9,
        "{reference}"
    );
    let stored = enquiries(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "new");
    assert_ne!(stored[0].ip_hash, "127.0.0.1");
    assert_eq!(stored[0].ip_hash.len(), 64);
    assert_eq!(worker::run_once(&app.state).await.expect("worker"), 2);
    let messages = smtp.messages();
    let to_staff = messages
        .iter()
        .find(|m| m.rcpt_to == ["frontdesk@example.com"])
        .expect("staff notification");
    assert!(
        to_staff
            .header("Reply-To")
            .is_some_and(|r| r.contains("sam@example.com")),
        "{:?}",
        to_staff.header("Reply-To")
    );
    assert!(to_staff.data.contains(&reference));
    let ack = messages
        .iter()
        .find(|m| m.rcpt_to == ["sam@example.com"])
        .expect("acknowledgement");
    assert!(ack.data.contains(&app.settings.clinic.phone));
    assert!(ack.data.contains(&app.settings.enquiries.response_time));
}

#[tokio::test]
async fn bad_enquiries_are_rejected_with_the_field_and_nothing_is_stored() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let ok = form("sam@example.com", "A perfectly reasonable question.");
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        if let Some((outer, inner)) = key.split_once('.') {
            body[outer][inner] = value;
        } else {
            body[key] = value;
        }
        body
    };
    let cases = vec![
        (
            with("name", json!("Sam\r\nBcc: everyone@example.com")),
            "name",
        ),
        (with("name", json!("")), "name"),
        (with("email", json!("sam-at-example")), "email"),
        (with("phone", json!("ring me")), "phone"),
        (with("message", json!("Too short")), "message"),
        (with("message", json!("x".repeat(5001))), "message"),
        (
            with("message", json!("Hello there\u{0000} with a NUL")),
            "message",
        ),
        (
            {
                let mut body = with("preferred_contact", json!("phone"));
                body["phone"] = Value::Null;
                body
            },
            "phone",
        ),
        (with("consent.privacy", json!(false)), "consent.privacy"),
        (
            with("service_id", json!(uuid::Uuid::new_v4())),
            "service_id",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/enquiries", body).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.error_fields(),
            vec![field.to_string()],
            "{}",
            reply.body
        );
    }
    for body in [with("topic", json!("astrology")), json!({}), json!([1, 2])] {
        app.post("/api/v1/enquiries", body)
            .await
            .assert_problem(422, "validation_failed");
    }
    assert!(enquiries(&app).await.is_empty());
    assert!(outbox(&app).await.is_empty());
}

#[tokio::test]
async fn the_honeypot_stores_spam_quietly_without_email() {
    let app = spawn_app().await;
    let mut body = form("bot@example.com", "Buy cheap watches at our website now!");
    body["website"] = json!("http://spam.example");
    let reply = app.post("/api/v1/enquiries", body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(reply.body["reference"].is_string());
    let stored = enquiries(&app).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "spam");
    assert!(outbox(&app).await.is_empty());
}

#[tokio::test]
async fn a_double_submit_is_stored_once_but_a_new_message_is_not_lost() {
    let app = spawn_app().await;
    let body = form(
        "sam@example.com",
        "Can I book a sports massage on Saturday?",
    );
    let first = app.post("/api/v1/enquiries", body.clone()).await;
    let second = app.post("/api/v1/enquiries", body).await;
    assert_eq!(second.status, 202);
    assert_eq!(first.body["reference"], second.body["reference"]);
    assert_eq!(enquiries(&app).await.len(), 1);
    assert_eq!(outbox(&app).await.len(), 2, "emails only for the first");
    let other = app
        .post(
            "/api/v1/enquiries",
            form("sam@example.com", "And do you have parking nearby?"),
        )
        .await;
    assert_eq!(other.status, 202);
    assert_ne!(other.body["reference"], first.body["reference"]);
    assert_eq!(enquiries(&app).await.len(), 2);
}

#[tokio::test]
async fn enquiries_are_rate_limited_per_client_and_oversized_bodies_refused() {
    let app = spawn_app_with(|s| s.rate_limit.enquiries_per_minute = 2).await;
    for i in 0..2 {
        let reply = app
            .post(
                "/api/v1/enquiries",
                form(
                    &format!("p{i}@example.com"),
                    "A question about opening hours.",
                ),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let reply = app
        .post(
            "/api/v1/enquiries",
            form("p9@example.com", "A question about opening hours."),
        )
        .await;
    reply.assert_problem(429, "rate_limited");
    assert!(reply.header("retry-after").is_some());
    let huge = form("big@example.com", &"y".repeat(100 * 1024));
    app.post("/api/v1/enquiries", huge)
        .await
        .assert_problem(413, "payload_too_large");
    assert_eq!(enquiries(&app).await.len(), 2);
}

#[tokio::test]
async fn the_staff_inbox_filters_searches_and_pages_newest_first() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (i, (topic, text)) in [
        ("physio", "Knee pain after running"),
        ("pilates", "Do you run beginner reformer classes?"),
        ("physio", "Back pain at my desk job"),
    ]
    .iter()
    .enumerate()
    {
        let mut body = form(&format!("person{i}@example.com"), text);
        body["topic"] = json!(topic);
        assert_eq!(app.post("/api/v1/enquiries", body).await.status, 202);
    }
    let all = app.get_as(&admin, "/api/v1/staff/enquiries").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["total"], 3);
    let items = all.body["items"].as_array().expect("items");
    assert_eq!(
        items[0]["message"], "Back pain at my desk job",
        "newest first"
    );
    let physio = app
        .get_as(&admin, "/api/v1/staff/enquiries?topic=physio")
        .await;
    assert_eq!(physio.body["total"], 2);
    let search = app
        .get_as(&admin, "/api/v1/staff/enquiries?q=REFORMER")
        .await;
    assert_eq!(search.body["total"], 1);
    assert_eq!(search.body["items"][0]["topic"], "pilates");
    let by_email = app
        .get_as(&admin, "/api/v1/staff/enquiries?q=person0%40")
        .await;
    assert_eq!(by_email.body["total"], 1);
    let paged = app
        .get_as(&admin, "/api/v1/staff/enquiries?per_page=2&page=2")
        .await;
    assert_eq!(paged.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(paged.body["total"], 3);
    let new_only = app
        .get_as(&admin, "/api/v1/staff/enquiries?status=closed")
        .await;
    assert_eq!(new_only.body["total"], 0);
    // Practitioners do not read the inbox; anonymous callers even less.
    let practitioner = app.create_practitioner(&admin, "Inbox Outsider").await;
    let token = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    app.get_as(&token, "/api/v1/staff/enquiries")
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/staff/enquiries")
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn staff_move_assign_and_annotate_enquiries_with_an_audit_trail() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let me = app.get_as(&reception, "/api/v1/auth/me").await;
    let reception_id = me.body["id"].as_str().expect("id").to_string();
    app.post(
        "/api/v1/enquiries",
        form("sam@example.com", "Please call me about my ankle."),
    )
    .await;
    let list = app.get_as(&reception, "/api/v1/staff/enquiries").await;
    let id = list.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/api/v1/staff/enquiries/{id}");
    let reply = app
        .patch_as(
            &reception,
            &path,
            json!({ "status": "in_progress", "assignee_id": reception_id, "note": "Called, left a voicemail." }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "in_progress");
    assert_eq!(reply.body["assignee_id"], reception_id.as_str());
    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "note": "Booked her in for Tuesday.", "status": "closed" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let notes = reply.body["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["text"], "Called, left a voicemail.");
    assert_eq!(notes[0]["author"], "Staff Member");
    assert_eq!(notes[1]["author"], "Administrator");
    assert!(notes[1]["at"].is_string());
    // closed → new is not a move the inbox allows; an unknown assignee is refused.
    app.patch_as(&admin, &path, json!({ "status": "new" }))
        .await
        .assert_problem(422, "invalid_status_change");
    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "assignee_id": uuid::Uuid::new_v4() }),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), vec!["assignee_id".to_string()]);
    let got = app.get_as(&admin, &path).await;
    assert_eq!(got.body["status"], "closed");
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    let changes = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["entity"] == "enquiry" && a["entity_id"] == id.as_str())
        .count();
    assert_eq!(changes, 2);
    app.get_as(
        &admin,
        &format!("/api/v1/staff/enquiries/{}", uuid::Uuid::new_v4()),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn closed_and_spam_enquiries_are_purged_after_their_retention_period() {
    let app = spawn_app().await;
    for (i, text) in [
        "An old closed question",
        "An old open question",
        "Old spam spam spam",
        "A recent closed one",
    ]
    .iter()
    .enumerate()
    {
        let mut body = form(&format!("r{i}@example.com"), text);
        if text.contains("spam") {
            body["website"] = json!("x");
        }
        assert_eq!(app.post("/api/v1/enquiries", body).await.status, 202);
    }
    let now = Utc::now();
    for row in enquiries(&app).await {
        let (status, age_days) = match row.message.as_str() {
            "An old closed question" => ("closed", 400),
            "An old open question" => ("in_progress", 400),
            "Old spam spam spam" => ("spam", 40),
            _ => ("closed", 10),
        };
        let mut active = row.into_active_model();
        active.status = Set(status.to_string());
        active.updated_at = Set(now - Duration::days(age_days));
        active.update(&app.db).await.expect("age the row");
    }
    // The service's own hourly purge may already have run since start; either way, after
    // this call exactly the expired ones are gone.
    let purged = retention::purge(&app.state, now).await.expect("purge");
    assert!(purged.enquiries <= 2);
    let left: Vec<String> = enquiries(&app)
        .await
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(left.len(), 2);
    assert!(
        left.contains(&"An old open question".to_string()),
        "open work is never purged"
    );
    assert!(left.contains(&"A recent closed one".to_string()));
}

#[tokio::test]
async fn sent_emails_are_purged_after_their_retention_period_but_pending_ones_stay() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/v1/enquiries",
            form("keep@example.com", "Two emails come out of this one."),
        )
        .await;
    assert_eq!(reply.status, 202);
    let now = Utc::now();
    let rows = outbox(&app).await;
    assert_eq!(rows.len(), 2);
    let old = now - Duration::days(i64::from(app.settings.email.outbox.retention_days) + 1);
    for (row, status) in rows.into_iter().zip(["sent", "pending"]) {
        let mut active = row.into_active_model();
        active.status = Set(status.to_string());
        active.created_at = Set(old);
        active.update(&app.db).await.expect("age the email");
    }
    let purged = retention::purge(&app.state, now).await.expect("purge");
    assert!(purged.emails <= 1);
    let left = outbox(&app).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, "pending");
}
