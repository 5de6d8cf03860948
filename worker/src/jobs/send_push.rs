//! Sends one push message to one device (Web Push, APNs or FCM), then acts on
//! the push service's answer, the same for every kind: gone → the subscription is deleted at once; 429/5xx → tried
//! again later, honouring `Retry-After`, a bounded number of times; anything else
//! → dropped and counted.

use attune_shared::{
    domain::notification_choices::{Delivery, NotificationKind},
    entities::push_subscription::{self, Entity as PushSubscription},
    jobs::{Job, KeyedPush},
    notifications::choices,
    push::{DeviceKind, MAX_ATTEMPTS, NativeDevice, PushKind, PushMessage, Rejection, SendOutcome, ValidSubscription},
};
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::WorkerDeps;

/// The first sends of a batch, one after the other: each push not marked sent
/// is sent as [`run`] sends it, then marked. An error ends the batch, which the
/// queue runs again later; what was sent and marked before is skipped then.
#[tracing::instrument(skip_all, fields(pushes = pushes.len()))]
pub async fn run_batch(deps: &WorkerDeps, pushes: Vec<KeyedPush>) -> anyhow::Result<()> {
    for KeyedPush { key, user_id, subscription_id, message } in pushes {
        if deps.queue.push_was_sent(&key).await? {
            continue;
        }
        run(deps, user_id, subscription_id, message, 0).await?;
        deps.queue.mark_push_sent(&key).await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(%subscription_id, attempt))]
pub async fn run(
    deps: &WorkerDeps,
    user_id: Uuid,
    subscription_id: Uuid,
    message: PushMessage,
    attempt: u32,
) -> anyhow::Result<()> {
    let Some(row) = PushSubscription::find_by_id(subscription_id).one(&deps.db).await? else {
        // Unsubscribed or purged since: nothing to do.
        return Ok(());
    };
    if attempt > 0 {
        // A retry may come an hour after the notice was allowed: ask the
        // person's choices again, as when it was first queued.
        match still_allowed(deps, user_id, &message).await? {
            Delivery::Now => {}
            Delivery::Never => {
                count("withheld");
                return Ok(());
            }
            Delivery::At(until) => {
                let delay = (until - deps.clock.now()).to_std().unwrap_or_default();
                deps.queue.enqueue_after(Job::SendPush { user_id, subscription_id, message, attempt }, delay).await?;
                count("deferred");
                return Ok(());
            }
        }
    }
    let now = deps.clock.now();
    let push = &deps.push;
    let (outcome, service) = match row.kind {
        DeviceKind::Web => {
            let subscription = match ValidSubscription::from_parts(
                &row.endpoint,
                &row.p256dh,
                &row.auth,
                row.expires_at.and_then(chrono::DateTime::from_timestamp_millis),
                push.client.policy(),
            ) {
                Ok(subscription) => subscription,
                Err(_) => {
                    tracing::warn!("stored subscription no longer passes the push policy; deleting it");
                    delete(deps, &row).await?;
                    count("failed");
                    return Ok(());
                }
            };
            if subscription.is_expired(now) {
                delete(deps, &row).await?;
                count("gone");
                return Ok(());
            }
            let outcome = push.client.send(&subscription, &message, &push.signer, now).await;
            (outcome, subscription.host().to_owned())
        }
        kind @ (DeviceKind::Apns | DeviceKind::Fcm) => {
            let Some(device) = NativeDevice::from_stored(kind, &row.endpoint, row.environment.as_deref()) else {
                tracing::warn!(kind = kind.as_str(), "stored device is unreadable; deleting it");
                delete(deps, &row).await?;
                count("failed");
                return Ok(());
            };
            let outcome = match (&push.native.apns, &push.native.fcm, kind) {
                (Some(apns), _, DeviceKind::Apns) => apns.send(&device, &message, now).await,
                (_, Some(fcm), DeviceKind::Fcm) => fcm.send(&device, &message, now).await,
                _ => SendOutcome::Rejected(Rejection::ServiceNotEnabled(kind)),
            };
            (outcome, kind.as_str().to_owned())
        }
    };
    let sends = attempt + 1;
    match outcome {
        SendOutcome::Delivered => count("delivered"),
        SendOutcome::Gone => {
            tracing::info!(service, "push service says the device is gone; deleting it");
            delete(deps, &row).await?;
            count("gone");
        }
        SendOutcome::Retry { after } if sends < MAX_ATTEMPTS => {
            let delay = push.retry.delay(sends, after);
            let job = Job::SendPush { user_id, subscription_id, message, attempt: sends };
            deps.queue.enqueue_after(job, delay).await?;
            tracing::info!(service, delay_secs = delay.as_secs(), "push to be retried");
            count("retried");
        }
        SendOutcome::Retry { .. } => {
            tracing::warn!(service, sends, "push dropped after its last attempt");
            count("failed");
        }
        SendOutcome::Rejected(Rejection::Status(status)) if status.as_u16() == 413 => {
            // Our payloads stay far below 4 KiB; a 413 is our bug, and retrying would not help.
            tracing::error!(service, "push service refused the payload as too large (a bug)");
            count("failed");
        }
        SendOutcome::Rejected(Rejection::ProviderAuth { service: kind, .. }) => {
            // Logged for the operator where it happened; every message would
            // meet the same refusal, so none is retried. Counted apart, to alert on.
            metrics::counter!("attune_push_auth_errors_total", "service" => kind.as_str()).increment(1);
            count("failed");
        }
        SendOutcome::Rejected(Rejection::ServiceNotEnabled(kind)) => {
            // The device stays: the operator may enable the service again.
            tracing::warn!(kind = kind.as_str(), "push service not configured on this worker; nothing sent");
            count("failed");
        }
        SendOutcome::Rejected(rejection) => {
            tracing::warn!(service, ?rejection, "push rejected");
            count("failed");
        }
    }
    Ok(())
}

/// What the person's notification choices say about `message` now; test
/// pushes are always allowed (the person asked for them).
async fn still_allowed(deps: &WorkerDeps, user_id: Uuid, message: &PushMessage) -> anyhow::Result<Delivery> {
    let kind = match message.payload.r#type {
        PushKind::Test => return Ok(Delivery::Now),
        PushKind::Reminder => NotificationKind::Reminder,
        PushKind::Reflection => NotificationKind::Reflection,
        // Unlinked since it was queued: nothing about the former partner.
        PushKind::PartnerUpdate if deps.partners.partner_of(&deps.db, user_id).await?.is_none() => {
            return Ok(Delivery::Never);
        }
        PushKind::PartnerUpdate => NotificationKind::PartnerUpdate,
    };
    let stored = choices::stored_for(&deps.db, &[user_id]).await?;
    let now = deps.clock.now();
    let delivery = stored.get(&user_id).map_or(Delivery::Never, |person| person.decide(user_id, kind, now));
    Ok(match (kind, delivery) {
        // A reminder is worth its own moment only, as when it is claimed.
        (NotificationKind::Reminder, Delivery::At(_)) => Delivery::Never,
        (_, delivery) => delivery,
    })
}

async fn delete(deps: &WorkerDeps, row: &push_subscription::Model) -> anyhow::Result<()> {
    PushSubscription::delete_by_id(row.id).exec(&deps.db).await?;
    Ok(())
}

fn count(outcome: &'static str) {
    metrics::counter!("attune_push_total", "outcome" => outcome).increment(1);
}
