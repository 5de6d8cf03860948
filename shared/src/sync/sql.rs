//! The SQL of sync, one code path for SQLite and PostgreSQL (sea-query builds
//! the dialect). The synced tables are defined at run time by [`super::tables`]
//! and have no entities: table and column names come only from its whitelist, and
//! rows are read here by name.
//!
//! Measured by `cargo bench -p attune-tests --bench sync` (README, Performance,
//! "Sync"): on 2026-12-04 (night, sqlx 0.9.1) a push of 1,000 check-ins a
//! request stored 37,800–41,000 records/s and of 100 a request 22,800–24,500/s,
//! with validation, encryption, the version lock, the check-in summary and HTTP
//! included, at the same rate for a person's first check-ins and their 30,000th
//! ([`plan_for_values`], and lookups by ids that probe the primary key once per
//! id, [`row_versions`]); plain batched `INSERT`s of the same rows into a table
//! with a primary key alone take 0.16–0.22 of that time. The upserts are
//! multi-row `INSERT ... ON CONFLICT` statements of up to 30,000 bound values.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DbErr, EntityName, FromQueryResult, IdenStatic, QueryResult, Statement, Value,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement},
};
use uuid::Uuid;

use super::tables::{Cell, Kind, SyncTable};
use crate::{
    db::{RawSql, numbered},
    domain::pacing::{DISTRESS_ANXIETY, DISTRESS_COMFORT},
    entities::{
        sync_state::{self, Entity as SyncState},
        sync_tombstone::{Column as Tombstone, Entity as SyncTombstone},
    },
};

/// Ids per `IN (…)` list; far below either database's parameter limit.
pub const ID_CHUNK: usize = 500;

fn backend_build<C: ConnectionTrait>(db: &C, stmt: &SelectStatement) -> Statement {
    db.get_database_backend().build(stmt)
}

/// On PostgreSQL, has the rest of the transaction's statements planned for
/// their own values (`SET LOCAL plan_cache_mode = force_custom_plan`); nothing
/// on SQLite, which plans every statement for its values. Called first by
/// every write to a person's synced rows, which look rows up by lists of ids.
///
/// After five executions PostgreSQL plans a prepared statement once for any
/// values, from the average person's number of rows. For `user_id = $1 AND id
/// IN ($2, …)` that generic plan read every row of the person and compared each
/// with the list: a push's cost grew with the pusher's history, and with many
/// people of few rows, most with the most history. Measured
/// (`cargo bench -p attune-tests --bench sync`, PostgreSQL's `auto_explain`):
/// 1.1–1.9 s for one lookup of 500 ids of a person with 30,000 check-ins. The
/// plan for its values (`EXPLAIN ANALYZE`, 30,000 rows of one person among
/// 120,000) took 0.7 ms to make and 0.7 ms to run.
pub async fn plan_for_values<C: ConnectionTrait>(txn: &C) -> Result<(), DbErr> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan").await?;
    }
    Ok(())
}

/// Takes the user's next change version under the lock of their `sync_state` row,
/// so pushes of one user are serialised and their versions commit in order. The
/// version is the clock in milliseconds unless that would not move it forward.
pub async fn next_version<C: ConnectionTrait>(txn: &C, user_id: Uuid, now_ms: i64) -> Result<i64, DbErr> {
    ensure_state(txn, user_id, 0).await?;
    let stmt = numbered(
        txn,
        "UPDATE sync_state SET version = CASE WHEN version + 1 > $1 THEN version + 1 ELSE $1 END \
         WHERE user_id = $2 RETURNING version",
        [now_ms.into(), user_id.into()],
    );
    let row = txn.query_one_raw(stmt).await?.ok_or_else(|| DbErr::Custom("sync_state row vanished".into()))?;
    row.try_get::<i64>("", "version")
}

/// Takes the lock of the user's `sync_state` row without moving the version:
/// a write to a partner's items locks both people's rows, always in the order
/// of their ids, so two partners pushing at once never deadlock. (Moving the
/// partner's version when nothing of theirs changed would tell their devices,
/// through the pull's `timestamp`, when the other was active.)
pub async fn lock_state<C: ConnectionTrait>(txn: &C, user_id: Uuid, now_ms: i64) -> Result<(), DbErr> {
    // Created at `now_ms`, as a pull creates it: a first pull must never
    // answer timestamp 0 (WatermelonDB refuses it: "pullChanges() returned
    // invalid timestamp 0"), and linking creates this row before any pull.
    ensure_state(txn, user_id, now_ms).await?;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    SyncState::update_many()
        .col_expr(sync_state::Column::Version, Expr::col(sync_state::Column::Version))
        .filter(sync_state::Column::UserId.eq(user_id))
        .exec(txn)
        .await
        .map(|_| ())
}

/// The user's newest committed version (created at `now_ms` on first use).
pub async fn current_version<C: ConnectionTrait>(db: &C, user_id: Uuid, now_ms: i64) -> Result<i64, DbErr> {
    ensure_state(db, user_id, now_ms).await?;
    let stmt = Query::select()
        .column(sync_state::Column::Version)
        .from(SyncState)
        .and_where(Expr::col(sync_state::Column::UserId).eq(user_id))
        .to_owned();
    let row = db.query_one_raw(backend_build(db, &stmt)).await?;
    row.map_or(Ok(now_ms), |r| r.try_get::<i64>("", "version"))
}

async fn ensure_state<C: ConnectionTrait>(db: &C, user_id: Uuid, initial: i64) -> Result<(), DbErr> {
    let stmt = Query::insert()
        .into_table(SyncState)
        .columns([sync_state::Column::UserId, sync_state::Column::Version])
        .values_panic([user_id.into(), initial.into()])
        .on_conflict(OnConflict::column(sync_state::Column::UserId).do_nothing().to_owned())
        .to_owned();
    db.execute_raw(db.get_database_backend().build(&stmt)).await.map(|_| ())
}

/// `id → version` of the user's rows of `table` among `ids`.
pub async fn row_versions<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    ids: &[&str],
) -> Result<HashMap<String, i64>, DbErr> {
    versions_by_id(db, table.name, "id", None, user_id, ids).await
}

/// `id → version` of the user's tombstones of `table` among `ids`.
pub async fn tombstone_versions<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    ids: &[&str],
) -> Result<HashMap<String, i64>, DbErr> {
    versions_by_id(db, SyncTombstone.table_name(), Tombstone::RecordId.as_str(), Some(table.name), user_id, ids).await
}

/// Every id of the user's rows of `table`.
pub async fn all_ids<C: ConnectionTrait>(db: &C, table: &SyncTable, user_id: Uuid) -> Result<Vec<String>, DbErr> {
    let stmt = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new(table.name))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .to_owned();
    db.query_all_raw(backend_build(db, &stmt)).await?.iter().map(row_id).collect()
}

/// `id → version` of the user's rows of `from` (rows or tombstones, optionally
/// of one synced table) among `ids` (in `id_column`), in chunks of [`ID_CHUNK`]
/// ids, one primary-key lookup per id: a correlated subquery for each id of a
/// `VALUES` list, which no planner turns into a read of the person's whole
/// history.
/// PostgreSQL did that with `user_id = $1 AND id IN (…)`, even planned for its
/// values, whenever its statistics made the person look smaller than they were
/// (during a burst of pushes, before `ANALYZE`, or for anyone with far more than
/// the average history): a scan of the person's rows on `user_id` alone, the ids
/// as a filter, so a push's cost grew with the pusher's history. Measured with
/// `auto_explain` (statements over 3 ms) under `cargo bench -p attune-tests
/// --bench sync`: 615 such lookups of 100 or 500 ids, 614 of them planned so,
/// a median of 6.6 ms, 22 ms at p90 and up to 51 ms, as the four people's
/// histories grew to 30,000 check-ins.
async fn versions_by_id<C: ConnectionTrait>(
    db: &C,
    from: &str,
    id_column: &str,
    table_name: Option<&str>,
    user_id: Uuid,
    ids: &[&str],
) -> Result<HashMap<String, i64>, DbErr> {
    let mut versions = HashMap::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let mut sql = RawSql::new(db.get_database_backend());
        sql.push(&format!("SELECT k.column1 AS id, (SELECT t.version FROM \"{from}\" t WHERE t.user_id = "));
        sql.bind(user_id);
        if let Some(name) = table_name {
            sql.push(&format!(" AND t.\"{}\" = ", Tombstone::TableName.as_str()));
            sql.bind(name);
        }
        sql.push(&format!(" AND t.\"{id_column}\" = k.column1) AS version FROM (VALUES "));
        for (i, id) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(*id);
            sql.push(")");
        }
        sql.push(") AS k");
        for row in db.query_all_raw(sql.build()).await? {
            if let Some(version) = row.try_get::<Option<i64>>("", "version")? {
                versions.insert(row.try_get::<String>("", "id")?, version);
            }
        }
    }
    Ok(versions)
}

/// A record ready to store: its cells with private text already sealed.
pub struct StoredRecord {
    pub id: String,
    pub cells: Vec<Cell>,
}

fn cell_value(kind: Kind, cell: &Cell) -> Value {
    match (cell, kind) {
        (Cell::Null, Kind::Bool) => Value::Bool(None),
        (Cell::Null, Kind::Millis | Kind::Int { .. }) => Value::BigInt(None),
        (Cell::Null, _) => Value::String(None),
        (Cell::Int(n), _) => Value::BigInt(Some(*n)),
        (Cell::Bool(b), _) => Value::Bool(Some(*b)),
        (Cell::Text(s), _) => Value::String(Some(s.clone())),
    }
}

/// Inserts or replaces records, all at `version`. A new row also gets
/// `created_version = version`; an existing row keeps its own.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    version: i64,
    records: &[StoredRecord],
) -> Result<(), DbErr> {
    let per_row = 4 + table.columns.len();
    // Stay well under SQLite's and PostgreSQL's bound-parameter limits.
    let rows_per_statement = (30_000 / per_row).max(1);
    let mut columns =
        vec![Alias::new("user_id"), Alias::new("id"), Alias::new("version"), Alias::new("created_version")];
    columns.extend(table.columns.iter().map(|c| Alias::new(c.name)));
    let mut updated: Vec<Alias> = table.columns.iter().map(|c| Alias::new(c.name)).collect();
    updated.push(Alias::new("version"));
    for chunk in records.chunks(rows_per_statement) {
        let mut insert = Query::insert();
        insert.into_table(Alias::new(table.name)).columns(columns.clone());
        for record in chunk {
            let mut values: Vec<Value> = vec![user_id.into(), record.id.clone().into(), version.into(), version.into()];
            values.extend(table.columns.iter().zip(&record.cells).map(|(c, cell)| cell_value(c.kind, cell)));
            insert.values_panic(values.into_iter().map(Expr::val));
        }
        insert.on_conflict(
            OnConflict::columns([Alias::new("user_id"), Alias::new("id")]).update_columns(updated.clone()).to_owned(),
        );
        db.execute_raw(db.get_database_backend().build(&insert)).await?;
    }
    Ok(())
}

/// Deletes the user's rows of `table` among `ids` and records tombstones for them.
pub async fn delete<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    version: i64,
    ids: &[&str],
) -> Result<(), DbErr> {
    for chunk in ids.chunks(ID_CHUNK) {
        let stmt = Query::delete()
            .from_table(Alias::new(table.name))
            .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
            .and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute_raw(db.get_database_backend().build(&stmt)).await?;
        let mut insert = Query::insert();
        insert.into_table(SyncTombstone).columns([
            Tombstone::UserId,
            Tombstone::TableName,
            Tombstone::RecordId,
            Tombstone::Version,
        ]);
        for id in chunk {
            insert.values_panic([user_id.into(), table.name.into(), (*id).into(), version.into()]);
        }
        insert.on_conflict(
            OnConflict::columns([Tombstone::UserId, Tombstone::TableName, Tombstone::RecordId])
                .update_column(Tombstone::Version)
                .to_owned(),
        );
        db.execute_raw(db.get_database_backend().build(&insert)).await?;
    }
    Ok(())
}

/// Removes tombstones of records that were created again.
pub async fn forget_tombstones<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    ids: &[&str],
) -> Result<(), DbErr> {
    for chunk in ids.chunks(ID_CHUNK) {
        let stmt = Query::delete()
            .from_table(SyncTombstone)
            .and_where(Expr::col(Tombstone::UserId).eq(user_id))
            .and_where(Expr::col(Tombstone::TableName).eq(table.name))
            .and_where(Expr::col(Tombstone::RecordId).is_in(chunk.iter().copied()))
            .to_owned();
        db.execute_raw(db.get_database_backend().build(&stmt)).await?;
    }
    Ok(())
}

/// Where the previous page ended: rows come in `(version, id)` order.
pub type PageCursor = Option<(i64, String)>;

/// One page of the user's rows of `table` with versions in `(changed_after, upto]`.
pub async fn page_rows<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    changed_after: i64,
    upto: i64,
    after: &PageCursor,
    limit: u64,
) -> Result<Vec<QueryResult>, DbErr> {
    let mut stmt = Query::select();
    stmt.column(Asterisk)
        .from(Alias::new(table.name))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::col(Alias::new("version")).lte(upto));
    if changed_after > i64::MIN {
        stmt.and_where(Expr::col(Alias::new("version")).gt(changed_after));
    }
    after_cursor(&mut stmt, "version", "id", after);
    stmt.order_by(Alias::new("version"), Order::Asc).order_by(Alias::new("id"), Order::Asc).limit(limit);
    db.query_all_raw(backend_build(db, &stmt)).await
}

/// One page of the ids of the user's records of `table` deleted in `(since, upto]`.
pub async fn page_tombstones<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    user_id: Uuid,
    since: i64,
    upto: i64,
    after: &PageCursor,
    limit: u64,
) -> Result<Vec<(i64, String)>, DbErr> {
    let mut stmt = Query::select();
    stmt.columns([Tombstone::RecordId, Tombstone::Version])
        .from(SyncTombstone)
        .and_where(Expr::col(Tombstone::UserId).eq(user_id))
        .and_where(Expr::col(Tombstone::TableName).eq(table.name))
        .and_where(Expr::col(Tombstone::Version).gt(since))
        .and_where(Expr::col(Tombstone::Version).lte(upto));
    after_cursor(&mut stmt, Tombstone::Version.as_str(), Tombstone::RecordId.as_str(), after);
    stmt.order_by(Tombstone::Version, Order::Asc).order_by(Tombstone::RecordId, Order::Asc).limit(limit);
    db.query_all_raw(backend_build(db, &stmt))
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get::<i64>("", "version")?, r.try_get::<String>("", "record_id")?)))
        .collect()
}

/// Rows after the cursor in `(version, id)` order, as a row-value comparison:
/// both databases read it as a range of the `(user_id, version, id)` index, so
/// each page starts where the last one ended. (Spelled `version > v OR (version
/// = v AND id > last)`, PostgreSQL scanned the person's rows from the first for
/// every page, and a pull's cost grew with the square of its size.)
fn after_cursor(stmt: &mut SelectStatement, version: &str, id: &str, after: &PageCursor) {
    if let Some((v, last_id)) = after {
        let columns = Expr::tuple([Expr::col(Alias::new(version)), Expr::col(Alias::new(id))]);
        stmt.and_where(columns.gt(Expr::tuple([Expr::val(*v), Expr::val(last_id.as_str())])));
    }
}

/// Deletes tombstones older than `before_version`; returns how many.
pub async fn purge_tombstones<C: ConnectionTrait>(db: &C, before_version: i64) -> Result<u64, DbErr> {
    let stmt = Query::delete()
        .from_table(SyncTombstone)
        .and_where(Expr::col(Tombstone::Version).lt(before_version))
        .to_owned();
    Ok(db.execute_raw(db.get_database_backend().build(&stmt)).await?.rows_affected())
}

/// Where a page of [`page_rows`] ends, read from its last row.
pub fn row_cursor(row: &QueryResult) -> Result<(i64, String), DbErr> {
    Ok((row.try_get("", "version")?, row.try_get("", "id")?))
}

/// The record id of a row of [`page_rows`].
pub fn row_id(row: &QueryResult) -> Result<String, DbErr> {
    row.try_get("", "id")
}

/// Reads one stored cell of `kind` from a row.
pub fn read_cell(row: &QueryResult, column: &str, kind: Kind) -> Result<Cell, DbErr> {
    Ok(match kind {
        Kind::Millis | Kind::Int { .. } => row.try_get::<Option<i64>>("", column)?.map_or(Cell::Null, Cell::Int),
        Kind::Bool => row.try_get::<Option<bool>>("", column)?.map_or(Cell::Null, Cell::Bool),
        _ => row.try_get::<Option<String>>("", column)?.map_or(Cell::Null, Cell::Text),
    })
}

/// A row's private values, as `rotate-keys` reads them.
pub struct PrivateRow {
    pub user_id: Uuid,
    pub id: String,
    /// The `private` columns asked for, in that order.
    pub private: Vec<Option<String>>,
}

/// Up to `limit` rows of `table` after `after` in `(user_id, id)` order, with the
/// values of its `private` columns.
pub async fn private_page<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    private: &[&str],
    after: Option<&(Uuid, String)>,
    limit: u64,
) -> Result<Vec<PrivateRow>, DbErr> {
    let mut select = Query::select();
    select.columns([Alias::new("user_id"), Alias::new("id")]).from(Alias::new(table.name));
    select.columns(private.iter().map(|c| Alias::new(*c)));
    if let Some((user, id)) = after {
        // A range of the primary key, as in `after_cursor`.
        let key = Expr::tuple([Expr::col(Alias::new("user_id")), Expr::col(Alias::new("id"))]);
        select.and_where(key.gt(Expr::tuple([Expr::val(*user), Expr::val(id.as_str())])));
    }
    select.order_by(Alias::new("user_id"), Order::Asc).order_by(Alias::new("id"), Order::Asc).limit(limit);
    db.query_all_raw(backend_build(db, &select))
        .await?
        .iter()
        .map(|row| {
            Ok(PrivateRow {
                user_id: row.try_get("", "user_id")?,
                id: row.try_get("", "id")?,
                private: private.iter().map(|c| row.try_get("", c)).collect::<Result<_, DbErr>>()?,
            })
        })
        .collect()
}

/// Replaces `column` of one row with `resealed` if it still holds `stored`;
/// returns how many rows changed (0 or 1).
pub async fn reseal<C: ConnectionTrait>(
    db: &C,
    table: &SyncTable,
    column: &str,
    user_id: Uuid,
    id: &str,
    stored: &str,
    resealed: String,
) -> Result<u64, DbErr> {
    let update = Query::update()
        .table(Alias::new(table.name))
        .value(Alias::new(column), Value::String(Some(resealed)))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::col(Alias::new("id")).eq(id))
        .and_where(Expr::col(Alias::new(column)).eq(stored))
        .to_owned();
    Ok(db.execute_raw(db.get_database_backend().build(&update)).await?.rows_affected())
}

/// What the program's rules read of a synced check-in: never its note. A
/// `FromQueryResult` row here rather than an entity for `checkins`: the table is
/// defined at run time by [`super::tables`], and an entity would be a second
/// definition of it, and a way to write check-ins past sync's versions and
/// encryption.
#[derive(Debug, FromQueryResult)]
pub struct CheckinFactRow {
    pub occurred_at: i64,
    pub anxiety: i64,
    pub comfort: i64,
    pub exercise_id: Option<String>,
    pub completed: bool,
}

/// The facts of all of `user_id`'s check-ins: what the stored summary
/// (`super::summary`) must equal; the program's rules read the summary.
pub async fn checkin_facts<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Vec<CheckinFactRow>, DbErr> {
    CheckinFactRow::find_by_statement(backend_build(db, &facts_query(user_id))).all(db).await
}

/// The facts of `user_id`'s check-ins among `ids`: what a push replaces or
/// deletes, taken out of the summary before it writes.
pub async fn checkin_facts_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    ids: &[&str],
) -> Result<Vec<CheckinFactRow>, DbErr> {
    let mut facts = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let mut stmt = facts_query(user_id);
        stmt.and_where(Expr::col(Alias::new("id")).is_in(chunk.iter().copied()));
        facts.extend(CheckinFactRow::find_by_statement(backend_build(db, &stmt)).all(db).await?);
    }
    Ok(facts)
}

fn facts_query(user_id: Uuid) -> SelectStatement {
    Query::select()
        .columns(["occurred_at", "anxiety", "comfort", "exercise_id", "completed"].map(Alias::new))
        .from(Alias::new("checkins"))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .to_owned()
}

/// The condition of the partial index `idx_checkins_completions`, as its
/// migration writes it: a query that repeats it literally can use the index
/// (neither database matches a bound parameter to an index's condition).
const COMPLETED: &str = "completed = TRUE";

#[derive(Debug, FromQueryResult)]
struct Instant {
    occurred_at: i64,
}

/// The latest completed check-in of `exercise_id` (one step of the partial
/// index `idx_checkins_completions`, whose condition this repeats).
pub async fn latest_completion<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    exercise_id: &str,
) -> Result<Option<i64>, DbErr> {
    let stmt = Query::select()
        .column(Alias::new("occurred_at"))
        .from(Alias::new("checkins"))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::col(Alias::new("exercise_id")).eq(exercise_id))
        .and_where(Expr::cust(COMPLETED))
        .order_by(Alias::new("occurred_at"), Order::Desc)
        .limit(1)
        .to_owned();
    Ok(Instant::find_by_statement(backend_build(db, &stmt)).one(db).await?.map(|row| row.occurred_at))
}

/// The latest check-in that signalled distress (one step of the partial index
/// `idx_checkins_distress`, whose condition this repeats literally, as
/// [`COMPLETED`] does).
pub async fn latest_distress<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<Option<i64>, DbErr> {
    let stmt = Query::select()
        .column(Alias::new("occurred_at"))
        .from(Alias::new("checkins"))
        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
        .and_where(Expr::cust(format!("anxiety >= {DISTRESS_ANXIETY} OR comfort <= {DISTRESS_COMFORT}")))
        .order_by(Alias::new("occurred_at"), Order::Desc)
        .limit(1)
        .to_owned();
    Ok(Instant::find_by_statement(backend_build(db, &stmt)).one(db).await?.map(|row| row.occurred_at))
}

/// One row of [`summary_rows`]: `kind` says which table it came from.
#[derive(Debug, FromQueryResult)]
pub struct SummaryRow {
    /// `t`: an exercise tally (`exercise_id`, completions, comfortable, latest);
    /// `d`: the distress count and latest (`a`, `c`); `s`: the first slot with
    /// a completion of one local day (1 in `a`, the slot in `c`).
    pub kind: String,
    pub exercise_id: Option<String>,
    pub a: i64,
    pub b: i64,
    pub c: i64,
}

/// What the rules read of a person's summary (`super::summary`) in one round
/// trip: every exercise tally, the distress row, and, when the week's local
/// midnights are given (`week[0]` Monday's to `week[7]` the next Monday's),
/// one slot for each of its days with a completed exercise: at most seven
/// rows, however many sessions the week held.
pub async fn summary_rows<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    week: Option<[i64; 8]>,
) -> Result<Vec<SummaryRow>, DbErr> {
    use crate::entities::{
        checkin_distress as distress, checkin_exercise_tally as tally, checkin_session_slot as slot,
    };
    let no_text: Option<String> = None;
    let mut select = Query::select();
    select
        .expr_as(Expr::val("t"), Alias::new("kind"))
        .expr_as(Expr::col(tally::Column::ExerciseId), Alias::new("exercise_id"))
        .expr_as(Expr::col(tally::Column::Completions), Alias::new("a"))
        .expr_as(Expr::col(tally::Column::Comfortable), Alias::new("b"))
        .expr_as(Expr::col(tally::Column::LastCompletedAt), Alias::new("c"))
        .from(tally::Entity)
        .and_where(Expr::col(tally::Column::UserId).eq(user_id));
    let distress = Query::select()
        .expr(Expr::val("d"))
        .expr(Expr::val(no_text.clone()))
        .expr(Expr::col(distress::Column::Checkins))
        .expr(Expr::val(0_i64))
        .expr(Expr::col(distress::Column::LastAt))
        .from(distress::Entity)
        .and_where(Expr::col(distress::Column::UserId).eq(user_id))
        .to_owned();
    select.union(sea_orm::sea_query::UnionType::All, distress);
    if let Some(days) = week {
        // The day of the week a slot falls in (0 Monday … 6 Sunday); local
        // midnights fall on slot boundaries, so a slot is in exactly one day.
        let mut day = Expr::case(Expr::col(slot::Column::SlotAt).lt(days[1]), 0_i64);
        for (index, next_midnight) in days.iter().enumerate().take(7).skip(2) {
            day = day.case(Expr::col(slot::Column::SlotAt).lt(*next_midnight), index as i64 - 1);
        }
        let slots = Query::select()
            .expr(Expr::val("s"))
            .expr(Expr::val(no_text))
            .expr(Expr::val(1_i64))
            .expr(Expr::val(0_i64))
            .expr(Expr::col(slot::Column::SlotAt).min())
            .from(slot::Entity)
            .and_where(Expr::col(slot::Column::UserId).eq(user_id))
            .and_where(Expr::col(slot::Column::SlotAt).gte(days[0]))
            .and_where(Expr::col(slot::Column::SlotAt).lt(days[7]))
            .and_where(Expr::col(slot::Column::Completions).gt(0))
            .add_group_by([day.finally(6_i64).into()])
            .to_owned();
        select.union(sea_orm::sea_query::UnionType::All, slots);
    }
    SummaryRow::find_by_statement(backend_build(db, &select)).all(db).await
}
