//! `attune-api rotate-keys`: re-encrypts private text sealed under older keys with
//! the newest one. Safe to run while the service runs: each value is replaced only
//! if it is still the one that was read, and versions do not change (the text a
//! client sees is the same).

use sea_orm::{
    ConnectionTrait, DatabaseConnection, Value,
    sea_query::{Alias, Cond, Expr, ExprTrait, Order, Query},
};
use uuid::Uuid;

use super::{
    SyncError,
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
            let mut select = Query::select();
            select.columns([Alias::new("user_id"), Alias::new("id")]).from(Alias::new(table.name));
            select.columns(private.iter().map(|c| Alias::new(*c)));
            if let Some((user, id)) = &after {
                select.cond_where(
                    Cond::any().add(Expr::col(Alias::new("user_id")).gt(*user)).add(
                        Cond::all()
                            .add(Expr::col(Alias::new("user_id")).eq(*user))
                            .add(Expr::col(Alias::new("id")).gt(id.as_str())),
                    ),
                );
            }
            select.order_by(Alias::new("user_id"), Order::Asc).order_by(Alias::new("id"), Order::Asc).limit(BATCH);
            let rows = db.query_all_raw(db.get_database_backend().build(&select)).await?;
            for row in &rows {
                let user_id = row.try_get::<Uuid>("", "user_id")?;
                let id = row.try_get::<String>("", "id")?;
                for column in &private {
                    let Some(stored) = row.try_get::<Option<String>>("", column)? else {
                        continue;
                    };
                    if !cipher.needs_rotation(&stored) {
                        continue;
                    }
                    let binding = Binding { user_id, table: table.name, column, record_id: &id };
                    let resealed = cipher.seal(&cipher.open(&stored, &binding)?, &binding);
                    let update = Query::update()
                        .table(Alias::new(table.name))
                        .value(Alias::new(*column), Value::String(Some(resealed)))
                        .and_where(Expr::col(Alias::new("user_id")).eq(user_id))
                        .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
                        .and_where(Expr::col(Alias::new(*column)).eq(stored.as_str()))
                        .to_owned();
                    rewritten += db.execute_raw(db.get_database_backend().build(&update)).await?.rows_affected();
                }
                after = Some((user_id, id));
            }
            if (rows.len() as u64) < BATCH {
                break;
            }
        }
    }
    Ok(rewritten)
}
