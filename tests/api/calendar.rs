//! The staff calendar through HTTP: its shape, instants across a DST change, range limits and
//! who may see whose calendar.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// The next last Sunday of March at least a week ahead: London's spring-forward day, when
/// 01:00 GMT becomes 02:00 BST.
fn next_spring_change() -> NaiveDate {
    let soon = Utc::now().date_naive() + Duration::days(7);
    (soon.year()..)
        .filter_map(|year| {
            let end_of_march = NaiveDate::from_ymd_opt(year, 3, 31)?;
            let back = end_of_march.weekday().num_days_from_sunday();
            Some(end_of_march - Duration::days(i64::from(back)))
        })
        .find(|d| *d >= soon)
        .expect("a spring change ahead")
}

fn booking_body(service: &str, start: &str, email: &str) -> Value {
    json!({
        "service_id": service,
        "start": start,
        "patient": { "name": "Jo Bloggs", "email": email, "phone": "07700 900123" },
        "consent": { "privacy": true, "marketing": false }
    })
}

/// Books `start` online and returns (booking, manage token).
async fn book(app: &TestApp, service: &str, start: &str, email: &str) -> (Value, String) {
    let reply = app
        .post("/api/v1/bookings", booking_body(service, start, email))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    (reply.body["booking"].clone(), token)
}

async fn calendar(app: &TestApp, token: &str, query: &str) -> Value {
    let reply = app
        .get_as(token, &format!("/api/v1/staff/calendar?{query}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn ids(calendar: &Value) -> Vec<String> {
    calendar["practitioners"]
        .as_array()
        .expect("practitioners")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn the_calendar_shows_hours_appointments_time_off_and_closures_across_a_dst_change() {
    let app = spawn_app_with(|s| s.policy.max_advance_days = 730).await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let sunday = next_spring_change();
    assert_eq!(sunday.weekday(), Weekday::Sun);
    let (friday, saturday, monday) = (
        sunday - Duration::days(2),
        sunday - Duration::days(1),
        sunday + Duration::days(1),
    );
    // Every day 09:00–17:00, and on Sundays also 00:30–03:00, across the change itself.
    let mut week: Vec<Value> = [
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
    week.push(json!({ "weekday": "sunday", "start": "00:30", "end": "03:00" }));
    let reply = app
        .put_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/working-hours"),
            json!({ "intervals": week }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Monday 09:00 BST is 08:00 UTC; Friday 10:00 GMT is 10:00 UTC (booked, then cancelled).
    let (booked, _) = book(
        &app,
        &service,
        &format!("{monday}T08:00:00Z"),
        "jo@example.com",
    )
    .await;
    let (_, cancel_token) = book(
        &app,
        &service,
        &format!("{friday}T10:00:00Z"),
        "sam@example.com",
    )
    .await;
    let reply = app
        .post(
            &format!("/api/v1/manage/{cancel_token}/cancel"),
            json!({ "reason": "Feeling better" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/time-off"),
            json!({ "starts_at": format!("{saturday}T12:00:00Z"),
                    "ends_at": format!("{saturday}T13:00:00Z"), "reason": "Dentist" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": format!("{monday}T12:00:00Z"),
                    "ends_at": format!("{monday}T16:00:00Z"), "reason": "Staff training" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Outside the range: not shown.
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/closures",
            json!({ "starts_at": format!("{}T09:00:00Z", monday + Duration::days(3)),
                    "ends_at": format!("{}T17:00:00Z", monday + Duration::days(3)) }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let cal = calendar(&app, &admin, &format!("from={friday}&to={monday}")).await;
    assert_eq!(cal["from"], friday.to_string());
    assert_eq!(cal["to"], monday.to_string());
    assert_eq!(cal["time_zone"], "Europe/London");
    assert_eq!(ids(&cal), [practitioner.as_str()]);
    let p = &cal["practitioners"][0];
    assert_eq!(p["name"], "Amara Okafor");

    let working: Vec<[&str; 4]> = p["working"]
        .as_array()
        .expect("working")
        .iter()
        .map(|w| {
            let s = |k: &str| w[k].as_str().expect("time");
            [s("start"), s("end"), s("local_start"), s("local_end")]
        })
        .collect();
    let day = |d: NaiveDate, t: &str| format!("{d}T{t}");
    assert_eq!(
        working,
        [
            [
                day(friday, "09:00:00Z"),
                day(friday, "17:00:00Z"),
                day(friday, "09:00:00+00:00"),
                day(friday, "17:00:00+00:00"),
            ],
            [
                day(saturday, "09:00:00Z"),
                day(saturday, "17:00:00Z"),
                day(saturday, "09:00:00+00:00"),
                day(saturday, "17:00:00+00:00"),
            ],
            // 00:30 GMT to 03:00 BST: an hour and a half of real time.
            [
                day(sunday, "00:30:00Z"),
                day(sunday, "02:00:00Z"),
                day(sunday, "00:30:00+00:00"),
                day(sunday, "03:00:00+01:00"),
            ],
            [
                day(sunday, "08:00:00Z"),
                day(sunday, "16:00:00Z"),
                day(sunday, "09:00:00+01:00"),
                day(sunday, "17:00:00+01:00"),
            ],
            [
                day(monday, "08:00:00Z"),
                day(monday, "16:00:00Z"),
                day(monday, "09:00:00+01:00"),
                day(monday, "17:00:00+01:00"),
            ],
        ]
        .iter()
        .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
        .collect::<Vec<_>>()
    );

    // The cancelled booking is left out unless asked for.
    let appointments = p["appointments"].as_array().expect("appointments");
    assert_eq!(appointments.len(), 1, "{appointments:?}");
    let a = &appointments[0];
    assert_eq!(a["id"], booked["id"]);
    assert_eq!(a["reference"], booked["reference"]);
    assert_eq!(a["status"], "confirmed");
    assert_eq!(a["start"], day(monday, "08:00:00Z"));
    assert_eq!(a["end"], day(monday, "08:45:00Z"));
    assert_eq!(a["local_start"], day(monday, "09:00:00+01:00"));
    assert_eq!(
        a["service"],
        json!({ "id": service, "name": "Initial assessment" })
    );
    assert_eq!(a["patient"], json!({ "name": "Jo Bloggs" }));

    let time_off = p["time_off"].as_array().expect("time_off");
    assert_eq!(time_off.len(), 1);
    assert_eq!(time_off[0]["start"], day(saturday, "12:00:00Z"));
    assert_eq!(time_off[0]["end"], day(saturday, "13:00:00Z"));
    assert_eq!(time_off[0]["reason"], "Dentist");
    assert!(time_off[0]["id"].is_string());

    let closures = cal["closures"].as_array().expect("closures");
    assert_eq!(closures.len(), 1, "{closures:?}");
    assert_eq!(closures[0]["start"], day(monday, "12:00:00Z"));
    assert_eq!(closures[0]["local_start"], day(monday, "13:00:00+01:00"));
    assert_eq!(closures[0]["reason"], "Staff training");

    let with_cancelled = calendar(
        &app,
        &admin,
        &format!("from={friday}&to={monday}&include_cancelled=true"),
    )
    .await;
    let statuses: Vec<&str> = with_cancelled["practitioners"][0]["appointments"]
        .as_array()
        .expect("appointments")
        .iter()
        .map(|a| a["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["cancelled", "confirmed"]);

    // A one-day range shows only that day.
    let one_day = calendar(&app, &admin, &format!("from={saturday}&to={saturday}")).await;
    let p = &one_day["practitioners"][0];
    assert_eq!(p["working"].as_array().map(Vec::len), Some(1));
    assert_eq!(p["appointments"], json!([]));
    assert_eq!(p["time_off"].as_array().map(Vec::len), Some(1));
    assert_eq!(one_day["closures"], json!([]));
}

#[tokio::test]
async fn a_range_must_be_in_order_and_at_most_31_days() {
    let app = spawn_app().await;
    let (admin, _, _) = clinic_with_one_practitioner(&app).await;
    let from = in_days(1);
    calendar(
        &app,
        &admin,
        &format!("from={from}&to={}", from + Duration::days(30)),
    )
    .await;
    for (query, field) in [
        (
            format!("from={from}&to={}", from + Duration::days(31)),
            "to",
        ),
        (format!("from={from}&to={}", from - Duration::days(1)), "to"),
        (format!("from=tomorrow&to={from}"), "from"),
        (format!("to={from}"), "from"),
    ] {
        let reply = app
            .get_as(&admin, &format!("/api/v1/staff/calendar?{query}"))
            .await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.error_fields(), [field], "{query}");
    }
    let reply = app
        .get_as(
            &admin,
            &format!(
                "/api/v1/staff/calendar?from={from}&to={from}&practitioner_id={}",
                uuid::Uuid::new_v4()
            ),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["practitioner_id"]);
}

#[tokio::test]
async fn practitioners_see_only_their_own_calendar_and_the_front_desk_sees_everyone() {
    let app = spawn_app().await;
    let (admin, amara, service) = clinic_with_one_practitioner(&app).await;
    let ben = app.create_practitioner(&admin, "Ben Carter").await;
    let gone = app.create_practitioner(&admin, "Cleo Gone").await;
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{gone}"),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let day = in_days(5);
    let slots =
        crate::availability::slots(&app, &format!("service_id={service}&from={day}&to={day}"))
            .await;
    let start = slots[0]["start"].as_str().expect("start").to_string();
    book(&app, &service, &start, "jo@example.com").await;

    let as_amara = app.staff_token(&admin, "practitioner", Some(&amara)).await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let range = format!("from={day}&to={day}");

    // Their own, whether or not they name themselves.
    for query in [range.clone(), format!("{range}&practitioner_id={amara}")] {
        let cal = calendar(&app, &as_amara, &query).await;
        assert_eq!(ids(&cal), [amara.as_str()]);
        let appointments = &cal["practitioners"][0]["appointments"];
        assert_eq!(appointments.as_array().map(Vec::len), Some(1));
        assert_eq!(appointments[0]["patient"], json!({ "name": "Jo Bloggs" }));
    }
    app.get_as(
        &as_amara,
        &format!("/api/v1/staff/calendar?{range}&practitioner_id={ben}"),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get(&format!("/api/v1/staff/calendar?{range}"))
        .await
        .assert_problem(401, "unauthorized");

    // The front desk sees the active team by name, or one practitioner when asked.
    for token in [&reception, &admin] {
        let cal = calendar(&app, token, &range).await;
        assert_eq!(ids(&cal), [amara.as_str(), ben.as_str()]);
        let cal = calendar(&app, token, &format!("{range}&practitioner_id={ben}")).await;
        assert_eq!(ids(&cal), [ben.as_str()]);
        assert_eq!(cal["practitioners"][0]["appointments"], json!([]));
    }
}
