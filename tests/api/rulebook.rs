//! One rulebook for every placement: staff bookings and staff moves are refused by time off
//! and closures unless the request lists them in `overrides` (audited); a move of a
//! deactivated service is refused; a staff move keeps a working manage link in the email.

use entity::outbox_message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::TestApp;
use crate::helpers::spawn_app;

fn at(days: i64, clock: &str) -> String {
    format!("{}T{clock}:00Z", in_days(days))
}

fn staff_booking(service: &str, practitioner: &str, start: &str, overrides: Value) -> Value {
    json!({
        "service_id": service,
        "practitioner_id": practitioner,
        "start": start,
        "patient": { "name": "Robin Hale", "email": "robin@example.com" },
        "overrides": overrides,
    })
}

async fn close_day(app: &TestApp, admin: &str, days: i64) {
    let reply = app
        .post_as(
            admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": at(days, "00:00"), "ends_at": at(days, "23:59"),
                    "reason": "Bank holiday" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn away_on(app: &TestApp, admin: &str, practitioner: &str, days: i64) {
    let reply = app
        .post_as(
            admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/time-off"),
            json!({ "starts_at": at(days, "00:00"), "ends_at": at(days, "23:59") }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// The audit rows about one booking, newest first.
async fn audit_of(app: &TestApp, admin: &str, booking_id: &str) -> Vec<Value> {
    let audit = app.get_as(admin, "/api/v1/staff/audit?per_page=100").await;
    audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["entity"] == "booking" && a["entity_id"] == booking_id)
        .cloned()
        .collect()
}

fn overrides_of(row: &Value) -> Value {
    let detail = match &row["detail"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    detail["overrides"].clone()
}

#[tokio::test]
async fn a_staff_booking_inside_a_closure_needs_the_closure_override() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    close_day(&app, &admin, 5).await;
    let start = at(5, "12:00");
    let refused = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &start, json!([])),
        )
        .await;
    refused.assert_problem(422, "outside_availability");
    // Listing the other rule does not help.
    let refused = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &start, json!(["time_off"])),
        )
        .await;
    refused.assert_problem(422, "outside_availability");
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &start, json!(["closure"])),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["booking"]["id"].as_str().expect("id");
    let rows = audit_of(&app, &admin, id).await;
    let created = rows
        .iter()
        .find(|r| r["action"] == "create")
        .expect("an audit row for the booking");
    assert_eq!(overrides_of(created), json!(["closure"]), "{created}");
    // The closure still refuses the public path.
    let online = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": at(5, "14:00"),
                    "patient": { "name": "Kim Online", "email": "kim@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    online.assert_problem(422, "outside_availability");
}

#[tokio::test]
async fn a_staff_booking_in_time_off_needs_the_time_off_override() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    away_on(&app, &admin, &practitioner, 6).await;
    let start = at(6, "10:00");
    let refused = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &start, json!(["closure"])),
        )
        .await;
    refused.assert_problem(422, "outside_availability");
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &start, json!(["time_off"])),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["booking"]["id"].as_str().expect("id");
    let rows = audit_of(&app, &admin, id).await;
    assert!(
        rows.iter()
            .any(|r| r["action"] == "create" && overrides_of(r) == json!(["time_off"])),
        "{rows:?}"
    );
    // An unknown override is a validation error, not a 500.
    let bad = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(
                &service,
                &practitioner,
                &at(6, "12:00"),
                json!(["weekends"]),
            ),
        )
        .await;
    assert!(
        bad.status == 400 || bad.status == 422,
        "{} {}",
        bad.status,
        bad.body
    );
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn a_staff_reschedule_into_a_closure_or_time_off_needs_the_override() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &at(3, "10:00"), json!([])),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    close_day(&app, &admin, 7).await;
    away_on(&app, &admin, &practitioner, 8).await;
    let path = format!("/api/v1/staff/bookings/{id}/reschedule");
    for (days, needed) in [(7, "closure"), (8, "time_off")] {
        let start = at(days, "11:00");
        app.post_as(&admin, &path, json!({ "start": start }))
            .await
            .assert_problem(422, "outside_availability");
        let moved = app
            .post_as(
                &admin,
                &path,
                json!({ "start": start, "overrides": [needed] }),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(moved.body["booking"]["start"], start);
        let rows = audit_of(&app, &admin, &id).await;
        assert!(
            rows.iter()
                .any(|r| r["action"] == "reschedule" && overrides_of(r) == json!([needed])),
            "{rows:?}"
        );
    }
}

#[tokio::test]
async fn a_staff_reschedule_emails_a_manage_link_that_works() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            staff_booking(&service, &practitioner, &at(3, "10:00"), json!([])),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let moved = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/reschedule"),
            json!({ "start": at(4, "10:00") }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let email = outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq("booking_rescheduled"))
        .order_by_desc(outbox_message::Column::CreatedAt)
        .one(&app.db)
        .await
        .expect("outbox")
        .expect("a reschedule email to the patient");
    let prefix = format!("{}/manage/", app.settings.server.public_url);
    let start = email
        .text_body
        .find(&prefix)
        .expect("a manage link in the email");
    let token: String = email.text_body[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let managed = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(managed.status, 200, "{}", managed.body);
    assert_eq!(managed.body["booking"]["id"], id.as_str());
    assert_eq!(managed.body["booking"]["start"], at(4, "10:00"));
}

#[tokio::test]
async fn a_booking_of_a_deactivated_service_cannot_be_moved() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let slots = crate::availability::slots(
        &app,
        &format!("service_id={service}&from={}&to={}", in_days(4), in_days(4)),
    )
    .await;
    let first = slots[0]["start"].as_str().expect("a slot").to_string();
    let later = slots[2]["start"].as_str().expect("a slot").to_string();
    let booked = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner, "start": first,
                    "patient": { "name": "Kim Online", "email": "kim@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let token = booked.body["manage_token"].as_str().expect("token");
    let id = booked.body["booking"]["id"].as_str().expect("id");
    let gone = app
        .delete_as(&admin, &format!("/api/v1/staff/services/{service}"))
        .await;
    assert!(gone.status.is_success(), "{}", gone.body);
    app.post(
        &format!("/api/v1/manage/{token}/reschedule"),
        json!({ "start": later }),
    )
    .await
    .assert_problem(422, "outside_availability");
    app.post_as(
        &admin,
        &format!("/api/v1/staff/bookings/{id}/reschedule"),
        json!({ "start": later }),
    )
    .await
    .assert_problem(422, "outside_availability");
    // It can still be cancelled.
    let cancelled = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
}
