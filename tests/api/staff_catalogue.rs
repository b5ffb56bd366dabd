//! Staff management of services and practitioners: validation, conflicts, patches and roles.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const SERVICES: &str = "/api/v1/staff/services";
const PRACTITIONERS: &str = "/api/v1/staff/practitioners";

fn a_service() -> Value {
    json!({
        "name": "Sports massage (60 min)",
        "description": "Deep tissue work.\nBring shorts.",
        "category": "sports_massage",
        "duration_minutes": 60,
        "buffer_before_minutes": 5,
        "buffer_after_minutes": 15,
        "price_pence": 6500,
    })
}

/// `base` with `key` set to `value`; `outer.inner` sets `outer` to `{inner: value}`.
fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut body = base.clone();
    match key.split_once('.') {
        Some((outer, inner)) => {
            body[outer] = json!({ inner: value });
        }
        None => body[key] = value,
    }
    body
}

fn without(base: &Value, key: &str) -> Value {
    let mut body = base.clone();
    body.as_object_mut().expect("object").remove(key);
    body
}

/// Rows in a table, read straight from the database.
async fn rows<E: sea_orm::EntityTrait>(app: &TestApp) -> u64
where
    E::Model: Sync,
{
    use sea_orm::PaginatorTrait;
    E::find().count(&app.db).await.expect("count rows")
}

async fn staff_total(app: &TestApp, token: &str, path: &str) -> u64 {
    let reply = app.get_as(token, path).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["total"].as_u64().expect("total")
}

#[tokio::test]
async fn creating_a_service_returns_201_with_location_and_the_staff_object() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Sam Masseur").await;
    let body = with(&a_service(), "practitioner_ids", json!([practitioner]));
    let reply = app.post_as(&admin, SERVICES, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let s = &reply.body;
    let id = s["id"].as_str().expect("id");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/staff/services/{id}").as_str())
    );
    assert_eq!(s["slug"], "sports-massage-60-min");
    assert_eq!(s["name"], "Sports massage (60 min)");
    assert_eq!(s["description"], "Deep tissue work.\nBring shorts.");
    assert_eq!(s["category"], "sports_massage");
    assert_eq!(s["duration_minutes"], 60);
    assert_eq!(s["buffer_before_minutes"], 5);
    assert_eq!(s["buffer_after_minutes"], 15);
    assert_eq!(s["price_pence"], 6500);
    assert_eq!(s["practitioner_ids"], json!([practitioner]));
    assert_eq!(s["active"], true);
    assert_eq!(s["online_bookable"], true);
    assert_eq!(s["slot_step_minutes"], Value::Null);
    assert_eq!(
        s["policy"],
        json!({ "min_notice_minutes": null, "max_advance_days": null,
                "cancel_notice_hours": null, "reschedule_notice_hours": null })
    );

    // What was stored is what was answered, and it is public now.
    let stored = app.get_as(&admin, &format!("{SERVICES}/{id}")).await;
    assert_eq!(&stored.body, s);
    let public = app.get(&format!("/api/v1/services/{id}")).await;
    assert_eq!(public.status, 200);
    assert_eq!(public.body["practitioner_ids"], json!([practitioner]));
}

#[tokio::test]
async fn a_service_can_be_created_with_its_own_policy() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut body = a_service();
    body["slug"] = json!("massage");
    body["slot_step_minutes"] = json!(30);
    body["online_bookable"] = json!(false);
    body["policy"] = json!({ "min_notice_minutes": 1440, "cancel_notice_hours": 48 });
    let reply = app.post_as(&admin, SERVICES, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["slug"], "massage");
    assert_eq!(reply.body["slot_step_minutes"], 30);
    assert_eq!(reply.body["online_bookable"], false);
    assert_eq!(
        reply.body["policy"],
        json!({ "min_notice_minutes": 1440, "max_advance_days": null,
                "cancel_notice_hours": 48, "reschedule_notice_hours": null })
    );
    assert_eq!(app.get("/api/v1/services").await.body, json!([]));
}

#[tokio::test]
async fn bad_services_are_422_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let base = a_service();
    let unknown = uuid::Uuid::new_v4().to_string();
    // (case, body, the field named in `errors`; None where the body does not parse at all
    // and the service can only point at the body)
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "zero duration",
            with(&base, "duration_minutes", json!(0)),
            Some("duration_minutes"),
        ),
        (
            "huge duration",
            with(&base, "duration_minutes", json!(1000)),
            Some("duration_minutes"),
        ),
        (
            "buffer too long",
            with(&base, "buffer_after_minutes", json!(121)),
            Some("buffer_after_minutes"),
        ),
        (
            "negative price",
            with(&base, "price_pence", json!(-100)),
            None,
        ),
        (
            "CRLF in name",
            with(&base, "name", json!("Massage\r\nBcc: x@y.test")),
            Some("name"),
        ),
        (
            "empty name",
            with(&base, "name", json!("   ")),
            Some("name"),
        ),
        (
            "name too long",
            with(&base, "name", json!("x".repeat(121))),
            Some("name"),
        ),
        (
            "bad slug",
            with(&base, "slug", json!("Bad Slug")),
            Some("slug"),
        ),
        (
            "control character in description",
            with(&base, "description", json!("a\u{7}b")),
            Some("description"),
        ),
        (
            "unknown practitioner",
            with(&base, "practitioner_ids", json!([unknown])),
            Some("practitioner_ids[0]"),
        ),
        (
            "zero slot step",
            with(&base, "slot_step_minutes", json!(0)),
            Some("slot_step_minutes"),
        ),
        (
            "zero max advance",
            with(&base, "policy.max_advance_days", json!(0)),
            Some("policy.max_advance_days"),
        ),
        (
            "huge slot step",
            with(&base, "slot_step_minutes", json!(u32::MAX)),
            Some("slot_step_minutes"),
        ),
        (
            "huge notice",
            with(&base, "policy.min_notice_minutes", json!(u32::MAX)),
            Some("policy.min_notice_minutes"),
        ),
        (
            "unknown category",
            with(&base, "category", json!("yoga")),
            None,
        ),
        ("missing name", without(&base, "name"), None),
        ("missing duration", without(&base, "duration_minutes"), None),
        (
            "duration as text",
            with(&base, "duration_minutes", json!("an hour")),
            None,
        ),
        (
            "practitioner ids not a list",
            with(&base, "practitioner_ids", json!("everyone")),
            None,
        ),
    ];
    for (case, body, field) in cases {
        let reply = app.post_as(&admin, SERVICES, body).await;
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
    assert_eq!(staff_total(&app, &admin, SERVICES).await, 0);
    assert_eq!(rows::<entity::service::Entity>(&app).await, 0);
    assert_eq!(rows::<entity::practitioner_service::Entity>(&app).await, 0);
}

#[tokio::test]
async fn several_bad_fields_are_reported_together() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut body = a_service();
    body["name"] = json!("");
    body["duration_minutes"] = json!(0);
    body["price_pence"] = json!(2_000_000);
    let reply = app.post_as(&admin, SERVICES, body).await;
    reply.assert_problem(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    fields.dedup();
    assert_eq!(fields, ["duration_minutes", "name", "price_pence"]);
}

#[tokio::test]
async fn a_taken_service_slug_is_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let first = app.post_as(&admin, SERVICES, a_service()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let mut again = a_service();
    again["name"] = json!("Another name");
    again["slug"] = first.body["slug"].clone();
    app.post_as(&admin, SERVICES, again)
        .await
        .assert_problem(409, "slug_taken");
    // The same name derives the same slug.
    app.post_as(&admin, SERVICES, a_service())
        .await
        .assert_problem(409, "slug_taken");
    // Renaming another service onto it is refused as well.
    let mut other = a_service();
    other["slug"] = json!("other");
    let other = app.post_as(&admin, SERVICES, other).await;
    let other_id = other.body["id"].as_str().expect("id");
    app.patch_as(
        &admin,
        &format!("{SERVICES}/{other_id}"),
        json!({ "slug": first.body["slug"] }),
    )
    .await
    .assert_problem(409, "slug_taken");
    assert_eq!(staff_total(&app, &admin, SERVICES).await, 2);
}

#[tokio::test]
async fn patching_a_service_changes_only_the_given_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let ana = app.create_practitioner(&admin, "Ana Physio").await;
    let ben = app.create_practitioner(&admin, "Ben Physio").await;
    let cal = app.create_practitioner(&admin, "Cal Physio").await;
    let mut body = with(&a_service(), "practitioner_ids", json!([ana, ben]));
    body["slot_step_minutes"] = json!(30);
    body["policy"] = json!({ "min_notice_minutes": 60, "max_advance_days": 30 });
    let created = app.post_as(&admin, SERVICES, body).await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("{SERVICES}/{id}");

    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "name": "Deep tissue massage", "price_pence": 7000,
                    "practitioner_ids": [cal] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"], "Deep tissue massage");
    assert_eq!(reply.body["price_pence"], 7000);
    assert_eq!(reply.body["practitioner_ids"], json!([cal]));
    // Untouched fields stay, including the slug derived from the old name.
    assert_eq!(reply.body["slug"], created.body["slug"]);
    assert_eq!(reply.body["duration_minutes"], 60);
    assert_eq!(reply.body["slot_step_minutes"], 30);
    assert_eq!(reply.body["policy"]["min_notice_minutes"], 60);

    // null resets an override; an absent field keeps it.
    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "slot_step_minutes": null, "policy": { "min_notice_minutes": null } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["slot_step_minutes"], Value::Null);
    assert_eq!(reply.body["policy"]["min_notice_minutes"], Value::Null);
    assert_eq!(reply.body["policy"]["max_advance_days"], 30);

    // The practitioners' side agrees with the replaced links.
    let cal_record = app.get_as(&admin, &format!("{PRACTITIONERS}/{cal}")).await;
    assert_eq!(cal_record.body["service_ids"], json!([id]));
    let ana_record = app.get_as(&admin, &format!("{PRACTITIONERS}/{ana}")).await;
    assert_eq!(ana_record.body["service_ids"], json!([]));

    // An empty list removes everyone.
    let reply = app
        .patch_as(&admin, &path, json!({ "practitioner_ids": [] }))
        .await;
    assert_eq!(reply.body["practitioner_ids"], json!([]));
    let stored = app.get_as(&admin, &path).await;
    assert_eq!(stored.body, reply.body);
}

#[tokio::test]
async fn a_bad_patch_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = app.post_as(&admin, SERVICES, a_service()).await;
    let path = format!("{SERVICES}/{}", created.body["id"].as_str().expect("id"));
    for (patch, field) in [
        (json!({ "duration_minutes": 0 }), "duration_minutes"),
        (json!({ "name": "Bad\nname" }), "name"),
        (json!({ "slug": "Bad Slug" }), "slug"),
        (json!({ "slot_step_minutes": 1 }), "slot_step_minutes"),
        (
            json!({ "practitioner_ids": [uuid::Uuid::new_v4()] }),
            "practitioner_ids[0]",
        ),
        (
            json!({ "name": "Fine name", "policy": { "max_advance_days": 0 } }),
            "policy.max_advance_days",
        ),
    ] {
        let reply = app.patch_as(&admin, &path, patch.clone()).await;
        reply.assert_problem(422, "validation_failed");
        assert!(
            reply.error_fields().iter().any(|f| f == field),
            "{patch}: expected {field} in {}",
            reply.body
        );
    }
    let stored = app.get_as(&admin, &path).await;
    assert_eq!(stored.body, created.body);
}

#[tokio::test]
async fn unknown_services_are_404_for_staff() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [format!("{SERVICES}/{unknown}"), format!("{SERVICES}/nope")] {
        app.get_as(&admin, &path)
            .await
            .assert_problem(404, "not_found");
        app.patch_as(&admin, &path, json!({ "name": "X" }))
            .await
            .assert_problem(404, "not_found");
        app.delete_as(&admin, &path)
            .await
            .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn the_staff_list_includes_inactive_services_and_pages() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let a = app.create_service(&admin, "Alpha", &[]).await;
    app.create_service(&admin, "Beta", &[]).await;
    app.create_service(&admin, "Gamma", &[]).await;
    app.delete_as(&admin, &format!("{SERVICES}/{a}")).await;

    let reply = app.get_as(&admin, &format!("{SERVICES}?per_page=2")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["total"], 3);
    assert_eq!(reply.body["page"], 1);
    assert_eq!(reply.body["per_page"], 2);
    assert_eq!(reply.body["items"].as_array().expect("items").len(), 2);
    let page2 = app
        .get_as(&admin, &format!("{SERVICES}?per_page=2&page=2"))
        .await;
    assert_eq!(page2.body["items"].as_array().expect("items").len(), 1);
    let all = app.get_as(&admin, SERVICES).await;
    let alpha = all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["id"] == a.as_str())
        .expect("inactive service listed");
    assert_eq!(alpha["active"], false);

    for (query, field) in [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        ("page=two", "page"),
    ] {
        let reply = app.get_as(&admin, &format!("{SERVICES}?{query}")).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(reply.error_fields(), [field], "{query}");
    }
    // A page past the end is empty, however far past.
    for page in [3, u64::MAX] {
        let reply = app
            .get_as(&admin, &format!("{SERVICES}?page={page}&per_page=100"))
            .await;
        assert_eq!(reply.status, 200, "page {page}: {}", reply.body);
        assert_eq!(reply.body["items"], json!([]));
        assert_eq!(reply.body["total"], 3);
    }
}

#[tokio::test]
async fn repeated_ids_in_links_are_stored_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let ana = app.create_practitioner(&admin, "Ana Physio").await;
    let ben = app.create_practitioner(&admin, "Ben Physio").await;
    let mut pair = [ana.clone(), ben.clone()];
    pair.sort();

    let body = with(&a_service(), "practitioner_ids", json!([ben, ana, ben]));
    let created = app.post_as(&admin, SERVICES, body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["practitioner_ids"], json!(pair));
    let id = created.body["id"].as_str().expect("id").to_string();
    let stored = app.get_as(&admin, &format!("{SERVICES}/{id}")).await;
    assert_eq!(stored.body, created.body);

    let patched = app
        .patch_as(
            &admin,
            &format!("{SERVICES}/{id}"),
            json!({ "practitioner_ids": [ana, ana] }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["practitioner_ids"], json!([ana]));

    let created = app
        .post_as(
            &admin,
            PRACTITIONERS,
            json!({ "name": "Cal Physio", "discipline": "other", "service_ids": [id, id] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["service_ids"], json!([id]));
    let cal = created.body["id"].as_str().expect("id");
    let patched = app
        .patch_as(
            &admin,
            &format!("{PRACTITIONERS}/{cal}"),
            json!({ "service_ids": [id, id, id] }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["service_ids"], json!([id]));
    let public = app.get(&format!("/api/v1/services/{id}")).await;
    let mut expected = vec![ana.clone(), cal.to_string()];
    expected.sort();
    assert_eq!(public.body["practitioner_ids"], json!(expected));
}

#[tokio::test]
async fn only_admins_may_change_the_catalogue() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let service = app
        .create_service(&admin, "Assessment", &[&practitioner])
        .await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    let service_path = format!("{SERVICES}/{service}");
    for token in [&reception, &own] {
        app.post_as(token, SERVICES, a_service())
            .await
            .assert_problem(403, "forbidden");
        app.patch_as(token, &service_path, json!({ "price_pence": 1 }))
            .await
            .assert_problem(403, "forbidden");
        app.delete_as(token, &service_path)
            .await
            .assert_problem(403, "forbidden");
        app.post_as(
            token,
            PRACTITIONERS,
            json!({ "name": "New Person", "discipline": "other" }),
        )
        .await
        .assert_problem(403, "forbidden");
        app.patch_as(
            token,
            &format!("{PRACTITIONERS}/{practitioner}"),
            json!({ "name": "Renamed" }),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    // Staff of every role may read the services.
    for token in [&reception, &own] {
        assert_eq!(app.get_as(token, &service_path).await.status, 200);
        assert_eq!(staff_total(&app, token, SERVICES).await, 1);
    }
    let stored = app.get_as(&admin, &service_path).await;
    assert_eq!(stored.body["price_pence"], 6500);
    assert_eq!(stored.body["active"], true);
    assert_eq!(staff_total(&app, &admin, PRACTITIONERS).await, 1);
}

#[tokio::test]
async fn the_catalogue_cannot_be_changed_without_a_token() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let service = app.create_service(&admin, "Assessment", &[]).await;
    let path = format!("{SERVICES}/{service}");
    app.post(SERVICES, a_service())
        .await
        .assert_problem(401, "unauthorized");
    app.send(
        reqwest::Method::PATCH,
        &path,
        None,
        Some(json!({ "price_pence": 1 })),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.send(reqwest::Method::DELETE, &path, None, None)
        .await
        .assert_problem(401, "unauthorized");
    app.post(PRACTITIONERS, json!({ "name": "X", "discipline": "other" }))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(app.get_as(&admin, &path).await.body["price_pence"], 6500);
}

#[tokio::test]
async fn creating_a_practitioner_returns_201_with_the_staff_object() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let service = app.create_service(&admin, "Assessment", &[]).await;
    let reply = app
        .post_as(
            &admin,
            PRACTITIONERS,
            json!({ "name": "Zoë O'Neill", "discipline": "pilates_instructor",
                    "title": "Pilates instructor", "bio": "Mat and reformer.\nBeginners welcome.",
                    "email": "Zoe@Clinic.test", "service_ids": [service] }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let p = &reply.body;
    let id = p["id"].as_str().expect("id");
    assert_eq!(
        reply.header("location"),
        Some(format!("{PRACTITIONERS}/{id}").as_str())
    );
    assert_eq!(p["name"], "Zoë O'Neill");
    assert_eq!(p["slug"], "zo-o-neill");
    assert_eq!(p["discipline"], "pilates_instructor");
    assert_eq!(p["email"], "zoe@clinic.test");
    assert_eq!(p["active"], true);
    assert_eq!(p["online_bookable"], true);
    assert_eq!(p["service_ids"], json!([service]));
    let stored = app.get_as(&admin, &format!("{PRACTITIONERS}/{id}")).await;
    assert_eq!(&stored.body, p);
    let service_record = app.get_as(&admin, &format!("{SERVICES}/{service}")).await;
    assert_eq!(service_record.body["practitioner_ids"], json!([id]));
}

#[tokio::test]
async fn bad_practitioners_are_422_and_nothing_is_created() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let base = json!({ "name": "Pat Physio", "discipline": "physiotherapist" });
    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        (
            "CRLF in name",
            with(&base, "name", json!("Pat\r\nBcc: x@y.test")),
            Some("name"),
        ),
        ("empty name", with(&base, "name", json!("")), Some("name")),
        (
            "bad slug",
            with(&base, "slug", json!("Bad Slug")),
            Some("slug"),
        ),
        (
            "bad email",
            with(&base, "email", json!("pat at clinic")),
            Some("email"),
        ),
        (
            "line break in title",
            with(&base, "title", json!("Physio\nBoss")),
            Some("title"),
        ),
        (
            "unknown service",
            with(&base, "service_ids", json!([uuid::Uuid::new_v4()])),
            Some("service_ids[0]"),
        ),
        (
            "unknown discipline",
            with(&base, "discipline", json!("wizard")),
            None,
        ),
        ("missing discipline", without(&base, "discipline"), None),
    ];
    for (case, body, field) in cases {
        let reply = app.post_as(&admin, PRACTITIONERS, body).await;
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
    assert_eq!(staff_total(&app, &admin, PRACTITIONERS).await, 0);
    assert_eq!(rows::<entity::practitioner::Entity>(&app).await, 0);
}

#[tokio::test]
async fn a_taken_practitioner_slug_is_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_practitioner(&admin, "Pat Physio").await;
    app.post_as(
        &admin,
        PRACTITIONERS,
        json!({ "name": "Pat Physio", "discipline": "other" }),
    )
    .await
    .assert_problem(409, "slug_taken");
    assert_eq!(staff_total(&app, &admin, PRACTITIONERS).await, 1);
}

#[tokio::test]
async fn patching_a_practitioner_changes_the_given_fields() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let first = app.create_service(&admin, "First", &[]).await;
    let second = app.create_service(&admin, "Second", &[]).await;
    let reply = app
        .post_as(
            &admin,
            PRACTITIONERS,
            json!({ "name": "Pat Physio", "discipline": "physiotherapist",
                    "email": "pat@clinic.test", "service_ids": [first] }),
        )
        .await;
    let id = reply.body["id"].as_str().expect("id").to_string();
    let path = format!("{PRACTITIONERS}/{id}");
    let reply = app
        .patch_as(
            &admin,
            &path,
            json!({ "title": "Senior Physiotherapist", "discipline": "sports_therapist",
                    "email": null, "service_ids": [second] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["title"], "Senior Physiotherapist");
    assert_eq!(reply.body["discipline"], "sports_therapist");
    assert_eq!(reply.body["email"], Value::Null);
    assert_eq!(reply.body["service_ids"], json!([second]));
    assert_eq!(reply.body["name"], "Pat Physio");
    assert_eq!(app.get_as(&admin, &path).await.body, reply.body);

    for (patch, field) in [
        (json!({ "name": "Pat\nPhysio" }), "name"),
        (json!({ "email": "nope" }), "email"),
        (
            json!({ "service_ids": [uuid::Uuid::new_v4()] }),
            "service_ids[0]",
        ),
    ] {
        let bad = app.patch_as(&admin, &path, patch.clone()).await;
        bad.assert_problem(422, "validation_failed");
        assert!(
            bad.error_fields().iter().any(|f| f == field),
            "{patch}: {}",
            bad.body
        );
    }
    assert_eq!(app.get_as(&admin, &path).await.body, reply.body);
}

#[tokio::test]
async fn a_practitioner_sees_only_themself() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = app.create_practitioner(&admin, "Pat Physio").await;
    let other = app.create_practitioner(&admin, "Olly Other").await;
    let token = app.staff_token(&admin, "practitioner", Some(&me)).await;

    let list = app.get_as(&token, PRACTITIONERS).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["total"], 1);
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], me.as_str());

    assert_eq!(
        app.get_as(&token, &format!("{PRACTITIONERS}/{me}"))
            .await
            .status,
        200
    );
    app.get_as(&token, &format!("{PRACTITIONERS}/{other}"))
        .await
        .assert_problem(403, "forbidden");

    // Reception sees the whole team.
    let reception = app.staff_token(&admin, "reception", None).await;
    assert_eq!(staff_total(&app, &reception, PRACTITIONERS).await, 2);
    assert_eq!(
        app.get_as(&reception, &format!("{PRACTITIONERS}/{other}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_service_and_its_practitioner_changed_at_once_both_succeed() {
    // Relinking a service locks its practitioner's row (the link's foreign key) while a change
    // to the practitioner's slug locks that row for update; on PostgreSQL both changes also
    // move the schedule's version on. Taken in that order by each, they would deadlock.
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Amara Okafor").await;
    let service = app
        .create_service(&admin, "Initial assessment", &[&practitioner])
        .await;
    let (service_path, practitioner_path) = (
        format!("/api/v1/staff/services/{service}"),
        format!("/api/v1/staff/practitioners/{practitioner}"),
    );
    for round in 0..10 {
        let relink_body = json!({ "practitioner_ids": [practitioner],
                                  "name": format!("Assessment {round}") });
        let rename_body = json!({ "slug": format!("amara-{round}") });
        let (relink, rename) = tokio::join!(
            app.patch_as(&admin, &service_path, relink_body),
            app.patch_as(&admin, &practitioner_path, rename_body),
        );
        assert_eq!(relink.status, 200, "{}", relink.body);
        assert_eq!(rename.status, 200, "{}", rename.body);
    }
}
