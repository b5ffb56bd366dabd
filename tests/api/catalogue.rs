//! The public catalogue: the clinic, its online-bookable services and its team.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn demo_app() -> TestApp {
    spawn_app_with(|s| s.demo.seed = true).await
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect()
}

fn id_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list of ids")
        .iter()
        .map(|id| id.as_str().expect("id").to_string())
        .collect()
}

const CATEGORIES: [&str; 5] = [
    "physio",
    "sports_massage",
    "personal_training",
    "pilates",
    "other",
];

const DISCIPLINES: [&str; 6] = [
    "physiotherapist",
    "sports_therapist",
    "massage_therapist",
    "personal_trainer",
    "pilates_instructor",
    "other",
];

#[tokio::test]
async fn the_demo_services_are_listed_with_every_field() {
    let app = demo_app().await;
    let reply = app.get("/api/v1/services").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let services = reply.body.as_array().expect("a list");
    assert!(services.len() >= 5, "{}", reply.body);
    for s in services {
        let obj = s.as_object().expect("object");
        for field in [
            "id",
            "slug",
            "name",
            "description",
            "category",
            "duration_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "price_pence",
            "practitioner_ids",
        ] {
            assert!(obj.contains_key(field), "{field} missing from {s}");
        }
        // Staff-only fields stay on the staff side.
        for field in ["active", "online_bookable", "policy"] {
            assert!(!obj.contains_key(field), "{field} leaked into {s}");
        }
        assert!(uuid::Uuid::parse_str(s["id"].as_str().expect("id")).is_ok());
        assert!(CATEGORIES.contains(&s["category"].as_str().expect("category")));
        assert!(s["duration_minutes"].as_u64().expect("duration") >= 5);
        assert!(s["price_pence"].as_u64().is_some());
        assert!(
            !id_list(&s["practitioner_ids"]).is_empty(),
            "every demo service has someone offering it: {s}"
        );
    }
    let physio = services
        .iter()
        .find(|s| s["slug"] == "physio-initial-assessment")
        .expect("demo physio assessment");
    assert_eq!(physio["category"], "physio");
    assert_eq!(physio["duration_minutes"], 45);
    assert_eq!(physio["buffer_after_minutes"], 15);
    assert_eq!(physio["price_pence"], 7000);

    let one = app
        .get(&format!(
            "/api/v1/services/{}",
            physio["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.body, physio);
}

#[tokio::test]
async fn the_demo_team_is_listed_with_disciplines_and_services() {
    let app = demo_app().await;
    let services = app.get("/api/v1/services").await.body;
    let service_ids = ids(&services);
    let reply = app.get("/api/v1/practitioners").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let team = reply.body.as_array().expect("a list");
    assert_eq!(team.len(), 5, "{}", reply.body);
    for p in team {
        for field in [
            "id",
            "slug",
            "name",
            "discipline",
            "title",
            "bio",
            "service_ids",
        ] {
            assert!(p.get(field).is_some(), "{field} missing from {p}");
        }
        assert!(p.get("email").is_none(), "staff email leaked: {p}");
        assert!(DISCIPLINES.contains(&p["discipline"].as_str().expect("discipline")));
        let offered = id_list(&p["service_ids"]);
        assert!(!offered.is_empty(), "{p}");
        for sid in &offered {
            assert!(service_ids.contains(sid), "{sid} is not a public service");
            // The links agree from both sides.
            let service = services
                .as_array()
                .expect("list")
                .iter()
                .find(|s| s["id"] == sid.as_str())
                .expect("service");
            assert!(
                id_list(&service["practitioner_ids"])
                    .contains(&p["id"].as_str().expect("id").to_string())
            );
        }
    }
    let first = &team[0];
    let one = app
        .get(&format!(
            "/api/v1/practitioners/{}",
            first["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.body, first);
}

#[tokio::test]
async fn practitioners_can_be_filtered_by_service() {
    let app = demo_app().await;
    let services = app.get("/api/v1/services").await.body;
    let all = app.get("/api/v1/practitioners").await.body;
    let mut some_filter_narrowed = false;
    for service in services.as_array().expect("list") {
        let sid = service["id"].as_str().expect("id");
        let reply = app
            .get(&format!("/api/v1/practitioners?service_id={sid}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut got = ids(&reply.body);
        let mut expected = id_list(&service["practitioner_ids"]);
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "service {sid}");
        for p in reply.body.as_array().expect("list") {
            assert!(id_list(&p["service_ids"]).contains(&sid.to_string()));
        }
        some_filter_narrowed |= got.len() < all.as_array().expect("list").len();
    }
    assert!(some_filter_narrowed, "the filter never filtered anything");

    let unknown = app
        .get(&format!(
            "/api/v1/practitioners?service_id={}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(unknown.status, 200);
    assert_eq!(unknown.body, json!([]));

    let malformed = app.get("/api/v1/practitioners?service_id=not-a-uuid").await;
    malformed.assert_problem(422, "validation_failed");
    assert_eq!(malformed.error_fields(), ["service_id"]);
}

#[tokio::test]
async fn the_clinic_shows_its_name_time_zone_and_policy() {
    let app = spawn_app_with(|s| {
        s.clinic.name = "Harbour Physio".into();
        s.clinic.time_zone = "Europe/Dublin".into();
        s.policy.min_notice_minutes = 60;
    })
    .await;
    let reply = app.get("/api/v1/clinic").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["name"], "Harbour Physio");
    assert_eq!(reply.body["time_zone"], "Europe/Dublin");
    assert_eq!(reply.body["phone"], app.settings.clinic.phone.as_str());
    assert_eq!(reply.body["email"], app.settings.clinic.email.as_str());
    assert_eq!(reply.body["address"], app.settings.clinic.address.as_str());
    let policy = &reply.body["policy"];
    assert_eq!(policy["min_notice_minutes"], 60);
    assert_eq!(
        policy["max_advance_days"],
        app.settings.policy.max_advance_days
    );
    assert_eq!(
        policy["cancel_notice_hours"],
        app.settings.policy.cancel_notice_hours
    );
    assert_eq!(
        policy["reschedule_notice_hours"],
        app.settings.policy.reschedule_notice_hours
    );
    assert_eq!(
        policy["slot_step_minutes"],
        app.settings.policy.slot_step_minutes
    );
}

#[tokio::test]
async fn an_empty_clinic_lists_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/v1/services").await.body, json!([]));
    assert_eq!(app.get("/api/v1/practitioners").await.body, json!([]));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = demo_app().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/services/{unknown}"),
        "/api/v1/services/not-a-uuid".to_string(),
        format!("/api/v1/practitioners/{unknown}"),
        "/api/v1/practitioners/amara-okafor".to_string(),
    ] {
        app.get(&path).await.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn a_deactivated_service_leaves_the_public_side() {
    let app = demo_app().await;
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/services").await.body;
    let victim = before[0]["id"].as_str().expect("id").to_string();
    let offered_by = id_list(&before[0]["practitioner_ids"]);

    let reply = app
        .delete_as(&admin, &format!("/api/v1/staff/services/{victim}"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], false);

    let after = ids(&app.get("/api/v1/services").await.body);
    assert!(!after.contains(&victim));
    assert_eq!(after.len(), ids(&before).len() - 1);
    app.get(&format!("/api/v1/services/{victim}"))
        .await
        .assert_problem(404, "not_found");
    // Its practitioners no longer list it.
    for pid in offered_by {
        let p = app.get(&format!("/api/v1/practitioners/{pid}")).await;
        assert!(
            !id_list(&p.body["service_ids"]).contains(&victim),
            "{}",
            p.body
        );
    }
    // Staff still see it.
    let staff = app
        .get_as(&admin, &format!("/api/v1/staff/services/{victim}"))
        .await;
    assert_eq!(staff.status, 200);
    assert_eq!(staff.body["active"], false);
}

#[tokio::test]
async fn a_service_that_is_not_online_bookable_leaves_the_public_side() {
    let app = demo_app().await;
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/services").await.body;
    let hidden = before[1]["id"].as_str().expect("id").to_string();
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{hidden}"),
            json!({ "online_bookable": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["online_bookable"], false);
    assert_eq!(reply.body["active"], true);

    assert!(!ids(&app.get("/api/v1/services").await.body).contains(&hidden));
    app.get(&format!("/api/v1/services/{hidden}"))
        .await
        .assert_problem(404, "not_found");

    // And back again.
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/services/{hidden}"),
        json!({ "online_bookable": true }),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/services/{hidden}")).await.status,
        200
    );
}

#[tokio::test]
async fn an_inactive_practitioner_leaves_the_public_side() {
    let app = demo_app().await;
    let admin = app.admin_token().await;
    let team = app.get("/api/v1/practitioners").await.body;
    let leaver = team[0]["id"].as_str().expect("id").to_string();
    let their_services = id_list(&team[0]["service_ids"]);
    assert!(!their_services.is_empty());

    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/practitioners/{leaver}"),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], false);

    let team_after = ids(&app.get("/api/v1/practitioners").await.body);
    assert_eq!(team_after.len(), 4);
    assert!(!team_after.contains(&leaver));
    app.get(&format!("/api/v1/practitioners/{leaver}"))
        .await
        .assert_problem(404, "not_found");
    for service in app
        .get("/api/v1/services")
        .await
        .body
        .as_array()
        .expect("list")
    {
        assert!(
            !id_list(&service["practitioner_ids"]).contains(&leaver),
            "{service}"
        );
    }
    for sid in &their_services {
        let filtered = app
            .get(&format!("/api/v1/practitioners?service_id={sid}"))
            .await;
        assert!(!ids(&filtered.body).contains(&leaver));
    }
}

#[tokio::test]
async fn a_practitioner_who_is_not_online_bookable_leaves_the_public_side() {
    let app = demo_app().await;
    let admin = app.admin_token().await;
    let team = app.get("/api/v1/practitioners").await.body;
    let hidden = team[1]["id"].as_str().expect("id").to_string();
    app.patch_as(
        &admin,
        &format!("/api/v1/staff/practitioners/{hidden}"),
        json!({ "online_bookable": false }),
    )
    .await;
    assert!(!ids(&app.get("/api/v1/practitioners").await.body).contains(&hidden));
    for service in app
        .get("/api/v1/services")
        .await
        .body
        .as_array()
        .expect("list")
    {
        assert!(!id_list(&service["practitioner_ids"]).contains(&hidden));
    }
}
