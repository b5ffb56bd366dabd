//! Several writes in one round trip. SQLite runs a string of statements in one call (its
//! driver binds each statement's `?` parameters in turn), so a write that inserts rows of
//! several kinds pays one hand-off to the database thread instead of one per kind; that
//! hand-off, not SQLite's work, is most of what a write costs inside the single writer's
//! slot. Elsewhere the statements run one by one. Either way they run in order and stop at the
//! first failure; the caller's transaction (or savepoint) undoes what ran before it.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, sea_query::InsertStatement};

/// Runs `inserts` in order through `conn` (a transaction).
pub async fn insert_all(
    conn: &impl ConnectionTrait,
    inserts: &[InsertStatement],
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    if backend != DbBackend::Sqlite {
        for insert in inserts {
            conn.execute(insert).await?;
        }
        return Ok(());
    }
    let mut sql = String::new();
    let mut values = Vec::new();
    for insert in inserts {
        let statement = backend.build(insert);
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        if let Some(v) = statement.values {
            values.extend(v.0);
        }
    }
    if sql.is_empty() {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}
