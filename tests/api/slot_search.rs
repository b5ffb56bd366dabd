//! Slot search with the answer cache off: every answer is computed, from busy ranges that
//! SQLite instances keep in memory until their next write. Each change shows at once.

use serde_json::json;

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::spawn_app_with;

#[tokio::test]
async fn with_the_answer_cache_off_bookings_cancellations_and_time_off_show_at_once() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = false;
        s.availability.answer_cache_ms = 0;
    })
    .await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let d = in_days(3);
    let query = format!("service_id={service}&practitioner_id={practitioner}&from={d}&to={d}");
    let before = starts(&slots(&app, &query).await);
    // The same question twice in a row answers the same.
    assert_eq!(starts(&slots(&app, &query).await), before);
    let first = before.first().expect("a free slot").clone();

    let reply = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": first,
                    "patient": { "name": "Jo Bloggs", "email": "jo@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let booked = starts(&slots(&app, &query).await);
    assert!(!booked.contains(&first), "{booked:?}");

    let token = reply.body["manage_token"].as_str().expect("token");
    let reply = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(starts(&slots(&app, &query).await), before);

    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/time-off"),
            json!({ "starts_at": format!("{d}T00:00:00Z"), "ends_at": format!("{}T00:00:00Z", in_days(4)),
                    "reason": "Course" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(slots(&app, &query).await.is_empty());
}
