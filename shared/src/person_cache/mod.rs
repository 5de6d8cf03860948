//! What a request reads about the person asking (their session and profile, their
//! `descriptive` choice), kept in this process for at most [`FRESH_FOR_MS`], so
//! that a request with a valid token costs no database round trip.
//!
//! What matters is how long an ended session (or an older profile) may still be
//! served after the change committed:
//! - on the replica that made the change: not at all. Every change to a person's
//!   sessions, profile or choices ends with [`PersonChanges::changed`], which
//!   forgets their entries here before the request is answered;
//! - on every other replica: until Redis delivers the announcement (`announce.rs`),
//!   a few milliseconds;
//! - whatever happens to Redis (down, a message lost while reconnecting): at
//!   most [`FRESH_FOR_MS`], because an entry's lifetime counts from the moment
//!   its read *began*, on the injected clock. A read that began before the
//!   change committed expires within that long of the change; one that began
//!   after it saw the change.
//!
//! A read that was under way when a person was forgotten is not kept (the
//! epoch), so a change can never land in the cache behind its own forgetting.

mod announce;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use uuid::Uuid;

pub use self::announce::{ANNOUNCEMENTS_RECEIVED_METRIC, Announcer, LISTENING_METRIC, Listener, channel_name, listen};
use crate::Clock;

/// How long an entry serves after its read began. The longest an ended session
/// is accepted by a replica that missed the announcement.
pub const FRESH_FOR_MS: i64 = 1_000;

/// Entries per cache: about 10,000 people active within the same second per
/// replica, a few MiB.
pub const CAPACITY: usize = 10_000;

/// The timestamp and epoch a read from the database started at; see
/// [`FreshCache::begin_read`].
#[derive(Debug, Clone, Copy)]
pub struct ReadStart {
    at_ms: i64,
    epoch: u64,
}

/// A bounded map from an id (a session, a person) to what was read for it,
/// each entry tagged with the person it belongs to and served for
/// [`FRESH_FOR_MS`] after its read began.
pub struct FreshCache<V> {
    clock: Arc<dyn Clock>,
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

struct Inner<V> {
    /// Moves on each forgetting: a read that began under another epoch is not kept.
    epoch: u64,
    entries: HashMap<Uuid, Entry<V>>,
    /// When the last sweep of stale entries ran (at most one per lifetime).
    swept_at_ms: i64,
}

struct Entry<V> {
    person: Uuid,
    /// A second person whose change makes the entry stale too (a partner whose
    /// state went into it).
    also: Option<Uuid>,
    read_at_ms: i64,
    value: V,
}

impl<V> std::fmt::Debug for FreshCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FreshCache").field("capacity", &self.capacity).finish_non_exhaustive()
    }
}

/// Fresh from the read that began at `read_at_ms` until [`FRESH_FOR_MS`] later;
/// a clock that went back before the read counts as stale too.
fn fresh(read_at_ms: i64, now_ms: i64) -> bool {
    (read_at_ms..read_at_ms + FRESH_FOR_MS).contains(&now_ms)
}

impl<V: Clone> FreshCache<V> {
    pub fn new(clock: Arc<dyn Clock>, capacity: usize) -> Self {
        let inner = Inner { epoch: 0, entries: HashMap::new(), swept_at_ms: i64::MIN };
        Self { clock, capacity, inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // Nothing is left half-done under this lock: a poisoned one is still sound.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value kept for `key`, if it is still fresh.
    pub fn get(&self, key: Uuid) -> Option<V> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        match inner.entries.get(&key) {
            Some(entry) if fresh(entry.read_at_ms, now) => Some(entry.value.clone()),
            Some(_) => {
                inner.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Call before reading from the database what [`FreshCache::keep`] will keep.
    pub fn begin_read(&self) -> ReadStart {
        let epoch = self.lock().epoch;
        ReadStart { at_ms: self.clock.now_ms(), epoch }
    }

    /// Keeps `value`, read for `person` since `start`, unless someone was
    /// forgotten meanwhile (it may predate that change) or it is stale already.
    pub fn keep(&self, start: ReadStart, key: Uuid, person: Uuid, value: V) {
        self.keep_for(start, key, person, None, value);
    }

    /// Like [`FreshCache::keep`], for a value that also depends on `also`:
    /// forgetting either person drops it.
    pub fn keep_for(&self, start: ReadStart, key: Uuid, person: Uuid, also: Option<Uuid>, value: V) {
        let now = self.clock.now_ms();
        if !fresh(start.at_ms, now) {
            return;
        }
        let mut inner = self.lock();
        if inner.epoch != start.epoch {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            inner.make_room(now, self.capacity);
        }
        inner.entries.insert(key, Entry { person, also, read_at_ms: start.at_ms, value });
    }

    /// Changes the fresh value kept for `key` in place; `None` when there is none.
    pub fn update<R>(&self, key: Uuid, change: impl FnOnce(&mut V) -> R) -> Option<R> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.entries.get_mut(&key).filter(|entry| fresh(entry.read_at_ms, now)).map(|entry| change(&mut entry.value))
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V> Inner<V> {
    /// Drops the stale entries (at most once per lifetime, so a cache full of
    /// fresh entries is not swept on every insert), then, if still full, one
    /// entry, whichever comes first.
    fn make_room(&mut self, now: i64, capacity: usize) {
        if now.saturating_sub(self.swept_at_ms) >= FRESH_FOR_MS {
            self.swept_at_ms = now;
            self.entries.retain(|_, entry| fresh(entry.read_at_ms, now));
        }
        if self.entries.len() >= capacity
            && let Some(key) = self.entries.keys().next().copied()
        {
            self.entries.remove(&key);
        }
    }
}

/// A cache that can forget a person.
pub trait Forget: Send + Sync {
    /// Drops every entry of `person`, and keeps no read that was under way.
    fn forget(&self, person: Uuid);
    /// Drops everything (the announcements may have been missed).
    fn forget_all(&self);
}

impl<V: Clone + Send> Forget for FreshCache<V> {
    fn forget(&self, person: Uuid) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.retain(|_, entry| entry.person != person && entry.also != Some(person));
    }

    fn forget_all(&self) {
        let mut inner = self.lock();
        inner.epoch += 1;
        inner.entries.clear();
    }
}

/// How long a change waits for Redis to take its announcement before it goes
/// on without it (the entries elsewhere then expire within [`FRESH_FOR_MS`]).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_millis(250);

/// The caches of this process, and the announcement to the other replicas:
/// what a change to a person's sessions, profile or choices calls once it has
/// committed.
#[derive(Clone)]
pub struct PersonChanges {
    caches: Arc<[Arc<dyn Forget>]>,
    announcer: Option<Announcer>,
}

impl std::fmt::Debug for PersonChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonChanges")
            .field("caches", &self.caches.len())
            .field("announced", &self.announcer.is_some())
            .finish()
    }
}

impl PersonChanges {
    /// `announcer`: Redis, where other replicas listen; `None` for a process
    /// that is the only one (embedded) or that caches nothing of its own.
    pub fn new(caches: Vec<Arc<dyn Forget>>, announcer: Option<Announcer>) -> Self {
        Self { caches: caches.into(), announcer }
    }

    /// No cache and no announcement: for services built outside a process
    /// that serves requests (tests running a service by hand).
    pub fn none() -> Self {
        Self::new(Vec::new(), None)
    }

    /// After a committed change to `person`'s sessions, profile or choices:
    /// forgets them here at once, then tells the other replicas. A failed
    /// announcement is logged, never the caller's failure: their entries expire
    /// within [`FRESH_FOR_MS`] anyway.
    pub async fn changed(&self, person: Uuid) {
        self.forget_here(person);
        if let Some(announcer) = &self.announcer {
            match tokio::time::timeout(ANNOUNCE_TIMEOUT, announcer.announce(person)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, user_id = %person, "could not announce a change to the other replicas");
                }
                Err(_) => tracing::warn!(user_id = %person, "announcing a change to the other replicas timed out"),
            }
        }
    }

    /// Forgets `person` in this process only (an announcement from elsewhere).
    pub fn forget_here(&self, person: Uuid) {
        for cache in self.caches.iter() {
            cache.forget(person);
        }
    }

    /// Forgets everyone in this process (announcements may have been missed).
    pub fn forget_all_here(&self) {
        for cache in self.caches.iter() {
            cache.forget_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};

    use super::*;
    use crate::ManualClock;

    fn cache(capacity: usize) -> (ManualClock, Arc<FreshCache<&'static str>>) {
        let clock = ManualClock::new(Utc::now());
        (clock.clone(), Arc::new(FreshCache::new(Arc::new(clock), capacity)))
    }

    fn kept(cache: &FreshCache<&'static str>, key: Uuid, person: Uuid, value: &'static str) {
        let start = cache.begin_read();
        cache.keep(start, key, person, value);
    }

    #[test]
    fn an_entry_serves_for_its_lifetime_counted_from_when_its_read_began() {
        let (clock, cache) = cache(10);
        let (key, person) = (Uuid::now_v7(), Uuid::now_v7());
        let start = cache.begin_read();
        clock.advance(Duration::milliseconds(300)); // the read itself took a while
        cache.keep(start, key, person, "read");
        assert_eq!(cache.get(key), Some("read"));
        clock.advance(Duration::milliseconds(FRESH_FOR_MS - 300 - 1));
        assert_eq!(cache.get(key), Some("read"), "still fresh 1 ms before the end");
        clock.advance(Duration::milliseconds(1));
        assert_eq!(cache.get(key), None, "stale once the lifetime is over");
        assert!(cache.is_empty(), "a stale entry found is dropped");
    }

    #[test]
    fn a_read_that_outlived_its_lifetime_is_not_kept() {
        let (clock, cache) = cache(10);
        let key = Uuid::now_v7();
        let start = cache.begin_read();
        clock.advance(Duration::milliseconds(FRESH_FOR_MS));
        cache.keep(start, key, key, "late");
        assert_eq!(cache.get(key), None);
    }

    #[test]
    fn a_clock_that_goes_back_makes_entries_stale() {
        let (clock, cache) = cache(10);
        let key = Uuid::now_v7();
        kept(&cache, key, key, "read");
        clock.advance(Duration::milliseconds(-1));
        assert_eq!(cache.get(key), None);
    }

    #[test]
    fn forgetting_a_person_drops_their_entries_and_only_theirs() {
        let (_, cache) = cache(10);
        let (sam, kim) = (Uuid::now_v7(), Uuid::now_v7());
        let (sam_phone, sam_laptop, kim_phone) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        kept(&cache, sam_phone, sam, "sam's phone");
        kept(&cache, sam_laptop, sam, "sam's laptop");
        kept(&cache, kim_phone, kim, "kim's phone");
        cache.forget(sam);
        assert_eq!((cache.get(sam_phone), cache.get(sam_laptop)), (None, None));
        assert_eq!(cache.get(kim_phone), Some("kim's phone"));
        cache.forget_all();
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_kept_for_two_people_is_dropped_when_either_changes() {
        let (_, cache) = cache(10);
        let (sam, kim, lee) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let keep_sam = || cache.keep_for(cache.begin_read(), sam, sam, Some(kim), "sam's, with kim's");
        keep_sam();
        cache.forget(lee);
        assert_eq!(cache.get(sam), Some("sam's, with kim's"), "a third person's change leaves it");
        cache.forget(kim);
        assert_eq!(cache.get(sam), None, "the partner's change drops it");
        keep_sam();
        cache.forget(sam);
        assert_eq!(cache.get(sam), None, "the person's own change drops it");
    }

    #[test]
    fn a_read_under_way_while_someone_was_forgotten_is_not_kept() {
        let (_, cache) = cache(10);
        let (key, person) = (Uuid::now_v7(), Uuid::now_v7());
        let start = cache.begin_read();
        // The change commits and is announced while the read is still running:
        // what it read may predate the change.
        cache.forget(person);
        cache.keep(start, key, person, "maybe older than the change");
        assert_eq!(cache.get(key), None);
        kept(&cache, key, person, "after the change");
        assert_eq!(cache.get(key), Some("after the change"));
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let (clock, cache) = cache(3);
        let keys: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        for key in &keys {
            kept(&cache, *key, *key, "value");
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(keys[4]), Some("value"), "the newest entry is kept");
        // Once the others are stale, making room sweeps them all.
        clock.advance(Duration::milliseconds(FRESH_FOR_MS));
        let newest = Uuid::now_v7();
        kept(&cache, newest, newest, "fresh");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn update_changes_a_fresh_entry_in_place() {
        let (clock, cache) = cache(10);
        let key = Uuid::now_v7();
        kept(&cache, key, key, "before");
        assert_eq!(cache.update(key, |v| std::mem::replace(v, "after")), Some("before"));
        assert_eq!(cache.get(key), Some("after"));
        clock.advance(Duration::milliseconds(FRESH_FOR_MS));
        assert_eq!(cache.update(key, |_| ()), None, "nothing stale is changed");
    }

    #[tokio::test]
    async fn a_change_forgets_the_person_in_every_cache_of_the_process() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let sessions = Arc::new(FreshCache::<u8>::new(clock.clone(), 10));
        let flags = Arc::new(FreshCache::<bool>::new(clock, 10));
        let changes = PersonChanges::new(vec![sessions.clone(), flags.clone()], None);
        let (person, session) = (Uuid::now_v7(), Uuid::now_v7());
        sessions.keep(sessions.begin_read(), session, person, 1);
        flags.keep(flags.begin_read(), person, person, true);
        changes.changed(person).await;
        assert_eq!((sessions.get(session), flags.get(person)), (None, None));
    }
}
