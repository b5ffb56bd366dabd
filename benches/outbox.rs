//! Outbox throughput and delay against the in-process SMTP server of the test suite.
//!
//!   cargo bench --bench outbox                       # SQLite (WAL, synchronous=FULL)
//!   FRONTDESK_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench --bench outbox                     # and PostgreSQL (a scratch database)
//!
//! Throughput: 2,000 pending emails, drained by `worker::run_once` steps as fast as they go
//! (claim a batch, send each over the pooled SMTP connection, record each outcome).
//! Delay: the service's own worker at the default 1,000 ms poll interval; one email at a time
//! is committed at a random moment and timed until the SMTP server has it.

#[path = "../tests/api/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use frontdesk::{
    config::{EmailTransportKind, Settings, SmtpTls},
    email::{self, EmailKind, Recipient, worker},
    startup::Application,
    state::AppState,
    store,
};
use sea_orm::{ConnectionTrait, Database};
use smtp::SmtpServer;
use uuid::Uuid;

const MESSAGES: usize = 2_000;
const DELAY_SAMPLES: usize = 30;

async fn start(database_url: &str, smtp: &SmtpServer, worker_enabled: bool) -> Arc<AppState> {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_for(&config_dir, "test").expect("settings");
    settings.database.url = database_url.to_string();
    settings.email.transport = EmailTransportKind::Smtp;
    settings.email.smtp.host = "127.0.0.1".into();
    settings.email.smtp.port = smtp.port();
    settings.email.smtp.tls = SmtpTls::None;
    settings.email.outbox.worker_enabled = worker_enabled;
    let app = Application::build(settings).await.expect("app");
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    state
}

/// Writes `n` enquiry acknowledgements, 100 per transaction.
async fn enqueue(state: &AppState, n: usize) {
    let to = Recipient::new("alex@visitors.test", "Alex Visitor");
    let vars = [("reference", "EQ-1"), ("preferred_contact", "email")];
    for chunk in 0..n.div_ceil(100) {
        let txn = store::begin_write(&state.db).await.expect("begin");
        for _ in 0..(n - chunk * 100).min(100) {
            email::enqueue(
                &txn,
                &state.settings,
                EmailKind::EnquiryAck,
                &to,
                None,
                &vars,
            )
            .await
            .expect("enqueue");
        }
        txn.commit().await.expect("commit");
    }
}

async fn throughput(label: &str, database_url: &str) {
    let smtp = SmtpServer::start().await;
    let state = start(database_url, &smtp, false).await;
    enqueue(&state, MESSAGES).await;
    let started = Instant::now();
    let mut steps = 0;
    while worker::run_once(&state).await.expect("step") > 0 {
        steps += 1;
    }
    let elapsed = started.elapsed();
    let sent = smtp.messages().len();
    assert_eq!(sent, MESSAGES, "every message arrived");
    println!(
        "{label}: {sent} emails in {:.2} s = {:.0} emails/s ({steps} steps, {} SMTP connection(s))",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        smtp.connections(),
    );
    state.db.clone().close().await.ok();
}

async fn delay(label: &str, database_url: &str) {
    let smtp = SmtpServer::start().await;
    let state = start(database_url, &smtp, true).await;
    assert_eq!(state.settings.email.outbox.poll_interval_ms, 1000);
    let mut delays = Vec::new();
    for i in 0..DELAY_SAMPLES {
        // Commit at a moment unrelated to the worker's ticks.
        tokio::time::sleep(Duration::from_millis(rand_ms(i))).await;
        enqueue(&state, 1).await;
        let committed = Instant::now();
        let deadline = committed + Duration::from_secs(5);
        loop {
            if let Some(m) = smtp.messages().get(i) {
                delays.push(m.at.saturating_duration_since(committed));
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
        "{label}: enqueue-to-delivery over {} emails at poll_interval_ms=1000: min {:.0} ms, \
         median {:.0} ms, mean {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        delays.len(),
        ms(delays[0]),
        ms(delays[delays.len() / 2]),
        mean,
        ms(delays[delays.len() * 9 / 10]),
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
