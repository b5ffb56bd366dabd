//! The side-by-side load run: the release binary under HTTP load, with the ceilings measured in
//! the same run, three runs of each, medians and ratios written into BENCHMARKS.md.
//!
//!   cargo bench --bench load                     # SQLite phases, ceilings, RSS
//!   FRONTDESK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench load                   # plus the PostgreSQL phases
//!
//! `LOAD_SECONDS` (default 3) bounds every phase; `LOAD_RUNS` (default 3) repeats them;
//! `LOAD_NO_WRITE=1` prints the tables without touching BENCHMARKS.md; `LOAD_ONLY=booking` (any
//! part of a phase's name) runs only the matching phases, for a quick look (implies
//! `LOAD_NO_WRITE`: a partial table never replaces the full one). Every server is a
//! child process of this one on loopback, stopped at the end of its phase.
//!
//! Phases: booking POST at 1/4/16/64 clients on SQLite (one practitioner working around the
//! clock, a 30-minute service, every request a distinct free slot); seat POST at 64 clients
//! for one class service (sessions of 500 places filled in turn, a new patient each); the
//! bare SQLite ceiling
//! (WAL, synchronous=FULL, one connection: BEGIN IMMEDIATE, overlap check, insert, COMMIT);
//! one-week one-practitioner slot search at 64 connections with the answer cache off;
//! `/health/live` at 64; on PostgreSQL booking POST at 64 clients across two instances on one
//! database, the bare insert under the same exclusion constraint, and the slot search. RSS is
//! read from /proc: idle after start, 2.5 s after the set-up's last request (with its
//! anonymous part, the rest being the mapped binary and libraries) and the peak during each
//! load; so is the servers' CPU time per answered
//! request, and the machine's load average as each run begins.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, DurationRound, Utc};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

/// How long a server is left without requests before its idle RSS is read: an instance gives
/// back what a burst of requests touched a second or two after the burst (`startup`).
const IDLE: Duration = Duration::from_millis(2500);

const ADMIN_EMAIL: &str = "bench-admin@clinic.test";
const ADMIN_PASSWORD: &str = "bench password for the load run";

fn seconds() -> Duration {
    Duration::from_secs(
        std::env::var("LOAD_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    )
}

fn runs() -> usize {
    std::env::var("LOAD_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// One measured phase.
#[derive(Clone, Debug, Default)]
struct Figures {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    peak_rss_mb: f64,
    /// CPU time the servers spent per answered request (user + system), a figure that the
    /// other loads of a shared machine disturb far less than the rate.
    cpu_ms: f64,
    /// Of the idle RSS, what is not the mapped binary and libraries (RssAnon).
    anon_rss_mb: f64,
}

/// A server process on loopback.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(work: &Path, database_url: &str, name: &str) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::fs::File::create(work.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("FRONTDESK_ENV", "development")
            .env("FRONTDESK__DATABASE__URL", database_url)
            .env("FRONTDESK__SERVER__PORT", port.to_string())
            .env("FRONTDESK__EMAIL__FILE_DIR", work.join("mail"))
            .env("FRONTDESK__LOG__LEVEL", "warn")
            .env("FRONTDESK__DEMO__SEED", "false")
            .env("FRONTDESK__BOOTSTRAP__ADMIN_EMAIL", ADMIN_EMAIL)
            .env("FRONTDESK__BOOTSTRAP__ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("FRONTDESK__RATE_LIMIT__ENABLED", "false")
            .env("FRONTDESK__BOOKING__MAX_ACTIVE_PER_PATIENT", "1000000")
            .env("FRONTDESK__POLICY__MIN_NOTICE_MINUTES", "0")
            .env("FRONTDESK__POLICY__MAX_ADVANCE_DAYS", "730")
            .env("FRONTDESK__AVAILABILITY__ANSWER_CACHE_MS", "0")
            .env("FRONTDESK__EMAIL__OUTBOX__WORKER_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the release binary");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not start; see {name}.log");
    }

    fn rss_mb(&self) -> f64 {
        rss_mb(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time of a process so far, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    // Fields 14 and 15 of /proc/<pid>/stat, counted after the command name's closing paren.
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0.0);
    // Linux reports these in USER_HZ, 100 per second on every mainstream build.
    ticks * 10.0
}

fn rss_mb(pid: u32) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// One of the kB lines of `/proc/<pid>/status`, in MB.
fn status_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The clinic every server runs: one practitioner around the clock with a 30-minute service
/// on a 30-minute grid (bookings), one working 09:00–17:00 (slot search).
struct Clinic {
    service: String,
    practitioner: String,
    search_service: String,
    search_practitioner: String,
    /// Sessions of one class service, [`CLASS_PLACES`] places each, filled in turn.
    classes: Vec<String>,
}

/// Places per class session in the seat phase (the largest capacity a session may have).
const CLASS_PLACES: u64 = 500;
/// Sessions of the class in the seat phase: more places than any run here books.
const CLASS_SESSIONS: usize = 24;

async fn setup(client: &reqwest::Client, base: &str) -> Clinic {
    let token = login(client, base).await;
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let id = |v: Value| v["id"].as_str().expect("an id").to_string();
    let mut ids = Vec::new();
    for (name, start, end) in [
        ("Round the clock", "00:00", "24:00"),
        ("Office hours", "09:00", "17:00"),
    ] {
        let p: Value = post(
            "/api/v1/staff/practitioners",
            json!({ "name": name, "discipline": "personal_trainer" }),
        )
        .await
        .expect("practitioner")
        .json()
        .await
        .expect("json");
        let p = id(p);
        let week = every_day(start, end);
        let reply = client
            .put(format!(
                "{base}/api/v1/staff/practitioners/{p}/working-hours"
            ))
            .bearer_auth(&token)
            .json(&json!({ "intervals": week }))
            .send()
            .await
            .expect("hours");
        assert!(reply.status().is_success(), "hours: {}", reply.status());
        ids.push(p);
    }
    let mut services = Vec::new();
    for (name, p, step) in [("Session", &ids[0], 30), ("Consultation", &ids[1], 15)] {
        let s: Value = post(
            "/api/v1/staff/services",
            json!({ "name": name, "category": "other", "duration_minutes": 30,
                    "price_pence": 0, "slot_step_minutes": step, "practitioner_ids": [p] }),
        )
        .await
        .expect("service")
        .json()
        .await
        .expect("json");
        services.push(id(s));
    }
    let classes = class_sessions(&post, &id, &token, client, base).await;
    Clinic {
        classes,
        service: services[0].clone(),
        practitioner: ids[0].clone(),
        search_service: services[1].clone(),
        search_practitioner: ids[1].clone(),
    }
}

/// Working hours from `start` to `end` on every day of the week.
fn every_day(start: &str, end: &str) -> Vec<Value> {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|d| json!({ "weekday": d, "start": start, "end": end }))
    .collect()
}

/// An instructor (no other appointments), a class service and [`CLASS_SESSIONS`] sessions of
/// it two hours apart from tomorrow, [`CLASS_PLACES`] places each.
async fn class_sessions<P, F>(
    post: &P,
    id: &dyn Fn(Value) -> String,
    token: &str,
    client: &reqwest::Client,
    base: &str,
) -> Vec<String>
where
    P: Fn(&str, Value) -> F,
    F: Future<Output = reqwest::Result<reqwest::Response>>,
{
    let json = |r: reqwest::Result<reqwest::Response>| async move {
        let r = r.expect("request");
        assert!(r.status().is_success(), "class set-up: {}", r.status());
        r.json::<Value>().await.expect("json")
    };
    let instructor = id(json(
        post(
            "/api/v1/staff/practitioners",
            json!({ "name": "Class instructor", "discipline": "pilates_instructor" }),
        )
        .await,
    )
    .await);
    let reply = client
        .put(format!(
            "{base}/api/v1/staff/practitioners/{instructor}/working-hours"
        ))
        .bearer_auth(token)
        .json(&json!({ "intervals": every_day("00:00", "24:00") }))
        .send()
        .await
        .expect("hours");
    assert!(reply.status().is_success(), "hours: {}", reply.status());
    let service = id(json(
        post(
            "/api/v1/staff/services",
            json!({ "name": "Big class", "category": "pilates", "duration_minutes": 60,
                    "price_pence": 0, "capacity": CLASS_PLACES,
                    "practitioner_ids": [instructor] }),
        )
        .await,
    )
    .await);
    let mut sessions = Vec::new();
    for i in 0..CLASS_SESSIONS {
        let starts_at = slot(4 * i as u64 + 48).to_rfc3339();
        sessions.push(id(json(
            post(
                "/api/v1/staff/classes",
                json!({ "service_id": service, "practitioner_id": instructor,
                        "starts_at": starts_at, "capacity": CLASS_PLACES }),
            )
            .await,
        )
        .await));
    }
    sessions
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let reply: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    reply["token"].as_str().expect("a token").to_string()
}

/// The i-th distinct 30-minute slot from tomorrow (UTC midnight).
fn slot(i: u64) -> DateTime<Utc> {
    let base = (Utc::now() + chrono::Duration::days(1))
        .duration_trunc(chrono::Duration::days(1))
        .unwrap_or_else(|_| Utc::now());
    base + chrono::Duration::minutes(30 * i as i64)
}

/// Runs `clients` loops of `request` for `seconds()`, sampling the servers' RSS. A request
/// answers whether it succeeded; its latency is measured here.
async fn drive<F, Fut>(clients: usize, pids: &[u32], request: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pids) = (stop.clone(), peak.clone(), pids.to_vec());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let kb: f64 = pids.iter().map(|p| rss_mb(*p)).fold(0.0, f64::max);
                peak.fetch_max((kb * 1000.0) as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu_before: f64 = pids.iter().map(|p| cpu_ms(*p)).sum();
    let started = Instant::now();
    let deadline = started + seconds();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (request, errors) = (request.clone(), errors.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            while Instant::now() < deadline {
                let t = Instant::now();
                // A request that has not answered within 5 s counts as a timeout (an error).
                let ok = tokio::time::timeout(Duration::from_secs(5), request(c))
                    .await
                    .unwrap_or(false);
                latencies.push(t.elapsed().as_micros() as u32);
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        });
    }
    let mut all: Vec<u32> = tasks.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_spent = pids.iter().map(|p| cpu_ms(*p)).sum::<f64>() - cpu_before;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let errors = errors.load(Ordering::Relaxed);
    let answered = all.len() as u64 - errors.min(all.len() as u64);
    Figures {
        rate: answered as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
        peak_rss_mb: peak.load(Ordering::Relaxed) as f64 / 1000.0,
        cpu_ms: if answered > 0 {
            cpu_spent / answered as f64
        } else {
            0.0
        },
        anon_rss_mb: 0.0,
    }
}

fn http_client(clients: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .tcp_nodelay(true)
        .build()
        .expect("client")
}

/// Booking POSTs spread over `bases`, each a distinct free slot from the shared counter.
async fn bookings(
    clients: usize,
    bases: Vec<String>,
    pids: &[u32],
    clinic: &Clinic,
    next: Arc<AtomicU64>,
) -> Figures {
    let client = http_client(clients);
    let (service, practitioner) = (clinic.service.clone(), clinic.practitioner.clone());
    drive(clients, pids, move |c| {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/api/v1/bookings", bases[c % bases.len()]);
        let body = json!({
            "service_id": service, "practitioner_id": practitioner,
            "start": slot(i).to_rfc3339(),
            "patient": { "name": "Bench Patient", "email": format!("load{i}@example.com") },
            "consent": { "privacy": true, "marketing": false }
        });
        let client = client.clone();
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await
}

/// Seat POSTs for the class's sessions in turn, each by a new patient: answered 201.
async fn seats(clients: usize, base: String, pids: &[u32], clinic: &Clinic) -> Figures {
    let client = http_client(clients);
    let sessions = Arc::new(clinic.classes.clone());
    let next = Arc::new(AtomicU64::new(0));
    drive(clients, pids, move |_| {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let session = &sessions[(i / CLASS_PLACES) as usize % sessions.len()];
        let url = format!("{base}/api/v1/classes/{session}/seats");
        let body = json!({
            "patient": { "name": "Bench Patient", "email": format!("seat{i}@example.com") },
            "consent": { "privacy": true, "marketing": false }
        });
        let client = client.clone();
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await
}

/// GETs of one URL, answered 200 with the body read.
async fn gets(clients: usize, url: String, pids: &[u32]) -> Figures {
    let client = http_client(clients);
    drive(clients, pids, move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            match client.get(url).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
}

fn week_query(base: &str, clinic: &Clinic) -> String {
    let from = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let to = from + chrono::Duration::days(6);
    format!(
        "{base}/api/v1/availability?service_id={}&practitioner_id={}&from={from}&to={to}",
        clinic.search_service, clinic.search_practitioner
    )
}

/// The bare SQLite ceiling: one connection, WAL, synchronous=FULL, each transaction an
/// overlap check and an insert, for `seconds()`.
async fn bare_sqlite(work: &Path) -> Figures {
    let path = work.join(format!("bare-{}.db", uuid::Uuid::new_v4().simple()));
    let settings = frontdesk::config::DatabaseSettings {
        url: format!("sqlite://{}?mode=rwc", path.display()),
        max_connections: Some(1),
    };
    let db = frontdesk::store::connect(&settings).await.expect("sqlite");
    db.execute_unprepared(
        "CREATE TABLE booked (id INTEGER PRIMARY KEY, practitioner INTEGER NOT NULL, \
         start_at INTEGER NOT NULL, end_at INTEGER NOT NULL); \
         CREATE INDEX booked_range ON booked (practitioner, start_at, end_at)",
    )
    .await
    .expect("table");
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut i = 0i64;
    while started.elapsed() < seconds() {
        let t = Instant::now();
        let (s, e) = (i * 30, i * 30 + 30);
        let txn = frontdesk::store::begin_write(&db).await.expect("begin");
        let clash = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM booked WHERE practitioner = 1 AND start_at < ? AND end_at > ?",
                [e.into(), s.into()],
            ))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.try_get::<i64>("", "n").ok());
        if clash == Some(0) {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "INSERT INTO booked (practitioner, start_at, end_at) VALUES (1, ?, ?)",
                [s.into(), e.into()],
            ))
            .await
            .expect("insert");
            txn.commit().await.expect("commit");
            done.fetch_add(1, Ordering::Relaxed);
        } else {
            errors += 1;
        }
        latencies.push(t.elapsed().as_micros() as u32);
        i += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| f64::from(latencies[(latencies.len() as f64 * p) as usize]) / 1000.0;
    db.close().await.ok();
    Figures {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        errors,
        peak_rss_mb: 0.0,
        cpu_ms: 0.0,
        anon_rss_mb: 0.0,
    }
}

/// The bare PostgreSQL ceiling: single-statement inserts under an exclusion constraint like
/// the appointments' (btree_gist over practitioner and the time range), 64 concurrent.
async fn bare_postgres(url: &str) -> Figures {
    let db = Database::connect(url).await.expect("postgres");
    let table = format!("bare_{}", uuid::Uuid::new_v4().simple());
    db.execute_unprepared(&format!(
        "CREATE EXTENSION IF NOT EXISTS btree_gist; \
         CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, practitioner INT NOT NULL, \
         blocked tstzrange NOT NULL, \
         EXCLUDE USING gist (practitioner WITH =, blocked WITH &&))"
    ))
    .await
    .expect("table");
    // Connected as the service connects (`store::connect`: no TLS to a server on this machine).
    let settings = frontdesk::config::DatabaseSettings {
        url: url.to_string(),
        max_connections: Some(16),
    };
    let pool = frontdesk::store::connect(&settings).await.expect("pool");
    let next = Arc::new(AtomicU64::new(0));
    let sql = Arc::new(format!(
        "INSERT INTO {table} (practitioner, blocked) VALUES (1, tstzrange($1, $2))"
    ));
    let figures = drive(64, &[], move |_| {
        let (pool, sql) = (pool.clone(), sql.clone());
        let start = slot(next.fetch_add(1, Ordering::Relaxed));
        async move {
            pool.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql.as_str(),
                [start.into(), (start + chrono::Duration::minutes(30)).into()],
            ))
            .await
            .is_ok()
        }
    })
    .await;
    db.execute_unprepared(&format!("DROP TABLE {table}"))
        .await
        .ok();
    figures
}

/// Every figure of one run, by phase name.
type Run = Vec<(String, Figures)>;

async fn one_run(work: &Path, postgres: Option<&str>) -> Run {
    let mut out: Run = Vec::new();
    // SQLite: one server for the booking levels (fresh slots from one counter).
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        work.join(format!("run-{}.db", uuid::Uuid::new_v4().simple()))
            .display()
    );
    let server = Server::start(work, &db_url, "sqlite");
    let pid = [server.child.id()];
    let clinic = setup(&http_client(1), &server.base).await;
    tokio::time::sleep(IDLE).await;
    out.push((
        "idle RSS, SQLite".into(),
        Figures {
            peak_rss_mb: server.rss_mb(),
            anon_rss_mb: status_mb(server.child.id(), "RssAnon:"),
            ..Default::default()
        },
    ));
    let next = Arc::new(AtomicU64::new(0));
    for clients in [1, 4, 16, 64] {
        let name = format!("booking POST, SQLite, {clients} clients");
        if wanted(&name) {
            let base = vec![server.base.clone()];
            out.push((
                name,
                bookings(clients, base, &pid, &clinic, next.clone()).await,
            ));
        }
    }
    let name = "seat POST, SQLite, 64 clients, one class";
    if wanted(name) {
        let f = seats(64, server.base.clone(), &pid, &clinic).await;
        out.push((name.into(), f));
    }
    let name = "bare SQLite check-and-insert (ceiling)";
    if wanted(name) {
        out.push((name.into(), bare_sqlite(work).await));
    }
    let name = "slot search, SQLite, 64 connections";
    if wanted(name) {
        let f = gets(64, week_query(&server.base, &clinic), &pid).await;
        out.push((name.into(), f));
    }
    let name = "/health/live, 64 connections (ceiling)";
    if wanted(name) {
        let f = gets(64, format!("{}/health/live", server.base), &pid).await;
        out.push((name.into(), f));
    }
    drop(server);

    if let Some(admin_url) = postgres {
        // Not `name`: the phases below reuse that, and the database is dropped by this one.
        let database = format!("frontdesk_load_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await.expect("postgres");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create database");
        let mut url = url::Url::parse(admin_url).expect("url");
        url.set_path(&database);
        let url = url.to_string();
        let first = Server::start(work, &url, "postgres-1");
        let clinic = setup(&http_client(1), &first.base).await;
        let second = Server::start(work, &url, "postgres-2");
        tokio::time::sleep(IDLE).await;
        let pids = [first.child.id(), second.child.id()];
        out.push((
            "idle RSS, PostgreSQL".into(),
            Figures {
                peak_rss_mb: first.rss_mb().max(second.rss_mb()),
                anon_rss_mb: status_mb(first.child.id(), "RssAnon:")
                    .max(status_mb(second.child.id(), "RssAnon:")),
                ..Default::default()
            },
        ));
        let bases = vec![first.base.clone(), second.base.clone()];
        let name = "booking POST, PostgreSQL, 64 clients, 2 instances";
        if wanted(name) {
            let next = Arc::new(AtomicU64::new(0));
            out.push((name.into(), bookings(64, bases, &pids, &clinic, next).await));
        }
        let name = "bare PostgreSQL insert under the exclusion constraint (ceiling)";
        if wanted(name) {
            out.push((name.into(), bare_postgres(&url).await));
        }
        let name = "slot search, PostgreSQL, 64 connections";
        if wanted(name) {
            let f = gets(64, week_query(&first.base, &clinic), &pids[..1]).await;
            out.push((name.into(), f));
        }
        drop(first);
        drop(second);
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            .await
            .ok();
        // What these phases wrote is flushed now rather than in the background while the next
        // run's SQLite phases wait for their own fsyncs.
        admin.execute_unprepared("CHECKPOINT").await.ok();
    }
    // SAFETY: sync has no preconditions; it flushes every file system's dirty pages.
    unsafe { libc::sync() };
    out
}

/// The machine's 1-minute load average: on a shared machine, what else was running.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Whether `LOAD_ONLY` (absent: every phase) selects the phase `name`.
fn wanted(name: &str) -> bool {
    std::env::var("LOAD_ONLY").map_or(true, |only| name.contains(only.as_str()))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn table(all: &[Run], loads: &[String]) -> String {
    let mut s = String::new();
    let runs = all.len();
    s.push_str(&format!(
        "Machine load (1-minute average) as each run began: {}.\n\n",
        loads.join(" / ")
    ));
    s.push_str(&format!(
        "| phase | per second (median of {runs}) | runs | p50 | p99 | errors (all runs) | peak RSS | server CPU per request |\n|---|---|---|---|---|---|---|---|\n"
    ));
    let names: Vec<String> = all[0].iter().map(|(n, _)| n.clone()).collect();
    let get = |name: &str| -> Vec<Figures> {
        all.iter()
            .filter_map(|run| run.iter().find(|(n, _)| n == name).map(|(_, f)| f.clone()))
            .collect()
    };
    let med = |name: &str, pick: fn(&Figures) -> f64| median(get(name).iter().map(pick).collect());
    for name in &names {
        let figures = get(name);
        if name.starts_with("idle RSS") {
            s.push_str(&format!(
                "| {name} | | | | | | {:.1} MB ({:.1} MB anonymous) | |\n",
                med(name, |f| f.peak_rss_mb),
                med(name, |f| f.anon_rss_mb)
            ));
            continue;
        }
        let each: Vec<String> = figures.iter().map(|f| format!("{:.0}", f.rate)).collect();
        let rss = med(name, |f| f.peak_rss_mb);
        let cpu = med(name, |f| f.cpu_ms);
        s.push_str(&format!(
            "| {name} | **{:.0}** | {} | {:.2} ms | {:.2} ms | {} | {} | {} |\n",
            med(name, |f| f.rate),
            each.join(" / "),
            med(name, |f| f.p50_ms),
            med(name, |f| f.p99_ms),
            figures.iter().map(|f| f.errors).sum::<u64>(),
            if rss > 0.0 {
                format!("{rss:.1} MB")
            } else {
                String::new()
            },
            if cpu > 0.0 {
                format!("{cpu:.2} ms")
            } else {
                String::new()
            },
        ));
    }
    let rate = |name: &str| med(name, |f| f.rate);
    let ratio = |a: &str, b: &str| {
        let (a, b) = (rate(a), rate(b));
        if b > 0.0 { 100.0 * a / b } else { 0.0 }
    };
    s.push_str("\nRatios (of medians):\n\n");
    let bare = "bare SQLite check-and-insert (ceiling)";
    for clients in [16, 64] {
        s.push_str(&format!(
            "- SQLite booking at {clients} clients / bare SQLite loop: {:.0}%\n",
            ratio(&format!("booking POST, SQLite, {clients} clients"), bare)
        ));
    }
    s.push_str(&format!(
        "- SQLite booking, 64 clients / 16 clients: {:.0}%\n",
        ratio(
            "booking POST, SQLite, 64 clients",
            "booking POST, SQLite, 16 clients"
        )
    ));
    s.push_str(&format!(
        "- slot search (SQLite, cache off) / `/health/live`: {:.0}%\n",
        ratio(
            "slot search, SQLite, 64 connections",
            "/health/live, 64 connections (ceiling)"
        )
    ));
    if names.iter().any(|n| n.contains("PostgreSQL")) {
        s.push_str(&format!(
            "- PostgreSQL booking (2 instances, 64 clients) / bare insert: {:.0}%\n",
            ratio(
                "booking POST, PostgreSQL, 64 clients, 2 instances",
                "bare PostgreSQL insert under the exclusion constraint (ceiling)"
            )
        ));
    }
    s
}

const BEGIN: &str = "<!-- load:begin -->";
const END: &str = "<!-- load:end -->";

fn write_benchmarks(tables: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!(
        "{BEGIN}\nWritten by `cargo bench --bench load` on {} ({} s per phase, {} runs; a shared \
         2-core machine, load generator on the same cores).\n\n{tables}{END}",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        seconds().as_secs(),
        runs()
    );
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &current[..b], &current[e + END.len()..])
        }
        _ => format!("{current}\n## Load run (`benches/load/`)\n\n{block}\n"),
    };
    std::fs::write(&path, updated).expect("write BENCHMARKS.md");
}

fn main() {
    // `cargo test --all-targets` runs bench targets in test mode: nothing to check here.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let postgres = std::env::var("FRONTDESK_BENCH_POSTGRES_URL").ok();
    let work = tempfile::tempdir().expect("temp dir");
    let mut all = Vec::new();
    let mut loads = Vec::new();
    for n in 1..=runs() {
        loads.push(load_average());
        println!("== run {n} of {} (load average {})", runs(), loads[n - 1]);
        let run = runtime.block_on(one_run(work.path(), postgres.as_deref()));
        for (name, f) in &run {
            println!(
                "{name:<70} {:>8.0}/s p50 {:>7.2} ms p99 {:>7.2} ms errors {:>4} rss {:>5.1} MB cpu {:>5.2} ms",
                f.rate, f.p50_ms, f.p99_ms, f.errors, f.peak_rss_mb, f.cpu_ms
            );
        }
        let _ = std::io::stdout().flush();
        all.push(run);
    }
    let tables = table(&all, &loads);
    println!("\n{tables}");
    if std::env::var("LOAD_NO_WRITE").is_err() && std::env::var("LOAD_ONLY").is_err() {
        write_benchmarks(&tables);
    }
}
