//! Settings: environment variables (12-factor), each also a command-line flag.
//! `attune-api --help` and `attune-worker --help` list them all.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

use crate::{domain::client_address::TrustedProxies, secret::Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything an Attune process can be told. Secrets are [`Secret`]s: their
/// `Debug` prints `[redacted]`.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database URL: `postgres://…` for a scaled install; unset means SQLite at
    /// `<data dir>/attune.db` (embedded mode).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<Secret>,

    /// Redis URL for the job queue (`redis://…`); unset means a SQLite queue at
    /// `<data dir>/queue.db` with the worker inside the API process.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, global = true)]
    pub redis_url: Option<Secret>,

    /// Address the HTTP API listens on.
    #[arg(long, env = "ATTUNE_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,

    /// Directory for the embedded SQLite files and generated development secrets.
    #[arg(long, env = "ATTUNE_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Secret for signing access tokens (at least 32 characters). Generated into the
    /// data directory in embedded mode; required when scaled.
    #[arg(long, env = "ATTUNE_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<Secret>,

    /// Key ring for encrypting private text: comma-separated `id:base64key` entries
    /// (32-byte keys); the last one encrypts new values. Generated in embedded mode;
    /// required when scaled.
    #[arg(long, env = "ATTUNE_DATA_KEYS", hide_env_values = true, global = true)]
    pub data_keys: Option<Secret>,

    /// VAPID private key for Web Push (base64url P-256 scalar). Generated in embedded
    /// mode; required when scaled. Never change it: subscriptions are bound to it.
    #[arg(long, env = "ATTUNE_VAPID_PRIVATE_KEY", hide_env_values = true, global = true)]
    pub vapid_private_key: Option<Secret>,

    /// Contact for push services, `mailto:` or `https:` URL.
    #[arg(long, env = "ATTUNE_VAPID_SUBJECT", default_value = "mailto:operator@example.invalid", global = true)]
    pub vapid_subject: String,

    /// Push-service hosts the worker may contact (comma-separated; a leading `*.`
    /// matches subdomains). Defaults to the known browser push services, which
    /// include APNs (`api.push.apple.com`, `api.sandbox.push.apple.com`) and FCM,
    /// and Google's OAuth token host for FCM.
    #[arg(
        long,
        env = "ATTUNE_PUSH_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com,oauth2.googleapis.com",
        global = true
    )]
    pub push_allowed_hosts: Vec<String>,

    /// Allow plain-http push endpoints (tests and local development only).
    #[arg(long, env = "ATTUNE_PUSH_ALLOW_HTTP", default_value_t = false, global = true)]
    pub push_allow_http: bool,

    /// APNs: the token-signing key, the `.p8` file's PEM text as downloaded
    /// from Apple (a secret). APNs is enabled when this, the key id, the team id
    /// and the topic are all set; some but not all stops the start.
    #[arg(long, env = "ATTUNE_APNS_KEY", hide_env_values = true, global = true)]
    pub apns_key: Option<Secret>,

    /// APNs: the 10-character id of the `.p8` key.
    #[arg(long, env = "ATTUNE_APNS_KEY_ID", global = true)]
    pub apns_key_id: Option<String>,

    /// APNs: the 10-character Team ID of the Apple developer account.
    #[arg(long, env = "ATTUNE_APNS_TEAM_ID", global = true)]
    pub apns_team_id: Option<String>,

    /// APNs: the app's bundle id (sent as `apns-topic`).
    #[arg(long, env = "ATTUNE_APNS_TOPIC", global = true)]
    pub apns_topic: Option<String>,

    /// APNs: a base URL that replaces Apple's (`https://api.push.apple.com` and
    /// `https://api.sandbox.push.apple.com`) for both environments, for a
    /// private relay or tests. Its host must be on the push allow list.
    #[arg(long, env = "ATTUNE_APNS_ENDPOINT", global = true)]
    pub apns_endpoint: Option<String>,

    /// FCM: the service account's JSON key as downloaded from the Firebase
    /// console (a secret). FCM is enabled when it is set.
    #[arg(long, env = "ATTUNE_FCM_SERVICE_ACCOUNT", hide_env_values = true, global = true)]
    pub fcm_service_account: Option<Secret>,

    /// FCM: a base URL that replaces `https://fcm.googleapis.com`, for a private
    /// relay or tests (the token endpoint is the service account's `token_uri`).
    /// Its host must be on the push allow list.
    #[arg(long, env = "ATTUNE_FCM_ENDPOINT", global = true)]
    pub fcm_endpoint: Option<String>,

    /// Extra trusted TLS roots (DER) for the push clients: a local HTTPS fake
    /// in tests. Not a setting; exists only with the `testing` feature.
    #[cfg(feature = "testing")]
    #[arg(skip)]
    pub push_test_roots: Vec<Vec<u8>>,

    /// First retry delay, in seconds, for a push a push service asked to retry
    /// (429, 5xx); it doubles per attempt, up to an hour, and is never shorter
    /// than the service's `Retry-After`.
    #[arg(long, env = "ATTUNE_PUSH_RETRY_BASE_SECS", default_value_t = 30, global = true)]
    pub push_retry_base_secs: u64,

    /// How often the reminder dispatcher looks for due reminders, in seconds.
    #[arg(
        long,
        env = "ATTUNE_DISPATCH_INTERVAL_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub dispatch_interval_secs: u64,

    /// Origins allowed to call the API from a browser (comma-separated). Empty: no
    /// cross-origin access (native apps need none).
    #[arg(long, env = "ATTUNE_CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,

    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed
    /// (comma-separated CIDRs or addresses, e.g. the ingress controller's pod
    /// network). Empty: the TCP peer is the client, and forwarding headers are
    /// ignored. The sign-in throttle counts per client address, so behind a proxy
    /// that is not listed every client shares the proxy's address.
    #[arg(long, env = "ATTUNE_TRUSTED_PROXIES", default_value = "", hide_default_value = true, global = true)]
    pub trusted_proxies: TrustedProxies,

    /// SMTP server for account mail (password reset, email verification, notices):
    /// `smtps://user:pass@host` (TLS, port 465), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25` (plain, a local relay only). Carries
    /// credentials: a secret. Unset, embedded installs write each mail to
    /// `<data dir>/outbox/`, and scaled installs send none (the routes that need
    /// mail answer 409).
    #[arg(long, env = "ATTUNE_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<Secret>,

    /// The `From` of account mail, e.g. `Accounts <no-reply@example.org>`. Required
    /// with `ATTUNE_SMTP_URL`; keep it discreet (it shows in inboxes and on lock
    /// screens).
    #[arg(long, env = "ATTUNE_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ATTUNE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// How long deletions are remembered for sync, in days. A client that last
    /// synced longer ago gets a full replacement sync instead of missing deletes.
    #[arg(
        long,
        env = "ATTUNE_TOMBSTONE_RETENTION_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub tombstone_retention_days: u32,

    /// Prefix of every job-queue key or queue name, so several installs (or
    /// tests) can share one Redis.
    #[arg(long, env = "ATTUNE_QUEUE_NAMESPACE", default_value = "attune", global = true)]
    pub queue_namespace: String,

    /// How long finished and given-up jobs stay in the queue, in seconds, before
    /// a sweep deletes them (for inspecting recent work). The sweep runs every
    /// `min(retention, 600)` seconds. Idempotency keys keep their own 24-hour
    /// lifetime (on SQLite a keyed job's row is its key, so it stays at least
    /// that long).
    #[arg(
        long,
        env = "ATTUNE_QUEUE_RETENTION_SECS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..=31_536_000),
        global = true
    )]
    pub queue_retention_secs: u64,

    /// How often each worker tells the queue it is alive, in seconds.
    #[arg(
        long,
        env = "ATTUNE_WORKER_HEARTBEAT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub worker_heartbeat_secs: u64,

    /// How long a worker may go without a heartbeat before it is presumed dead
    /// and the jobs it held are handed to the other workers, in seconds. At least
    /// twice the heartbeat, so a live but busy worker never loses its jobs.
    #[arg(
        long,
        env = "ATTUNE_WORKER_ORPHAN_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(2..=86_400),
        global = true
    )]
    pub worker_orphan_timeout_secs: u64,

    /// Log filter, e.g. `info` or `attune_api=debug,info`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub rust_log: String,

    /// Log line format.
    #[arg(long, env = "ATTUNE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// Parses settings from command-line style arguments alone (the environment still
/// fills what the arguments leave out, as for the binaries).
#[derive(Debug, clap::Parser)]
struct SettingsOnly {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// Settings from arguments such as `["--data-dir", "/tmp/x"]`; for tools and tests.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("attune")).chain(args.into_iter().map(Into::into));
        SettingsOnly::try_parse_from(argv).map(|s| s.settings)
    }

    /// Embedded mode: SQLite database and SQLite queue, worker in the API process.
    pub fn is_embedded(&self) -> bool {
        self.redis_url.is_none() && self.database_url().starts_with("sqlite:")
    }

    /// The database URL in use (the embedded SQLite file when none is set).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("attune.db").display()),
        }
    }

    /// The SQLite queue file used when no Redis is configured.
    pub fn queue_database_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.data_dir.join("queue.db").display())
    }

    pub fn dispatch_interval(&self) -> Duration {
        Duration::from_secs(self.dispatch_interval_secs)
    }

    pub fn queue_retention(&self) -> Duration {
        Duration::from_secs(self.queue_retention_secs)
    }

    /// The worker heartbeat and the number of missed heartbeats after which a
    /// worker's jobs are handed to others (apalis's terms for the orphan timeout,
    /// rounded up to whole heartbeats).
    pub fn worker_liveness(&self) -> Result<(Duration, usize), String> {
        let heartbeat = self.worker_heartbeat_secs.max(1);
        if self.worker_orphan_timeout_secs < 2 * heartbeat {
            return Err(format!(
                "ATTUNE_WORKER_ORPHAN_TIMEOUT_SECS ({}) must be at least twice ATTUNE_WORKER_HEARTBEAT_SECS ({heartbeat}): \
                 a live worker between two heartbeats would otherwise lose its jobs to others",
                self.worker_orphan_timeout_secs
            ));
        }
        let missed = self.worker_orphan_timeout_secs.div_ceil(heartbeat);
        Ok((Duration::from_secs(heartbeat), usize::try_from(missed).unwrap_or(usize::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_liveness_is_a_ten_second_heartbeat_and_a_minute_of_silence() {
        let settings = Settings::from_args(["--data-dir", "/tmp/x"]).unwrap();
        assert_eq!(settings.worker_liveness().unwrap(), (Duration::from_secs(10), 6));
        assert_eq!(settings.queue_retention(), Duration::from_secs(86_400));
    }

    #[test]
    fn an_orphan_timeout_shorter_than_two_heartbeats_is_refused() {
        let settings =
            Settings::from_args(["--worker-heartbeat-secs", "10", "--worker-orphan-timeout-secs", "15"]).unwrap();
        let error = settings.worker_liveness().unwrap_err();
        assert!(error.contains("ATTUNE_WORKER_ORPHAN_TIMEOUT_SECS"), "{error}");
        let rounded =
            Settings::from_args(["--worker-heartbeat-secs", "4", "--worker-orphan-timeout-secs", "9"]).unwrap();
        assert_eq!(rounded.worker_liveness().unwrap(), (Duration::from_secs(4), 3), "rounded up to whole heartbeats");
    }

    #[test]
    fn a_zero_retention_is_refused() {
        assert!(Settings::from_args(["--queue-retention-secs", "0"]).is_err());
    }
}
