//! What blocks practitioners' time, kept in memory for slot search on SQLite. One instance owns
//! a SQLite database (several instances share only PostgreSQL), and every write of that
//! instance drops the copies (`invalidate`, called after each successful write request), so a
//! listing computes from the same ranges the database holds without a query per request. The
//! copies also expire after a few seconds, in case something outside this process wrote.
//! Bookings never use them: they re-read inside their write transaction. On PostgreSQL other
//! instances write too, so every search reads the database.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use uuid::Uuid;

/// (practitioner, start, end) of every busy range in a span.
pub type BusyRanges = Arc<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>>;

type Key = (Vec<Uuid>, DateTime<Utc>, DateTime<Utc>);

struct Entry {
    generation: u64,
    read_at: Instant,
    ranges: BusyRanges,
}

pub struct BusyCache {
    enabled: bool,
    ttl: Duration,
    max_entries: usize,
    /// Raised by every write; an entry read under an older generation is never served.
    generation: AtomicU64,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl BusyCache {
    /// Kept only for SQLite databases.
    pub fn for_backend(backend: DbBackend) -> Self {
        Self {
            enabled: backend == DbBackend::Sqlite,
            ttl: Duration::from_secs(5),
            max_entries: 1_000,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Something was written: no copy read before now may be served.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// The busy ranges of `practitioner_ids` in [from, until): the kept copy when it is of
    /// the current generation and fresh, else read (appointments and time off, one query).
    pub async fn busy_ranges(
        &self,
        db: &DatabaseConnection,
        practitioner_ids: &[Uuid],
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<BusyRanges, DbErr> {
        if !self.enabled {
            return super::appointments::busy_ranges(db, practitioner_ids, from, until)
                .await
                .map(Arc::new);
        }
        let key = (practitioner_ids.to_vec(), from, until);
        // Read before the query: a write that lands while the query runs raises it, and the
        // copy stored under the old value is then never served.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Ok(entries) = self.entries.lock()
            && let Some(entry) = entries.get(&key)
            && entry.generation == generation
            && entry.read_at.elapsed() < self.ttl
        {
            return Ok(entry.ranges.clone());
        }
        let read_at = Instant::now();
        let ranges =
            Arc::new(super::appointments::busy_ranges(db, practitioner_ids, from, until).await?);
        if let Ok(mut entries) = self.entries.lock()
            && generation == self.generation.load(Ordering::SeqCst)
        {
            if entries.len() >= self.max_entries {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    generation,
                    read_at,
                    ranges: ranges.clone(),
                },
            );
        }
        Ok(ranges)
    }
}
