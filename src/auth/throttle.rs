//! Failed logins per submitted address, in this instance's memory: a failure counts for
//! fifteen minutes, an address with `threshold` counted failures is throttled until the
//! oldest of them expires, and at most `capacity` addresses are tracked (the least recently
//! used are forgotten first). Addresses are kept as SHA-256 digests, never as typed.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

/// How long a failed login counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// How many addresses one instance tracks at most.
pub const CAPACITY: usize = 10_000;

type Key = [u8; 32];

pub struct LoginThrottle {
    threshold: usize,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Last use → key, oldest first: the eviction order.
    recency: BTreeMap<u64, Key>,
    tick: u64,
}

struct Entry {
    failures: VecDeque<Instant>,
    last_used: u64,
}

impl LoginThrottle {
    pub fn new(threshold: u32, capacity: usize) -> Self {
        Self {
            threshold: usize::try_from(threshold).unwrap_or(usize::MAX).max(1),
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// `Err(wait)` while `address` is throttled: how long until a failure stops counting.
    pub fn check(&self, address: &str, now: Instant) -> Result<(), Duration> {
        let key = key(address);
        let Ok(mut inner) = self.inner.lock() else {
            return Ok(());
        };
        let Some(entry) = inner.entries.get_mut(&key) else {
            return Ok(());
        };
        expire(&mut entry.failures, now);
        if entry.failures.len() < self.threshold {
            return Ok(());
        }
        let deciding = entry.failures[entry.failures.len() - self.threshold];
        Err((deciding + WINDOW).saturating_duration_since(now))
    }

    /// Counts a failed login for `address` at `now`.
    pub fn record_failure(&self, address: &str, now: Instant) {
        let key = key(address);
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.entry(key).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            last_used: tick,
        });
        inner.recency.remove(&entry.last_used);
        entry.last_used = tick;
        inner.recency.insert(tick, key);
        expire(&mut entry.failures, now);
        entry.failures.push_back(now);
        // Only the newest `threshold` failures can decide anything.
        while entry.failures.len() > self.threshold {
            entry.failures.pop_front();
        }
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.recency.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
    }

    /// A successful login starts the address's count again.
    pub fn clear(&self, address: &str) {
        let key = key(address);
        if let Ok(mut inner) = self.inner.lock()
            && let Some(entry) = inner.entries.remove(&key)
        {
            inner.recency.remove(&entry.last_used);
        }
    }

    /// Drops addresses whose failures have all expired.
    pub fn forget_expired(&self, now: Instant) {
        if let Ok(mut inner) = self.inner.lock() {
            let inner = &mut *inner;
            let recency = &mut inner.recency;
            inner.entries.retain(|_, entry| {
                expire(&mut entry.failures, now);
                let keep = !entry.failures.is_empty();
                if !keep {
                    recency.remove(&entry.last_used);
                }
                keep
            });
        }
    }

    /// How many addresses are tracked now.
    pub fn tracked(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.entries.len())
    }
}

fn key(address: &str) -> Key {
    Sha256::digest(address.trim().to_lowercase().as_bytes()).into()
}

fn expire(failures: &mut VecDeque<Instant>, now: Instant) {
    while failures
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= WINDOW)
    {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn an_address_is_throttled_at_the_threshold_until_its_oldest_failure_expires() {
        let throttle = LoginThrottle::new(3, 100);
        let t0 = Instant::now();
        for i in 0..2 {
            throttle.record_failure("a@x.test", t0 + MIN * i);
        }
        assert!(throttle.check("a@x.test", t0 + 2 * MIN).is_ok());
        throttle.record_failure("A@X.test ", t0 + 2 * MIN);
        let wait = throttle
            .check("a@x.test", t0 + 2 * MIN)
            .expect_err("throttled");
        assert_eq!(wait, 13 * MIN);
        // Other addresses are not affected.
        assert!(throttle.check("b@x.test", t0 + 2 * MIN).is_ok());
        // Fifteen minutes after the first failure it stops counting.
        assert!(throttle.check("a@x.test", t0 + 15 * MIN).is_ok());
    }

    #[test]
    fn a_trickle_of_failures_never_throttles_for_good() {
        let throttle = LoginThrottle::new(3, 100);
        let t0 = Instant::now();
        // One failure every five minutes, for a day: never three within fifteen minutes.
        for i in 0..288 {
            let at = t0 + 5 * MIN * i + Duration::from_secs(1);
            assert!(throttle.check("a@x.test", at).is_ok(), "throttled at {i}");
            throttle.record_failure("a@x.test", at);
        }
    }

    #[test]
    fn a_success_clears_the_count() {
        let throttle = LoginThrottle::new(2, 100);
        let t0 = Instant::now();
        throttle.record_failure("a@x.test", t0);
        throttle.clear("a@x.test");
        throttle.record_failure("a@x.test", t0);
        assert!(throttle.check("a@x.test", t0).is_ok());
    }

    #[test]
    fn the_least_recently_used_addresses_are_dropped_past_the_capacity() {
        let throttle = LoginThrottle::new(1, 3);
        let t0 = Instant::now();
        for a in ["a", "b", "c"] {
            throttle.record_failure(a, t0);
        }
        // "a" is used again, so "b" is now the least recently used.
        throttle.record_failure("a", t0);
        throttle.record_failure("d", t0);
        assert_eq!(throttle.tracked(), 3);
        assert!(throttle.check("b", t0).is_ok());
        for kept in ["a", "c", "d"] {
            assert!(throttle.check(kept, t0).is_err(), "{kept}");
        }
        for i in 0..1000 {
            throttle.record_failure(&format!("flood{i}"), t0);
        }
        assert_eq!(throttle.tracked(), 3);
        throttle.forget_expired(t0 + WINDOW);
        assert_eq!(throttle.tracked(), 0);
    }
}
