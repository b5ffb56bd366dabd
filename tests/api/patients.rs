//! Patient records for staff: search, detail, who sees whom, the subject access export and
//! erasure.

use chrono::{Duration, Utc};
use entity::{appointment, audit_log, enquiry, outbox_message, patient};
use frontdesk::email::worker;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{TestApp, spawn_app};

/// The `n`th free start of `service` (with `practitioner`) `days` ahead.
async fn free_start(
    app: &TestApp,
    service: &str,
    practitioner: &str,
    days: i64,
    n: usize,
) -> String {
    let d = in_days(days);
    let free = starts(
        &slots(
            app,
            &format!("service_id={service}&practitioner_id={practitioner}&from={d}&to={d}"),
        )
        .await,
    );
    free[n].clone()
}

/// Books online and returns the reply body (`booking`, `manage_token`, …).
async fn book(app: &TestApp, service: &str, start: &str, who: (&str, &str, &str)) -> Value {
    let (name, email, phone) = who;
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({
                "service_id": service,
                "start": start,
                "patient": { "name": name, "email": email, "phone": phone },
                "notes": format!("{name}'s left knee hurts"),
                "consent": { "privacy": true, "marketing": true }
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn id_of(booking: &Value) -> String {
    booking["booking"]["id"].as_str().expect("id").to_string()
}

async fn patient_id_for(app: &TestApp, email: &str) -> String {
    patient::Entity::find()
        .filter(patient::Column::Email.eq(email))
        .one(&app.db)
        .await
        .expect("query")
        .expect("patient exists")
        .id
        .to_string()
}

/// Moves an appointment `days` into the past, as if it had happened.
async fn move_to_past(app: &TestApp, id: &str, days: i64) {
    let row = appointment::Entity::find_by_id(id.parse::<uuid::Uuid>().expect("uuid"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("appointment");
    let shift = |t: chrono::DateTime<Utc>| t - Duration::days(days);
    let (starts, ends, from, until) = (
        shift(row.starts_at),
        shift(row.ends_at),
        shift(row.blocked_from),
        shift(row.blocked_until),
    );
    let mut row = row.into_active_model();
    row.starts_at = sea_orm::Set(starts);
    row.ends_at = sea_orm::Set(ends);
    row.blocked_from = sea_orm::Set(from);
    row.blocked_until = sea_orm::Set(until);
    row.update(&app.db).await.expect("move to the past");
}

fn names(items: &Value) -> Vec<String> {
    let mut names: Vec<String> = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .all(&app.db)
        .await
        .expect("audit")
}

const JO: (&str, &str, &str) = ("Jo Bloggs", "jo@example.com", "07700 900123");
const SAM: (&str, &str, &str) = ("Sam O'Neill", "sam_100%@example.org", "020 7946 0555");
const ALEX: (&str, &str, &str) = ("Alex Smith", "alex@example.net", "07700-900999");

#[tokio::test]
async fn staff_find_patients_by_name_email_or_phone_ignoring_case() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    for (i, who) in [JO, SAM, ALEX].into_iter().enumerate() {
        let start = free_start(&app, &service, &practitioner, 3, i * 4).await;
        book(&app, &service, &start, who).await;
    }
    let search = |q: &str| search(&app, &admin, q.to_string());
    assert_eq!(search("bloggs").await, ["Jo Bloggs"]);
    assert_eq!(search("JO@EXAMPLE").await, ["Jo Bloggs"]);
    assert_eq!(search("example.").await.len(), 3);
    assert_eq!(search("0555").await, ["Sam O'Neill"]);
    // A phone number matches with or without its spaces and dashes.
    assert_eq!(search("07700900123").await, ["Jo Bloggs"]);
    assert_eq!(search("07700 900999").await, ["Alex Smith"]);
    assert_eq!(search("07700").await.len(), 2);
    // LIKE wildcards in the query are literal characters.
    assert_eq!(search("_100%").await, ["Sam O'Neill"]);
    assert_eq!(search("%").await, ["Sam O'Neill"]);
    assert!(search("%%").await.is_empty());
    assert!(search("o_n").await.is_empty());
    assert!(search("nobody").await.is_empty());
    assert_eq!(search("").await.len(), 3);

    let item = &app
        .get_as(&admin, "/api/v1/staff/patients?q=alex")
        .await
        .body["items"][0];
    assert_eq!(item["email"], "alex@example.net");
    assert_eq!(item["phone"], "07700-900999");
    assert!(item["id"].is_string() && item["created_at"].is_string());
}

/// The sorted names of the patients an admin finds with `q`.
async fn search(app: &TestApp, admin: &str, q: String) -> Vec<String> {
    let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let reply = app
        .get_as(admin, &format!("/api/v1/staff/patients?q={encoded}"))
        .await;
    assert_eq!(reply.status, 200, "{q}: {}", reply.body);
    assert_eq!(
        reply.body["total"].as_u64(),
        reply.body["items"].as_array().map(|a| a.len() as u64)
    );
    names(&reply.body)
}

#[tokio::test]
async fn the_patient_list_is_paginated() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    for (i, who) in [JO, SAM, ALEX].into_iter().enumerate() {
        let start = free_start(&app, &service, &practitioner, 4, i * 4).await;
        book(&app, &service, &start, who).await;
    }
    let first = app
        .get_as(&admin, "/api/v1/staff/patients?per_page=2")
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["total"], 3);
    assert_eq!(first.body["page"], 1);
    assert_eq!(first.body["per_page"], 2);
    let second = app
        .get_as(&admin, "/api/v1/staff/patients?per_page=2&page=2")
        .await;
    assert_eq!(second.body["total"], 3);
    let mut all = names(&first.body);
    all.extend(names(&second.body));
    all.sort();
    assert_eq!(all, ["Alex Smith", "Jo Bloggs", "Sam O'Neill"]);
    let beyond = app
        .get_as(&admin, "/api/v1/staff/patients?per_page=2&page=3")
        .await;
    assert_eq!(beyond.body["items"], json!([]));
    for bad in ["per_page=0", "per_page=101", "page=0", "page=x"] {
        app.get_as(&admin, &format!("/api/v1/staff/patients?{bad}"))
            .await
            .assert_problem(422, "validation_failed");
    }
}

#[tokio::test]
async fn a_patient_record_shows_bookings_latest_first_and_consents() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let sooner = free_start(&app, &service, &practitioner, 3, 0).await;
    let later = free_start(&app, &service, &practitioner, 6, 0).await;
    let first = book(&app, &service, &sooner, JO).await;
    let second = book(&app, &service, &later, JO).await;
    let id = patient_id_for(&app, "jo@example.com").await;

    let reply = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{id}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["name"], "Jo Bloggs");
    assert_eq!(body["email"], "jo@example.com");
    assert_eq!(body["phone"], "07700 900123");
    assert!(body["erased_at"].is_null());
    let bookings = body["bookings"].as_array().expect("bookings");
    assert_eq!(bookings.len(), 2);
    assert_eq!(bookings[0], second["booking"], "the later booking first");
    assert_eq!(bookings[1], first["booking"]);
    let consents = body["consents"].as_array().expect("consents");
    assert_eq!(consents.len(), 4, "privacy and marketing, per booking");
    for c in consents {
        assert_eq!(c["source"], "online_booking");
        assert_eq!(c["granted"], true);
        assert!(c["kind"] == "privacy" || c["kind"] == "marketing");
        assert!(c["at"].is_string());
    }

    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        app.get_as(&admin, &format!("/api/v1/staff/patients/{missing}"))
            .await
            .assert_problem(404, "not_found");
    }
}

/// A second practitioner with their own service, working every day 09:00–17:00.
async fn second_practitioner(app: &TestApp, admin: &str) -> (String, String) {
    let practitioner = app.create_practitioner(admin, "Ben Carter").await;
    let service = app
        .create_service(admin, "Sports massage", &[&practitioner])
        .await;
    let week: Vec<Value> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|d| json!({ "weekday": d, "start": "09:00", "end": "17:00" }))
    .collect();
    let reply = app
        .put_as(
            admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/working-hours"),
            json!({ "intervals": week }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    (practitioner, service)
}

#[tokio::test]
async fn a_practitioner_sees_only_patients_and_appointments_of_their_own() {
    let app = spawn_app().await;
    let (admin, mine, my_service) = clinic_with_one_practitioner(&app).await;
    let (theirs, their_service) = second_practitioner(&app, &admin).await;
    let me = app.staff_token(&admin, "practitioner", Some(&mine)).await;

    // Jo sees me; Sam sees my colleague; Alex saw me once (cancelled) and sees my colleague,
    // so a practitioner sees Jo only: a cancelled appointment shows nobody to them.
    let start = free_start(&app, &my_service, &mine, 3, 0).await;
    let jo_booking = book(&app, &my_service, &start, JO).await;
    let start = free_start(&app, &their_service, &theirs, 3, 0).await;
    book(&app, &their_service, &start, SAM).await;
    let start = free_start(&app, &my_service, &mine, 3, 4).await;
    let alex_with_me = book(&app, &my_service, &start, ALEX).await;
    let token = alex_with_me["manage_token"].as_str().expect("token");
    let cancel = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    let start = free_start(&app, &their_service, &theirs, 4, 0).await;
    book(&app, &their_service, &start, ALEX).await;

    let list = app.get_as(&me, "/api/v1/staff/patients").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(names(&list.body), ["Jo Bloggs"]);
    assert_eq!(list.body["total"], 1);
    let search = app.get_as(&me, "/api/v1/staff/patients?q=sam").await;
    assert_eq!(search.body["total"], 0);
    let all = app.get_as(&admin, "/api/v1/staff/patients").await;
    assert_eq!(all.body["total"], 3);

    let jo = patient_id_for(&app, "jo@example.com").await;
    let sam = patient_id_for(&app, "sam_100%@example.org").await;
    let alex = patient_id_for(&app, "alex@example.net").await;
    let reply = app
        .get_as(&me, &format!("/api/v1/staff/patients/{jo}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["bookings"], json!([jo_booking["booking"]]));
    app.get_as(&me, &format!("/api/v1/staff/patients/{sam}"))
        .await
        .assert_problem(404, "not_found");
    // Alex's only appointment with me is cancelled; the one with my colleague is not mine.
    app.get_as(&me, &format!("/api/v1/staff/patients/{alex}"))
        .await
        .assert_problem(404, "not_found");
    // Booked with me again, Alex is visible with that appointment only.
    let start = free_start(&app, &my_service, &mine, 5, 0).await;
    let alex_again = book(&app, &my_service, &start, ALEX).await;
    let reply = app
        .get_as(&me, &format!("/api/v1/staff/patients/{alex}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let bookings = reply.body["bookings"].as_array().expect("bookings");
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0]["id"], id_of(&alex_again).as_str());
    assert_ne!(bookings[0]["id"], id_of(&alex_with_me).as_str());
    let as_admin = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{alex}"))
        .await;
    assert_eq!(as_admin.body["bookings"].as_array().map(Vec::len), Some(3));

    // Export and erase are not theirs to do, even for their own patient.
    app.get_as(&me, &format!("/api/v1/staff/patients/{jo}/export"))
        .await
        .assert_problem(403, "forbidden");
    app.post_as(
        &me,
        &format!("/api/v1/staff/patients/{jo}/erase"),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn an_export_holds_the_patient_bookings_with_history_consents_and_enquiries() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = free_start(&app, &service, &practitioner, 3, 0).await;
    let booked = book(&app, &service, &start, JO).await;
    let token = booked["manage_token"].as_str().expect("token");
    let new_start = free_start(&app, &service, &practitioner, 5, 2).await;
    let moved = app
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            json!({ "start": new_start }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let start = free_start(&app, &service, &practitioner, 3, 4).await;
    book(&app, &service, &start, SAM).await;
    for (email, message) in [
        (
            "Jo@Example.com",
            "Do you treat running injuries on Saturdays?",
        ),
        (
            "someone.else@example.com",
            "Is there parking near the clinic?",
        ),
    ] {
        let reply = app
            .post(
                "/api/v1/enquiries",
                json!({
                    "name": "Jo B", "email": email, "phone": "07700 900123",
                    "topic": "physio", "message": message, "preferred_contact": "email",
                    "consent": { "privacy": true, "marketing": false }, "website": ""
                }),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let id = patient_id_for(&app, "jo@example.com").await;

    let reply = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{id}/export"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let doc = &reply.body;
    assert!(doc["exported_at"].is_string());
    assert_eq!(doc["patient"]["id"], id.as_str());
    assert_eq!(doc["patient"]["name"], "Jo Bloggs");
    assert_eq!(doc["patient"]["email"], "jo@example.com");
    assert_eq!(doc["patient"]["phone"], "07700 900123");
    assert!(doc["patient"]["erased_at"].is_null());
    assert_eq!(doc["consents"].as_array().map(Vec::len), Some(2));

    let appointments = doc["appointments"].as_array().expect("appointments");
    assert_eq!(appointments.len(), 1, "only Jo's: {appointments:?}");
    let appt = &appointments[0];
    assert_eq!(appt["booking"]["id"], id_of(&booked).as_str());
    assert_eq!(appt["booking"]["start"], new_start.as_str());
    assert_eq!(appt["booking"]["notes"], "Jo Bloggs's left knee hurts");
    assert_eq!(appt["source"], "online");
    let kinds: Vec<&str> = appt["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["created", "rescheduled"]);
    assert_eq!(appt["events"][1]["detail"]["to"], new_start.as_str());
    assert_eq!(appt["events"][0]["actor"], "patient");

    let enquiries = doc["enquiries"].as_array().expect("enquiries");
    assert_eq!(enquiries.len(), 1, "only the one from Jo's address");
    assert_eq!(
        enquiries[0]["message"],
        "Do you treat running injuries on Saturdays?"
    );
    assert!(
        enquiries[0]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with('E'))
    );

    let emails = doc["emails"].as_array().expect("emails");
    assert!(
        emails
            .iter()
            .any(|e| e["kind"] == "booking_confirmed" && e["to"] == "jo@example.com"),
        "{emails:?}"
    );
    assert!(emails.iter().any(|e| e["kind"] == "enquiry_ack"));
    assert!(!emails.iter().any(|e| e["to"] == "sam_100%@example.org"));

    let audit = audit_rows(&app, "export").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entity, "patient");
    assert_eq!(audit[0].entity_id.as_deref(), Some(id.as_str()));
    assert!(!audit[0].detail.contains("jo@example.com"));
}

#[tokio::test]
async fn erasing_cancels_future_bookings_with_an_email_then_anonymises_the_rest() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = free_start(&app, &service, &practitioner, 3, 0).await;
    let past = book(&app, &service, &start, JO).await;
    move_to_past(&app, &id_of(&past), 30).await;
    let start = free_start(&app, &service, &practitioner, 5, 0).await;
    let future = book(&app, &service, &start, JO).await;
    let start = free_start(&app, &service, &practitioner, 5, 4).await;
    let other = book(&app, &service, &start, SAM).await;
    let reply = app
        .post(
            "/api/v1/enquiries",
            json!({
                "name": "Jo Bloggs", "email": "JO@example.com", "phone": "07700 900123",
                "topic": "physio", "message": "My left knee clicks when I run downhill.",
                "preferred_contact": "phone",
                "consent": { "privacy": true, "marketing": false }, "website": ""
            }),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Deliver what is queued so far: copies of sent emails are scrubbed too.
    worker::run_once(&app.state).await.expect("worker step");
    let id = patient_id_for(&app, "jo@example.com").await;
    let emails_before = outbox_message::Entity::find()
        .count(&app.db)
        .await
        .expect("count");

    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/patients/{id}/erase"),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["already_erased"], false);
    assert_eq!(
        body["cancelled_bookings"],
        json!([future["booking"]["reference"]])
    );
    assert_eq!(body["appointments_kept"], 2);
    assert_eq!(body["enquiries_anonymised"], 1);
    assert!(
        body["emails_scrubbed"].as_u64().is_some_and(|n| n >= 3),
        "{body}"
    );
    assert_eq!(body["patient"]["name"], "Erased patient");
    assert!(body["patient"]["email"].is_null() && body["patient"]["phone"].is_null());

    // The future booking was cancelled first, and the patient is told at their address.
    let future_id: uuid::Uuid = id_of(&future).parse().expect("uuid");
    let cancellation = outbox_message::Entity::find()
        .filter(outbox_message::Column::AppointmentId.eq(future_id))
        .filter(outbox_message::Column::Kind.eq("booking_cancelled"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("a cancellation email to the patient");
    assert_eq!(cancellation.to_address, "jo@example.com");
    assert_eq!(cancellation.status, "pending");
    assert!(
        outbox_message::Entity::find()
            .count(&app.db)
            .await
            .expect("count")
            > emails_before
    );

    // Appointments stay, without notes or working manage links.
    let rows = appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(id.parse::<uuid::Uuid>().expect("uuid")))
        .all(&app.db)
        .await
        .expect("appointments");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.notes, "");
        assert!(row.manage_token_hash.is_none());
        assert!(
            row.cancel_reason.is_none(),
            "reasons can hold health details"
        );
    }
    let status = |id: &str| {
        rows.iter()
            .find(|r| r.id.to_string() == id)
            .map(|r| r.status.clone())
    };
    assert_eq!(status(&id_of(&future)).as_deref(), Some("cancelled"));
    assert_eq!(status(&id_of(&past)).as_deref(), Some("confirmed"));
    let token = future["manage_token"].as_str().expect("token");
    app.get(&format!("/api/v1/manage/{token}"))
        .await
        .assert_problem(404, "not_found");

    // The patient row, their enquiry and the copies of sent emails hold nothing personal.
    let row = patient::Entity::find_by_id(id.parse::<uuid::Uuid>().expect("uuid"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("patient kept");
    assert_eq!(row.name, "Erased patient");
    assert!(row.email.is_none() && row.phone.is_none() && row.erased_at.is_some());
    let enquiries = enquiry::Entity::find()
        .all(&app.db)
        .await
        .expect("enquiries");
    assert_eq!(enquiries.len(), 1);
    let e = &enquiries[0];
    assert_eq!(e.name, "Erased");
    assert_eq!(e.email, format!("erased+{}@invalid", e.id));
    assert!(e.phone.is_none());
    assert_eq!(e.message, "[erased]");
    for m in outbox_message::Entity::find()
        .filter(outbox_message::Column::Status.ne("pending"))
        .all(&app.db)
        .await
        .expect("outbox")
    {
        let text = format!(
            "{} {} {} {:?}",
            m.to_address, m.to_name, m.text_body, m.reply_to
        );
        if m.appointment_id == Some(id_of(&other).parse().expect("uuid")) {
            assert!(text.contains("Sam"), "another patient's email is untouched");
            continue;
        }
        assert!(!text.contains("jo@example.com"), "{text}");
        assert!(!text.contains("Jo Bloggs"), "{text}");
        assert!(!text.contains("left knee"), "{text}");
    }

    // Another patient is untouched.
    let sam = app.get_as(&admin, "/api/v1/staff/patients?q=sam").await;
    assert_eq!(sam.body["items"][0]["email"], "sam_100%@example.org");
    assert_eq!(sam.body["items"][0]["phone"], "020 7946 0555");

    // The staff view shows an erased record with its history.
    let detail = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{id}"))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["name"], "Erased patient");
    assert!(detail.body["erased_at"].is_string());
    assert_eq!(detail.body["bookings"].as_array().map(Vec::len), Some(2));
    assert_eq!(detail.body["consents"].as_array().map(Vec::len), Some(4));
    app.get_as(&admin, "/api/v1/staff/patients?q=bloggs")
        .await
        .body["total"]
        .as_u64()
        .filter(|n| *n == 0)
        .expect("no longer found by name");

    // Audited, without the personal data.
    let audit = audit_rows(&app, "erase").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entity, "patient");
    assert_eq!(audit[0].entity_id.as_deref(), Some(id.as_str()));
    for personal in ["Jo", "Bloggs", "jo@example.com", "07700"] {
        assert!(!audit[0].detail.contains(personal), "{}", audit[0].detail);
    }

    // Erasing again changes nothing.
    let outbox_after = outbox_message::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    let again = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/patients/{id}/erase"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["already_erased"], true);
    assert_eq!(again.body["cancelled_bookings"], json!([]));
    assert_eq!(again.body["erased_at"], body["erased_at"]);
    let row_again = patient::Entity::find_by_id(row.id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("patient");
    assert_eq!(row_again, row);
    assert_eq!(audit_rows(&app, "erase").await.len(), 1);
    assert_eq!(
        outbox_message::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        outbox_after
    );

    // The same address may book again: it is a new patient.
    let start = free_start(&app, &service, &practitioner, 6, 0).await;
    book(&app, &service, &start, JO).await;
    assert_ne!(patient_id_for(&app, "jo@example.com").await, id);
}

#[tokio::test]
async fn only_admins_export_or_erase_and_staff_must_sign_in() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = free_start(&app, &service, &practitioner, 3, 0).await;
    book(&app, &service, &start, JO).await;
    let id = patient_id_for(&app, "jo@example.com").await;
    let reception = app.staff_token(&admin, "reception", None).await;

    assert_eq!(
        app.get_as(&reception, "/api/v1/staff/patients")
            .await
            .status,
        200
    );
    assert_eq!(
        app.get_as(&reception, &format!("/api/v1/staff/patients/{id}"))
            .await
            .status,
        200
    );
    app.get_as(&reception, &format!("/api/v1/staff/patients/{id}/export"))
        .await
        .assert_problem(403, "forbidden");
    app.post_as(
        &reception,
        &format!("/api/v1/staff/patients/{id}/erase"),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");

    app.get("/api/v1/staff/patients")
        .await
        .assert_problem(401, "unauthorized");
    app.get(&format!("/api/v1/staff/patients/{id}"))
        .await
        .assert_problem(401, "unauthorized");
    app.get(&format!("/api/v1/staff/patients/{id}/export"))
        .await
        .assert_problem(401, "unauthorized");
    app.post(&format!("/api/v1/staff/patients/{id}/erase"), json!({}))
        .await
        .assert_problem(401, "unauthorized");

    // Nothing changed; an unknown patient is 404 for the admin.
    let row = patient::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("patient");
    assert_eq!(row.name, "Jo Bloggs");
    assert!(audit_rows(&app, "export").await.is_empty());
    let unknown = uuid::Uuid::new_v4();
    app.get_as(&admin, &format!("/api/v1/staff/patients/{unknown}/export"))
        .await
        .assert_problem(404, "not_found");
    app.post_as(
        &admin,
        &format!("/api/v1/staff/patients/{unknown}/erase"),
        json!({}),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_patient_booked_by_phone_without_an_email_can_be_exported_and_erased() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = free_start(&app, &service, &practitioner, 3, 0).await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({
                "service_id": service, "practitioner_id": practitioner, "start": start,
                "patient": { "name": "Walk In", "email": null, "phone": "07700 900321" },
                "notes": "Prefers afternoons"
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let found = app.get_as(&admin, "/api/v1/staff/patients?q=900321").await;
    let id = found.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(found.body["items"][0]["email"].is_null());

    let export = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{id}/export"))
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(
        export.body["appointments"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(export.body["enquiries"], json!([]));

    let erased = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/patients/{id}/erase"),
            json!({}),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(
        erased.body["cancelled_bookings"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(erased.body["patient"]["name"], "Erased patient");
    assert!(erased.body["patient"]["phone"].is_null());
    let detail = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{id}"))
        .await;
    assert_eq!(detail.body["bookings"][0]["status"], "cancelled");
    assert_eq!(detail.body["bookings"][0]["notes"], "");
}
