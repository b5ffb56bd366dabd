//! Per-client rate limits on public POSTs and login (governor's keyed GCRA limiter), keyed by
//! the client address from `http::client` (IPv6 by `rate_limit.ipv6_prefix`). The counters
//! are per instance, by design (DESIGN §6).

use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::config::RateLimitSettings;

use super::problem::ApiError;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Bookings,
    Enquiries,
    Login,
}

pub struct RateLimits {
    bookings: Option<DefaultKeyedRateLimiter<IpAddr>>,
    enquiries: Option<DefaultKeyedRateLimiter<IpAddr>>,
    login: Option<DefaultKeyedRateLimiter<IpAddr>>,
    ipv6_prefix: u8,
}

fn per_minute(enabled: bool, n: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let n = NonZeroU32::new(n)?;
    enabled.then(|| RateLimiter::keyed(Quota::per_minute(n)))
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        Self {
            bookings: per_minute(settings.enabled, settings.bookings_per_minute),
            enquiries: per_minute(settings.enabled, settings.enquiries_per_minute),
            login: per_minute(settings.enabled, settings.login_per_minute),
            ipv6_prefix: settings.ipv6_prefix,
        }
    }

    /// Counts one request from the client at `ip` (its bucket: see `client::bucket`); past the
    /// limit, a 429 with the seconds to wait.
    pub fn check(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let limiter = match limit {
            Limit::Bookings => &self.bookings,
            Limit::Enquiries => &self.enquiries,
            Limit::Login => &self.login,
        };
        let (Some(limiter), Some(ip)) = (limiter, ip) else {
            return Ok(());
        };
        let bucket = super::client::bucket(ip, self.ipv6_prefix);
        limiter.check_key(&bucket).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            ApiError::rate_limited(wait.as_secs().max(1))
        })
    }

    /// Forgets clients that have been quiet long enough to be back at full allowance.
    pub fn forget_idle(&self) {
        for limiter in [&self.bookings, &self.enquiries, &self.login]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
