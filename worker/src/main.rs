//! `attune-worker`: runs the job consumer and schedules alone (scaled mode).

use std::sync::Arc;

use attune_shared::{SystemClock, config::Settings, db, jobs::JobQueue, telemetry};
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
    let db = db::connect(&settings.database_url()).await?;
    let queue = JobQueue::connect(&settings).await?;
    let deps = WorkerDeps {
        db,
        clock: Arc::new(SystemClock),
    };
    attune_worker::run(deps, queue, attune_shared::shutdown::signal()).await
}
