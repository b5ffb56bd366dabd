//! Group classes: the timetable, seats, the capacity guarantee and the instructor's time
//! under concurrency (one and two instances), and the manage link for seats.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use entity::{class_seat, class_session, outbox_message, practitioner_hold};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

/// A class service ("Mat Pilates", 60 minutes, 10 minutes' buffer after, `capacity`
/// places) offered by `practitioner`; returns its id.
pub async fn class_service(
    app: &TestApp,
    admin: &str,
    practitioner: &str,
    capacity: u32,
) -> String {
    let reply = app
        .post_as(
            admin,
            "/api/v1/staff/services",
            json!({ "name": format!("Mat Pilates {}", uuid::Uuid::new_v4().simple()),
                    "category": "pilates", "duration_minutes": 60,
                    "buffer_after_minutes": 10, "price_pence": 1500, "capacity": capacity,
                    "practitioner_ids": [practitioner] }),
        )
        .await;
    assert_eq!(reply.status, 201, "create class service: {}", reply.body);
    assert_eq!(reply.body["capacity"], capacity);
    reply.body["id"].as_str().expect("id").to_string()
}

/// Creates a session as `token`; returns the reply.
pub async fn create_class(
    app: &TestApp,
    token: &str,
    service: &str,
    practitioner: &str,
    start: &str,
    capacity: Option<u32>,
) -> Reply {
    let mut body = json!({ "service_id": service, "practitioner_id": practitioner,
                           "starts_at": start });
    if let Some(c) = capacity {
        body["capacity"] = json!(c);
    }
    app.post_as(token, "/api/v1/staff/classes", body).await
}

/// A session `days` ahead at 18:00 UTC (after the test practitioner's hours), its id.
pub async fn class_at(
    app: &TestApp,
    admin: &str,
    service: &str,
    practitioner: &str,
    days: i64,
    capacity: Option<u32>,
) -> String {
    let start = format!("{}T18:00:00Z", in_days(days));
    let reply = create_class(app, admin, service, practitioner, &start, capacity).await;
    assert_eq!(reply.status, 201, "create class: {}", reply.body);
    reply.body["id"].as_str().expect("id").to_string()
}

pub fn seat_body(email: &str) -> Value {
    json!({
        "patient": { "name": "Sam Seat", "email": email, "phone": "07700 900456" },
        "consent": { "privacy": true, "marketing": false },
        "notes": "Bad back"
    })
}

pub async fn book_seat(app: &TestApp, class: &str, email: &str) -> Reply {
    app.post(&format!("/api/v1/classes/{class}/seats"), seat_body(email))
        .await
}

/// The class as the public timetable shows it.
async fn listed(app: &TestApp, class: &str, days: i64) -> Value {
    let d = in_days(days);
    let reply = app.get(&format!("/api/v1/classes?from={d}&to={d}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == class)
        .cloned()
        .expect("listed")
}

/// Asserts in SQL that no session holds more active seats than its capacity, and that each
/// session's count is its active seats.
pub async fn assert_capacity_held(app: &TestApp) {
    let sessions = class_session::Entity::find()
        .all(&app.db)
        .await
        .expect("sessions");
    let seats = class_seat::Entity::find()
        .filter(class_seat::Column::Status.ne("cancelled"))
        .all(&app.db)
        .await
        .expect("seats");
    let mut active: HashMap<_, i32> = HashMap::new();
    for seat in &seats {
        *active.entry(seat.class_session_id).or_default() += 1;
    }
    for s in &sessions {
        let n = active.get(&s.id).copied().unwrap_or(0);
        assert!(
            n <= s.capacity,
            "session {} holds {n} of {}",
            s.id,
            s.capacity
        );
        assert_eq!(
            n, s.seats_taken,
            "session {} counts {}",
            s.id, s.seats_taken
        );
    }
}

/// Asserts in SQL that no two holds of a practitioner overlap (appointments and classes).
pub async fn assert_no_overlapping_holds(app: &TestApp) {
    let holds = practitioner_hold::Entity::find()
        .all(&app.db)
        .await
        .expect("holds");
    for (i, a) in holds.iter().enumerate() {
        for b in &holds[i + 1..] {
            assert!(
                a.practitioner_id != b.practitioner_id
                    || a.blocked_until <= b.blocked_from
                    || b.blocked_until <= a.blocked_from,
                "overlapping holds {} and {}",
                a.id,
                b.id
            );
        }
    }
}

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
async fn a_class_is_listed_with_places_left_and_a_seat_books_with_an_invitation() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 8).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, None).await;
    let item = listed(&app, &class, 5).await;
    assert_eq!(item["capacity"], 8);
    assert_eq!(item["seats_left"], 8);
    assert_eq!(item["status"], "scheduled");
    assert_eq!(item["service"]["id"], service.as_str());
    assert_eq!(item["practitioner"]["id"], instructor.as_str());
    let reply = book_seat(&app, &class, "Sam@Example.com").await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.body["manage_token"].as_str().expect("token");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/manage/{token}").as_str())
    );
    let seat = &reply.body["seat"];
    assert_eq!(seat["status"], "confirmed");
    assert_eq!(seat["class"]["id"], class.as_str());
    assert_eq!(seat["patient"]["email"], "sam@example.com");
    assert_eq!(seat["reference"].as_str().map(str::len), Some(8));
    let item = listed(&app, &class, 5).await;
    assert_eq!(item["seats_left"], 7);
    // The timetable never names anyone.
    let text = item.to_string();
    assert!(
        !text.contains("Sam") && !text.contains("example.com"),
        "{text}"
    );
    // The confirmation carries an invitation whose UID is the seat's.
    let seat_id = seat["id"].as_str().expect("seat id");
    let emails = outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq("seat_confirmed"))
        .all(&app.db)
        .await
        .expect("outbox");
    assert_eq!(emails.len(), 1);
    let ics = emails[0].ics.as_deref().expect("invitation");
    assert!(ics.contains("METHOD:REQUEST"), "{ics}");
    assert!(ics.contains(&format!("UID:{seat_id}@frontdesk")), "{ics}");
    assert!(
        emails[0].text_body.contains(token),
        "the manage link is in the email"
    );
    // The same patient again: 409 already_booked.
    book_seat(&app, &class, "sam@example.com")
        .await
        .assert_problem(409, "already_booked");
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn a_full_class_answers_class_full_and_a_cancelled_seat_frees_exactly_one_place() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, Some(2)).await;
    let first = book_seat(&app, &class, "a@example.com").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let second = book_seat(&app, &class, "b@example.com").await;
    assert_eq!(second.status, 201, "{}", second.body);
    book_seat(&app, &class, "c@example.com")
        .await
        .assert_problem(409, "class_full");
    // The manage link opens the seat (and not a booking).
    let token = first.body["manage_token"].as_str().expect("token");
    let view = app.get(&format!("/api/v1/manage/{token}")).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert!(view.body.get("booking").is_none(), "{}", view.body);
    assert_eq!(view.body["seat"]["id"], first.body["seat"]["id"]);
    assert_eq!(view.body["seat"]["patient"]["name"], "Sam S.");
    assert_eq!(view.body["can_cancel"], true);
    assert_eq!(view.body["can_reschedule"], false);
    // A seat cannot be moved.
    app.post(
        &format!("/api/v1/manage/{token}/reschedule"),
        json!({ "start": format!("{}T18:00:00Z", in_days(6)) }),
    )
    .await
    .assert_problem(422, "not_reschedulable");
    // Cancelling frees exactly that place; the other seat and the class are untouched.
    let cancelled = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(cancelled.body.get("booking").is_none());
    assert_eq!(cancelled.body["seat"]["status"], "cancelled");
    let again = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 200, "cancelling twice: {}", again.body);
    let item = listed(&app, &class, 5).await;
    assert_eq!(item["seats_left"], 1);
    assert_eq!(item["status"], "scheduled");
    let other = second.body["manage_token"].as_str().expect("token");
    let other = app.get(&format!("/api/v1/manage/{other}")).await;
    assert_eq!(other.body["seat"]["status"], "confirmed");
    let cancel_email = outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq("seat_cancelled"))
        .one(&app.db)
        .await
        .expect("outbox")
        .expect("seat_cancelled email");
    assert_eq!(cancel_email.ics_method.as_deref(), Some("CANCEL"));
    // The freed place books again.
    let again = book_seat(&app, &class, "c@example.com").await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn seats_in_cancelled_started_or_imminent_classes_are_outside_availability() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let soon = (Utc::now() + Duration::minutes(30)).to_rfc3339();
    let past = (Utc::now() - Duration::minutes(90)).to_rfc3339();
    for start in [soon, past] {
        let reply = create_class(&app, &admin, &service, &instructor, &start, None).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let class = reply.body["id"].as_str().expect("id");
        book_seat(&app, class, "late@example.com")
            .await
            .assert_problem(422, "outside_availability");
    }
    let class = class_at(&app, &admin, &service, &instructor, 5, None).await;
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}/cancel"),
            json!({ "reason": "Instructor ill" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    book_seat(&app, &class, "late@example.com")
        .await
        .assert_problem(422, "outside_availability");
    let item = listed(&app, &class, 5).await;
    assert_eq!(item["status"], "cancelled");
    // Unknown class: 404.
    book_seat(&app, &uuid::Uuid::new_v4().to_string(), "x@example.com")
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_class_service_has_no_slots_and_refuses_appointments() {
    let app = spawn_app().await;
    let (admin, instructor, _) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let d = in_days(5);
    assert!(
        slots(&app, &format!("service_id={service}&from={d}&to={d}"))
            .await
            .is_empty()
    );
    let start = format!("{d}T10:00:00Z");
    app.post(
        "/api/v1/bookings",
        json!({ "service_id": service, "start": start,
                "patient": { "name": "Jo Bloggs", "email": "jo@example.com" },
                "consent": { "privacy": true } }),
    )
    .await
    .assert_problem(422, "outside_availability");
    let public = app.get(&format!("/api/v1/services/{service}")).await;
    assert_eq!(public.body["capacity"], 10);
}

#[tokio::test]
async fn a_class_blocks_its_instructors_one_to_one_time_and_the_other_way_round() {
    let app = spawn_app().await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let d = in_days(5);
    let query = format!("service_id={one_to_one}&from={d}&to={d}");
    let free = starts(&slots(&app, &query).await);
    // A class at the fifth free start: that start is no longer listed or bookable.
    let class_start = free[4].clone();
    let reply = create_class(&app, &admin, &service, &instructor, &class_start, None).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let after = starts(&slots(&app, &query).await);
    assert!(!after.contains(&class_start), "{after:?}");
    let booking = |start: &str| {
        json!({ "service_id": one_to_one, "start": start,
                "patient": { "name": "Jo Bloggs", "email": "jo@example.com" },
                "consent": { "privacy": true } })
    };
    app.post("/api/v1/bookings", booking(&class_start))
        .await
        .assert_problem(409, "slot_unavailable");
    // Staff cannot book over it either.
    app.post_as(
        &admin,
        "/api/v1/staff/bookings",
        json!({ "service_id": one_to_one, "practitioner_id": instructor, "start": class_start,
                "patient": { "name": "Jo Bloggs" } }),
    )
    .await
    .assert_problem(409, "slot_unavailable");
    // An appointment refuses a class over it.
    let booked = app.post("/api/v1/bookings", booking(&free[12])).await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    create_class(&app, &admin, &service, &instructor, &free[12], None)
        .await
        .assert_problem(409, "slot_unavailable");
    assert_no_overlapping_holds(&app).await;
}

#[tokio::test]
async fn thirty_clients_racing_for_the_last_ten_places_get_exactly_ten() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 12).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, Some(12)).await;
    for i in 0..2 {
        let r = book_seat(&app, &class, &format!("early{i}@example.com")).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let url = app.url(&format!("/api/v1/classes/{class}/seats"));
    let requests = (0..30)
        .map(|i| (url.clone(), seat_body(&format!("race{i}@example.com"))))
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(listed(&app, &class, 5).await["seats_left"], 0);
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn two_instances_racing_for_places_never_overfill_a_class() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    if !app.is_postgres() {
        // Several instances share a database only on PostgreSQL; SQLite serves one instance.
        return;
    }
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 12).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, Some(10)).await;
    let second_address = app.second_instance().await;
    let requests = (0..30)
        .map(|i| {
            let base = if i % 2 == 0 {
                &app.address
            } else {
                &second_address
            };
            (
                format!("{base}/api/v1/classes/{class}/seats"),
                seat_body(&format!("two{i}@example.com")),
            )
        })
        .collect();
    let statuses = post_all(&app.client, requests).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        20,
        "{statuses:?}"
    );
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn a_one_to_one_racing_a_class_for_the_instructors_time_never_both_win() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let (from, to) = (in_days(5), in_days(6));
    let free = starts(
        &slots(
            &app,
            &format!("service_id={one_to_one}&from={from}&to={to}"),
        )
        .await,
    );
    // Starts two hours apart, so that rounds never touch each other's time.
    let mut rounds: Vec<String> = Vec::new();
    for start in free {
        let at: chrono::DateTime<Utc> = start.parse().expect("start");
        if rounds.last().is_none_or(|last| {
            at - last.parse::<chrono::DateTime<Utc>>().expect("start") >= Duration::hours(2)
        }) {
            rounds.push(start);
        }
    }
    assert!(rounds.len() >= 6, "{rounds:?}");
    // Each round a booking and a class for the same start at once.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, start) in rounds.iter().enumerate() {
        let client = app.client.clone();
        let booking_url = app.url("/api/v1/bookings");
        let class_url = app.url("/api/v1/staff/classes");
        let admin = admin.clone();
        let body = json!({ "service_id": one_to_one, "start": start,
                           "patient": { "name": "Jo Bloggs", "email": format!("r{i}@example.com") },
                           "consent": { "privacy": true } });
        let class = json!({ "service_id": service, "practitioner_id": instructor,
                            "starts_at": start });
        tasks.spawn(async move {
            let booking = client.post(booking_url).json(&body).send();
            let class = client
                .post(class_url)
                .bearer_auth(admin)
                .json(&class)
                .send();
            let (b, c) = tokio::join!(booking, class);
            (
                b.expect("booking sent").status().as_u16(),
                c.expect("class sent").status().as_u16(),
            )
        });
    }
    for (booking, class) in tasks.join_all().await {
        assert!(
            matches!((booking, class), (201, 409) | (409, 201)),
            "booking {booking}, class {class}"
        );
    }
    assert_no_overlapping_holds(&app).await;
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_seat_and_a_different_body_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, None).await;
    let url = app.url(&format!("/api/v1/classes/{class}/seats"));
    let send = |body: Value| {
        app.client
            .post(url.clone())
            .header("Idempotency-Key", "seat-key-1")
            .json(&body)
            .send()
    };
    let first =
        Reply::from_response(send(seat_body("idem@example.com")).await.expect("sent")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let replay =
        Reply::from_response(send(seat_body("idem@example.com")).await.expect("sent")).await;
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert_eq!(replay.body["seat"]["id"], first.body["seat"]["id"]);
    Reply::from_response(send(seat_body("other@example.com")).await.expect("sent"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(listed(&app, &class, 5).await["seats_left"], 9);
}

#[tokio::test]
async fn seats_count_toward_the_booking_limit_with_appointments() {
    let app = spawn_app_with(|s| s.booking.max_active_per_patient = 2).await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let first = class_at(&app, &admin, &service, &instructor, 5, None).await;
    let second = class_at(&app, &admin, &service, &instructor, 6, None).await;
    let r = book_seat(&app, &first, "limit@example.com").await;
    assert_eq!(r.status, 201, "{}", r.body);
    let d = in_days(7);
    let free = starts(&slots(&app, &format!("service_id={one_to_one}&from={d}&to={d}")).await);
    let booked = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": one_to_one, "start": free[0],
                    "patient": { "name": "Sam Seat", "email": "limit@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    // One seat and one appointment: the limit of two is reached, whichever comes next.
    book_seat(&app, &second, "limit@example.com")
        .await
        .assert_problem(422, "booking_limit_reached");
    app.post(
        "/api/v1/bookings",
        json!({ "service_id": one_to_one, "start": free[8],
                "patient": { "name": "Sam Seat", "email": "limit@example.com" },
                "consent": { "privacy": true } }),
    )
    .await
    .assert_problem(422, "booking_limit_reached");
}

#[tokio::test]
async fn seat_posts_are_rate_limited_per_client_like_bookings() {
    let app = spawn_app_with(|s| s.rate_limit.bookings_per_minute = 2).await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, None).await;
    for i in 0..2 {
        let r = book_seat(&app, &class, &format!("rl{i}@example.com")).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let limited = book_seat(&app, &class, "rl9@example.com").await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test]
async fn the_database_itself_refuses_an_overfull_class_and_an_instructor_in_two_places() {
    use sea_orm::{ActiveModelTrait, IntoActiveModel, sea_query::Expr};
    let app = spawn_app().await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, Some(2)).await;
    let class_id = uuid::Uuid::parse_str(&class).expect("uuid");
    // More seats than places, written straight to the table: the CHECK refuses it.
    let overfull = class_session::Entity::update_many()
        .col_expr(class_session::Column::SeatsTaken, Expr::value(3))
        .filter(class_session::Column::Id.eq(class_id))
        .exec(&app.db)
        .await;
    assert!(overfull.is_err(), "{overfull:?}");
    // An appointment over the class, inserted without the application's checks: the holds
    // refuse it (a trigger on SQLite, the exclusion constraint on PostgreSQL).
    let d = in_days(7);
    let free = starts(&slots(&app, &format!("service_id={one_to_one}&from={d}&to={d}")).await);
    let booked = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": one_to_one, "start": free[0],
                    "patient": { "name": "Jo Bloggs", "email": "jo@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let session = class_session::Entity::find_by_id(class_id)
        .one(&app.db)
        .await
        .expect("read")
        .expect("session");
    let appointment = entity::appointment::Entity::find()
        .one(&app.db)
        .await
        .expect("read")
        .expect("appointment");
    let mut copy = appointment.clone();
    copy.id = uuid::Uuid::new_v4();
    copy.reference = "ZZZZ9999".into();
    copy.manage_token_hash = None;
    copy.starts_at = session.starts_at;
    copy.ends_at = session.ends_at;
    copy.blocked_from = session.blocked_from;
    copy.blocked_until = session.blocked_until;
    let retry = copy.clone();
    let inserted = entity::appointment::Entity::insert(copy.into_active_model())
        .exec_without_returning(&app.db)
        .await;
    assert!(inserted.is_err(), "an appointment over a class was stored");
    // Moving the class onto the appointment, straight in the table: refused as well.
    let mut moved = session.clone().into_active_model();
    moved.starts_at = sea_orm::Set(appointment.starts_at);
    moved.ends_at = sea_orm::Set(appointment.ends_at);
    moved.blocked_from = sea_orm::Set(appointment.blocked_from);
    moved.blocked_until = sea_orm::Set(appointment.blocked_until);
    assert!(
        moved.update(&app.db).await.is_err(),
        "a class moved onto an appointment"
    );
    // Cancelling the class frees its hold (the trigger follows the status): the same
    // appointment now goes in.
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}/cancel"),
            json!({ "reason": "Moved to the hall" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    entity::appointment::Entity::insert(retry.into_active_model())
        .exec_without_returning(&app.db)
        .await
        .expect("the time is free once the class is cancelled");
    assert_no_overlapping_holds(&app).await;
    assert_capacity_held(&app).await;
}
