//! Online booking, manage links and the no-double-booking guarantee under concurrency.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{appointment, time_off};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{
    add_second_practitioner, clinic_with_one_practitioner, in_days, slots, starts,
};
use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

fn booking_body(service: &str, start: &str, email: &str) -> Value {
    json!({
        "service_id": service,
        "start": start,
        "patient": { "name": "Jo Bloggs", "email": email, "phone": "07700 900123" },
        "notes": "Left knee, since running a marathon",
        "consent": { "privacy": true, "marketing": false }
    })
}

async fn book(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/bookings", body).await
}

/// The free slot starts of a service on a day a few days ahead.
async fn free_starts(app: &TestApp, service: &str, day_offset: i64) -> Vec<String> {
    let d = in_days(day_offset);
    starts(&slots(app, &format!("service_id={service}&from={d}&to={d}")).await)
}

/// Asserts in SQL that no two active appointments of a practitioner overlap.
async fn assert_no_overlaps(app: &TestApp) {
    let rows = appointment::Entity::find()
        .filter(appointment::Column::Status.ne("cancelled"))
        .all(&app.db)
        .await
        .expect("read appointments");
    let mut by_practitioner: HashMap<_, Vec<&appointment::Model>> = HashMap::new();
    for row in &rows {
        by_practitioner
            .entry(row.practitioner_id)
            .or_default()
            .push(row);
    }
    for list in by_practitioner.values() {
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                assert!(
                    a.blocked_until <= b.blocked_from || b.blocked_until <= a.blocked_from,
                    "double booking: {} and {}",
                    a.reference,
                    b.reference
                );
            }
        }
    }
}

#[tokio::test]
async fn a_free_slot_books_once_and_then_disappears() {
    let app = spawn_app().await;
    let (_, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    let start = free[4].clone();
    let reply = book(&app, booking_body(&service, &start, "Jo@Example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/manage/{token}").as_str())
    );
    assert!(
        reply.body["manage_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/manage/{token}")))
    );
    let booking = &reply.body["booking"];
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["start"], start.as_str());
    assert_eq!(booking["practitioner"]["id"], practitioner.as_str());
    assert_eq!(booking["service"]["id"], service.as_str());
    assert_eq!(booking["patient"]["email"], "jo@example.com");
    let reference = booking["reference"].as_str().expect("reference");
    assert_eq!(reference.len(), 8);
    // The slot and its neighbours within the buffer are gone; the same start is now taken.
    let after = free_starts(&app, &service, 5).await;
    assert!(!after.contains(&start));
    book(&app, booking_body(&service, &start, "other@example.com"))
        .await
        .assert_problem(409, "slot_unavailable");
    // The stored token is a hash, not the token.
    let row = appointment::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("row");
    assert_ne!(row.manage_token_hash.as_deref(), Some(token.as_str()));
    assert_no_overlaps(&app).await;
}

#[tokio::test]
async fn requests_that_are_not_bookable_slots_get_outside_availability() {
    let app = spawn_app().await;
    let (admin, _, service) = clinic_with_one_practitioner(&app).await;
    let other = app.create_practitioner(&admin, "Not Offering").await;
    let free = free_starts(&app, &service, 5).await;
    let on_grid: DateTime<Utc> = free[0].parse().expect("start");
    let cases = vec![
        ((on_grid + Duration::minutes(7)).to_rfc3339(), None),
        ((on_grid - Duration::hours(3)).to_rfc3339(), None),
        ((Utc::now() - Duration::days(1)).to_rfc3339(), None),
        ((on_grid + Duration::days(200)).to_rfc3339(), None),
        (free[0].clone(), Some(other.clone())),
    ];
    for (start, practitioner) in cases {
        let mut body = booking_body(&service, &start, "jo@example.com");
        if let Some(p) = practitioner {
            body["practitioner_id"] = json!(p);
        }
        book(&app, body)
            .await
            .assert_problem(422, "outside_availability");
    }
    assert!(
        appointment::Entity::find()
            .all(&app.db)
            .await
            .expect("query")
            .is_empty()
    );
}

#[tokio::test]
async fn bad_booking_requests_are_rejected_and_change_nothing() {
    let app = spawn_app().await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let start = free_starts(&app, &service, 5).await[0].clone();
    let ok = booking_body(&service, &start, "jo@example.com");
    let with = |path: &[&str], value: Value| {
        let mut body = ok.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&["patient", "name"], json!("Eve\r\nBcc: all@example.com")),
            "patient.name",
        ),
        (with(&["patient", "name"], json!("")), "patient.name"),
        (
            with(&["patient", "email"], json!("not-an-email")),
            "patient.email",
        ),
        (
            with(&["patient", "phone"], json!("call me")),
            "patient.phone",
        ),
        (with(&["notes"], json!("ok\u{0007}bell")), "notes"),
        (with(&["notes"], json!("x".repeat(2001))), "notes"),
        (
            with(&["consent", "privacy"], json!(false)),
            "consent.privacy",
        ),
        (with(&["start"], json!("tomorrow at ten")), "start"),
        (with(&["start"], json!("2026-12-01T10:00:00")), "start"),
        (
            with(&["service_id"], json!(uuid::Uuid::new_v4())),
            "service_id",
        ),
        (
            with(&["practitioner_id"], json!(uuid::Uuid::new_v4())),
            "practitioner_id",
        ),
    ];
    for (body, field) in cases {
        let reply = book(&app, body).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.error_fields(),
            vec![field.to_string()],
            "{}",
            reply.body
        );
    }
    // Structurally broken bodies are 422 too, never 500.
    for body in [json!({}), json!({"service_id": 5}), json!([]), json!("x")] {
        book(&app, body)
            .await
            .assert_problem(422, "validation_failed");
    }
    assert!(
        appointment::Entity::find()
            .all(&app.db)
            .await
            .expect("query")
            .is_empty()
    );
}

#[tokio::test]
async fn a_patient_cannot_hold_more_than_the_limit_of_upcoming_bookings() {
    let app = spawn_app_with(|s| s.booking.max_active_per_patient = 2).await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    for start in [&free[0], &free[8]] {
        let reply = book(&app, booking_body(&service, start, "jo@example.com")).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let reply = book(&app, booking_body(&service, &free[20], "JO@example.com")).await;
    reply.assert_problem(422, "booking_limit_reached");
    let reply = book(
        &app,
        booking_body(&service, &free[20], "someone@example.com"),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = spawn_app().await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    let body = booking_body(&service, &free[0], "jo@example.com");
    let send = |body: Value| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url("/api/v1/bookings"))
                .header("Idempotency-Key", "retry-1")
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = resp.status();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (status, location, resp.json::<Value>().await.expect("json"))
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.0, 201, "{}", first.2);
    let again = send(body.clone()).await;
    assert_eq!(again.0, 201, "{}", again.2);
    assert_eq!(again.2, first.2);
    assert_eq!(again.1, first.1);
    let different = send(booking_body(&service, &free[10], "jo@example.com")).await;
    assert_eq!(different.0, 422);
    assert_eq!(different.2["code"], "idempotency_key_reused");
    assert_eq!(
        appointment::Entity::find()
            .all(&app.db)
            .await
            .expect("query")
            .len(),
        1
    );
}

#[tokio::test]
async fn without_a_practitioner_the_booking_goes_to_the_lightest_day() {
    let app = spawn_app().await;
    let (admin, first, service) = clinic_with_one_practitioner(&app).await;
    let second = add_second_practitioner(&app, &admin, &first, &service).await;
    let free = free_starts(&app, &service, 5).await;
    let (low, high) = if first < second {
        (first.clone(), second.clone())
    } else {
        (second.clone(), first.clone())
    };
    // A tie goes to the lowest id.
    let reply = book(&app, booking_body(&service, &free[0], "a@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["booking"]["practitioner"]["id"], low.as_str());
    // Now the other one has the lighter day.
    let later = free.iter().rev().nth(2).expect("a later slot").clone();
    let reply = book(&app, booking_body(&service, &later, "b@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["booking"]["practitioner"]["id"], high.as_str());
}

#[tokio::test]
async fn a_manage_link_shows_cancels_idempotently_and_frees_the_slot() {
    let app = spawn_app().await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let start = free_starts(&app, &service, 5).await[3].clone();
    let created = book(&app, booking_body(&service, &start, "jo@example.com")).await;
    let token = created.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    let id = created.body["booking"]["id"].clone();
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["booking"]["id"], id);
    assert_eq!(view.body["can_cancel"], true);
    assert_eq!(view.body["can_reschedule"], true);
    assert!(view.body["cancel_deadline"].is_string());
    let cancel = app
        .post(
            &format!("/api/v1/manage/{token}/cancel"),
            json!({ "reason": "Feeling better" }),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.body["booking"]["status"], "cancelled");
    let again = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["booking"]["status"], "cancelled");
    assert!(free_starts(&app, &service, 5).await.contains(&start));
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(view.body["can_cancel"], false);
    // Unknown and malformed tokens open nothing.
    app.get("/api/v1/manage/not-a-real-token")
        .await
        .assert_problem(404, "not_found");
    app.post("/api/v1/manage/not-a-real-token/cancel", json!({}))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_patient_cannot_cancel_inside_the_notice_period() {
    let app = spawn_app().await;
    let (admin, _, service) = clinic_with_one_practitioner(&app).await;
    // Five days ahead but a 30-day notice period: too late already.
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "policy": { "cancel_notice_hours": 720, "reschedule_notice_hours": 720 } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let free = free_starts(&app, &service, 5).await;
    let created = book(&app, booking_body(&service, &free[0], "jo@example.com")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["manage_token"].as_str().expect("token");
    let reply = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    let problem = reply.assert_problem(422, "too_late_to_change");
    let phone = app.settings.clinic.phone.clone();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&phone)),
        "{problem}"
    );
    app.post(
        &format!("/api/v1/manage/{token}/reschedule"),
        json!({ "start": free[10] }),
    )
    .await
    .assert_problem(422, "too_late_to_change");
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(view.body["booking"]["status"], "confirmed");
    assert_eq!(view.body["can_cancel"], false);
}

#[tokio::test]
async fn rescheduling_keeps_the_reference_and_frees_the_old_time_only_on_success() {
    let app = spawn_app().await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    let created = book(&app, booking_body(&service, &free[0], "jo@example.com")).await;
    let token = created.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    let reference = created.body["booking"]["reference"].clone();
    let blocker = book(&app, booking_body(&service, &free[12], "other@example.com")).await;
    assert_eq!(blocker.status, 201, "{}", blocker.body);
    // Onto a taken time: refused, nothing moves.
    app.post(
        &format!("/api/v1/manage/{token}/reschedule"),
        json!({ "start": free[12] }),
    )
    .await
    .assert_problem(409, "slot_unavailable");
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(view.body["booking"]["start"], free[0].as_str());
    // Onto a free time: moved, same id and reference, old time free again.
    let moved = app
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            json!({ "start": free[20] }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["booking"]["start"], free[20].as_str());
    assert_eq!(moved.body["booking"]["reference"], reference);
    assert_eq!(moved.body["booking"]["id"], created.body["booking"]["id"]);
    let now_free = free_starts(&app, &service, 5).await;
    assert!(now_free.contains(&free[0]));
    assert!(!now_free.contains(&free[20]));
    // Moving by a few minutes within its own buffer is fine: it does not clash with itself.
    let nudge = app
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            json!({ "start": free[21] }),
        )
        .await;
    assert_eq!(nudge.status, 200, "{}", nudge.body);
    assert_no_overlaps(&app).await;
}

#[tokio::test]
async fn fifty_concurrent_requests_for_one_slot_give_exactly_one_booking() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let start = free_starts(&app, &service, 5).await[6].clone();
    let url = app.url("/api/v1/bookings");
    let requests = (0..50)
        .map(|i| {
            (
                url.clone(),
                booking_body(&service, &start, &format!("p{i}@example.com")),
            )
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    assert_no_overlaps(&app).await;
}

#[tokio::test]
async fn overlapping_requests_for_services_of_different_lengths_never_double_book() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (admin, practitioner, long) = clinic_with_one_practitioner(&app).await;
    // A short service with a buffer before, on the same practitioner.
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/services",
            json!({ "name": "Quick check", "category": "physio", "duration_minutes": 20,
                    "buffer_before_minutes": 10, "price_pence": 3000,
                    "practitioner_ids": [practitioner] }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let short = reply.body["id"].as_str().expect("id").to_string();
    let long_free = free_starts(&app, &long, 5).await;
    let short_free = free_starts(&app, &short, 5).await;
    // Fire every start between 10:00 and 12:00 of both services at once.
    let window: Vec<(String, String)> = long_free
        .iter()
        .skip(4)
        .take(8)
        .map(|s| (long.clone(), s.clone()))
        .chain(
            short_free
                .iter()
                .skip(4)
                .take(8)
                .map(|s| (short.clone(), s.clone())),
        )
        .collect();
    let url = app.url("/api/v1/bookings");
    let requests = window
        .iter()
        .enumerate()
        .map(|(i, (svc, start))| {
            (
                url.clone(),
                booking_body(svc, start, &format!("q{i}@example.com")),
            )
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert!(statuses.contains(&409));
    assert_no_overlaps(&app).await;
}

/// The `i`th request's instance, when requests alternate between two.
fn alternately<'a>(i: usize, first: &'a str, second: &'a str) -> &'a str {
    if i.is_multiple_of(2) { first } else { second }
}

#[tokio::test]
async fn two_instances_on_one_database_never_double_book() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    if !app.is_postgres() {
        // Several instances share a database only on PostgreSQL; SQLite serves one instance.
        return;
    }
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let second_address = app.second_instance().await;
    let free = free_starts(&app, &service, 5).await;
    // Both instances at once, on overlapping starts 15 minutes apart.
    let requests = (0..40)
        .map(|i| {
            let base = alternately(i, &app.address, &second_address);
            (
                format!("{base}/api/v1/bookings"),
                booking_body(&service, &free[(i / 4) % 6], &format!("r{i}@example.com")),
            )
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 201).count() >= 1);
    assert_no_overlaps(&app).await;
}

#[tokio::test]
async fn refused_bookings_among_concurrent_ones_leave_every_other_booking_in_place() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    // On PostgreSQL, both instances at once: each writes the bookings waiting for it in
    // batches, where the refused ones sit between the accepted ones.
    let second_address = match app.is_postgres() {
        true => app.second_instance().await,
        false => app.address.clone(),
    };
    // Twelve slots that cannot overlap (the first and last start of six days), each asked
    // for three times.
    let mut wanted = Vec::new();
    for day in 3..9 {
        let free = free_starts(&app, &service, day).await;
        wanted.push(free[0].clone());
        wanted.push(free[free.len() - 1].clone());
    }
    let requests = (0..wanted.len() * 3)
        .map(|i| {
            let base = alternately(i, &app.address, &second_address);
            (
                format!("{base}/api/v1/bookings"),
                booking_body(
                    &service,
                    &wanted[i % wanted.len()],
                    &format!("m{i}@example.com"),
                ),
            )
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, refused), (12, 24), "{statuses:?}");
    let booked = appointment::Entity::find()
        .all(&app.db)
        .await
        .expect("appointments");
    let mut starts: Vec<String> = booked
        .iter()
        .map(|a| {
            a.starts_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .collect();
    starts.sort();
    let mut expected: Vec<String> = wanted
        .iter()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .expect("start")
                .with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .collect();
    expected.sort();
    assert_eq!(starts, expected);
    assert_no_overlaps(&app).await;
}

/// Time off for the whole of one day of `practitioner`, written straight into the database,
/// past this instance (as another instance or an operator's tool would write it).
async fn away_behind_the_instance(app: &TestApp, practitioner: &str, day_offset: i64) {
    let day = in_days(day_offset)
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    time_off::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        practitioner_id: Set(practitioner.parse().expect("uuid")),
        starts_at: Set(day - Duration::days(1)),
        ends_at: Set(day + Duration::days(2)),
        reason: Set("Conference".into()),
        created_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await
    .expect("insert time off");
}

#[tokio::test]
async fn time_off_written_past_the_instance_refuses_a_booking_its_copy_would_allow() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (_, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let away = free_starts(&app, &service, 3).await;
    let later = free_starts(&app, &service, 6).await;
    // This instance's copy of the schedule is read now, by the first booking.
    let reply = book(&app, booking_body(&service, &later[0], "first@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let redecided_before = redecided(&app).await;
    away_behind_the_instance(&app, &practitioner, 3).await;
    let reply = book(&app, booking_body(&service, &away[4], "second@example.com")).await;
    let problem = reply.assert_problem(422, "outside_availability");
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("away"),
        "{problem}"
    );
    if app.is_postgres() {
        // Decided on the copy first, which the database found out of date.
        assert!(redecided(&app).await > redecided_before);
    }
    let booked = appointment::Entity::find()
        .all(&app.db)
        .await
        .expect("appointments");
    assert_eq!(booked.len(), 1, "{booked:?}");
    // Another day is still bookable, on the copy read again.
    let reply = book(&app, booking_body(&service, &later[4], "third@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn time_off_given_on_another_instance_refuses_a_booking_on_this_one() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    if !app.is_postgres() {
        return;
    }
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let second_address = app.second_instance().await;
    let away = free_starts(&app, &service, 3).await;
    let later = free_starts(&app, &service, 6).await;
    let reply = book(&app, booking_body(&service, &later[0], "first@example.com")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let day = in_days(3);
    let reply = app
        .client
        .post(format!(
            "{second_address}/api/v1/staff/practitioners/{practitioner}/time-off"
        ))
        .bearer_auth(&admin)
        .json(&json!({ "starts_at": format!("{day}T00:00:00Z"),
                       "ends_at": format!("{day}T23:59:00Z") }))
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), 201);
    let redecided_before = redecided(&app).await;
    let reply = book(&app, booking_body(&service, &away[4], "second@example.com")).await;
    reply.assert_problem(422, "outside_availability");
    assert!(redecided(&app).await > redecided_before);
}

/// How many online bookings were decided again because their copy of the schedule was out
/// of date (the process's count: every test app here shares one recorder).
async fn redecided(app: &TestApp) -> f64 {
    let text = crate::metrics::metrics_text(app).await;
    crate::metrics::value(&text, "frontdesk_bookings_redecided_total")
}

#[tokio::test]
async fn booking_posts_are_rate_limited_per_client() {
    let app = spawn_app_with(|s| s.rate_limit.bookings_per_minute = 2).await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    for (i, start) in [&free[0], &free[8]].into_iter().enumerate() {
        let reply = book(
            &app,
            booking_body(&service, start, &format!("s{i}@example.com")),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let reply = book(&app, booking_body(&service, &free[16], "s9@example.com")).await;
    reply.assert_problem(429, "rate_limited");
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );
}

/// Sends every (url, body) POST at once from separate tasks; the statuses, in order.
async fn post_all(client: &reqwest::Client, requests: Vec<(String, Value)>) -> Vec<u16> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (url, body)) in requests.into_iter().enumerate() {
        let client = client.clone();
        tasks.spawn(async move {
            let status = client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("send")
                .status();
            (i, status.as_u16())
        });
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort();
    statuses.into_iter().map(|(_, s)| s).collect()
}

#[tokio::test]
async fn booking_changes_reach_the_patient_practitioner_and_staff_by_smtp() {
    use frontdesk::email::worker;
    let smtp = crate::smtp::SmtpServer::start().await;
    let app = crate::helpers::spawn_app_with_smtp(&smtp, |_| {}).await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}"),
            json!({ "email": "amara@clinic.test" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let free = free_starts(&app, &service, 5).await;
    let created = book(&app, booking_body(&service, &free[0], "jo@example.com")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    // Confirmation, practitioner notice and staff notice now; the reminder waits for its time.
    assert_eq!(worker::run_once(&app.state).await.expect("worker"), 3);
    let mut recipients: Vec<String> = smtp
        .messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            "amara@clinic.test",
            "frontdesk@example.com",
            "jo@example.com"
        ]
    );
    let to_patient = smtp
        .messages()
        .into_iter()
        .find(|m| m.rcpt_to == ["jo@example.com"])
        .expect("patient confirmation");
    let raw = to_patient.data.clone();
    assert!(raw.contains("METHOD:REQUEST"), "{raw}");
    assert!(
        raw.contains(&format!("/manage/{token}")),
        "manage link in the email"
    );
    // Cancelling through the link: a CANCEL to the patient, notices to the others, and the
    // reminder is voided rather than ever sent.
    smtp.clear();
    let cancel = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(worker::run_once(&app.state).await.expect("worker"), 3);
    let cancel_mail = smtp
        .messages()
        .into_iter()
        .find(|m| m.rcpt_to == ["jo@example.com"])
        .expect("patient cancellation");
    assert!(cancel_mail.data.contains("METHOD:CANCEL"));
    let pending = entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Status.eq("pending"))
        .all(&app.db)
        .await
        .expect("outbox");
    assert!(pending.is_empty(), "nothing left to send: {pending:?}");
}

#[tokio::test]
async fn concurrent_first_bookings_of_a_new_patient_share_one_record() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = false;
        s.booking.max_active_per_patient = 100;
    })
    .await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    let url = app.url("/api/v1/bookings");
    let mut requests = Vec::new();
    for day in 3..7 {
        let free = free_starts(&app, &service, day).await;
        for i in [0, 8, 16, 24] {
            requests.push((
                url.clone(),
                booking_body(&service, &free[i], "new.patient@example.com"),
            ));
        }
    }
    let statuses = post_all(&app.client, requests).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let patients = entity::patient::Entity::find()
        .all(&app.db)
        .await
        .expect("patients");
    assert_eq!(patients.len(), 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_book_once() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (admin, first, service) = clinic_with_one_practitioner(&app).await;
    // Two practitioners free at the time, so a second booking would have somewhere to go.
    add_second_practitioner(&app, &admin, &first, &service).await;
    let start = free_starts(&app, &service, 5).await[0].clone();
    let body = booking_body(&service, &start, "retry@example.com");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (client, url, body) = (
            app.client.clone(),
            app.url("/api/v1/bookings"),
            body.clone(),
        );
        tasks.spawn(async move {
            let resp = client
                .post(url)
                .header("Idempotency-Key", "same-retry")
                .json(&body)
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        });
    }
    let replies = tasks.join_all().await;
    assert!(replies.iter().all(|(s, _)| *s == 201), "{replies:?}");
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|(_, b)| b["booking"]["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    let rows = appointment::Entity::find()
        .all(&app.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn a_public_booking_cannot_read_or_rewrite_someone_elses_record() {
    let app = spawn_app().await;
    let (admin, _, service) = clinic_with_one_practitioner(&app).await;
    let free = free_starts(&app, &service, 5).await;
    let victim = book(&app, booking_body(&service, &free[0], "victim@example.org")).await;
    assert_eq!(victim.status, 201, "{}", victim.body);
    let mut body = booking_body(&service, &free[12], "victim@example.org");
    body["patient"] = json!({ "name": "Mallory Smith", "email": "victim@example.org" });
    let mallory = book(&app, body).await;
    assert_eq!(mallory.status, 201, "{}", mallory.body);
    assert_eq!(mallory.body["booking"]["patient"]["name"], "Mallory Smith");
    assert!(
        mallory.body["booking"]["patient"]["phone"].is_null(),
        "no stored phone leaks"
    );
    let token = mallory.body["manage_token"].as_str().expect("token");
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert!(view.body["booking"]["patient"]["phone"].is_null());
    // The clinic's record keeps the patient's own name and phone.
    let id = victim.body["booking"]["id"].as_str().expect("id");
    let staff_view = app
        .get_as(&admin, &format!("/api/v1/staff/bookings/{id}"))
        .await;
    assert_eq!(staff_view.body["booking"]["patient"]["name"], "Jo Bloggs");
    assert_eq!(
        staff_view.body["booking"]["patient"]["phone"],
        "07700 900123"
    );
}

#[tokio::test]
async fn concurrent_any_practitioner_bookings_use_every_free_practitioner() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (admin, first, service) = clinic_with_one_practitioner(&app).await;
    add_second_practitioner(&app, &admin, &first, &service).await;
    let free = free_starts(&app, &service, 5).await;
    let url = app.url("/api/v1/bookings");
    // Two patients at once for each of four times: both practitioners are free, so all book.
    let requests = [0, 8, 16, 24]
        .iter()
        .flat_map(|&i| {
            [0, 1].map(|n| {
                (
                    url.clone(),
                    booking_body(&service, &free[i], &format!("p{i}-{n}@example.com")),
                )
            })
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_no_overlaps(&app).await;
}
