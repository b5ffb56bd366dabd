//! Staff sign-in, sessions, login throttling and rate limits, the hashing bound, staff
//! accounts and the audit log.

use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, spawn_app, spawn_app_with};

const LOGIN: &str = "/api/v1/auth/login";

#[tokio::test]
async fn a_correct_login_returns_a_token_its_expiry_and_the_staff_member() {
    let app = spawn_app().await;
    let before = chrono::Utc::now();
    let reply = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().expect("token");
    assert!(token.len() >= 22, "token too short: {token}");
    let expires_at: chrono::DateTime<chrono::FixedOffset> = reply.body["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339 expires_at");
    let hours = i64::from(app.settings.auth.session_hours);
    assert!(expires_at > before + chrono::Duration::hours(hours) - chrono::Duration::minutes(1));
    assert!(expires_at < before + chrono::Duration::hours(hours) + chrono::Duration::minutes(1));
    let staff = &reply.body["staff"];
    assert_eq!(staff["email"], ADMIN_EMAIL);
    assert_eq!(staff["role"], "admin");
    assert_eq!(staff["active"], true);
    assert!(staff["id"].as_str().is_some());
    assert!(staff.get("password_hash").is_none(), "{staff}");
}

#[tokio::test]
async fn the_login_email_is_case_and_space_insensitive() {
    let app = spawn_app().await;
    let reply = app
        .post(
            LOGIN,
            json!({ "email": format!("  {}  ", ADMIN_EMAIL.to_uppercase()), "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn me_returns_the_signed_in_staff_member() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let reply = app.get_as(&token, "/api/v1/auth/me").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["email"], ADMIN_EMAIL);
    assert_eq!(reply.body["role"], "admin");
}

#[tokio::test]
async fn a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    let reply = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": "not the password at all" }),
        )
        .await;
    reply.assert_problem(401, "invalid_credentials");
    assert!(reply.body.get("token").is_none());
}

#[tokio::test]
async fn an_unknown_email_is_401_invalid_credentials() {
    let app = spawn_app().await;
    let reply = app
        .post(
            LOGIN,
            json!({ "email": "nobody@clinic.test", "password": ADMIN_PASSWORD }),
        )
        .await;
    let unknown = reply.assert_problem(401, "invalid_credentials").clone();
    // Indistinguishable from a wrong password.
    let wrong = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": "not the password at all" }),
        )
        .await;
    assert_eq!(wrong.body, unknown);
}

#[tokio::test]
async fn after_logout_the_token_is_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let other = app.admin_token().await;
    let reply = app.post_as(&token, "/api/v1/auth/logout", json!({})).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    app.get_as(&token, "/api/v1/auth/me")
        .await
        .assert_problem(401, "unauthorized");
    app.post_as(&token, "/api/v1/auth/logout", json!({}))
        .await
        .assert_problem(401, "unauthorized");
    // Only that session ends.
    assert_eq!(app.get_as(&other, "/api/v1/auth/me").await.status, 200);
}

/// Asserts a 429 `rate_limited` with a Retry-After of at most 15 minutes; returns the problem
/// body and the wait.
#[track_caller]
fn assert_throttled(reply: &crate::helpers::Reply) -> (serde_json::Value, u64) {
    let body = reply.assert_problem(429, "rate_limited").clone();
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    (body, wait)
}

#[tokio::test]
async fn after_too_many_wrong_passwords_the_address_is_throttled_even_for_the_right_one() {
    let app = spawn_app().await;
    let threshold = app.settings.auth.lockout_threshold;
    assert!(threshold < app.settings.rate_limit.login_per_minute);
    for _ in 0..threshold {
        app.post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": "not the password at all" }),
        )
        .await
        .assert_problem(401, "invalid_credentials");
    }
    let reply = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_throttled(&reply);
}

#[tokio::test]
async fn a_throttled_unknown_address_answers_exactly_like_a_throttled_account() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    let threshold = app.settings.auth.lockout_threshold;
    let unknown = "nobody@clinic.test";
    for email in [ADMIN_EMAIL, unknown] {
        for _ in 0..threshold {
            app.post(
                LOGIN,
                json!({ "email": email, "password": "not the password at all" }),
            )
            .await
            .assert_problem(401, "invalid_credentials");
        }
    }
    let (account, account_wait) = assert_throttled(
        &app.post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await,
    );
    let (nobody, nobody_wait) = assert_throttled(
        &app.post(
            LOGIN,
            json!({ "email": unknown, "password": ADMIN_PASSWORD }),
        )
        .await,
    );
    // The same document but for the seconds to wait, which tick between the two requests.
    let without_digits = |v: &serde_json::Value| {
        v.to_string()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    assert_eq!(without_digits(&account), without_digits(&nobody));
    assert_eq!(account["status"], nobody["status"]);
    assert!(
        account_wait.abs_diff(nobody_wait) <= 2,
        "{account_wait} {nobody_wait}"
    );
    // Another address is unaffected: the count is per submitted address.
    app.post(
        LOGIN,
        json!({ "email": "someone-else@clinic.test", "password": "not the password at all" }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn failed_logins_are_not_written_to_the_database() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    app.post(
        LOGIN,
        json!({ "email": ADMIN_EMAIL, "password": "not the password at all" }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // The per-account counter and lock columns are gone.
    let backend = app.db.get_database_backend();
    let probe = app
        .db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT failed_logins FROM staff_users",
        ))
        .await;
    assert!(probe.is_err(), "{probe:?}");
}

#[tokio::test]
async fn with_every_hashing_slot_taken_a_login_waits_a_second_then_answers_503_busy() {
    let app = spawn_app_with(|s| s.auth.max_concurrent_hashes = Some(1)).await;
    let held = app.state.hashing.reserve().await.expect("the only slot");
    let started = std::time::Instant::now();
    let reply = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await;
    reply.assert_problem(503, "busy");
    assert!(reply.header("retry-after").is_some());
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    drop(held);
    app.admin_token().await;
}

#[tokio::test]
async fn fewer_wrong_passwords_than_the_threshold_do_not_lock_and_a_success_resets_the_count() {
    let app = spawn_app().await;
    let threshold = app.settings.auth.lockout_threshold;
    let wrong = json!({ "email": ADMIN_EMAIL, "password": "not the password at all" });
    for _ in 0..threshold - 1 {
        app.post(LOGIN, wrong.clone())
            .await
            .assert_problem(401, "invalid_credentials");
    }
    app.admin_token().await;
    // The count started again: one more wrong password does not lock.
    app.post(LOGIN, wrong)
        .await
        .assert_problem(401, "invalid_credentials");
    app.admin_token().await;
}

#[tokio::test]
async fn logins_past_the_per_ip_limit_get_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit.login_per_minute = 3).await;
    let body = json!({ "email": "nobody@clinic.test", "password": "whatever password" });
    for _ in 0..3 {
        app.post(LOGIN, body.clone())
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let reply = app
        .post(
            LOGIN,
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await;
    reply.assert_problem(429, "rate_limited");
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn with_rate_limits_disabled_logins_are_never_429_per_client() {
    let app = spawn_app_with(|s| {
        s.rate_limit.enabled = false;
        s.rate_limit.login_per_minute = 2;
    })
    .await;
    // Distinct addresses, so only the per-client limit could refuse them (the per-address
    // throttle stays on whatever the rate limits say).
    for i in 0..6 {
        let body =
            json!({ "email": format!("nobody{i}@clinic.test"), "password": "whatever password" });
        app.post(LOGIN, body)
            .await
            .assert_problem(401, "invalid_credentials");
    }
    app.admin_token().await;
}

#[tokio::test]
async fn an_admin_creates_a_user_with_a_generated_password_that_works() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": "Reception@Clinic.test", "name": "Rita Reception", "role": "reception" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let user = &reply.body["user"];
    let id = user["id"].as_str().expect("id");
    assert_eq!(
        reply.header("location"),
        Some(format!("/api/v1/staff/users/{id}").as_str())
    );
    assert_eq!(user["email"], "reception@clinic.test");
    assert_eq!(user["role"], "reception");
    assert_eq!(user["active"], true);
    let password = reply.body["password"].as_str().expect("generated password");
    assert!(password.len() >= 12, "{password}");

    let token = app.login("reception@clinic.test", password).await;
    let me = app.get_as(&token, "/api/v1/auth/me").await;
    assert_eq!(me.body["id"], id);
    assert_eq!(me.body["role"], "reception");

    // The list shows the account, and never a password.
    let list = app.get_as(&admin, "/api/v1/staff/users").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 2);
    let items = list.body["items"].as_array().expect("items");
    assert!(items.iter().any(|u| u["id"] == id));
    assert!(!list.body.to_string().contains(password));
}

#[tokio::test]
async fn a_user_created_with_a_password_gets_no_generated_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": "r@clinic.test", "name": "R", "role": "reception",
                    "password": "a chosen long password" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(reply.body.get("password").is_none(), "{}", reply.body);
    app.login("r@clinic.test", "a chosen long password").await;
}

#[tokio::test]
async fn creating_a_user_with_a_taken_email_is_409() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": ADMIN_EMAIL.to_uppercase(), "name": "Another", "role": "reception" }),
        )
        .await;
    reply.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn bad_new_users_are_422_with_the_field_named() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let cases = [
        (
            json!({ "email": "p@clinic.test", "name": "P", "role": "practitioner" }),
            "practitioner_id",
        ),
        (
            json!({ "email": "p@clinic.test", "name": "P", "role": "practitioner",
                    "practitioner_id": uuid::Uuid::new_v4() }),
            "practitioner_id",
        ),
        (
            json!({ "email": "not-an-email", "name": "P", "role": "reception" }),
            "email",
        ),
        (
            json!({ "email": "p@clinic.test", "name": "P\r\nBcc: x@y.test", "role": "reception" }),
            "name",
        ),
        (
            json!({ "email": "p@clinic.test", "name": "P", "role": "reception", "password": "short" }),
            "password",
        ),
    ];
    for (body, field) in cases {
        let reply = app
            .post_as(&admin, "/api/v1/staff/users", body.clone())
            .await;
        reply.assert_problem(422, "validation_failed");
        assert!(
            reply.error_fields().iter().any(|f| f == field),
            "{body}: expected {field} in {}",
            reply.body
        );
    }
    let list = app.get_as(&admin, "/api/v1/staff/users").await;
    assert_eq!(list.body["total"], 1, "nothing was created: {}", list.body);
}

#[tokio::test]
async fn a_practitioner_account_links_to_its_practitioner() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let token = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    let me = app.get_as(&token, "/api/v1/auth/me").await;
    assert_eq!(me.body["role"], "practitioner");
    assert_eq!(me.body["practitioner_id"], practitioner.as_str());
}

#[tokio::test]
async fn deactivating_a_user_revokes_their_sessions_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": "leaver@clinic.test", "name": "Leaver", "role": "reception",
                    "password": "a sufficiently long password" }),
        )
        .await;
    let id = reply.body["user"]["id"].as_str().expect("id").to_string();
    let token = app
        .login("leaver@clinic.test", "a sufficiently long password")
        .await;
    assert_eq!(app.get_as(&token, "/api/v1/auth/me").await.status, 200);

    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/users/{id}"),
            json!({ "active": false }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["active"], false);
    app.get_as(&token, "/api/v1/auth/me")
        .await
        .assert_problem(401, "unauthorized");
    // And the account cannot sign in again.
    app.post(
        LOGIN,
        json!({ "email": "leaver@clinic.test", "password": "a sufficiently long password" }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn a_password_reset_revokes_sessions_and_the_new_password_works() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": "forgetful@clinic.test", "name": "Forgetful", "role": "reception",
                    "password": "the old long password" }),
        )
        .await;
    let id = reply.body["user"]["id"].as_str().expect("id").to_string();
    let token = app
        .login("forgetful@clinic.test", "the old long password")
        .await;

    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/users/{id}"),
            json!({ "password": "the brand new password" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    app.get_as(&token, "/api/v1/auth/me")
        .await
        .assert_problem(401, "unauthorized");
    app.post(
        LOGIN,
        json!({ "email": "forgetful@clinic.test", "password": "the old long password" }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    let token = app
        .login("forgetful@clinic.test", "the brand new password")
        .await;
    assert_eq!(app.get_as(&token, "/api/v1/auth/me").await.status, 200);
}

#[tokio::test]
async fn a_role_change_revokes_sessions_and_needs_a_practitioner_for_that_role() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let reply = app
        .post_as(
            &admin,
            "/api/v1/staff/users",
            json!({ "email": "desk@clinic.test", "name": "Desk", "role": "reception",
                    "password": "a sufficiently long password" }),
        )
        .await;
    let path = format!(
        "/api/v1/staff/users/{}",
        reply.body["user"]["id"].as_str().expect("id")
    );
    let token = app
        .login("desk@clinic.test", "a sufficiently long password")
        .await;

    let refused = app
        .patch_as(&admin, &path, json!({ "role": "practitioner" }))
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["role"]);
    assert_eq!(
        app.get_as(&token, "/api/v1/auth/me").await.body["role"],
        "reception"
    );

    let promoted = app
        .patch_as(&admin, &path, json!({ "role": "admin" }))
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "admin");
    app.get_as(&token, "/api/v1/auth/me")
        .await
        .assert_problem(401, "unauthorized");
    let token = app
        .login("desk@clinic.test", "a sufficiently long password")
        .await;
    assert_eq!(app.get_as(&token, "/api/v1/staff/audit").await.status, 200);
}

#[tokio::test]
async fn a_too_short_new_password_is_422() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = app.get_as(&admin, "/api/v1/auth/me").await;
    let id = me.body["id"].as_str().expect("id");
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/users/{id}"),
            json!({ "password": "short" }),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(reply.error_fields(), ["password"]);
    app.admin_token().await;
}

#[tokio::test]
async fn an_admin_cannot_deactivate_their_own_account() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = app.get_as(&admin, "/api/v1/auth/me").await;
    let id = me.body["id"].as_str().expect("id");
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/users/{id}"),
            json!({ "active": false }),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert_eq!(app.get_as(&admin, "/api/v1/auth/me").await.status, 200);
}

#[tokio::test]
async fn patching_an_unknown_user_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        app.patch_as(
            &admin,
            &format!("/api/v1/staff/users/{id}"),
            json!({ "name": "Nobody" }),
        )
        .await
        .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn only_admins_may_manage_users_and_read_the_audit_log() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let practitioner = app.create_practitioner(&admin, "Pat Physio").await;
    let reception = app.staff_token(&admin, "reception", None).await;
    let own = app
        .staff_token(&admin, "practitioner", Some(&practitioner))
        .await;
    let admin_id = app.get_as(&admin, "/api/v1/auth/me").await.body["id"].clone();
    let admin_id = admin_id.as_str().expect("id");
    for token in [&reception, &own] {
        app.get_as(token, "/api/v1/staff/users")
            .await
            .assert_problem(403, "forbidden");
        app.get_as(token, "/api/v1/staff/audit")
            .await
            .assert_problem(403, "forbidden");
        app.post_as(
            token,
            "/api/v1/staff/users",
            json!({ "email": "sneaky@clinic.test", "name": "Sneaky", "role": "admin",
                    "password": "a sufficiently long password" }),
        )
        .await
        .assert_problem(403, "forbidden");
        app.patch_as(
            token,
            &format!("/api/v1/staff/users/{admin_id}"),
            json!({ "password": "taken over account!" }),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    app.post(
        LOGIN,
        json!({ "email": "sneaky@clinic.test", "password": "a sufficiently long password" }),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    app.admin_token().await;
}

#[tokio::test]
async fn the_audit_log_records_changes_newest_first() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = app.get_as(&admin, "/api/v1/auth/me").await.body["id"].clone();
    let service = app.create_service(&admin, "Audited massage", &[]).await;
    let reply = app.get_as(&admin, "/api/v1/staff/audit").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.body["items"].as_array().expect("items");
    assert!(reply.body["total"].as_u64().expect("total") >= 2);
    let created = items
        .iter()
        .find(|e| e["entity"] == "service" && e["action"] == "create")
        .unwrap_or_else(|| panic!("no service creation in {}", reply.body));
    assert_eq!(created["entity_id"], service.as_str());
    assert_eq!(created["actor_id"], admin_id);
    assert_eq!(created["detail"]["name"], "Audited massage");
    assert_eq!(
        items[0]["entity"], "service",
        "newest first: {}",
        reply.body
    );

    app.delete_as(&admin, &format!("/api/v1/staff/services/{service}"))
        .await;
    let reply = app.get_as(&admin, "/api/v1/staff/audit?per_page=1").await;
    assert_eq!(reply.body["per_page"], 1);
    let items = reply.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "deactivate");
    assert_eq!(items[0]["entity_id"], service.as_str());

    // Far past the end is an empty page, not an error.
    let reply = app
        .get_as(&admin, &format!("/api/v1/staff/audit?page={}", u64::MAX))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["items"], json!([]));
}
