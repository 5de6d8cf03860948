//! The reminder dispatcher: claims due reminders in batches and queues one push
//! per device. Several workers may run it at once; each reminder still goes out
//! once (see `Reminders::claim_due`), and one whose worker died between claiming
//! and queuing is queued by a later run (see `Reminders::take_over_unqueued`).

use attune_shared::{
    jobs::{Job, UniqueJob},
    reminders::{DueReminder, Reminders},
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, future::try_join_all, stream};

use crate::WorkerDeps;

/// Reminders claimed per transaction: few round trips, locks held briefly.
pub const BATCH: u64 = 5_000;

/// Claim-and-queue loops run at once. Each claim skips rows another holds, so
/// lanes never share a reminder; while one waits on a statement or on the queue,
/// the others keep the database busy. Four measured best for 100,000 reminders
/// (benches/reminders.rs). SQLite serialises them, which is harmless.
const LANES: usize = 4;

/// Descriptive messages built at once (each reads today's suggestion).
const MESSAGE_CONCURRENCY: usize = 8;

/// Sends every reminder due at `now`, `batch` at a time, after first taking over
/// any a dead dispatcher left claimed but unqueued; returns how many were queued.
#[tracing::instrument(skip_all)]
pub async fn dispatch_due_reminders(deps: &WorkerDeps, now: DateTime<Utc>, batch: u64) -> anyhow::Result<usize> {
    let reminders = Reminders::new(deps.db.clone(), deps.clock.clone());
    // The most overdue first. The lease is measured on the worker's own clock.
    let mut sent = 0;
    loop {
        let stale = reminders.take_over_unqueued(deps.clock.now(), batch).await?;
        sent += queue_pushes(deps, &reminders, &stale).await?;
        if (stale.len() as u64) < batch {
            break;
        }
    }
    // Owned futures: borrowing ones in a join would make this future not `Send`.
    let lanes = (0..LANES).map(|_| {
        let (deps, reminders) = (deps.clone(), reminders.clone());
        async move { claim_and_queue(&deps, &reminders, now, batch).await }
    });
    sent += try_join_all(lanes).await?.into_iter().sum::<usize>();
    if sent > 0 {
        tracing::info!(sent, "reminders dispatched");
    }
    Ok(sent)
}

/// Claims and queues batches until none is left.
async fn claim_and_queue(
    deps: &WorkerDeps,
    reminders: &Reminders,
    now: DateTime<Utc>,
    batch: u64,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let due = reminders.claim_due(now, batch).await?;
        sent += queue_pushes(deps, reminders, &due).await?;
        if (due.len() as u64) < batch {
            return Ok(sent);
        }
    }
}

/// Queues one push per device of each reminder, then marks them all queued.
#[tracing::instrument(skip_all, fields(reminders = due.len()))]
async fn queue_pushes(deps: &WorkerDeps, reminders: &Reminders, due: &[DueReminder]) -> anyhow::Result<usize> {
    if due.is_empty() {
        return Ok(0);
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
        for &subscription_id in &reminder.devices {
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
