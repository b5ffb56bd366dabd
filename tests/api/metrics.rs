//! `/metrics`: what an operator sees of bookings, request latency, the writer and the pool.

use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{TestApp, spawn_app_with};

pub async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text")
}

/// The value of the series whose line starts with `series` followed by a space. The recorder
/// is the process's, shared by every test app here, so tests compare before and after.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn body(service: &str, start: &str, email: &str) -> Value {
    json!({
        "service_id": service,
        "start": start,
        "patient": { "name": "Jo Bloggs", "email": email },
        "consent": { "privacy": true, "marketing": false }
    })
}

#[tokio::test]
async fn metrics_count_booking_outcomes_and_time_requests_by_route() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let d = in_days(4);
    let free = starts(&slots(&app, &format!("service_id={service}&from={d}&to={d}")).await);
    assert!(free.len() >= 13, "{free:?}");
    let before = metrics_text(&app).await;

    // Three distinct slots booked at once, then the first one again twice (conflicts), and
    // one start that is not on the grid (refused).
    let mut requests = tokio::task::JoinSet::new();
    // A 45-minute service with 15 minutes after, on a 15-minute grid: every fourth start.
    for (i, start) in [&free[0], &free[4], &free[8]].into_iter().enumerate() {
        let (client, url) = (app.client.clone(), app.url("/api/v1/bookings"));
        let body = body(&service, start, &format!("m{i}@example.com"));
        requests.spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status())
        });
    }
    let statuses: Vec<u16> = requests
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("sent").as_u16())
        .collect();
    assert_eq!(statuses, vec![201; 3]);
    for i in 0..2 {
        let reply = app
            .post(
                "/api/v1/bookings",
                body(&service, &free[0], &format!("c{i}@example.com")),
            )
            .await;
        reply.assert_problem(409, "slot_unavailable");
    }
    let off_grid = free[4]
        .replace(":00:00", ":07:00")
        .replace(":15:00", ":07:00");
    let reply = app
        .post(
            "/api/v1/bookings",
            body(&service, &off_grid, "r@example.com"),
        )
        .await;
    assert_eq!(reply.status, 422, "{off_grid}");
    // A booking taken by staff is a booking too, and so is their attempt at a taken slot.
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner, "start": free[12],
                    "patient": { "name": "Desk Booking" } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner, "start": free[12],
                    "patient": { "name": "Desk Booking" } }),
        )
        .await;
    reply.assert_problem(409, "slot_unavailable");

    let after = metrics_text(&app).await;
    let delta = |series: &str| value(&after, series) - value(&before, series);
    assert!(
        delta("frontdesk_bookings_total{outcome=\"confirmed\"}") >= 4.0,
        "{after}"
    );
    assert!(
        delta("frontdesk_bookings_total{outcome=\"conflict\"}") >= 3.0,
        "{after}"
    );
    assert!(
        delta("frontdesk_bookings_total{outcome=\"refused\"}") >= 1.0,
        "{after}"
    );
    // Latency by route template and status class, as a histogram with buckets.
    assert!(
        delta(
            "frontdesk_http_request_duration_seconds_count{route=\"/api/v1/bookings\",class=\"2xx\"}"
        ) >= 3.0,
        "{after}"
    );
    assert!(
        after.contains("frontdesk_http_request_duration_seconds_bucket{route=\"/api/v1/bookings\",class=\"4xx\",le=\"0.005\"}"),
        "{after}"
    );
    assert!(after.contains("# TYPE frontdesk_http_request_duration_seconds histogram"));
    // The database pool and, on SQLite, the writer's batches.
    assert!(
        value(&after, "frontdesk_db_pool_max_connections") >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("frontdesk_db_pool_connections{state=\"in_use\"}"),
        "{after}"
    );
    if !app.is_postgres() {
        assert!(delta("frontdesk_writer_batch_size_count") >= 1.0, "{after}");
        assert!(after.contains("frontdesk_writer_queue_depth"), "{after}");
    }
}

#[tokio::test]
async fn metrics_never_label_a_request_with_its_raw_path() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let token = "a-secret-manage-token-that-must-not-show";
    app.get(&format!("/api/v1/manage/{token}")).await;
    app.get("/no/such/route/42").await;
    let text = metrics_text(&app).await;
    assert!(!text.contains(token), "{text}");
    assert!(!text.contains("/no/such/route/42"), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
}
