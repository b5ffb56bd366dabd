//! Abuse resistance through HTTP: the body limit however a body is framed, who the client is
//! behind proxies, keyed IP hashes, the answer cache's bound, security headers and CORS.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use entity::{app_secret, enquiry};
use frontdesk::{secrets::IpHasher, startup::Application};
use reqwest::{Method, StatusCode};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

const LOGIN: &str = "/api/v1/auth/login";
const CHUNK: usize = 16 * 1024;

/// A request body of `total` bytes made on demand, counting how much the client pulled.
fn counting_body(total: usize) -> (reqwest::Body, Arc<AtomicUsize>) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let stream = futures_util::stream::unfold(0usize, move |sent| {
        let counter = counter.clone();
        async move {
            if sent >= total {
                return None;
            }
            counter.fetch_add(CHUNK, Ordering::SeqCst);
            Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; CHUNK])),
                sent + CHUNK,
            ))
        }
    });
    (reqwest::Body::wrap_stream(stream), pulled)
}

fn enquiry_form(email: &str) -> Value {
    json!({
        "name": "Sam Taylor",
        "email": email,
        "topic": "physio",
        "message": "A question about opening hours.",
        "preferred_contact": "email",
        "consent": { "privacy": true, "marketing": false },
        "website": ""
    })
}

/// Streams 256 MB at the enquiry form with `client` and checks the 413 and that the server
/// stopped reading long before the end.
async fn assert_streamed_upload_is_cut_off(app: &TestApp, client: &reqwest::Client) {
    let total = 256 * 1024 * 1024;
    let (body, pulled) = counting_body(total);
    let resp = client
        .post(app.url("/api/v1/enquiries"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers before the upload ends");
    let reply = Reply::from_response(resp).await;
    reply.assert_problem(413, "payload_too_large");
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(
        pulled < 32 * 1024 * 1024,
        "the client got to send {pulled} bytes"
    );
}

#[tokio::test]
async fn a_chunked_upload_over_the_limit_is_cut_off_with_413() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    assert_streamed_upload_is_cut_off(&app, &client).await;
}

#[tokio::test]
async fn an_http2_prior_knowledge_upload_over_the_limit_is_cut_off_with_413() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    assert_streamed_upload_is_cut_off(&app, &client).await;
    // The same connection still serves ordinary requests over HTTP/2.
    let resp = client
        .post(app.url("/api/v1/enquiries"))
        .json(&enquiry_form("h2@example.com"))
        .send()
        .await
        .expect("small h2 request");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let app = spawn_app().await;
    let total = 64 * 1024 * 1024;
    let (body, pulled) = counting_body(total);
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/enquiries"))
        .header("content-type", "application/json")
        .header("content-length", total.to_string())
        .body(body)
        .send()
        .await
        .expect("answered");
    Reply::from_response(resp)
        .await
        .assert_problem(413, "payload_too_large");
    assert!(pulled.load(Ordering::SeqCst) < 32 * 1024 * 1024);
}

#[tokio::test]
async fn a_body_just_under_the_limit_over_http2_is_read_whole() {
    let app = spawn_app().await;
    let limit = app.settings.server.body_limit_kb * 1024;
    // Valid JSON padded with whitespace to just under the limit, streamed without a length.
    let json = enquiry_form("padded@example.com").to_string();
    let padded = format!("{json}{}", " ".repeat(limit - json.len() - 1));
    let stream = futures_util::stream::iter(
        padded
            .into_bytes()
            .chunks(CHUNK)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let resp = client
        .post(app.url("/api/v1/enquiries"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

/// A failed login from `forwarded_for` (sent as `X-Forwarded-For` when given).
async fn login_from(app: &TestApp, forwarded_for: Option<&str>, n: usize) -> StatusCode {
    let mut req = app.client.post(app.url(LOGIN)).json(&json!({
        "email": format!("nobody{n}@clinic.test"), "password": "not the password at all"
    }));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.expect("sent").status()
}

fn behind_a_proxy(limit: u32) -> impl FnOnce(&mut frontdesk::config::Settings) {
    move |s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".to_string()];
        s.rate_limit.login_per_minute = limit;
    }
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_get_separate_buckets() {
    let app = spawn_app_with(behind_a_proxy(2)).await;
    for n in 0..2 {
        assert_eq!(login_from(&app, Some("203.0.113.1"), n).await, 401);
    }
    assert_eq!(login_from(&app, Some("203.0.113.1"), 2).await, 429);
    // Another client of the same proxy still has its allowance.
    assert_eq!(login_from(&app, Some("203.0.113.2"), 3).await, 401);
    // What a client prepends itself does not help: the proxy's entry is the rightmost.
    assert_eq!(
        login_from(&app, Some("198.51.100.7, 203.0.113.1"), 4).await,
        429
    );
}

#[tokio::test]
async fn a_client_forging_x_forwarded_for_without_a_trusted_proxy_keeps_its_bucket() {
    let app = spawn_app_with(|s| s.rate_limit.login_per_minute = 2).await;
    assert!(app.settings.server.trusted_proxies.is_empty());
    for n in 0..2 {
        let forged = format!("203.0.113.{n}");
        assert_eq!(login_from(&app, Some(&forged), n).await, 401);
    }
    assert_eq!(login_from(&app, Some("203.0.113.99"), 2).await, 429);
    assert_eq!(login_from(&app, None, 3).await, 429);
}

#[tokio::test]
async fn two_addresses_of_one_ipv6_64_share_a_bucket() {
    let app = spawn_app_with(behind_a_proxy(2)).await;
    assert_eq!(login_from(&app, Some("2001:db8:1:2::1"), 0).await, 401);
    assert_eq!(login_from(&app, Some("2001:db8:1:2:ffff::9"), 1).await, 401);
    assert_eq!(login_from(&app, Some("2001:db8:1:2:abcd::5"), 2).await, 429);
    // The next /64 is another client.
    assert_eq!(login_from(&app, Some("2001:db8:1:3::1"), 3).await, 401);
    // The Forwarded header names the client the same way.
    let reply = app
        .client
        .post(app.url(LOGIN))
        .header("forwarded", "for=\"[2001:db8:1:2::77]:4711\"")
        .json(&json!({ "email": "nobody@clinic.test", "password": "not the password" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(reply.status(), 429);
}

#[tokio::test]
async fn enquiry_ip_hashes_are_keyed_hmacs_of_the_derived_client_address() {
    let app = spawn_app_with(behind_a_proxy(10)).await;
    let resp = app
        .client
        .post(app.url("/api/v1/enquiries"))
        .header("x-forwarded-for", "203.0.113.50")
        .json(&enquiry_form("hash@example.com"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let stored = enquiry::Entity::find().all(&app.db).await.expect("rows");
    assert_eq!(stored.len(), 1);
    let client = "203.0.113.50".parse().ok();
    assert_eq!(stored[0].ip_hash, app.state.ip_hasher.hash(client));
    // The key was generated and kept in the database, and a later start (or another
    // instance) on the same database uses it.
    let kept = app_secret::Entity::find_by_id("ip_hash_key")
        .one(&app.db)
        .await
        .expect("query")
        .expect("a generated key");
    assert_eq!(
        IpHasher::new(kept.value.into_bytes()).hash(client),
        stored[0].ip_hash
    );
    let again = Application::build(app.settings.clone())
        .await
        .expect("second start");
    assert_eq!(again.state.ip_hasher.hash(client), stored[0].ip_hash);
}

#[tokio::test]
async fn a_configured_ip_hash_key_is_used_and_nothing_is_generated() {
    let key = "a configured key of some length";
    let app = spawn_app_with(|s| {
        s.privacy.ip_hash_key = Some(key.to_string().into());
    })
    .await;
    app.post("/api/v1/enquiries", enquiry_form("key@example.com"))
        .await;
    let stored = enquiry::Entity::find().all(&app.db).await.expect("rows");
    let loopback = "127.0.0.1".parse().ok();
    assert_eq!(
        stored[0].ip_hash,
        IpHasher::new(key.as_bytes().to_vec()).hash(loopback)
    );
    let generated = app_secret::Entity::find_by_id("ip_hash_key")
        .one(&app.db)
        .await
        .expect("query");
    assert!(generated.is_none());
}

#[tokio::test]
async fn the_answer_cache_keeps_to_its_configured_byte_bound() {
    let app = spawn_app_with(|s| {
        s.availability.answer_cache_max_kb = 8;
        s.availability.answer_cache_ms = 60_000;
    })
    .await;
    let (_, _, service) = clinic_with_one_practitioner(&app).await;
    assert_eq!(app.state.slot_answers.weight().1, 8 * 1024);
    for day in 1..=30 {
        let date = in_days(day);
        let reply = app
            .get(&format!(
                "/api/v1/availability?service_id={service}&from={date}&to={date}"
            ))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let (kept, bound) = app.state.slot_answers.weight();
        assert!(kept <= bound, "{kept} > {bound}");
    }
    // Some answers are kept, but far fewer than were asked for.
    let kept = app.state.slot_answers.len();
    assert!((1..30).contains(&kept), "{kept}");
    // /availability/next is answered from the same cache.
    let next = format!("/api/v1/availability/next?service_id={service}");
    let first = app.get(&next).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body["slot"]["start"].is_string(), "{}", first.body);
    assert_eq!(app.get(&next).await.body, first.body);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/api/v1/clinic", "/api/v1/no-such-thing", "/health/live"] {
        let reply = app.get(path).await;
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert!(
            reply
                .header("content-security-policy")
                .is_some_and(|csp| csp.contains("default-src 'none'")),
            "{path}"
        );
        // public_url is http here.
        assert!(reply.header("strict-transport-security").is_none());
    }
    let docs = app.client.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(docs.status(), 200);
    let csp = docs
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a CSP on /docs")
        .to_string();
    // Swagger UI's own inline scripts run (by hash) and its styles; nothing is loaded from
    // elsewhere.
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("script-src 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("style-src 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = docs.text().await.expect("html");
    assert!(html.contains("SwaggerUIBundle"));
    // Every inline script of the page as served is allowed by the policy.
    assert_eq!(frontdesk::http::headers::docs_csp(&html), csp);
}

#[tokio::test]
async fn an_https_public_url_adds_strict_transport_security() {
    let app = spawn_app_with(|s| s.server.public_url = "https://clinic.example".into()).await;
    let reply = app.get("/api/v1/clinic").await;
    let hsts = reply
        .header("strict-transport-security")
        .expect("HSTS header");
    assert!(hsts.starts_with("max-age="), "{hsts}");
}

const ALLOWED: &str = "https://booking.clinic.example";

async fn cors_request(
    app: &TestApp,
    method: Method,
    path: &str,
    origin: &str,
    preflight_method: Option<&str>,
) -> Reply {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("origin", origin);
    if let Some(m) = preflight_method {
        req = req.header("access-control-request-method", m).header(
            "access-control-request-headers",
            "content-type, authorization",
        );
    }
    Reply::from_response(req.send().await.expect("sent")).await
}

#[tokio::test]
async fn cors_answers_only_the_listed_origins() {
    let app = spawn_app_with(|s| s.server.cors_origins = vec![ALLOWED.to_string()]).await;
    // Preflight from the listed origin.
    let ok = cors_request(
        &app,
        Method::OPTIONS,
        "/api/v1/bookings",
        ALLOWED,
        Some("POST"),
    )
    .await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    assert_eq!(ok.header("access-control-allow-origin"), Some(ALLOWED));
    let methods = ok.header("access-control-allow-methods").expect("methods");
    assert!(methods.contains("POST"), "{methods}");
    let headers = ok.header("access-control-allow-headers").expect("headers");
    assert!(headers.contains("authorization"), "{headers}");
    // Preflight from anyone else, including a near miss.
    for refused in [
        "https://evil.example",
        "https://booking.clinic.example.evil.example",
        "http://booking.clinic.example",
    ] {
        let no = cors_request(
            &app,
            Method::OPTIONS,
            "/api/v1/bookings",
            refused,
            Some("POST"),
        )
        .await;
        no.assert_problem(403, "origin_not_allowed");
        assert!(no.header("access-control-allow-origin").is_none());
    }
    // Simple requests: the listed origin may read the answer, others get no CORS headers.
    let simple = cors_request(&app, Method::GET, "/api/v1/clinic", ALLOWED, None).await;
    assert_eq!(simple.status, 200);
    assert_eq!(simple.header("access-control-allow-origin"), Some(ALLOWED));
    assert!(simple.header("vary").is_some_and(|v| v.contains("Origin")));
    let other = cors_request(
        &app,
        Method::GET,
        "/api/v1/clinic",
        "https://evil.example",
        None,
    )
    .await;
    assert_eq!(other.status, 200);
    assert!(other.header("access-control-allow-origin").is_none());
    assert!(other.header("vary").is_some_and(|v| v.contains("Origin")));
}

#[tokio::test]
async fn without_listed_origins_no_cross_origin_request_is_allowed() {
    let app = spawn_app().await;
    assert!(app.settings.server.cors_origins.is_empty());
    let no = cors_request(
        &app,
        Method::OPTIONS,
        "/api/v1/bookings",
        ALLOWED,
        Some("POST"),
    )
    .await;
    no.assert_problem(403, "origin_not_allowed");
    let simple = cors_request(&app, Method::GET, "/api/v1/clinic", ALLOWED, None).await;
    assert!(simple.header("access-control-allow-origin").is_none());
    // The service's own origin is not cross-origin.
    let own = app
        .settings
        .server
        .public_url
        .trim_end_matches('/')
        .to_string();
    let same = cors_request(&app, Method::GET, "/api/v1/clinic", &own, None).await;
    assert_eq!(same.status, 200);
}
