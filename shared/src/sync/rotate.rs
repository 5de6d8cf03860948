//! `attune-api rotate-keys`: re-encrypts private text sealed under older keys with
//! the newest one. Safe to run while the service runs: each value is replaced only
//! if it is still the one that was read, and versions do not change (the text a
//! client sees is the same).

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    SyncError, sql,
    tables::{Kind, TABLES},
};
use crate::crypto::{Binding, DataCipher};

const BATCH: u64 = 500;

/// Re-encrypts every stale private value; returns how many were rewritten.
pub async fn rotate_keys(db: &DatabaseConnection, cipher: &DataCipher) -> Result<u64, SyncError> {
    let mut rewritten = 0;
    for table in &TABLES {
        let private: Vec<&str> =
            table.columns.iter().filter(|c| matches!(c.kind, Kind::Private { .. })).map(|c| c.name).collect();
        let mut after: Option<(Uuid, String)> = None;
        loop {
            let rows = sql::private_page(db, table, &private, after.as_ref(), BATCH).await?;
            for row in &rows {
                for (column, stored) in private.iter().zip(&row.private) {
                    let Some(stored) = stored else { continue };
                    if !cipher.needs_rotation(stored) {
                        continue;
                    }
                    let binding = Binding { user_id: row.user_id, table: table.name, column, record_id: &row.id };
                    let resealed = cipher.seal(&cipher.open(stored, &binding)?, &binding);
                    rewritten += sql::reseal(db, table, column, row.user_id, &row.id, stored, resealed).await?;
                }
            }
            if let Some(last) = rows.last() {
                after = Some((last.user_id, last.id.clone()));
            }
            if (rows.len() as u64) < BATCH {
                break;
            }
        }
    }
    Ok(rewritten)
}
