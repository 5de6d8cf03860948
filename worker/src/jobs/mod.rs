//! One job a file; this module routes a queued [`Job`] to its handler.

pub mod dispatch_reminders;
pub mod partner_update;
pub mod purge_account;
pub mod purge_tombstones;
pub mod reflections;
pub mod send_mail;
pub mod send_push;

use apalis::prelude::{BoxDynError, Data};
use attune_shared::jobs::Job;

use crate::WorkerDeps;

pub(crate) async fn handle(job: Job, deps: Data<WorkerDeps>) -> Result<(), BoxDynError> {
    run(&deps, job).await.map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "job failed; it will be retried");
        e.into()
    })
}

pub(crate) async fn run(deps: &WorkerDeps, job: Job) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let kind = job.kind();
    let result = match job {
        Job::PurgeAccount { user_id } => purge_account::run(deps, user_id).await,
        Job::SendPush { user_id, subscription_id, message, attempt } => {
            send_push::run(deps, user_id, subscription_id, message, attempt).await
        }
        Job::SendPushes { pushes } => send_push::run_batch(deps, pushes).await,
        Job::SendMail { mail, attempt } => send_mail::run(deps, mail, attempt).await,
        Job::PartnerUpdate { user_id } => partner_update::run(deps, user_id).await,
    };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("attune_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
    metrics::histogram!("attune_job_duration_seconds", "kind" => kind).record(started.elapsed().as_secs_f64());
    result
}
