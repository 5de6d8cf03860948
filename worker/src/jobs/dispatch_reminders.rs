//! The reminder dispatcher: claims due reminders in batches and queues one push
//! per device, each batch in one transaction. Several workers may run it at once;
//! each reminder still goes out once (see `Reminders::claim_due`), and one
//! whose worker died before its claim committed is claimed again by a later run.

use attune_shared::{
    jobs::{Job, UniqueJob},
    reminders::DueReminder,
};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use sea_orm::DatabaseTransaction;

use crate::WorkerDeps;

/// Reminders claimed per transaction: few round trips, locks held briefly.
pub const BATCH: u64 = 5_000;

/// Claim-and-queue loops run at once. Each claim skips rows another holds, so
/// lanes never share a reminder; while one waits on a statement or on the queue,
/// the others keep the database busy. Four was the best count measured (README,
/// Performance, "Reminder dispatch"). SQLite serialises them, which is harmless.
const LANES: usize = 4;

/// Sends every reminder due at `now`, `batch` at a time; returns how many were queued.
#[tracing::instrument(skip_all)]
pub async fn dispatch_due_reminders(deps: &WorkerDeps, now: DateTime<Utc>, batch: u64) -> anyhow::Result<usize> {
    // Owned futures: borrowing ones in a join would make this future not `Send`.
    let lanes = (0..LANES).map(|_| {
        let deps = deps.clone();
        async move { claim_and_queue(&deps, now, batch).await }
    });
    let sent = try_join_all(lanes).await?.into_iter().sum::<usize>();
    if sent > 0 {
        tracing::info!(sent, "reminders dispatched");
    }
    Ok(sent)
}

/// Claims and queues batches until none is left.
async fn claim_and_queue(deps: &WorkerDeps, now: DateTime<Utc>, batch: u64) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let txn = attune_shared::db::begin(&deps.db).await?;
        let queued = claim_and_queue_in(deps, &txn, now, batch).await?;
        txn.commit().await?;
        sent += queued;
        if (queued as u64) < batch {
            return Ok(sent);
        }
    }
}

/// One batch within `txn`: claims up to `batch` due reminders and queues one push
/// per device of each, under keys derived from the delivery, so that a batch
/// queued again after its transaction rolled back is dropped by the queue. The
/// caller commits once this returns; returns how many reminders were queued.
#[tracing::instrument(skip_all)]
pub async fn claim_and_queue_in(
    deps: &WorkerDeps,
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    batch: u64,
) -> anyhow::Result<usize> {
    let reminders = &deps.reminders;
    let due = reminders.claim_due(txn, now, batch).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut jobs = Vec::with_capacity(due.len());
    for reminder in &due {
        jobs.extend(pushes(reminder, reminders.message(txn, reminder).await));
    }
    deps.queue.enqueue_unique(jobs).await?;
    metrics::counter!("attune_reminders_sent_total").increment(due.len() as u64);
    Ok(due.len())
}

/// One push job per device of `reminder`.
fn pushes(reminder: &DueReminder, message: attune_shared::push::PushMessage) -> Vec<UniqueJob> {
    reminder
        .devices
        .iter()
        .map(|&subscription_id| UniqueJob {
            // The same reminder queued again for the same device is dropped.
            key: format!("reminder:{}:{subscription_id}", reminder.delivery_id),
            job: Job::SendPush { user_id: reminder.user_id, subscription_id, message: message.clone(), attempt: 0 },
        })
        .collect()
}
