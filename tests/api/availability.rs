//! Public slot search through HTTP: shape, ordering, time zones, and what removes slots.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A practitioner working 09:00–17:00 every day, offering a 45-minute service with a
/// 15-minute buffer after (from `create_service`).
pub async fn clinic_with_one_practitioner(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Amara Okafor").await;
    let service = app
        .create_service(&admin, "Initial assessment", &[&practitioner])
        .await;
    work_every_day(app, &admin, &practitioner).await;
    (admin, practitioner, service)
}

/// Gives a practitioner 09:00–17:00 hours every day of the week.
pub async fn work_every_day(app: &TestApp, admin: &str, practitioner: &str) {
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
}

/// Adds a second practitioner with the same hours to the service; returns their id.
pub async fn add_second_practitioner(
    app: &TestApp,
    admin: &str,
    first: &str,
    service: &str,
) -> String {
    let second = app.create_practitioner(admin, "Second Physio").await;
    let reply = app
        .patch_as(
            admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "practitioner_ids": [first, second] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    work_every_day(app, admin, &second).await;
    second
}

pub fn in_days(n: i64) -> NaiveDate {
    (Utc::now() + Duration::days(n)).date_naive()
}

pub async fn slots(app: &TestApp, query: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/availability?{query}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["slots"].as_array().expect("slots").clone()
}

pub fn starts(slots: &[Value]) -> Vec<String> {
    slots
        .iter()
        .map(|s| s["start"].as_str().expect("start").to_string())
        .collect()
}

#[tokio::test]
async fn a_working_day_lists_every_step_that_fits_in_utc_and_local_time() {
    let app = spawn_app().await;
    let (_, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let day = in_days(5);
    let reply = app
        .get(&format!(
            "/api/v1/availability?service_id={service}&from={day}&to={day}"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["service_id"], service.as_str());
    assert_eq!(reply.body["time_zone"], "Europe/London");
    let slots = reply.body["slots"].as_array().expect("slots");
    // 09:00..16:15 every 15 minutes: [t, t+45) must fit before 17:00.
    assert_eq!(slots.len(), 30, "{slots:?}");
    let first = &slots[0];
    assert_eq!(first["practitioner_id"], practitioner.as_str());
    let start = first["start"].as_str().expect("start");
    assert!(start.ends_with('Z'), "{start}");
    let local = first["local_start"].as_str().expect("local_start");
    assert!(local.contains("T09:00:00"), "{local}");
    assert!(
        local.ends_with("+00:00") || local.ends_with("+01:00"),
        "{local}"
    );
    let end = chrono::DateTime::parse_from_rfc3339(first["end"].as_str().expect("end"))
        .expect("end parses");
    let begin = chrono::DateTime::parse_from_rfc3339(start).expect("start parses");
    assert_eq!(end - begin, Duration::minutes(45));
    let all = starts(slots);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
}

#[tokio::test]
async fn slots_of_several_practitioners_are_sorted_by_start_then_practitioner() {
    let app = spawn_app_with(|s| s.demo.seed = true).await;
    let services = app.get("/api/v1/services").await;
    let follow_up = services
        .body
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["slug"] == "physio-follow-up")
        .expect("demo follow-up service")
        .clone();
    assert_eq!(
        follow_up["practitioner_ids"].as_array().map(Vec::len),
        Some(2)
    );
    let (from, to) = (in_days(3), in_days(9));
    let slots = slots(
        &app,
        &format!(
            "service_id={}&from={from}&to={to}",
            follow_up["id"].as_str().expect("id")
        ),
    )
    .await;
    assert!(!slots.is_empty());
    let keys: Vec<(String, String)> = slots
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap_or("").into(),
                s["practitioner_id"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        keys, sorted,
        "sorted by start then practitioner, no duplicates"
    );
    let practitioners: std::collections::HashSet<_> = keys.iter().map(|k| k.1.clone()).collect();
    assert_eq!(practitioners.len(), 2);
}

#[tokio::test]
async fn time_off_and_closures_remove_the_slots_they_touch() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let day = in_days(6);
    let query = format!("service_id={service}&from={day}&to={day}");
    let before = starts(&slots(&app, &query).await);
    assert_eq!(before.len(), 30);
    // Time off 11:00–12:00 local: take the instant from the listing itself.
    let eight = &before[8]; // 11:00 local
    let start = chrono::DateTime::parse_from_rfc3339(eight).expect("start");
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/time-off"),
            json!({ "starts_at": start.to_rfc3339(), "ends_at": (start + Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let after = starts(&slots(&app, &query).await);
    // Slots whose blocked [t, t+45+15) overlaps 11:00–12:00 go: 10:15 through 11:45.
    // 10:00 only touches it and stays.
    assert!(!after.contains(eight));
    assert!(after.contains(&before[4]), "10:00 stays: {after:?}");
    assert_eq!(before.len() - after.len(), 7, "{after:?}");
    // A closure over the whole day leaves nothing.
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": (start - Duration::hours(6)).to_rfc3339(),
                    "ends_at": (start + Duration::hours(12)).to_rfc3339(), "reason": "Staff training" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(slots(&app, &query).await.is_empty());
}

#[tokio::test]
async fn working_hours_are_read_in_clinic_time_across_the_spring_change() {
    // London moves from GMT to BST on the last Sunday of March: take the next one from today.
    let app = spawn_app_with(|s| s.policy.max_advance_days = 730).await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let today = Utc::now().date_naive();
    let change = (today.year()..today.year() + 2)
        .filter_map(|y| {
            let april = NaiveDate::from_ymd_opt(y, 4, 1)?;
            let back = i64::from(april.weekday().num_days_from_sunday());
            let sunday = april - Duration::days(if back == 0 { 7 } else { back });
            (sunday > today + Duration::days(3)).then_some(sunday)
        })
        .next()
        .expect("a spring change ahead");
    assert_eq!(change.weekday(), Weekday::Sun);
    let before = change - Duration::days(2);
    let after = change + Duration::days(1);
    let friday = slots(
        &app,
        &format!("service_id={service}&from={before}&to={before}"),
    )
    .await;
    let monday = slots(
        &app,
        &format!("service_id={service}&from={after}&to={after}"),
    )
    .await;
    assert_eq!(friday[0]["start"], format!("{before}T09:00:00Z"));
    assert_eq!(friday[0]["local_start"], format!("{before}T09:00:00+00:00"));
    assert_eq!(monday[0]["start"], format!("{after}T08:00:00Z"));
    assert_eq!(monday[0]["local_start"], format!("{after}T09:00:00+01:00"));
    assert_eq!(friday.len(), monday.len());
}

#[tokio::test]
async fn next_returns_the_earliest_free_slot() {
    let app = spawn_app().await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let reply = app
        .get(&format!("/api/v1/availability/next?service_id={service}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let next = reply.body["slot"]["start"]
        .as_str()
        .expect("a next slot")
        .to_string();
    let (from, to) = (in_days(0), in_days(2));
    let listed = starts(&slots(&app, &format!("service_id={service}&from={from}&to={to}")).await);
    assert_eq!(Some(&next), listed.first());
    let earliest = chrono::DateTime::parse_from_rfc3339(&next).expect("start");
    assert!(
        earliest >= Utc::now() + Duration::minutes(119),
        "min notice respected"
    );
}

#[tokio::test]
async fn next_is_null_when_nobody_works() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Idle Person").await;
    let service = app
        .create_service(&admin, "Quiet service", &[&practitioner])
        .await;
    let reply = app
        .get(&format!("/api/v1/availability/next?service_id={service}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["slot"].is_null(), "{}", reply.body);
}

#[tokio::test]
async fn bad_availability_queries_are_rejected_with_problems() {
    let app = spawn_app().await;
    let (admin, _, service) = clinic_with_one_practitioner(&app).await;
    let other = app.create_practitioner(&admin, "Not Offering").await;
    let d = in_days(3);
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (
            format!(
                "service_id={service}&from={d}&to={}",
                d + Duration::days(31)
            ),
            422,
            "validation_failed",
            Some("to"),
        ),
        (
            format!("service_id={service}&from={d}&to={}", d - Duration::days(1)),
            422,
            "validation_failed",
            Some("to"),
        ),
        (
            format!("service_id={service}&from=2026-13-01&to={d}"),
            422,
            "validation_failed",
            Some("from"),
        ),
        (
            format!("service_id={service}&to={d}"),
            422,
            "validation_failed",
            Some("from"),
        ),
        (
            format!("service_id=not-a-uuid&from={d}&to={d}"),
            422,
            "validation_failed",
            Some("service_id"),
        ),
        (
            format!("service_id={}&from={d}&to={d}", uuid::Uuid::new_v4()),
            404,
            "not_found",
            None,
        ),
        (
            format!("service_id={service}&from={d}&to={d}&practitioner_id={other}"),
            422,
            "validation_failed",
            Some("practitioner_id"),
        ),
    ];
    for (query, status, code, field) in cases {
        let reply = app.get(&format!("/api/v1/availability?{query}")).await;
        reply.assert_problem(status, code);
        if let Some(field) = field {
            assert_eq!(reply.error_fields(), vec![field.to_string()], "{query}");
        }
    }
    // 31 days inclusive is the maximum and is fine.
    let reply = app
        .get(&format!(
            "/api/v1/availability?service_id={service}&from={d}&to={}",
            d + Duration::days(30)
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn inactive_services_and_hidden_practitioners_have_no_public_slots() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let d = in_days(4);
    let query = format!("service_id={service}&from={d}&to={d}");
    assert!(!slots(&app, &query).await.is_empty());
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}"),
            json!({ "online_bookable": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        slots(&app, &query).await.is_empty(),
        "hidden practitioner still listed"
    );
    let reply = app
        .delete_as(&admin, &format!("/api/v1/staff/services/{service}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.get(&format!("/api/v1/availability?{query}"))
        .await
        .assert_problem(404, "not_found");
}
