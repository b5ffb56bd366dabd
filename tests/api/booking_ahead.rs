//! An online booking settles its reference, token and emails before it takes the write slot;
//! when the slot no longer agrees with what was prepared (a service renamed meanwhile, a
//! reference taken meanwhile), what is stored and sent is what the slot decided. Webhook
//! deliveries written from a cached list of subscribers never name a deleted endpoint.

use chrono::{DateTime, Utc};
use entity::{appointment, outbox_message, webhook_delivery};
use frontdesk::{
    booking::{self, Ahead, Context, NewBooking},
    domain::booking::PatientDetails,
    store,
    webhooks::{self, EventType},
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::helpers::{TestApp, spawn_app};

fn request(service: &str, practitioner: &str, start: &str, email: &str) -> NewBooking {
    let mut errors = Vec::new();
    let patient = PatientDetails::parse("Jo Bloggs", email, None, true, false, &mut errors)
        .expect("valid patient");
    NewBooking {
        service_id: service.parse().expect("uuid"),
        practitioner_id: Some(practitioner.parse().expect("uuid")),
        start: start.parse::<DateTime<Utc>>().expect("instant"),
        patient,
        notes: String::new(),
    }
}

/// Runs the slot's half of an online booking with what `ahead` prepared.
async fn write(app: &TestApp, new: &NewBooking, ahead: Ahead) -> booking::Booked {
    let state = &app.state;
    let txn = state.writer.begin().await.expect("write slot");
    let booked = booking::write_online(
        &txn,
        Context::of(state),
        &state.webhook_subscribers,
        new,
        None,
        ahead,
    )
    .await
    .expect("booked");
    txn.commit().await.expect("commit");
    booked
}

async fn emails_of(app: &TestApp, appointment_id: Uuid) -> Vec<outbox_message::Model> {
    outbox_message::Entity::find()
        .filter(outbox_message::Column::AppointmentId.eq(appointment_id))
        .all(&app.db)
        .await
        .expect("outbox")
}

async fn free_start(app: &TestApp, service: &str, n: usize) -> String {
    let d = in_days(3);
    let free = starts(&slots(app, &format!("service_id={service}&from={d}&to={d}")).await);
    free.get(n).expect("a free slot").clone()
}

#[tokio::test]
async fn emails_prepared_before_a_service_rename_are_written_with_the_new_name() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let start = free_start(&app, &service, 0).await;
    let new = request(&service, &practitioner, &start, "rename@example.com");
    let ahead = Ahead::prepare(
        &app.state.slot_inputs,
        &app.db,
        Context::of(&app.state),
        &new,
        Utc::now(),
    )
    .await
    .expect("prepared");
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "name": "Follow-up assessment" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    let booked = write(&app, &new, ahead).await;
    assert_eq!(booked.details.service.name, "Follow-up assessment");
    let emails = emails_of(&app, booked.details.appointment.id).await;
    assert!(emails.len() >= 2, "{emails:?}");
    for email in &emails {
        assert!(
            email.text_body.contains("Follow-up assessment"),
            "{}: {}",
            email.kind,
            email.text_body
        );
    }
}

#[tokio::test]
async fn a_reference_taken_after_it_was_chosen_is_replaced_everywhere() {
    let app = spawn_app().await;
    let (_, practitioner, service) = clinic_with_one_practitioner(&app).await;
    // A booking whose reference is then made the one the next booking prepared.
    let first = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": free_start(&app, &service, 0).await,
                    "patient": { "name": "Early Bird", "email": "early@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let first_id: Uuid = first.body["booking"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let start = free_start(&app, &service, 4).await;
    let new = request(&service, &practitioner, &start, "late@example.com");
    let ahead = Ahead::prepare(
        &app.state.slot_inputs,
        &app.db,
        Context::of(&app.state),
        &new,
        Utc::now(),
    )
    .await
    .expect("prepared");
    let taken = ahead.reference.clone();
    let mut row = appointment::Entity::find_by_id(first_id)
        .one(&app.db)
        .await
        .expect("read")
        .expect("row")
        .into_active_model();
    row.reference = sea_orm::Set(taken.clone());
    row.update(&app.db).await.expect("take the reference");

    let booked = write(&app, &new, ahead).await;
    let reference = &booked.details.appointment.reference;
    assert_ne!(reference, &taken);
    let stored = store::bookings::find(&app.db, booked.details.appointment.id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(&stored.reference, reference);
    let emails = emails_of(&app, stored.id).await;
    assert!(!emails.is_empty());
    for email in &emails {
        assert!(!email.text_body.contains(&taken), "{}", email.text_body);
    }
    assert!(
        emails
            .iter()
            .any(|e| e.text_body.contains(reference.as_str())),
        "{emails:?}"
    );
}

#[tokio::test]
async fn a_delivery_for_an_endpoint_deleted_since_it_was_listed_is_not_written() {
    let app = spawn_app().await;
    let (admin, _, _) = clinic_with_one_practitioner(&app).await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/webhooks",
            json!({ "url": "http://127.0.0.1:9/hook", "events": ["booking.created"] }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let endpoint: Uuid = reply.body["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let listed = app
        .state
        .webhook_subscribers
        .of(&app.db, EventType::BookingCreated)
        .await
        .expect("subscribers");
    assert_eq!(listed, vec![endpoint]);
    let reply = app
        .delete_as(&admin, &format!("/api/v1/staff/webhooks/{endpoint}"))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    // The deletion cleared the copy...
    let listed_after = app
        .state
        .webhook_subscribers
        .of(&app.db, EventType::BookingCreated)
        .await
        .expect("subscribers");
    assert!(listed_after.is_empty(), "{listed_after:?}");
    // ...and a write from the stale list skips the endpoint instead of failing.
    let written = webhooks::emit_to(
        &app.db,
        &listed,
        Utc::now(),
        EventType::BookingCreated,
        json!({}),
    )
    .await
    .expect("no error for a deleted endpoint");
    assert_eq!(written, 0);
    let deliveries = webhook_delivery::Entity::find()
        .all(&app.db)
        .await
        .expect("deliveries");
    assert!(deliveries.is_empty(), "{deliveries:?}");
}

#[tokio::test]
async fn the_single_statement_tells_a_taken_reference_a_taken_slot_and_a_changed_schedule() {
    let app = spawn_app().await;
    if !app.is_postgres() {
        // The statement is PostgreSQL's; SQLite books through the single writer.
        return;
    }
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": free_start(&app, &service, 0).await,
                    "patient": { "name": "First Patient", "email": "first@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id: Uuid = reply.body["booking"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let existing = store::bookings::find(&app.db, id)
        .await
        .expect("read")
        .expect("row");
    let attempt = |appointment: &appointment::Model, schedule_version: Option<i64>| {
        let appointment = appointment.clone();
        let db = app.db.clone();
        async move {
            let rows = store::online_booking::OnlineRows {
                schedule_version,
                now: Utc::now(),
                idempotency: None,
                new_patient_id: Uuid::new_v4(),
                email: "second@example.com",
                name: "Second Patient",
                phone: None,
                marketing_consent: false,
                limit: 100,
                appointment: &appointment,
                event_detail: json!({}),
                webhook: ("booking.created", "msg_test", "{}"),
                emails: &[],
            };
            store::online_booking::insert(&db, &rows).await
        }
    };
    // The same reference a day later: refused as a taken reference, nothing written.
    let mut later = existing.clone();
    later.id = Uuid::new_v4();
    later.manage_token_hash = None;
    let day = chrono::Duration::days(1);
    later.starts_at += day;
    later.ends_at += day;
    later.blocked_from += day;
    later.blocked_until += day;
    let err = attempt(&later, None)
        .await
        .expect_err("the reference is taken");
    assert!(store::online_booking::is_reference_taken(&err), "{err}");
    assert!(!store::is_overlap_violation(&err), "{err}");
    // A fresh reference at the taken time: refused by the exclusion constraint instead.
    let mut clash = existing.clone();
    clash.id = Uuid::new_v4();
    clash.manage_token_hash = None;
    clash.reference = "FRESH001".into();
    let err = attempt(&clash, None).await.expect_err("the slot is taken");
    assert!(store::is_overlap_violation(&err), "{err}");
    assert!(!store::online_booking::is_reference_taken(&err), "{err}");
    // Neither attempt left a patient, an appointment or an email behind.
    assert!(
        store::patients::find_by_email(&app.db, "second@example.com")
            .await
            .expect("read")
            .is_none()
    );
    // Decided on a schedule that has changed since (any write to the hours moves the
    // version on): refused, nothing written; at the current version it goes in.
    later.reference = "FRESH002".into();
    let read_at = store::online_booking::schedule_version(&app.db)
        .await
        .expect("read")
        .expect("a version on PostgreSQL");
    let reply = app
        .put_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{practitioner}/working-hours"),
            json!({ "intervals": [{ "weekday": "monday", "start": "09:00", "end": "17:00" }] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let err = attempt(&later, Some(read_at))
        .await
        .expect_err("the schedule changed");
    assert!(store::online_booking::is_schedule_changed(&err), "{err}");
    let now_at = store::online_booking::schedule_version(&app.db)
        .await
        .expect("read")
        .expect("a version");
    assert!(now_at > read_at);
    let patient = attempt(&later, Some(now_at)).await.expect("booked");
    assert_eq!(patient.email.as_deref(), Some("second@example.com"));
}
