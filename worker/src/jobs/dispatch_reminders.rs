//! The reminder dispatcher: claims due reminders in batches and queues one push
//! per device. Several workers may run it at once; each reminder still goes out
//! once (see `Reminders::claim_due`), and one whose worker died between claiming
//! and queuing is queued by a later run (see `Reminders::take_over_unqueued`).

use std::collections::HashMap;

use attune_shared::{
    entities::push_subscription::{self, Entity as PushSubscription},
    jobs::{Job, UniqueJob},
    reminders::{DueReminder, Reminders},
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::WorkerDeps;

/// Reminders claimed per transaction: short locks, few round trips.
pub const BATCH: u64 = 500;

/// Descriptive messages built at once (each reads today's suggestion).
const MESSAGE_CONCURRENCY: usize = 8;

/// Sends every reminder due at `now`, `batch` at a time, after first taking over
/// any a dead dispatcher left claimed but unqueued; returns how many were queued.
#[tracing::instrument(skip_all)]
pub async fn dispatch_due_reminders(deps: &WorkerDeps, now: DateTime<Utc>, batch: u64) -> anyhow::Result<usize> {
    let reminders = Reminders::new(deps.db.clone(), deps.clock.clone());
    let mut sent = 0;
    // The most overdue first. The lease is measured on the worker's own clock.
    loop {
        let stale = reminders.take_over_unqueued(deps.clock.now(), batch).await?;
        sent += queue_pushes(deps, &reminders, &stale).await?;
        if (stale.len() as u64) < batch {
            break;
        }
    }
    loop {
        let due = reminders.claim_due(now, batch).await?;
        sent += queue_pushes(deps, &reminders, &due).await?;
        if (due.len() as u64) < batch {
            break;
        }
    }
    if sent > 0 {
        tracing::info!(sent, "reminders dispatched");
    }
    Ok(sent)
}

/// Queues one push per device of each reminder, then marks them all queued.
async fn queue_pushes(deps: &WorkerDeps, reminders: &Reminders, due: &[DueReminder]) -> anyhow::Result<usize> {
    if due.is_empty() {
        return Ok(0);
    }
    let users: Vec<_> = due.iter().map(|d| d.user_id).collect();
    let mut devices: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for subscription in
        PushSubscription::find().filter(push_subscription::Column::UserId.is_in(users)).all(&deps.db).await?
    {
        devices.entry(subscription.user_id).or_default().push(subscription.id);
    }
    // Owned futures: a borrowing closure would make the dispatcher's future not `Send`.
    let messages: Vec<_> = stream::iter(due.to_vec())
        .map(|reminder| {
            let reminders = reminders.clone();
            async move { reminders.message(&reminder).await }
        })
        .buffered(MESSAGE_CONCURRENCY)
        .collect()
        .await;
    let mut jobs = Vec::with_capacity(due.len());
    for (reminder, message) in due.iter().zip(messages) {
        for &subscription_id in devices.get(&reminder.user_id).into_iter().flatten() {
            jobs.push(UniqueJob {
                // The same reminder queued again for the same device is dropped.
                key: format!("reminder:{}:{subscription_id}", reminder.delivery_id),
                job: Job::SendPush { user_id: reminder.user_id, subscription_id, message: message.clone(), attempt: 0 },
            });
        }
    }
    deps.queue.enqueue_unique(jobs).await?;
    let ids: Vec<_> = due.iter().map(|d| d.delivery_id).collect();
    reminders.mark_queued(&ids, deps.clock.now()).await?;
    metrics::counter!("attune_reminders_sent_total").increment(due.len() as u64);
    Ok(due.len())
}
