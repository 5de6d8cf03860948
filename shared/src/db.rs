//! One code path over SQLite and PostgreSQL, chosen from the URL. The differences
//! between the two stay in this file and in the migrations.

use std::{sync::Arc, time::Duration};

use attune_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};

/// `value` as the JSON text a column stores. A failure keeps serde's error as
/// its typed source.
pub fn to_json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|e| conversion::<T, String>(e))
}

/// A stored value that cannot become a `T` (or a `T` that cannot be stored),
/// as a [`DbErr::TryIntoErr`] that keeps the cause as its typed source.
pub fn conversion<From: ?Sized, Into: ?Sized>(source: impl std::error::Error + Send + Sync + 'static) -> DbErr {
    DbErr::TryIntoErr {
        from: std::any::type_name::<From>(),
        into: std::any::type_name::<Into>(),
        source: Arc::new(source),
    }
}

/// Opens the database. SQLite runs in WAL mode with foreign keys on and a busy
/// timeout; sea-orm keeps a single SQLite connection per process, and [`begin`]
/// takes the write lock up front, so writers in two processes wait for each other
/// instead of failing.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let parent =
        sqlite_file_path(url).and_then(|p| std::path::Path::new(&p).parent().map(std::path::Path::to_path_buf));
    if let Some(parent) = parent.filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(&parent)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(10));
    if url.starts_with("postgres") {
        options.max_connections(20).min_connections(1);
    }
    options.map_sqlx_sqlite_opts(|opts| {
        opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .create_if_missing(true)
    });
    Database::connect(options).await
}

/// Begins a use case's transaction, the one way this codebase opens one. On
/// SQLite it is `BEGIN IMMEDIATE`: a deferred transaction reads from a snapshot
/// and, if another process (a second worker on the same file) commits before it
/// writes, fails at once with `SQLITE_BUSY_SNAPSHOT` whatever the busy timeout;
/// taking the write lock at the start makes the other writer wait its turn
/// instead. Within one process the single connection serialises them anyway, so
/// this costs nothing there. PostgreSQL ignores the mode.
pub async fn begin<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    let options =
        TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() };
    db.begin_with_options(options).await
}

/// The most bytes of bound values a bulk statement should carry.
///
/// Chosen when sqlx 0.9.0 left Nagle's algorithm on for TCP connections
/// (sqlx#4335, fixed in 0.9.1 by #4336): a message larger than the socket's initial send
/// buffer (16 KiB on Linux) went out in two writes, and the second waited for
/// the server's delayed ACK, some 40 ms per statement whatever its size
/// (measured then: 250 rows of 64 bytes took 2 ms, 300 rows 47 ms). sqlx 0.9.1
/// sets `TCP_NODELAY`, so a larger statement no longer waits; the size stays
/// the unit of the bulk writes that fan out to many people (notices, choices,
/// the check-in summary's slots and tallies), well under either database's
/// limit of bound values.
pub const MAX_STATEMENT_BYTES: usize = 12 * 1024;

/// Bound bytes of one UUID (PostgreSQL's binary format: length, value, format code).
pub const UUID_BIND_BYTES: usize = 22;

/// How many rows of `bytes_per_row` bound bytes one bulk statement takes (see
/// [`MAX_STATEMENT_BYTES`]); always at least one.
pub const fn rows_per_statement(bytes_per_row: usize) -> usize {
    let rows = MAX_STATEMENT_BYTES / bytes_per_row;
    if rows == 0 { 1 } else { rows }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// `SELECT 1`, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

pub fn is_postgres(db: &impl ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// On PostgreSQL, has the rest of the transaction plan each statement for the
/// tables as they are now (`on`), or go back to reusing plans; nothing on SQLite.
/// A dispatch can grow `reminder_deliveries` by 100,000 rows in seconds, so a
/// generic plan cached while it was small (a scan of the whole table for every
/// person, say) turns quadratic. Index probes are costed as on cached data
/// (`random_page_cost` 1.1): with the default 4, marking a few hundred deliveries
/// by id scans the whole table. JIT stays off: a stale estimate can make it spend
/// half a second compiling a statement that runs in milliseconds.
pub async fn fresh_plans(txn: &impl ConnectionTrait, on: bool) -> Result<(), DbErr> {
    if is_postgres(txn) {
        let mode = if on { "force_custom_plan" } else { "auto" };
        txn.execute_unprepared(&format!(
            "SET LOCAL plan_cache_mode = {mode}; SET LOCAL jit = off; SET LOCAL random_page_cost = 1.1"
        ))
        .await?;
    }
    Ok(())
}

/// A statement written once with numbered placeholders (`$1`, `$2`, …, a value
/// may be used twice): PostgreSQL's own, and sqlx's SQLite driver binds `$N` as
/// it binds `?N`, so the same text serves both.
pub fn numbered(conn: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(conn.get_database_backend(), sql, values)
}

/// A raw statement built up with placeholders for the connected backend (`$n` on
/// PostgreSQL, `?` on SQLite), for the few measured set-based statements the query
/// builder cannot express (a `VALUES` list as a common table expression).
pub struct RawSql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl RawSql {
    pub fn new(backend: DbBackend) -> Self {
        Self { backend, text: String::new(), values: Vec::new() }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// Appends `(v1, v2, …)` for a tuple of values.
    pub fn tuple(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    /// Ends a `SELECT` whose rows are about to be updated: PostgreSQL locks them
    /// and skips rows another transaction holds; SQLite's single writer already
    /// serialises, and it has no row locks.
    pub fn lock_skipping_locked(&mut self) -> &mut Self {
        if self.backend == DbBackend::Postgres {
            self.push(" FOR UPDATE SKIP LOCKED");
        }
        self
    }

    /// How many values are bound so far (the backends cap a statement's parameters).
    pub fn bound(&self) -> usize {
        self.values.len()
    }

    pub fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        for (backend, expected) in [
            (DbBackend::Postgres, "x IN ($1, $2) AND y = $3 FOR UPDATE SKIP LOCKED"),
            (DbBackend::Sqlite, "x IN (?, ?) AND y = ?"),
        ] {
            let mut sql = RawSql::new(backend);
            sql.push("x IN ").tuple([1_i64.into(), 2_i64.into()]).push(" AND y = ").bind("z").lock_skipping_locked();
            assert_eq!(sql.bound(), 3);
            let statement = sql.build();
            assert_eq!(statement.sql, expected);
            assert_eq!(statement.values.map(|v| v.0.len()), Some(3));
        }
    }

    /// While one process's transaction is open, even before it has written,
    /// another process's write waits (here: is refused, with no busy timeout)
    /// rather than slipping in under the first one's snapshot and making the
    /// first one's later write fail with `SQLITE_BUSY_SNAPSHOT`.
    #[tokio::test]
    async fn a_transaction_holds_the_sqlite_write_lock_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/lock.db?mode=rwc", dir.path().display());
        let first = connect(&url).await.unwrap();
        first.execute_unprepared("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (0)").await.unwrap();
        let mut impatient = ConnectOptions::new(url.clone());
        impatient.map_sqlx_sqlite_opts(|opts| opts.busy_timeout(std::time::Duration::ZERO));
        let second = Database::connect(impatient).await.unwrap();

        let txn = begin(&first).await.unwrap();
        txn.execute_unprepared("SELECT n FROM t").await.unwrap();
        let refused = second.execute_unprepared("UPDATE t SET n = n + 10").await.unwrap_err();
        assert!(refused.to_string().contains("locked"), "{refused}");
        txn.execute_unprepared("UPDATE t SET n = n + 1").await.unwrap();
        sea_orm::DatabaseTransaction::commit(txn).await.unwrap();

        second.execute_unprepared("UPDATE t SET n = n + 10").await.unwrap();
        let n = first.query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT n FROM t")).await.unwrap();
        assert_eq!(n.unwrap().try_get_by_index::<i64>(0).unwrap(), 11);
    }

    #[test]
    fn finds_the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_file_path("sqlite://./data/a.db?mode=rwc").as_deref(), Some("./data/a.db"));
        assert_eq!(sqlite_file_path("sqlite:a.db").as_deref(), Some("a.db"));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://localhost/test"), None);
    }
}
