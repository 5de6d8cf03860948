//! Offline-first sync on WatermelonDB's protocol: `pull` streams every change since
//! the client's last pull; `push` applies the client's changes all or nothing.
//!
//! Versions: each push takes the user's next version under the lock of their
//! `sync_state` row (see [`sql::next_version`]), so a user's versions strictly
//! increase and commit in order. A pull reads the newest *committed* version `V`
//! first and returns only changes with versions in `(last_pulled_at, V]`, then
//! answers `timestamp: V`. A push that started before the pull but commits after it
//! therefore has a version above `V` and reaches the next pull: no change is missed.
//!
//! Every record a pull sends goes in `updated`, never in `created`: the client
//! must call `synchronize({ sendCreatedAsUpdated: true, ... })`. WatermelonDB
//! treats `created` for a record it deleted locally as "recreate it", and a delta
//! pull always carries the device's own writes of its previous sync (it pulls
//! before it pushes), so sending them as `created` brought deleted notes back.
//! `updated` for a locally deleted record is skipped and the deletion is pushed;
//! `updated` for a record the device lacks creates it (silently, with that flag).
//!
//! Deletes leave tombstones for the retention period; a client that last pulled
//! before it, or whose `last_pulled_at` is not a timestamp this server gave, gets a
//! full snapshot with WatermelonDB's `experimentalStrategy: "replacement"`, which
//! drops local records the server no longer has.

pub mod partner_items;
mod rotate;
pub mod sql;
pub mod summary;
pub mod tables;

pub use rotate::rotate_keys;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionSession, TransactionTrait};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::{
    Clock,
    crypto::{Binding, CryptoError, DataCipher},
    domain::{ValidationErrors, history::SummaryDelta, pacing::CheckinFact},
};
use sql::{PageCursor, StoredRecord};
use tables::{Cell, Kind, SyncTable, TABLES};

/// The most records one push may carry.
pub const MAX_PUSH_RECORDS: usize = 5_000;
/// Rows read per query while streaming a pull.
const PULL_PAGE: u64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("a push may carry at most {MAX_PUSH_RECORDS} records; this one has {count}")]
    TooManyRecords { count: usize },
    #[error("{} record(s) changed on the server after last_pulled_at", .0.len())]
    Conflict(Vec<ConflictedRecord>),
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("stored private text could not be read: {0}")]
    Crypto(#[from] CryptoError),
    /// A pull's JSON could not be written or read back.
    #[error("sync JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The task reading a pull's next page ended without an answer (it panicked,
    /// or the runtime is shutting down).
    #[error("a pull's page read stopped: {0}")]
    PageRead(#[from] tokio::task::JoinError),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ConflictedRecord {
    pub table: String,
    pub id: String,
}

/// WatermelonDB's `migration` pull parameter.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct MigrationSpec {
    #[serde(default)]
    pub from: u32,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub columns: Vec<MigrationColumns>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MigrationColumns {
    pub table: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    pub last_pulled_at: Option<i64>,
    pub schema_version: Option<u32>,
    pub migration: Option<MigrationSpec>,
}

/// What a pull will return, decided before the first byte is sent.
#[derive(Debug, Clone)]
pub struct PullPlan {
    user_id: Uuid,
    snapshot: i64,
    replacement: bool,
    tables: Vec<TablePlan>,
}

#[derive(Debug, Clone)]
struct TablePlan {
    table: &'static SyncTable,
    /// Records whose version is above this are sent (as `updated`).
    changed_after: i64,
    /// Tombstones above this are sent; `None` when the client holds nothing yet.
    deleted_since: Option<i64>,
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The version the changes were stored at.
    pub version: i64,
    /// The tables in which records were created or updated.
    pub written: Vec<&'static str>,
    /// Every record id the push created, updated or deleted, by table.
    pub touched: Vec<(&'static str, Vec<String>)>,
}

impl Pushed {
    /// Whether records of `table` were created or updated.
    pub fn wrote(&self, table: &str) -> bool {
        self.written.contains(&table)
    }

    /// Whether records of `table` were created, updated or deleted.
    pub fn touched_table(&self, table: &str) -> bool {
        self.touched.iter().any(|(name, ids)| *name == table && !ids.is_empty())
    }
}

#[derive(Clone)]
pub struct SyncService {
    db: DatabaseConnection,
    cipher: DataCipher,
    clock: Arc<dyn Clock>,
    tombstone_retention_ms: i64,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService").finish_non_exhaustive()
    }
}

impl SyncService {
    pub fn new(
        db: DatabaseConnection,
        cipher: DataCipher,
        clock: Arc<dyn Clock>,
        tombstone_retention_days: u32,
    ) -> Self {
        Self { db, cipher, clock, tombstone_retention_ms: i64::from(tombstone_retention_days) * 86_400_000 }
    }

    /// Decides what a pull returns and takes its snapshot version.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn plan_pull(&self, user_id: Uuid, request: &PullRequest) -> Result<PullPlan, SyncError> {
        let now = self.clock.now_ms();
        let snapshot = sql::current_version(&self.db, user_id, now).await?;
        let since = request.last_pulled_at.filter(|t| *t > 0);
        let stale = since.is_some_and(|t| t < now - self.tombstone_retention_ms || t > snapshot);
        let since = if stale { 0 } else { since.unwrap_or(0) };
        let schema_version = request.schema_version.unwrap_or(tables::SCHEMA_VERSION);
        let migration = request.migration.clone().unwrap_or_default();
        check_migration(&migration)?;

        let mut plans = Vec::new();
        for table in TABLES.iter().filter(|t| t.since <= schema_version) {
            let new_table = migration.tables.iter().any(|t| t == table.name);
            let new_columns = migration.columns.iter().any(|c| c.table == table.name && !c.columns.is_empty());
            let plan = if since == 0 || new_table {
                // Everything the client should hold.
                TablePlan { table, changed_after: i64::MIN, deleted_since: None }
            } else {
                TablePlan {
                    table,
                    // After a migration that added columns, every record the client
                    // already holds comes again, whole.
                    changed_after: if new_columns { i64::MIN } else { since },
                    deleted_since: Some(since),
                }
            };
            plans.push(plan);
        }
        Ok(PullPlan { user_id, snapshot, replacement: stale, tables: plans })
    }

    /// Streams the pull's JSON body in pieces, a page of rows at a time, so memory
    /// stays flat however long the history. The channel's bound gives back-pressure.
    pub fn stream_pull(&self, plan: PullPlan) -> mpsc::Receiver<Result<Vec<u8>, SyncError>> {
        let (tx, rx) = mpsc::channel(2);
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(error) = service.write_pull(&plan, &tx).await {
                tracing::error!(%error, "pull stream failed");
                let _ = tx.send(Err(error)).await;
            }
        });
        rx
    }

    /// The whole pull as one JSON value (tests, exports).
    pub async fn pull_value(&self, user_id: Uuid, request: &PullRequest) -> Result<Value, SyncError> {
        let plan = self.plan_pull(user_id, request).await?;
        let mut rx = self.stream_pull(plan);
        let mut body = Vec::new();
        while let Some(piece) = rx.recv().await {
            body.extend(piece?);
        }
        Ok(serde_json::from_slice(&body)?)
    }

    async fn write_pull(
        &self,
        plan: &PullPlan,
        tx: &mpsc::Sender<Result<Vec<u8>, SyncError>>,
    ) -> Result<(), SyncError> {
        let send = |piece: Vec<u8>| async move { tx.send(Ok(piece)).await.is_ok() };
        if !send(b"{\"changes\":{".to_vec()).await {
            return Ok(());
        }
        for (n, table) in plan.tables.iter().enumerate() {
            let mut head = Vec::new();
            if n > 0 {
                head.push(b',');
            }
            head.extend(format!("\"{}\":{{\"created\":[],\"updated\":[", table.table.name).into_bytes());
            if !send(head).await {
                return Ok(());
            }
            if !self.write_rows(plan, table.table, table.changed_after, tx).await? {
                return Ok(());
            }
            if !send(b"],\"deleted\":[".to_vec()).await {
                return Ok(());
            }
            if let Some(since) = table.deleted_since
                && !self.write_tombstones(plan, table.table, since, tx).await?
            {
                return Ok(());
            }
            if !send(b"]}".to_vec()).await {
                return Ok(());
            }
        }
        let mut tail = format!("}},\"timestamp\":{}", plan.snapshot);
        if plan.replacement {
            tail.push_str(",\"experimentalStrategy\":\"replacement\"");
        }
        tail.push('}');
        send(tail.into_bytes()).await;
        Ok(())
    }

    /// Writes one slice of rows as comma-separated JSON objects; false when the
    /// client has gone away.
    async fn write_rows(
        &self,
        plan: &PullPlan,
        table: &'static SyncTable,
        changed_after: i64,
        tx: &mpsc::Sender<Result<Vec<u8>, SyncError>>,
    ) -> Result<bool, SyncError> {
        // The next page is read while this one is encoded: the database's time
        // and ours overlap, and at most two pages are held.
        let fetch = |cursor: PageCursor| {
            let (db, user_id, snapshot) = (self.db.clone(), plan.user_id, plan.snapshot);
            tokio::spawn(async move {
                sql::page_rows(&db, table, user_id, changed_after, snapshot, &cursor, PULL_PAGE).await
            })
        };
        let mut next = Some(fetch(None));
        let mut first = true;
        while let Some(page) = next.take() {
            let rows = page.await??;
            let Some(last) = rows.last() else {
                return Ok(true);
            };
            if rows.len() as u64 == PULL_PAGE {
                next = Some(fetch(Some(sql::row_cursor(last)?)));
            }
            let mut piece = Vec::with_capacity(rows.len() * 256);
            for row in &rows {
                if !first {
                    piece.push(b',');
                }
                first = false;
                self.write_row(&mut piece, plan.user_id, table, row)?;
            }
            if tx.send(Ok(piece)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn write_tombstones(
        &self,
        plan: &PullPlan,
        table: &'static SyncTable,
        since: i64,
        tx: &mpsc::Sender<Result<Vec<u8>, SyncError>>,
    ) -> Result<bool, SyncError> {
        let mut cursor: PageCursor = None;
        let mut first = true;
        loop {
            let ids =
                sql::page_tombstones(&self.db, table, plan.user_id, since, plan.snapshot, &cursor, PULL_PAGE).await?;
            let Some(last) = ids.last() else {
                return Ok(true);
            };
            cursor = Some(last.clone());
            let mut piece = Vec::new();
            for (_, id) in &ids {
                if !first {
                    piece.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut piece, id)?;
            }
            let full = ids.len() as u64 == PULL_PAGE;
            if tx.send(Ok(piece)).await.is_err() {
                return Ok(false);
            }
            if !full {
                return Ok(true);
            }
        }
    }

    /// Appends one row as the client's record, a JSON object of its columns and
    /// `id`, private text decrypted. Written straight into `out`: no map of owned
    /// keys and values per row (a first pull encodes 10,000 of them).
    fn write_row(
        &self,
        out: &mut Vec<u8>,
        user_id: Uuid,
        table: &SyncTable,
        row: &sea_orm::QueryResult,
    ) -> Result<(), SyncError> {
        let id = sql::row_id(row)?;
        out.push(b'{');
        for column in table.columns {
            // Column names are plain identifiers: nothing to escape.
            out.push(b'"');
            out.extend_from_slice(column.name.as_bytes());
            out.extend_from_slice(b"\":");
            match sql::read_cell(row, column.name, column.kind)? {
                Cell::Null => out.extend_from_slice(b"null"),
                Cell::Int(n) => serde_json::to_writer(&mut *out, &n)?,
                Cell::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
                Cell::Text(text) => match column.kind {
                    Kind::Private { .. } => {
                        let binding = Binding { user_id, table: table.name, column: column.name, record_id: &id };
                        serde_json::to_writer(&mut *out, &self.cipher.open(&text, &binding)?)?;
                    }
                    _ => serde_json::to_writer(&mut *out, &text)?,
                },
            }
            out.push(b',');
        }
        out.extend_from_slice(b"\"id\":");
        serde_json::to_writer(&mut *out, &id)?;
        out.push(b'}');
        Ok(())
    }

    /// Applies a push on `conn`: everything or nothing. Returns the version it was
    /// stored at and the tables it wrote records to. A step of the use case
    /// `Services::push_changes`; within its transaction, `begin` is a savepoint.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn push<C>(
        &self,
        conn: &C,
        user_id: Uuid,
        last_pulled_at: Option<i64>,
        body: &Value,
    ) -> Result<Pushed, SyncError>
    where
        C: ConnectionTrait + TransactionTrait,
    {
        let changes = parse_changes(body)?;
        let since = last_pulled_at.unwrap_or(0);
        let txn = crate::db::begin(conn).await?;
        sql::plan_for_values(&txn).await?;
        let version = sql::next_version(&txn, user_id, self.clock.now_ms()).await?;

        // What is stored of each table's ids, read once: for the conflict check,
        // the summary (only stored check-ins come out of it) and the tombstones
        // to forget. Nothing else writes these rows meanwhile: every writer of a
        // person's synced rows holds their `sync_state` lock, taken above.
        let mut conflicts = Vec::new();
        let mut stored = Vec::with_capacity(changes.len());
        for change in &changes {
            let ids: Vec<&str> = change.all_ids().collect();
            let rows = sql::row_versions(&txn, change.table, user_id, &ids).await?;
            let tombstones = sql::tombstone_versions(&txn, change.table, user_id, &ids).await?;
            let updated: HashSet<&str> = change.updated.iter().map(|r| r.id.as_str()).collect();
            for id in ids {
                let changed_since =
                    rows.get(id).is_some_and(|v| *v > since) || tombstones.get(id).is_some_and(|v| *v > since);
                // Updated but gone: deleted here, so the client must pull that first.
                let deleted_here = updated.contains(id) && !rows.contains_key(id) && tombstones.contains_key(id);
                if changed_since || deleted_here {
                    conflicts.push(ConflictedRecord { table: change.table.name.to_owned(), id: id.to_owned() });
                }
            }
            stored.push(Stored { rows, tombstones });
        }
        if !conflicts.is_empty() {
            txn.rollback().await?;
            return Err(SyncError::Conflict(conflicts));
        }

        let summary = self.summary_delta(&txn, user_id, &changes, &stored).await?;
        for (change, stored) in changes.iter().zip(&stored) {
            let upserts: Vec<StoredRecord> = change
                .created
                .iter()
                .chain(&change.updated)
                .map(|record| self.seal(user_id, change.table, record))
                .collect();
            sql::upsert(&txn, change.table, user_id, version, &upserts).await?;
            let recreated: Vec<&str> =
                upserts.iter().map(|r| r.id.as_str()).filter(|id| stored.tombstones.contains_key(*id)).collect();
            sql::forget_tombstones(&txn, change.table, user_id, &recreated).await?;
            let deleted: Vec<&str> = change.deleted.iter().map(String::as_str).collect();
            sql::delete(&txn, change.table, user_id, version, &deleted).await?;
        }
        summary::apply(&txn, user_id, &summary).await?;
        txn.commit().await?;
        let count: usize = changes.iter().map(TableChanges::len).sum();
        tracing::info!(records = count, version, "push applied");
        let written = changes
            .iter()
            .filter(|change| !change.created.is_empty() || !change.updated.is_empty())
            .map(|change| change.table.name)
            .collect();
        let touched =
            changes.iter().map(|change| (change.table.name, change.all_ids().map(str::to_owned).collect())).collect();
        Ok(Pushed { version, written, touched })
    }

    /// How the push changes the summary the rules read (`summary`): the stored
    /// check-ins it replaces or deletes come out, the ones it writes go in.
    async fn summary_delta<C: ConnectionTrait>(
        &self,
        txn: &C,
        user_id: Uuid,
        changes: &[TableChanges],
        stored: &[Stored],
    ) -> Result<SummaryDelta, DbErr> {
        let mut delta = SummaryDelta::default();
        for (change, stored) in changes.iter().zip(stored).filter(|(c, _)| c.table.name == tables::CHECKINS) {
            let ids: Vec<&str> = change.all_ids().filter(|id| stored.rows.contains_key(*id)).collect();
            for row in sql::checkin_facts_of(txn, user_id, &ids).await? {
                delta.remove(&summary::fact(row));
            }
            for record in change.created.iter().chain(&change.updated) {
                delta.add(&checkin_fact(change.table, record));
            }
        }
        Ok(delta)
    }

    fn seal(&self, user_id: Uuid, table: &SyncTable, record: &tables::Record) -> StoredRecord {
        let cells = table
            .columns
            .iter()
            .zip(&record.cells)
            .map(|(column, cell)| match (column.kind, cell) {
                (Kind::Private { .. }, Cell::Text(text)) => {
                    let binding = Binding { user_id, table: table.name, column: column.name, record_id: &record.id };
                    Cell::Text(self.cipher.seal(text, &binding))
                }
                _ => cell.clone(),
            })
            .collect();
        StoredRecord { id: record.id.clone(), cells }
    }

    /// Deletes tombstones past the retention period.
    pub async fn purge_tombstones(&self) -> Result<u64, DbErr> {
        sql::purge_tombstones(&self.db, self.clock.now_ms() - self.tombstone_retention_ms).await
    }
}

/// What the rules read of a checked check-in (never its note).
fn checkin_fact(table: &SyncTable, record: &tables::Record) -> CheckinFact {
    let cell = |name: &str| table.columns.iter().position(|c| c.name == name).and_then(|i| record.cells.get(i));
    let int = |name: &str| match cell(name) {
        Some(Cell::Int(n)) => *n,
        _ => 0,
    };
    CheckinFact {
        occurred_at: chrono::DateTime::from_timestamp_millis(int("occurred_at")).unwrap_or_default(),
        anxiety: int("anxiety"),
        comfort: int("comfort"),
        exercise_id: match cell("exercise_id") {
            Some(Cell::Text(id)) => Some(id.clone()),
            _ => None,
        },
        completed: matches!(cell("completed"), Some(Cell::Bool(true))),
    }
}

/// The checked changes of one table.
struct TableChanges {
    table: &'static SyncTable,
    created: Vec<tables::Record>,
    updated: Vec<tables::Record>,
    deleted: Vec<String>,
}

impl TableChanges {
    fn all_ids(&self) -> impl Iterator<Item = &str> {
        self.created.iter().chain(&self.updated).map(|r| r.id.as_str()).chain(self.deleted.iter().map(String::as_str))
    }

    fn len(&self) -> usize {
        self.created.len() + self.updated.len() + self.deleted.len()
    }
}

/// What is stored of one table's pushed ids before the push writes:
/// `id → version` of the rows and of the tombstones.
struct Stored {
    rows: HashMap<String, i64>,
    tombstones: HashMap<String, i64>,
}

fn check_migration(migration: &MigrationSpec) -> Result<(), SyncError> {
    let mut errors = ValidationErrors::new();
    for name in &migration.tables {
        if tables::table(name).is_none() {
            errors.add("migration.tables", format!("`{name}` is not a synced table"));
        }
    }
    for spec in &migration.columns {
        match tables::table(&spec.table) {
            None => errors.add("migration.columns", format!("`{}` is not a synced table", spec.table)),
            Some(table) => {
                for column in &spec.columns {
                    if !table.columns.iter().any(|c| c.name == column) {
                        errors.add("migration.columns", format!("`{}` has no column `{column}`", spec.table));
                    }
                }
            }
        }
    }
    errors.into_result().map_err(SyncError::Validation)
}

/// Reads the pushed changes (`{"changes": {...}}` as in Attune's API, or the bare
/// changes object that WatermelonDB's documented example posts), checking every
/// record before anything is stored.
fn parse_changes(body: &Value) -> Result<Vec<TableChanges>, SyncError> {
    let changes = match body.get("changes") {
        Some(inner) if inner.is_object() => inner,
        _ => body,
    };
    let Some(changes) = changes.as_object() else {
        return Err(SyncError::Validation(ValidationErrors::single("changes", "must be an object of tables")));
    };
    let count: usize = changes
        .values()
        .map(|t| {
            ["created", "updated", "deleted"]
                .iter()
                .map(|k| t.get(k).and_then(Value::as_array).map_or(0, Vec::len))
                .sum::<usize>()
        })
        .sum();
    if count > MAX_PUSH_RECORDS {
        return Err(SyncError::TooManyRecords { count });
    }

    let mut errors = ValidationErrors::new();
    let mut parsed = Vec::new();
    for (name, table_changes) in changes {
        let Some(table) = tables::table(name) else {
            errors.add_for_record(name, "", "changes", format!("`{name}` is not a synced table"));
            continue;
        };
        if table.read_only {
            // WatermelonDB's push lists every table of the app's schema, a
            // read-only one too, with empty lists: that is no change.
            let changed = !table_changes.is_object()
                || ["created", "updated", "deleted"].iter().any(|k| {
                    table_changes.get(k).is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|r| !r.is_empty()))
                });
            if changed {
                let message = format!("`{name}` is read-only: only its owner changes these");
                errors.add_for_record(name, "", "changes", message);
            }
            continue;
        }
        let mut out = TableChanges { table, created: vec![], updated: vec![], deleted: vec![] };
        let Some(object) = table_changes.as_object() else {
            errors.add_for_record(name, "", "changes", "must be an object with created, updated and deleted");
            continue;
        };
        for (kind, target) in [("created", &mut out.created), ("updated", &mut out.updated)] {
            match object.get(kind) {
                None | Some(Value::Null) => {}
                Some(Value::Array(records)) => {
                    target.extend(records.iter().filter_map(|raw| tables::parse_record(table, raw, &mut errors)));
                }
                Some(_) => errors.add_for_record(name, "", kind, "must be an array of records"),
            }
        }
        match object.get("deleted") {
            None | Some(Value::Null) => {}
            Some(Value::Array(ids)) => {
                for id in ids {
                    match tables::parse_id(id) {
                        Ok(id) => out.deleted.push(id),
                        Err(message) => errors.add_for_record(name, &id.to_string(), "deleted", message),
                    }
                }
            }
            Some(_) => errors.add_for_record(name, "", "deleted", "must be an array of ids"),
        }
        let mut seen = HashSet::new();
        for id in out.all_ids() {
            if !seen.insert(id) {
                errors.add_for_record(name, id, "id", "appears more than once in this push");
            }
        }
        parsed.push(out);
    }
    errors.into_result().map_err(SyncError::Validation)?;
    Ok(parsed)
}
