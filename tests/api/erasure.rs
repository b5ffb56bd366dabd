//! Erasure leaves nothing behind: after erasing a patient who had a booking with notes, a
//! staff cancellation with a note, an enquiry, a waitlist entry, emails stuck in the outbox while SMTP was down
//! and an idempotent booking request — and once the erasure's own cancellation emails have
//! gone out — no text column of any table holds their name, address, phone or notes. The
//! export before it holds every one of those records, audit entries included.

use chrono::{Duration, Utc};
use entity::outbox_message;
use frontdesk::{email::worker, privacy::retention};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, sea_query::Expr,
};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots};
use crate::helpers::{Reply, TestApp, spawn_app_with_smtp};
use crate::smtp::SmtpServer;

const NAME: &str = "Quentin Marlowe-Fairfax";
const EMAIL: &str = "quentin.fairfax@example.com";
const PHONE: &str = "07700 900468";
const BOOKING_NOTE: &str = "Left knee pain after marathon training";
const STAFF_NOTE: &str = "MRI shows ACL tear";
const ENQUIRY: &str = "Could you look at my torn hamstring?";

/// What must not survive, lower-cased: name parts, address, phone (as typed and as digits)
/// and every piece of free text.
fn needles() -> Vec<String> {
    [
        "quentin",
        "marlowe",
        "fairfax",
        EMAIL,
        PHONE,
        "07700900468",
        "knee pain",
        "acl tear",
        "hamstring",
    ]
    .iter()
    .map(|s| s.to_lowercase())
    .collect()
}

/// Every (table, column) holding text, from the database's own catalogue.
async fn text_columns(app: &TestApp) -> Vec<(String, String)> {
    let db = &app.db;
    let backend = db.get_database_backend();
    let mut columns = Vec::new();
    match backend {
        DbBackend::Sqlite => {
            let tables = db
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%'",
                ))
                .await
                .expect("tables");
            for t in tables {
                let table: String = t.try_get("", "name").expect("name");
                let info = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("PRAGMA table_info(\"{table}\")"),
                    ))
                    .await
                    .expect("columns");
                for c in info {
                    let name: String = c.try_get("", "name").expect("column");
                    let ty: String = c.try_get("", "type").expect("type");
                    let ty = ty.to_lowercase();
                    if ty.contains("char")
                        || ty.contains("text")
                        || ty.contains("clob")
                        || ty.contains("json")
                        || ty.is_empty()
                    {
                        columns.push((table.clone(), name));
                    }
                }
            }
        }
        _ => {
            let rows = db
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name::text AS t, column_name::text AS c FROM \
                     information_schema.columns WHERE table_schema = 'public' AND data_type IN \
                     ('text', 'character varying', 'character', 'json', 'jsonb')",
                ))
                .await
                .expect("columns");
            for r in rows {
                columns.push((
                    r.try_get("", "t").expect("table"),
                    r.try_get("", "c").expect("column"),
                ));
            }
        }
    }
    assert!(
        columns
            .iter()
            .any(|(t, c)| t == "outbox_messages" && c == "text_body"),
        "the catalogue lists the outbox: {columns:?}"
    );
    columns
}

/// Every (table, column, needle) where a needle still occurs.
async fn leftovers(app: &TestApp) -> Vec<String> {
    let backend = app.db.get_database_backend();
    let mut found = Vec::new();
    for (table, column) in text_columns(app).await {
        for needle in needles() {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM \"{table}\" WHERE LOWER(CAST(\"{column}\" AS TEXT)) \
                 LIKE '%{}%'",
                needle.replace('\'', "''")
            );
            let row = app
                .db
                .query_one_raw(Statement::from_string(backend, sql))
                .await
                .expect("count")
                .expect("a row");
            let n: i64 = row.try_get("", "n").expect("n");
            if n > 0 {
                found.push(format!("{table}.{column} holds {needle:?} ({n} rows)"));
            }
        }
    }
    found
}

async fn book_online_with_key(app: &TestApp, service: &str, start: &str) -> Reply {
    let resp = app
        .client
        .post(app.url("/api/v1/bookings"))
        .header("Idempotency-Key", "erasure-test-1")
        .json(&json!({ "service_id": service, "start": start,
                       "patient": { "name": NAME, "email": EMAIL, "phone": PHONE },
                       "notes": BOOKING_NOTE,
                       "consent": { "privacy": true, "marketing": true } }))
        .send()
        .await
        .expect("sent");
    Reply::from_response(resp).await
}

/// Makes every pending email due now and runs the worker until nothing is left to do.
async fn deliver_everything(app: &TestApp) {
    for _ in 0..20 {
        outbox_message::Entity::update_many()
            .col_expr(
                outbox_message::Column::NextAttemptAt,
                Expr::value(Utc::now() - Duration::seconds(1)),
            )
            .filter(outbox_message::Column::Status.eq("pending"))
            .filter(outbox_message::Column::Kind.ne("reminder"))
            .exec(&app.db)
            .await
            .expect("due now");
        if worker::run_once(&app.state).await.expect("worker") == 0 {
            return;
        }
    }
    panic!("the outbox never emptied");
}

#[tokio::test]
async fn erasure_leaves_no_personal_data_in_any_table() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, |_| {}).await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    smtp.stop().await;

    // A future online booking with notes, made with an Idempotency-Key.
    let d = in_days(3);
    let found = slots(&app, &format!("service_id={service}&from={d}&to={d}")).await;
    let start = found[0]["start"].as_str().expect("a slot").to_string();
    let booked = book_online_with_key(&app, &service, &start).await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    // A staff booking cancelled with a note.
    let staff = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": format!("{}T19:00:00Z", in_days(4)),
                    "patient": { "name": NAME, "email": EMAIL, "phone": PHONE },
                    "notes": "Prefers mornings" }),
        )
        .await;
    assert_eq!(staff.status, 201, "{}", staff.body);
    let staff_booking = staff.body["booking"]["id"].as_str().expect("id");
    let cancelled = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{staff_booking}/cancel"),
            json!({ "reason": "condition_worse", "note": STAFF_NOTE }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    // An enquiry from the same address.
    let enquiry = app
        .post(
            "/api/v1/enquiries",
            json!({ "name": NAME, "email": EMAIL, "phone": PHONE, "topic": "physio",
                    "message": ENQUIRY, "preferred_contact": "phone",
                    "consent": { "privacy": true, "marketing": false }, "website": "" }),
        )
        .await;
    assert_eq!(enquiry.status, 202, "{}", enquiry.body);
    // A waitlist entry (its confirmation email names them too).
    let waiting = app
        .post(
            "/api/v1/waitlist",
            json!({ "service_id": service, "from": in_days(5).to_string(),
                    "to": in_days(9).to_string(),
                    "patient": { "name": NAME, "email": EMAIL, "phone": PHONE },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(waiting.status, 201, "{}", waiting.body);
    let waitlist_token = waiting.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    // SMTP is down: everything stays in the outbox.
    worker::run_once(&app.state).await.expect("worker");
    let stuck = outbox_message::Entity::find()
        .filter(outbox_message::Column::Status.eq("pending"))
        .all(&app.db)
        .await
        .expect("outbox");
    assert!(
        stuck
            .iter()
            .any(|m| m.kind == "booking_confirmed" && m.text_body.contains("Quentin")),
        "{stuck:?}"
    );
    // The audit log never copied the staff note.
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    assert!(!audit.body.to_string().contains("ACL"), "{}", audit.body);

    let patient = booked.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let list = app
        .get_as(&admin, &format!("/api/v1/staff/patients?q={EMAIL}"))
        .await;
    let patient_id = list.body["items"][0]["id"]
        .as_str()
        .expect("patient")
        .to_string();
    // The export holds all of it, audit entries and the stored reply included.
    let export = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/patients/{patient_id}/export"),
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    let text = export.body.to_string();
    for piece in [BOOKING_NOTE, STAFF_NOTE, ENQUIRY, PHONE] {
        assert!(text.contains(piece), "{piece} missing from the export");
    }
    let audit = export.body["audit"].as_array().expect("audit");
    assert!(
        audit.iter().any(|a| a["action"] == "cancel"
            && a["entity_id"] == staff_booking
            && a["detail"]["reason"] == "condition_worse"),
        "{audit:?}"
    );
    assert_eq!(
        export.body["stored_responses"][0]["body"]["booking"]["id"],
        patient.as_str()
    );
    assert_eq!(
        export.body["waitlist"][0]["entry"]["id"], waiting.body["entry"]["id"],
        "{}",
        export.body["waitlist"]
    );

    let erased = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/patients/{patient_id}/erase"),
            json!({}),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(
        erased.body["cancelled_bookings"].as_array().map(Vec::len),
        Some(1)
    );

    // SMTP comes back; the erasure's own cancellation reaches the patient, nothing else
    // about them goes out.
    smtp.resume().await;
    smtp.clear();
    deliver_everything(&app).await;
    let delivered = smtp.messages();
    let to_patient: Vec<_> = delivered
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.contains(EMAIL)))
        .collect();
    assert_eq!(to_patient.len(), 1, "{delivered:?}");
    assert!(to_patient[0].data.contains("METHOD:CANCEL"));
    // The hourly pass scrubs the delivered copies.
    let purged = retention::purge(&app.state, Utc::now())
        .await
        .expect("purge");
    assert!(purged.scrubbed_emails >= 1, "{purged:?}");

    let left = leftovers(&app).await;
    assert!(left.is_empty(), "{}", left.join("\n"));
    // Their waitlist entry ended and its link opens nothing.
    app.get(&format!("/api/v1/waitlist/{waitlist_token}"))
        .await
        .assert_problem(404, "not_found");
    // And the patient record says so.
    let detail = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{patient_id}"))
        .await;
    assert_eq!(detail.body["name"], "Erased patient");
    let _: Value = detail.body;
}

#[tokio::test]
async fn erasure_cancels_future_seats_and_leaves_nothing_of_them() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = crate::classes::class_service(&app, &admin, &instructor, 10).await;
    let class = crate::classes::class_at(&app, &admin, &service, &instructor, 5, None).await;
    let other = crate::classes::class_at(&app, &admin, &service, &instructor, 6, None).await;
    let seat = |class: &str, key: &str| {
        app.client
            .post(app.url(&format!("/api/v1/classes/{class}/seats")))
            .header("Idempotency-Key", key.to_string())
            .json(
                &json!({ "patient": { "name": NAME, "email": EMAIL, "phone": PHONE },
                           "notes": BOOKING_NOTE,
                           "consent": { "privacy": true, "marketing": false } }),
            )
            .send()
    };
    let kept = Reply::from_response(seat(&class, "erasure-seat-1").await.expect("sent")).await;
    assert_eq!(kept.status, 201, "{}", kept.body);
    let dropped = Reply::from_response(seat(&other, "erasure-seat-2").await.expect("sent")).await;
    assert_eq!(dropped.status, 201, "{}", dropped.body);
    let token = dropped.body["manage_token"].as_str().expect("token");
    let reply = app
        .post(
            &format!("/api/v1/manage/{token}/cancel"),
            json!({ "reason": ENQUIRY }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list = app
        .get_as(&admin, &format!("/api/v1/staff/patients?q={EMAIL}"))
        .await;
    let patient_id = list.body["items"][0]["id"]
        .as_str()
        .expect("patient")
        .to_string();
    let export = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/patients/{patient_id}/export"),
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(export.body["seats"].as_array().map(Vec::len), Some(2));
    let text = export.body.to_string();
    for piece in [BOOKING_NOTE, ENQUIRY, PHONE] {
        assert!(text.contains(piece), "{piece} missing from the export");
    }
    let erased = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/patients/{patient_id}/erase"),
            json!({}),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(
        erased.body["cancelled_bookings"],
        json!([kept.body["seat"]["reference"]])
    );
    // The place is free again, and the patient was told before their address went.
    let roster = app
        .get_as(&admin, &format!("/api/v1/staff/classes/{class}"))
        .await;
    assert_eq!(roster.body["seats_left"], 10, "{}", roster.body);
    assert_eq!(roster.body["seats"][0]["status"], "cancelled");
    deliver_everything(&app).await;
    retention::purge(&app.state, Utc::now())
        .await
        .expect("purge");
    let left = leftovers(&app).await;
    assert!(left.is_empty(), "{}", left.join("\n"));
}
