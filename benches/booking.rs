//! Booking throughput: `POST /api/v1/bookings` through HTTP against the database's own ceiling
//! — the very same booking transaction (`booking::book`: schedule read, conflict check,
//! patient upsert, insert, history) called directly — side by side in one run.
//!
//!   cargo bench --bench booking                      # SQLite (WAL, synchronous=FULL)
//!   FRONTDESK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench booking                    # PostgreSQL (a scratch database)
//!
//! Each phase books distinct free slots (5-minute service, practitioners working around the
//! clock), so every request should succeed; any error is counted and reported.

use std::{sync::Arc, time::Instant};

use chrono::{Duration, DurationRound, Utc};
use frontdesk::{
    booking::{self, NewBooking},
    config::Settings,
    domain::booking::PatientDetails,
    startup::Application,
    state::AppState,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;
use uuid::Uuid;

const PRACTITIONERS: usize = 20;
const REQUESTS_PER_PHASE: usize = 3000;

struct Fixture {
    address: String,
    state: Arc<AppState>,
    service: Uuid,
    practitioners: Vec<Uuid>,
    /// Next unused slot index, shared by both phases so no two requests collide.
    next: std::sync::atomic::AtomicUsize,
}

impl Fixture {
    /// The i-th distinct (practitioner, start) pair: a 5-minute grid from tomorrow.
    fn slot(&self, i: usize) -> (Uuid, chrono::DateTime<Utc>) {
        let base = (Utc::now() + Duration::days(1))
            .duration_trunc(Duration::days(1))
            .unwrap_or_else(|_| Utc::now());
        let practitioner = self.practitioners[i % PRACTITIONERS];
        let start = base + Duration::minutes(5 * (i / PRACTITIONERS) as i64);
        (practitioner, start)
    }

    fn take(&self) -> usize {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

async fn setup(database_url: String) -> Fixture {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_for(&config_dir, "test").expect("settings");
    settings.database.url = database_url;
    settings.rate_limit.enabled = false;
    settings.booking.max_active_per_patient = 1_000_000;
    settings.policy.max_advance_days = 730;
    settings.policy.min_notice_minutes = 0;
    let app = Application::build(settings).await.expect("app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let token = login(&client, &address).await;
    let mut practitioners = Vec::new();
    for i in 0..PRACTITIONERS {
        let reply: serde_json::Value = client
            .post(format!("{address}/api/v1/staff/practitioners"))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("Practitioner {i}"), "discipline": "personal_trainer" }))
            .send()
            .await
            .expect("create practitioner")
            .json()
            .await
            .expect("json");
        let id: Uuid = reply["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        let week: Vec<_> = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": "24:00" }))
        .collect();
        client
            .put(format!(
                "{address}/api/v1/staff/practitioners/{id}/working-hours"
            ))
            .bearer_auth(&token)
            .json(&json!({ "intervals": week }))
            .send()
            .await
            .expect("hours");
        practitioners.push(id);
    }
    let reply: serde_json::Value = client
        .post(format!("{address}/api/v1/staff/services"))
        .bearer_auth(&token)
        .json(&json!({ "name": "Quick check", "category": "other", "duration_minutes": 5,
                       "price_pence": 0, "slot_step_minutes": 5, "practitioner_ids": practitioners }))
        .send()
        .await
        .expect("service")
        .json()
        .await
        .expect("json");
    let service = reply["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("service id");
    Fixture {
        address,
        state,
        service,
        practitioners,
        next: std::sync::atomic::AtomicUsize::new(0),
    }
}

async fn login(client: &reqwest::Client, address: &str) -> String {
    let reply: serde_json::Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({ "email": "admin@clinic.test", "password": "correct horse battery staple" }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    reply["token"].as_str().expect("token").to_string()
}

/// Runs `total` jobs on `clients` concurrent workers; returns (seconds, errors).
async fn run<F, Fut>(clients: usize, total: usize, job: F) -> (f64, usize)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let job = Arc::new(job);
    let remaining = Arc::new(std::sync::atomic::AtomicUsize::new(total));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let job = job.clone();
        let remaining = remaining.clone();
        workers.spawn(async move {
            let mut errors = 0;
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                if !job().await {
                    errors += 1;
                }
            }
            errors
        });
    }
    let errors: usize = workers.join_all().await.into_iter().sum();
    (started.elapsed().as_secs_f64(), errors)
}

async fn bench(label: &str, fixture: Arc<Fixture>) {
    println!("== {label}: {REQUESTS_PER_PHASE} bookings per phase, {PRACTITIONERS} practitioners");
    for clients in [16, 64] {
        let f = fixture.clone();
        let (direct_secs, direct_errors) = run(clients, REQUESTS_PER_PHASE, move || {
            let f = f.clone();
            async move {
                let i = f.take();
                let (practitioner, start) = f.slot(i);
                let mut errors = Vec::new();
                let patient = PatientDetails::parse(
                    "Bench Patient",
                    &format!("direct{i}@example.com"),
                    None,
                    true,
                    false,
                    &mut errors,
                )
                .expect("patient");
                let new = NewBooking {
                    service_id: f.service,
                    practitioner_id: Some(practitioner),
                    start,
                    patient,
                    notes: String::new(),
                };
                booking::book(&f.state, new, None).await.is_ok()
            }
        })
        .await;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .expect("client");
        let f = fixture.clone();
        let (http_secs, http_errors) = run(clients, REQUESTS_PER_PHASE, move || {
            let f = f.clone();
            let client = client.clone();
            async move {
                let i = f.take();
                let (practitioner, start) = f.slot(i);
                let body = json!({
                    "service_id": f.service, "practitioner_id": practitioner,
                    "start": start.to_rfc3339(),
                    "patient": { "name": "Bench Patient", "email": format!("http{i}@example.com") },
                    "consent": { "privacy": true, "marketing": false }
                });
                client
                    .post(format!("{}/api/v1/bookings", f.address))
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 201)
            }
        })
        .await;
        let direct = REQUESTS_PER_PHASE as f64 / direct_secs;
        let http = REQUESTS_PER_PHASE as f64 / http_secs;
        println!(
            "{clients:>3} clients: direct {direct:>7.0} bookings/s ({direct_errors} errors) | \
             HTTP {http:>7.0} bookings/s ({http_errors} errors) | HTTP/direct {:.0}%",
            100.0 * http / direct
        );
    }
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
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        let fixture = Arc::new(setup(sqlite).await);
        bench("SQLite", fixture).await;
        if let Ok(admin_url) = std::env::var("FRONTDESK_BENCH_POSTGRES_URL") {
            let name = format!("frontdesk_bench_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.expect("postgres");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let mut url = url::Url::parse(&admin_url).expect("url");
            url.set_path(&name);
            let fixture = Arc::new(setup(url.to_string()).await);
            bench("PostgreSQL", fixture.clone()).await;
            fixture.state.db.clone().close().await.ok();
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .ok();
        }
    });
}
