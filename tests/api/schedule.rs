//! Working hours, time off and clinic closures, and who may change them.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn hours_path(practitioner: &str) -> String {
    format!("/api/v1/staff/practitioners/{practitioner}/working-hours")
}

fn time_off_path(practitioner: &str) -> String {
    format!("/api/v1/staff/practitioners/{practitioner}/time-off")
}

const CLOSURES: &str = "/api/v1/staff/closures";

/// An RFC 3339 instant `days` days and `hours` hours from now, to the second.
fn from_now(days: i64, hours: i64) -> String {
    (Utc::now() + Duration::days(days) + Duration::hours(hours))
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn period(days: i64, length_hours: i64, reason: &str) -> Value {
    json!({ "starts_at": from_now(days, 0), "ends_at": from_now(days, length_hours),
            "reason": reason })
}

fn iv(weekday: &str, start: &str, end: &str) -> Value {
    json!({ "weekday": weekday, "start": start, "end": end })
}

/// An admin token and one practitioner, with a token of their own.
async fn with_practitioner(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    (admin, practitioner, own)
}

#[tokio::test]
async fn working_hours_replace_the_week_and_come_back_sorted() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let empty = app.get_as(&admin, &hours_path(&p)).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(empty.body["intervals"], json!([]));

    let week = json!({ "intervals": [
        iv("wednesday", "14:00", "18:00"),
        iv("monday", "13:30", "17:00"),
        { "weekday": "friday", "start": "09:00", "end": "24:00",
          "valid_from": "2030-01-01", "valid_until": "2030-06-30" },
        iv("monday", "08:00", "12:00"),
        iv("wednesday", "09:00", "13:00"),
    ]});
    let reply = app.put_as(&admin, &hours_path(&p), week).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let expected = json!([
        { "weekday": "monday", "start": "08:00", "end": "12:00", "valid_from": null, "valid_until": null },
        { "weekday": "monday", "start": "13:30", "end": "17:00", "valid_from": null, "valid_until": null },
        { "weekday": "wednesday", "start": "09:00", "end": "13:00", "valid_from": null, "valid_until": null },
        { "weekday": "wednesday", "start": "14:00", "end": "18:00", "valid_from": null, "valid_until": null },
        { "weekday": "friday", "start": "09:00", "end": "24:00", "valid_from": "2030-01-01", "valid_until": "2030-06-30" },
    ]);
    assert_eq!(reply.body["intervals"], expected);
    let stored = app.get_as(&admin, &hours_path(&p)).await;
    assert_eq!(stored.body["intervals"], expected);

    // A PUT replaces the whole week.
    let reply = app
        .put_as(
            &admin,
            &hours_path(&p),
            json!({ "intervals": [iv("tuesday", "10:00", "11:00")] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stored = app.get_as(&admin, &hours_path(&p)).await;
    assert_eq!(
        stored.body["intervals"],
        json!([{ "weekday": "tuesday", "start": "10:00", "end": "11:00",
                 "valid_from": null, "valid_until": null }])
    );
    let cleared = app
        .put_as(&admin, &hours_path(&p), json!({ "intervals": [] }))
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(
        app.get_as(&admin, &hours_path(&p)).await.body["intervals"],
        json!([])
    );
}

#[tokio::test]
async fn intervals_valid_in_different_periods_may_overlap() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let week = json!({ "intervals": [
        { "weekday": "monday", "start": "09:00", "end": "17:00", "valid_until": "2030-12-31" },
        { "weekday": "monday", "start": "10:00", "end": "18:00", "valid_from": "2031-01-01" },
        iv("tuesday", "09:00", "13:00"),
        iv("tuesday", "13:00", "17:00"),
    ]});
    let reply = app.put_as(&admin, &hours_path(&p), week).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["intervals"].as_array().expect("list").len(), 4);
}

#[tokio::test]
async fn bad_weeks_are_422_with_the_interval_named_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let existing = json!({ "intervals": [iv("thursday", "09:00", "17:00")] });
    app.put_as(&admin, &hours_path(&p), existing).await;

    let fine = iv("monday", "09:00", "12:00");
    // (case, intervals, the field named in `errors`; None where the body does not parse)
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "start after end",
            json!([fine, iv("tuesday", "17:00", "09:00")]),
            Some("intervals[1].end"),
        ),
        (
            "empty interval",
            json!([iv("tuesday", "09:00", "09:00")]),
            Some("intervals[0].end"),
        ),
        (
            "overlap on one day",
            json!([fine, iv("monday", "11:00", "14:00")]),
            Some("intervals[1]"),
        ),
        (
            "overlap listed out of order",
            json!([iv("monday", "11:00", "14:00"), fine]),
            Some("intervals[0]"),
        ),
        (
            "one-digit hour",
            json!([fine, iv("tuesday", "9:00", "12:00")]),
            Some("intervals[1].start"),
        ),
        (
            "hour 25",
            json!([fine, iv("tuesday", "09:00", "25:00")]),
            Some("intervals[1].end"),
        ),
        (
            "minute 60",
            json!([iv("tuesday", "09:60", "12:00")]),
            Some("intervals[0].start"),
        ),
        (
            "not a time",
            json!([iv("tuesday", "nine", "12:00")]),
            Some("intervals[0].start"),
        ),
        (
            "valid_from after valid_until",
            json!([fine, { "weekday": "tuesday", "start": "09:00", "end": "12:00",
                           "valid_from": "2030-02-01", "valid_until": "2030-01-01" }]),
            Some("intervals[1].valid_until"),
        ),
        (
            "unknown weekday",
            json!([iv("funday", "09:00", "12:00")]),
            None,
        ),
        (
            "bad date",
            json!([{ "weekday": "monday", "start": "09:00", "end": "12:00",
                              "valid_from": "2030-02-30" }]),
            None,
        ),
        (
            "missing end",
            json!([{ "weekday": "monday", "start": "09:00" }]),
            None,
        ),
    ];
    for (case, intervals, field) in cases {
        let reply = app
            .put_as(&admin, &hours_path(&p), json!({ "intervals": intervals }))
            .await;
        reply.assert_problem(422, "validation_failed");
        let fields = reply.error_fields();
        match field {
            Some(field) => assert!(
                fields.iter().any(|f| f == field),
                "{case}: expected {field} in {}",
                reply.body
            ),
            None => assert!(!fields.is_empty(), "{case}: {}", reply.body),
        }
    }
    let stored = app.get_as(&admin, &hours_path(&p)).await;
    assert_eq!(
        stored.body["intervals"],
        json!([{ "weekday": "thursday", "start": "09:00", "end": "17:00",
                 "valid_from": null, "valid_until": null }])
    );
}

#[tokio::test]
async fn a_practitioner_may_set_their_own_hours_but_not_anothers() {
    let app = spawn_app().await;
    let (admin, me, own) = with_practitioner(&app).await;
    let other = app.create_practitioner(&admin, "Olly Other").await;
    let week = json!({ "intervals": [iv("monday", "09:00", "17:00")] });

    let reply = app.put_as(&own, &hours_path(&me), week.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        app.get_as(&own, &hours_path(&me)).await.body["intervals"][0]["start"],
        "09:00"
    );

    app.put_as(&own, &hours_path(&other), week)
        .await
        .assert_problem(403, "forbidden");
    app.get_as(&own, &hours_path(&other))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.get_as(&admin, &hours_path(&other)).await.body["intervals"],
        json!([])
    );
}

#[tokio::test]
async fn reception_may_set_anyones_hours() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let reply = app
        .put_as(
            &reception,
            &hours_path(&p),
            json!({ "intervals": [iv("saturday", "08:00", "12:00")] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        app.get_as(&admin, &hours_path(&p)).await.body["intervals"][0]["weekday"],
        "saturday"
    );
}

#[tokio::test]
async fn hours_of_an_unknown_practitioner_are_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid"] {
        app.get_as(&admin, &hours_path(id))
            .await
            .assert_problem(404, "not_found");
        app.put_as(&admin, &hours_path(id), json!({ "intervals": [] }))
            .await
            .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn time_off_can_be_added_listed_and_removed() {
    let app = spawn_app().await;
    let (admin, p, own) = with_practitioner(&app).await;
    let later = period(10, 8, "Conference");
    let sooner = period(3, 4, "");

    let reply = app.post_as(&admin, &time_off_path(&p), later.clone()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("location"), Some(time_off_path(&p).as_str()));
    assert_eq!(reply.body["practitioner_id"], p.as_str());
    assert_eq!(reply.body["reason"], "Conference");
    let later_id = reply.body["id"].as_str().expect("id").to_string();
    let same_instant = |a: &Value, b: &Value| {
        let parse = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("instant")).expect("RFC 3339")
        };
        parse(a) == parse(b)
    };
    assert!(same_instant(&reply.body["starts_at"], &later["starts_at"]));
    assert!(same_instant(&reply.body["ends_at"], &later["ends_at"]));

    // The practitioner books their own.
    let reply = app.post_as(&own, &time_off_path(&p), sooner).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let sooner_id = reply.body["id"].as_str().expect("id").to_string();

    let list = app.get_as(&own, &time_off_path(&p)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 2);
    let ids: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [sooner_id.as_str(), later_id.as_str()],
        "soonest first"
    );

    let reply = app
        .delete_as(&own, &format!("/api/v1/staff/time-off/{later_id}"))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let list = app.get_as(&admin, &time_off_path(&p)).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], sooner_id.as_str());
    app.delete_as(&admin, &format!("/api/v1/staff/time-off/{later_id}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn bad_time_off_is_422_and_not_stored() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "ends before it starts",
            json!({ "starts_at": from_now(5, 4), "ends_at": from_now(5, 0) }),
            Some("ends_at"),
        ),
        (
            "ends as it starts",
            json!({ "starts_at": from_now(5, 0), "ends_at": from_now(5, 0) }),
            Some("ends_at"),
        ),
        (
            "longer than a year",
            json!({ "starts_at": from_now(5, 0), "ends_at": from_now(400, 0) }),
            Some("ends_at"),
        ),
        (
            "line break in reason",
            json!({ "starts_at": from_now(5, 0), "ends_at": from_now(5, 4),
                    "reason": "Away\r\nBcc: x@y.test" }),
            Some("reason"),
        ),
        (
            "no offset",
            json!({ "starts_at": "2030-01-01T09:00:00", "ends_at": "2030-01-01T17:00:00" }),
            None,
        ),
        ("missing end", json!({ "starts_at": from_now(5, 0) }), None),
    ];
    for (case, body, field) in cases {
        let reply = app.post_as(&admin, &time_off_path(&p), body).await;
        reply.assert_problem(422, "validation_failed");
        let fields = reply.error_fields();
        match field {
            Some(field) => assert!(
                fields.iter().any(|f| f == field),
                "{case}: expected {field} in {}",
                reply.body
            ),
            None => assert!(!fields.is_empty(), "{case}: {}", reply.body),
        }
    }
    assert_eq!(
        app.get_as(&admin, &time_off_path(&p)).await.body["total"],
        0
    );
}

#[tokio::test]
async fn a_practitioner_cannot_manage_anothers_time_off() {
    let app = spawn_app().await;
    let (admin, _me, own) = with_practitioner(&app).await;
    let other = app.create_practitioner(&admin, "Olly Other").await;
    app.post_as(&own, &time_off_path(&other), period(3, 4, "Not mine"))
        .await
        .assert_problem(403, "forbidden");
    app.get_as(&own, &time_off_path(&other))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.get_as(&admin, &time_off_path(&other)).await.body["total"],
        0
    );

    // Nor remove it: to them it does not exist.
    let theirs = app
        .post_as(&admin, &time_off_path(&other), period(3, 4, "Theirs"))
        .await;
    let theirs = theirs.body["id"].as_str().expect("id").to_string();
    app.delete_as(&own, &format!("/api/v1/staff/time-off/{theirs}"))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        app.get_as(&admin, &time_off_path(&other)).await.body["total"],
        1
    );
}

#[tokio::test]
async fn reception_may_add_time_off_for_anyone() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let reply = app
        .post_as(&reception, &time_off_path(&p), period(2, 8, "Sick"))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id");
    assert_eq!(
        app.delete_as(&reception, &format!("/api/v1/staff/time-off/{id}"))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn time_off_for_an_unknown_practitioner_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    app.post_as(&admin, &time_off_path(&unknown), period(2, 8, ""))
        .await
        .assert_problem(404, "not_found");
    app.get_as(&admin, &time_off_path(&unknown))
        .await
        .assert_problem(404, "not_found");
    app.delete_as(&admin, &format!("/api/v1/staff/time-off/{unknown}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn reception_manages_closures() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let christmas = period(20, 48, "Christmas");
    let reply = app.post_as(&reception, CLOSURES, christmas).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        reply.header("location"),
        Some(format!("{CLOSURES}/{id}").as_str())
    );
    assert_eq!(reply.body["reason"], "Christmas");
    let training = app
        .post_as(&admin, CLOSURES, period(5, 4, "Staff training"))
        .await;
    assert_eq!(training.status, 201, "{}", training.body);

    let list = app.get_as(&reception, CLOSURES).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 2);
    let reasons: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons, ["Staff training", "Christmas"], "soonest first");

    let reply = app.delete_as(&reception, &format!("{CLOSURES}/{id}")).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(app.get_as(&admin, CLOSURES).await.body["total"], 1);
    app.delete_as(&reception, &format!("{CLOSURES}/{id}"))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_practitioner_cannot_close_the_clinic() {
    let app = spawn_app().await;
    let (admin, _me, own) = with_practitioner(&app).await;
    app.post_as(&own, CLOSURES, period(5, 4, "Day off for all"))
        .await
        .assert_problem(403, "forbidden");
    let existing = app.post_as(&admin, CLOSURES, period(6, 4, "Audit")).await;
    let id = existing.body["id"].as_str().expect("id");
    app.delete_as(&own, &format!("{CLOSURES}/{id}"))
        .await
        .assert_problem(403, "forbidden");
    // They may still see when the clinic is closed.
    let list = app.get_as(&own, CLOSURES).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 1);
}

#[tokio::test]
async fn bad_or_unknown_closures_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            CLOSURES,
            json!({ "starts_at": from_now(5, 4), "ends_at": from_now(5, 0) }),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["ends_at"]);
    assert_eq!(app.get_as(&admin, CLOSURES).await.body["total"], 0);
    for id in [uuid::Uuid::new_v4().to_string(), "nope".to_string()] {
        app.delete_as(&admin, &format!("{CLOSURES}/{id}"))
            .await
            .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn schedules_need_a_token() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let p = app.create_practitioner(&admin, "Pat Physio").await;
    app.send(
        reqwest::Method::PUT,
        &hours_path(&p),
        None,
        Some(json!({ "intervals": [] })),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.post(&time_off_path(&p), period(2, 2, ""))
        .await
        .assert_problem(401, "unauthorized");
    app.post(CLOSURES, period(2, 2, ""))
        .await
        .assert_problem(401, "unauthorized");
    app.get(CLOSURES).await.assert_problem(401, "unauthorized");
}
