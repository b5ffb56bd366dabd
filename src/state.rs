//! What every request handler shares: the database pool, the settings and the rate limiters.

use std::sync::Arc;

use chrono_tz::Tz;
use sea_orm::DatabaseConnection;

use crate::{
    config::Settings, http::rate_limit::RateLimits, metrics::Metrics,
    store::availability::StaticCache,
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
}

impl AppState {
    pub fn new(db: DatabaseConnection, settings: Settings) -> Self {
        let tz = settings.time_zone();
        let limits = RateLimits::new(&settings.rate_limit);
        Self {
            db,
            settings: Arc::new(settings),
            tz,
            limits,
            metrics: Metrics::default(),
            slot_inputs: StaticCache::new(std::time::Duration::from_secs(5)),
        }
    }
}
