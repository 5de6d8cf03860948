//! The reminder dispatcher: claims due reminders in batches and queues one push
//! per device. Several workers may run it at once; each reminder still goes out
//! once (see `Reminders::claim_due`).

use attune_shared::{
    entities::push_subscription::{self, Entity as PushSubscription},
    jobs::Job,
    reminders::Reminders,
};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::WorkerDeps;

/// Reminders claimed per transaction: short locks, few round trips.
pub const BATCH: u64 = 500;

/// Sends every reminder due at `now`, `batch` at a time; returns how many were sent.
#[tracing::instrument(skip_all)]
pub async fn dispatch_due_reminders(deps: &WorkerDeps, now: DateTime<Utc>, batch: u64) -> anyhow::Result<usize> {
    let reminders = Reminders::new(deps.db.clone(), deps.clock.clone());
    let mut sent = 0;
    loop {
        let due = reminders.claim_due(now, batch).await?;
        if due.is_empty() {
            break;
        }
        let users: Vec<_> = due.iter().map(|d| d.user_id).collect();
        let subscriptions =
            PushSubscription::find().filter(push_subscription::Column::UserId.is_in(users)).all(&deps.db).await?;
        for reminder in &due {
            let message = reminders.message(reminder).await;
            for subscription in subscriptions.iter().filter(|s| s.user_id == reminder.user_id) {
                deps.queue
                    .enqueue(Job::SendPush {
                        user_id: reminder.user_id,
                        subscription_id: subscription.id,
                        message: message.clone(),
                        attempt: 0,
                    })
                    .await?;
            }
        }
        sent += due.len();
        metrics::counter!("attune_reminders_sent_total").increment(due.len() as u64);
        if (due.len() as u64) < batch {
            break;
        }
    }
    if sent > 0 {
        tracing::info!(sent, "reminders dispatched");
    }
    Ok(sent)
}
