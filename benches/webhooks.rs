//! Webhook delivery throughput and delay against a receiver on loopback.
//!
//!   cargo bench --bench webhooks                     # SQLite (WAL, synchronous=FULL)
//!   FRONTDESK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench webhooks                   # and PostgreSQL (a scratch database)
//!
//! Throughput: 1,000 pending deliveries (one endpoint), drained by `worker::run_once` steps as
//! fast as they go (claim a batch of 25, post them concurrently, record each outcome).
//! Delay: the service's own worker at the default 1,000 ms poll interval; a staff booking is
//! made through the HTTP API at a random moment and timed from its 201 answer (the commit has
//! happened by then) until the receiver has the `booking.created` event.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use frontdesk::{
    config::Settings,
    startup::Application,
    state::AppState,
    store,
    webhooks::{self, EventType, worker},
};
use poem::{
    EndpointExt, Request, Route, Server,
    listener::{Acceptor, Listener, TcpListener},
    post,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

const DELIVERIES: usize = 1_000;
const DELAY_SAMPLES: usize = 15;

/// Arrival time of each webhook-id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let shared = arrivals.clone();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .expect("addr")
        .port();
    let app = Route::new()
        .at(
            "/hook",
            post(poem::endpoint::make_sync(move |req: Request| {
                if let Some(id) = req
                    .headers()
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                {
                    shared
                        .lock()
                        .expect("arrivals")
                        .entry(id.to_string())
                        .or_insert_with(Instant::now);
                }
                "ok"
            })),
        )
        .map_to_response();
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    (format!("http://127.0.0.1:{port}/hook"), arrivals)
}

async fn start(database_url: &str, worker_enabled: bool) -> (Arc<AppState>, String) {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_for(&config_dir, "test").expect("settings");
    settings.database.url = database_url.to_string();
    settings.webhooks.worker_enabled = worker_enabled;
    settings.demo.seed = true;
    let app = Application::build(settings).await.expect("app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    (state, address)
}

async fn register(state: &AppState, url: &str, event: EventType) {
    let txn = store::begin_write(&state.db).await.expect("begin");
    webhooks::endpoints::insert(&txn, url, &[event], None, Utc::now())
        .await
        .expect("endpoint");
    txn.commit().await.expect("commit");
}

async fn throughput(label: &str, database_url: &str) {
    let (url, arrivals) = receiver().await;
    let (state, _) = start(database_url, false).await;
    register(&state, &url, EventType::EnquiryReceived).await;
    for chunk in 0..DELIVERIES / 100 {
        let txn = store::begin_write(&state.db).await.expect("begin");
        for i in 0..100 {
            let n = chunk * 100 + i;
            let data = json!({ "enquiry_id": Uuid::new_v4(), "reference": format!("E{n}"), "topic": "general" });
            webhooks::emit(&txn, Utc::now(), EventType::EnquiryReceived, data)
                .await
                .expect("emit");
        }
        txn.commit().await.expect("commit");
    }
    let started = Instant::now();
    let mut steps = 0;
    while worker::run_once(&state, Utc::now()).await.expect("step") > 0 {
        steps += 1;
    }
    let elapsed = started.elapsed();
    let got = arrivals.lock().expect("arrivals").len();
    assert_eq!(got, DELIVERIES, "every delivery arrived");
    println!(
        "{label}: {got} webhook deliveries in {:.2} s = {:.0} deliveries/s ({steps} steps)",
        elapsed.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64(),
    );
    state.db.clone().close().await.ok();
}

async fn delay(label: &str, database_url: &str) {
    let (url, arrivals) = receiver().await;
    let (state, address) = start(database_url, true).await;
    assert_eq!(state.settings.webhooks.poll_interval_ms, 1000);
    register(&state, &url, EventType::BookingCreated).await;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@clinic.test", "password": "correct horse battery staple" }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login body");
    let token = login["token"].as_str().expect("token").to_string();
    let services: Value = client
        .get(format!("{address}/api/v1/services"))
        .send()
        .await
        .expect("services")
        .json()
        .await
        .expect("services body");
    let service = &services[0];
    let practitioner = service["practitioner_ids"][0].clone();
    let mut delays = Vec::new();
    for i in 0..DELAY_SAMPLES {
        tokio::time::sleep(Duration::from_millis(rand_ms(i))).await;
        // Night-time slots far ahead: staff bookings may ignore hours, never overlap.
        let start = (Utc::now() + chrono::Duration::days(40 + i as i64))
            .date_naive()
            .and_hms_opt(3, 0, 0)
            .expect("03:00")
            .and_utc();
        let reply = client
            .post(format!("{address}/api/v1/staff/bookings"))
            .bearer_auth(&token)
            .json(
                &json!({ "service_id": service["id"], "practitioner_id": practitioner,
                           "start": start.to_rfc3339(),
                           "patient": { "name": "Bench Patient", "phone": "07700 900000" } }),
            )
            .send()
            .await
            .expect("booking");
        let committed = Instant::now();
        assert_eq!(
            reply.status(),
            201,
            "{}",
            reply.text().await.unwrap_or_default()
        );
        let deadline = committed + Duration::from_secs(5);
        loop {
            let arrived = arrivals.lock().expect("arrivals").len();
            if arrived > i {
                let at = arrivals
                    .lock()
                    .expect("arrivals")
                    .values()
                    .max()
                    .copied()
                    .expect("arrival");
                delays.push(at.saturating_duration_since(committed));
                break;
            }
            assert!(Instant::now() < deadline, "not delivered within 5 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = delays.iter().map(|d| ms(*d)).sum::<f64>() / delays.len() as f64;
    println!(
        "{label}: booking-to-webhook over {} bookings at poll_interval_ms=1000: min {:.0} ms, \
         median {:.0} ms, mean {:.0} ms, max {:.0} ms",
        delays.len(),
        ms(delays[0]),
        ms(delays[delays.len() / 2]),
        mean,
        ms(delays[delays.len() - 1]),
    );
    state.db.clone().close().await.ok();
}

/// A pseudo-random pause of 0–999 ms (fixed sequence, so runs are comparable).
fn rand_ms(i: usize) -> u64 {
    (i as u64)
        .wrapping_mul(7_919)
        .wrapping_add(104_729)
        .wrapping_mul(2_654_435_761)
        % 1_000
}

fn main() {
    // `cargo test --all-targets` runs bench targets in test mode: nothing to check here.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = |name: &str| {
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join(format!("{name}.db")).display()
            )
        };
        throughput("SQLite", &sqlite("throughput")).await;
        delay("SQLite", &sqlite("delay")).await;
        if let Ok(admin_url) = std::env::var("FRONTDESK_BENCH_POSTGRES_URL") {
            let admin = Database::connect(&admin_url).await.expect("postgres");
            for phase in ["throughput", "delay"] {
                let name = format!("frontdesk_bench_{}", Uuid::new_v4().simple());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create database");
                let mut url = url::Url::parse(&admin_url).expect("url");
                url.set_path(&name);
                if phase == "throughput" {
                    throughput("PostgreSQL", url.as_str()).await;
                } else {
                    delay("PostgreSQL", url.as_str()).await;
                }
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok();
            }
        }
    });
}
