//! HTTP hygiene: every error is a problem document, bodies are limited, requests are traced,
//! and the operational endpoints answer.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Reply, postgres_url, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    for path in ["/api/v1/nothing-here", "/no/such/page"] {
        app.get(path).await.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let reply = app.send(Method::DELETE, "/api/v1/clinic", None, None).await;
    reply.assert_problem(405, "method_not_allowed");
    let reply = app
        .send(Method::PUT, "/api/v1/auth/login", None, Some(json!({})))
        .await;
    reply.assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn malformed_json_on_login_is_a_422_validation_problem() {
    let app = spawn_app().await;
    for body in [
        r#"{"email": "a@b.test", "password": "#,
        "not json at all",
        "",
    ] {
        let reply = app
            .send_raw(
                Method::POST,
                "/api/v1/auth/login",
                None,
                "application/json",
                body,
            )
            .await;
        reply.assert_problem(422, "validation_failed");
        assert!(
            !reply.error_fields().is_empty(),
            "body {body:?}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn wrong_field_types_on_login_are_a_422_validation_problem() {
    let app = spawn_app().await;
    // (poem-openapi reads a number or a boolean into a string field as its text, so those
    // are not type errors here; objects, arrays and null are.)
    for body in [
        json!({ "email": { "address": "a@b.test" }, "password": "a long enough password" }),
        json!({ "email": "a@b.test", "password": ["a long enough password"] }),
        json!({ "email": null, "password": "a long enough password" }),
        json!({ "email": "a@b.test" }),
        json!(["a@b.test", "password"]),
        json!("a@b.test"),
    ] {
        let reply = app.post("/api/v1/auth/login", body.clone()).await;
        reply.assert_problem(422, "validation_failed");
        assert!(
            !reply.error_fields().is_empty(),
            "body {body}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn a_staff_route_without_a_token_is_a_401_problem() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/staff/services",
        "/api/v1/staff/practitioners",
        "/api/v1/staff/users",
        "/api/v1/auth/me",
    ] {
        let reply = app.get(path).await;
        reply.assert_problem(401, "unauthorized");
    }
}

#[tokio::test]
async fn a_bogus_bearer_token_is_a_401_problem() {
    let app = spawn_app().await;
    for token in ["not-a-real-token", "0123456789abcdef0123456789abcdef"] {
        let reply = app.get_as(token, "/api/v1/staff/services").await;
        reply.assert_problem(401, "unauthorized");
    }
    // A malformed Authorization header is refused the same way.
    let resp = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request sent");
    Reply::from_response(resp)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_body_over_the_limit_with_content_length_is_a_413_problem() {
    let app = spawn_app().await;
    let limit = app.settings.server.body_limit_kb * 1024;
    let body = format!(
        r#"{{"email": "a@b.test", "password": "{}"}}"#,
        "x".repeat(limit)
    );
    let reply = app
        .send_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "application/json",
            body,
        )
        .await;
    reply.assert_problem(413, "payload_too_large");

    // Just under the limit is read and judged on its content.
    let body = format!(
        r#"{{"email": "a@b.test", "password": "{}"}}"#,
        "x".repeat(limit - 100)
    );
    let reply = app
        .send_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "application/json",
            body,
        )
        .await;
    reply.assert_problem(401, "invalid_credentials");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_413_problem() {
    let app = spawn_app().await;
    let limit = app.settings.server.body_limit_kb * 1024;
    let payload = format!(
        r#"{{"email": "a@b.test", "password": "{}"}}"#,
        "x".repeat(limit)
    );
    let mut body = Vec::new();
    for chunk in payload.as_bytes().chunks(4096) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (status, response) = app
        .send_over_tcp(
            "POST /api/v1/auth/login HTTP/1.1\r\n\
             Content-Type: application/json\r\n\
             Transfer-Encoding: chunked",
            body,
        )
        .await;
    assert_eq!(status, 413, "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{response}"
    );
    assert!(response.contains("payload_too_large"), "{response}");
}

#[tokio::test]
async fn a_small_chunked_body_is_accepted() {
    let app = spawn_app().await;
    let payload = br#"{"email": "nobody@clinic.test", "password": "a wrong password"}"#;
    let mut body = format!("{:x}\r\n", payload.len()).into_bytes();
    body.extend_from_slice(payload);
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, response) = app
        .send_over_tcp(
            "POST /api/v1/auth/login HTTP/1.1\r\n\
             Content-Type: application/json\r\n\
             Transfer-Encoding: chunked",
            body,
        )
        .await;
    assert_eq!(status, 401, "{response}");
    assert!(response.contains("invalid_credentials"), "{response}");
}

#[tokio::test]
async fn a_request_id_is_echoed() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/api/v1/clinic"))
        .header("X-Request-Id", "test-request-42")
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("test-request-42")
    );
    // Errors carry it too.
    let resp = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .header("X-Request-Id", "test-request-43")
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("test-request-43")
    );
}

#[tokio::test]
async fn a_request_id_is_generated_when_absent() {
    let app = spawn_app().await;
    let first = app.get("/api/v1/clinic").await;
    let second = app.get("/api/v1/clinic").await;
    let first = first
        .header("x-request-id")
        .expect("request id")
        .to_string();
    let second = second
        .header("x-request-id")
        .expect("request id")
        .to_string();
    assert!(first.len() >= 16, "{first}");
    assert_ne!(first, second);

    // An unusable id (too long, or with spaces) is replaced rather than echoed.
    for bad in ["x".repeat(65), "two words".to_string()] {
        let resp = app
            .client
            .get(app.url("/api/v1/clinic"))
            .header("X-Request-Id", bad.as_str())
            .send()
            .await
            .expect("request sent");
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("request id");
        assert_ne!(id, bad);
        assert!(id.len() >= 16, "{id}");
    }
}

#[tokio::test]
async fn health_endpoints_answer_200() {
    let app = spawn_app().await;
    for path in ["/health/live", "/health/ready"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body["status"], "ok", "{path}");
    }
}

#[tokio::test]
async fn the_service_runs_on_the_database_the_suite_was_asked_for() {
    use sea_orm::DbBackend;
    let app = spawn_app().await;
    assert_eq!(app.is_postgres(), postgres_url().is_some());
    let expected = if app.is_postgres() {
        DbBackend::Postgres
    } else {
        DbBackend::Sqlite
    };
    assert_eq!(app.db.get_database_backend(), expected);
    assert_eq!(app.get("/health/ready").await.status, 200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_counting_requests() {
    let app = spawn_app().await;
    app.get("/health/live").await;
    app.get("/api/v1/nothing-here").await;
    let resp = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.expect("text");
    assert!(
        text.contains("# TYPE frontdesk_http_requests_total counter"),
        "{text}"
    );
    let count = |class: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "frontdesk_http_requests_total{{class=\"{class}\"}} "
                ))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {class} counter in {text}"))
    };
    assert!(count("2xx") >= 1, "{text}");
    assert!(count("4xx") >= 1, "{text}");
}

#[tokio::test]
async fn the_openapi_document_lists_the_api() {
    let app = spawn_app().await;
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(
        reply.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );
    let paths = reply.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/clinic",
        "/api/v1/services",
        "/api/v1/services/{id}",
        "/api/v1/practitioners",
        "/api/v1/auth/login",
        "/api/v1/staff/services/{id}",
        "/api/v1/staff/practitioners/{id}/working-hours",
        "/api/v1/staff/closures",
        "/api/v1/staff/users",
        "/health/ready",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("text");
    assert!(html.to_lowercase().contains("swagger"), "{html}");
}
