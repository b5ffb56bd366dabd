//! Courses of treatment: a weekly series previewed and booked in one go, at the same local
//! time across the clock changes, checked occurrence by occurrence like staff bookings, with
//! one confirmation and one recurring invitation, and cancelled by scope.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use entity::{appointment, outbox_message, series};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{Reply, TestApp, spawn_app};

const PATIENT: &str = "course.patient@example.com";

/// The first Tuesday of March next year: a weekly course from it crosses the spring change
/// (last Sunday of March) and, at 36 weeks, the autumn one (last Sunday of October).
fn march_tuesday() -> NaiveDate {
    let year = Utc::now().year() + 1;
    let mut d = NaiveDate::from_ymd_opt(year, 3, 1).expect("1 March");
    while d.weekday() != Weekday::Tue {
        d += Duration::days(1);
    }
    d
}

fn body(service: &str, practitioner: &str, first_start: &str, count: u32) -> Value {
    json!({
        "service_id": service,
        "practitioner_id": practitioner,
        "first_start": first_start,
        "every_weeks": 1,
        "count": count,
        "patient": { "name": "Robin Course", "email": PATIENT, "phone": "07700 900123" },
    })
}

fn with(mut b: Value, key: &str, value: Value) -> Value {
    b[key] = value;
    b
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["bookings"]
        .as_array()
        .expect("bookings")
        .iter()
        .map(|b| b["id"].as_str().expect("id").to_string())
        .collect()
}

async fn outbox(app: &TestApp) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .all(&app.db)
        .await
        .expect("outbox")
}

/// A parsed property: (name, parameters as (key, value), value).
type Prop = (String, Vec<(String, String)>, String);

/// Each property of the first component named `component` (searched depth-first) as
/// (name, params, value).
fn props(cal: &icalendar::parser::Calendar<'_>, component: &str) -> Vec<Prop> {
    fn find<'a>(
        list: &'a [icalendar::parser::Component<'a>],
        name: &str,
    ) -> Option<&'a icalendar::parser::Component<'a>> {
        for c in list {
            if c.name == name {
                return Some(c);
            }
            if let Some(found) = find(&c.components, name) {
                return Some(found);
            }
        }
        None
    }
    let Some(c) = find(&cal.components, component) else {
        return Vec::new();
    };
    c.properties
        .iter()
        .map(|p| {
            (
                p.name.as_str().to_string(),
                p.params
                    .iter()
                    .map(|q| {
                        (
                            q.key.as_str().to_string(),
                            q.val
                                .as_ref()
                                .map(|v| v.as_str().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
                p.val.as_str().to_string(),
            )
        })
        .collect()
}

fn prop<'a>(list: &'a [Prop], name: &str) -> Option<&'a Prop> {
    list.iter().find(|(n, _, _)| n == name)
}

fn tzid(p: &Prop) -> Option<&str> {
    p.1.iter()
        .find(|(k, _)| k == "TZID")
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_weekly_series_across_both_clock_changes_stays_at_nine_local() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let first = march_tuesday();
    let first_start = format!("{first}T09:00:00+00:00");
    let preview = app
        .post_as(
            &admin,
            "/api/v1/staff/series/preview",
            body(&service, &practitioner, &first_start, 36),
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let occurrences = preview.body["occurrences"].as_array().expect("occurrences");
    assert_eq!(occurrences.len(), 36);
    assert!(
        occurrences.iter().all(|o| o["status"] == "free"),
        "{}",
        preview.body
    );

    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/series",
            body(&service, &practitioner, &first_start, 36),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let series_id = reply.body["series_id"]
        .as_str()
        .expect("series_id")
        .to_string();
    let bookings = reply.body["bookings"].as_array().expect("bookings");
    assert_eq!(bookings.len(), 36);
    assert!(
        reply.body["skipped"]
            .as_array()
            .expect("skipped")
            .is_empty()
    );
    let mut offsets = std::collections::BTreeSet::new();
    for (k, b) in bookings.iter().enumerate() {
        let local = b["local_start"].as_str().expect("local_start");
        let date = first + Duration::weeks(k as i64);
        assert!(
            local.starts_with(&format!("{date}T09:00:00")),
            "week {k}: {local}"
        );
        assert_eq!(b["series_id"], series_id.as_str());
        let start: DateTime<Utc> = b["start"]
            .as_str()
            .expect("start")
            .parse()
            .expect("rfc3339");
        let offset = &local[19..];
        // 09:00 GMT is 09:00Z; 09:00 BST is 08:00Z.
        let expected_utc_hour = if offset == "+01:00" { 8 } else { 9 };
        assert_eq!(
            chrono::Timelike::hour(&start),
            expected_utc_hour,
            "{local} / {start}"
        );
        offsets.insert(offset.to_string());
    }
    // Both offsets are met: the first in GMT, the summer in BST, and the last (November)
    // back in GMT.
    assert_eq!(
        bookings[0]["local_start"].as_str().map(|s| &s[19..]),
        Some("+00:00")
    );
    assert_eq!(
        bookings[10]["local_start"].as_str().map(|s| &s[19..]),
        Some("+01:00")
    );
    assert_eq!(
        bookings[35]["local_start"].as_str().map(|s| &s[19..]),
        Some("+00:00")
    );
    assert_eq!(offsets.len(), 2);

    // The staff calendar shows the occurrences with their series.
    let day = first + Duration::weeks(10);
    let calendar = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/calendar?from={day}&to={day}&practitioner_id={practitioner}"),
        )
        .await;
    assert_eq!(calendar.status, 200, "{}", calendar.body);
    let items = calendar.body["practitioners"][0]["appointments"]
        .as_array()
        .expect("appointments");
    assert_eq!(items.len(), 1, "{}", calendar.body);
    assert_eq!(items[0]["series_id"], series_id.as_str());
    // A single booking's series_id is null.
    let single = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": format!("{}T19:00:00+00:00", in_days(3)),
                    "patient": { "name": "One Off" } }),
        )
        .await;
    assert_eq!(single.status, 201, "{}", single.body);
    assert!(single.body["booking"]["series_id"].is_null());

    // The audit log records the series (codes and ids only).
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    let row = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["entity"] == "series" && a["action"] == "create")
        .cloned()
        .expect("series audit row");
    assert_eq!(row["entity_id"], series_id.as_str());
    assert!(!row.to_string().contains("Robin"), "{row}");
}

/// A clinic with a course of six Tuesdays; the fifth is taken by another patient, the
/// third hits the practitioner's time off and the second a clinic closure.
struct Blocked {
    app: TestApp,
    admin: String,
    practitioner: String,
    service: String,
    first_start: String,
    starts: Vec<DateTime<Utc>>,
}

async fn blocked_course() -> Blocked {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    // Mid-winter: no clock change in the six weeks, so 10:00 local is 10:00Z.
    let year = Utc::now().year() + 1;
    let mut first = NaiveDate::from_ymd_opt(year, 1, 5).expect("date");
    while first.weekday() != Weekday::Tue {
        first += Duration::days(1);
    }
    let starts: Vec<DateTime<Utc>> = (0..6)
        .map(|k| {
            (first + Duration::weeks(k))
                .and_hms_opt(10, 0, 0)
                .expect("time")
                .and_utc()
        })
        .collect();
    let other = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": (starts[4] + Duration::minutes(30)).to_rfc3339(),
                    "patient": { "name": "Someone Else", "email": "else@example.com" } }),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.body);
    Blocked {
        app,
        admin,
        practitioner,
        service,
        first_start: starts[0].to_rfc3339(),
        starts,
    }
}

impl Blocked {
    async fn block_weeks_two_and_three(&self) {
        let closure = self
            .app
            .post_as(
                &self.admin,
                "/api/v1/staff/closures",
                json!({ "starts_at": self.starts[1] - Duration::hours(1),
                        "ends_at": self.starts[1] + Duration::hours(3), "reason": "Staff training" }),
            )
            .await;
        assert_eq!(closure.status, 201, "{}", closure.body);
        let away = self
            .app
            .post_as(
                &self.admin,
                &format!("/api/v1/staff/practitioners/{}/time-off", self.practitioner),
                json!({ "starts_at": self.starts[2] - Duration::hours(1),
                        "ends_at": self.starts[2] + Duration::hours(3) }),
            )
            .await;
        assert_eq!(away.status, 201, "{}", away.body);
    }

    fn body(&self) -> Value {
        body(&self.service, &self.practitioner, &self.first_start, 6)
    }

    async fn series_rows(&self) -> usize {
        series::Entity::find()
            .all(&self.app.db)
            .await
            .expect("series")
            .len()
    }

    async fn appointments(&self) -> Vec<appointment::Model> {
        appointment::Entity::find()
            .all(&self.app.db)
            .await
            .expect("appointments")
    }
}

#[tokio::test]
async fn every_conflict_is_previewed_with_its_reason() {
    let c = blocked_course().await;
    c.block_weeks_two_and_three().await;
    let preview = c
        .app
        .post_as(&c.admin, "/api/v1/staff/series/preview", c.body())
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let got: Vec<(String, String, Option<String>)> = preview.body["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| {
            (
                o["start"].as_str().expect("start").to_string(),
                o["status"].as_str().expect("status").to_string(),
                o["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    let utc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let expected = vec![
        (utc(c.starts[0]), "free".to_string(), None),
        (
            utc(c.starts[1]),
            "conflict".to_string(),
            Some("closure".to_string()),
        ),
        (
            utc(c.starts[2]),
            "conflict".to_string(),
            Some("time_off".to_string()),
        ),
        (utc(c.starts[3]), "free".to_string(), None),
        (
            utc(c.starts[4]),
            "conflict".to_string(),
            Some("taken".to_string()),
        ),
        (utc(c.starts[5]), "free".to_string(), None),
    ];
    assert_eq!(got, expected);
    // Overrides set time off and closures aside, as for a staff booking; never "taken".
    let overridden = c
        .app
        .post_as(
            &c.admin,
            "/api/v1/staff/series/preview",
            with(c.body(), "overrides", json!(["time_off", "closure"])),
        )
        .await;
    let statuses: Vec<&str> = overridden.body["occurrences"]
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["free", "free", "free", "free", "conflict", "free"]
    );
    // A preview books nothing.
    assert_eq!(c.series_rows().await, 0);
    assert_eq!(c.appointments().await.len(), 1);
}

#[tokio::test]
async fn a_conflict_in_the_fifth_week_is_refused_by_fail_and_nothing_is_written() {
    let c = blocked_course().await;
    let before_mail = outbox(&c.app).await.len();
    let reply = c
        .app
        .post_as(&c.admin, "/api/v1/staff/series", c.body())
        .await;
    let problem = reply.assert_problem(409, "series_conflicts");
    assert_eq!(
        problem["conflicts"],
        json!([{ "start": c.starts[4].to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                 "reason": "taken" }])
    );
    // Explicit "fail" is the same.
    c.app
        .post_as(
            &c.admin,
            "/api/v1/staff/series",
            with(c.body(), "on_conflict", json!("fail")),
        )
        .await
        .assert_problem(409, "series_conflicts");
    assert_eq!(c.series_rows().await, 0);
    assert_eq!(c.appointments().await.len(), 1);
    assert_eq!(outbox(&c.app).await.len(), before_mail);
}

#[tokio::test]
async fn skip_books_the_rest_lists_the_skipped_and_sends_one_recurring_invitation() {
    let c = blocked_course().await;
    let reply = c
        .app
        .post_as(
            &c.admin,
            "/api/v1/staff/series",
            with(c.body(), "on_conflict", json!("skip")),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let series_id = reply.body["series_id"]
        .as_str()
        .expect("series_id")
        .to_string();
    assert_eq!(
        reply.body["skipped"],
        json!([{ "start": c.starts[4].to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                 "reason": "taken" }])
    );
    let booked = ids(&reply);
    assert_eq!(booked.len(), 5);
    let references: Vec<String> = reply.body["bookings"]
        .as_array()
        .expect("bookings")
        .iter()
        .map(|b| b["reference"].as_str().expect("reference").to_string())
        .collect();

    // One confirmation to the patient, listing every date with its own manage link.
    let mail = outbox(&c.app).await;
    let confirmations: Vec<&outbox_message::Model> = mail
        .iter()
        .filter(|m| m.kind == "booking_confirmed" && m.to_address == PATIENT)
        .collect();
    assert_eq!(confirmations.len(), 1, "{mail:?}");
    let confirmation = confirmations[0];
    let links: std::collections::BTreeSet<&str> = confirmation
        .text_body
        .split_whitespace()
        .filter(|w| w.contains("/manage/"))
        .collect();
    assert_eq!(links.len(), 5, "{}", confirmation.text_body);
    for reference in &references {
        assert!(confirmation.text_body.contains(reference.as_str()));
        assert!(confirmation.html_body.contains(reference.as_str()));
    }
    for (k, start) in c.starts.iter().enumerate() {
        let when = start.format("%A %-d %B %Y at 10:00").to_string();
        assert!(confirmation.text_body.contains(&when), "week {k}: {when}");
    }
    // Each link opens its own booking.
    for link in &links {
        let token = link.rsplit('/').next().expect("token");
        let opened = c.app.get(&format!("/api/v1/manage/{token}")).await;
        assert_eq!(opened.status, 200, "{}", opened.body);
        assert!(
            booked.contains(
                &opened.body["booking"]["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            )
        );
    }
    // One reminder per occurrence.
    let reminders = mail
        .iter()
        .filter(|m| m.kind == "reminder" && m.to_address == PATIENT)
        .count();
    assert_eq!(reminders, 5);

    // The invitation: one recurring event, TZID with its VTIMEZONE, RRULE and EXDATE.
    let ics = confirmation.ics.as_deref().expect("an invitation");
    assert_eq!(confirmation.ics_method.as_deref(), Some("REQUEST"));
    let unfolded = icalendar::parser::unfold(ics);
    let cal = icalendar::parser::read_calendar(&unfolded).expect("the invitation parses");
    let tz = props(&cal, "VTIMEZONE");
    assert_eq!(
        prop(&tz, "TZID").map(|p| p.2.as_str()),
        Some("Europe/London")
    );
    let standard = props(&cal, "STANDARD");
    assert_eq!(
        prop(&standard, "TZOFFSETTO").map(|p| p.2.as_str()),
        Some("+0000")
    );
    let event = props(&cal, "VEVENT");
    assert_eq!(
        prop(&event, "UID").map(|p| p.2.clone()),
        Some(format!("series-{series_id}@frontdesk"))
    );
    let dtstart = prop(&event, "DTSTART").expect("DTSTART");
    assert_eq!(tzid(dtstart), Some("Europe/London"));
    assert_eq!(dtstart.2, c.starts[0].format("%Y%m%dT100000").to_string());
    assert_eq!(
        prop(&event, "RRULE").map(|p| p.2.as_str()),
        Some("FREQ=WEEKLY;INTERVAL=1;COUNT=6")
    );
    let exdate = prop(&event, "EXDATE").expect("EXDATE");
    assert_eq!(tzid(exdate), Some("Europe/London"));
    assert_eq!(exdate.2, c.starts[4].format("%Y%m%dT100000").to_string());
    assert!(prop(&event, "RECURRENCE-ID").is_none());
}

#[tokio::test]
async fn a_series_is_validated_field_by_field() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let ok = body(
        &service,
        &practitioner,
        &format!("{}T20:00:00+00:00", in_days(5)),
        3,
    );
    let cases = vec![
        (with(ok.clone(), "until", json!(in_days(30))), "count"),
        (
            {
                let mut b = ok.clone();
                b.as_object_mut().expect("object").remove("count");
                b
            },
            "count",
        ),
        (with(ok.clone(), "count", json!(53)), "count"),
        (with(ok.clone(), "every_weeks", json!(0)), "every_weeks"),
        (
            with(ok.clone(), "first_start", json!("next tuesday")),
            "first_start",
        ),
        (
            {
                let mut b = with(ok.clone(), "until", json!(in_days(1)));
                b.as_object_mut().expect("object").remove("count");
                b
            },
            "until",
        ),
    ];
    for (b, field) in cases {
        for path in ["/api/v1/staff/series", "/api/v1/staff/series/preview"] {
            let reply = app.post_as(&admin, path, b.clone()).await;
            reply.assert_problem(422, "validation_failed");
            assert_eq!(
                reply.error_fields(),
                vec![field.to_string()],
                "{}",
                reply.body
            );
        }
    }
    app.post_as(
        &admin,
        "/api/v1/staff/series",
        with(ok.clone(), "on_conflict", json!("maybe")),
    )
    .await
    .assert_problem(422, "validation_failed");
    // `until` counts the local date inclusively.
    let mut until = ok.clone();
    until.as_object_mut().expect("object").remove("count");
    until["until"] = json!(in_days(19));
    let preview = app
        .post_as(&admin, "/api/v1/staff/series/preview", until)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert_eq!(
        preview.body["occurrences"].as_array().map(Vec::len),
        Some(3)
    );
}

async fn cancel(app: &TestApp, token: &str, id: &str, scope: Option<&str>) -> Reply {
    let mut b = json!({ "reason": "other" });
    if let Some(scope) = scope {
        b["scope"] = json!(scope);
    }
    app.post_as(token, &format!("/api/v1/staff/bookings/{id}/cancel"), b)
        .await
}

async fn statuses(app: &TestApp, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let appt = appointment::Entity::find_by_id(uuid::Uuid::parse_str(id).expect("uuid"))
            .one(&app.db)
            .await
            .expect("query")
            .expect("appointment");
        out.push(appt.status);
    }
    out
}

#[tokio::test]
async fn cancelling_by_scope_cancels_this_the_following_or_all() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = format!("{}T19:00:00+00:00", in_days(3));
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/series",
            body(&service, &practitioner, &start, 6),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let series_id = reply.body["series_id"]
        .as_str()
        .expect("series")
        .to_string();
    let b = ids(&reply);

    // The practitioner's feed shows every occurrence, marked as part of a course.
    let feed = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/feed"),
            json!({}),
        )
        .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let url = feed.body["url"].as_str().expect("url");
    let path = &url[url.find("/api/v1/feeds/").expect("feed path")..];
    let ics = app
        .client
        .get(app.url(path))
        .send()
        .await
        .expect("feed")
        .text()
        .await
        .expect("feed body");
    let unfolded = icalendar::parser::unfold(&ics);
    for id in &b {
        assert!(
            unfolded.contains(&format!("UID:{id}@frontdesk")),
            "{unfolded}"
        );
    }
    assert_eq!(unfolded.matches("Part of a course of treatment").count(), 6);

    let this = cancel(&app, &admin, &b[1], Some("this")).await;
    assert_eq!(this.status, 200, "{}", this.body);
    assert_eq!(this.body, json!({ "cancelled": [b[1]] }));
    assert_eq!(
        statuses(&app, &b).await,
        [
            "confirmed",
            "cancelled",
            "confirmed",
            "confirmed",
            "confirmed",
            "confirmed"
        ]
    );

    let following = cancel(&app, &admin, &b[3], Some("following")).await;
    assert_eq!(following.status, 200, "{}", following.body);
    assert_eq!(following.body, json!({ "cancelled": [b[3], b[4], b[5]] }));
    assert_eq!(
        statuses(&app, &b).await,
        [
            "confirmed",
            "cancelled",
            "confirmed",
            "cancelled",
            "cancelled",
            "cancelled"
        ]
    );

    let all = cancel(&app, &admin, &b[2], Some("all")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let mut cancelled: Vec<String> = all.body["cancelled"]
        .as_array()
        .expect("cancelled")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    cancelled.sort();
    let mut every = b.clone();
    every.sort();
    assert_eq!(cancelled, every);
    assert!(statuses(&app, &b).await.iter().all(|s| s == "cancelled"));
    let row = series::Entity::find_by_id(uuid::Uuid::parse_str(&series_id).expect("uuid"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("series");
    assert_eq!(row.status, "cancelled");

    // The audit log has each scoped cancellation of the series.
    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    let scopes: Vec<String> = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["entity"] == "series" && a["action"] == "cancel")
        .map(|a| {
            a["detail"]["scope"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(scopes.len(), 3, "{}", audit.body);
    for scope in ["this", "following", "all"] {
        assert!(scopes.iter().any(|s| s == scope), "{scopes:?}");
    }

    // A single booking: any scope just cancels it; without a scope, the answer is the
    // booking as before.
    let single = |hour: u32| {
        json!({ "service_id": service, "practitioner_id": practitioner,
                "start": format!("{}T{hour}:00:00+00:00", in_days(4)),
                "patient": { "name": "One Off" } })
    };
    let one = app
        .post_as(&admin, "/api/v1/staff/bookings", single(19))
        .await;
    let one_id = one.body["booking"]["id"].as_str().expect("id").to_string();
    let scoped = cancel(&app, &admin, &one_id, Some("all")).await;
    assert_eq!(scoped.body, json!({ "cancelled": [one_id] }));
    let two = app
        .post_as(&admin, "/api/v1/staff/bookings", single(21))
        .await;
    let two_id = two.body["booking"]["id"].as_str().expect("id").to_string();
    let plain = cancel(&app, &admin, &two_id, None).await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_eq!(plain.body["booking"]["status"], "cancelled");
    assert_eq!(plain.body["booking"]["id"], two_id.as_str());
    cancel(&app, &admin, &two_id, Some("sometimes"))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn cancelling_or_moving_one_occurrence_sends_its_recurrence_id() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = format!("{}T19:00:00+00:00", in_days(3));
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/series",
            body(&service, &practitioner, &start, 4),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let series_id = reply.body["series_id"]
        .as_str()
        .expect("series")
        .to_string();
    let bookings = reply.body["bookings"].as_array().expect("bookings").clone();
    let local = |b: &Value| -> String {
        let t: DateTime<chrono::FixedOffset> =
            DateTime::parse_from_rfc3339(b["local_start"].as_str().expect("local_start"))
                .expect("rfc3339");
        t.format("%Y%m%dT%H%M%S").to_string()
    };
    let id = |b: &Value| b["id"].as_str().expect("id").to_string();

    let cancelled = cancel(&app, &admin, &id(&bookings[1]), Some("this")).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let moved = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{}/reschedule", id(&bookings[2])),
            json!({ "start": (DateTime::parse_from_rfc3339(bookings[2]["start"].as_str().expect("start")).expect("start") + Duration::hours(1)).to_rfc3339() }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);

    let mail = outbox(&app).await;
    let find = |kind: &str, appointment: &str| {
        mail.iter()
            .find(|m| {
                m.kind == kind
                    && m.to_address == PATIENT
                    && m.appointment_id.map(|a| a.to_string()).as_deref() == Some(appointment)
            })
            .and_then(|m| m.ics.clone())
            .unwrap_or_else(|| panic!("{kind} for {appointment}: {mail:?}"))
    };
    for (kind, booking, method) in [
        ("booking_cancelled", &bookings[1], "CANCEL"),
        ("booking_rescheduled", &bookings[2], "REQUEST"),
    ] {
        let ics = find(kind, &id(booking));
        let unfolded = icalendar::parser::unfold(&ics);
        let cal = icalendar::parser::read_calendar(&unfolded).expect("parses");
        let method_prop = cal
            .properties
            .iter()
            .find(|p| p.name == "METHOD")
            .map(|p| p.val.as_str().to_string());
        assert_eq!(method_prop.as_deref(), Some(method));
        assert_eq!(
            prop(&props(&cal, "VTIMEZONE"), "TZID").map(|p| p.2.clone()),
            Some("Europe/London".to_string())
        );
        let event = props(&cal, "VEVENT");
        assert_eq!(
            prop(&event, "UID").map(|p| p.2.clone()),
            Some(format!("series-{series_id}@frontdesk"))
        );
        let rid = prop(&event, "RECURRENCE-ID").expect("RECURRENCE-ID");
        assert_eq!(tzid(rid), Some("Europe/London"));
        // The occurrence as first booked, also for the moved one.
        assert_eq!(rid.2, local(booking));
        assert!(prop(&event, "RRULE").is_none());
    }
}

#[tokio::test]
async fn two_staff_creating_overlapping_series_concurrently_never_double_book() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let reception = app.staff_token(&admin, "reception", None).await;
    for round in 0..3i64 {
        let day = in_days(3 + round);
        let a = with(
            body(&service, &practitioner, &format!("{day}T19:00:00+00:00"), 5),
            "on_conflict",
            json!("skip"),
        );
        // Half an hour later: every occurrence overlaps one of the first series.
        let mut b = body(&service, &practitioner, &format!("{day}T19:30:00+00:00"), 5);
        b["patient"]["email"] = json!(format!("second.{round}@example.com"));
        let (ra, rb) = tokio::join!(
            app.post_as(&admin, "/api/v1/staff/series", a),
            app.post_as(&reception, "/api/v1/staff/series", b),
        );
        let winners = [&ra, &rb].iter().filter(|r| r.status == 201).count();
        assert_eq!(winners, 1, "{} / {}", ra.body, rb.body);
        for r in [&ra, &rb] {
            if r.status != 201 {
                r.assert_problem(409, "series_conflicts");
            }
        }
    }
    let active: Vec<appointment::Model> = appointment::Entity::find()
        .filter(appointment::Column::Status.eq("confirmed"))
        .all(&app.db)
        .await
        .expect("appointments");
    assert_eq!(active.len(), 15);
    for (i, x) in active.iter().enumerate() {
        for y in &active[i + 1..] {
            assert!(
                x.blocked_until <= y.blocked_from || y.blocked_until <= x.blocked_from,
                "double-booked: {} and {}",
                x.starts_at,
                y.starts_at
            );
        }
    }
}

#[tokio::test]
async fn the_spec_documents_the_series_routes_the_scope_and_series_id() {
    let app = spawn_app().await;
    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    let paths = &spec.body["paths"];
    for path in ["/api/v1/staff/series", "/api/v1/staff/series/preview"] {
        assert!(paths[path]["post"].is_object(), "{path}");
    }
    let create = &paths["/api/v1/staff/series"]["post"]["responses"];
    assert!(
        create["201"].is_object() && create["409"].is_object(),
        "{create}"
    );
    let schemas = &spec.body["components"]["schemas"];
    assert!(schemas["Booking"]["properties"]["series_id"].is_object());
    assert!(schemas["StaffCancelRequest"]["properties"]["scope"].is_object());
    let cancel = &paths["/api/v1/staff/bookings/{id}/cancel"]["post"]["responses"]["200"];
    let answer = cancel.to_string();
    assert!(answer.contains("CancelAnswer"), "{answer}");
    assert!(schemas["CancelAnswer"]["oneOf"].as_array().map(Vec::len) == Some(2));
}
