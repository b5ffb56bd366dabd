//! What every request handler shares: the database pool, the settings and the rate limiters.

use std::sync::Arc;

use chrono_tz::Tz;
use sea_orm::DatabaseConnection;

use crate::store::{busy::BusyCache, online_booking, writer::Writer};
use crate::{
    auth::{password::HashGate, throttle::LoginThrottle},
    cache::TtlCache,
    config::Settings,
    email::Mailer,
    http::{client::TrustedProxies, rate_limit::RateLimits},
    metrics::Metrics,
    secrets::IpHasher,
    store::availability::StaticCache,
    webhooks::subscribers::Subscribers,
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
    /// Serialised availability answers by query, kept `availability.answer_cache_ms` and at
    /// most `availability.answer_cache_max_kb`; cleared by every successful write here.
    pub slot_answers: TtlCache<String, bytes::Bytes>,
    /// `server.trusted_proxies`, read by the one function that names the client.
    pub trusted_proxies: TrustedProxies,
    /// Failed logins per submitted address (in memory, bounded, decaying).
    pub login_throttle: LoginThrottle,
    /// Bounds the password hashes running at once (`auth.max_concurrent_hashes`).
    pub hashing: HashGate,
    /// Turns client IPs into the hashes stored with enquiries (`privacy.ip_hash_key`).
    pub ip_hasher: IpHasher,
    /// The way emails leave the outbox (SMTP or `.eml` files), with its connection pool.
    pub mailer: Mailer,
    /// Busy ranges for slot search, in memory on SQLite; dropped by every write here.
    pub busy: BusyCache,
    /// Booking writes queue here (one SQLite writer with group commit; direct on PostgreSQL).
    pub writer: Writer,
    /// PostgreSQL's online bookings queue here, written in batches with group commit.
    pub online_bookings: online_booking::Queue,
    /// Which webhook endpoints subscribe to what; cleared by every endpoint change here.
    pub webhook_subscribers: Subscribers,
}

impl AppState {
    /// The state, with the IP hash key from `privacy.ip_hash_key`, or a random one until
    /// `startup` puts the database's in place (see `secrets::ip_hash_key`).
    pub fn new(db: DatabaseConnection, settings: Settings, mailer: Mailer) -> Self {
        let tz = settings.time_zone();
        let answer_cache_bytes = settings
            .availability
            .answer_cache_max_kb
            .saturating_mul(1024);
        let limits = RateLimits::new(&settings.rate_limit);
        let answer_ttl = std::time::Duration::from_millis(settings.availability.answer_cache_ms);
        let trusted_proxies = TrustedProxies::new(&settings.server.trusted_proxies);
        let login_throttle = LoginThrottle::new(
            settings.auth.lockout_threshold,
            crate::auth::throttle::CAPACITY,
        );
        let hashing = HashGate::new(settings.auth.max_concurrent_hashes());
        let ip_hasher = IpHasher::from_settings(&settings.privacy);
        let writer = Writer::start(db.clone());
        let online_bookings = online_booking::Queue::start(db.clone());
        let metrics = Metrics::new(&db);
        let busy = BusyCache::for_backend(db.get_database_backend());
        Self {
            db,
            settings: Arc::new(settings),
            tz,
            limits,
            metrics,
            slot_inputs: StaticCache::new(std::time::Duration::from_secs(5), 1_000),
            slot_answers: TtlCache::bounded_in_bytes(answer_ttl, answer_cache_bytes),
            trusted_proxies,
            login_throttle,
            hashing,
            ip_hasher,
            mailer,
            busy,
            writer,
            online_bookings,
            webhook_subscribers: Subscribers::new(),
        }
    }
}
