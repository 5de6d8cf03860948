//! Queue retention: finished and given-up jobs are deleted once they are older
//! than `ATTUNE_QUEUE_RETENTION_SECS`, so the queue's storage stays bounded by
//! a retention period's work instead of growing forever.
//!
//! Redis: apalis-redis keeps a finished job in three places: its id in the done
//! (or dead) *set*, its payload in the queue's data hash, and a metadata hash of
//! its own (`<queue>:meta:<id>`, with `done_at`). The sets are plain sets, not
//! sorted by time, so the sweep walks them with `SSCAN` a bounded batch at a
//! time and, in the same script, deletes the entries whose `done_at` is past
//! the cutoff. Every call touches at most a batch of ids: no `KEYS`, no
//! `HGETALL` or `SMEMBERS` of a big key, so other clients wait at most one
//! batch. Idempotency keys are separate keys with their own expiry and are not
//! touched.
//!
//! SQLite: apalis-sqlite keeps finished jobs as rows (`Done`, `Killed`, or
//! `Failed` with no attempts left); the sweep deletes old ones a batch per
//! statement. There a keyed job's row *is* its idempotency key, so such a row
//! stays at least [`IDEMPOTENCY_TTL`], as the key would on Redis.

use std::{sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};

use super::{IDEMPOTENCY_TTL, JobQueue, QueueBackend, QueueError};

/// The sweep runs at least this often, so a long retention still frees space
/// in steps no larger than ten minutes' worth of jobs.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Set members examined per Redis script call (an `SSCAN` hint): small enough
/// that each call is short and the sweep of a day's jobs interleaves with the
/// workers' own commands (figures: README, Performance, "Queue retention").
const REDIS_SWEEP_BATCH: usize = 100;
/// Rows deleted per SQLite statement: a short write lock each.
const SQLITE_SWEEP_BATCH: usize = 500;

/// How often the worker sweeps for a given retention: `min(retention, 10 min)`.
pub fn sweep_interval(retention: Duration) -> Duration {
    retention.clamp(Duration::from_secs(1), MAX_SWEEP_INTERVAL)
}

/// One batch of the Redis sweep over a done or dead set.
/// KEYS[1] the set, KEYS[2] the data hash, KEYS[3] the metadata key prefix.
/// ARGV[1] the SSCAN cursor, ARGV[2] the batch hint, ARGV[3] the cutoff (epoch
/// seconds, the queue time apalis records in `done_at`).
/// Returns {next cursor, jobs deleted}; cursor "0" means the walk is complete.
const SWEEP_FINISHED_LUA: &str = r#"
local scan = redis.call("sscan", KEYS[1], ARGV[1], "count", ARGV[2])
local cutoff = tonumber(ARGV[3])
local deleted = 0
for _, id in ipairs(scan[2]) do
    local meta = KEYS[3] .. ":" .. id
    local done_at = tonumber(redis.call("hget", meta, "done_at"))
    -- An entry without metadata has nothing left to keep; delete what remains.
    if done_at == nil or done_at <= cutoff then
        redis.call("hdel", KEYS[2], id)
        redis.call("unlink", meta)
        redis.call("srem", KEYS[1], id)
        deleted = deleted + 1
    end
end
return {scan[1], deleted}
"#;
static SWEEP_FINISHED: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SWEEP_FINISHED_LUA));

/// Deletes up to a batch of finished rows of one queue older than the cutoffs
/// (keyed rows by the later of retention and the idempotency lifetime).
const SQLITE_SWEEP: &str = "DELETE FROM Jobs WHERE ROWID IN ( \
       SELECT ROWID FROM Jobs \
       WHERE job_type = ?1 AND done_at IS NOT NULL \
         AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) \
         AND done_at <= CASE WHEN idempotency_key IS NULL THEN ?2 ELSE ?3 END \
       LIMIT ?4)";

impl JobQueue {
    /// Deletes every job that finished (done or given up) more than the
    /// queue's retention before `now`; returns how many. Pending, running and
    /// scheduled jobs are never touched. Safe to run from several workers at
    /// once: each batch is atomic, and a job deleted by one is skipped by another.
    #[tracing::instrument(skip_all, fields(retention_secs = self.retention.as_secs()))]
    pub async fn sweep_finished(&self, now: DateTime<Utc>) -> Result<u64, QueueError> {
        let retention = i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX);
        let cutoff = now.timestamp().saturating_sub(retention);
        let deleted = match self.backend.clone() {
            QueueBackend::Redis(mut storage) => {
                let config = storage.get_config().clone();
                let mut deleted = 0;
                for set in [config.done_jobs_set(), config.dead_jobs_set()] {
                    let mut cursor = "0".to_owned();
                    loop {
                        let (next, n): (String, u64) = SWEEP_FINISHED
                            .key(&set)
                            .key(config.job_data_hash())
                            .key(config.job_meta_hash())
                            .arg(&cursor)
                            .arg(REDIS_SWEEP_BATCH)
                            .arg(cutoff)
                            .invoke_async(storage.get_connection())
                            .await
                            .map_err(QueueError::unavailable)?;
                        deleted += n;
                        if next == "0" {
                            break;
                        }
                        cursor = next;
                    }
                }
                deleted
            }
            QueueBackend::Sqlite(storage) => {
                let idempotency = i64::try_from(IDEMPOTENCY_TTL.as_secs()).unwrap_or(i64::MAX);
                let keyed_cutoff = now.timestamp().saturating_sub(retention.max(idempotency));
                let mut deleted = 0;
                loop {
                    let done = sea_orm::sqlx::query(SQLITE_SWEEP)
                        .bind(self.name.clone())
                        .bind(cutoff)
                        .bind(keyed_cutoff)
                        .bind(i64::try_from(SQLITE_SWEEP_BATCH).unwrap_or(i64::MAX))
                        .execute(storage.pool())
                        .await
                        .map_err(QueueError::unavailable)?
                        .rows_affected();
                    deleted += done;
                    if done < SQLITE_SWEEP_BATCH as u64 {
                        break;
                    }
                }
                deleted
            }
        };
        if deleted > 0 {
            tracing::info!(deleted, "deleted finished jobs past their retention");
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_at_least_every_ten_minutes_and_at_most_every_second() {
        assert_eq!(sweep_interval(Duration::from_secs(86_400)), Duration::from_secs(600));
        assert_eq!(sweep_interval(Duration::from_secs(120)), Duration::from_secs(120));
        assert_eq!(sweep_interval(Duration::ZERO), Duration::from_secs(1));
    }
}
