//! The weekly reflections' raw SQL, kept as measured.
//!
//! Measured by `cargo bench -p attune-tests --bench reflections` (README,
//! Performance, "Weekly reflections"): 100,000 reflections computed, stored and
//! announced in 7.79 s and 7.97 s (goal ≤ 10 s), against 63 s for the version that
//! read 21 rows per person. The aggregate groups each person's three weeks by local
//! day in the database, from a `VALUES` list of windows as a common table
//! expression, which the query builder does not express; the inserts are
//! multi-row. The rows are read through `FromQueryResult`; the placeholders
//! come from [`RawSql`], the one place that knows each backend's.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Value};
use uuid::Uuid;

use super::{ANNOUNCE_LEASE, body_json};
use crate::{
    db::RawSql,
    domain::{
        pacing::{DISTRESS_ANXIETY, DISTRESS_COMFORT},
        reflection::{Reflection, ReflectionWeek},
    },
    entities::step_change::{self, Entity as StepChange},
};

/// An enrolled, unpaused person, as [`enrolled_page`] reads them.
#[derive(Debug, FromQueryResult)]
pub(super) struct EnrolledRow {
    pub user_id: Uuid,
    pub enrolled_at: i64,
    pub timezone: String,
    pub country: Option<String>,
    /// The latest week they have a reflection for.
    pub latest: Option<String>,
}

/// One page of enrolled, unpaused people after `after` (by id).
pub(super) async fn enrolled_page(
    conn: &impl ConnectionTrait,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<EnrolledRow>, DbErr> {
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push(
        "SELECT e.user_id AS user_id, e.created_at AS enrolled_at, u.timezone AS timezone, u.country AS country, \
         (SELECT MAX(r.week_start) FROM reflections r WHERE r.user_id = e.user_id) AS latest \
         FROM enrollments e JOIN users u ON u.id = e.user_id \
         WHERE e.paused_at IS NULL AND u.deleted_at IS NULL",
    );
    if let Some(after) = after {
        sql.push(" AND e.user_id > ").bind(after);
    }
    sql.push(" ORDER BY e.user_id LIMIT ").bind(i64::try_from(limit).unwrap_or(i64::MAX));
    EnrolledRow::find_by_statement(sql.build()).all(conn).await
}

/// One person's check-ins on one local day with one exercise (or none).
#[derive(Debug, FromQueryResult)]
pub(super) struct DayBucket {
    pub user_id: Uuid,
    pub slot: i64,
    pub exercise_id: Option<String>,
    #[sea_orm(alias = "n")]
    pub count: i64,
    pub mood: i64,
    pub anxiety: i64,
    pub comfort: i64,
    pub distress: i64,
    pub completed: i64,
}

/// Check-ins grouped by (person, local day, exercise) over each person's three
/// weeks. A window's values: from, to, switch (ms), the offsets before and from
/// the switch (ms), and the first local day (days since 1970-01-01).
#[tracing::instrument(skip_all)]
pub(super) async fn aggregate(
    conn: &impl ConnectionTrait,
    windows: impl Iterator<Item = (Uuid, [i64; 6])>,
    day_ms: i64,
) -> Result<Vec<DayBucket>, DbErr> {
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push("WITH v (user_id, from_ms, to_ms, switch_ms, offset_before, offset_after, first_day) AS (VALUES ");
    for (n, (user_id, values)) in windows.enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.tuple(std::iter::once(Value::from(user_id)).chain(values.map(Value::from)));
    }
    sql.push(
        ") SELECT v.user_id AS user_id, \
         (CASE WHEN c.occurred_at < v.switch_ms THEN c.occurred_at + v.offset_before \
         ELSE c.occurred_at + v.offset_after END) / ",
    )
    .bind(day_ms)
    .push(
        " - v.first_day AS slot, c.exercise_id AS exercise_id, \
         CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(c.mood) AS BIGINT) AS mood, \
         CAST(SUM(c.anxiety) AS BIGINT) AS anxiety, CAST(SUM(c.comfort) AS BIGINT) AS comfort, \
         CAST(SUM(CASE WHEN c.anxiety >= ",
    )
    .bind(DISTRESS_ANXIETY)
    .push(" OR c.comfort <= ")
    .bind(DISTRESS_COMFORT)
    .push(
        " THEN 1 ELSE 0 END) AS BIGINT) AS distress, \
         CAST(SUM(CASE WHEN c.completed THEN 1 ELSE 0 END) AS BIGINT) AS completed \
         FROM v JOIN checkins c ON c.user_id = v.user_id AND c.occurred_at >= v.from_ms AND c.occurred_at < v.to_ms \
         GROUP BY 1, 2, 3",
    );
    debug_assert!(sql.bound() < 32_766);
    DayBucket::find_by_statement(sql.build()).all(conn).await
}

/// A step change as the reflection needs it.
#[derive(Debug, FromQueryResult)]
pub(super) struct StepChangeRow {
    pub user_id: Uuid,
    pub from_step: i64,
    pub to_step: i64,
    pub changed_at: i64,
}

/// Step changes of `users` at `[from, to)` (ms).
#[tracing::instrument(skip_all)]
pub(super) async fn step_changes(
    conn: &impl ConnectionTrait,
    users: impl Iterator<Item = Uuid>,
    from: i64,
    to: i64,
) -> Result<Vec<StepChangeRow>, DbErr> {
    use step_change::Column;
    StepChange::find()
        .select_only()
        .columns([Column::UserId, Column::FromStep, Column::ToStep, Column::ChangedAt])
        .filter(Column::UserId.is_in(users))
        .filter(Column::ChangedAt.gte(from))
        .filter(Column::ChangedAt.lt(to))
        .into_model::<StepChangeRow>()
        .all(conn)
        .await
}

/// The key of a stored reflection, as `RETURNING` gives it.
#[derive(Debug, FromQueryResult)]
pub(super) struct StoredKey {
    pub user_id: Uuid,
    pub week_start: String,
}

/// A stored `week_start` that is not a week's Monday.
#[derive(Debug, thiserror::Error)]
#[error("stored week: {0}")]
pub(super) struct InvalidWeek(String);

impl StoredKey {
    pub(super) fn week(&self) -> Result<ReflectionWeek, DbErr> {
        ReflectionWeek::parse(&self.week_start)
            .map_err(|e| crate::db::conversion::<str, ReflectionWeek>(InvalidWeek(e)))
    }
}

/// `INSERT INTO reflections (…) VALUES (…), …` for `computed`, its notice due a
/// lease ahead when `announce`.
pub(super) fn insert_statement(
    conn: &impl ConnectionTrait,
    computed: &[(Uuid, ReflectionWeek, Reflection)],
    now: DateTime<Utc>,
    announce: bool,
) -> Result<RawSql, DbErr> {
    let announce_at = announce.then(|| (now + ANNOUNCE_LEASE).timestamp_millis());
    let now_ms = now.timestamp_millis();
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push("INSERT INTO reflections (user_id, week_start, body, created_at, updated_at, announce_at) VALUES ");
    for (i, (user_id, week, reflection)) in computed.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.tuple([
            Value::from(*user_id),
            Value::from(week.to_string()),
            Value::from(body_json(reflection)?),
            Value::from(now_ms),
            Value::from(now_ms),
            Value::from(announce_at),
        ]);
    }
    Ok(sql)
}

/// Moves up to `limit` due notices' `announce_at` to `lease_until` (ms) and
/// returns their keys.
pub(super) async fn take_over(
    conn: &impl ConnectionTrait,
    lease_until: i64,
    now_ms: i64,
    limit: u64,
) -> Result<Vec<StoredKey>, DbErr> {
    let mut sql = RawSql::new(conn.get_database_backend());
    sql.push("UPDATE reflections SET announce_at = ")
        .bind(lease_until)
        .push(
            " WHERE (user_id, week_start) IN (SELECT user_id, week_start FROM reflections \
             WHERE announce_at IS NOT NULL AND announce_at <= ",
        )
        .bind(now_ms)
        .push(" ORDER BY announce_at LIMIT ")
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        // A row another worker is taking over right now is skipped, not waited for.
        .lock_skipping_locked()
        .push(") RETURNING user_id, week_start");
    StoredKey::find_by_statement(sql.build()).all(conn).await
}
