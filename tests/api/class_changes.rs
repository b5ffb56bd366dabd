//! Staff changes to classes: moving and resizing a session (seat holders get an updated
//! invitation), cancelling one (every seat cancelled and emailed), weekly series that keep
//! their local time and skip clashes, ending a series, staff seats, rosters and attendance,
//! and where sessions show up (feeds, the staff calendar, webhooks, the demo clinic).

use entity::{class_seat, outbox_message, webhook_delivery};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::classes::{assert_capacity_held, book_seat, class_at, class_service};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn emails(app: &TestApp, kind: &str) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq(kind))
        .all(&app.db)
        .await
        .expect("outbox")
}

async fn roster(app: &TestApp, token: &str, class: &str) -> Value {
    let reply = app
        .get_as(token, &format!("/api/v1/staff/classes/{class}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// An instructor with a class service of 10 places and a session in five days at 18:00 UTC.
async fn one_class(app: &TestApp) -> (String, String, String, String) {
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(app, &admin, &instructor, 10).await;
    let class = class_at(app, &admin, &service, &instructor, 5, None).await;
    (admin, instructor, service, class)
}

#[tokio::test]
async fn moving_a_class_sends_each_seat_holder_an_updated_invitation() {
    let app = spawn_app().await;
    let (admin, _, _, class) = one_class(&app).await;
    let kept = book_seat(&app, &class, "kept@example.com").await;
    let gone = book_seat(&app, &class, "gone@example.com").await;
    let gone_token = gone.body["manage_token"].as_str().expect("token");
    let reply = app
        .post(&format!("/api/v1/manage/{gone_token}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let new_start = format!("{}T17:00:00Z", in_days(6));
    let moved = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}"),
            json!({ "starts_at": new_start }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["start"], new_start.as_str());
    // Only the confirmed seat hears of it, with the same UID and a higher SEQUENCE.
    let changed = emails(&app, "class_changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].to_address, "kept@example.com");
    let ics = changed[0].ics.as_deref().expect("invitation");
    let seat_id = kept.body["seat"]["id"].as_str().expect("seat");
    assert!(ics.contains(&format!("UID:{seat_id}@frontdesk")), "{ics}");
    assert!(
        ics.contains("SEQUENCE:1") && ics.contains("METHOD:REQUEST"),
        "{ics}"
    );
    // The seat's manage link shows the new time.
    let kept_token = kept.body["manage_token"].as_str().expect("token");
    let view = app.get(&format!("/api/v1/manage/{kept_token}")).await;
    assert_eq!(view.body["seat"]["class"]["start"], new_start.as_str());
    // A capacity below the seats taken is refused; equal to them is fine.
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/classes/{class}"),
        json!({ "capacity": 0 }),
    )
    .await
    .assert_problem(422, "validation_failed");
    let two = book_seat(&app, &class, "two@example.com").await;
    assert_eq!(two.status, 201, "{}", two.body);
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/classes/{class}"),
        json!({ "capacity": 1 }),
    )
    .await
    .assert_problem(422, "capacity_below_seats");
    let resized = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}"),
            json!({ "capacity": 2 }),
        )
        .await;
    assert_eq!(resized.status, 200, "{}", resized.body);
    assert_eq!(resized.body["seats_left"], 0);
    // The resize alone still reaches each confirmed seat holder, with SEQUENCE raised again.
    let changed = emails(&app, "class_changed").await;
    assert_eq!(changed.len(), 3, "{changed:?}");
    let resize: Vec<_> = changed
        .iter()
        .filter(|e| e.ics.as_deref().is_some_and(|i| i.contains("SEQUENCE:2")))
        .collect();
    let mut resized_to: Vec<_> = resize.iter().map(|e| e.to_address.as_str()).collect();
    resized_to.sort_unstable();
    assert_eq!(resized_to, ["kept@example.com", "two@example.com"]);
    for email in resize {
        let ics = email.ics.as_deref().expect("invitation");
        assert!(ics.contains("METHOD:REQUEST"), "{ics}");
        // Nothing moved, so the email does not claim an earlier time.
        assert!(
            !email.text_body.contains("it was on"),
            "{}",
            email.text_body
        );
    }
    book_seat(&app, &class, "three@example.com")
        .await
        .assert_problem(409, "class_full");
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn a_class_cannot_move_onto_its_instructors_appointments() {
    let app = spawn_app().await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let class = class_at(&app, &admin, &service, &instructor, 5, None).await;
    let start = format!("{}T10:00:00Z", in_days(5));
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": one_to_one, "practitioner_id": instructor, "start": start,
                    "patient": { "name": "Jo Bloggs" } }),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/classes/{class}"),
        json!({ "starts_at": start }),
    )
    .await
    .assert_problem(409, "slot_unavailable");
    // Nothing moved.
    let view = roster(&app, &admin, &class).await;
    assert_eq!(view["start"], format!("{}T18:00:00Z", in_days(5)));
    crate::classes::assert_no_overlapping_holds(&app).await;
}

#[tokio::test]
async fn cancelling_a_class_cancels_and_emails_every_seat_and_emits_events() {
    let app = spawn_app().await;
    let (admin, _, _, class) = one_class(&app).await;
    let hook = app
        .post_as(
            &admin,
            "/api/v1/staff/webhooks",
            json!({ "url": "http://127.0.0.1:9/classes",
                    "events": ["class_seat.booked", "class_seat.cancelled", "class.cancelled"] }),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    for i in 0..3 {
        let r = book_seat(&app, &class, &format!("c{i}@example.com")).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}/cancel"),
            json!({ "reason": "Instructor ill" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(reply.body["cancel_reason"], "Instructor ill");
    let seats = reply.body["seats"].as_array().expect("seats");
    assert_eq!(seats.len(), 3);
    assert!(
        seats.iter().all(|s| s["status"] == "cancelled"),
        "{seats:?}"
    );
    let cancelled = emails(&app, "class_cancelled").await;
    assert_eq!(cancelled.len(), 3);
    for email in &cancelled {
        assert_eq!(email.ics_method.as_deref(), Some("CANCEL"));
        assert!(email.text_body.contains("Instructor ill"));
    }
    // Again: 200, nothing more.
    let again = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}/cancel"),
            json!({ "reason": "Still ill" }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(emails(&app, "class_cancelled").await.len(), 3);
    let events: Vec<String> = webhook_delivery::Entity::find()
        .all(&app.db)
        .await
        .expect("deliveries")
        .into_iter()
        .map(|d| d.event_type)
        .collect();
    let count = |name: &str| events.iter().filter(|e| *e == name).count();
    assert_eq!(count("class_seat.booked"), 3, "{events:?}");
    assert_eq!(count("class_seat.cancelled"), 3, "{events:?}");
    assert_eq!(count("class.cancelled"), 1, "{events:?}");
    let delivery = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EventType.eq("class_seat.booked"))
        .one(&app.db)
        .await
        .expect("delivery")
        .expect("one");
    let payload: Value = serde_json::from_str(&delivery.payload).expect("json");
    assert_eq!(payload["data"]["class_id"], class.as_str());
    assert!(
        !delivery.payload.contains("example.com"),
        "no contact details"
    );
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn a_weekly_series_keeps_its_local_time_across_the_clock_change_and_skips_clashes() {
    let app = spawn_app().await;
    let (admin, instructor, one_to_one) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    // Tuesdays at 18:00 London time from 9 March to 13 April 2027; the clocks go forward on
    // 28 March.
    let closure = app
        .post_as(
            &admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": "2027-03-16T00:00:00Z", "ends_at": "2027-03-17T00:00:00Z",
                    "reason": "Refurbishment" }),
        )
        .await;
    assert_eq!(closure.status, 201, "{}", closure.body);
    let time_off = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{instructor}/time-off"),
            json!({ "starts_at": "2027-03-23T12:00:00Z", "ends_at": "2027-03-23T22:00:00Z" }),
        )
        .await;
    assert_eq!(time_off.status, 201, "{}", time_off.body);
    let booked = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": one_to_one, "practitioner_id": instructor,
                    "start": "2027-04-06T16:30:00Z", "patient": { "name": "Jo Bloggs" } }),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/class-series",
            json!({ "service_id": service, "practitioner_id": instructor, "weekday": "tuesday",
                    "start": "18:00", "valid_from": "2027-03-08", "valid_until": "2027-04-13",
                    "capacity": 6, "except": ["2027-03-30"] }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let local: Vec<&str> = reply.body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["local_start"].as_str().expect("local_start"))
        .collect();
    assert_eq!(
        local,
        ["2027-03-09T18:00:00+00:00", "2027-04-13T18:00:00+01:00"]
    );
    let skipped: Vec<(String, String)> = reply.body["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| {
            (
                s["date"].as_str().expect("date").to_string(),
                s["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    let expected = [
        ("2027-03-16", "closure"),
        ("2027-03-23", "time_off"),
        ("2027-03-30", "excepted"),
        ("2027-04-06", "taken"),
    ];
    assert_eq!(
        skipped,
        expected.map(|(d, r)| (d.to_string(), r.to_string()))
    );
    let first = &reply.body["sessions"][0];
    assert_eq!(first["capacity"], 6);
    assert_eq!(first["series_id"], reply.body["series_id"]);
}

#[tokio::test]
async fn ending_a_series_cancels_its_later_sessions_and_emails_their_seats() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Pia Pilates").await;
    let service = class_service(&app, &admin, &instructor, 10).await;
    let (from, until) = (in_days(2), in_days(30));
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/class-series",
            json!({ "service_id": service, "practitioner_id": instructor, "weekday": "wednesday",
                    "start": "19:00", "valid_from": from, "valid_until": until }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let series = reply.body["series_id"].as_str().expect("series");
    let sessions = reply.body["sessions"].as_array().expect("sessions").clone();
    assert!(sessions.len() >= 4, "{sessions:?}");
    let last = sessions.last().expect("last")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let seat = book_seat(&app, &last, "late.series@example.com").await;
    assert_eq!(seat.status, 201, "{}", seat.body);
    // End it the day after its first session.
    let first_date = sessions[0]["local_start"].as_str().expect("start")[..10].to_string();
    let end: chrono::NaiveDate = first_date.parse().expect("date");
    let ended = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/class-series/{series}"),
            json!({ "valid_until": end }),
        )
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.body["valid_until"], first_date.as_str());
    let cancelled = ended.body["cancelled"].as_array().expect("cancelled");
    assert_eq!(cancelled.len(), sessions.len() - 1);
    assert!(cancelled.iter().any(|id| *id == last.as_str()));
    assert_eq!(roster(&app, &admin, &last).await["status"], "cancelled");
    assert_eq!(
        roster(&app, &admin, sessions[0]["id"].as_str().expect("id")).await["status"],
        "scheduled"
    );
    let emails = emails(&app, "class_cancelled").await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to_address, "late.series@example.com");
    // A later end than the current one is refused.
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/class-series/{series}"),
        json!({ "valid_until": in_days(60) }),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn staff_book_and_cancel_seats_and_practitioners_record_attendance_at_their_own_classes() {
    let app = spawn_app().await;
    let (admin, instructor, _, class) = one_class(&app).await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&instructor))
        .await;
    let other_practitioner = app.create_practitioner(&admin, "Other Person").await;
    let other = app
        .staff_token(&admin, "practitioner", Some(&other_practitioner))
        .await;
    let reception = app.staff_token(&admin, "reception", None).await;
    // A phone booking without an address: no email, a seat all the same.
    let phoned = app
        .post_as(
            &reception,
            &format!("/api/v1/staff/classes/{class}/seats"),
            json!({ "patient": { "name": "Phone Caller", "phone": "020 7946 0999" } }),
        )
        .await;
    assert_eq!(phoned.status, 201, "{}", phoned.body);
    assert!(phoned.body["seat"]["patient"]["email"].is_null());
    let online = book_seat(&app, &class, "online@example.com").await;
    assert_eq!(online.status, 201, "{}", online.body);
    // The roster: the instructor sees it, another practitioner does not.
    let list = roster(&app, &own, &class).await;
    let names: Vec<&str> = list["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| s["patient"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Phone Caller", "Sam Seat"]);
    app.get_as(&other, &format!("/api/v1/staff/classes/{class}"))
        .await
        .assert_problem(404, "not_found");
    let d = in_days(5);
    let theirs = app
        .get_as(&other, &format!("/api/v1/staff/classes?from={d}&to={d}"))
        .await;
    assert_eq!(theirs.body["total"], 0, "{}", theirs.body);
    let mine = app
        .get_as(&own, &format!("/api/v1/staff/classes?from={d}&to={d}"))
        .await;
    assert_eq!(mine.body["total"], 1, "{}", mine.body);
    assert_eq!(mine.body["items"][0]["seats_taken"], 2);
    // Attendance by the instructor; not by another practitioner; not on a cancelled seat.
    let phoned_id = phoned.body["seat"]["id"].as_str().expect("id");
    app.post_as(
        &other,
        &format!("/api/v1/staff/seats/{phoned_id}/attendance"),
        json!({ "status": "attended" }),
    )
    .await
    .assert_problem(404, "not_found");
    let marked = app
        .post_as(
            &own,
            &format!("/api/v1/staff/seats/{phoned_id}/attendance"),
            json!({ "status": "attended" }),
        )
        .await;
    assert_eq!(marked.status, 200, "{}", marked.body);
    assert_eq!(marked.body["status"], "attended");
    // Practitioners may not cancel seats; reception may, freeing the place.
    let online_id = online.body["seat"]["id"].as_str().expect("id");
    app.post_as(
        &own,
        &format!("/api/v1/staff/seats/{online_id}/cancel"),
        json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    let cancelled = app
        .post_as(
            &reception,
            &format!("/api/v1/staff/seats/{online_id}/cancel"),
            json!({ "reason": "phoned" }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    app.post_as(
        &own,
        &format!("/api/v1/staff/seats/{online_id}/attendance"),
        json!({ "status": "no_show" }),
    )
    .await
    .assert_problem(422, "booking_not_changeable");
    let seat_row = class_seat::Entity::find_by_id(uuid::Uuid::parse_str(online_id).expect("uuid"))
        .one(&app.db)
        .await
        .expect("seat")
        .expect("row");
    assert_eq!(seat_row.cancel_reason.as_deref(), Some("phoned"));
    assert_eq!(roster(&app, &admin, &class).await["seats_left"], 9);
    assert_capacity_held(&app).await;
}

#[tokio::test]
async fn sessions_show_in_the_instructors_feed_and_the_staff_calendar_with_seat_counts() {
    let app = spawn_app().await;
    let (admin, instructor, _, class) = one_class(&app).await;
    let seat = book_seat(&app, &class, "feed@example.com").await;
    assert_eq!(seat.status, 201, "{}", seat.body);
    let d = in_days(5);
    let calendar = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/calendar?from={d}&to={d}&practitioner_id={instructor}"),
        )
        .await;
    assert_eq!(calendar.status, 200, "{}", calendar.body);
    let classes = &calendar.body["practitioners"][0]["classes"];
    assert_eq!(classes[0]["id"], class.as_str());
    assert_eq!(classes[0]["seats_taken"], 1);
    assert_eq!(classes[0]["seats_left"], 9);
    assert_eq!(classes[0]["capacity"], 10);
    let link = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{instructor}/feed"),
        )
        .await;
    let url = link.body["url"].as_str().expect("feed url");
    let path = &url[url.find("/api/").expect("api path")..];
    let feed = app.client.get(app.url(path)).send().await.expect("feed");
    assert_eq!(feed.status(), 200);
    let text = feed.text().await.expect("body");
    assert!(
        text.contains(&format!("UID:class-{class}@frontdesk")),
        "{text}"
    );
    assert!(text.contains("1 of 10 places booked"), "{text}");
    assert!(!text.contains("feed@example.com"));
}

#[tokio::test]
async fn the_demo_clinic_has_a_weekly_class_timetable() {
    let app = spawn_app_with(|s| s.demo.seed = true).await;
    let (from, to) = (in_days(1), in_days(14));
    let reply = app
        .get(&format!("/api/v1/classes?from={from}&to={to}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.body["items"].as_array().expect("items");
    // Two weeks of three weekly classes.
    assert!(items.len() >= 5, "{}", reply.body);
    let names: std::collections::BTreeSet<&str> = items
        .iter()
        .map(|c| c["service"]["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains("Mat Pilates class"), "{names:?}");
    assert!(names.contains("Back-care circuit class"), "{names:?}");
    let first = items[0]["id"].as_str().expect("id");
    let r = book_seat(&app, first, "demo@example.com").await;
    assert!(
        r.status == 201 || r.body["code"] == "outside_availability",
        "{}",
        r.body
    );
    // Sessions never clash with the instructors' one-to-one hours.
    crate::classes::assert_no_overlapping_holds(&app).await;
}

#[tokio::test]
async fn time_off_over_a_class_is_a_conflict_and_cancelling_it_emails_every_seat() {
    let app = spawn_app().await;
    let (admin, instructor, _, class) = one_class(&app).await;
    for i in 0..2 {
        let r = book_seat(&app, &class, &format!("off{i}@example.com")).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let d = in_days(5);
    let period =
        json!({ "starts_at": format!("{d}T12:00:00Z"), "ends_at": format!("{d}T23:00:00Z") });
    let path = format!("/api/v1/staff/practitioners/{instructor}/time-off");
    let refused = app.post_as(&admin, &path, period.clone()).await;
    refused.assert_problem(409, "conflicts_with_bookings");
    assert_eq!(refused.body["conflicts"][0]["class_id"], class.as_str());
    assert_eq!(refused.body["conflicts"][0]["seats_taken"], 2);
    let mut cancel = period.clone();
    cancel["on_conflict"] = json!("cancel");
    let created = app.post_as(&admin, &path, cancel).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["cancelled"], json!([class]));
    let view = roster(&app, &admin, &class).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(emails(&app, "class_cancelled").await.len(), 2);
    // A closure over a kept class: `keep` leaves it scheduled.
    let other = class_at(
        &app,
        &admin,
        view["service"]["id"].as_str().expect("service"),
        &instructor,
        8,
        None,
    )
    .await;
    let d = in_days(8);
    let closure = app
        .post_as(
            &admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": format!("{d}T00:00:00Z"), "ends_at": format!("{d}T23:59:00Z"),
                    "on_conflict": "keep" }),
        )
        .await;
    assert_eq!(closure.status, 201, "{}", closure.body);
    assert_eq!(roster(&app, &admin, &other).await["status"], "scheduled");
}
