//! Purges a deleted account: every row it had goes. Queued jobs that name the
//! account find no user afterwards and end without effect.

use attune_shared::accounts;
use uuid::Uuid;

use crate::WorkerDeps;

/// The sweep that catches accounts whose purge job was lost: every 10 minutes.
pub const SWEEP_SCHEDULE: &str = "0 */10 * * * *";
/// An account deleted longer ago than this and still present is purged by the sweep.
const SWEEP_GRACE_MS: i64 = 10 * 60_000;

#[tracing::instrument(skip_all, fields(%user_id))]
pub async fn run(deps: &WorkerDeps, user_id: Uuid) -> anyhow::Result<()> {
    if accounts::purge_account(&deps.db, user_id).await? {
        tracing::info!("account purged");
    }
    Ok(())
}

pub async fn sweep(deps: &WorkerDeps) -> anyhow::Result<()> {
    let cutoff = deps.clock.now_ms() - SWEEP_GRACE_MS;
    for user_id in accounts::deleted_accounts_pending_purge(&deps.db, cutoff).await? {
        run(deps, user_id).await?;
    }
    Ok(())
}
