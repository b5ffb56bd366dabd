//! Which active endpoints subscribe to which events, kept in memory so that a booking's write
//! slot does not read the endpoint table every time. Every change to an endpoint made by this
//! process clears it (`forget`); the short lifetime bounds what another process's change (the
//! CLI, another instance) can leave stale.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::{EventType, endpoints};

/// How long a read of the endpoint table is trusted without a change here.
const LIFETIME: Duration = Duration::from_secs(2);

/// The active endpoints and the events each subscribes to.
type Subscriptions = std::sync::Arc<Vec<(Uuid, Vec<EventType>)>>;

#[derive(Default)]
pub struct Subscribers {
    /// Bumped by every `forget`, so a read that overlapped a change is not kept.
    generation: AtomicU64,
    kept: Mutex<Option<(u64, Instant, Subscriptions)>>,
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops what is kept; call after every committed change to an endpoint.
    pub fn forget(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.lock() = None;
    }

    /// The ids of the active endpoints subscribed to `event`, read through `conn` when
    /// nothing fresh is kept.
    pub async fn of(
        &self,
        conn: &impl ConnectionTrait,
        event: EventType,
    ) -> Result<Vec<Uuid>, DbErr> {
        let all = self.all(conn).await?;
        Ok(all
            .iter()
            .filter(|(_, events)| events.contains(&event))
            .map(|(id, _)| *id)
            .collect())
    }

    async fn all(&self, conn: &impl ConnectionTrait) -> Result<Subscriptions, DbErr> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((kept_generation, at, subscriptions)) = &*self.lock()
            && *kept_generation == generation
            && at.elapsed() < LIFETIME
        {
            return Ok(subscriptions.clone());
        }
        let read = Subscriptions::new(
            endpoints::active(conn)
                .await?
                .iter()
                .map(|e| (e.id, endpoints::events_of(e)))
                .collect(),
        );
        let mut kept = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            *kept = Some((generation, Instant::now(), read.clone()));
        }
        Ok(read)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Instant, Subscriptions)>> {
        // A poisoned lock only means a panic elsewhere while swapping a value; it is usable.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}
