//! Several statements in one round trip. SQLite runs a string of statements in one call (its
//! driver binds each statement's `?` parameters in turn), so a write that inserts rows of
//! several kinds, or a decision that reads several tables, pays one hand-off to the database
//! thread instead of one per statement; that hand-off, not SQLite's work, is most of what a
//! statement costs inside the single writer's slot. Elsewhere the statements run one by one.
//! Either way they run in order and writes stop at the first failure; the caller's transaction
//! (or savepoint) undoes what ran before it.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, Statement,
    TransactionTrait,
    sea_query::{Expr, InsertStatement, SelectStatement},
};

/// The savepoint [`insert_atomic`] wraps its statements in on SQLite.
const ATOMIC: &str = "atomic_batch";

/// What undoes an [`insert_atomic`] that stopped part-way (a caller that went away while it
/// ran): rolls back to its savepoint and closes it. When no such batch is open it fails with
/// "no such savepoint", which [`undo_atomic`] reads as nothing to undo.
pub async fn undo_atomic(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    match txn
        .execute_unprepared(&format!("ROLLBACK TO {ATOMIC}; RELEASE {ATOMIC}"))
        .await
    {
        Err(e) if e.to_string().contains("no such savepoint") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Runs `inserts` in order, all or none: on failure the transaction is as it was before the
/// call. On SQLite it is one round trip, the statements between a SAVEPOINT and its RELEASE
/// (and a second round trip to roll back, only when one fails); elsewhere a savepoint of the
/// transaction around them one by one.
pub async fn insert_atomic(
    txn: &DatabaseTransaction,
    inserts: &[InsertStatement],
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    if backend != DbBackend::Sqlite {
        let savepoint = txn.begin().await?;
        insert_all(&savepoint, inserts).await?;
        return savepoint.commit().await;
    }
    let (mut sql, values) = joined(backend, inserts);
    sql.insert_str(0, &format!("SAVEPOINT {ATOMIC};\n"));
    sql.push_str(&format!("RELEASE {ATOMIC};"));
    match txn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            undo_atomic(txn).await?;
            Err(e)
        }
    }
}

/// The inserts as one string of statements, with their values in order.
fn joined(backend: DbBackend, inserts: &[InsertStatement]) -> (String, Vec<sea_orm::Value>) {
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
    (sql, values)
}

/// The column [`select_all`] adds to every row on SQLite: which select it came from.
const TAG: &str = "batch_select";

/// Runs `selects` through `conn` and returns each one's rows, in order. On SQLite they go in
/// one round trip, every row tagged with its select's index (an extra last column, so rows read
/// by name or by leading index decode as usual).
pub async fn select_all(
    conn: &impl ConnectionTrait,
    selects: Vec<SelectStatement>,
) -> Result<Vec<Vec<QueryResult>>, DbErr> {
    let backend = conn.get_database_backend();
    let mut out: Vec<Vec<QueryResult>> = selects.iter().map(|_| Vec::new()).collect();
    if backend != DbBackend::Sqlite {
        for (rows, select) in out.iter_mut().zip(&selects) {
            *rows = conn.query_all_raw(backend.build(select)).await?;
        }
        return Ok(out);
    }
    let mut sql = String::new();
    let mut values = Vec::new();
    for (i, mut select) in selects.into_iter().enumerate() {
        let statement = backend.build(select.expr_as(Expr::val(i as i64), TAG));
        sql.push_str(&statement.sql);
        sql.push_str(";\n");
        if let Some(v) = statement.values {
            values.extend(v.0);
        }
    }
    if sql.is_empty() {
        return Ok(out);
    }
    for row in conn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
    {
        let i: i64 = row.try_get("", TAG)?;
        let rows = usize::try_from(i)
            .ok()
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| DbErr::Custom(format!("a batched row names select {i}")))?;
        rows.push(row);
    }
    Ok(out)
}

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
    let (sql, values) = joined(backend, inserts);
    if sql.is_empty() {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}
