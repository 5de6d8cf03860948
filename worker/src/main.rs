//! `attune-worker`: runs the job consumer and schedules alone (scaled mode).

use std::sync::Arc;

use attune_shared::{
    SystemClock,
    config::Settings,
    db,
    domain::reflection::ReflectionWeek,
    jobs::JobQueue,
    reflections::Reflections,
    services::{Migrate, Services},
    telemetry,
};
use attune_worker::WorkerDeps;
use clap::{Parser, Subcommand};

/// The worker's sends are many small allocations made on one core and freed on
/// another (HTTP/2 frames, TLS records, JSON); glibc's allocator serialises
/// those frees on its arena locks, jemalloc does not (`--bench native_push`:
/// APNs 30k/s with glibc's, 40k/s with jemalloc, peak RSS 13.3 and 14.4 MiB).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "attune-worker", version, about = "Attune's background worker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the job consumer and the schedules (the default).
    Run,
    /// Compute (or recompute) every enrolled person's reflection on one week, then
    /// exit. Idempotent: unchanged reflections stay as they are, and no
    /// notification is sent. For filling in weeks missed while no worker ran, or
    /// correcting them.
    Reflections {
        /// The week's Monday, YYYY-MM-DD (as in /v1/reflections/{week_start}).
        #[arg(long, value_parser = parse_week)]
        week: ReflectionWeek,
    },
}

fn parse_week(raw: &str) -> Result<ReflectionWeek, String> {
    ReflectionWeek::parse(raw)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Cli { command, settings } = Cli::parse();
    telemetry::init(&settings.rust_log, settings.log_format);
    let result = match command.unwrap_or(Command::Run) {
        Command::Run => run(settings).await,
        Command::Reflections { week } => reflections(settings, week).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("attune-worker: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `attune-worker reflections --week YYYY-MM-DD`.
async fn reflections(settings: Settings, week: ReflectionWeek) -> anyhow::Result<()> {
    // One service, no secrets and no queue: a one-off command must not generate
    // development secrets or open the queue as a side effect.
    let db = db::connect(&settings.database_url()).await?;
    let done = Reflections::new(db, Arc::new(SystemClock)).recompute_week(week).await?;
    println!(
        "reflections for the week of {week}: {} created, {} updated, {} unchanged",
        done.created, done.updated, done.unchanged
    );
    Ok(())
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    telemetry::metrics_recorder();
    let services = Services::connect(&settings, Arc::new(SystemClock), Migrate::No).await?;
    let queue = services.queue.clone();
    let deps = WorkerDeps::new(services, &settings)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let queue_for_http = queue.clone();
    let http = tokio::spawn(async move {
        if let Err(error) = serve_operations(settings.bind, queue_for_http, stopped).await {
            tracing::error!(%error, "worker operations endpoint (/healthz, /metrics) not available");
        }
    });
    let result = attune_worker::run(deps, queue, attune_shared::shutdown::signal()).await;
    let _ = stop.send(true);
    let _ = http.await;
    result
}

/// `/healthz` and `/metrics` (pushes by outcome, job latency, queue depth) on
/// `ATTUNE_BIND`, so a scaled worker can be probed and scraped.
async fn serve_operations(
    bind: std::net::SocketAddr,
    queue: JobQueue,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use axum::{Router, http::header, routing::get};
    let app = Router::new().route("/healthz", get(|| async { r#"{"status":"ok"}"# })).route(
        "/metrics",
        get(move || {
            let queue = queue.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    telemetry::render_metrics(&queue).await,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(%bind, "worker operations endpoint listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await?;
    Ok(())
}
