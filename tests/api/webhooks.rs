//! Signed webhooks, end to end: a real receiver on loopback verifies every signature with its
//! own implementation of the Standard Webhooks scheme (HMAC-SHA256 written out from RFC 2104,
//! not the service's signer), and the tests drive the delivery worker with their own clock.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use frontdesk::{startup::Application, state::AppState, webhooks};
use poem::{
    EndpointExt, Request, Response, Route, Server,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::availability::{clinic_with_one_practitioner, in_days};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

// ---------------------------------------------------------------------------------------------
// An independent verifier, from the Standard Webhooks specification.

/// HMAC-SHA256 per RFC 2104: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), block size 64.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(Sha256::digest(key).as_slice());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.as_slice());
    outer.finalize().as_slice().to_vec()
}

/// Whether any `v1,` signature in the header is the one `secret` gives for this message.
fn signed_by(secret: &str, request: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let content = format!("{}.{}.{}", request.id, request.timestamp, request.body);
    let expected = STANDARD.encode(hmac_sha256(&key, content.as_bytes()));
    request
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

#[test]
fn the_independent_hmac_matches_the_standard_webhooks_example() {
    let request = Received {
        id: "msg_p5jXN8AQM9LWM0D4loKWxJek".into(),
        timestamp: "1614265330".into(),
        signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        body: r#"{"test": 2432232314}"#.into(),
        content_type: String::new(),
    };
    assert!(signed_by(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &request
    ));
    assert!(!signed_by(
        "whsec_AAAA9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &request
    ));
}

// ---------------------------------------------------------------------------------------------
// A receiver on loopback.

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    content_type: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; 200 once they are used up.
    answers: VecDeque<u16>,
    received: Vec<Received>,
    delay: Duration,
    /// Requests being answered right now, and the most at once.
    in_flight: HashMap<String, usize>,
    overlapped: bool,
}

#[derive(Clone)]
struct Receiver {
    port: u16,
    script: Arc<Mutex<Script>>,
    server: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on(0, Arc::default()).await
    }

    async fn start_on(port: u16, script: Arc<Mutex<Script>>) -> Receiver {
        let acceptor = TcpListener::bind(format!("127.0.0.1:{port}"))
            .into_acceptor()
            .await
            .expect("receiver binds");
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .expect("receiver address")
            .port();
        let shared = script.clone();
        let app = Route::new()
            .at(
                "/hook",
                post(poem::endpoint::make(move |req: Request| {
                    let script = shared.clone();
                    async move { answer(script, req).await }
                })),
            )
            .at(
                "/moved",
                post(poem::endpoint::make_sync(|_| {
                    Response::builder()
                        .status(StatusCode::FOUND)
                        .header("location", "/hook")
                        .finish()
                })),
            )
            .map_to_response();
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Receiver {
            port,
            script,
            server: Arc::new(server),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn answer_with(&self, statuses: &[u16]) {
        self.script.lock().expect("script").answers.extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().expect("script").received.clone()
    }

    fn stop(&self) {
        self.server.abort();
    }
}

async fn answer(script: Arc<Mutex<Script>>, mut req: Request) -> Response {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (id, timestamp, signature, content_type) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        header("content-type"),
    );
    let body = req.take_body().into_string().await.unwrap_or_default();
    let delay = {
        let mut s = script.lock().expect("script");
        let n = s.in_flight.entry(id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            s.overlapped = true;
        }
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = script.lock().expect("script");
    if let Some(n) = s.in_flight.get_mut(&id) {
        *n -= 1;
    }
    s.received.push(Received {
        id,
        timestamp,
        signature,
        body,
        content_type,
    });
    let status = s.answers.pop_front().unwrap_or(200);
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .body("ok")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn register(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> (String, String) {
    let reply = app
        .post_as(
            admin,
            "/api/v1/staff/webhooks",
            json!({ "url": url, "events": events, "description": "CRM" }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    (
        reply.body["id"].as_str().expect("id").to_string(),
        reply.body["secret"].as_str().expect("secret").to_string(),
    )
}

async fn staff_booking(
    app: &TestApp,
    admin: &str,
    practitioner: &str,
    service: &str,
    hour: u32,
) -> Value {
    let reply = app
        .post_as(
            admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": service, "practitioner_id": practitioner,
                    "start": format!("{}T{hour:02}:00:00+00:00", in_days(4)),
                    "patient": { "name": "Pat Webhook", "email": "pat.webhook@example.com",
                                 "phone": "07700 900456" } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

async fn step(state: &AppState, now: DateTime<Utc>) -> usize {
    webhooks::worker::run_once(state, now)
        .await
        .expect("worker step")
}

async fn deliveries(app: &TestApp, admin: &str, endpoint: &str) -> Vec<Value> {
    let reply = app
        .get_as(
            admin,
            &format!("/api/v1/staff/webhooks/{endpoint}/deliveries"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().expect("items").clone()
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

// ---------------------------------------------------------------------------------------------
// Delivery.

#[tokio::test]
async fn a_500_is_retried_with_the_same_webhook_id_and_delivered_once() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let receiver = Receiver::start().await;
    let (endpoint, secret) = register(&app, &admin, &receiver.url(), &["booking.created"]).await;
    let booking = staff_booking(&app, &admin, &practitioner, &service, 10).await;
    receiver.answer_with(&[500]);

    let now = Utc::now();
    assert_eq!(step(&app.state, now).await, 1);
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status_code"], 500);
    assert!(log[0]["last_duration_ms"].is_number());
    // Not due again until the first wait of the schedule (5 s) has passed.
    assert_eq!(step(&app.state, now + secs(2)).await, 0);
    assert_eq!(step(&app.state, now + secs(6)).await, 1);
    assert_eq!(step(&app.state, now + secs(3600)).await, 0);

    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id, "the same webhook-id on the retry");
    assert_eq!(got[0].body, got[1].body);
    assert!(got[0].id.starts_with("msg_"));
    for r in &got {
        assert!(signed_by(&secret, r), "signature of {r:?}");
        assert_eq!(r.content_type, "application/json");
    }
    assert_eq!(got[0].timestamp, now.timestamp().to_string());
    assert_eq!(got[1].timestamp, (now + secs(6)).timestamp().to_string());
    let body = got[0].json();
    assert_eq!(body["type"], "booking.created");
    assert!(body["timestamp"].is_string());
    let data = &body["data"];
    assert_eq!(data["booking_id"], booking["booking"]["id"]);
    assert_eq!(data["reference"], booking["booking"]["reference"]);
    assert_eq!(data["status"], "confirmed");
    assert_eq!(data["service_id"], service.as_str());
    assert_eq!(data["practitioner_id"], practitioner.as_str());
    assert!(data["start"].is_string() && data["end"].is_string());
    assert!(data["series_id"].is_null());
    for personal in ["Pat Webhook", "pat.webhook@example.com", "07700"] {
        assert!(
            !got[0].body.contains(personal),
            "{personal} in {}",
            got[0].body
        );
    }
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_status_code"], 200);
    assert!(log[0]["delivered_at"].is_string());
    assert_eq!(log[0]["webhook_id"], got[0].id.as_str());
    assert_eq!(log[0]["event_type"], "booking.created");
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_fails_the_delivery() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    receiver.answer_with(&[410]);
    enquiry(&app, "first").await;
    let now = Utc::now();
    assert_eq!(step(&app.state, now).await, 1);
    let shown = app
        .get_as(&admin, &format!("/api/v1/staff/webhooks/{endpoint}"))
        .await;
    assert_eq!(shown.body["active"], false, "{}", shown.body);
    assert!(
        shown.body["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410"))
    );
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["last_status_code"], 410);
    // Disabled: no new events, and nothing more is posted, however long we wait.
    enquiry(&app, "second").await;
    assert_eq!(step(&app.state, now + secs(86_400)).await, 0);
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(deliveries(&app, &admin, &endpoint).await.len(), 1);
    // An admin turns it on again: the reason is cleared and events flow.
    let on = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/webhooks/{endpoint}"),
            json!({ "active": true }),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert!(on.body["disabled_reason"].is_null());
    enquiry(&app, "third").await;
    assert_eq!(step(&app.state, now + secs(86_400)).await, 1);
    assert_eq!(receiver.received().len(), 2);
}

async fn enquiry(app: &TestApp, message: &str) {
    let reply = app
        .post(
            "/api/v1/enquiries",
            json!({ "name": "Sam Enquirer", "email": "sam.enquirer@example.com", "topic": "pilates",
                    "message": format!("Do you run classes? {message}"), "preferred_contact": "email",
                    "consent": { "privacy": true }, "website": "" }),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn a_receiver_that_is_down_for_a_while_loses_nothing() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    // A port with nothing behind it, for now.
    let receiver = Receiver::start().await;
    let port = receiver.port;
    receiver.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (endpoint, secret) = register(
        &app,
        &admin,
        &receiver.url(),
        &["booking.created", "booking.cancelled"],
    )
    .await;
    let booking = staff_booking(&app, &admin, &practitioner, &service, 11).await;
    let id = booking["booking"]["id"].as_str().expect("id");
    let cancel = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/cancel"),
            json!({ "reason": "other" }),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);

    let mut now = Utc::now();
    // Down for the first three attempts (immediately, +5 s, +5 min).
    for wait in [0, 6, 301] {
        now += secs(wait);
        assert_eq!(step(&app.state, now).await, 2);
    }
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log.len(), 2);
    for d in &log {
        assert_eq!(d["status"], "pending");
        assert_eq!(d["attempts"], 3);
        assert!(d["last_status_code"].is_null());
        assert!(
            d["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("connect")),
            "{d}"
        );
    }
    // Back up: the next attempt (30 min later) delivers both, in order.
    let back = Receiver::start_on(port, Arc::default()).await;
    now += secs(1801);
    assert_eq!(step(&app.state, now).await, 2);
    let got = back.received();
    let mut types: Vec<_> = got.iter().map(|r| r.json()["type"].clone()).collect();
    types.sort_by_key(|t| t.to_string());
    assert_eq!(
        types,
        [json!("booking.cancelled"), json!("booking.created")]
    );
    assert!(got.iter().all(|r| signed_by(&secret, r)));
    let cancelled = got
        .iter()
        .find(|r| r.json()["type"] == "booking.cancelled")
        .expect("cancelled event");
    assert_eq!(cancelled.json()["data"]["status"], "cancelled");
    assert!(
        deliveries(&app, &admin, &endpoint)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
    );
}

#[tokio::test]
async fn the_schedule_ends_in_failed() {
    let app = spawn_app_with(|s| s.webhooks.retry_schedule_seconds = vec![5, 60]).await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    receiver.answer_with(&[500, 503, 502, 200]);
    enquiry(&app, "schedule").await;
    let now = Utc::now();
    assert_eq!(step(&app.state, now).await, 1);
    assert_eq!(step(&app.state, now + secs(6)).await, 1);
    assert_eq!(step(&app.state, now + secs(67)).await, 1);
    assert_eq!(step(&app.state, now + secs(86_400)).await, 0);
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status_code"], 502);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let moved = format!("http://127.0.0.1:{}/moved", receiver.port);
    let (endpoint, _) = register(&app, &admin, &moved, &["enquiry.received"]).await;
    enquiry(&app, "redirect").await;
    assert_eq!(step(&app.state, Utc::now()).await, 1);
    assert!(
        receiver.received().is_empty(),
        "the Location was not visited"
    );
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["last_status_code"], 302);
}

#[tokio::test]
async fn an_https_target_is_spoken_to_over_tls() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // A plain TCP listener that records the first bytes it is sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let first = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 3];
        socket.read_exact(&mut buf).await.expect("read");
        buf
    });
    let url = format!("https://localhost:{port}/hook");
    let (endpoint, _) = register(&app, &admin, &url, &["enquiry.received"]).await;
    enquiry(&app, "tls").await;
    assert_eq!(step(&app.state, Utc::now()).await, 1);
    let bytes = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("connected")
        .expect("read");
    assert_eq!(bytes[0], 0x16, "a TLS handshake record, not plain HTTP");
    let log = deliveries(&app, &admin, &endpoint).await;
    assert_eq!(log[0]["status"], "pending");
    assert!(
        log[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("TLS")),
        "{}",
        log[0]
    );
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_for_a_day() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, old) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    let rotated = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/webhooks/{endpoint}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["secret"].as_str().expect("secret").to_string();
    assert!(new.starts_with("whsec_") && new != old);
    enquiry(&app, "during").await;
    let now = Utc::now();
    assert_eq!(step(&app.state, now).await, 1);
    let during = &receiver.received()[0];
    assert_eq!(
        during.signature.split(' ').count(),
        2,
        "{}",
        during.signature
    );
    assert!(signed_by(&old, during) && signed_by(&new, during));
    // A day later only the new secret signs.
    enquiry(&app, "after").await;
    assert_eq!(step(&app.state, now + secs(25 * 3600)).await, 1);
    let after = &receiver.received()[1];
    assert_eq!(after.signature.split(' ').count(), 1);
    assert!(signed_by(&new, after) && !signed_by(&old, after));
}

#[tokio::test]
async fn a_replay_sends_the_same_event_with_the_same_webhook_id() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, secret) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    enquiry(&app, "replay").await;
    let now = Utc::now();
    assert_eq!(step(&app.state, now).await, 1);
    let delivery = deliveries(&app, &admin, &endpoint).await[0].clone();
    assert_eq!(delivery["status"], "delivered");
    let replay = app
        .post_as(
            &admin,
            &format!(
                "/api/v1/staff/webhook-deliveries/{}/replay",
                delivery["id"].as_str().expect("id")
            ),
            json!({}),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body["status"], "pending");
    assert_eq!(step(&app.state, Utc::now()).await, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    assert_eq!(got[0].body, got[1].body);
    assert!(signed_by(&secret, &got[1]));
    let unknown = app
        .post_as(
            &admin,
            &format!(
                "/api/v1/staff/webhook-deliveries/{}/replay",
                uuid::Uuid::new_v4()
            ),
            json!({}),
        )
        .await;
    unknown.assert_problem(404, "not_found");
}

#[tokio::test]
async fn every_booking_change_and_enquiry_emits_its_event() {
    let app = spawn_app().await;
    let (admin, practitioner, service) = clinic_with_one_practitioner(&app).await;
    let receiver = Receiver::start().await;
    let all = [
        "booking.created",
        "booking.rescheduled",
        "booking.cancelled",
        "booking.attendance",
        "enquiry.received",
    ];
    let (_, secret) = register(&app, &admin, &receiver.url(), &all).await;
    // Staff: create, reschedule, attendance.
    let staff = staff_booking(&app, &admin, &practitioner, &service, 9).await;
    let id = staff["booking"]["id"].as_str().expect("id").to_string();
    let moved = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/reschedule"),
            json!({ "start": format!("{}T13:00:00+00:00", in_days(4)) }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let arrived = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/attendance"),
            json!({ "status": "arrived" }),
        )
        .await;
    assert_eq!(arrived.status, 200, "{}", arrived.body);
    // Online: create, then reschedule and cancel by the manage link.
    let day = in_days(6);
    let slots = app
        .get(&format!(
            "/api/v1/availability?service_id={service}&from={day}&to={day}"
        ))
        .await;
    let free = slots.body["slots"].as_array().expect("slots").clone();
    let online = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": free[0]["start"],
                    "patient": { "name": "Online Patient", "email": "online@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(online.status, 201, "{}", online.body);
    let token = online.body["manage_token"].as_str().expect("token");
    let moved = app
        .post(
            &format!("/api/v1/manage/{token}/reschedule"),
            json!({ "start": free[4]["start"] }),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let cancelled = app
        .post(
            &format!("/api/v1/manage/{token}/cancel"),
            json!({ "reason": "feeling better" }),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    enquiry(&app, "events").await;

    assert_eq!(step(&app.state, Utc::now()).await, 7);
    let got = receiver.received();
    let mut types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().expect("type").to_string())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "booking.attendance",
            "booking.cancelled",
            "booking.created",
            "booking.created",
            "booking.rescheduled",
            "booking.rescheduled",
            "enquiry.received",
        ]
    );
    assert!(got.iter().all(|r| signed_by(&secret, r)));
    let enquiry = got
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "enquiry.received")
        .expect("enquiry event");
    assert_eq!(enquiry["data"]["topic"], "pilates");
    assert!(enquiry["data"]["reference"].is_string() && enquiry["data"]["enquiry_id"].is_string());
    let attendance = got
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "booking.attendance")
        .expect("attendance event");
    assert_eq!(attendance["data"]["status"], "arrived");
    for r in &got {
        for personal in [
            "Online Patient",
            "online@example.com",
            "Sam Enquirer",
            "sam.enquirer",
            "feeling better",
            "Do you run",
        ] {
            assert!(!r.body.contains(personal), "{personal} in {}", r.body);
        }
    }
    // Spam (the honeypot) tells no one.
    let spam = app
        .post(
            "/api/v1/enquiries",
            json!({ "name": "Bot", "email": "bot@example.com", "topic": "general",
                    "message": "Buy cheap watches at our shop today", "preferred_contact": "email",
                    "consent": { "privacy": true }, "website": "http://spam.example" }),
        )
        .await;
    assert_eq!(spam.status, 202, "{}", spam.body);
    assert_eq!(step(&app.state, Utc::now()).await, 0);
}

#[tokio::test]
async fn two_instances_on_one_database_never_post_one_event_twice_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    receiver.script.lock().expect("script").delay = Duration::from_millis(20);
    let (endpoint, _) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    // A second instance on the same database.
    let second = Application::build(app.settings.clone())
        .await
        .expect("second instance");
    let other = second.state.clone();
    tokio::spawn(second.run_until(std::future::pending()));
    const EVENTS: usize = 60;
    let txn = frontdesk::store::begin_write(&app.db).await.expect("begin");
    for i in 0..EVENTS {
        let n = webhooks::emit(
            &txn,
            Utc::now(),
            webhooks::EventType::EnquiryReceived,
            json!({ "enquiry_id": i, "reference": format!("E{i}"), "topic": "general" }),
        )
        .await
        .expect("emit");
        assert_eq!(n, 1);
    }
    txn.commit().await.expect("commit");
    let now = Utc::now();
    let (a, b) = (app.state.clone(), other.clone());
    let one = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let got = step(&a, now).await;
            if got == 0 {
                break n;
            }
            n += got;
        }
    });
    let two = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let got = step(&b, now).await;
            if got == 0 {
                break n;
            }
            n += got;
        }
    });
    let (one, two) = (one.await.expect("one"), two.await.expect("two"));
    assert_eq!(one + two, EVENTS, "each event claimed once ({one} + {two})");
    let got = receiver.received();
    assert_eq!(got.len(), EVENTS);
    let mut ids: Vec<_> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), EVENTS, "no webhook-id posted twice");
    assert!(!receiver.script.lock().expect("script").overlapped);
    let log = app
        .get_as(
            &admin,
            &format!("/api/v1/staff/webhooks/{endpoint}/deliveries?status=delivered&per_page=100"),
        )
        .await;
    assert_eq!(log.body["total"], EVENTS as u64);
}

// ---------------------------------------------------------------------------------------------
// Targets.

#[tokio::test]
async fn non_public_targets_are_refused_without_allow_private_targets() {
    let app = spawn_app_with(|s| s.webhooks.allow_private_targets = false).await;
    let admin = app.admin_token().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://hooks.example.com/plain-http",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
    ] {
        let reply = app
            .post_as(
                &admin,
                "/api/v1/staff/webhooks",
                json!({ "url": url, "events": ["booking.created"] }),
            )
            .await;
        assert_eq!(reply.status, 422, "{url}: {}", reply.body);
        reply.assert_problem(422, "webhook_target_refused");
    }
    let listed = app.get_as(&admin, "/api/v1/staff/webhooks").await;
    assert_eq!(listed.body["total"], 0);
}

#[tokio::test]
async fn the_address_is_checked_again_at_each_connection() {
    // Registered where private targets are allowed; delivered by an instance where not.
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    let localhost = format!("http://localhost:{}/hook", receiver.port);
    let (by_name, _) = register(&app, &admin, &localhost, &["enquiry.received"]).await;
    enquiry(&app, "strict").await;
    let mut strict = app.settings.clone();
    strict.webhooks.allow_private_targets = false;
    let strict = Application::build(strict).await.expect("strict instance");
    assert_eq!(step(&strict.state, Utc::now()).await, 2);
    assert!(receiver.received().is_empty(), "nothing reached loopback");
    for id in [endpoint, by_name] {
        let log = deliveries(&app, &admin, &id).await;
        assert_eq!(log[0]["status"], "pending");
        assert!(log[0]["last_status_code"].is_null());
        assert!(log[0]["last_error"].is_string(), "{}", log[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API.

#[tokio::test]
async fn endpoints_are_validated_changed_deleted_and_audited() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let url = "http://127.0.0.1:9/crm";
    for (body, field) in [
        (json!({ "url": url, "events": ["booking.exploded"] }), None),
        (json!({ "url": url, "events": [] }), Some("events")),
        (
            json!({ "url": "not a url", "events": ["booking.created"] }),
            Some("url"),
        ),
        (
            json!({ "url": "ftp://example.com/x", "events": ["booking.created"] }),
            Some("url"),
        ),
        (json!({ "events": ["booking.created"] }), None),
        (
            json!({ "url": url, "events": ["booking.created"], "description": "two\nlines" }),
            Some("description"),
        ),
    ] {
        let reply = app
            .post_as(&admin, "/api/v1/staff/webhooks", body.clone())
            .await;
        reply.assert_problem(422, "validation_failed");
        if let Some(field) = field {
            assert_eq!(reply.error_fields(), [field], "{body}: {}", reply.body);
        }
    }
    let created = app
        .post_as(
            &admin,
            "/api/v1/staff/webhooks",
            json!({ "url": url, "events": ["booking.created", "enquiry.received", "booking.created"],
                    "description": "Practice CRM" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("/api/v1/staff/webhooks/{id}").as_str())
    );
    let secret = created.body["secret"].as_str().expect("secret");
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64");
    assert!((24..=32).contains(&key.len()));
    assert_eq!(
        created.body["events"],
        json!(["booking.created", "enquiry.received"])
    );
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["description"], "Practice CRM");
    assert!(created.body["disabled_reason"].is_null());

    let listed = app.get_as(&admin, "/api/v1/staff/webhooks").await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["page"], 1);
    assert!(
        listed.body["items"][0].get("secret").is_none(),
        "the secret is shown once"
    );
    assert!(!listed.body.to_string().contains(secret));

    let patched = app
        .patch_as(&admin, &format!("/api/v1/staff/webhooks/{id}"),
            json!({ "events": ["booking.cancelled"], "active": false, "url": "http://127.0.0.1:9/v2" }))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["events"], json!(["booking.cancelled"]));
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body["url"], "http://127.0.0.1:9/v2");
    let bad = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/webhooks/{id}"),
            json!({ "events": ["nope"] }),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    let rotated = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/webhooks/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, 200);
    let rotated_secret = rotated.body["secret"].as_str().expect("secret").to_string();

    let deleted = app
        .delete_as(&admin, &format!("/api/v1/staff/webhooks/{id}"))
        .await;
    assert_eq!(deleted.status, 204);
    let gone = app
        .get_as(&admin, &format!("/api/v1/staff/webhooks/{id}"))
        .await;
    gone.assert_problem(404, "not_found");
    let gone = app
        .get_as(&admin, "/api/v1/staff/webhooks/not-a-uuid/deliveries")
        .await;
    gone.assert_problem(404, "not_found");

    let audit = app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let text = audit.body.to_string();
    let actions: Vec<String> = audit.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["entity"] == "webhook_endpoint")
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    for action in ["create", "update", "rotate_secret", "delete"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} audited: {actions:?}"
        );
    }
    for secretish in [
        secret,
        rotated_secret.as_str(),
        "127.0.0.1:9",
        "Practice CRM",
    ] {
        assert!(!text.contains(secretish), "{secretish} in the audit log");
    }
}

#[tokio::test]
async fn deliveries_are_purged_after_the_retention_period() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = register(&app, &admin, &receiver.url(), &["enquiry.received"]).await;
    enquiry(&app, "purge").await;
    assert_eq!(step(&app.state, Utc::now()).await, 1);
    frontdesk::privacy::retention::purge(&app.state, Utc::now() + chrono::Duration::days(29))
        .await
        .expect("purge");
    assert_eq!(deliveries(&app, &admin, &endpoint).await.len(), 1);
    frontdesk::privacy::retention::purge(&app.state, Utc::now() + chrono::Duration::days(31))
        .await
        .expect("purge");
    assert!(deliveries(&app, &admin, &endpoint).await.is_empty());
}
