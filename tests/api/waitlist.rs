//! The waitlist: joining and leaving, and the worker (driven with an explicit "now") turning a
//! freed place into an emailed offer after the grace period, the hold, claim, decline and
//! expiry passing the place on, the undo within the grace period, and two workers at once.

use chrono::{DateTime, Duration, Utc};
use entity::{outbox_message, waitlist_offer, webhook_delivery};
use frontdesk::waitlist::{self, Opening, worker};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days, slots};
use crate::helpers::{Reply, TestApp, spawn_app};

/// A clinic with one practitioner (09:00–17:00 every day), one service, and a confirmed
/// booking at 10:00 local five days ahead that the tests free.
struct Clinic {
    app: TestApp,
    admin: String,
    practitioner: String,
    service: String,
    day: chrono::NaiveDate,
    /// The booked slot's start (UTC, RFC 3339).
    start: String,
    booking: String,
}

async fn clinic() -> Clinic {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let day = in_days(5);
    let listed = slots(&app, &format!("service_id={service}&from={day}&to={day}")).await;
    let start = listed
        .iter()
        .find(|s| {
            s["local_start"]
                .as_str()
                .is_some_and(|l| l.contains("T10:00:00"))
        })
        .and_then(|s| s["start"].as_str())
        .expect("a 10:00 slot")
        .to_string();
    let booking = staff_book(
        &app,
        &admin,
        &practitioner,
        &service,
        &start,
        "held@example.com",
    )
    .await
    .body["booking"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    Clinic {
        app,
        admin,
        practitioner,
        service,
        day,
        start,
        booking,
    }
}

async fn staff_book(
    app: &TestApp,
    admin: &str,
    practitioner: &str,
    service: &str,
    start: &str,
    email: &str,
) -> Reply {
    let reply = app
        .post_as(
            admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner, "start": start,
                    "patient": { "name": "Sam Booked", "email": email } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply
}

fn join_body(c: &Clinic, email: &str) -> Value {
    json!({
        "service_id": c.service,
        "from": c.day.to_string(),
        "to": c.day.to_string(),
        "earliest": "10:00",
        "latest": "10:00",
        "patient": { "name": "Wendy Waiting", "email": email },
        "consent": { "privacy": true, "marketing": false }
    })
}

impl Clinic {
    /// Joins for the 10:00 slot; returns the manage token.
    async fn join(&self, email: &str) -> String {
        let reply = self
            .app
            .post("/api/v1/waitlist", join_body(self, email))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.body["entry"]["status"], "waiting");
        let token = reply.body["manage_token"]
            .as_str()
            .expect("token")
            .to_string();
        assert!(
            reply.body["manage_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/waitlist/{token}")))
        );
        token
    }

    async fn cancel(&self) {
        let reply = self
            .app
            .post_as(
                &self.admin,
                &format!("/api/v1/staff/bookings/{}/cancel", self.booking),
                json!({ "reason": "work" }),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    async fn step(&self, now: DateTime<Utc>) -> worker::Step {
        worker::run_once(&self.app.state, now)
            .await
            .expect("waitlist step")
    }

    /// The waitlist emails of `kind`, oldest first.
    async fn emails(&self, kind: &str) -> Vec<outbox_message::Model> {
        outbox_message::Entity::find()
            .filter(outbox_message::Column::Kind.eq(kind))
            .order_by_asc(outbox_message::Column::CreatedAt)
            .all(&self.app.db)
            .await
            .expect("outbox")
    }

    /// The offer token in the latest offer email to `to`.
    async fn offer_token(&self, to: &str) -> String {
        let email = self
            .emails("waitlist_offer")
            .await
            .into_iter()
            .rev()
            .find(|m| m.to_address == to)
            .unwrap_or_else(|| panic!("no offer email to {to}"));
        let (_, rest) = email
            .text_body
            .split_once("/waitlist/offers/")
            .expect("offer link");
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    async fn offers(&self) -> Vec<waitlist_offer::Model> {
        waitlist_offer::Entity::find()
            .order_by_asc(waitlist_offer::Column::CreatedAt)
            .all(&self.app.db)
            .await
            .expect("offers")
    }

    async fn entry_status(&self, token: &str) -> String {
        let reply = self.app.get(&format!("/api/v1/waitlist/{token}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["entry"]["status"]
            .as_str()
            .expect("status")
            .to_string()
    }

    async fn listed(&self) -> bool {
        let day = self.day;
        slots(
            &self.app,
            &format!("service_id={}&from={day}&to={day}", self.service),
        )
        .await
        .iter()
        .any(|s| s["start"] == self.start.as_str())
    }
}

fn after_grace() -> DateTime<Utc> {
    Utc::now() + Duration::seconds(121)
}

#[tokio::test]
async fn a_cancellation_produces_an_offer_after_the_grace_period_and_a_claim_books_it() {
    let c = clinic().await;
    let hook = c
        .app
        .post_as(
            &c.admin,
            "/api/v1/staff/webhooks",
            json!({ "url": "http://127.0.0.1:9/hook",
                    "events": ["waitlist.offered", "waitlist.claimed"] }),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let first = c.join("first@example.com").await;
    let second = c.join("second@example.com").await;
    assert_eq!(c.emails("waitlist_joined").await.len(), 2);
    c.cancel().await;
    // Within the grace period nothing is offered.
    assert_eq!(c.step(Utc::now()).await.offers, 0);
    assert!(c.emails("waitlist_offer").await.is_empty());

    let step = c.step(after_grace()).await;
    assert_eq!(step.offers, 1, "{step:?}");
    let offers = c.emails("waitlist_offer").await;
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0].to_address, "first@example.com",
        "the oldest entry"
    );
    assert_eq!(c.entry_status(&first).await, "offered");
    assert_eq!(c.entry_status(&second).await, "waiting");

    // Held: not listed, and nobody else can book it.
    assert!(!c.listed().await, "a held slot is not listed");
    let refused = c
        .app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": c.service, "start": c.start,
                    "patient": { "name": "Quick Quentin", "email": "quick@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    refused.assert_problem(409, "slot_unavailable");

    let token = c.offer_token("first@example.com").await;
    let offer = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(offer.status, 200, "{}", offer.body);
    assert_eq!(offer.body["offer"]["status"], "open");
    assert_eq!(offer.body["offer"]["slot"]["start"], c.start.as_str());
    assert_eq!(
        offer.body["offer"]["slot"]["service"]["id"],
        c.service.as_str()
    );

    let claimed = c
        .app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await;
    assert_eq!(claimed.status, 201, "{}", claimed.body);
    assert_eq!(claimed.body["booking"]["start"], c.start.as_str());
    assert_eq!(claimed.body["booking"]["status"], "confirmed");
    assert_eq!(
        claimed.body["booking"]["practitioner"]["id"],
        c.practitioner.as_str()
    );
    let manage = claimed.body["manage_token"].as_str().expect("manage token");
    assert_eq!(
        claimed.header("location"),
        Some(format!("/api/v1/manage/{manage}").as_str())
    );
    let managed = c.app.get(&format!("/api/v1/manage/{manage}")).await;
    assert_eq!(managed.status, 200, "{}", managed.body);
    assert_eq!(c.entry_status(&first).await, "claimed");
    let again = c
        .app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await;
    again.assert_problem(409, "offer_closed");
    let shown = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(shown.body["offer"]["status"], "claimed");

    // Both events went out, with ids and the entry's status only.
    let events: Vec<(String, Value)> = webhook_delivery::Entity::find()
        .order_by_asc(webhook_delivery::Column::CreatedAt)
        .all(&c.app.db)
        .await
        .expect("deliveries")
        .into_iter()
        .map(|d| {
            let body: Value = serde_json::from_str(&d.payload).expect("json");
            (d.event_type, body["data"].clone())
        })
        .collect();
    // (The offer was stamped with the worker's clock, ahead of the claim's.)
    let mut types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    types.sort();
    assert_eq!(types, vec!["waitlist.claimed", "waitlist.offered"]);
    let (_, claimed) = events
        .iter()
        .find(|(t, _)| t == "waitlist.claimed")
        .expect("claimed event");
    assert_eq!(claimed["status"], "claimed");
    assert!(claimed["entry_id"].is_string() && claimed["offer_id"].is_string());
    assert!(!claimed.to_string().contains("example.com"));
}

#[tokio::test]
async fn a_decline_passes_the_place_to_the_next_entry() {
    let c = clinic().await;
    let first = c.join("first@example.com").await;
    c.join("second@example.com").await;
    c.cancel().await;
    c.step(after_grace()).await;
    let token = c.offer_token("first@example.com").await;
    let declined = c
        .app
        .post(
            &format!("/api/v1/waitlist/offers/{token}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(declined.status, 200, "{}", declined.body);
    assert_eq!(declined.body["offer"]["status"], "declined");
    assert_eq!(c.entry_status(&first).await, "waiting");
    // Declining again answers the same; claiming a declined offer is refused.
    let again = c
        .app
        .post(
            &format!("/api/v1/waitlist/offers/{token}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    c.app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await
        .assert_problem(409, "offer_closed");

    let step = c.step(after_grace()).await;
    assert_eq!(step.offers, 1, "{step:?}");
    let to: Vec<String> = c
        .emails("waitlist_offer")
        .await
        .into_iter()
        .map(|m| m.to_address)
        .collect();
    assert_eq!(to, vec!["first@example.com", "second@example.com"]);
    // Never back to the entry that declined it.
    let token = c.offer_token("second@example.com").await;
    c.app
        .post(
            &format!("/api/v1/waitlist/offers/{token}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(c.step(after_grace()).await.offers, 0);
    assert!(c.listed().await, "declined by everyone: bookable again");
}

#[tokio::test]
async fn an_expired_offer_passes_the_place_to_the_next_entry() {
    let c = clinic().await;
    let first = c.join("first@example.com").await;
    let second = c.join("second@example.com").await;
    c.cancel().await;
    let offered_at = after_grace();
    c.step(offered_at).await;
    let offers = c.offers().await;
    assert_eq!(offers.len(), 1);
    // Held for hold_minutes (30) after the offer.
    assert_eq!(
        offers[0].expires_at.timestamp(),
        (offered_at + Duration::minutes(30)).timestamp()
    );
    let token = c.offer_token("first@example.com").await;

    // Still held a minute before the end.
    let step = c.step(offered_at + Duration::minutes(29)).await;
    assert_eq!((step.expired_offers, step.offers), (0, 0));
    let step = c.step(offered_at + Duration::minutes(31)).await;
    assert_eq!((step.expired_offers, step.offers), (1, 1), "{step:?}");
    let expired = c.emails("waitlist_offer_expired").await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].to_address, "first@example.com");
    assert_eq!(c.entry_status(&first).await, "waiting");
    assert_eq!(c.entry_status(&second).await, "offered");
    c.app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await
        .assert_problem(409, "offer_closed");
    let shown = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(shown.body["offer"]["status"], "expired");
}

/// The status of the only reminder of an offer sent to `to`.
async fn offer_reminder(c: &Clinic, to: &str) -> outbox_message::Model {
    let reminders: Vec<_> = c
        .emails("waitlist_offer_reminder")
        .await
        .into_iter()
        .filter(|m| m.to_address == to)
        .collect();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    reminders.into_iter().next().expect("one reminder")
}

async fn outbox_step(c: &Clinic, now: DateTime<Utc>) {
    frontdesk::email::worker::run_once_at(&c.app.state, now)
        .await
        .expect("outbox step");
}

#[tokio::test]
async fn an_open_offer_is_reminded_halfway_and_a_closed_one_never() {
    let c = clinic().await;
    c.join("first@example.com").await;
    c.join("second@example.com").await;
    c.cancel().await;
    let offered_at = after_grace();
    c.step(offered_at).await;
    let offer = c.offers().await.into_iter().next().expect("offer");
    // Queued with the offer, due halfway through the 30-minute hold, before it ends.
    let reminder = offer_reminder(&c, "first@example.com").await;
    assert_eq!(
        reminder.next_attempt_at.timestamp(),
        (offered_at + Duration::minutes(15)).timestamp()
    );
    assert!(reminder.next_attempt_at < offer.expires_at);
    let token = c.offer_token("first@example.com").await;
    assert!(
        reminder
            .text_body
            .contains(&format!("/waitlist/offers/{token}")),
        "{}",
        reminder.text_body
    );
    // Not before its time; sent while the offer is open.
    outbox_step(&c, offered_at + Duration::minutes(14)).await;
    assert_eq!(
        offer_reminder(&c, "first@example.com").await.status,
        "pending"
    );
    outbox_step(&c, offered_at + Duration::minutes(16)).await;
    assert_eq!(offer_reminder(&c, "first@example.com").await.status, "sent");

    // Declined: the place passes to the second entry, with its own reminder.
    let declined = c
        .app
        .post(
            &format!("/api/v1/waitlist/offers/{token}/decline"),
            json!({}),
        )
        .await;
    assert_eq!(declined.status, 200, "{}", declined.body);
    let second_at = offered_at + Duration::minutes(17);
    assert_eq!(c.step(second_at).await.offers, 1);
    assert_eq!(
        offer_reminder(&c, "second@example.com").await.status,
        "pending"
    );
    // Claimed before its reminder is due: the reminder is voided, never sent.
    let second = c.offer_token("second@example.com").await;
    let claimed = c
        .app
        .post(
            &format!("/api/v1/waitlist/offers/{second}/claim"),
            json!({}),
        )
        .await;
    assert!(claimed.status.is_success(), "{}", claimed.body);
    outbox_step(&c, second_at + Duration::minutes(20)).await;
    let voided = offer_reminder(&c, "second@example.com").await;
    assert_eq!(voided.status, "void", "{voided:?}");
    assert!(voided.sent_at.is_none());
}

#[tokio::test]
async fn a_place_taken_again_within_the_grace_period_produces_no_offer() {
    let c = clinic().await;
    c.join("first@example.com").await;
    c.cancel().await;
    staff_book(
        &c.app,
        &c.admin,
        &c.practitioner,
        &c.service,
        &c.start,
        "rebooked@example.com",
    )
    .await;
    let step = c.step(after_grace()).await;
    assert_eq!((step.openings, step.offers), (1, 0), "{step:?}");
    assert!(c.emails("waitlist_offer").await.is_empty());
    assert!(c.offers().await.is_empty());
}

#[tokio::test]
async fn no_offer_is_made_within_the_cutoff_of_the_start() {
    let c = clinic().await;
    c.join("first@example.com").await;
    c.cancel().await;
    let start: DateTime<Utc> = c.start.parse().expect("start");
    let step = c.step(start - Duration::minutes(59)).await;
    assert_eq!(step.offers, 0, "{step:?}");
    assert!(c.emails("waitlist_offer").await.is_empty());
}

#[tokio::test]
async fn two_workers_at_once_never_offer_one_place_twice() {
    let c = clinic().await;
    c.join("first@example.com").await;
    c.join("second@example.com").await;
    c.cancel().await;
    // The same place freed twice more, as racing changes could record it.
    let start: DateTime<Utc> = c.start.parse().expect("start");
    let practitioner = c.practitioner.parse().expect("uuid");
    for _ in 0..2 {
        let txn = c.app.state.writer.begin().await.expect("write slot");
        waitlist::record_opening(
            &txn,
            Opening::Slot {
                practitioner_id: practitioner,
                from: start,
                until: start + Duration::hours(1),
            },
            Utc::now(),
        )
        .await
        .expect("opening");
        txn.commit().await.expect("commit");
    }
    let now = after_grace();
    let (a, b) = tokio::join!(
        worker::run_once(&c.app.state, now),
        worker::run_once(&c.app.state, now)
    );
    let (a, b) = (a.expect("first worker"), b.expect("second worker"));
    assert_eq!(a.offers + b.offers, 1, "{a:?} {b:?}");
    assert_eq!(a.openings + b.openings, 3, "{a:?} {b:?}");
    assert_eq!(c.offers().await.len(), 1);
    assert_eq!(c.emails("waitlist_offer").await.len(), 1);
}

#[tokio::test]
async fn an_urgent_entry_is_offered_first() {
    let c = clinic().await;
    c.join("first@example.com").await;
    c.join("urgent@example.com").await;
    let list = c.app.get_as(&c.admin, "/api/v1/staff/waitlist").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 2);
    let urgent = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["patient"]["email"] == "urgent@example.com")
        .and_then(|e| e["id"].as_str())
        .expect("entry")
        .to_string();
    let patched = c
        .app
        .patch_as(
            &c.admin,
            &format!("/api/v1/staff/waitlist/{urgent}"),
            json!({ "urgent": true }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["urgent"], true);
    let list = c
        .app
        .get_as(
            &c.admin,
            &format!("/api/v1/staff/waitlist?service_id={}", c.service),
        )
        .await;
    assert_eq!(list.body["items"][0]["id"], urgent.as_str(), "urgent first");
    c.cancel().await;
    c.step(after_grace()).await;
    let offers = c.emails("waitlist_offer").await;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].to_address, "urgent@example.com");
}

#[tokio::test]
async fn time_off_over_a_held_slot_withdraws_the_offer() {
    let c = clinic().await;
    let first = c.join("first@example.com").await;
    c.cancel().await;
    c.step(after_grace()).await;
    let token = c.offer_token("first@example.com").await;
    let start: DateTime<Utc> = c.start.parse().expect("start");
    let reply = c
        .app
        .post_as(
            &c.admin,
            &format!("/api/v1/staff/practitioners/{}/time-off", c.practitioner),
            json!({ "starts_at": start - Duration::hours(1), "ends_at": start + Duration::hours(2),
                    "reason": "Course" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let shown = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(shown.body["offer"]["status"], "withdrawn");
    assert_eq!(c.entry_status(&first).await, "waiting");
    // The patient hears the place is gone and that they still wait.
    let told = c.emails("waitlist_offer_withdrawn").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].to_address, "first@example.com");
    assert!(
        told[0].text_body.contains("no longer available")
            && told[0].text_body.contains("still on the waiting list"),
        "{}",
        told[0].text_body
    );
    c.app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await
        .assert_problem(409, "offer_closed");
}

#[tokio::test]
async fn leaving_ends_the_entry_and_passes_a_held_place_on() {
    let c = clinic().await;
    let first = c.join("first@example.com").await;
    c.join("second@example.com").await;
    c.cancel().await;
    c.step(after_grace()).await;
    let left = c
        .app
        .post(&format!("/api/v1/waitlist/{first}/leave"), json!({}))
        .await;
    assert_eq!(left.status, 200, "{}", left.body);
    assert_eq!(left.body["entry"]["status"], "left");
    let again = c
        .app
        .post(&format!("/api/v1/waitlist/{first}/leave"), json!({}))
        .await;
    assert_eq!(again.body["entry"]["status"], "left");
    assert_eq!(c.step(after_grace()).await.offers, 1);
    let last = c.emails("waitlist_offer").await;
    assert_eq!(
        last.last().map(|m| m.to_address.as_str()),
        Some("second@example.com")
    );
    c.app
        .get("/api/v1/waitlist/no-such-token")
        .await
        .assert_problem(404, "not_found");
    c.app
        .get("/api/v1/waitlist/offers/no-such-token")
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_join_request_is_checked_field_by_field() {
    let c = clinic().await;
    let good = join_body(&c, "jo@example.com");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        change(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|b| b["from"] = Value::Null), "from"),
        (with(&|b| b["to"] = json!("2001-01-01")), "to"),
        (with(&|b| b["earliest"] = json!("25:00")), "earliest"),
        (with(&|b| b["latest"] = json!("09:00")), "latest"),
        (
            with(&|b| b["service_id"] = json!(uuid::Uuid::new_v4())),
            "service_id",
        ),
        (
            with(&|b| b["class_id"] = json!(uuid::Uuid::new_v4())),
            "class_id",
        ),
        (
            with(&|b| b["practitioner_id"] = json!(uuid::Uuid::new_v4())),
            "practitioner_id",
        ),
        (
            with(&|b| b["consent"]["privacy"] = json!(false)),
            "consent.privacy",
        ),
        (
            with(&|b| b["patient"]["name"] = json!("Jo\r\nBcc: x")),
            "patient.name",
        ),
    ];
    for (body, field) in cases {
        let reply = c.app.post("/api/v1/waitlist", body.clone()).await;
        reply.assert_problem(422, "validation_failed");
        assert!(
            reply.error_fields().iter().any(|f| f == field),
            "{field}: {}",
            reply.body
        );
    }
    // A class id alone names no session yet.
    let reply = c
        .app
        .post(
            "/api/v1/waitlist",
            json!({ "class_id": uuid::Uuid::new_v4(),
                    "patient": { "name": "Jo", "email": "jo@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_practitioner_reads_only_the_waitlist_of_their_own_services() {
    let c = clinic().await;
    c.join("mine@example.com").await;
    let other = c.app.create_practitioner(&c.admin, "Other Physio").await;
    let other_service = c
        .app
        .create_service(&c.admin, "Sports massage", &[&other])
        .await;
    let reply = c
        .app
        .post(
            "/api/v1/waitlist",
            json!({ "service_id": other_service, "from": c.day.to_string(),
                    "to": c.day.to_string(),
                    "patient": { "name": "Olive Other", "email": "other@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let practitioner = c
        .app
        .staff_token(&c.admin, "practitioner", Some(&c.practitioner))
        .await;
    let mine = c.app.get_as(&practitioner, "/api/v1/staff/waitlist").await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["total"], 1, "{}", mine.body);
    assert_eq!(
        mine.body["items"][0]["patient"]["email"],
        "mine@example.com"
    );
    let all = c.app.get_as(&c.admin, "/api/v1/staff/waitlist").await;
    assert_eq!(all.body["total"], 2, "{}", all.body);
}

#[tokio::test]
async fn the_hourly_purge_deletes_entries_and_offers_30_days_after_they_end() {
    let c = clinic().await;
    let first = c.join("first@example.com").await;
    c.join("second@example.com").await;
    c.cancel().await;
    c.step(after_grace()).await;
    c.app
        .post(&format!("/api/v1/waitlist/{first}/leave"), json!({}))
        .await;
    let purge = |days: i64| {
        frontdesk::privacy::retention::purge(&c.app.state, Utc::now() + Duration::days(days))
    };
    let kept = purge(29).await.expect("purge");
    assert_eq!((kept.waitlist_entries, kept.waitlist_offers), (0, 0));
    let purged = purge(31).await.expect("purge");
    assert_eq!(purged.waitlist_entries, 1, "{purged:?}");
    c.app
        .get(&format!("/api/v1/waitlist/{first}"))
        .await
        .assert_problem(404, "not_found");
    // The entry still waiting stays, whatever its age.
    let all = c.app.get_as(&c.admin, "/api/v1/staff/waitlist").await;
    assert_eq!(all.body["total"], 1, "{}", all.body);
    assert!(
        c.offers().await.is_empty(),
        "the withdrawn offer went with its entry"
    );
}

/// A class of one place five days ahead, taught by a new instructor, with its seat taken:
/// (admin, class id, the seat's id).
async fn full_class(app: &TestApp) -> (String, String, String) {
    let admin = app.admin_token().await;
    let instructor = app.create_practitioner(&admin, "Ines Instructor").await;
    let service = crate::classes::class_service(app, &admin, &instructor, 10).await;
    let class = crate::classes::class_at(app, &admin, &service, &instructor, 5, Some(1)).await;
    let seat = crate::classes::book_seat(app, &class, "holder@example.com").await;
    assert_eq!(seat.status, 201, "{}", seat.body);
    let seat = seat.body["seat"]["id"].as_str().expect("seat").to_string();
    (admin, class, seat)
}

/// The places a session holds for open offers.
async fn seats_held(app: &TestApp, class: &str) -> i32 {
    let id: uuid::Uuid = class.parse().expect("uuid");
    entity::class_session::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("session")
        .expect("a session")
        .seats_held
}

async fn join_class(app: &TestApp, class: &str, email: &str) -> String {
    let reply = app
        .post(
            "/api/v1/waitlist",
            json!({ "class_id": class,
                    "patient": { "name": "Cleo Class", "email": email },
                    "consent": { "privacy": true } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["entry"]["class_id"], class);
    reply.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string()
}

#[tokio::test]
async fn a_cancelled_seat_is_offered_held_and_claimed_as_a_seat() {
    let c = clinic().await;
    let (admin, class, seat) = full_class(&c.app).await;
    let first = join_class(&c.app, &class, "first@example.com").await;
    join_class(&c.app, &class, "second@example.com").await;
    let cancelled = c
        .app
        .post_as(
            &admin,
            &format!("/api/v1/staff/seats/{seat}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(c.step(Utc::now()).await.offers, 0, "grace period");
    assert_eq!(c.step(after_grace()).await.offers, 1);
    assert_eq!(c.entry_status(&first).await, "offered");
    assert_eq!(seats_held(&c.app, &class).await, 1);
    // Held: nobody else can take it.
    crate::classes::book_seat(&c.app, &class, "quick@example.com")
        .await
        .assert_problem(409, "class_full");
    let token = c.offer_token("first@example.com").await;
    let offer = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(
        offer.body["offer"]["class"]["id"],
        class.as_str(),
        "{}",
        offer.body
    );
    assert!(offer.body["offer"]["slot"].is_null());
    let claimed = c
        .app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await;
    assert_eq!(claimed.status, 201, "{}", claimed.body);
    assert_eq!(claimed.body["seat"]["class"]["id"], class.as_str());
    assert_eq!(claimed.body["seat"]["status"], "confirmed");
    assert!(claimed.body.get("booking").is_none());
    let manage = claimed.body["manage_token"].as_str().expect("token");
    let managed = c.app.get(&format!("/api/v1/manage/{manage}")).await;
    assert_eq!(managed.body["seat"]["class"]["id"], class.as_str());
    assert_eq!(c.entry_status(&first).await, "claimed");
    assert_eq!(seats_held(&c.app, &class).await, 0);
    crate::classes::assert_capacity_held(&c.app).await;
}

#[tokio::test]
async fn raising_a_class_capacity_offers_the_new_place_and_cancelling_the_class_ends_the_list() {
    let c = clinic().await;
    let (admin, class, _) = full_class(&c.app).await;
    let first = join_class(&c.app, &class, "first@example.com").await;
    let second = join_class(&c.app, &class, "second@example.com").await;
    let raised = c
        .app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}"),
            json!({ "capacity": 2 }),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    assert_eq!(c.step(after_grace()).await.offers, 1);
    assert_eq!(c.entry_status(&first).await, "offered");
    assert_eq!(c.entry_status(&second).await, "waiting");
    let token = c.offer_token("first@example.com").await;
    let cancelled = c
        .app
        .post_as(
            &admin,
            &format!("/api/v1/staff/classes/{class}/cancel"),
            json!({ "reason": "Instructor ill" }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let shown = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(shown.body["offer"]["status"], "withdrawn");
    assert_eq!(c.entry_status(&first).await, "expired");
    assert_eq!(c.entry_status(&second).await, "expired");
    assert_eq!(seats_held(&c.app, &class).await, 0);
    // Only the patient holding the offer is told it is withdrawn, and that the entry ended.
    let told = c.emails("waitlist_offer_withdrawn").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].to_address, "first@example.com");
    assert!(
        told[0].text_body.contains("entry for it has ended")
            && !told[0].text_body.contains("still on the waiting list"),
        "{}",
        told[0].text_body
    );
}

#[tokio::test]
async fn a_moved_booking_frees_its_old_time_for_the_waitlist() {
    let c = clinic().await;
    c.join("first@example.com").await;
    let start: DateTime<Utc> = c.start.parse().expect("start");
    let moved = c
        .app
        .post_as(
            &c.admin,
            &format!("/api/v1/staff/bookings/{}/reschedule", c.booking),
            json!({ "start": start + Duration::days(1) }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(c.step(after_grace()).await.offers, 1);
    let token = c.offer_token("first@example.com").await;
    let offer = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(offer.body["offer"]["slot"]["start"], c.start.as_str());
}

#[tokio::test]
async fn removed_time_off_frees_its_time_for_the_waitlist() {
    let c = clinic().await;
    // The waiting patient wants 10:00 the day after the booking; the practitioner is away.
    let day = c.day.succ_opt().expect("next day");
    let start: DateTime<Utc> = c.start.parse::<DateTime<Utc>>().expect("start") + Duration::days(1);
    let away = c
        .app
        .post_as(
            &c.admin,
            &format!("/api/v1/staff/practitioners/{}/time-off", c.practitioner),
            json!({ "starts_at": start - Duration::hours(2), "ends_at": start + Duration::hours(4),
                    "reason": "Course" }),
        )
        .await;
    assert_eq!(away.status, 201, "{}", away.body);
    let mut body = join_body(&c, "first@example.com");
    body["from"] = json!(day.to_string());
    body["to"] = json!(day.to_string());
    let joined = c.app.post("/api/v1/waitlist", body).await;
    assert_eq!(joined.status, 201, "{}", joined.body);
    let id = away.body["id"].as_str().expect("id");
    let removed = c
        .app
        .delete_as(&c.admin, &format!("/api/v1/staff/time-off/{id}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(c.step(after_grace()).await.offers, 1);
    let token = c.offer_token("first@example.com").await;
    let offer = c.app.get(&format!("/api/v1/waitlist/offers/{token}")).await;
    assert_eq!(
        offer.body["offer"]["slot"]["start"]
            .as_str()
            .and_then(|s| s.parse::<DateTime<Utc>>().ok()),
        Some(start)
    );
}

#[tokio::test]
async fn entries_expire_when_their_dates_or_their_class_have_passed() {
    let c = clinic().await;
    let slot_entry = c.join("dates@example.com").await;
    let (_, class, _) = full_class(&c.app).await;
    let class_entry = join_class(&c.app, &class, "class@example.com").await;
    let starts: DateTime<Utc> = c
        .app
        .get(&format!("/api/v1/classes?from={0}&to={0}", c.day))
        .await
        .body["items"][0]["start"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the class's start");
    let step = c.step(starts - Duration::minutes(1)).await;
    assert_eq!(step.expired_entries, 0, "{step:?}");
    assert_eq!(
        c.step(starts + Duration::minutes(1)).await.expired_entries,
        1
    );
    assert_eq!(c.entry_status(&class_entry).await, "expired");
    assert_eq!(c.entry_status(&slot_entry).await, "waiting");
    let after = Utc::now() + Duration::days(7);
    assert_eq!(c.step(after).await.expired_entries, 1);
    assert_eq!(c.entry_status(&slot_entry).await, "expired");
}
