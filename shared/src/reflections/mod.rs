//! Weekly reflections: computing each person's week when it falls due (Sunday
//! 18:00 in their zone), storing it once per (person, week), announcing it with
//! one discreet push, and reading reflections back. The rules for what a
//! reflection says are in `domain::reflection`; this module feeds them.

mod compute;
mod sql;

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

pub use self::compute::PEOPLE_PER_QUERY;
use self::compute::{Candidate, EnrolledPerson, compute, eligible, enrolled_page, is_last_page};
use crate::{
    Clock,
    content::{self, Catalog},
    db,
    domain::reflection::{Reflection, ReflectionWeek, reflection_notice},
    entities::reflection::{self, Entity as ReflectionRow},
    push::{PushKind, PushMessage, PushPayload, Topic, Urgency},
};

/// Every reflection notice shares one topic: a newer one replaces an undelivered older one.
pub const REFLECTION_TOPIC: &str = "reflection";
/// A reflection notice is still welcome a day late.
pub const REFLECTION_TTL_SECS: u32 = 24 * 60 * 60;
/// A stored reflection whose notice is still not queued this long after it was
/// stored lost its worker between the two; the next run takes it over.
pub const ANNOUNCE_LEASE: Duration = Duration::minutes(5);
/// Batches of [`PEOPLE_PER_QUERY`] computed and stored at once. Three keep both
/// the database and this process busy on two cores (benches/reflections.rs); on
/// SQLite's single connection they take turns.
pub const BATCHES_AT_ONCE: usize = 3;
/// The most reflections one page of `GET /v1/reflections` returns.
pub const MAX_PAGE: u64 = 52;

/// A reflection stored and not yet announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewReflection {
    pub user_id: Uuid,
    pub week: ReflectionWeek,
}

/// What an operator's recomputation of a week did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recomputed {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// One page of a person's reflections, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectionPage {
    pub reflections: Vec<Reflection>,
    /// Pass as `cursor` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<ReflectionWeek>,
}

#[derive(Clone)]
pub struct Reflections {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Reflections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflections").finish_non_exhaustive()
    }
}

fn catalog() -> Result<&'static Catalog, DbErr> {
    content::catalog().map_err(db::conversion::<str, Catalog>)
}

/// A stored reflection as clients see it: the focus's professional-help
/// resources are stored by reference (`{"country": "US"}`) and expanded from the
/// current resource list, so a reflection never shows a number that has since
/// changed, and the row stays small.
fn parse(row: &reflection::Model) -> Result<Reflection, DbErr> {
    let unreadable = db::conversion::<str, Reflection>;
    let mut body: serde_json::Value = serde_json::from_str(&row.body).map_err(unreadable)?;
    if let Some(resources) = body.pointer_mut("/focus/resources").filter(|r| !r.is_null()) {
        let country = resources.get("country").and_then(serde_json::Value::as_str);
        *resources = serde_json::to_value(catalog()?.resources_for(country)).map_err(unreadable)?;
    }
    serde_json::from_value(body).map_err(unreadable)
}

impl Reflections {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// The person's reflection on `week`, if there is one.
    pub async fn get(&self, user_id: Uuid, week: ReflectionWeek) -> Result<Option<Reflection>, DbErr> {
        ReflectionRow::find_by_id((user_id, week.to_string())).one(&self.db).await?.as_ref().map(parse).transpose()
    }

    /// Up to `limit` of the person's reflections older than `cursor` (all when
    /// `None`), newest first.
    pub async fn page(
        &self,
        user_id: Uuid,
        cursor: Option<ReflectionWeek>,
        limit: u64,
    ) -> Result<ReflectionPage, DbErr> {
        let mut query = ReflectionRow::find().filter(reflection::Column::UserId.eq(user_id));
        if let Some(cursor) = cursor {
            query = query.filter(reflection::Column::WeekStart.lt(cursor.to_string()));
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = query.order_by_desc(reflection::Column::WeekStart).limit(limit + 1).all(&self.db).await?;
        let more = rows.len() as u64 > limit;
        let reflections = rows.iter().take(limit as usize).map(parse).collect::<Result<Vec<_>, _>>()?;
        let next_cursor =
            more.then(|| reflections.last().map(|r| ReflectionWeek::for_local_date(r.week_start))).flatten();
        Ok(ReflectionPage { reflections, next_cursor })
    }

    /// Every reflection the person has, oldest first (the account export).
    pub async fn all(&self, user_id: Uuid) -> Result<Vec<Reflection>, DbErr> {
        let rows = ReflectionRow::find()
            .filter(reflection::Column::UserId.eq(user_id))
            .order_by_asc(reflection::Column::WeekStart)
            .all(&self.db)
            .await?;
        rows.iter().map(parse).collect()
    }

    /// Computes and stores every reflection due by `now` and not stored yet: for
    /// each enrolled, unpaused person, the most recent week that ended (Sunday
    /// 18:00 local) after they enrolled. Runs set-based, [`PEOPLE_PER_QUERY`]
    /// people per aggregate query, [`BATCHES_AT_ONCE`] batches at once. Returns
    /// the reflections this call stored, which the caller announces; a reflection
    /// another run stored first is not returned, so several workers may run this
    /// at once and each is announced once.
    #[tracing::instrument(skip_all)]
    pub async fn make_due(&self, now: DateTime<Utc>) -> Result<Vec<NewReflection>, DbErr> {
        let catalog = catalog()?;
        let due = move |person: &EnrolledPerson| {
            let week = ReflectionWeek::last_due_week(now, person.tz);
            let done = person.latest.as_deref().is_some_and(|latest| latest >= week.to_string().as_str());
            (!done && eligible(person, week, now)).then_some(week)
        };
        let store = move |this: Self, batch: Vec<Candidate>| async move {
            this.insert_new(&compute(&this.db, catalog, &batch).await?, now).await
        };
        let stored = self.in_batches(due, store).await?;
        Ok(stored.into_iter().flatten().collect())
    }

    /// Computes `week` again for everyone enrolled before it fell due and not
    /// paused, storing what changed. Idempotent; announces nothing (operators use
    /// it to fill in or correct past weeks).
    #[tracing::instrument(skip_all, fields(%week))]
    pub async fn recompute_week(&self, week: ReflectionWeek) -> Result<Recomputed, DbErr> {
        let catalog = catalog()?;
        let now = self.clock.now();
        let store = move |this: Self, batch: Vec<Candidate>| async move {
            this.upsert(&compute(&this.db, catalog, &batch).await?, week, now).await
        };
        let counts = self.in_batches(move |person| eligible(person, week, now).then_some(week), store).await?;
        Ok(counts.into_iter().fold(Recomputed::default(), |sum, counts| Recomputed {
            created: sum.created + counts.created,
            updated: sum.updated + counts.updated,
            unchanged: sum.unchanged + counts.unchanged,
        }))
    }

    /// Pages through the enrolled, unpaused people, picks the week `select`
    /// names for each, and runs `store` on batches of [`PEOPLE_PER_QUERY`] such
    /// candidates, [`BATCHES_AT_ONCE`] at a time: while the database aggregates
    /// or inserts for one batch, this process builds another's reflections, and
    /// the next page is read as soon as a batch is free for it.
    async fn in_batches<T, Store, Stored>(
        &self,
        select: impl Fn(&EnrolledPerson) -> Option<ReflectionWeek> + Send + Sync + 'static,
        store: Store,
    ) -> Result<Vec<T>, DbErr>
    where
        Store: Fn(Self, Vec<Candidate>) -> Stored + Send + Sync + 'static,
        Stored: Future<Output = Result<T, DbErr>> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        // One page of candidates at a time; `None` once the last page is read.
        let pages = stream::try_unfold(Some(None), move |after: Option<Option<Uuid>>| {
            let db = db.clone();
            async move {
                let Some(after) = after else { return Ok(None) };
                let page = enrolled_page(&db, after).await?;
                let next = (!is_last_page(&page)).then(|| page.last().map(|p| p.user_id));
                Ok::<_, DbErr>(Some((page, next)))
            }
        });
        let this = self.clone();
        pages
            .map_ok(move |page| {
                let mut batches: Vec<Vec<Candidate>> = Vec::new();
                for person in page {
                    let Some(week) = select(&person) else { continue };
                    let candidate = Candidate {
                        user_id: person.user_id,
                        tz: person.tz,
                        country: person.country,
                        enrolled_at: person.enrolled_at,
                        week,
                    };
                    match batches.last_mut() {
                        Some(batch) if batch.len() < PEOPLE_PER_QUERY => batch.push(candidate),
                        _ => batches.push(vec![candidate]),
                    }
                }
                stream::iter(batches).map(Ok)
            })
            .try_flatten()
            .map_ok(move |batch| store(this.clone(), batch))
            .try_buffer_unordered(BATCHES_AT_ONCE)
            .try_collect()
            .await
    }

    /// Inserts what is not stored yet, with its notice due; returns what this
    /// insert stored.
    #[tracing::instrument(skip_all, fields(rows = computed.len()))]
    async fn insert_new(
        &self,
        computed: &[(Uuid, ReflectionWeek, Reflection)],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewReflection>, DbErr> {
        if computed.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = sql::insert_statement(&self.db, computed, now, true)?;
        sql.push(" ON CONFLICT (user_id, week_start) DO NOTHING RETURNING user_id, week_start");
        let rows = sql::StoredKey::find_by_statement(sql.build()).all(&self.db).await?;
        rows.iter().map(new_reflection).collect()
    }

    /// Stores new reflections and changed ones (no notice); counts what it did.
    async fn upsert(
        &self,
        computed: &[(Uuid, ReflectionWeek, Reflection)],
        week: ReflectionWeek,
        now: DateTime<Utc>,
    ) -> Result<Recomputed, DbErr> {
        let users: Vec<Uuid> = computed.iter().map(|(user_id, _, _)| *user_id).collect();
        let stored: HashMap<Uuid, String> = ReflectionRow::find()
            .filter(reflection::Column::UserId.is_in(users))
            .filter(reflection::Column::WeekStart.eq(week.to_string()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row.body))
            .collect();
        let mut counts = Recomputed::default();
        let mut changed = Vec::new();
        for entry in computed {
            let body = body_json(&entry.2)?;
            match stored.get(&entry.0) {
                None => counts.created += 1,
                Some(old) if *old == body => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
            }
            changed.push(entry.clone());
        }
        if changed.is_empty() {
            return Ok(counts);
        }
        let mut sql = sql::insert_statement(&self.db, &changed, now, false)?;
        sql.push(
            " ON CONFLICT (user_id, week_start) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        );
        self.db.execute_raw(sql.build()).await?;
        Ok(counts)
    }

    /// Takes over, up to `limit`, reflections whose notice is due: deferred to
    /// the end of quiet hours that have now ended, or still not queued
    /// [`ANNOUNCE_LEASE`] after it should have been (their worker stopped in
    /// between). Each taken row's `announce_at` moves a lease ahead, so no other
    /// worker takes it meanwhile. Queue their notices, then [`Self::mark_announced`];
    /// should this worker stop first too, the next lease runs out and another takes over.
    pub async fn take_over_unannounced(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<NewReflection>, DbErr> {
        let lease_until = (now + ANNOUNCE_LEASE).timestamp_millis();
        let rows = sql::take_over(&self.db, lease_until, now.timestamp_millis(), limit).await?;
        rows.iter().map(new_reflection).collect()
    }

    /// Holds these reflections' notices until the given instants (the end of the
    /// person's quiet hours), when [`Self::take_over_unannounced`] hands them out again.
    pub async fn defer(&self, deferred: &[(NewReflection, DateTime<Utc>)]) -> Result<(), DbErr> {
        let mut groups: HashMap<(ReflectionWeek, DateTime<Utc>), Vec<Uuid>> = HashMap::new();
        for (reflection, until) in deferred {
            groups.entry((reflection.week, *until)).or_default().push(reflection.user_id);
        }
        for ((week, until), users) in groups {
            ReflectionRow::update_many()
                .col_expr(reflection::Column::AnnounceAt, Expr::value(until.timestamp_millis()))
                .filter(reflection::Column::WeekStart.eq(week.to_string()))
                .filter(reflection::Column::UserId.is_in(users))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Records that these reflections' notices are settled: queued, or not to be
    /// sent at all.
    pub async fn mark_announced(&self, announced: &[NewReflection]) -> Result<(), DbErr> {
        for (week, users) in group_by_week(announced) {
            ReflectionRow::update_many()
                .col_expr(reflection::Column::AnnounceAt, Expr::value(Option::<i64>::None))
                .filter(reflection::Column::WeekStart.eq(week.to_string()))
                .filter(reflection::Column::UserId.is_in(users))
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }
}

fn new_reflection(key: &sql::StoredKey) -> Result<NewReflection, DbErr> {
    Ok(NewReflection { user_id: key.user_id, week: key.week()? })
}

fn group_by_week(reflections: &[NewReflection]) -> HashMap<ReflectionWeek, Vec<Uuid>> {
    let mut weeks: HashMap<ReflectionWeek, Vec<Uuid>> = HashMap::new();
    for reflection in reflections {
        weeks.entry(reflection.week).or_default().push(reflection.user_id);
    }
    weeks
}

/// The stored form of a reflection (see [`parse`]).
pub(super) fn body_json(reflection: &Reflection) -> Result<String, DbErr> {
    let mut body = serde_json::to_value(reflection).map_err(db::conversion::<Reflection, serde_json::Value>)?;
    if let (Some(resources), Some(shown)) = (body.pointer_mut("/focus/resources"), &reflection.focus.resources) {
        *resources = serde_json::json!({ "country": shown.country });
    }
    db::to_json_text(&body)
}

/// The discreet push announcing a new reflection; the tap opens it.
pub fn announcement(week: ReflectionWeek) -> PushMessage {
    let (title, body) = reflection_notice();
    let payload = PushPayload {
        r#type: PushKind::Reflection,
        title: title.into(),
        body: body.into(),
        url: format!("/reflections/{week}"),
        delivery_id: None,
    };
    let mut message = PushMessage::new(payload, REFLECTION_TTL_SECS, Urgency::Low);
    message.topic = Topic::parse(REFLECTION_TOPIC).ok();
    message
}
