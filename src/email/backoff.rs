//! How long an email waits after failed tries: doubling from `email.outbox.backoff_base_seconds`
//! up to `email.outbox.backoff_max_seconds`, with jitter so that emails that failed together
//! (an outage) do not all retry at the same moment.

use std::time::Duration;

/// How long to wait after the `failure`-th failed try in a row: base·2^(failure−1), ±20 %
/// jitter so that messages that failed together do not retry together, never more than
/// `max_seconds`.
pub fn backoff(base_seconds: u64, max_seconds: u64, failure: u32) -> Duration {
    backoff_with_jitter(
        base_seconds,
        max_seconds,
        failure,
        rand::random_range(0.8..=1.2),
    )
}

/// `backoff` with the jitter factor given. The jitter applies below the cap too (waits at the
/// cap spread over its last fifth), so a long outage does not line every message up.
pub fn backoff_with_jitter(
    base_seconds: u64,
    max_seconds: u64,
    failure: u32,
    factor: f64,
) -> Duration {
    let cap = max_seconds as f64;
    let exponent = failure.saturating_sub(1).min(32);
    let raw = ((base_seconds as f64) * 2f64.powi(exponent as i32)).min(cap);
    Duration::from_secs_f64((raw * factor).clamp(0.0, cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_maximum() {
        let secs = |n| backoff_with_jitter(30, 900, n, 1.0).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [30, 60, 120, 240]);
        assert_eq!([secs(5), secs(6), secs(8)], [480, 900, 900]);
        assert_eq!(secs(u32::MAX), 900);
        assert_eq!(backoff_with_jitter(30, 900, 1, 0.8).as_secs(), 24);
        assert_eq!(backoff_with_jitter(30, 900, 1, 1.2).as_secs(), 36);
        assert_eq!(backoff_with_jitter(30, 900, 9, 1.2).as_secs(), 900);
        assert_eq!(backoff_with_jitter(30, 900, 9, 0.8).as_secs(), 720);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_the_maximum() {
        for _ in 0..1000 {
            let wait = backoff(100, 900, 2).as_secs_f64();
            assert!((160.0..=240.0).contains(&wait), "{wait}");
            let capped = backoff(100, 900, 20).as_secs_f64();
            assert!((720.0..=900.0).contains(&capped), "{capped}");
        }
    }
}
