//! Defects mended at the root: a booking-reference collision retries with a fresh reference
//! instead of failing, and the retention purge works through any backlog in bounded batches.

use chrono::{Duration, Utc};
use entity::{appointment, idempotency_key};
use frontdesk::{booking, privacy::retention, store};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, PaginatorTrait};
use serde_json::json;

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_reference_collision_retries_with_a_fresh_reference() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": format!("{}T19:00:00Z", in_days(3)),
                    "patient": { "name": "Taken Reference" } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let taken = reply.body["booking"]["reference"]
        .as_str()
        .expect("reference")
        .to_string();
    let id: uuid::Uuid = reply.body["booking"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let existing = appointment::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .expect("read")
        .expect("row");
    // Another appointment a day later whose first reference collides.
    let mut next = existing.clone();
    next.id = uuid::Uuid::new_v4();
    next.manage_token_hash = None;
    for t in [
        &mut next.starts_at,
        &mut next.ends_at,
        &mut next.blocked_from,
        &mut next.blocked_until,
    ] {
        *t += Duration::days(1);
    }
    let mut offered = vec![taken.clone(), taken.clone(), "FRESH001".to_string()].into_iter();
    let txn = store::begin_write(&app.db).await.expect("begin");
    let row = booking::insert_with_fresh_reference(&txn, next.clone(), || {
        offered.next().unwrap_or_default()
    })
    .await
    .expect("inserted after the collisions");
    txn.commit().await.expect("commit");
    assert_eq!(row.reference, "FRESH001");
    assert_eq!(
        appointment::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        2
    );
    // A generator that never stops colliding gives up with an error, not a panic.
    let mut again = next;
    again.id = uuid::Uuid::new_v4();
    for t in [
        &mut again.starts_at,
        &mut again.ends_at,
        &mut again.blocked_from,
        &mut again.blocked_until,
    ] {
        *t += Duration::days(1);
    }
    let txn = store::begin_write(&app.db).await.expect("begin");
    let failed = booking::insert_with_fresh_reference(&txn, again, || taken.clone()).await;
    assert!(failed.is_err());
    txn.rollback().await.expect("rollback");
}

#[tokio::test]
async fn the_purge_works_through_a_backlog_larger_than_one_batch() {
    let app = spawn_app().await;
    let now = Utc::now();
    let backlog = retention::BATCH as usize * 2 + 7;
    let rows = (0..backlog).map(|i| {
        idempotency_key::Model {
            key: format!("booking:old-{i}"),
            request_hash: String::new(),
            status_code: 201,
            response_body: "{}".into(),
            location: None,
            // Expiring an hour from now, so the purge the app runs at start leaves them.
            created_at: now,
            expires_at: now + Duration::hours(1),
        }
        .into_active_model()
    });
    idempotency_key::Entity::insert_many(rows)
        .exec_without_returning(&app.db)
        .await
        .expect("backlog");
    // One that has not expired stays.
    idempotency_key::Model {
        key: "booking:fresh".into(),
        request_hash: String::new(),
        status_code: 201,
        response_body: "{}".into(),
        location: None,
        created_at: now,
        expires_at: now + Duration::hours(24),
    }
    .into_active_model()
    .insert(&app.db)
    .await
    .expect("fresh key");
    let later = now + Duration::hours(2);
    let purged = retention::purge(&app.state, later).await.expect("purge");
    assert_eq!(purged.idempotency_keys, backlog as u64);
    let left = idempotency_key::Entity::find()
        .all(&app.db)
        .await
        .expect("keys");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, "booking:fresh");
}
