//! Several statements in one round trip. SQLite runs a string of statements in one call (its
//! driver binds each statement's `?` parameters in turn), so a write that inserts rows of
//! several kinds, or a decision that reads several tables, pays one hand-off to the database
//! thread instead of one per statement; that hand-off, not SQLite's work, is most of what a
//! statement costs inside the single writer's slot. Elsewhere the statements run one by one.
//! Either way they run in order and writes stop at the first failure; the caller's transaction
//! (or savepoint) undoes what ran before it.

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, FromQueryResult, QueryResult,
    Statement, TransactionTrait,
    sea_query::{Expr, InsertStatement, Query, QueryStatementBuilder, SelectStatement},
};
use serde::de::DeserializeOwned;

/// The savepoint [`insert_atomic`] wraps its statements in on SQLite.
const ATOMIC: &str = "atomic_batch";

/// What undoes an [`insert_atomic`] that stopped part-way (a caller that went away while it
/// ran): rolls back to its savepoint and closes it. A batch that ran to its RELEASE is whole
/// and stays; when no batch is open, SQLite answers "no such savepoint", which is read as
/// nothing to undo — after checking that the transaction itself is still open (SQLite ends it
/// on its own after some I/O errors), which fails the call if it is not.
pub async fn undo_atomic(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    match txn
        .execute_unprepared(&format!("ROLLBACK TO {ATOMIC}; RELEASE {ATOMIC}"))
        .await
    {
        Err(e) if e.to_string().contains("no such savepoint") => still_in_transaction(txn).await,
        other => other.map(|_| ()),
    }
}

/// Fails unless `txn` is still inside its transaction on SQLite: a BEGIN there is refused
/// ("within a transaction"); one that succeeds means the transaction had ended, and is rolled
/// back at once.
async fn still_in_transaction(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    match txn.execute_unprepared("BEGIN").await {
        Err(e) if e.to_string().contains("within a transaction") => Ok(()),
        Err(e) => Err(e),
        Ok(_) => {
            txn.execute_unprepared("ROLLBACK").await?;
            Err(DbErr::Custom(
                "the write transaction ended on its own (an I/O error?)".into(),
            ))
        }
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

/// One select's rows from [`select_all`]: database rows (SQLite), or each row as a JSON object
/// of its columns (PostgreSQL, where the selects come back as one row of JSON arrays).
pub enum Rows {
    Sql(Vec<QueryResult>),
    Json(Vec<serde_json::Value>),
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Sql(Vec::new())
    }
}

impl Rows {
    /// The rows as `M`: read by column name from a database row, or deserialized from the JSON
    /// object (same names).
    pub fn decode<M: FromQueryResult + DeserializeOwned>(self) -> Result<Vec<M>, DbErr> {
        match self {
            Rows::Sql(rows) => rows.iter().map(|r| M::from_query_result(r, "")).collect(),
            Rows::Json(rows) => rows
                .into_iter()
                .map(|r| {
                    serde_json::from_value(r).map_err(|e| {
                        DbErr::Type(format!("a row of a batched select did not decode: {e}"))
                    })
                })
                .collect(),
        }
    }

    /// The first row as `M`, if any.
    pub fn first<M: FromQueryResult + DeserializeOwned>(self) -> Result<Option<M>, DbErr> {
        Ok(self.decode()?.into_iter().next())
    }
}

/// Runs `selects` through `conn` and returns each one's rows, in order, in one round trip.
/// On SQLite the selects go as one string of statements, every row tagged with its select's
/// index (an extra last column, so rows decode by name as usual). On PostgreSQL they become one
/// statement of scalar subqueries, each aggregating its select's rows (in the select's order)
/// into a JSON array; the parameters stay parameters.
pub async fn select_all(
    conn: &impl ConnectionTrait,
    selects: Vec<SelectStatement>,
) -> Result<Vec<Rows>, DbErr> {
    let backend = conn.get_database_backend();
    if selects.is_empty() {
        return Ok(Vec::new());
    }
    if backend != DbBackend::Sqlite {
        let mut outer = Query::select();
        for (i, select) in selects.into_iter().enumerate() {
            let aggregate = Query::select()
                .expr(Expr::cust("coalesce(json_agg(q), '[]'::json)"))
                .from_subquery(select, "q")
                .to_owned();
            outer.expr_as(
                Expr::SubQuery(None, Box::new(aggregate.into_sub_query_statement())),
                format!("s{i}"),
            );
        }
        let row = conn
            .query_one_raw(backend.build(&outer))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the batched selects".into()))?;
        let count = row.column_names().len();
        return (0..count)
            .map(|i| {
                let value: serde_json::Value = row.try_get_by_index(i)?;
                match value {
                    serde_json::Value::Array(rows) => Ok(Rows::Json(rows)),
                    other => Err(DbErr::Type(format!("a batched select gave {other}"))),
                }
            })
            .collect();
    }
    let mut out: Vec<Vec<QueryResult>> = selects.iter().map(|_| Vec::new()).collect();
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
    Ok(out.into_iter().map(Rows::Sql).collect())
}

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
