//! Practitioners' iCalendar feeds through HTTP: getting and rotating the secret URL, what the
//! feed holds, and who may see the link.

use chrono::{DateTime, Utc};
use entity::outbox_message;
use icalendar::{CalendarComponent, CalendarDateTime, Component, DatePerhapsTime, EventStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{Reply, TestApp, spawn_app};

const PATIENT_EMAIL: &str = "jo.bloggs@example.com";
const PATIENT_PHONE: &str = "07700 900123";

/// Books the `n`th free slot `days` ahead for Jo Bloggs; returns (booking, manage token).
async fn book(app: &TestApp, service: &str, days: i64, n: usize) -> (Value, String) {
    let d = in_days(days);
    let free = starts(&slots(app, &format!("service_id={service}&from={d}&to={d}")).await);
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({
                "service_id": service,
                "start": free[n],
                "patient": { "name": "Jo Bloggs", "email": PATIENT_EMAIL, "phone": PATIENT_PHONE },
                "consent": { "privacy": true, "marketing": false }
            }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    (reply.body["booking"].clone(), token)
}

fn feed_path(practitioner: &str) -> String {
    format!("/api/v1/staff/practitioners/{practitioner}/feed")
}

/// POSTs for a new feed URL; returns it.
async fn rotate(app: &TestApp, token: &str, practitioner: &str) -> String {
    let reply = app
        .post_as(token, &feed_path(practitioner), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let url = reply.body["url"].as_str().expect("url").to_string();
    let base = app.settings.server.public_url.trim_end_matches('/');
    assert!(
        url.starts_with(&format!("{base}/api/v1/feeds/")) && url.ends_with(".ics"),
        "{url}"
    );
    url
}

/// Fetches a feed URL from the running app (its host is `server.public_url`).
async fn fetch(app: &TestApp, url: &str) -> (reqwest::StatusCode, Option<String>, String) {
    let path = &url[url.find("/api/v1/feeds/").expect("feed path")..];
    let resp = app
        .client
        .get(app.url(path))
        .send()
        .await
        .expect("feed request");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, content_type, resp.text().await.expect("feed body"))
}

async fn fetch_calendar(app: &TestApp, url: &str) -> (String, icalendar::Calendar) {
    let (status, content_type, body) = fetch(app, url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        content_type.as_deref(),
        Some("text/calendar; charset=utf-8")
    );
    let calendar: icalendar::Calendar = body.parse().expect("the feed parses");
    (body, calendar)
}

fn events(calendar: &icalendar::Calendar) -> Vec<&icalendar::Event> {
    calendar
        .components
        .iter()
        .filter_map(CalendarComponent::as_event)
        .collect()
}

fn event_with_uid<'a>(calendar: &'a icalendar::Calendar, uid: &str) -> &'a icalendar::Event {
    events(calendar)
        .into_iter()
        .find(|e| e.get_uid() == Some(uid))
        .unwrap_or_else(|| panic!("no event {uid}"))
}

fn utc(value: &Value) -> DatePerhapsTime {
    let t: DateTime<Utc> = value.as_str().expect("instant").parse().expect("RFC 3339");
    DatePerhapsTime::DateTime(CalendarDateTime::Utc(t))
}

/// The UID of the invitation emailed for a booking.
async fn invite_uid(app: &TestApp, booking_id: &str) -> String {
    let id: uuid::Uuid = booking_id.parse().expect("uuid");
    let row = outbox_message::Entity::find()
        .filter(outbox_message::Column::AppointmentId.eq(id))
        .filter(outbox_message::Column::Ics.is_not_null())
        .one(&app.db)
        .await
        .expect("outbox query")
        .expect("an email with an invitation");
    let invite: icalendar::Calendar = row.ics.expect("ics").parse().expect("invite parses");
    events(&invite)[0].get_uid().expect("uid").to_string()
}

#[tokio::test]
async fn a_feed_lists_the_practitioners_appointments_and_time_off_without_contact_details() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let (booking, _) = book(&app, &service, 5, 2).await;
    let start: DateTime<Utc> = booking["start"]
        .as_str()
        .expect("start")
        .parse()
        .expect("t");
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/time-off"),
            json!({ "starts_at": (start + chrono::Duration::days(2)).to_rfc3339(),
                    "ends_at": (start + chrono::Duration::days(3)).to_rfc3339(),
                    "reason": "Conference" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let url = rotate(&app, &admin, &practitioner).await;

    let (body, calendar) = fetch_calendar(&app, &url).await;
    assert!(body.ends_with("END:VCALENDAR\r\n"));
    assert!(!body.replace("\r\n", "").contains('\n'), "bare LF");
    for line in body.split("\r\n") {
        assert!(line.len() <= 75, "{line:?}");
    }
    assert_eq!(calendar.property_value("METHOD"), Some("PUBLISH"));
    assert!(calendar.property_value("PRODID").is_some());
    assert!(
        calendar
            .property_value("X-WR-CALNAME")
            .is_some_and(|n| n.contains("Amara Okafor")),
        "{body}"
    );

    let uid = invite_uid(&app, booking["id"].as_str().expect("id")).await;
    assert_eq!(
        uid,
        format!("{}@frontdesk", booking["id"].as_str().expect("id"))
    );
    let event = event_with_uid(&calendar, &uid);
    assert_eq!(event.get_start(), Some(utc(&booking["start"])));
    assert_eq!(event.get_end(), Some(utc(&booking["end"])));
    assert_eq!(event.get_summary(), Some("Initial assessment — Jo"));
    assert_eq!(event.get_status(), Some(EventStatus::Confirmed));
    assert_eq!(event.get_sequence(), Some(0));
    assert!(event.get_timestamp().is_some(), "DTSTAMP");

    let time_off = events(&calendar)
        .into_iter()
        .find(|e| e.get_summary() == Some("Time off: Conference"))
        .expect("time off event");
    assert_eq!(time_off.property_value("TRANSP"), Some("OPAQUE"));

    assert!(!body.to_lowercase().contains(PATIENT_EMAIL), "{body}");
    assert!(!body.contains(PATIENT_PHONE), "{body}");
    assert!(!body.contains("Bloggs"), "{body}");
}

#[tokio::test]
async fn a_cancelled_booking_stays_in_the_feed_as_cancelled_with_a_higher_sequence() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let (booking, manage_token) = book(&app, &service, 6, 0).await;
    let url = rotate(&app, &admin, &practitioner).await;
    let uid = format!("{}@frontdesk", booking["id"].as_str().expect("id"));
    let (_, before) = fetch_calendar(&app, &url).await;
    let before = event_with_uid(&before, &uid);
    assert_eq!(before.get_status(), Some(EventStatus::Confirmed));
    let before_sequence = before.get_sequence().expect("sequence");

    let reply = app
        .post(&format!("/api/v1/manage/{manage_token}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (_, after) = fetch_calendar(&app, &url).await;
    let event = event_with_uid(&after, &uid);
    assert_eq!(event.get_status(), Some(EventStatus::Cancelled));
    assert_eq!(event.property_value("TRANSP"), Some("TRANSPARENT"));
    assert!(event.get_sequence().expect("sequence") > before_sequence);
    assert_eq!(event.get_start(), Some(utc(&booking["start"])));
}

#[tokio::test]
async fn rotating_the_token_ends_the_old_url_and_the_link_is_shown_only_once() {
    let app = spawn_app().await;
    let (admin, practitioner, _) = clinic_with_one_practitioner(&app).await;
    // The first GET makes the feed and shows its URL; later ones cannot (only a hash is kept).
    let first = app.get_as(&admin, &feed_path(&practitioner)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let first_url = first.body["url"].as_str().expect("url").to_string();
    let again = app.get_as(&admin, &feed_path(&practitioner)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, json!({ "url": null }));
    fetch_calendar(&app, &first_url).await;

    let second_url = rotate(&app, &admin, &practitioner).await;
    assert_ne!(first_url, second_url);
    let (status, content_type, body) = fetch(&app, &first_url).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let problem: Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(problem["code"], "not_found");
    fetch_calendar(&app, &second_url).await;
    let after = app.get_as(&admin, &feed_path(&practitioner)).await;
    assert_eq!(after.body, json!({ "url": null }));

    // Deactivating the practitioner ends their feed too.
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}"),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(fetch(&app, &second_url).await.0, 404);
}

#[tokio::test]
async fn unknown_or_malformed_feed_tokens_are_404_problems() {
    let app = spawn_app().await;
    let (admin, practitioner, _) = clinic_with_one_practitioner(&app).await;
    let url = rotate(&app, &admin, &practitioner).await;
    let token = url
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".ics"))
        .expect("token")
        .to_string();
    for path in [
        "/api/v1/feeds/not-a-real-token.ics".to_string(),
        "/api/v1/feeds/.ics".to_string(),
        format!("/api/v1/feeds/{token}"),
        format!("/api/v1/feeds/{token}.ics.ics"),
    ] {
        let reply: Reply = app.get(&path).await;
        reply.assert_problem(404, "not_found");
    }
    assert_eq!(
        app.get(&format!("/api/v1/feeds/{token}.ics")).await.status,
        200
    );
}

#[tokio::test]
async fn only_the_front_desk_and_the_practitioner_themself_may_get_or_rotate_a_feed() {
    let app = spawn_app().await;
    let (admin, amara, _) = clinic_with_one_practitioner(&app).await;
    let ben = app.create_practitioner(&admin, "Ben Carter").await;
    let as_amara = app.staff_token(&admin, "practitioner", Some(&amara)).await;
    let reception = app.staff_token(&admin, "reception", None).await;

    rotate(&app, &as_amara, &amara).await;
    rotate(&app, &reception, &ben).await;
    app.get_as(&as_amara, &feed_path(&ben))
        .await
        .assert_problem(403, "forbidden");
    app.post_as(&as_amara, &feed_path(&ben), json!({}))
        .await
        .assert_problem(403, "forbidden");
    app.get(&feed_path(&amara))
        .await
        .assert_problem(401, "unauthorized");
    app.post(&feed_path(&amara), json!({}))
        .await
        .assert_problem(401, "unauthorized");
    app.get_as(&admin, &feed_path(&uuid::Uuid::new_v4().to_string()))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn the_openapi_document_describes_the_calendar_and_the_feeds() {
    let app = spawn_app().await;
    let spec = app.get("/openapi.json").await.body;
    let paths = &spec["paths"];
    assert!(paths["/api/v1/staff/calendar"]["get"].is_object());
    assert!(paths["/api/v1/staff/practitioners/{id}/feed"]["get"].is_object());
    assert!(paths["/api/v1/staff/practitioners/{id}/feed"]["post"].is_object());
    let feed = &paths["/api/v1/feeds/{token}"]["get"];
    assert!(
        feed["responses"]["200"]["content"]["text/calendar; charset=utf-8"].is_object(),
        "{feed}"
    );
    assert!(
        feed["security"].is_null(),
        "the feed needs no sign-in: {feed}"
    );
}
