//! The job queue behind one small interface: apalis-redis when `REDIS_URL` is set,
//! apalis-sqlite otherwise. The API enqueues; the worker (in-process when embedded,
//! `attune-worker` when scaled) consumes.

use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{config::Settings, push::PushMessage};

/// Every kind of background work. One queue carries them all; each job names the
/// user it concerns, so a job whose user has been purged ends without effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Delete everything a deleted account had.
    PurgeAccount { user_id: Uuid },
    /// Send one message to one subscription; `attempt` counts the sends so far.
    SendPush { user_id: Uuid, subscription_id: Uuid, message: PushMessage, attempt: u32 },
}

impl Job {
    /// A short name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PurgeAccount { .. } => "purge_account",
            Self::SendPush { .. } => "send_push",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue unavailable: {0}")]
    Unavailable(String),
}

/// How often a worker proves it is alive; a worker silent for
/// `HEARTBEAT * MISSED_HEARTBEATS` is presumed dead and its in-flight jobs are
/// re-queued for the others.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
pub const MISSED_HEARTBEATS: usize = 6;

/// The apalis storage behind the queue.
#[derive(Clone)]
pub enum QueueBackend {
    Redis(RedisStorage<Job>),
    Sqlite(SqliteStorage<Job>),
}

#[derive(Clone)]
pub struct JobQueue {
    backend: QueueBackend,
    /// The queue's name (`<namespace>:jobs`), apalis's key prefix and job type.
    name: String,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.backend {
            QueueBackend::Redis(_) => "redis",
            QueueBackend::Sqlite(_) => "sqlite",
        };
        write!(f, "JobQueue({kind}, {})", self.name)
    }
}

impl JobQueue {
    pub fn backend(&self) -> &QueueBackend {
        &self.backend
    }

    /// Connects to the queue the settings name and prepares it.
    pub async fn connect(settings: &Settings) -> Result<Self, QueueError> {
        let queue_name = format!("{}:jobs", settings.queue_namespace);
        let unavailable = |e: &dyn std::fmt::Display| QueueError::Unavailable(e.to_string());
        match &settings.redis_url {
            Some(url) => {
                let conn = apalis_redis::connect(url.expose()).await.map_err(|e| unavailable(&e))?;
                let config = apalis_redis::Config::default()
                    .queue(&queue_name)
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                Ok(Self { backend: QueueBackend::Redis(RedisStorage::new(conn).with_config(config)), name: queue_name })
            }
            None => {
                std::fs::create_dir_all(&settings.data_dir).map_err(|e| unavailable(&e))?;
                let options: apalis_sqlite::SqliteConnectOptions =
                    settings.queue_database_url().parse().map_err(|e: apalis_sqlite::SqlxError| unavailable(&e))?;
                let options = options.busy_timeout(Duration::from_secs(5)).create_if_missing(true);
                let pool = apalis_sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|e| unavailable(&e))?;
                SqliteStorage::setup(&pool).await.map_err(|e| unavailable(&e))?;
                let config = apalis_sqlite::Config::default()
                    .queue(&queue_name)
                    .heartbeat_interval(HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS);
                Ok(Self {
                    backend: QueueBackend::Sqlite(SqliteStorage::new(&pool).with_config(config)),
                    name: queue_name,
                })
            }
        }
    }

    pub async fn enqueue(&self, job: Job) -> Result<(), QueueError> {
        let result = match self.backend.clone() {
            QueueBackend::Redis(mut storage) => storage.push(job).await.map_err(|e| e.to_string()),
            QueueBackend::Sqlite(mut storage) => storage.push(job).await.map_err(|e| e.to_string()),
        };
        result.map_err(QueueError::Unavailable)
    }

    /// Enqueues `job` to run no sooner than `delay` from now (queue time).
    pub async fn enqueue_after(&self, job: Job, delay: Duration) -> Result<(), QueueError> {
        let task = apalis::prelude::TaskBuilder::new(job).run_after(delay).build();
        let result = match self.backend.clone() {
            QueueBackend::Redis(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
            QueueBackend::Sqlite(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
        };
        result.map_err(QueueError::Unavailable)
    }

    /// Jobs waiting to run, for the queue-depth metric.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        let unavailable = |e: &dyn std::fmt::Display| QueueError::Unavailable(e.to_string());
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                let key = storage.get_config().active_jobs_list();
                redis::cmd("LLEN")
                    .arg(key)
                    .query_async::<u64>(storage.get_connection())
                    .await
                    .map_err(|e| unavailable(&e))
            }
            QueueBackend::Sqlite(storage) => {
                // apalis-sqlite and sea-orm share sqlx 0.9, so its query API reads the queue's pool.
                sea_orm::sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status = 'Pending'",
                )
                .bind(self.name.clone())
                .fetch_one(storage.pool())
                .await
                .map(|n| n.max(0) as u64)
                .map_err(|e| unavailable(&e))
            }
        }
    }

    /// Checks that the queue answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), QueueError> {
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                let conn = storage.get_connection();
                redis::cmd("PING")
                    .query_async::<String>(conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| QueueError::Unavailable(e.to_string()))
            }
            QueueBackend::Sqlite(storage) => ping_sqlite(storage.pool()).await,
        }
    }
}

async fn ping_sqlite(pool: &SqlitePool) -> Result<(), QueueError> {
    apalis_sqlite::SqlitePool::acquire(pool).await.map(|_| ()).map_err(|e| QueueError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_serialise_with_a_kind_tag() {
        let id = Uuid::nil();
        let json = serde_json::to_value(Job::PurgeAccount { user_id: id }).unwrap();
        assert_eq!(json["kind"], "purge_account");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), Job::PurgeAccount { user_id: id });
    }
}
