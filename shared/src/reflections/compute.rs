//! Computing reflections set-based: whose week is due, one aggregate query per
//! batch of people for three weeks of check-ins (the week and the two before, for
//! the changes and the rising-distress rule), one query for their step changes,
//! and one multi-row insert.
//!
//! The aggregate groups check-ins by local day in each person's zone without
//! the database knowing zones (SQLite has none): three weeks contain at most one
//! daylight-saving change, so each person's window is passed as the UTC offset
//! before and after that change and the instant it happens, and the local day is
//! `(occurred_at + offset) / 86,400,000`.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use uuid::Uuid;

use super::sql::Sql;
use crate::{
    content::{Catalog, CountryResources},
    domain::{
        pacing::{DISTRESS_ANXIETY, DISTRESS_COMFORT},
        reflection::{Reflection, ReflectionWeek, StepChangeFact, WeekStats, reflect},
    },
};

/// People per aggregate query: 7 values each stays well under SQLite's 32,766
/// bound parameters, and one query reads about 40,000 check-ins at 20 a week.
pub const PEOPLE_PER_QUERY: usize = 2_000;
/// Enrolled people read per page when looking for due weeks.
const CANDIDATES_PER_PAGE: u64 = 8_000;

/// Someone enrolled whose reflection on `week` is to be computed.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub user_id: Uuid,
    pub tz: Tz,
    pub country: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub week: ReflectionWeek,
}

/// One page of enrolled, unpaused people after `after` (by id), with the latest
/// week they have a reflection for.
pub(super) struct EnrolledPerson {
    pub user_id: Uuid,
    pub tz: Tz,
    pub country: Option<String>,
    pub enrolled_at: DateTime<Utc>,
    pub latest: Option<String>,
}

#[tracing::instrument(skip_all)]
pub(super) async fn enrolled_page(
    conn: &impl ConnectionTrait,
    after: Option<Uuid>,
) -> Result<Vec<EnrolledPerson>, DbErr> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT e.user_id AS user_id, e.created_at AS enrolled_at, u.timezone AS timezone, u.country AS country, \
         (SELECT MAX(r.week_start) FROM reflections r WHERE r.user_id = e.user_id) AS latest \
         FROM enrollments e JOIN users u ON u.id = e.user_id \
         WHERE e.paused_at IS NULL AND u.deleted_at IS NULL",
    );
    if let Some(after) = after {
        sql.push(" AND e.user_id > ").bind(after);
    }
    sql.push(" ORDER BY e.user_id LIMIT ").bind(CANDIDATES_PER_PAGE as i64);
    let rows = conn.query_all_raw(sql.build()).await?;
    rows.iter()
        .map(|row| {
            let timezone: String = row.try_get("", "timezone")?;
            Ok(EnrolledPerson {
                user_id: row.try_get("", "user_id")?,
                tz: timezone.parse().unwrap_or(chrono_tz::UTC),
                country: row.try_get("", "country")?,
                enrolled_at: ms_to_time(row.try_get("", "enrolled_at")?),
                latest: row.try_get("", "latest")?,
            })
        })
        .collect()
}

pub(super) fn is_last_page(page: &[EnrolledPerson]) -> bool {
    (page.len() as u64) < CANDIDATES_PER_PAGE
}

/// Whether `person` was enrolled in time for `week` (before it fell due) and it
/// is over by `now`.
pub(super) fn eligible(person: &EnrolledPerson, week: ReflectionWeek, now: DateTime<Utc>) -> bool {
    let due = week.due_at(person.tz);
    person.enrolled_at < due && due <= now
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The three weeks the aggregate covers, oldest first: the week before last,
/// last week, and the reflected week.
const WEEKS: usize = 3;
const DAYS: usize = 7 * WEEKS;

/// Each candidate's reflection, computed with one aggregate query over their
/// check-ins and one query over their step changes.
#[tracing::instrument(skip_all, fields(people = candidates.len()))]
pub(super) async fn compute(
    conn: &impl ConnectionTrait,
    catalog: &Catalog,
    candidates: &[Candidate],
) -> Result<Vec<(Uuid, ReflectionWeek, Reflection)>, DbErr> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let windows: HashMap<Uuid, Window> = candidates.iter().map(|c| (c.user_id, Window::new(c.week, c.tz))).collect();
    // Per person: each week's sums, and a bit per local day with a check-in.
    let mut stats: HashMap<Uuid, ([WeekStats; WEEKS], [u8; WEEKS])> = HashMap::new();
    for row in aggregate(conn, &windows).await? {
        let bucket = DayBucket::read(&row)?;
        let Some(slot) = usize::try_from(bucket.slot).ok().filter(|s| *s < DAYS) else { continue };
        let (weeks, active) = stats.entry(bucket.user_id).or_default();
        add(&mut weeks[slot / 7], &mut active[slot / 7], slot % 7, &bucket, catalog);
    }
    for (weeks, _) in stats.values_mut() {
        weeks.iter_mut().for_each(finish);
    }
    let mut changes = step_changes(conn, &windows).await?;
    let empty: [WeekStats; WEEKS] = Default::default();
    Ok(candidates
        .iter()
        .map(|c| {
            let weeks = stats.get(&c.user_id).map_or(&empty, |(weeks, _)| weeks);
            let mut this = weeks[2].clone();
            let (start, end) = c.week.bounds(c.tz);
            this.step_changes = changes
                .remove(&c.user_id)
                .unwrap_or_default()
                .into_iter()
                .filter(|change| change.at >= start && change.at < end)
                .collect();
            // A week that ended before the person enrolled has nothing to compare with.
            let enrolled_by = |week: ReflectionWeek| week.bounds(c.tz).1 > c.enrolled_at;
            let previous = Some(&weeks[1]).filter(|_| enrolled_by(c.week.previous()));
            let before = Some(&weeks[0]).filter(|_| enrolled_by(c.week.previous().previous()));
            // Stored by reference to the country's list (see `reflections::parse`).
            let resources = CountryResources {
                country: catalog.resources_for(c.country.as_deref()).country.clone(),
                notice: None,
                entries: Vec::new(),
            };
            let reflection = reflect(c.week, &this, previous, before, &resources, seed(c.user_id, c.week));
            (c.user_id, c.week, reflection)
        })
        .collect())
}

/// Stable for the (person, week), so a recomputation picks the same prompt.
fn seed(user_id: Uuid, week: ReflectionWeek) -> u64 {
    let (high, low) = user_id.as_u64_pair();
    high ^ low.rotate_left(17) ^ week.start().to_string().bytes().fold(0_u64, |h, b| h.rotate_left(5) ^ u64::from(b))
}

const DAY_MS: i64 = 86_400_000;

/// One person's three local weeks, as the aggregate query needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// `[from, to)`: local midnight of the first Monday to that of the Monday after the week.
    from: i64,
    to: i64,
    /// The UTC offset in ms before `switch` and from it on; `switch` is `to` when
    /// the offset does not change within the window.
    switch: i64,
    offset_before: i64,
    offset_after: i64,
    /// The first local day, in days since 1970-01-01.
    first_day: i64,
}

impl Window {
    fn new(week: ReflectionWeek, tz: Tz) -> Self {
        let first = week.previous().previous();
        let (from, _) = first.bounds(tz);
        let (_, to) = week.bounds(tz);
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let offset_before = offset_ms(tz, from);
        let offset_after = offset_ms(tz, to - 1);
        // The first instant with the later offset.
        let (mut lo, mut hi) = (from, to);
        if offset_before != offset_after {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_ms(tz, mid) == offset_before { lo = mid } else { hi = mid }
            }
        }
        let first_day = (first.start() - DateTime::UNIX_EPOCH.date_naive()).num_days();
        Self { from, to, switch: hi, offset_before, offset_after, first_day }
    }

    /// The local day (0–20) of an instant in the window, as the query computes it.
    #[cfg(test)]
    fn slot(&self, at: i64) -> i64 {
        let offset = if at < self.switch { self.offset_before } else { self.offset_after };
        (at + offset) / DAY_MS - self.first_day
    }
}

fn offset_ms(tz: Tz, at_ms: i64) -> i64 {
    use chrono::Offset;
    let at = ms_to_time(at_ms).naive_utc();
    i64::from(tz.offset_from_utc_datetime(&at).fix().local_minus_utc()) * 1_000
}

/// One person's check-ins on one local day with one exercise (or none).
struct DayBucket {
    user_id: Uuid,
    slot: i64,
    exercise_id: Option<String>,
    count: i64,
    mood: i64,
    anxiety: i64,
    comfort: i64,
    distress: i64,
    completed: i64,
}

impl DayBucket {
    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            user_id: row.try_get("", "user_id")?,
            slot: row.try_get("", "slot")?,
            exercise_id: row.try_get("", "exercise_id")?,
            count: row.try_get("", "n")?,
            mood: row.try_get("", "mood")?,
            anxiety: row.try_get("", "anxiety")?,
            comfort: row.try_get("", "comfort")?,
            distress: row.try_get("", "distress")?,
            completed: row.try_get("", "completed")?,
        })
    }
}

/// Sums per local day: the averages are finished once every bucket is in.
fn add(week: &mut WeekStats, active: &mut u8, day: usize, bucket: &DayBucket, catalog: &Catalog) {
    let count = u32::try_from(bucket.count).unwrap_or(0);
    if count == 0 {
        return;
    }
    if *active & (1 << day) == 0 {
        *active |= 1 << day;
        week.active_days += 1;
    }
    week.checkin_count += count;
    week.distress_count += u32::try_from(bucket.distress).unwrap_or(0);
    for (sum, value) in [
        (&mut week.mood_avg, bucket.mood),
        (&mut week.anxiety_avg, bucket.anxiety),
        (&mut week.comfort_avg, bucket.comfort),
    ] {
        *sum = Some(sum.unwrap_or(0.0) + value as f64);
    }
    let completed = u32::try_from(bucket.completed).unwrap_or(0);
    let step = bucket.exercise_id.as_deref().and_then(|id| catalog.exercise(id)).map(|(step, _)| step.number);
    if let (Some(step), true) = (step, completed > 0) {
        week.exercises_completed.push((step, completed));
    }
}

/// Turns the sums into averages.
fn finish(week: &mut WeekStats) {
    let count = f64::from(week.checkin_count);
    for average in [&mut week.mood_avg, &mut week.anxiety_avg, &mut week.comfort_avg] {
        *average = average.filter(|_| count > 0.0).map(|sum| sum / count);
    }
}

/// Check-ins grouped by (person, local day, exercise) over the three weeks.
fn aggregate_query(conn: &impl ConnectionTrait, windows: &HashMap<Uuid, Window>) -> sea_orm::Statement {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push("WITH v (user_id, from_ms, to_ms, switch_ms, offset_before, offset_after, first_day) AS (VALUES ");
    for (n, (user_id, w)) in windows.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.tuple([
            Value::from(*user_id),
            Value::from(w.from),
            Value::from(w.to),
            Value::from(w.switch),
            Value::from(w.offset_before),
            Value::from(w.offset_after),
            Value::from(w.first_day),
        ]);
    }
    sql.push(
        ") SELECT v.user_id AS user_id, \
         (CASE WHEN c.occurred_at < v.switch_ms THEN c.occurred_at + v.offset_before \
         ELSE c.occurred_at + v.offset_after END) / ",
    )
    .bind(DAY_MS)
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
    sql.build()
}

/// The aggregate's rows.
#[tracing::instrument(skip_all)]
async fn aggregate(conn: &impl ConnectionTrait, windows: &HashMap<Uuid, Window>) -> Result<Vec<QueryResult>, DbErr> {
    conn.query_all_raw(aggregate_query(conn, windows)).await
}

/// Step changes of these people within the three weeks, per person.
#[tracing::instrument(skip_all)]
async fn step_changes(
    conn: &impl ConnectionTrait,
    windows: &HashMap<Uuid, Window>,
) -> Result<HashMap<Uuid, Vec<StepChangeFact>>, DbErr> {
    let from = windows.values().map(|w| w.from).min().unwrap_or_default();
    let to = windows.values().map(|w| w.to).max().unwrap_or_default();
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push("SELECT user_id, from_step, to_step, changed_at FROM step_changes WHERE user_id IN ")
        .tuple(windows.keys().map(|id| Value::from(*id)))
        .push(" AND changed_at >= ")
        .bind(from)
        .push(" AND changed_at < ")
        .bind(to);
    let mut changes: HashMap<Uuid, Vec<StepChangeFact>> = HashMap::new();
    for row in conn.query_all_raw(sql.build()).await? {
        let step = |column: &str| -> Result<u8, DbErr> {
            let value: i64 = row.try_get("", column)?;
            u8::try_from(value).map_err(|_| DbErr::Custom(format!("step_changes.{column} out of range: {value}")))
        };
        let change = StepChangeFact {
            from: step("from_step")?,
            to: step("to_step")?,
            at: ms_to_time(row.try_get("", "changed_at")?),
        };
        changes.entry(row.try_get("", "user_id")?).or_default().push(change);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate};

    use super::*;

    /// For every quarter hour of three weeks, the query's local day is the day
    /// the zone's calendar shows, across daylight-saving changes both ways.
    #[test]
    fn local_days_match_the_calendar_across_daylight_saving_changes() {
        let zones = [
            chrono_tz::America::New_York,
            chrono_tz::Europe::Berlin,
            chrono_tz::Pacific::Auckland,
            chrono_tz::America::Los_Angeles,
            chrono_tz::America::Santiago,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
            chrono_tz::UTC,
        ];
        let weeks = ["2026-03-09", "2026-03-16", "2026-04-06", "2026-10-05", "2026-11-02", "2026-11-16"];
        for tz in zones {
            for monday in weeks {
                let week = ReflectionWeek::parse(monday).unwrap();
                let window = Window::new(week, tz);
                let first = week.previous().previous().start();
                let mut at = window.from;
                while at < window.to {
                    let local: NaiveDate = ms_to_time(at).with_timezone(&tz).date_naive();
                    let expected = (local - first).num_days();
                    assert_eq!(window.slot(at), expected, "{tz} week {monday} at {}", ms_to_time(at));
                    assert!((0..21).contains(&expected));
                    at += Duration::minutes(15).num_milliseconds();
                }
                assert_eq!(window.slot(window.to - 1), 20, "{tz} {monday}");
            }
        }
    }

    #[test]
    fn the_window_finds_the_change_to_the_millisecond() {
        let tz = chrono_tz::America::New_York;
        // Clocks went back at 2026-11-01 02:00 EDT = 06:00 UTC.
        let window = Window::new(ReflectionWeek::parse("2026-11-09").unwrap(), tz);
        assert_eq!(window.switch, DateTime::parse_from_rfc3339("2026-11-01T06:00:00Z").unwrap().timestamp_millis());
        assert_eq!((window.offset_before, window.offset_after), (-4 * 3_600_000, -5 * 3_600_000));
        let steady = Window::new(ReflectionWeek::parse("2026-12-14").unwrap(), tz);
        assert_eq!((steady.switch, steady.offset_before), (steady.to, steady.offset_after));
    }
}
