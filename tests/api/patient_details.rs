//! Stored patient details change only through `PATCH /api/v1/staff/patients/{id}` (admin,
//! reception; audited with field names only): neither a staff booking nor a public booking
//! with an existing patient's address changes anything stored about them.

use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots};
use crate::helpers::{TestApp, spawn_app};

const EMAIL: &str = "morgan@example.com";

async fn patient_by_email(app: &TestApp, admin: &str) -> Value {
    let list = app
        .get_as(admin, &format!("/api/v1/staff/patients?q={EMAIL}"))
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 1, "{}", list.body);
    list.body["items"][0].clone()
}

async fn first_slot(app: &TestApp, service: &str, days: i64, n: usize) -> String {
    let d = in_days(days);
    let found = slots(app, &format!("service_id={service}&from={d}&to={d}")).await;
    found[n]["start"].as_str().expect("a slot").to_string()
}

/// A clinic with Morgan booked online without a phone.
async fn clinic_with_morgan() -> (TestApp, String, String, String, String) {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = first_slot(&app, &service, 3, 0).await;
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": start,
                    "patient": { "name": "Morgan Price", "email": EMAIL },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = patient_by_email(&app, &admin).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    (app, admin, practitioner, service, id)
}

#[tokio::test]
async fn a_public_booking_never_changes_an_existing_patient() {
    let (app, admin, _, service, _) = clinic_with_morgan().await;
    let start = first_slot(&app, &service, 4, 0).await;
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": start,
                    "patient": { "name": "Someone Else", "email": EMAIL,
                                 "phone": "07700 900555" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let stored = patient_by_email(&app, &admin).await;
    assert_eq!(stored["name"], "Morgan Price");
    assert!(stored["phone"].is_null(), "{stored}");
}

#[tokio::test]
async fn a_staff_booking_never_changes_an_existing_patient() {
    let (app, admin, practitioner, service, patient) = clinic_with_morgan().await;
    let me = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    for token in [&admin, &me] {
        let reply = app
            .post_as(
                token,
                "/api/v1/staff/bookings",
                json!({ "service_id": service, "practitioner_id": practitioner,
                        "start": format!("{}T{}:00:00Z", in_days(5), if token == &me { 19 } else { 20 }),
                        "patient": { "name": "Renamed By Staff", "email": EMAIL,
                                     "phone": "07700 900666" } }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        // The booking is the existing patient's, shown as stored.
        assert_eq!(reply.body["booking"]["patient"]["name"], "Morgan Price");
    }
    let detail = app
        .get_as(&admin, &format!("/api/v1/staff/patients/{patient}"))
        .await;
    assert_eq!(detail.body["name"], "Morgan Price");
    assert!(detail.body["phone"].is_null(), "{}", detail.body);
}

#[tokio::test]
async fn admin_and_reception_change_details_with_an_audited_patch() {
    let (app, admin, practitioner, _, patient) = clinic_with_morgan().await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let path = format!("/api/v1/staff/patients/{patient}");
    let reply = app
        .patch_as(
            &reception,
            &path,
            json!({ "name": "Morgan Price-Jones", "phone": "07700 900777" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"], "Morgan Price-Jones");
    assert_eq!(reply.body["phone"], "07700 900777");
    assert_eq!(reply.body["email"], EMAIL);
    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "email": "morgan.pj@example.com", "phone": null }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["email"], "morgan.pj@example.com");
    assert!(reply.body["phone"].is_null());
    // Audited with the field names, never the values.
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    let rows: Vec<&Value> = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["entity"] == "patient" && a["action"] == "update")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let text = serde_json::to_string(&rows).expect("json");
    for secret in ["Morgan", "07700", "morgan.pj"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(
        rows.iter()
            .any(|r| r["detail"]["fields"] == json!(["email", "phone"]))
    );
    // Practitioners may not; bad values and taken addresses are problems.
    let me = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    app.patch_as(&me, &path, json!({ "name": "X" }))
        .await
        .assert_problem(403, "forbidden");
    let reply = app
        .patch_as(&admin, &path, json!({ "name": "A\nB", "email": "nope" }))
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["name", "email"]);
    app.patch_as(&admin, &path, json!({ "name": null }))
        .await
        .assert_problem(422, "validation_failed");
    let other = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": crate::patient_details::any_service(&app, &admin).await,
                    "practitioner_id": practitioner,
                    "start": format!("{}T20:00:00Z", in_days(6)),
                    "patient": { "name": "Other Person", "email": "other@example.com" } }),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.body);
    app.patch_as(&admin, &path, json!({ "email": "other@example.com" }))
        .await
        .assert_problem(409, "email_taken");
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/patients/{}", uuid::Uuid::new_v4()),
        json!({ "name": "Nobody" }),
    )
    .await
    .assert_problem(404, "not_found");
    // Erased patients stay erased.
    let erased = app
        .post_as(&admin, &format!("{path}/erase"), json!({}))
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    app.patch_as(&admin, &path, json!({ "name": "Back Again" }))
        .await
        .assert_problem(422, "patient_erased");
}

/// The id of the first staff service.
pub async fn any_service(app: &TestApp, admin: &str) -> String {
    let list = app.get_as(admin, "/api/v1/staff/services").await;
    list.body["items"][0]["id"]
        .as_str()
        .expect("a service")
        .to_string()
}
