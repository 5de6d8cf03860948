//! Attune's worker: consumes the job queue and runs the schedules. Runs inside the
//! API process in embedded mode and as `attune-worker` replicas when scaled.

pub mod jobs;

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use attune_shared::{
    config::Settings,
    jobs::{JobQueue, QueueBackend},
    push::{NativeSenders, PushClient, RetryPolicy, VapidKey, VapidSigner},
    services::Services,
};
use uuid::Uuid;

/// What every job handler may use: the services (reached through `Deref`),
/// what sending pushes needs, and the dispatcher's interval.
#[derive(Clone, Debug)]
pub struct WorkerDeps {
    pub services: Services,
    pub push: PushDeps,
    /// How often the reminder dispatcher runs (`ATTUNE_DISPATCH_INTERVAL_SECS`).
    pub dispatch_interval: Duration,
}

impl WorkerDeps {
    pub fn new(services: Services, settings: &Settings) -> anyhow::Result<Self> {
        let push = PushDeps::new(settings, services.secrets.vapid_key.clone())?;
        Ok(Self { services, push, dispatch_interval: settings.dispatch_interval() })
    }
}

impl std::ops::Deref for WorkerDeps {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

/// What sending pushes needs: Web Push always, APNs and FCM when configured.
#[derive(Clone, Debug)]
pub struct PushDeps {
    pub client: PushClient,
    pub signer: Arc<VapidSigner>,
    /// The APNs and FCM clients (each `None` when not configured).
    pub native: NativeSenders,
    /// The back-off of pushes the service asked to retry.
    pub retry: RetryPolicy,
}

impl PushDeps {
    pub fn new(settings: &Settings, vapid_key: VapidKey) -> anyhow::Result<Self> {
        Ok(Self {
            client: PushClient::from_settings(settings)?,
            signer: Arc::new(VapidSigner::new(vapid_key, &settings.vapid_subject)?),
            native: NativeSenders::from_settings(settings)?,
            retry: RetryPolicy { base: Duration::from_secs(settings.push_retry_base_secs) },
        })
    }
}

/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long in-flight jobs get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Runs the job consumer and the schedules until `shutdown` resolves, then lets
/// in-flight jobs finish (up to [`SHUTDOWN_GRACE`]).
///
/// Each process names its workers with a fresh UUID, so the queue can tell a dead
/// worker's in-flight jobs (no heartbeat) from a live one's and hand them to others.
pub async fn run(
    deps: WorkerDeps,
    queue: JobQueue,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instance = Uuid::now_v7();
    tracing::info!(%instance, queue = ?queue, "worker starting");
    let monitor = Monitor::new().shutdown_timeout(SHUTDOWN_GRACE);
    let monitor = match queue.backend().clone() {
        QueueBackend::Redis(storage) => {
            let deps = deps.clone();
            monitor.register(move |_| {
                WorkerBuilder::new(format!("attune-jobs-{instance}"))
                    .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                    .concurrency(8)
                    .data(deps.clone())
                    .build(jobs::handle)
            })
        }
        QueueBackend::Sqlite(storage) => {
            let deps = deps.clone();
            monitor.register(move |_| {
                WorkerBuilder::new(format!("attune-jobs-{instance}"))
                    // An idle apalis worker otherwise looks for new jobs only at its
                    // heartbeat; a person testing notifications should not wait that long.
                    .backend(storage.clone().poll_with_interval(POLL_INTERVAL))
                    .concurrency(4)
                    .data(deps.clone())
                    .build(jobs::handle)
            })
        }
    };
    let sweep = cron::Schedule::from_str(jobs::purge_account::SWEEP_SCHEDULE)?;
    let sweep_deps = deps.clone();
    let monitor = monitor.register(move |_| {
        WorkerBuilder::new(format!("attune-sweep-{instance}"))
            .backend(CronScheduler::new(sweep.clone()))
            .data(sweep_deps.clone())
            .build(sweep_deleted_accounts)
    });
    let tombstones = cron::Schedule::from_str(jobs::purge_tombstones::SCHEDULE)?;
    let tombstone_deps = deps.clone();
    let monitor = monitor.register(move |_| {
        WorkerBuilder::new(format!("attune-tombstones-{instance}"))
            .backend(CronScheduler::new(tombstones.clone()))
            .data(tombstone_deps.clone())
            .build(purge_old_tombstones)
    });
    let (stop_periodic, periodic_stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(every(Periodic::DispatchReminders, deps.clone(), periodic_stopped.clone()));
    let reflections = tokio::spawn(every(Periodic::Reflections, deps.clone(), periodic_stopped.clone()));
    let retention = tokio::spawn(every(Periodic::QueueRetention, deps, periodic_stopped));
    let stop_on_signal = stop_periodic.clone();
    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("worker stopping; letting in-flight jobs finish");
            let _ = stop_on_signal.send(true);
            Ok(())
        })
        .await;
    let _ = stop_periodic.send(true);
    let _ = dispatcher.await;
    let _ = reflections.await;
    let _ = retention.await;
    result?;
    tracing::info!("worker stopped");
    Ok(())
}

/// The tasks that run on a plain interval rather than a cron schedule: any
/// interval from 1 s to an hour works, and a run in progress is never cut short
/// (each of its batches commits or rolls back whole; the next run does the rest).
#[derive(Debug, Clone, Copy)]
enum Periodic {
    DispatchReminders,
    Reflections,
    /// Deletes finished jobs past `ATTUNE_QUEUE_RETENTION_SECS`.
    QueueRetention,
}

impl Periodic {
    fn interval(self, deps: &WorkerDeps) -> Duration {
        match self {
            Self::DispatchReminders => deps.dispatch_interval,
            Self::Reflections => jobs::reflections::INTERVAL,
            Self::QueueRetention => attune_shared::jobs::sweep_interval(deps.queue.retention()),
        }
    }

    async fn run(self, deps: &WorkerDeps) -> anyhow::Result<()> {
        let now = deps.clock.now();
        match self {
            Self::DispatchReminders => {
                jobs::dispatch_reminders::dispatch_due_reminders(deps, now, jobs::dispatch_reminders::BATCH).await?;
            }
            Self::Reflections => {
                jobs::reflections::run(deps, now).await?;
            }
            Self::QueueRetention => {
                deps.queue.sweep_finished(now).await?;
            }
        }
        Ok(())
    }
}

/// Runs `task` every its interval until stopped.
async fn every(task: Periodic, deps: WorkerDeps, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(task.interval(&deps));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(error) = task.run(&deps).await {
                    tracing::error!(?task, error = format!("{error:#}"), "scheduled task failed; its next run retries");
                }
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    break;
                }
            }
        }
    }
}

async fn sweep_deleted_accounts(_tick: Tick, deps: Data<WorkerDeps>) -> Result<(), BoxDynError> {
    jobs::purge_account::sweep(&deps).await?;
    Ok(())
}

async fn purge_old_tombstones(_tick: Tick, deps: Data<WorkerDeps>) -> Result<(), BoxDynError> {
    jobs::purge_tombstones::run(&deps).await?;
    Ok(())
}
