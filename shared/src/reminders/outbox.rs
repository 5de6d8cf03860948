//! The outbox that makes dispatch crash-safe: a claimed delivery stays
//! unqueued (`queued_at` NULL) until its pushes are on the job queue, and one
//! left so past its lease is taken over by a later run.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Order, Query},
};
use uuid::Uuid;

use super::{DueReminder, Reminders, claim::fresh_plans, settings_of};
use crate::{
    db::{UUID_BIND_BYTES, is_postgres, rows_per_statement},
    entities::{
        reminder_delivery::{self, Entity as ReminderDelivery},
        reminder_schedule::{self, Entity as ReminderSchedule},
    },
    notifications::devices_by_user,
};

/// How long a claimed reminder may wait for its pushes to be queued before
/// another dispatch run takes it over. A healthy run queues a batch well under a
/// second after claiming it; a reminder whose worker died is at most this late.
pub const CLAIM_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl Reminders {
    /// Reminders claimed at least [`CLAIM_LEASE`] before `now` whose pushes were
    /// never queued: their dispatcher died between its claim and the queue, or
    /// could not reach the queue. Each is taken over by exactly one caller (rows
    /// another dispatcher is taking over are skipped on PostgreSQL; SQLite's single
    /// writer serialises), which renews its lease to `now` and must queue it and
    /// then call [`Reminders::mark_queued`]; if that caller dies too, the next run
    /// after the lease takes it over again.
    ///
    /// What remains: a caller that dies after queuing but before marking queues
    /// the pushes twice, which the queue drops by their idempotency keys (see
    /// `JobQueue::enqueue_unique`); and a push job in flight when its worker dies
    /// is run again by the queue after the worker misses its heartbeats, so a push
    /// that had reached the push service may arrive twice, where the shared
    /// [`REMINDER_TOPIC`](super::REMINDER_TOPIC) makes the service replace an undelivered first copy.
    #[tracing::instrument(skip_all, fields(batch))]
    pub async fn take_over_unqueued(&self, now: DateTime<Utc>, batch: u64) -> Result<Vec<DueReminder>, DbErr> {
        let deliveries = Alias::new("reminder_deliveries");
        let stale = Query::select()
            .column(Alias::new("id"))
            .from(deliveries.clone())
            .and_where(Expr::col(Alias::new("queued_at")).is_null())
            .and_where(Expr::col(Alias::new("sent_at")).lte((now - CLAIM_LEASE).timestamp_millis()))
            .order_by(Alias::new("sent_at"), Order::Asc)
            .limit(batch)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .to_owned();
        let take_over = Query::update()
            .table(deliveries)
            .value(Alias::new("sent_at"), now.timestamp_millis())
            .and_where(Expr::col(Alias::new("id")).in_subquery(stale))
            .and_where(Expr::col(Alias::new("queued_at")).is_null())
            .returning(Query::returning().columns(["id", "user_id", "slot_at"].map(Alias::new)))
            .to_owned();
        let rows = self.db.query_all_raw(self.db.get_database_backend().build(&take_over)).await?;
        let mut taken = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get("", "id")?;
            let user_id: Uuid = row.try_get("", "user_id")?;
            let slot_at: i64 = row.try_get("", "slot_at")?;
            taken.push((id, user_id, slot_at));
        }
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        tracing::warn!(count = taken.len(), "taking over reminders a dispatcher claimed but never queued");
        let users: Vec<Uuid> = taken.iter().map(|(_, user_id, _)| *user_id).collect();
        let schedules = ReminderSchedule::find()
            .filter(reminder_schedule::Column::UserId.is_in(users.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row))
            .collect::<HashMap<_, _>>();
        let mut devices = devices_by_user(&self.db, &users).await?;
        Ok(taken
            .into_iter()
            .map(|(delivery_id, user_id, slot_at)| DueReminder {
                delivery_id,
                user_id,
                slot_at,
                devices: devices.remove(&user_id).unwrap_or_default(),
                descriptive: settings_of(schedules.get(&user_id)).descriptive,
            })
            .collect())
    }

    /// Marks reminders whose pushes are on the queue (one statement per
    /// [`rows_per_statement`], one transaction): they are done with, and no later
    /// run takes them over.
    #[tracing::instrument(skip_all, fields(reminders = delivery_ids.len()))]
    pub async fn mark_queued(&self, delivery_ids: &[Uuid], at: DateTime<Utc>) -> Result<(), DbErr> {
        let txn = self.bulk_transaction().await?;
        if is_postgres(&txn) {
            // The commit need not wait for the disk: should the database lose this
            // mark in a crash, the lease runs out, a later run queues the same
            // pushes again under the same idempotency keys, and the queue drops them.
            txn.execute_unprepared("SET LOCAL synchronous_commit = off").await?;
        }
        for chunk in delivery_ids.chunks(rows_per_statement(UUID_BIND_BYTES)) {
            ReminderDelivery::update_many()
                .col_expr(reminder_delivery::Column::QueuedAt, Expr::value(at.timestamp_millis()))
                // By id alone: a `queued_at IS NULL` here would steer PostgreSQL to
                // the partial index, whose entries for rows queued since its last
                // vacuum it would then visit one by one.
                .filter(reminder_delivery::Column::Id.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
        }
        txn.commit().await
    }

    /// A transaction whose statements are planned afresh (see [`fresh_plans`]).
    async fn bulk_transaction(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.db.begin().await?;
        fresh_plans(&txn, true).await?;
        Ok(txn)
    }
}
