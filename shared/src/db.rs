//! One code path over SQLite and PostgreSQL, chosen from the URL. The differences
//! between the two stay in this file and in the migrations.

use std::time::Duration;

use attune_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

/// Opens the database. SQLite runs in WAL mode with foreign keys on and a busy
/// timeout; sea-orm keeps a single SQLite connection, which serialises writers and
/// so rules out `SQLITE_BUSY` on lock upgrades.
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

/// The most bytes of bound values a bulk statement should carry.
///
/// sqlx 0.9.0 leaves Nagle's algorithm on for TCP connections
/// (launchbadge/sqlx#4335, fixed upstream but not yet released): a message larger
/// than the socket's initial send buffer (16 KiB on Linux) goes out in two writes,
/// and the second waits for the server's delayed ACK, some 40 ms per statement
/// whatever its size. Measured locally: 250 rows of 64 bytes take 2 ms, 300 rows
/// take 47 ms. Bulk statements stay below this until a release sets TCP_NODELAY,
/// save the reminder claim's, measured faster whole (`Reminders::claim_due`).
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

fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_of_a_sqlite_url() {
        assert_eq!(sqlite_file_path("sqlite://./data/a.db?mode=rwc").as_deref(), Some("./data/a.db"));
        assert_eq!(sqlite_file_path("sqlite:a.db").as_deref(), Some("a.db"));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://localhost/test"), None);
    }
}
