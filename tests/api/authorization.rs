//! The authorization matrix: every staff route × admin, reception, a practitioner acting on
//! another practitioner's objects, and no token. A practitioner must never read or change
//! another practitioner's bookings, time off or patients.

use reqwest::Method;
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{TestApp, spawn_app};

/// Expected statuses for (admin, reception, other practitioner, no token).
type Expect = [u16; 4];

struct Route {
    method: Method,
    path: String,
    /// A fresh body for each caller (creates must not collide).
    body: Box<dyn Fn(usize) -> Option<Value>>,
    expect: Expect,
}

fn route(method: Method, path: String, expect: Expect) -> Route {
    Route {
        method,
        path,
        body: Box::new(|_| None),
        expect,
    }
}

fn with_body(
    method: Method,
    path: String,
    body: impl Fn(usize) -> Value + 'static,
    expect: Expect,
) -> Route {
    Route {
        method,
        path,
        body: Box::new(move |i| Some(body(i))),
        expect,
    }
}

struct World {
    admin: String,
    reception: String,
    /// A practitioner account for `mine`; every object below belongs to `theirs`.
    practitioner: String,
    theirs: String,
    service: String,
    booking: String,
    patient: String,
    enquiry: String,
    user: String,
}

async fn world(app: &TestApp) -> World {
    let (admin, mine, service) = clinic_with_one_practitioner(app).await;
    let theirs = app.create_practitioner(&admin, "Their Practitioner").await;
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "practitioner_ids": [mine, theirs] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reception = app.staff_token(&admin, "reception", None).await;
    let practitioner = app.staff_token(&admin, "practitioner", Some(&mine)).await;
    let booking = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": theirs,
                    "start": format!("{}T19:00:00+00:00", in_days(3)),
                    "patient": { "name": "Their Patient", "email": "their.patient@example.com" } }),
        )
        .await;
    assert_eq!(booking.status, 201, "{}", booking.body);
    let enquiry = app
        .post(
            "/api/v1/enquiries",
            json!({ "name": "Sam", "email": "sam@example.com", "topic": "general",
                    "message": "Where do I park?", "preferred_contact": "email",
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(enquiry.status, 202, "{}", enquiry.body);
    let inbox = app.get_as(&admin, "/api/v1/staff/enquiries").await;
    let users = app.get_as(&admin, "/api/v1/staff/users").await;
    let user = users.body["items"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["role"] == "reception"))
        .and_then(|u| u["id"].as_str())
        .expect("reception user")
        .to_string();
    World {
        admin,
        reception,
        practitioner,
        theirs,
        service,
        booking: booking.body["booking"]["id"]
            .as_str()
            .expect("id")
            .to_string(),
        patient: String::new(),
        enquiry: inbox.body["items"][0]["id"]
            .as_str()
            .expect("enquiry")
            .to_string(),
        user,
    }
}

#[tokio::test]
async fn every_staff_route_answers_each_role_as_designed() {
    let app = spawn_app().await;
    let mut w = world(&app).await;
    let patients = app.get_as(&w.admin, "/api/v1/staff/patients?q=Their").await;
    if let Some(id) = patients.body["items"][0]["id"].as_str() {
        w.patient = id.to_string();
    }
    assert!(
        !w.patient.is_empty(),
        "patient of the booking: {}",
        patients.body
    );
    let (svc, theirs, booking, patient, enquiry, user) = (
        w.service.clone(),
        w.theirs.clone(),
        w.booking.clone(),
        w.patient.clone(),
        w.enquiry.clone(),
        w.user.clone(),
    );
    let (webhook, doomed_webhook, delivery) = webhooks(&app, &w.admin).await;
    let entry = waitlist_entry(&app, &svc, &theirs).await;
    let c = classes(&app, &w.admin, &theirs).await;
    let day = in_days(3);
    let start_of = |i: usize| format!("{}T0{}:00:00+00:00", in_days(10 + i as i64), i % 3 + 6);
    let routes = vec![
        route(Method::GET, "/api/v1/auth/me".into(), [200, 200, 200, 401]),
        route(
            Method::GET,
            "/api/v1/staff/services".into(),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/services".into(),
            |i| json!({ "name": format!("Matrix service {i}"), "category": "other", "duration_minutes": 30, "price_pence": 0 }),
            [201, 403, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/services/{svc}"),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/services/{svc}"),
            |_| json!({ "price_pence": 7000 }),
            [200, 403, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/practitioners".into(),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/practitioners".into(),
            |i| json!({ "name": format!("Matrix Person {i}"), "discipline": "other" }),
            [201, 403, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/practitioners/{theirs}"),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/practitioners/{theirs}"),
            |_| json!({ "title": "Senior" }),
            [200, 403, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/practitioners/{theirs}/working-hours"),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::PUT,
            format!("/api/v1/staff/practitioners/{theirs}/working-hours"),
            |_| json!({ "intervals": [{ "weekday": "monday", "start": "09:00", "end": "12:00" }] }),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/practitioners/{theirs}/time-off"),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/practitioners/{theirs}/time-off"),
            move |i| json!({ "starts_at": start_of(i), "ends_at": format!("{}T23:00:00+00:00", in_days(10 + i as i64)) }),
            [201, 201, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/practitioners/{theirs}/feed"),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/closures".into(),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/closures".into(),
            |i| json!({ "starts_at": format!("{}T00:00:00Z", in_days(60 + i as i64)), "ends_at": format!("{}T23:00:00Z", in_days(60 + i as i64)) }),
            [201, 201, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/calendar?from={day}&to={day}&practitioner_id={theirs}"),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/bookings".into(),
            [200, 200, 200, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/bookings?practitioner_id={theirs}"),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/bookings/{booking}"),
            [200, 200, 404, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/bookings/{booking}/attendance"),
            |_| json!({ "status": "arrived" }),
            [200, 200, 404, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/bookings/{booking}/reschedule"),
            |i| json!({ "start": format!("{}T18:{}0:00+00:00", in_days(20), i) }),
            [422, 422, 404, 401],
        ),
        // The booking is "arrived" by now: history, not cancellable (but still not visible to
        // the other practitioner at all).
        with_body(
            Method::POST,
            format!("/api/v1/staff/bookings/{booking}/cancel"),
            |_| json!({ "reason": "other" }),
            [422, 422, 404, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/bookings/{booking}/cancel"),
            |_| json!({ "reason": "other", "scope": "all" }),
            [422, 422, 404, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/series/preview".into(),
            {
                let (svc, theirs) = (svc.clone(), theirs.clone());
                move |_| {
                    json!({ "service_id": svc, "practitioner_id": theirs,
                    "first_start": format!("{}T20:00:00+00:00", in_days(40)), "count": 3,
                    "patient": { "name": "Course Patient" } })
                }
            },
            [200, 200, 403, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/series".into(),
            {
                let (svc, theirs) = (svc.clone(), theirs.clone());
                move |i| {
                    json!({ "service_id": svc, "practitioner_id": theirs,
                    "first_start": format!("{}T20:00:00+00:00", in_days(60 + i as i64)),
                    "count": 1, "patient": { "name": "Course Patient" } })
                }
            },
            [201, 201, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/patients".into(),
            [200, 200, 200, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/patients/{patient}"),
            [200, 200, 404, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/patients/{patient}"),
            |i| json!({ "phone": format!("07700 900{:03}", i % 1000) }),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/patients/{patient}/export"),
            [200, 403, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/enquiries".into(),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/enquiries/{enquiry}"),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/enquiries/{enquiry}"),
            |_| json!({ "note": "Seen." }),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/outbox".into(),
            [200, 200, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/users".into(),
            [200, 403, 403, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/users/{user}"),
            |_| json!({ "name": "Front Desk" }),
            [200, 403, 403, 401],
        ),
        route(
            Method::GET,
            "/api/v1/staff/audit".into(),
            [200, 403, 403, 401],
        ),
        // Classes: admin and reception manage; practitioners see their own sessions only.
        route(
            Method::GET,
            format!("/api/v1/staff/classes?from={day}&to={day}"),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/classes".into(),
            {
                let (svc, theirs) = (c.service.clone(), theirs.clone());
                move |i| {
                    json!({ "service_id": svc, "practitioner_id": theirs,
                            "starts_at": format!("{}T07:00:00Z", in_days(40 + i as i64)) })
                }
            },
            [201, 201, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/classes/{}", c.class),
            [200, 200, 404, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/classes/{}", c.class),
            |i| json!({ "capacity": 12 + i % 3 }),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/classes/{}/seats", c.class),
            |i| json!({ "patient": { "name": "Class Patient", "email": format!("class{i}@example.com") } }),
            [201, 201, 403, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/seats/{}/attendance", c.seat),
            |_| json!({ "status": "attended" }),
            [200, 200, 404, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/seats/{}/cancel", c.other_seat),
            |_| json!({ "reason": "phoned" }),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/class-series".into(),
            {
                let (svc, theirs) = (c.service.clone(), theirs.clone());
                move |i| {
                    json!({ "service_id": svc, "practitioner_id": theirs, "weekday": "sunday",
                            "start": format!("0{}:00", i % 3 + 6),
                            "valid_from": in_days(100), "valid_until": in_days(120) })
                }
            },
            [201, 201, 403, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/class-series/{}", c.series),
            |_| json!({ "valid_until": in_days(85) }),
            [200, 200, 403, 401],
        ),
        with_body(
            Method::POST,
            format!("/api/v1/staff/classes/{}/cancel", c.doomed),
            |_| json!({ "reason": "Instructor ill" }),
            [200, 200, 403, 401],
        ),
        // Webhooks: admin only.
        route(
            Method::GET,
            "/api/v1/staff/webhooks".into(),
            [200, 403, 403, 401],
        ),
        with_body(
            Method::POST,
            "/api/v1/staff/webhooks".into(),
            |i| json!({ "url": format!("http://127.0.0.1:9/matrix/{i}"), "events": ["booking.created"] }),
            [201, 403, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/webhooks/{webhook}"),
            [200, 403, 403, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/webhooks/{webhook}"),
            |_| json!({ "description": "Matrix" }),
            [200, 403, 403, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/webhooks/{webhook}/deliveries"),
            [200, 403, 403, 401],
        ),
        route(
            Method::POST,
            format!("/api/v1/staff/webhooks/{webhook}/rotate-secret"),
            [200, 403, 403, 401],
        ),
        route(
            Method::POST,
            format!("/api/v1/staff/webhook-deliveries/{delivery}/replay"),
            [200, 403, 403, 401],
        ),
        route(
            Method::DELETE,
            format!("/api/v1/staff/webhooks/{doomed_webhook}"),
            [204, 403, 403, 401],
        ),
        // The waitlist: practitioners read the entries for their own services and sessions
        // (an empty page here: the entry names the other practitioner).
        route(
            Method::GET,
            "/api/v1/staff/waitlist".into(),
            [200, 200, 200, 401],
        ),
        route(
            Method::GET,
            format!("/api/v1/staff/waitlist?service_id={svc}"),
            [200, 200, 200, 401],
        ),
        with_body(
            Method::PATCH,
            format!("/api/v1/staff/waitlist/{entry}"),
            |_| json!({ "urgent": true }),
            [200, 200, 403, 401],
        ),
    ];
    let callers = [
        Some(w.admin.as_str()),
        Some(w.reception.as_str()),
        Some(w.practitioner.as_str()),
        None,
    ];
    let mut failures = Vec::new();
    let mut counter = 0;
    for r in &routes {
        for (who, token) in callers.iter().enumerate() {
            counter += 1;
            let reply = app
                .send(r.method.clone(), &r.path, *token, (r.body)(counter))
                .await;
            let expected = r.expect[who];
            if reply.status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {}: {} (expected {expected}) {}",
                    r.method,
                    r.path,
                    ["admin", "reception", "other practitioner", "anonymous"][who],
                    reply.status.as_u16(),
                    reply.body
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A waitlist entry for `service` with the practitioner `theirs` only; returns its id.
async fn waitlist_entry(app: &TestApp, service: &str, theirs: &str) -> String {
    let reply = app
        .post(
            "/api/v1/waitlist",
            json!({ "service_id": service, "practitioner_id": theirs,
                    "from": in_days(5).to_string(), "to": in_days(6).to_string(),
                    "patient": { "name": "Wait Ing", "email": "waiting@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["entry"]["id"].as_str().expect("id").to_string()
}

/// The class objects of the matrix, all taught by `theirs`.
struct Classes {
    service: String,
    /// A session with a seat to mark attended and another to cancel.
    class: String,
    seat: String,
    other_seat: String,
    /// A session to cancel.
    doomed: String,
    series: String,
}

async fn classes(app: &TestApp, admin: &str, theirs: &str) -> Classes {
    let service = crate::classes::class_service(app, admin, theirs, 10).await;
    let class = crate::classes::class_at(app, admin, &service, theirs, 30, None).await;
    let doomed = crate::classes::class_at(app, admin, &service, theirs, 31, None).await;
    let mut seats = Vec::new();
    for email in ["first.seat@example.com", "second.seat@example.com"] {
        let reply = crate::classes::book_seat(app, &class, email).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        seats.push(reply.body["seat"]["id"].as_str().expect("seat").to_string());
    }
    let series = app
        .post_as(
            admin,
            "/api/v1/staff/class-series",
            json!({ "service_id": service, "practitioner_id": theirs, "weekday": "saturday",
                    "start": "07:30", "valid_from": in_days(70), "valid_until": in_days(100) }),
        )
        .await;
    assert_eq!(series.status, 201, "{}", series.body);
    Classes {
        service,
        class,
        seat: seats.remove(0),
        other_seat: seats.remove(0),
        doomed,
        series: series.body["series_id"]
            .as_str()
            .expect("series")
            .to_string(),
    }
}

/// Two webhook endpoints (one to delete) and a delivery of the first: (endpoint, the one to
/// delete, delivery).
async fn webhooks(app: &TestApp, admin: &str) -> (String, String, String) {
    let mut ids = Vec::new();
    for path in ["crm", "doomed"] {
        let reply = app
            .post_as(
                admin,
                "/api/v1/staff/webhooks",
                json!({ "url": format!("http://127.0.0.1:9/{path}"), "events": ["enquiry.received"] }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.body["id"].as_str().expect("id").to_string());
    }
    let enquiry = app
        .post(
            "/api/v1/enquiries",
            json!({ "name": "Kim", "email": "kim@example.com", "topic": "general",
                    "message": "Is there a lift to the first floor?", "preferred_contact": "email",
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(enquiry.status, 202, "{}", enquiry.body);
    let log = app
        .get_as(
            admin,
            &format!("/api/v1/staff/webhooks/{}/deliveries", ids[0]),
        )
        .await;
    let delivery = log.body["items"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_string();
    (ids.remove(0), ids.remove(0), delivery)
}
