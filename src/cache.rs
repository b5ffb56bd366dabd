//! A small per-instance cache with a time to live. Only ever a copy of what the database
//! says: entries expire on their own, and writers on this instance clear it at once.
//!
//! It is bounded by weight: by entries ([`TtlCache::new`]) or by bytes
//! ([`TtlCache::bounded_in_bytes`]). Past the bound the oldest entries go first (with one TTL
//! for all, oldest is also soonest to expire), and expired entries are neither served nor
//! kept: a lookup removes what it finds expired, and every insert evicts what has expired.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Bookkeeping per entry in a byte-bounded cache (map slot, queue slot, allocation headers).
pub const ENTRY_OVERHEAD_BYTES: usize = 96;

/// What one entry costs against the bound.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for bytes::Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

pub struct TtlCache<K, V> {
    ttl: Duration,
    max_weight: usize,
    weigh: fn(&K, &V) -> usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// Keys in insertion order, with the insertion time that identifies the live entry.
    order: VecDeque<(Instant, K)>,
    weight: usize,
}

struct Entry<V> {
    at: Instant,
    value: V,
    weight: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// At most `max_entries` entries. A zero `ttl` disables the cache.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self::with_weigher(ttl, max_entries, |_, _| 1)
    }

    /// At most `max_weight` in total, each entry weighing `weigh(key, value)`.
    pub fn with_weigher(ttl: Duration, max_weight: usize, weigh: fn(&K, &V) -> usize) -> Self {
        Self {
            ttl,
            max_weight,
            weigh,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                weight: 0,
            }),
        }
    }

    /// Whether anything is ever kept (a zero TTL keeps nothing).
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(key)?;
        if entry.at.elapsed() < self.ttl {
            return Some(entry.value.clone());
        }
        if let Some(gone) = inner.entries.remove(key) {
            inner.weight -= gone.weight;
        }
        None
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let weight = (self.weigh)(&key, &value);
        if weight > self.max_weight {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let now = Instant::now();
        if let Some(old) = inner.entries.remove(&key) {
            inner.weight -= old.weight;
        }
        // Expired entries first, then the oldest until the new one fits.
        while let Some((at, _)) = inner.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            if !expired && inner.weight + weight <= self.max_weight {
                break;
            }
            if let Some((at, old_key)) = inner.order.pop_front() {
                inner.remove_if_inserted_at(&old_key, at);
            }
        }
        inner.order.push_back((now, key.clone()));
        inner.weight += weight;
        inner.entries.insert(
            key,
            Entry {
                at: now,
                value,
                weight,
            },
        );
    }

    /// Drops everything that has expired (housekeeping, so an idle cache holds nothing stale).
    pub fn evict_expired(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            while let Some((at, _)) = inner.order.front() {
                if at.elapsed() < self.ttl {
                    break;
                }
                if let Some((at, old_key)) = inner.order.pop_front() {
                    inner.remove_if_inserted_at(&old_key, at);
                }
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.entries.clear();
            inner.order.clear();
            inner.weight = 0;
        }
    }

    /// The weight of what is kept now, and its bound.
    pub fn weight(&self) -> (usize, usize) {
        let kept = self.inner.lock().map_or(0, |inner| inner.weight);
        (kept, self.max_weight)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Weigh + Clone, V: Weigh + Clone> TtlCache<K, V> {
    /// At most `max_bytes` of keys and values (plus [`ENTRY_OVERHEAD_BYTES`] each).
    pub fn bounded_in_bytes(ttl: Duration, max_bytes: usize) -> Self {
        Self::with_weigher(ttl, max_bytes, |k, v| {
            k.weight() + v.weight() + ENTRY_OVERHEAD_BYTES
        })
    }
}

impl<K: Eq + Hash, V> Inner<K, V> {
    /// Removes `key` if its live entry is the one queued at `at` (a key inserted again since
    /// has a newer queue slot, and this old slot must not remove it).
    fn remove_if_inserted_at(&mut self, key: &K, at: Instant) {
        if self.entries.get(key).is_some_and(|e| e.at == at)
            && let Some(gone) = self.entries.remove(key)
        {
            self.weight -= gone.weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.insert(2, "b");
        cache.insert(3, "c");
        assert!(cache.get(&3).is_some());
        assert_eq!(cache.len(), 2);
        // The oldest went first.
        assert_eq!(cache.get(&1), None);
        cache.clear();
        assert_eq!(cache.get(&3), None);
        let off = TtlCache::new(Duration::ZERO, 2);
        off.insert(1, "a");
        assert_eq!(off.get(&1), None);
    }

    #[test]
    fn filling_past_the_byte_bound_keeps_the_bound_and_the_newest_answers() {
        let max = 64 * 1024;
        let cache: TtlCache<String, bytes::Bytes> =
            TtlCache::bounded_in_bytes(Duration::from_secs(60), max);
        let answer = bytes::Bytes::from(vec![b'x'; 3000]);
        for i in 0..1000 {
            cache.insert(format!("query {i}"), answer.clone());
            let (kept, bound) = cache.weight();
            assert!(kept <= bound, "{kept} > {bound} after {i}");
        }
        let per_entry = "query 999".len() + 3000 + ENTRY_OVERHEAD_BYTES;
        assert_eq!(cache.len(), max / per_entry);
        assert!(cache.get(&"query 999".to_string()).is_some());
        assert!(cache.get(&"query 0".to_string()).is_none());
        // One answer bigger than the whole bound is not kept at all.
        cache.insert("huge".into(), bytes::Bytes::from(vec![0u8; max + 1]));
        assert!(cache.get(&"huge".to_string()).is_none());
        assert!(cache.weight().0 <= max);
    }

    #[test]
    fn expired_answers_are_not_served_and_are_evicted() {
        let cache: TtlCache<String, bytes::Bytes> =
            TtlCache::bounded_in_bytes(Duration::from_millis(30), 1 << 20);
        for i in 0..10 {
            cache.insert(format!("q{i}"), bytes::Bytes::from_static(b"answer"));
        }
        assert_eq!(cache.len(), 10);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"q0".to_string()), None);
        assert_eq!(
            cache.len(),
            9,
            "the expired entry that was looked up is gone"
        );
        cache.evict_expired();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.weight().0, 0);
        // Inserting also drops whatever has expired.
        cache.insert("a".into(), bytes::Bytes::from_static(b"1"));
        std::thread::sleep(Duration::from_millis(40));
        cache.insert("b".into(), bytes::Bytes::from_static(b"2"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn inserting_a_key_again_replaces_its_weight() {
        let cache: TtlCache<String, bytes::Bytes> =
            TtlCache::bounded_in_bytes(Duration::from_secs(60), 1 << 20);
        cache.insert("a".into(), bytes::Bytes::from(vec![0u8; 100]));
        cache.insert("a".into(), bytes::Bytes::from(vec![0u8; 10]));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.weight().0, 1 + 10 + ENTRY_OVERHEAD_BYTES);
    }
}
