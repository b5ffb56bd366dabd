//! Persistence: connecting, migrating, and the sea-orm queries of each area. Functions take a
//! `ConnectionTrait` so the same query runs on the pool or inside a transaction.

pub mod appointments;
pub mod audit;
pub mod availability;
pub mod batch;
pub mod bookings;
pub mod busy;
pub mod calendar;
pub mod catalogue;
pub mod classes;
pub mod enquiries;
pub mod feeds;
pub mod online_booking;
pub mod patients;
pub mod privacy;
pub mod schedule;
pub mod series;
pub mod staff;
pub mod waitlist;
pub mod writer;

use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::DatabaseSettings;

/// How long a SQLite connection waits for a lock another holds before it gives up.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's `cache_size` for every connection: negative is KiB.
const SQLITE_CACHE_SIZE: &str = "-1024";

/// Opens the pool. SQLite gets WAL, `synchronous=FULL` (a confirmed booking survives a power
/// cut), foreign keys, a busy timeout and a 1 MiB page cache; its parent folder is created on
/// first run. PostgreSQL on this machine is reached without TLS unless the URL or the
/// environment says anything about TLS: see [`says_nothing_about_tls`] and [`is_local`].
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.as_str();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        ensure_sqlite_folder(url);
    }
    let mut options = ConnectOptions::new(url.to_string());
    // PostgreSQL: 4 per instance. In the load run (two instances and the database on two
    // cores) 4 booked faster than 2, 3, 6, 8 or 16: more backends than the database has cores
    // to run them only queue inside it.
    let max = settings.max_connections.unwrap_or(4);
    options
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // A connection in steady use is handed out as it is: pinging it on every checkout
        // (SQLx's default) cost a round trip per request. One idle long enough to have been
        // dropped by the server or a firewall is still checked first.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(false);
    if is_sqlite {
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // 1 MiB of page cache per connection rather than SQLite's 2 MiB: with every
                // pooled connection full that was a quarter of the resident memory under load,
                // and pages it no longer holds are a read from the OS's file cache away.
                .pragma("cache_size", SQLITE_CACHE_SIZE)
        });
    }
    if !is_sqlite && says_nothing_about_tls(url, |name| std::env::var_os(name).is_some()) {
        // Decided on the driver's own reading of the URL and the environment (the last
        // `host`, `hostaddr`, `PGHOST` for a URL without a host…), so it is the server it
        // will connect to that is judged.
        options.map_sqlx_postgres_opts(|opts| {
            if is_local(&opts) {
                opts.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable)
            } else {
                opts
            }
        });
    }
    Database::connect(options).await
}

/// The URL's parameters and the environment variables through which the driver takes a TLS
/// mode or certificates.
const TLS_PARAMETERS: [&str; 9] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
];
const TLS_VARIABLES: [&str; 4] = ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"];

/// Whether neither the URL nor the environment (`is_set` tells whether a variable is) says
/// anything about TLS. The driver's default is then `prefer`: TLS whenever the server offers
/// it, which a stock Debian or Ubuntu server does, but with any certificate and falling back to
/// plain text, so it only keeps out a passive listener. On a server on this machine
/// ([`is_local`]) such a listener would already need root, and the encryption cost both
/// sides CPU on every byte: about a tenth of the bookings per second in the load run. So such
/// a connection is made in plain text. Anything said about TLS (a mode, a CA, a client
/// certificate) is kept as given, and a server elsewhere keeps `prefer`.
fn says_nothing_about_tls(url: &str, is_set: impl Fn(&str) -> bool) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    matches!(parsed.scheme(), "postgres" | "postgresql")
        && !parsed
            .query_pairs()
            .any(|(k, _)| TLS_PARAMETERS.contains(&k.as_ref()))
        && !TLS_VARIABLES.into_iter().any(is_set)
}

/// Whether the driver will connect to this machine: a Unix socket, a loopback address or
/// `localhost`.
fn is_local(options: &sea_orm::sqlx::postgres::PgConnectOptions) -> bool {
    let host = options.get_host();
    options.get_socket().is_some()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn ensure_sqlite_folder(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        // A failure here surfaces as a clear connect error right after.
        let _ = std::fs::create_dir_all(parent);
    }
}

/// Applies pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so a transaction that reads
/// then writes waits for the busy timeout instead of failing with SQLITE_BUSY at its first write.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = match db.get_database_backend() {
        DbBackend::Sqlite => TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        },
        _ => TransactionOptions {
            isolation_level: Some(IsolationLevel::ReadCommitted),
            access_mode: Some(AccessMode::ReadWrite),
            ..Default::default()
        },
    };
    db.begin_with_options(options).await
}

/// Whether an error means "try again shortly" (database locked, pool exhausted) rather than a bug.
pub fn is_busy(err: &DbErr) -> bool {
    if matches!(err, DbErr::ConnectionAcquire(_)) {
        return true;
    }
    let text = err.to_string();
    text.contains("database is locked") || text.contains("(code: 5)") || text.contains("busy")
}

/// Whether an error is a unique-constraint violation (duplicate slug, email…).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) || err.to_string().ends_with(&refusal_suffix(UNIQUE_VIOLATION))
}

const UNIQUE_VIOLATION: &str = "23505";

/// An error the database reported as data (a booking refused inside a batch, see
/// `online_booking::Queue`): its message (which names the constraint) and its SQLSTATE, in an
/// error that the predicates here recognise as they do the database's own.
pub fn refusal(sqlstate: &str, message: &str) -> DbErr {
    DbErr::Custom(format!("{message}{}", refusal_suffix(sqlstate)))
}

fn refusal_suffix(sqlstate: &str) -> String {
    format!(" (SQLSTATE {sqlstate})")
}

/// Whether an error is PostgreSQL's exclusion-constraint violation (SQLSTATE 23P01): the
/// no-double-booking constraint (`practitioner_holds_no_overlap`; `appointments_no_overlap`
/// on a database from before `m20261205_000201`) refused an overlapping appointment (or class
/// session), or SQLite's `practitioner_holds_no_overlap` trigger did. Two transactions that
/// insert overlapping appointments at the same moment can also each wait for the other inside
/// the constraint's index check; PostgreSQL then aborts one with a deadlock (40P01), which is
/// the same lost race.
pub fn is_overlap_violation(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("23P01")
        || text.contains("appointments_no_overlap")
        || text.contains("practitioner_holds_no_overlap")
        || text.contains("40P01")
        || text.contains("deadlock detected")
}

/// The OFFSET of a page (`page` from 1): saturating, and at most `i64::MAX` because the
/// drivers bind OFFSET as a signed 64-bit integer, so an absurd page is just empty.
pub fn page_offset(page: u64, per_page: u64) -> u64 {
    Ord::min(
        page.saturating_sub(1).saturating_mul(per_page),
        i64::MAX as u64,
    )
}

/// Escapes `\`, `%` and `_` for a LIKE pattern with `ESCAPE '\'`, so user text matches
/// itself.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Deletes at most `limit` rows of `E` that match `condition`, keyed by the uuid column `id`:
/// the bounded batch the retention pass deletes per transaction.
pub async fn delete_batch<E: sea_orm::EntityTrait>(
    conn: &impl sea_orm::ConnectionTrait,
    id: E::Column,
    condition: sea_orm::Condition,
    limit: u64,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let ids: Vec<uuid::Uuid> = E::find()
        .select_only()
        .column(id)
        .filter(condition)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(E::delete_many()
        .filter(id.is_in(ids))
        .exec(conn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sea_orm::sqlx::postgres::PgConnectOptions;

    use super::{
        is_local, is_overlap_violation, is_unique_violation, refusal, says_nothing_about_tls,
    };
    use crate::store::online_booking::{is_limit_reached, is_reference_taken};

    fn local(url: &str) -> bool {
        is_local(&PgConnectOptions::from_str(url).expect(url))
    }

    #[test]
    fn a_server_on_this_machine_is_judged_by_where_the_driver_connects() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgresql://u:p@localhost/db",
            "postgres://u@LOCALHOST:5433/db?application_name=x",
            "postgres://u@127.0.0.2/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@db.example.com/db?host=/run/postgresql",
            "postgres://u@db.example.com/db?hostaddr=127.0.0.1",
            "postgres://u@db.example.com/db?host=db2.example.com&host=localhost",
        ] {
            assert!(local(url), "{url}");
        }
        for url in [
            "postgres://u@db.example.com/db",
            "postgres://u@10.0.0.5/db",
            "postgres://u@[2001:db8::1]/db",
            "postgres://u@[::ffff:127.0.0.1]/db",
            "postgres://u@localhost/db?host=db.example.com",
            "postgres://u@localhost/db?hostaddr=10.0.0.5",
            "postgres:///db?hostaddr=203.0.113.7",
            "postgres://u@localhost/db?host=127.0.0.1&host=db.example.com",
            "postgres://u@localhost.example.com/db",
        ] {
            assert!(!local(url), "{url}");
        }
    }

    #[test]
    fn anything_said_about_tls_in_the_url_or_the_environment_is_kept() {
        let nothing_set = |_: &str| false;
        for url in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://u@db.example.com/db?application_name=x",
        ] {
            assert!(says_nothing_about_tls(url, nothing_set), "{url}");
            for variable in ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"] {
                assert!(
                    !says_nothing_about_tls(url, |name| name == variable),
                    "{url} with {variable}"
                );
            }
        }
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?sslmode=prefer",
            "postgres://u@localhost/db?ssl-mode=verify-full",
            "postgres://u@localhost/db?sslrootcert=/etc/ca.pem",
            "postgres://u@localhost/db?ssl-ca=/etc/ca.pem",
            "postgres://u@localhost/db?sslcert=/c.pem&sslkey=/k.pem",
            "postgres://u@localhost/db?ssl-cert=/c.pem",
            "sqlite://data/frontdesk.db?mode=rwc",
            "not a url",
        ] {
            assert!(!says_nothing_about_tls(url, nothing_set), "{url}");
        }
    }

    #[test]
    fn a_refusal_reported_as_data_is_recognised_as_the_database_error_would_be() {
        let reference = refusal(
            "23505",
            "duplicate key value violates unique constraint \"appointments_reference_key\"",
        );
        assert!(is_unique_violation(&reference));
        assert!(is_reference_taken(&reference));
        assert!(!is_overlap_violation(&reference));
        let overlap = refusal(
            "23P01",
            "conflicting key value violates exclusion constraint \"practitioner_holds_no_overlap\"",
        );
        assert!(is_overlap_violation(&overlap));
        assert!(!is_unique_violation(&overlap));
        let limit = refusal("P0001", "frontdesk: booking limit reached");
        assert!(is_limit_reached(&limit));
        assert!(!is_unique_violation(&limit) && !is_overlap_violation(&limit));
        // Only the suffix this module writes counts: a message that merely mentions it does not.
        let mention = refusal("P0001", "(SQLSTATE 23505) in a message");
        assert!(!is_unique_violation(&mention));
    }
}
