//! One writer for SQLite, with group commit. SQLite lets one transaction write at a time;
//! writers that race for the lock sleep in its busy handler and are woken late, so under load
//! the wait, not the work, sets the pace. Here writes queue instead: one task opens a single
//! `BEGIN IMMEDIATE` transaction, hands it to each waiting job in turn (each inside its own
//! SAVEPOINT, so a job that fails undoes only itself and every job sees the ones before it),
//! COMMITs once for the whole batch, and only then are the kept jobs answered — every answer
//! is durable (`synchronous=FULL`), and one fsync is shared by the batch.
//!
//! A job is an async closure over `&DatabaseTransaction` and runs on its caller's task (so it
//! may borrow the caller's data); the writer task only owns the transaction and the order. A
//! job whose only write is one `batch::insert_atomic` call may take a bare slot
//! ([`Writer::begin_bare`]) and skip its own SAVEPOINT: two round trips to the database thread
//! fewer per job. On PostgreSQL there is no queue: each job runs in its own transaction, and
//! the database's constraints decide races as before.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot};

/// Jobs that may wait for the writer; past it callers wait to be queued (back-pressure).
pub const QUEUE_CAPACITY: usize = 1024;
/// Jobs decided in one transaction at most, so one commit never waits on too much work, and
/// the savepoint journal a batch keeps in memory (see [`own_connection`]) stays small: each
/// job's savepoint copies the pages it changes, and later jobs change the same pages again.
pub const MAX_BATCH: usize = 16;

/// How a job left the shared transaction.
enum Done {
    /// Its savepoint was released: its writes stay, it waits for the commit.
    Kept,
    /// It failed and its savepoint was rolled back; the transaction is as before it.
    Undone,
    /// A bare slot ([`Writer::begin_bare`]) ended without committing: its one atomic batch
    /// either never ran or undid itself, unless its caller went away while it ran, which the
    /// writer undoes (`batch::undo_atomic`).
    UndoneBare,
    /// Its savepoint could not be released or rolled back: the batch cannot be trusted.
    Broken,
}

/// The writer's answer to one queued job: "your turn", with the batch's transaction.
struct Turn {
    txn: Arc<DatabaseTransaction>,
    done: oneshot::Sender<Done>,
    committed: oneshot::Receiver<Result<(), String>>,
}

type Ticket = oneshot::Sender<Turn>;

/// The single writer (SQLite) or a direct transaction per job (PostgreSQL).
#[derive(Clone)]
pub struct Writer {
    db: DatabaseConnection,
    queue: Option<mpsc::Sender<Ticket>>,
}

impl Writer {
    /// Starts the writer task for a SQLite pool; on PostgreSQL, no task. Needs a Tokio runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        Self::start_restarting_past(db, WAL_RESTART_FRAMES)
    }

    /// [`Writer::start`], with the WAL started over past `frames` (see [`checkpoints`]).
    fn start_restarting_past(db: DatabaseConnection, frames: i64) -> Self {
        let queue = (db.get_database_backend() == DbBackend::Sqlite).then(|| {
            let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
            tokio::spawn(run(db.clone(), rx, frames));
            tx
        });
        Self { db, queue }
    }

    /// Whether writes go through the queue (SQLite).
    pub fn is_queued(&self) -> bool {
        self.queue.is_some()
    }

    /// Runs `job` inside a write transaction and answers once its writes are committed. An
    /// `Err` from the job undoes its writes (and only them). The job must not open another
    /// write of its own (it already holds the write slot) and must read what it decides on
    /// through the transaction it is given.
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        E: From<DbErr>,
        F: AsyncFnOnce(&DatabaseTransaction) -> Result<T, E>,
    {
        let txn = self.begin().await?;
        // An `Err` drops the slot: its savepoint rolls back and the writer goes on.
        let value = job(&txn).await?;
        txn.commit().await?;
        Ok(value)
    }
}

/// A job's share of a batch: the shared transaction, its report and its commit answer.
type Batch = (
    Arc<DatabaseTransaction>,
    oneshot::Sender<Done>,
    oneshot::Receiver<Result<(), String>>,
);

/// A write slot held as a value (see [`Writer::begin`]): use it as the transaction, then
/// `commit` (answered after the batch's COMMIT) or drop it (its writes are undone).
pub struct WriteTxn {
    /// The job's savepoint (SQLite) or its own transaction (PostgreSQL); none in a bare slot,
    /// which writes straight into the batch's transaction.
    txn: Option<DatabaseTransaction>,
    /// Whether this is a bare slot.
    bare: bool,
    /// The batch: shared transaction, report and commit answer (SQLite only).
    batch: Option<Batch>,
}

impl Writer {
    /// Takes the write slot: on SQLite a savepoint inside the writer's current batch, on
    /// PostgreSQL a transaction of its own (as `store::begin_write`). Same rules as
    /// [`Writer::write`]: write only through it, and do not hold it across slow work.
    pub async fn begin(&self) -> Result<WriteTxn, DbErr> {
        self.take_slot(false).await
    }

    /// Takes the write slot without a savepoint of its own (on SQLite; on PostgreSQL as
    /// [`Writer::begin`]), saving the two round trips that open and release one. For a job that
    /// reads, decides, and then writes everything in one `store::batch::insert_atomic` call, as
    /// its last fallible step, and nothing else: a failure before or inside that call leaves the
    /// batch's transaction as it was, and so does a caller that goes away while the call runs
    /// (the writer undoes a batch left open). A batch that ran to its end is whole and is
    /// committed with the rest even if its caller has gone, as a job that finished its savepoint
    /// is.
    pub async fn begin_bare(&self) -> Result<WriteTxn, DbErr> {
        self.take_slot(true).await
    }

    async fn take_slot(&self, bare: bool) -> Result<WriteTxn, DbErr> {
        let Some(queue) = &self.queue else {
            return Ok(WriteTxn {
                txn: Some(super::begin_write(&self.db).await?),
                bare: false,
                batch: None,
            });
        };
        let (ticket, turn) = oneshot::channel();
        // Counted before it can be taken, so the gauge never dips below the queue.
        crate::metrics::writer_queued(1);
        if queue.send(ticket).await.is_err() {
            crate::metrics::writer_queued(-1);
            return Err(DbErr::Custom("the database writer has stopped".into()));
        }
        let Turn {
            txn,
            done,
            committed,
        } = turn
            .await
            .map_err(|_| DbErr::Custom("the database writer dropped a write".into()))?;
        if bare {
            return Ok(WriteTxn {
                txn: None,
                bare: true,
                batch: Some((txn, done, committed)),
            });
        }
        match txn.begin().await {
            Ok(savepoint) => Ok(WriteTxn {
                txn: Some(savepoint),
                bare: false,
                batch: Some((txn, done, committed)),
            }),
            Err(e) => {
                drop(txn);
                let _ = done.send(Done::Broken);
                Err(e)
            }
        }
    }
}

impl WriteTxn {
    /// Keeps the writes; returns once they are committed (with the rest of the batch).
    pub async fn commit(mut self) -> Result<(), DbErr> {
        let txn = self.txn.take();
        let Some((shared, done, committed)) = self.batch.take() else {
            return match txn {
                Some(txn) => txn.commit().await,
                None => Err(DbErr::Custom("the write was already finished".into())),
            };
        };
        let released = match txn {
            Some(txn) => txn.commit().await,
            None => Ok(()),
        };
        drop(shared);
        if let Err(e) = released {
            let _ = done.send(Done::Broken);
            return Err(e);
        }
        let _ = done.send(Done::Kept);
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(DbErr::Custom(message)),
            Err(_) => Err(DbErr::Custom(
                "the database writer stopped before committing".into(),
            )),
        }
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        // Present from `begin` until `commit` consumes the value.
        match (&self.txn, &self.batch) {
            (Some(txn), _) => txn,
            (None, Some((shared, _, _))) => shared,
            (None, None) => unreachable!("a WriteTxn is used only before commit"),
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        // Not committed: the savepoint (or transaction) rolls back as it drops, before the
        // writer lets the next job in.
        drop(self.txn.take());
        if let Some((shared, done, _)) = self.batch.take() {
            drop(shared);
            let _ = done.send(if self.bare {
                Done::UndoneBare
            } else {
                Done::Undone
            });
        }
    }
}

#[async_trait::async_trait]
impl sea_orm::ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.deref_txn().get_database_backend()
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        self.deref_txn().execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        self.deref_txn().execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        self.deref_txn().query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.deref_txn().query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.deref_txn().support_returning()
    }
}

impl WriteTxn {
    fn deref_txn(&self) -> &DatabaseTransaction {
        self
    }
}

/// The writer's own connection to the same SQLite file: a pool of exactly one, so every batch
/// runs on one connection whose page cache stays warm (its own commits never invalidate it, as
/// another connection's do) and a batch never waits for a pooled connection that readers hold.
/// Its savepoint journal (`temp_store = memory`) is kept in memory rather than in a temporary
/// file: every job opens a savepoint, and writing the pages it copies to a file cost more
/// than the job's own work. It never checkpoints the WAL itself (`wal_autocheckpoint = 0`):
/// a checkpoint at COMMIT copied a thousand pages into the database file and synced it while
/// every queued booking waited, so [`checkpoints`] runs them beside the writer instead. `None`
/// for an in-memory database, which only the shared pool can reach.
async fn own_connection(db: &DatabaseConnection) -> Option<DatabaseConnection> {
    let shared = db.get_sqlite_connection_pool();
    let options = shared.connect_options();
    let file = options.get_filename().to_string_lossy();
    if file == ":memory:" || file.starts_with("file:sqlx-in-memory") {
        return None;
    }
    let own = sea_orm::sqlx::pool::PoolOptions::<sea_orm::sqlx::Sqlite>::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_with(
            (*options)
                .clone()
                .pragma("temp_store", "memory")
                .pragma("wal_autocheckpoint", "0"),
        )
        .await;
    match own {
        Ok(pool) => Some(sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)),
        Err(e) => {
            tracing::warn!(error = %e, "the database writer shares the pool: no connection of its own");
            None
        }
    }
}

/// How often [`checkpoints`] copies the WAL back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// WAL frames (pages) past which the writer starts the WAL over (see [`checkpoints`]): 16,384
/// pages is 64 MiB at SQLite's default page size.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Checkpoints the WAL from the shared pool every [`CHECKPOINT_EVERY`] while the writer has its
/// own connection: PASSIVE, so it copies what no reader still needs, runs on another
/// connection's thread beside the writer's batches and never makes them wait.
///
/// A PASSIVE checkpoint never starts the WAL over: that needs a moment when no reader is
/// reading from it, and under steady load some reader always is, so the file grew without end
/// (2 GB in a minute of the load run). Once the WAL holds more than `restart_past` frames,
/// this puts that number in `restart`, and the writer, between two batches, runs a RESTART
/// checkpoint on its own connection ([`restart_wal`]): with no writer to wait for and nothing
/// new in the WAL, readers that start then read the database file, the checkpoint waits only
/// for the readers of older snapshots to finish, and the next batch writes the WAL from its
/// beginning again.
async fn checkpoints(shared: DatabaseConnection, restart_past: i64, restart: Arc<AtomicI64>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match wal_checkpoint(&shared, "PASSIVE").await {
            Ok((_, frames)) if frames > restart_past => restart.store(frames, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the next tick tries again");
            }
        }
    }
}

/// Runs a checkpoint in `mode`: whether it had to give up waiting (busy), and the frames the
/// WAL held (-1 when not in WAL mode).
async fn wal_checkpoint(db: &DatabaseConnection, mode: &str) -> Result<(bool, i64), DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Sqlite,
            format!("PRAGMA wal_checkpoint({mode})"),
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("wal_checkpoint".into()))?;
    // (busy, frames in the WAL, frames checkpointed)
    Ok((
        row.try_get_by_index::<i64>(0)? != 0,
        row.try_get_by_index(1)?,
    ))
}

/// How long the writer's restart checkpoint waits for readers of older snapshots: a reader
/// that holds one longer (a large export, say) costs the queued bookings no more than this,
/// and the next tick asks again. Past [`RESTART_INSISTS_PAST`] times the threshold, when
/// such readers have kept the WAL from starting over for a while, it waits as long as any
/// write waits for a lock ([`super::SQLITE_BUSY_TIMEOUT`]), so the file stays bounded.
const RESTART_WAIT: Duration = Duration::from_millis(20);
const RESTART_INSISTS_PAST: i64 = 4;

/// Starts the WAL over (see [`checkpoints`]), waiting at most `wait` for readers; whether it
/// did. The connection's busy timeout is set back to the usual one afterwards.
async fn restart_wal(db: &DatabaseConnection, wait: Duration) -> Result<bool, DbErr> {
    let set_wait = |wait: Duration| format!("PRAGMA busy_timeout = {}", wait.as_millis());
    db.execute_unprepared(&set_wait(wait)).await?;
    let restarted = wal_checkpoint(db, "RESTART").await;
    db.execute_unprepared(&set_wait(super::SQLITE_BUSY_TIMEOUT))
        .await?;
    restarted.map(|(busy, _)| !busy)
}

/// The writer task: one batch at a time, until every `Writer` is dropped.
async fn run(shared: DatabaseConnection, mut queue: mpsc::Receiver<Ticket>, restart_past: i64) {
    let restart = Arc::new(AtomicI64::new(0));
    let (db, checkpointer) = match own_connection(&shared).await {
        Some(own) => (
            own,
            Some(tokio::spawn(checkpoints(
                shared,
                restart_past,
                restart.clone(),
            ))),
        ),
        None => (shared, None),
    };
    // Stops the checkpoints when the writer stops.
    let _checkpointer = checkpointer.map(AbortOnDrop);
    while let Some(first) = queue.recv().await {
        let txn = match super::begin_write(&db).await {
            Ok(txn) => Arc::new(txn),
            Err(e) => {
                // The first job's caller sees the error as a dropped turn; the next batch
                // tries again.
                tracing::warn!(error = %e, "the database writer could not begin a transaction");
                crate::metrics::writer_queued(-1);
                drop(first);
                continue;
            }
        };
        let mut kept = Vec::new();
        let mut decided = 0usize;
        let mut broken = false;
        let mut next = Some(first);
        while let Some(ticket) = next.take() {
            crate::metrics::writer_queued(-1);
            let (done_tx, done_rx) = oneshot::channel();
            let (commit_tx, commit_rx) = oneshot::channel();
            let turn = Turn {
                txn: txn.clone(),
                done: done_tx,
                committed: commit_rx,
            };
            // A caller that went away before its turn leaves nothing to decide.
            if ticket.send(turn).is_ok() {
                decided += 1;
                match done_rx.await {
                    Ok(Done::Kept) => kept.push(commit_tx),
                    // A caller dropped mid-job: its savepoint rolled back with it.
                    Ok(Done::Undone) | Err(_) => {}
                    Ok(Done::UndoneBare) => {
                        if let Err(e) = super::batch::undo_atomic(&txn).await {
                            tracing::warn!(error = %e, "a write batch could not undo a bare write");
                            broken = true;
                            break;
                        }
                    }
                    Ok(Done::Broken) => {
                        broken = true;
                        break;
                    }
                }
            }
            if decided < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        crate::metrics::writer_batch(decided);
        let result = match Arc::try_unwrap(txn) {
            Ok(txn) if broken => txn.rollback().await.map_err(|e| e.to_string()).and(Err(
                "a write in the same batch failed; nothing was saved".to_string(),
            )),
            Ok(txn) => txn.commit().await.map_err(|e| e.to_string()),
            // Every job drops its handle before reporting; this cannot happen, but a
            // transaction someone still holds must not be reported as committed.
            Err(_) => Err("the write transaction was still in use at commit".to_string()),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %e, jobs = kept.len(), "a write batch was not committed");
        }
        for answer in kept {
            let _ = answer.send(result.clone());
        }
        let frames = restart.swap(0, Ordering::Relaxed);
        if frames > 0 && result.is_ok() {
            let wait = if frames > RESTART_INSISTS_PAST.saturating_mul(restart_past) {
                super::SQLITE_BUSY_TIMEOUT
            } else {
                RESTART_WAIT
            };
            match restart_wal(&db, wait).await {
                Ok(true) => {}
                Ok(false) => tracing::debug!(frames, "a reader kept the WAL from starting over"),
                Err(e) => {
                    tracing::warn!(error = %e, "a WAL restart failed; a later batch tries again")
                }
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{
        ConnectionTrait, Statement,
        sea_query::{Expr, ExprTrait, InsertStatement, Query},
    };

    async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let settings = crate::config::DatabaseSettings {
            url,
            max_connections: None,
        };
        let db = super::super::connect(&settings).await.expect("connect");
        db.execute_unprepared("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .await
            .expect("table");
        (dir, db)
    }

    async fn insert(txn: &DatabaseTransaction, v: i64) -> Result<(), DbErr> {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO t (v) VALUES (?)",
            [v.into()],
        ))
        .await
        .map(|_| ())
    }

    async fn count(conn: &impl ConnectionTrait, v: i64) -> Result<i64, DbErr> {
        let row = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT COUNT(*) AS n FROM t WHERE v = ?",
                [v.into()],
            ))
            .await?
            .ok_or(DbErr::RecordNotFound("count".into()))?;
        row.try_get("", "n")
    }

    async fn values(db: &DatabaseConnection) -> Vec<i64> {
        db.query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT v FROM t ORDER BY v",
        ))
        .await
        .expect("select")
        .iter()
        .map(|r| r.try_get::<i64>("", "v").expect("v"))
        .collect()
    }

    async fn busy_timeout(db: &DatabaseConnection) -> i64 {
        db.query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA busy_timeout",
        ))
        .await
        .expect("pragma")
        .expect("row")
        .try_get_by_index(0)
        .expect("value")
    }

    #[tokio::test]
    async fn a_restart_that_meets_a_long_reader_gives_up_and_puts_the_busy_timeout_back() {
        let (_dir, db) = sqlite().await;
        let own = own_connection(&db).await.expect("own connection");
        own.execute_unprepared("INSERT INTO t (v) VALUES (1)")
            .await
            .expect("insert");
        // A reader that holds its snapshot, and a write after it.
        let reader = db.begin().await.expect("begin");
        assert_eq!(count(&reader, 1).await.expect("read"), 1);
        own.execute_unprepared("INSERT INTO t (v) VALUES (2)")
            .await
            .expect("insert");
        let started = std::time::Instant::now();
        let restarted = restart_wal(&own, RESTART_WAIT)
            .await
            .expect("gives up without failing");
        assert!(!restarted);
        // It gave up after its own short wait, not after the connection's 5 s.
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(busy_timeout(&own).await, 5_000);
        reader.commit().await.expect("end the read");
        assert_eq!(values(&db).await, vec![1, 2]);
        // A checkpoint that fails (here inside a transaction) puts the busy timeout back too.
        own.execute_unprepared("BEGIN IMMEDIATE")
            .await
            .expect("begin");
        assert!(restart_wal(&own, RESTART_WAIT).await.is_err());
        own.execute_unprepared("ROLLBACK").await.expect("rollback");
        assert_eq!(busy_timeout(&own).await, 5_000);
    }

    #[tokio::test]
    async fn the_wal_starts_over_while_readers_never_stop() {
        let (dir, db) = sqlite().await;
        db.execute_unprepared("CREATE TABLE pad (b BLOB NOT NULL)")
            .await
            .expect("table");
        let writer = Writer::start_restarting_past(db.clone(), 50);
        // Readers always inside a read transaction, as under load: a PASSIVE checkpoint alone
        // never finds the moment to start the WAL over.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (db, stop) = (db.clone(), stop.clone());
            readers.spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    db.execute_unprepared("SELECT COUNT(*) FROM pad")
                        .await
                        .expect("read");
                }
            });
        }
        // About 4,000 pages (16 MB) written over five seconds, 20 checkpoint ticks.
        for _ in 0..1_000 {
            writer
                .write(async |txn: &DatabaseTransaction| {
                    txn.execute_unprepared("INSERT INTO pad (b) VALUES (randomblob(12000))")
                        .await
                })
                .await
                .expect("write");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        readers.join_all().await;
        let wal = std::fs::metadata(dir.path().join("w.db-wal"))
            .expect("wal")
            .len();
        // About 0.8 MB when it starts over (2.4 MB if two restarts in a row meet a reader), 5 MB
        // and more when it does not.
        assert!(wal < 3 << 20, "the WAL grew to {wal} bytes");
    }

    #[tokio::test]
    async fn jobs_in_one_batch_see_each_other_and_a_failing_one_undoes_only_itself() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        assert!(writer.is_queued());
        // 40 jobs at once: each inserts its value unless an earlier job already did; value 7
        // is submitted twice, so the second sees the first (inside the same batch or after
        // it) and refuses; job 13 writes then fails, and must leave nothing behind.
        let mut jobs = tokio::task::JoinSet::new();
        for i in 0..40i64 {
            let writer = writer.clone();
            let v = if i == 20 { 7 } else { i };
            jobs.spawn(async move {
                let result: Result<i64, DbErr> = writer
                    .write(async move |txn| {
                        if count(txn, v).await? > 0 {
                            return Err(DbErr::Custom("taken".into()));
                        }
                        insert(txn, v).await?;
                        if v == 13 {
                            return Err(DbErr::Custom("refused after writing".into()));
                        }
                        Ok(v)
                    })
                    .await;
                (v, result.is_ok())
            });
        }
        let outcomes = jobs.join_all().await;
        let sevens = outcomes.iter().filter(|(v, ok)| *v == 7 && *ok).count();
        assert_eq!(sevens, 1, "exactly one of the two jobs for 7 wins");
        assert!(outcomes.iter().any(|(v, ok)| *v == 13 && !*ok));
        let expected: Vec<i64> = (0..40).filter(|v| *v != 13 && *v != 20).collect();
        assert_eq!(values(&db).await, expected);
    }

    #[tokio::test]
    async fn a_job_is_answered_only_after_its_batch_is_committed() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        let reader = db.clone();
        // When the answer arrives, another connection (outside the transaction) must see the
        // row: it was committed before the answer.
        for v in 0..20i64 {
            writer
                .write(async move |txn| insert(txn, v).await)
                .await
                .expect("write");
            assert_eq!(count(&reader, v).await.expect("count"), 1);
        }
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_mid_job_leaves_nothing_and_stops_nothing() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        let slow = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .write(async |txn| {
                        insert(txn, 100).await?;
                        std::future::pending::<()>().await;
                        Ok::<(), DbErr>(())
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        slow.abort();
        writer
            .write(async |txn| insert(txn, 1).await)
            .await
            .expect("the writer goes on");
        assert_eq!(values(&db).await, vec![1]);
    }

    #[tokio::test]
    async fn a_slot_taken_with_begin_commits_with_its_batch_and_a_dropped_one_leaves_nothing() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        let kept = writer.begin().await.expect("slot");
        insert(&kept, 1).await.expect("insert");
        // Not yet committed: another connection does not see it.
        assert_eq!(count(&db, 1).await.expect("count"), 0);
        kept.commit().await.expect("commit");
        assert_eq!(count(&db, 1).await.expect("count"), 1);
        {
            let dropped = writer.begin().await.expect("slot");
            insert(&dropped, 2).await.expect("insert");
        }
        let next = writer.begin().await.expect("the writer goes on");
        assert_eq!(count(&*next, 2).await.expect("count"), 0);
        insert(&next, 3).await.expect("insert");
        next.commit().await.expect("commit");
        assert_eq!(values(&db).await, vec![1, 3]);
    }

    fn inserts(values: &[i64]) -> Vec<InsertStatement> {
        values
            .iter()
            .map(|v| {
                Query::insert()
                    .into_table("t")
                    .columns(["v"])
                    .values_panic([(*v).into()])
                    .to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_bare_slot_writes_its_atomic_batch_or_nothing_and_the_batch_goes_on() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        writer
            .write(async |txn| insert(txn, 1).await)
            .await
            .expect("write");
        let mut jobs = tokio::task::JoinSet::new();
        // Job i inserts 100i, 100i + 1 and 100i + 2, except that every fourth job's last value
        // is 1 (already there): its whole batch must go, the others' must stay.
        for i in 1..=12i64 {
            let writer = writer.clone();
            jobs.spawn(async move {
                let slot = writer.begin_bare().await?;
                let last = if i % 4 == 0 { 1 } else { 100 * i + 2 };
                super::super::batch::insert_atomic(&slot, &inserts(&[100 * i, 100 * i + 1, last]))
                    .await?;
                slot.commit().await
            });
        }
        let outcomes = jobs.join_all().await;
        assert_eq!(outcomes.iter().filter(|r| r.is_err()).count(), 3);
        let mut expected = vec![1];
        for i in (1..=12i64).filter(|i| i % 4 != 0) {
            expected.extend([100 * i, 100 * i + 1, 100 * i + 2]);
        }
        expected.sort_unstable();
        assert_eq!(values(&db).await, expected);
    }

    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_file_beside_the_writer() {
        let (dir, db) = sqlite().await;
        let file = dir.path().join("w.db");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let writer = Writer::start(db.clone());
        // The writer's connection never checkpoints: its commits stay in the WAL until the
        // checkpoints beside it copy them into the database file.
        writer
            .write(async |txn| {
                txn.execute_unprepared("CREATE TABLE big (body TEXT NOT NULL)")
                    .await?;
                for _ in 0..200 {
                    txn.execute_unprepared("INSERT INTO big (body) VALUES (hex(randomblob(2000)))")
                        .await?;
                }
                Ok::<(), DbErr>(())
            })
            .await
            .expect("write");
        let before = size();
        let deadline = std::time::Instant::now() + 10 * CHECKPOINT_EVERY;
        while size() <= before + 400_000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_EVERY / 5).await;
        }
        assert!(
            size() > before + 400_000,
            "the database file stayed at {} bytes (from {before})",
            size()
        );
    }

    #[tokio::test]
    async fn a_bare_slot_left_mid_batch_is_undone_by_the_writer() {
        let (_dir, db) = sqlite().await;
        let writer = Writer::start(db.clone());
        {
            // What a batch cut short leaves: its savepoint open and its first rows written
            // (the caller went away before the RELEASE ran).
            let slot = writer.begin_bare().await.expect("slot");
            slot.execute_unprepared("SAVEPOINT atomic_batch; INSERT INTO t (v) VALUES (7)")
                .await
                .expect("part of a batch");
        }
        writer
            .write(async |txn| insert(txn, 8).await)
            .await
            .expect("the writer goes on");
        assert_eq!(values(&db).await, vec![8]);
    }

    #[tokio::test]
    async fn undoing_no_open_batch_is_nothing_unless_the_transaction_itself_is_gone() {
        let (_dir, db) = sqlite().await;
        let txn = super::super::begin_write(&db).await.expect("begin");
        super::super::batch::undo_atomic(&txn)
            .await
            .expect("no batch open: nothing to undo");
        // What SQLite does on its own after some I/O errors: the transaction ends.
        txn.execute_unprepared("ROLLBACK").await.expect("rollback");
        assert!(super::super::batch::undo_atomic(&txn).await.is_err());
    }

    #[tokio::test]
    async fn select_all_answers_each_select_with_its_own_rows_in_order() {
        let (_dir, db) = sqlite().await;
        for v in [3, 1, 2] {
            insert_plain(&db, v).await;
        }
        let select = |filter: i64| {
            Query::select()
                .column("v")
                .from("t")
                .and_where(Expr::col("v").gte(filter))
                .order_by("v", sea_orm::sea_query::Order::Desc)
                .to_owned()
        };
        let rows = super::super::batch::select_all(&db, vec![select(2), select(9), select(1)])
            .await
            .expect("select");
        #[derive(sea_orm::FromQueryResult, serde::Deserialize)]
        struct Row {
            v: i64,
        }
        let got: Vec<Vec<i64>> = rows
            .into_iter()
            .map(|rows| {
                let rows: Vec<Row> = rows.decode().expect("decode");
                rows.into_iter().map(|r| r.v).collect()
            })
            .collect();
        assert_eq!(got, vec![vec![3, 2], vec![], vec![3, 2, 1]]);
    }

    async fn insert_plain(db: &DatabaseConnection, v: i64) {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "INSERT INTO t (v) VALUES (?)",
            [v.into()],
        ))
        .await
        .expect("insert");
    }

    #[tokio::test]
    async fn without_a_queue_a_job_runs_in_its_own_transaction() {
        // The PostgreSQL path, exercised here on a plain connection with no writer task.
        let (_dir, db) = sqlite().await;
        let writer = Writer {
            db: db.clone(),
            queue: None,
        };
        writer
            .write(async |txn| insert(txn, 5).await)
            .await
            .expect("write");
        let failed: Result<(), DbErr> = writer
            .write(async |txn| {
                insert(txn, 6).await?;
                Err(DbErr::Custom("no".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(values(&db).await, vec![5]);
    }
}
