//! `attune-api`: serves the API (and, in embedded mode, runs the worker inside).

use std::sync::Arc;

use attune_api::{Application, BuildOptions, WorkerMode};
use attune_shared::{SystemClock, config::Settings, db, shutdown, telemetry};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "attune-api",
    version,
    about = "Attune's HTTP API",
    long_about = "Attune's HTTP API. With nothing set it runs embedded: SQLite under ./data, \
                  the worker in this process, development secrets generated once."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.settings.rust_log, cli.settings.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("attune-api: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = cli.settings;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let options = BuildOptions {
                clock: Arc::new(SystemClock),
                migrate: settings.is_embedded(),
                worker: WorkerMode::Auto,
            };
            let app = Application::build(settings, options).await?;
            app.run_until(shutdown::signal()).await
        }
        Command::Migrate => {
            let db = db::connect(&settings.database_url()).await?;
            db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
