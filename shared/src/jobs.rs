//! The job queue behind one small interface: apalis-redis when `REDIS_URL` is set,
//! apalis-sqlite otherwise. The API enqueues; the worker (in-process when embedded,
//! `attune-worker` when scaled) consumes.

use std::{
    sync::LazyLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{accounts::mail::MailJob, config::Settings, push::PushMessage};

mod retention;

pub use retention::sweep_interval;

/// Every kind of background work. One queue carries them all; each job names the
/// user it concerns, so a job whose user has been purged ends without effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Delete everything a deleted account had.
    PurgeAccount { user_id: Uuid },
    /// Send one message to one subscription; `attempt` counts the sends so far.
    SendPush { user_id: Uuid, subscription_id: Uuid, message: PushMessage, attempt: u32 },
    /// First sends of many pushes, one after the other: how the Redis queue
    /// carries a bulk of [`Job::SendPush`] queued under keys (see
    /// [`JobQueue::enqueue_unique`]). A push whose key is marked sent is skipped, so
    /// a batch run again sends only what it had not.
    SendPushes { pushes: Vec<KeyedPush> },
    /// Render and send one account mail; `attempt` counts the sends so far.
    SendMail { mail: MailJob, attempt: u32 },
    /// Consider telling `user_id` that their partner shared something
    /// (`partners::updates`).
    PartnerUpdate { user_id: Uuid },
}

impl Job {
    /// A short name, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PurgeAccount { .. } => "purge_account",
            Self::SendPush { .. } => "send_push",
            Self::SendPushes { .. } => "send_pushes",
            Self::SendMail { .. } => "send_mail",
            Self::PartnerUpdate { .. } => "partner_update",
        }
    }
}

/// A first send of [`Job::SendPushes`], with the key it was queued under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedPush {
    pub key: String,
    pub user_id: Uuid,
    pub subscription_id: Uuid,
    pub message: PushMessage,
}

/// A job with the key that makes it unique on the queue (see [`JobQueue::enqueue_unique`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueJob {
    pub key: String,
    pub job: Job,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("job queue settings: {0}")]
    Misconfigured(String),
}

impl QueueError {
    /// The queue could not be reached or refused the command: `cause` kept as the source.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(cause.into())
    }
}

/// Jobs not yet finished, by state (the `attune_queue_depth{state}` gauge).
/// A job is finished once its worker recorded the outcome (done, or given up);
/// until then it is in exactly one of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Due and waiting for a worker.
    pub pending: u64,
    /// Taken by a worker (fetched or running), outcome not yet recorded;
    /// includes jobs held by a worker that died, until they are handed on.
    pub running: u64,
    /// Waiting for a later time: a retry, or a job enqueued to run later.
    pub scheduled: u64,
}

impl QueueDepth {
    /// True when every job ever enqueued has finished.
    pub fn is_finished(&self) -> bool {
        self.pending == 0 && self.running == 0 && self.scheduled == 0
    }
}

/// How long Redis remembers an idempotency key: far longer than anything that
/// enqueues a keyed job again (a reminder claim rolled back after queuing is
/// claimed again by the next dispatch, a minute later).
/// SQLite keeps a job's key as long as the job's row.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a Redis command may take to answer before it counts as failed.
///
/// Why not redis-rs's default of 500 ms: every command of a process shares one
/// multiplexed connection, and Redis runs scripts one at a time, so a command
/// waits for all those queued before it. A reminder dispatch keeps up to 16 bulk
/// pushes in flight (four lanes, [`ENQUEUE_CONCURRENCY`] each) of some 16 ms of
/// Redis time each; on a busy machine the last of them passed 500 ms and failed
/// the dispatch (measured with the reminders benchmark while other builds ran).
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Jobs per bulk push (one Redis script call or one SQLite transaction): large
/// enough that round trips do not count, small enough not to stall Redis for
/// other clients while one script runs.
const ENQUEUE_CHUNK: usize = 1_000;
/// Bulk pushes in flight at once.
const ENQUEUE_CONCURRENCY: usize = 4;

/// Moves up to `ARGV[2]` jobs due by `ARGV[1]` (epoch seconds, apalis's queue
/// time) from apalis-redis's scheduled set to its active list, and signals them
/// as a worker's fetch would; returns how many moved.
const PROMOTE_DUE_LUA: &str = r#"
local ids = redis.call("zrangebyscore", KEYS[1], 0, ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #ids > 0 then
    redis.call("rpush", KEYS[2], unpack(ids))
    redis.call("zrem", KEYS[1], unpack(ids))
    redis.call("del", KEYS[3])
    redis.call("lpush", KEYS[3], 1)
end
return #ids
"#;
static PROMOTE_DUE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(PROMOTE_DUE_LUA));

/// Counts the jobs held by every registered worker (apalis-redis keeps one
/// in-flight set per worker, `<inflight prefix>:<worker>`). Bounded by the
/// number of workers, not of jobs: SCARD is O(1).
const RUNNING_JOBS_LUA: &str = r#"
local running = 0
for _, worker in ipairs(redis.call("zrange", KEYS[1], 0, -1)) do
    running = running + redis.call("scard", KEYS[2] .. ":" .. worker)
end
return running
"#;
static RUNNING_JOBS: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RUNNING_JOBS_LUA));
/// Jobs promoted per script call: far below the ~8,000 values a Lua `unpack` takes.
const PROMOTE_CHUNK: usize = 1_000;

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
    /// How long finished jobs are kept (`ATTUNE_QUEUE_RETENTION_SECS`).
    retention: Duration,
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

    /// The Redis connection of a queue on Redis, shared with whatever else the
    /// process publishes there (the changes announced to the other replicas).
    pub fn redis_connection(&self) -> Option<redis::aio::ConnectionManager> {
        match &self.backend {
            QueueBackend::Redis(storage) => Some(storage.clone().get_connection().clone()),
            QueueBackend::Sqlite(_) => None,
        }
    }

    /// Connects to the queue the settings name and prepares it.
    pub async fn connect(settings: &Settings) -> Result<Self, QueueError> {
        let queue_name = format!("{}:jobs", settings.queue_namespace);
        let (heartbeat, missed_heartbeats) = settings.worker_liveness().map_err(QueueError::Misconfigured)?;
        let retention = settings.queue_retention();
        match &settings.redis_url {
            Some(url) => {
                let conn = redis::Client::open(url.expose())
                    .map_err(QueueError::unavailable)?
                    .get_connection_manager_with_config(
                        redis::aio::ConnectionManagerConfig::new().set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT)),
                    )
                    .await
                    .map_err(QueueError::unavailable)?;
                let config = apalis_redis::Config::default()
                    .queue(&queue_name)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed_heartbeats)
                    .idempotency_ttl(Some(IDEMPOTENCY_TTL));
                Ok(Self {
                    backend: QueueBackend::Redis(RedisStorage::new(conn).with_config(config)),
                    name: queue_name,
                    retention,
                })
            }
            None => {
                std::fs::create_dir_all(&settings.data_dir).map_err(QueueError::unavailable)?;
                let options: apalis_sqlite::SqliteConnectOptions = settings
                    .queue_database_url()
                    .parse()
                    .map_err(|e: apalis_sqlite::SqlxError| QueueError::unavailable(e))?;
                let options = options.busy_timeout(Duration::from_secs(5)).create_if_missing(true);
                let pool = apalis_sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(QueueError::unavailable)?;
                setup_sqlite(&pool).await.map_err(QueueError::unavailable)?;
                let config = apalis_sqlite::Config::default()
                    .queue(&queue_name)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed_heartbeats);
                Ok(Self {
                    backend: QueueBackend::Sqlite(SqliteStorage::new(&pool).with_config(config)),
                    name: queue_name,
                    retention,
                })
            }
        }
    }

    pub async fn enqueue(&self, job: Job) -> Result<(), QueueError> {
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => storage.push(job).await.map_err(QueueError::unavailable),
            QueueBackend::Sqlite(mut storage) => storage.push(job).await.map_err(QueueError::unavailable),
        }
    }

    /// Enqueues `jobs` in bulk, each under its key: a job whose key was enqueued
    /// before (within [`IDEMPOTENCY_TTL`] on Redis) is dropped, so enqueuing the
    /// same work again, say after a crash, cannot double it.
    ///
    /// On Redis, first sends of pushes go [`PUSH_BATCH`] to a [`Job::SendPushes`]
    /// under a key made of theirs, and each push is marked sent under its own key
    /// when it was ([`JobQueue::mark_push_sent`]): a batch queued again with the
    /// same pushes is dropped, and one with others in it (a claim made again
    /// after a rollback need not take the same rows) sends only the unmarked.
    /// Why: apalis-redis's bulk push costs some 15 µs of Redis CPU a job, most of
    /// a reminder dispatch's Redis time (README, Performance, "Reminder
    /// dispatch"). Two batches with the same push that run at the same moment
    /// could both send it; a claim made again after a rollback comes a dispatch
    /// interval later, when the first batch has long run.
    ///
    /// Chunks of a thousand jobs go out a few at a time; on an error some chunks
    /// may be queued and others not, and enqueuing all again is safe.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn enqueue_unique(&self, jobs: Vec<UniqueJob>) -> Result<(), QueueError> {
        let jobs = match self.backend {
            QueueBackend::Redis(_) => batch_pushes(jobs),
            _ => jobs,
        };
        let mut chunks = Vec::with_capacity(jobs.len().div_ceil(ENQUEUE_CHUNK));
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            chunks.push(jobs.by_ref().take(ENQUEUE_CHUNK).collect::<Vec<_>>());
        }
        stream::iter(chunks)
            .map(|chunk| {
                // An owned future: a borrowing closure would make callers' futures not `Send`.
                let queue = self.clone();
                async move { queue.push_chunk(chunk).await }
            })
            .buffer_unordered(ENQUEUE_CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    async fn push_chunk(&self, chunk: Vec<UniqueJob>) -> Result<(), QueueError> {
        let tasks: Vec<_> = chunk
            .into_iter()
            .map(|UniqueJob { key, job }| TaskBuilder::new(job).idempotency_key(key).build())
            .collect();
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                storage.push_all(stream::iter(tasks)).await.map_err(QueueError::unavailable)?;
                promote_due(&mut storage).await.map_err(QueueError::unavailable)
            }
            QueueBackend::Sqlite(mut storage) => {
                storage.push_all(stream::iter(tasks)).await.map_err(QueueError::unavailable)
            }
        }
    }

    /// Enqueues `job` to run no sooner than `delay` from now (queue time).
    pub async fn enqueue_after(&self, job: Job, delay: Duration) -> Result<(), QueueError> {
        let task = TaskBuilder::new(job).run_after(delay).build();
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => storage.push_task(task).await.map_err(QueueError::unavailable),
            QueueBackend::Sqlite(mut storage) => storage.push_task(task).await.map_err(QueueError::unavailable),
        }
    }

    /// How long finished jobs are kept before [`JobQueue::sweep_finished`] deletes them.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Jobs not yet finished, by state, for the queue-depth metric and the
    /// tests' "drained". Due or later is judged by queue time (the system clock
    /// apalis schedules by), not the app's clock.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let now = queue_time();
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                let config = storage.get_config().clone();
                let (pending, due, scheduled): (u64, u64, u64) = redis::pipe()
                    .cmd("LLEN")
                    .arg(config.active_jobs_list())
                    .cmd("ZCOUNT")
                    .arg(config.scheduled_jobs_set())
                    .arg("-inf")
                    .arg(now)
                    .cmd("ZCOUNT")
                    .arg(config.scheduled_jobs_set())
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .query_async(storage.get_connection())
                    .await
                    .map_err(QueueError::unavailable)?;
                let running: u64 = RUNNING_JOBS
                    .key(config.workers_set())
                    .key(config.inflight_jobs_set())
                    .invoke_async(storage.get_connection())
                    .await
                    .map_err(QueueError::unavailable)?;
                Ok(QueueDepth { pending: pending + due, running, scheduled })
            }
            QueueBackend::Sqlite(storage) => {
                // apalis-sqlite and sea-orm share sqlx 0.9, so its query API reads the queue's pool.
                // 'Queued' is fetched by a worker, 'Running' locked by it; 'Failed' below
                // its attempts is waiting for its retry.
                let (pending, running, scheduled) = sea_orm::sqlx::query_as::<_, (i64, i64, i64)>(
                    "SELECT \
                       COALESCE(SUM(status = 'Pending' AND run_at <= ?2), 0), \
                       COALESCE(SUM(status IN ('Queued', 'Running')), 0), \
                       COALESCE(SUM((status = 'Pending' AND run_at > ?2) \
                                    OR (status = 'Failed' AND attempts < max_attempts)), 0) \
                     FROM Jobs WHERE job_type = ?1 AND status IN ('Pending', 'Queued', 'Running', 'Failed')",
                )
                .bind(self.name.clone())
                .bind(i64::try_from(now).unwrap_or(i64::MAX))
                .fetch_one(storage.pool())
                .await
                .map_err(QueueError::unavailable)?;
                let count = |n: i64| n.max(0) as u64;
                Ok(QueueDepth { pending: count(pending), running: count(running), scheduled: count(scheduled) })
            }
        }
    }

    /// Whether the push of a [`Job::SendPushes`] queued under `key` was sent
    /// (marked by [`JobQueue::mark_push_sent`] within [`IDEMPOTENCY_TTL`]).
    /// SQLite carries every push as a job of its own, so nothing there is marked.
    pub async fn push_was_sent(&self, key: &str) -> Result<bool, QueueError> {
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => redis::cmd("EXISTS")
                .arg(self.sent_key(key))
                .query_async::<bool>(storage.get_connection())
                .await
                .map_err(QueueError::unavailable),
            QueueBackend::Sqlite(_) => Ok(false),
        }
    }

    /// Marks the push of a [`Job::SendPushes`] queued under `key` as sent.
    pub async fn mark_push_sent(&self, key: &str) -> Result<(), QueueError> {
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => redis::cmd("SET")
                .arg(self.sent_key(key))
                .arg(1)
                .arg("EX")
                .arg(IDEMPOTENCY_TTL.as_secs())
                .query_async::<()>(storage.get_connection())
                .await
                .map_err(QueueError::unavailable),
            QueueBackend::Sqlite(_) => Ok(()),
        }
    }

    fn sent_key(&self, key: &str) -> String {
        format!("{}:sent:{key}", self.name)
    }

    /// Checks that the queue answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), QueueError> {
        match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                let conn = storage.get_connection();
                redis::cmd("PING").query_async::<String>(conn).await.map(|_| ()).map_err(QueueError::unavailable)
            }
            QueueBackend::Sqlite(storage) => ping_sqlite(storage.pool()).await,
        }
    }
}

/// Moves the jobs whose time has come from the scheduled set to the active list,
/// [`PROMOTE_CHUNK`] at a time.
///
/// Why: apalis-redis 1.0 files every pushed job in its scheduled set, and a
/// worker's fetch moves all the due ones with one Lua `unpack`, which fails beyond
/// about 8,000 values (Lua's C-stack limit). A burst of that many jobs between two
/// polls would make every fetch fail from then on, stopping all workers for good;
/// promoting right after each bulk push keeps the due part of that set small.
async fn promote_due(storage: &mut RedisStorage<Job>) -> Result<(), redis::RedisError> {
    let config = storage.get_config().clone();
    let now = queue_time();
    loop {
        let moved: usize = PROMOTE_DUE
            .key(config.scheduled_jobs_set())
            .key(config.active_jobs_list())
            .key(config.signal_list())
            .arg(now)
            .arg(PROMOTE_CHUNK)
            .invoke_async(storage.get_connection())
            .await?;
        if moved < PROMOTE_CHUNK {
            return Ok(());
        }
    }
}

/// Pushes per [`Job::SendPushes`]: a few hundred jobs for a dispatch of 100,000
/// instead of 100,000, each a moment's work for one worker slot.
pub const PUSH_BATCH: usize = 250;

/// `jobs` with their first sends of pushes gathered [`PUSH_BATCH`] to a job,
/// each batch under a key made of its pushes' keys.
fn batch_pushes(jobs: Vec<UniqueJob>) -> Vec<UniqueJob> {
    let mut others = Vec::new();
    let mut pushes = Vec::new();
    for unique in jobs {
        match unique.job {
            Job::SendPush { user_id, subscription_id, message, attempt: 0 } => {
                pushes.push(KeyedPush { key: unique.key, user_id, subscription_id, message })
            }
            job => others.push(UniqueJob { key: unique.key, job }),
        }
    }
    let mut pushes = pushes.into_iter().peekable();
    while pushes.peek().is_some() {
        let batch: Vec<KeyedPush> = pushes.by_ref().take(PUSH_BATCH).collect();
        let key = push_batch_key(batch.iter().map(|push| push.key.as_str()));
        others.push(UniqueJob { key, job: Job::SendPushes { pushes: batch } });
    }
    others
}

/// The key a [`Job::SendPushes`] of pushes queued under `keys` goes under on Redis.
pub fn push_batch_key<'a>(keys: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for key in keys {
        digest.update(key.as_bytes());
        digest.update([0]);
    }
    format!("pushes:{}", hex::encode(&digest.finalize()[..16]))
}

/// Now in apalis's queue time: epoch seconds of the system clock.
fn queue_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Tries to prepare the SQLite queue a few times while the database is busy.
///
/// Why: apalis's setup ends with `PRAGMA optimize`, which may read and then write
/// statistics; when a running worker writes in between, SQLite answers "database
/// is locked" at once, whatever the busy timeout. A process that connects while
/// another uses the queue (a second handle, an operator command) would fail on it.
async fn setup_sqlite(pool: &SqlitePool) -> Result<(), apalis_sqlite::Error> {
    const TRIES: u32 = 10;
    let mut tries = 1;
    loop {
        match SqliteStorage::setup(pool).await {
            Err(error) if tries < TRIES && is_busy(&error) => {
                tokio::time::sleep(Duration::from_millis(20) * tries).await;
                tries += 1;
            }
            result => return result,
        }
    }
}

/// SQLite's `SQLITE_BUSY`, with any extended code.
fn is_busy(error: &apalis_sqlite::Error) -> bool {
    let apalis_sqlite::Error::Database(apalis_sqlite::SqlxError::Database(error)) = error else {
        return false;
    };
    error.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5)
}

async fn ping_sqlite(pool: &SqlitePool) -> Result<(), QueueError> {
    apalis_sqlite::SqlitePool::acquire(pool).await.map(|_| ()).map_err(QueueError::unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(key: &str, attempt: u32) -> UniqueJob {
        let message = crate::push::PushMessage::new(
            crate::push::PushPayload {
                r#type: crate::push::PushKind::Reminder,
                title: "t".into(),
                body: "b".into(),
                url: "/".into(),
                delivery_id: None,
            },
            60,
            crate::push::Urgency::Low,
        );
        UniqueJob {
            key: key.to_owned(),
            job: Job::SendPush { user_id: Uuid::nil(), subscription_id: Uuid::nil(), message, attempt },
        }
    }

    #[test]
    fn first_sends_of_pushes_are_gathered_under_a_key_made_of_theirs_and_nothing_else_is() {
        let mut jobs: Vec<UniqueJob> = (0..PUSH_BATCH + 1).map(|n| push(&format!("p{n}"), 0)).collect();
        let retry = push("retried", 1);
        let purge = UniqueJob { key: "purge".into(), job: Job::PurgeAccount { user_id: Uuid::nil() } };
        jobs.insert(3, retry.clone());
        jobs.push(purge.clone());
        let batched = batch_pushes(jobs.clone());
        assert_eq!(batched.len(), 4, "the retry, the purge and two batches: {batched:?}");
        assert_eq!(&batched[..2], &[retry, purge]);
        let keys = |job: &UniqueJob| match &job.job {
            Job::SendPushes { pushes } => pushes.iter().map(|p| p.key.clone()).collect::<Vec<_>>(),
            other => panic!("not a batch: {other:?}"),
        };
        assert_eq!(keys(&batched[2]), (0..PUSH_BATCH).map(|n| format!("p{n}")).collect::<Vec<_>>());
        assert_eq!(keys(&batched[3]), vec![format!("p{PUSH_BATCH}")]);
        assert_eq!(batch_pushes(jobs)[2].key, batched[2].key, "the same pushes, the same key");
        let fewer = batch_pushes((1..PUSH_BATCH).map(|n| push(&format!("p{n}"), 0)).collect());
        assert_ne!(fewer[0].key, batched[2].key, "other pushes, another key");
    }

    #[test]
    fn jobs_serialise_with_a_kind_tag() {
        let id = Uuid::nil();
        let json = serde_json::to_value(Job::PurgeAccount { user_id: id }).unwrap();
        assert_eq!(json["kind"], "purge_account");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), Job::PurgeAccount { user_id: id });
    }
}
