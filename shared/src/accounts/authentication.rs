//! Who a bearer token speaks for. The token's signature and expiry are checked on
//! every request; whether its session is still live and who its person is come
//! from the session cache (`person_cache`), read from the database at most once
//! per [`FRESH_FOR_MS`](crate::person_cache::FRESH_FOR_MS) per session and
//! forgotten by every change that ends a session or changes the person, here at
//! once and on the other replicas through Redis.

use sea_orm::EntityTrait;
use uuid::Uuid;

use super::{AccountError, Accounts, Authenticated, sessions};
use crate::{
    entities::{session::Entity as Session, user::Entity as User},
    person_cache::FreshCache,
};

/// What the session cache keeps of a live session: not revoked, its person not
/// deleted, when it was read.
#[derive(Debug, Clone)]
pub struct CachedSession {
    who: Authenticated,
    /// When the session ends unless refreshed. A refresh moves it later without
    /// an announcement: an entry read before a refresh can only end too early,
    /// and a session in use is refreshed every 15 minutes, 30 days before it.
    expires_at: i64,
    /// As stored, or as this process last wrote it.
    last_used_at: i64,
}

/// Live sessions by id, for at most a second each.
pub type SessionCache = FreshCache<CachedSession>;

impl Accounts {
    /// Resolves a bearer token to its person, checking that the session is still
    /// live: an ended session is refused at once on this replica, within
    /// milliseconds on the others, and, whatever happens to Redis, within
    /// `FRESH_FOR_MS`.
    pub async fn authenticate(&self, bearer: &str) -> Result<Authenticated, AccountError> {
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let claims = self.keys.verify(bearer, now.timestamp()).ok_or(AccountError::Unauthenticated)?;
        let session = match self.sessions.get(claims.sid) {
            Some(cached) => cached,
            None => self.read_session(claims.sid).await?.ok_or(AccountError::Unauthenticated)?,
        };
        if session.who.user.id != claims.sub || session.expires_at <= now_ms {
            return Err(AccountError::Unauthenticated);
        }
        self.touch_when_due(&session, now_ms).await;
        Ok(session.who)
    }

    /// The session and its person from the database, if the session is not
    /// revoked and the person not deleted; kept in the cache.
    async fn read_session(&self, session_id: Uuid) -> Result<Option<CachedSession>, AccountError> {
        let start = self.sessions.begin_read();
        let Some((session, Some(user))) = Session::find_by_id(session_id).find_also_related(User).one(&self.db).await?
        else {
            return Ok(None);
        };
        if session.revoked_at.is_some() || user.deleted_at.is_some() {
            return Ok(None);
        }
        let cached = CachedSession {
            expires_at: session.expires_at,
            last_used_at: session.last_used_at,
            who: Authenticated { user, session_id: session.id },
        };
        self.sessions.keep(start, session_id, cached.who.user.id, cached.clone());
        Ok(Some(cached))
    }

    /// Records the session's use at most once per
    /// [`LAST_USED_RESOLUTION_MS`](sessions::LAST_USED_RESOLUTION_MS): the
    /// cached copy moves on first, so of the requests that find it due only
    /// one writes.
    async fn touch_when_due(&self, session: &CachedSession, now_ms: i64) {
        let due = |last_used_at: i64| now_ms - last_used_at >= sessions::LAST_USED_RESOLUTION_MS;
        if !due(session.last_used_at) {
            return;
        }
        let session_id = session.who.session_id;
        let claimed = self.sessions.update(session_id, |cached| {
            let first = due(cached.last_used_at);
            if first {
                cached.last_used_at = now_ms;
            }
            first
        });
        if claimed != Some(false) {
            sessions::touch(&self.db, session_id, now_ms).await;
        }
    }
}
