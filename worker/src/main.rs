//! `attune-worker`: runs the job consumer and schedules alone (scaled mode).

use std::sync::Arc;

use attune_shared::{
    SystemClock, config::Settings, crypto::DataCipher, db, jobs::JobQueue, secrets::Secrets, sync::SyncService,
    telemetry,
};
use attune_worker::WorkerDeps;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "attune-worker", version, about = "Attune's background worker")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { settings } = Cli::parse();
    telemetry::init(&settings.rust_log, settings.log_format);
    let secrets = Secrets::resolve(&settings)?;
    let db = db::connect(&settings.database_url()).await?;
    let queue = JobQueue::connect(&settings).await?;
    let clock = Arc::new(SystemClock);
    let sync = SyncService::new(
        db.clone(),
        DataCipher::new(secrets.data_keys),
        clock.clone(),
        settings.tombstone_retention_days,
    );
    let deps = WorkerDeps { db, clock, sync };
    attune_worker::run(deps, queue, attune_shared::shutdown::signal()).await
}
