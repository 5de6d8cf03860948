//! Forgets deletions older than the retention period. Clients that last synced
//! before it get a full replacement sync instead (see `attune_shared::sync`).

use crate::WorkerDeps;

/// Daily, at 03:15 UTC.
pub const SCHEDULE: &str = "0 15 3 * * *";

#[tracing::instrument(skip_all)]
pub async fn run(deps: &WorkerDeps) -> anyhow::Result<u64> {
    let purged = deps.sync.purge_tombstones().await?;
    tracing::info!(purged, "old tombstones purged");
    Ok(purged)
}
