//! A person's sessions (one per sign-in) and what ends them: signing out one
//! device, all others, or changing the password.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, sea_query::Expr,
};
use uuid::Uuid;

use super::{AccountError, Accounts, Authenticated, ReauthProof, password, revoke_sessions};
use crate::{
    domain::{Password, ValidationErrors},
    entities::{
        session::{self, Entity as Session},
        user,
    },
};

/// `last_used_at` is written at most this often per session: it is for a person
/// recognising a device ("used today"), and a write on every request would turn
/// each read into a write.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// One session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: Uuid,
    pub device: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    /// The session the request came from.
    pub current: bool,
}

/// Moves `last_used_at` forward when it is older than the resolution; the caller
/// asks only when its copy says so (`authentication`). Conditional on the stored
/// value, so concurrent requests (on several replicas too) write it once. A
/// failure is only logged: the request it rides on must not fail for it.
pub(super) async fn touch(db: &DatabaseConnection, session_id: Uuid, now_ms: i64) {
    let result = Session::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::value(now_ms))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::LastUsedAt.lte(now_ms - LAST_USED_RESOLUTION_MS))
        .exec(db)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, %session_id, "could not record the session's last use");
    }
}

impl Accounts {
    /// The person's live sessions, most recently used first.
    pub async fn sessions(&self, who: &Authenticated) -> Result<Vec<SessionSummary>, AccountError> {
        let now = self.clock.now_ms();
        let rows = Session::find()
            .filter(session::Column::UserId.eq(who.user.id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::LastUsedAt)
            .order_by_desc(session::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionSummary {
                id: s.id,
                current: s.id == who.session_id,
                device: s.device,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
            })
            .collect())
    }

    /// Ends one of the person's sessions (the current one too: that is a sign-out).
    /// An id that is not a live session of theirs, someone else's included, is
    /// [`AccountError::SessionNotFound`], so nothing is learnt about other people.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn end_session(&self, who: &Authenticated, session_id: Uuid) -> Result<(), AccountError> {
        let now = self.clock.now_ms();
        let ended = revoke_sessions(
            &self.db,
            session::Column::Id
                .eq(session_id)
                .and(session::Column::UserId.eq(who.user.id))
                .and(session::Column::ExpiresAt.gt(now)),
            now,
        )
        .await?;
        if ended == 0 {
            return Err(AccountError::SessionNotFound);
        }
        self.changes.changed(who.user.id).await;
        tracing::info!(%session_id, "session ended");
        Ok(())
    }

    /// Ends every session of the person but the one asking; how many it ended.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn end_other_sessions(&self, who: &Authenticated) -> Result<u64, AccountError> {
        let ended = revoke_sessions(&self.db, others(who), self.clock.now_ms()).await?;
        self.changes.changed(who.user.id).await;
        tracing::info!(ended, "other sessions ended");
        Ok(ended)
    }

    /// Changes the password after re-authentication, and ends every other session
    /// in the same transaction: whoever learnt the old password is out at once,
    /// their access tokens refused from the next request and their refresh tokens
    /// dead with their session. The session asking stays signed in.
    #[tracing::instrument(skip_all, fields(user_id = %who.user.id))]
    pub async fn change_password(
        &self,
        who: &Authenticated,
        proof: ReauthProof,
        new_password: &str,
        client_address: &str,
    ) -> Result<(), AccountError> {
        self.reauthenticate(who, proof, client_address).await?;
        let new_password =
            Password::parse(new_password).map_err(|message| ValidationErrors::single("new_password", message))?;
        let hash = password::hash(&new_password).await?;
        let now = self.clock.now_ms();
        let txn = crate::db::begin(&self.db).await?;
        user::ActiveModel {
            id: Set(who.user.id),
            password_hash: Set(hash),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let ended = revoke_sessions(&txn, others(who), now).await?;
        txn.commit().await?;
        self.changes.changed(who.user.id).await;
        tracing::info!(ended, "password changed; other sessions ended");
        Ok(())
    }
}

/// The person's sessions other than the one asking.
fn others(who: &Authenticated) -> sea_orm::sea_query::SimpleExpr {
    session::Column::UserId.eq(who.user.id).and(session::Column::Id.ne(who.session_id))
}
