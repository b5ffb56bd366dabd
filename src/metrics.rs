//! What `/metrics` shows, in the Prometheus text format: recorded through the `metrics` facade
//! (`counter!`, `gauge!`, `histogram!` anywhere in the service) and rendered by
//! `metrics-exporter-prometheus`, installed once per process as the global recorder. The
//! exporter's own HTTP listener is not used: `/metrics` is served by the API.
//!
//! Names: `frontdesk_http_requests_total{class}`, `frontdesk_rate_limited_total`,
//! `frontdesk_http_request_duration_seconds{route,class}` (a histogram; its `_sum` and `_count`
//! are the former totals, now per route template), `frontdesk_bookings_total{outcome}`,
//! `frontdesk_writer_queue_depth`, `frontdesk_writer_batch_size` (a histogram),
//! `frontdesk_db_pool_connections{state}` and `frontdesk_db_pool_max_connections`.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DbBackend};

const REQUEST_SECONDS: &str = "frontdesk_http_request_duration_seconds";
const BATCH_SIZE: &str = "frontdesk_writer_batch_size";

/// The process's recorder, installed on first use. `None` when another recorder was installed
/// first (then this service's figures go there, and `/metrics` shows nothing of them).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_SECONDS.into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(BATCH_SIZE.into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                    )
                })
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histogram samples wait in a buffer until the next upkeep folds them into their
            // buckets; without one between scrapes the buffer grows with every request.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                        upkeep.run_upkeep();
                    }
                });
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "frontdesk_http_requests_total",
        "HTTP requests answered, by status class."
    );
    describe_counter!(
        "frontdesk_rate_limited_total",
        "Requests refused by the rate limiter."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time spent answering requests, by route template and status class."
    );
    describe_counter!(
        "frontdesk_bookings_total",
        "Booking attempts by outcome: confirmed, conflict (the slot was taken), refused (invalid, outside availability, limits)."
    );
    describe_counter!(
        "frontdesk_bookings_redecided_total",
        "PostgreSQL online bookings decided on this instance's copy of the schedule that the database found out of date (a staff change since), then decided again on fresh reads."
    );
    describe_gauge!(
        "frontdesk_writer_queue_depth",
        "Writes waiting for the database writer (SQLite), or online bookings waiting for a batch (PostgreSQL)."
    );
    describe_histogram!(
        BATCH_SIZE,
        "Writes decided per commit by the database writer (SQLite), or online bookings per batch (PostgreSQL)."
    );
    describe_gauge!(
        "frontdesk_db_pool_connections",
        "Database pool connections by state (in_use, idle)."
    );
    describe_gauge!(
        "frontdesk_db_pool_max_connections",
        "The database pool's size limit."
    );
}

/// The per-instance side of `/metrics`: what is read at scrape time (the pool), and how many
/// requests this instance has answered (which tells the memory upkeep when it went idle).
pub struct Metrics {
    db: Option<DatabaseConnection>,
    answered: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        handle();
        Self {
            db: None,
            answered: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Metrics that also report the pool of `db`.
    pub fn new(db: &DatabaseConnection) -> Self {
        handle();
        Self {
            db: Some(db.clone()),
            answered: AtomicU64::new(0),
        }
    }

    /// Requests answered so far by this instance.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Counts and times one answered request. `route` is the matched route template (never
    /// the raw path, which would carry ids and tokens).
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        let class = match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        counter!("frontdesk_http_requests_total", "class" => class).increment(1);
        histogram!(REQUEST_SECONDS, "route" => route.to_string(), "class" => class)
            .record(elapsed.as_secs_f64());
        if status == 429 {
            counter!("frontdesk_rate_limited_total").increment(1);
        }
    }

    /// The Prometheus text of everything recorded in this process.
    pub fn render(&self) -> String {
        if let Some(db) = &self.db {
            record_pool(db);
        }
        handle().map(PrometheusHandle::render).unwrap_or_default()
    }
}

/// The outbox as the database has it at scrape time.
pub struct OutboxGauges {
    /// Rows per status, every status listed.
    pub by_status: Vec<(&'static str, u64)>,
    /// Age of the oldest pending email (reminders left out); 0 when none is pending.
    pub oldest_pending_seconds: f64,
}

/// Sets `frontdesk_outbox_messages{status}` and `frontdesk_outbox_oldest_pending_seconds`
/// (read from the database at scrape time, so every instance reports the shared outbox).
pub fn record_outbox(gauges: &OutboxGauges) {
    for (status, n) in &gauges.by_status {
        gauge!("frontdesk_outbox_messages", "status" => *status).set(*n as f64);
    }
    gauge!("frontdesk_outbox_oldest_pending_seconds").set(gauges.oldest_pending_seconds);
}

/// Sets `frontdesk_smtp_failures_total{kind}` to this instance's counts (connect, timeout,
/// greeting, tls, auth, connection; refused and rejected are the server's 4xx and 5xx
/// answers about one message).
pub fn record_smtp_failures(counts: &[(&'static str, u64)]) {
    for (kind, n) in counts {
        counter!("frontdesk_smtp_failures_total", "kind" => *kind).absolute(*n);
    }
}

fn record_pool(db: &DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
    gauge!("frontdesk_db_pool_connections", "state" => "in_use").set(f64::from(size - idle));
    gauge!("frontdesk_db_pool_connections", "state" => "idle").set(f64::from(idle));
    gauge!("frontdesk_db_pool_max_connections").set(f64::from(max));
}

/// What became of a booking attempt.
#[derive(Debug, Clone, Copy)]
pub enum BookingOutcome {
    Confirmed,
    /// The slot was taken (by a concurrent booking or before).
    Conflict,
    /// Invalid, outside availability, over a limit, not changeable.
    Refused,
}

pub fn booking(outcome: BookingOutcome) {
    let outcome = match outcome {
        BookingOutcome::Confirmed => "confirmed",
        BookingOutcome::Conflict => "conflict",
        BookingOutcome::Refused => "refused",
    };
    counter!("frontdesk_bookings_total", "outcome" => outcome).increment(1);
}

/// An online booking decided on a copy of the schedule that had changed, decided again.
pub fn booking_redecided() {
    counter!("frontdesk_bookings_redecided_total").increment(1);
}

/// `delta` writes joined (+) or left (−) the writer's queue.
pub fn writer_queued(delta: i32) {
    gauge!("frontdesk_writer_queue_depth").increment(f64::from(delta));
}

/// One commit of the writer decided `jobs` writes.
pub fn writer_batch(jobs: usize) {
    histogram!(BATCH_SIZE).record(jobs as f64);
}
