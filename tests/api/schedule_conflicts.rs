//! Time off and closures over confirmed bookings: `on_conflict` reject (409, nothing
//! written), cancel (same transaction: bookings cancelled as `clinic_unavailable`, patients
//! emailed with a link to book again and a CANCEL, reminders voided) and keep (audited).

use entity::{appointment, outbox_message};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{TestApp, spawn_app};

fn at(days: i64, clock: &str) -> String {
    format!("{}T{clock}:00Z", in_days(days))
}

#[derive(Clone, Copy)]
enum Kind {
    TimeOff,
    Closure,
}

struct Clinic {
    app: TestApp,
    admin: String,
    practitioner: String,
    /// A confirmed booking inside the period (day 3, 10:00) and one outside (day 4).
    inside: String,
    outside: String,
}

async fn clinic() -> Clinic {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let mut ids = Vec::new();
    for (days, email) in [(3, "inside@example.com"), (4, "outside@example.com")] {
        let reply = app
            .post_as(
                &admin,
                "/api/v1/staff/bookings",
                json!({ "service_id": service, "practitioner_id": practitioner,
                        "start": at(days, "10:00"),
                        "patient": { "name": "Sam Booked", "email": email } }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(
            reply.body["booking"]["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    Clinic {
        app,
        admin,
        practitioner,
        outside: ids.pop().expect("outside"),
        inside: ids.pop().expect("inside"),
    }
}

impl Clinic {
    async fn add(&self, kind: Kind, on_conflict: Option<&str>) -> crate::helpers::Reply {
        let mut body = json!({ "starts_at": at(3, "08:00"), "ends_at": at(3, "18:00"),
                               "reason": "Away" });
        if let Some(mode) = on_conflict {
            body["on_conflict"] = json!(mode);
        }
        let path = match kind {
            Kind::TimeOff => format!("/api/v1/staff/practitioners/{}/time-off", self.practitioner),
            Kind::Closure => "/api/v1/staff/closures".to_string(),
        };
        self.app.post_as(&self.admin, &path, body).await
    }

    async fn listed(&self, kind: Kind) -> Vec<Value> {
        let path = match kind {
            Kind::TimeOff => format!("/api/v1/staff/practitioners/{}/time-off", self.practitioner),
            Kind::Closure => "/api/v1/staff/closures".to_string(),
        };
        let reply = self.app.get_as(&self.admin, &path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["items"].as_array().expect("items").clone()
    }

    async fn booking(&self, id: &str) -> appointment::Model {
        let id: uuid::Uuid = id.parse().expect("uuid");
        appointment::Entity::find_by_id(id)
            .one(&self.app.db)
            .await
            .expect("read")
            .expect("booking")
    }

    async fn emails_of(&self, id: &str) -> Vec<outbox_message::Model> {
        let id: uuid::Uuid = id.parse().expect("uuid");
        outbox_message::Entity::find()
            .filter(outbox_message::Column::AppointmentId.eq(id))
            .all(&self.app.db)
            .await
            .expect("outbox")
    }
}

async fn rejects_by_default_and_writes_nothing(kind: Kind) {
    let c = clinic().await;
    for mode in [None, Some("reject")] {
        let reply = c.add(kind, mode).await;
        let body = reply.assert_problem(409, "conflicts_with_bookings");
        let conflicts = body["conflicts"].as_array().expect("conflicts");
        assert_eq!(conflicts.len(), 1, "{body}");
        let inside = c.booking(&c.inside).await;
        assert_eq!(conflicts[0]["booking_id"], c.inside.as_str());
        assert_eq!(conflicts[0]["reference"], inside.reference.as_str());
        assert_eq!(conflicts[0]["practitioner_id"], c.practitioner.as_str());
        let start: chrono::DateTime<chrono::Utc> = conflicts[0]["start"]
            .as_str()
            .expect("start")
            .parse()
            .expect("RFC 3339");
        assert_eq!(start, inside.starts_at);
    }
    assert!(c.listed(kind).await.is_empty());
    assert_eq!(c.booking(&c.inside).await.status, "confirmed");
    // Outside any booking the default creates it.
    let path = match kind {
        Kind::TimeOff => format!("/api/v1/staff/practitioners/{}/time-off", c.practitioner),
        Kind::Closure => "/api/v1/staff/closures".to_string(),
    };
    let free = c
        .app
        .post_as(
            &c.admin,
            &path,
            json!({ "starts_at": at(9, "08:00"), "ends_at": at(9, "18:00") }),
        )
        .await;
    assert_eq!(free.status, 201, "{}", free.body);
    assert_eq!(free.body["cancelled"], json!([]));
}

async fn cancel_cancels_emails_and_voids_reminders(kind: Kind) {
    let c = clinic().await;
    let reminder_before = c
        .emails_of(&c.inside)
        .await
        .into_iter()
        .find(|m| m.kind == "reminder")
        .expect("a pending reminder before");
    assert_eq!(reminder_before.status, "pending");
    let reply = c.add(kind, Some("cancel")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["cancelled"], json!([c.inside]));
    assert_eq!(reply.body["reason"], "Away");
    assert!(reply.body["id"].is_string());
    assert_eq!(c.listed(kind).await.len(), 1);
    let inside = c.booking(&c.inside).await;
    assert_eq!(inside.status, "cancelled");
    assert_eq!(inside.cancel_reason.as_deref(), Some("clinic_unavailable"));
    assert_eq!(c.booking(&c.outside).await.status, "confirmed");
    let emails = c.emails_of(&c.inside).await;
    let cancellation = emails
        .iter()
        .find(|m| m.kind == "booking_cancelled")
        .expect("the patient is emailed");
    assert_eq!(cancellation.to_address, "inside@example.com");
    let book_again = format!("{}/book", c.app.settings.server.public_url);
    assert!(
        cancellation.text_body.contains(&book_again),
        "{}",
        cancellation.text_body
    );
    let ics = cancellation.ics.as_deref().expect("an invitation");
    assert!(ics.contains("METHOD:CANCEL"), "{ics}");
    let reminder = emails
        .iter()
        .find(|m| m.id == reminder_before.id)
        .expect("reminder row");
    assert_eq!(reminder.status, "void");
    assert!(
        emails
            .iter()
            .all(|m| m.kind != "reminder" || m.status == "void"),
        "{emails:?}"
    );
    // The booking's history and the audit log say why.
    let view = c
        .app
        .get_as(&c.admin, &format!("/api/v1/staff/bookings/{}", c.inside))
        .await;
    assert_eq!(view.body["cancel_reason"], "clinic_unavailable");
}

async fn keep_keeps_and_audits(kind: Kind) {
    let c = clinic().await;
    let reply = c.add(kind, Some("keep")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["cancelled"], json!([]));
    assert_eq!(c.booking(&c.inside).await.status, "confirmed");
    assert!(
        c.emails_of(&c.inside)
            .await
            .iter()
            .all(|m| m.kind != "booking_cancelled")
    );
    let id = reply.body["id"].as_str().expect("id");
    let audit = c
        .app
        .get_as(&c.admin, "/api/v1/staff/audit?per_page=100")
        .await;
    let row = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["entity_id"] == id && a["action"] == "create")
        .cloned()
        .expect("an audit row");
    assert_eq!(row["detail"]["on_conflict"], "keep", "{row}");
    assert_eq!(row["detail"]["bookings_inside"], json!([c.inside]), "{row}");
}

#[tokio::test]
async fn time_off_over_a_booking_is_refused_by_default() {
    rejects_by_default_and_writes_nothing(Kind::TimeOff).await;
}

#[tokio::test]
async fn a_closure_over_a_booking_is_refused_by_default() {
    rejects_by_default_and_writes_nothing(Kind::Closure).await;
}

#[tokio::test]
async fn time_off_with_cancel_cancels_and_emails_the_patient() {
    cancel_cancels_emails_and_voids_reminders(Kind::TimeOff).await;
}

#[tokio::test]
async fn a_closure_with_cancel_cancels_and_emails_the_patient() {
    cancel_cancels_emails_and_voids_reminders(Kind::Closure).await;
}

#[tokio::test]
async fn time_off_with_keep_leaves_the_booking_and_audits_it() {
    keep_keeps_and_audits(Kind::TimeOff).await;
}

#[tokio::test]
async fn a_closure_with_keep_leaves_the_booking_and_audits_it() {
    keep_keeps_and_audits(Kind::Closure).await;
}

#[tokio::test]
async fn an_unknown_on_conflict_is_a_problem_not_a_500() {
    let c = clinic().await;
    let reply = c.add(Kind::Closure, Some("ignore")).await;
    assert!(
        reply.status == 400 || reply.status == 422,
        "{} {}",
        reply.status,
        reply.body
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}
