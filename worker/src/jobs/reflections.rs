//! Weekly reflections: every few minutes, stores the reflections that fell due
//! (Sunday 18:00 in each person's zone) and announces each with one discreet
//! push per device, as the person's notification choices allow. Several workers
//! may run it at once: a reflection is stored once, and only the run that
//! stored it (or took its notice over) announces it.

use std::time::Duration;

use attune_shared::{
    domain::notification_choices::{Delivery, NotificationKind},
    jobs::{Job, UniqueJob},
    notifications::{choices, devices_by_user},
    reflections::{NewReflection, Reflections, announcement},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::WorkerDeps;

/// How often the worker looks for reflections that fell due: a notice comes at
/// most this long after 18:00 local (or after the end of quiet hours).
pub const INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Notices queued per round trip for subscriptions and per `announce_pending` update.
const ANNOUNCE_BATCH: usize = 500;

/// Stores every reflection due by `now` and announces it; first announces those
/// whose notice is due now (deferred past quiet hours, or stored by a worker
/// that stopped before announcing). Returns how many it stored.
#[tracing::instrument(skip_all)]
pub async fn run(deps: &WorkerDeps, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let reflections = &deps.reflections;
    loop {
        let taken = reflections.take_over_unannounced(now, ANNOUNCE_BATCH as u64).await?;
        if taken.is_empty() {
            break;
        }
        tracing::info!(
            taken = taken.len(),
            "announcing reflections deferred past quiet hours or left by a stopped worker"
        );
        announce(deps, reflections, &taken, now).await?;
        if taken.len() < ANNOUNCE_BATCH {
            break;
        }
    }
    let stored = reflections.make_due(now).await?;
    for batch in stored.chunks(ANNOUNCE_BATCH) {
        announce(deps, reflections, batch, now).await?;
    }
    if !stored.is_empty() {
        metrics::counter!("attune_reflections_stored_total").increment(stored.len() as u64);
        tracing::info!(stored = stored.len(), "weekly reflections stored");
    }
    Ok(stored.len())
}

/// Asks each person's notification choices about their notice at `now`:
/// queues it when they allow it now, holds it until their quiet hours end, and
/// settles it unsent when reflection notices are off or paused (the reflection
/// itself stays stored, and is never announced later).
async fn announce(
    deps: &WorkerDeps,
    reflections: &Reflections,
    batch: &[NewReflection],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let users: Vec<Uuid> = batch.iter().map(|r| r.user_id).collect();
    let stored = choices::stored_for(&deps.db, &users).await?;
    let (mut send, mut settled, mut deferred) = (Vec::new(), Vec::new(), Vec::new());
    for reflection in batch {
        // Someone no longer there gets nothing.
        let delivery = stored
            .get(&reflection.user_id)
            .map_or(Delivery::Never, |person| person.decide(reflection.user_id, NotificationKind::Reflection, now));
        match delivery {
            Delivery::Now => {
                send.push(*reflection);
                settled.push(*reflection);
            }
            Delivery::At(until) => deferred.push((*reflection, until)),
            Delivery::Never => settled.push(*reflection),
        }
    }
    queue_notices(deps, &send).await?;
    reflections.mark_announced(&settled).await?;
    reflections.defer(&deferred).await?;
    for (outcome, count) in
        [("sent", send.len()), ("deferred", deferred.len()), ("withheld", settled.len() - send.len())]
    {
        if count > 0 {
            metrics::counter!("attune_reflection_notices_total", "outcome" => outcome).increment(count as u64);
        }
    }
    Ok(())
}

/// Queues the notice of each reflection to each of its person's devices, each
/// under its own idempotency key: a worker that takes over notices another one
/// queued but was too slow to mark queues none twice.
async fn queue_notices(deps: &WorkerDeps, reflections: &[NewReflection]) -> anyhow::Result<()> {
    if reflections.is_empty() {
        return Ok(());
    }
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
