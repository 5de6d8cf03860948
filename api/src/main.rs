//! `attune-api`: serves the API (and, in embedded mode, runs the worker inside).

use std::sync::Arc;

use attune_api::{Application, BuildOptions, WorkerMode};
use attune_shared::{SystemClock, config::Settings, crypto::DataCipher, db, secrets::Secrets, shutdown, telemetry};
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
    /// Print a new VAPID key pair for ATTUNE_VAPID_PRIVATE_KEY, then exit. Generate it
    /// once: browsers bind subscriptions to the public key, so changing it later
    /// silently breaks every existing subscription.
    VapidKeys,
    /// Re-encrypt private text sealed under older keys of ATTUNE_DATA_KEYS with the
    /// newest key, then exit. Safe while the service runs.
    RotateKeys,
    /// Print the OpenAPI 3.1 document (what `/openapi.json` serves), then exit. App
    /// developers generate types and clients from it; no database is needed.
    Openapi,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `openapi` prints the document on stdout, where the logs go too.
    if !matches!(cli.command, Some(Command::Openapi)) {
        telemetry::init(&cli.settings.rust_log, cli.settings.log_format);
    }
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
        Command::VapidKeys => {
            let pair = attune_shared::push::VapidKey::generate()?;
            println!("ATTUNE_VAPID_PRIVATE_KEY={}", pair.private_key.expose());
            println!("# public key (served at /v1/push/vapid-public-key): {}", pair.public_key);
            Ok(())
        }
        Command::RotateKeys => {
            let secrets = Secrets::resolve(&settings)?;
            let db = db::connect(&settings.database_url()).await?;
            let cipher = DataCipher::new(secrets.data_keys);
            let rewritten = attune_shared::sync::rotate_keys(&db, &cipher).await?;
            tracing::info!(rewritten, "private text re-encrypted under the newest key");
            println!("re-encrypted {rewritten} value(s) under the newest key");
            Ok(())
        }
        Command::Openapi => {
            let document = attune_api::openapi::document()?;
            println!("{}", serde_json::to_string_pretty(&document)?);
            Ok(())
        }
        Command::Migrate => {
            let db = db::connect(&settings.database_url()).await?;
            db::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let help = Cli::command().render_long_help().to_string();
        for variable in [
            "DATABASE_URL",
            "REDIS_URL",
            "ATTUNE_BIND",
            "ATTUNE_DATA_DIR",
            "ATTUNE_JWT_SECRET",
            "ATTUNE_DATA_KEYS",
            "ATTUNE_VAPID_PRIVATE_KEY",
            "ATTUNE_VAPID_SUBJECT",
            "ATTUNE_PUSH_ALLOWED_HOSTS",
            "ATTUNE_PUSH_ALLOW_HTTP",
            "ATTUNE_DISPATCH_INTERVAL_SECS",
            "ATTUNE_CORS_ORIGINS",
            "ATTUNE_MAX_BODY_BYTES",
            "ATTUNE_QUEUE_NAMESPACE",
            "ATTUNE_TOMBSTONE_RETENTION_DAYS",
            "ATTUNE_PUSH_RETRY_BASE_SECS",
            "RUST_LOG",
            "ATTUNE_LOG_FORMAT",
        ] {
            assert!(help.contains(&format!("[env: {variable}")), "--help does not mention {variable}");
        }
        assert!(
            help.contains("migrate")
                && help.contains("rotate-keys")
                && help.contains("vapid-keys")
                && help.contains("openapi"),
            "{help}"
        );
    }

    #[test]
    fn help_never_shows_the_values_of_secret_variables() {
        let command = Cli::command();
        for secret in ["DATABASE_URL", "REDIS_URL", "ATTUNE_JWT_SECRET", "ATTUNE_DATA_KEYS", "ATTUNE_VAPID_PRIVATE_KEY"]
        {
            let arg = command
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == secret))
                .unwrap_or_else(|| panic!("no argument reads {secret}"));
            assert!(arg.is_hide_env_values_set(), "{secret}'s value would be printed by --help");
        }
    }
}
