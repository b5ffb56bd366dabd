//! The front desk's bookings: phone bookings, the list, cancel with reasons, reschedule,
//! attendance, and what each role may do.

use chrono::{DateTime, Duration, Utc};
use entity::outbox_message;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{TestApp, spawn_app};

fn evening(days: i64) -> String {
    // 20:00 local-ish: outside the 09:00–17:00 hours of the test clinic in either offset.
    let d = in_days(days);
    format!("{d}T20:00:00+00:00")
}

fn phone_booking(service: &str, practitioner: &str, start: &str, email: Option<&str>) -> Value {
    json!({
        "service_id": service,
        "practitioner_id": practitioner,
        "start": start,
        "patient": { "name": "Pat Walker", "email": email, "phone": "07700 900789" },
        "notes": "Booked by phone"
    })
}

async fn outbox(app: &TestApp) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .all(&app.db)
        .await
        .expect("outbox")
}

#[tokio::test]
async fn reception_books_by_phone_outside_hours_without_an_email() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let reply = app
        .post_as(
            &reception,
            "/api/v1/staff/bookings",
            phone_booking(&service, &practitioner, &evening(3), None),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/staff/bookings/{id}").as_str())
    );
    assert_eq!(reply.body["source"], "staff");
    assert!(reply.body["booking"]["patient"]["email"].is_null());
    assert_eq!(reply.body["events"][0]["kind"], "created");
    assert_eq!(reply.body["events"][0]["actor"], "staff");
    // No patient email without an address; the front desk still hears of it.
    let mail = outbox(&app).await;
    assert!(
        mail.iter().all(|m| m.kind != "booking_confirmed"),
        "{mail:?}"
    );
    assert!(mail.iter().any(|m| m.kind == "staff_notice"));
    // Never over another booking, even for staff.
    let clash = app
        .post_as(
            &reception,
            "/api/v1/staff/bookings",
            phone_booking(
                &service,
                &practitioner,
                &evening(3),
                Some("other@example.com"),
            ),
        )
        .await;
    clash.assert_problem(409, "slot_unavailable");
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    assert!(
        audit.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|a| a["entity"] == "booking"
                && a["action"] == "create"
                && a["entity_id"] == id.as_str())
    );
}

#[tokio::test]
async fn bad_staff_bookings_are_rejected_with_the_field() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let other = app.create_practitioner(&admin, "Not Linked").await;
    let start = evening(4);
    let ok = phone_booking(&service, &practitioner, &start, Some("pat@example.com"));
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            {
                let mut b = ok.clone();
                b["start"] = json!("at eight");
                b
            },
            422,
            "validation_failed",
            Some("start"),
        ),
        (
            {
                let mut b = ok.clone();
                b["patient"]["name"] = json!("Pat\nWalker");
                b
            },
            422,
            "validation_failed",
            Some("patient.name"),
        ),
        (
            {
                let mut b = ok.clone();
                b["patient"]["email"] = json!("nope");
                b
            },
            422,
            "validation_failed",
            Some("patient.email"),
        ),
        (
            {
                let mut b = ok.clone();
                b["service_id"] = json!(uuid::Uuid::new_v4());
                b
            },
            422,
            "validation_failed",
            Some("service_id"),
        ),
        (
            {
                let mut b = ok.clone();
                b["practitioner_id"] = json!(other);
                b
            },
            422,
            "outside_availability",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let reply = app.post_as(&admin, "/api/v1/staff/bookings", body).await;
        reply.assert_problem(status, code);
        if let Some(field) = field {
            assert_eq!(
                reply.error_fields(),
                vec![field.to_string()],
                "{}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn practitioners_manage_only_their_own_bookings() {
    let app = spawn_app().await;
    let (admin, mine, service) = clinic_with_one_practitioner(&app).await;
    let theirs = app.create_practitioner(&admin, "Colleague").await;
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "practitioner_ids": [mine, theirs] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let me = app.staff_token(&admin, "practitioner", Some(&mine)).await;
    let own = app
        .post_as(
            &me,
            "/api/v1/staff/bookings",
            phone_booking(&service, &mine, &evening(5), None),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.body);
    app.post_as(
        &me,
        "/api/v1/staff/bookings",
        phone_booking(&service, &theirs, &evening(6), None),
    )
    .await
    .assert_problem(403, "forbidden");
    let colleague = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            phone_booking(&service, &theirs, &evening(6), None),
        )
        .await;
    assert_eq!(colleague.status, 201, "{}", colleague.body);
    let colleague_id = colleague.body["booking"]["id"].as_str().expect("id");
    let list = app.get_as(&me, "/api/v1/staff/bookings").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 1);
    app.get_as(
        &me,
        &format!("/api/v1/staff/bookings?practitioner_id={theirs}"),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get_as(&me, &format!("/api/v1/staff/bookings/{colleague_id}"))
        .await
        .assert_problem(404, "not_found");
    app.post_as(
        &me,
        &format!("/api/v1/staff/bookings/{colleague_id}/cancel"),
        json!({ "reason": "illness" }),
    )
    .await
    .assert_problem(404, "not_found");
    let all = app.get_as(&admin, "/api/v1/staff/bookings").await;
    assert_eq!(all.body["total"], 2);
    app.get("/api/v1/staff/bookings")
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn the_booking_list_filters_by_date_status_practitioner_and_email() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    for (days, email) in [
        (3, "a@example.com"),
        (4, "b@example.com"),
        (5, "a@example.com"),
    ] {
        let reply = app
            .post_as(
                &admin,
                "/api/v1/staff/bookings",
                phone_booking(&service, &practitioner, &evening(days), Some(email)),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let by_email = app
        .get_as(&admin, "/api/v1/staff/bookings?email=A@example.com")
        .await;
    assert_eq!(by_email.body["total"], 2, "{}", by_email.body);
    let day = in_days(4);
    let by_day = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/bookings?from={day}&to={day}"),
        )
        .await;
    assert_eq!(by_day.body["total"], 1);
    let first = app
        .get_as(&admin, "/api/v1/staff/bookings?per_page=1")
        .await;
    let id = first.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        first.body["items"][0]["patient"]["email"], "a@example.com",
        "soonest first"
    );
    app.post_as(
        &admin,
        &format!("/api/v1/staff/bookings/{id}/cancel"),
        json!({ "reason": "work" }),
    )
    .await;
    let cancelled = app
        .get_as(&admin, "/api/v1/staff/bookings?status=cancelled")
        .await;
    assert_eq!(cancelled.body["total"], 1);
    let by_practitioner = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/bookings?practitioner_id={practitioner}"),
        )
        .await;
    assert_eq!(by_practitioner.body["total"], 3);
    app.get_as(&admin, "/api/v1/staff/bookings?status=lost")
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn staff_cancel_with_a_reason_and_the_patient_is_told() {
    let app = spawn_app().await;
    let (admin, _, service) = clinic_with_one_practitioner(&app).await;
    let d = in_days(5);
    let start =
        starts(&slots(&app, &format!("service_id={service}&from={d}&to={d}")).await)[0].clone();
    let created = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": start,
                    "patient": { "name": "Jo Bloggs", "email": "jo@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/cancel"),
            json!({ "reason": "illness", "note": "Practitioner unwell" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["booking"]["status"], "cancelled");
    assert_eq!(reply.body["cancel_reason"], "illness: Practitioner unwell");
    let kinds: Vec<&str> = reply.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "cancelled"]);
    assert!(
        outbox(&app)
            .await
            .iter()
            .any(|m| m.kind == "booking_cancelled" && m.to_address == "jo@example.com")
    );
    app.post_as(
        &admin,
        &format!("/api/v1/staff/bookings/{id}/cancel"),
        json!({ "reason": "because" }),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn staff_reschedule_off_the_grid_but_never_onto_another_booking() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let first = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            phone_booking(&service, &practitioner, &evening(3), None),
        )
        .await;
    let second = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            phone_booking(&service, &practitioner, &evening(4), None),
        )
        .await;
    let id = first.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let taken = second.body["booking"]["start"]
        .as_str()
        .expect("start")
        .to_string();
    let odd: DateTime<Utc> =
        taken.parse::<DateTime<Utc>>().expect("start") - Duration::hours(3) + Duration::minutes(7);
    let moved = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/reschedule"),
            json!({ "start": odd.to_rfc3339() }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        moved.body["booking"]["start"],
        odd.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    app.post_as(
        &admin,
        &format!("/api/v1/staff/bookings/{id}/reschedule"),
        json!({ "start": taken }),
    )
    .await
    .assert_problem(409, "slot_unavailable");
}

#[tokio::test]
async fn attendance_moves_forward_only() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let created = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            phone_booking(&service, &practitioner, &evening(2), None),
        )
        .await;
    let id = created.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let path = format!("/api/v1/staff/bookings/{id}/attendance");
    let arrived = app
        .post_as(&admin, &path, json!({ "status": "arrived" }))
        .await;
    assert_eq!(arrived.status, 200, "{}", arrived.body);
    assert_eq!(arrived.body["booking"]["status"], "arrived");
    let done = app
        .post_as(&admin, &path, json!({ "status": "completed" }))
        .await;
    assert_eq!(done.body["booking"]["status"], "completed");
    app.post_as(&admin, &path, json!({ "status": "arrived" }))
        .await
        .assert_problem(422, "booking_not_changeable");
    app.post_as(&admin, &path, json!({ "status": "cancelled" }))
        .await
        .assert_problem(422, "validation_failed");
    let history = app
        .get_as(&admin, &format!("/api/v1/staff/bookings/{id}"))
        .await;
    let kinds: Vec<&str> = history.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["created", "arrived", "completed"]);
}
