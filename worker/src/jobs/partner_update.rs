//! "Something new is waiting in Attune": the opt-in notice that the linked
//! partner shared an item (`partners::updates`). The person's choices decide
//! first (off, paused: nothing; quiet hours: the job waits until they end); then
//! the day's notice is taken and its pushes queued in one transaction, so
//! shares in a burst, or two workers at once, send one notice a day at most.

use attune_shared::{
    domain::notification_choices::{Delivery, NotificationKind},
    jobs::{Job, UniqueJob},
    notifications::{choices, devices_by_user},
    partners::updates,
};
use uuid::Uuid;

use crate::WorkerDeps;

#[tracing::instrument(skip_all, fields(%user_id))]
pub async fn run(deps: &WorkerDeps, user_id: Uuid) -> anyhow::Result<()> {
    let now = deps.clock.now();
    let stored = choices::stored_for(&deps.db, &[user_id]).await?;
    // Someone no longer there gets nothing.
    let delivery = stored
        .get(&user_id)
        .map_or(Delivery::Never, |person| person.decide(user_id, NotificationKind::PartnerUpdate, now));
    match delivery {
        Delivery::Never => {
            count("withheld");
            return Ok(());
        }
        Delivery::At(until) => {
            // A second past the end: the queue schedules in whole seconds.
            let wait = (until - now).to_std().unwrap_or_default() + std::time::Duration::from_secs(1);
            deps.queue.enqueue_after(Job::PartnerUpdate { user_id }, wait).await?;
            count("deferred");
            return Ok(());
        }
        Delivery::Now => {}
    }
    let txn = attune_shared::db::begin(&deps.db).await?;
    // Unlinked since, or told already today: nothing.
    if !deps.partners.claim_update_notice(&txn, user_id).await? {
        count("withheld");
        return Ok(());
    }
    let devices = devices_by_user(&txn, &[user_id]).await?;
    let message = updates::notice();
    let stamp = now.timestamp_millis();
    let jobs: Vec<UniqueJob> = devices
        .get(&user_id)
        .into_iter()
        .flatten()
        .map(|&subscription_id| UniqueJob {
            key: format!("partner-update:{user_id}:{stamp}:{subscription_id}"),
            job: Job::SendPush { user_id, subscription_id, message: message.clone(), attempt: 0 },
        })
        .collect();
    deps.queue.enqueue_unique(jobs).await?;
    txn.commit().await?;
    count("sent");
    Ok(())
}

fn count(outcome: &'static str) {
    metrics::counter!("attune_partner_update_notices_total", "outcome" => outcome).increment(1);
}
