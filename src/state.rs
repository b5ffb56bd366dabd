//! What every request handler shares: the database pool, the settings and the rate limiters.

use std::sync::Arc;

use chrono_tz::Tz;
use sea_orm::DatabaseConnection;

use crate::store::{busy::BusyCache, writer::Writer};
use crate::{
    cache::TtlCache, config::Settings, email::Mailer, http::rate_limit::RateLimits,
    metrics::Metrics, store::availability::StaticCache,
};

pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    /// The clinic's time zone, parsed once from `clinic.time_zone`.
    pub tz: Tz,
    pub limits: RateLimits,
    pub metrics: Metrics,
    /// Slowly-changing slot-search inputs, cached for a few seconds (see `StaticCache`).
    pub slot_inputs: StaticCache,
    /// Serialised availability answers by query, kept `availability.answer_cache_ms`; cleared
    /// by every successful write on this instance.
    pub slot_answers: TtlCache<String, bytes::Bytes>,
    /// The way emails leave the outbox (SMTP or `.eml` files), with its connection pool.
    pub mailer: Mailer,
    /// Busy ranges for slot search, in memory on SQLite; dropped by every write here.
    pub busy: BusyCache,
    /// Booking writes queue here (one SQLite writer with group commit; direct on PostgreSQL).
    pub writer: Writer,
}

impl AppState {
    pub fn new(db: DatabaseConnection, settings: Settings, mailer: Mailer) -> Self {
        let tz = settings.time_zone();
        let limits = RateLimits::new(&settings.rate_limit);
        let answer_ttl = std::time::Duration::from_millis(settings.availability.answer_cache_ms);
        let writer = Writer::start(db.clone());
        let metrics = Metrics::new(&db);
        let busy = BusyCache::for_backend(db.get_database_backend());
        Self {
            db,
            settings: Arc::new(settings),
            tz,
            limits,
            metrics,
            slot_inputs: StaticCache::new(std::time::Duration::from_secs(5), 1_000),
            slot_answers: TtlCache::new(answer_ttl, 10_000),
            mailer,
            busy,
            writer,
        }
    }
}
