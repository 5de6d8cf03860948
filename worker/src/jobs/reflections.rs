//! Weekly reflections: every few minutes, stores the reflections that fell due
//! (Sunday 18:00 in each person's zone) and announces each with one discreet
//! push per device. Several workers may run it at once: a reflection is stored
//! once, and only the run that stored it announces it.

use std::time::Duration;

use attune_shared::{
    jobs::{Job, UniqueJob},
    notifications::devices_by_user,
    reflections::{NewReflection, Reflections, announcement},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::WorkerDeps;

/// How often the worker looks for reflections that fell due: a notice comes at
/// most this long after 18:00 local.
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Notices queued per round trip for subscriptions and per `announce_pending` update.
const ANNOUNCE_BATCH: usize = 500;

/// Stores every reflection due by `now` and announces it; first announces any a
/// stopped worker stored without announcing. Returns how many it stored.
#[tracing::instrument(skip_all)]
pub async fn run(deps: &WorkerDeps, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let reflections = Reflections::new(deps.db.clone(), deps.clock.clone());
    loop {
        let taken = reflections.take_over_unannounced(now, ANNOUNCE_BATCH as u64).await?;
        if taken.is_empty() {
            break;
        }
        tracing::warn!(taken = taken.len(), "announcing reflections a stopped worker stored without announcing");
        announce(deps, &taken).await?;
        reflections.mark_announced(&taken).await?;
        if taken.len() < ANNOUNCE_BATCH {
            break;
        }
    }
    let stored = reflections.make_due(now).await?;
    for batch in stored.chunks(ANNOUNCE_BATCH) {
        announce(deps, batch).await?;
        reflections.mark_announced(batch).await?;
    }
    if !stored.is_empty() {
        metrics::counter!("attune_reflections_stored_total").increment(stored.len() as u64);
        tracing::info!(stored = stored.len(), "weekly reflections stored and announced");
    }
    Ok(stored.len())
}

/// Queues the notice of each reflection to each of its person's devices, each
/// under its own idempotency key: a worker that takes over notices another one
/// queued but was too slow to mark queues none twice.
async fn announce(deps: &WorkerDeps, reflections: &[NewReflection]) -> anyhow::Result<()> {
    let users: Vec<Uuid> = reflections.iter().map(|r| r.user_id).collect();
    let devices = devices_by_user(&deps.db, &users).await?;
    let jobs: Vec<UniqueJob> = reflections
        .iter()
        .flat_map(|reflection| {
            let message = announcement(reflection.week);
            let NewReflection { user_id, week } = *reflection;
            devices.get(&user_id).into_iter().flatten().map(move |&subscription_id| UniqueJob {
                key: format!("reflection:{user_id}:{week}:{subscription_id}"),
                job: Job::SendPush { user_id, subscription_id, message: message.clone(), attempt: 0 },
            })
        })
        .collect();
    deps.queue.enqueue_unique(jobs).await?;
    Ok(())
}
