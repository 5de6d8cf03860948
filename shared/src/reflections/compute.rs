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
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::sql::{self, DayBucket};
use crate::{
    content::{Catalog, CountryResources},
    domain::reflection::{Reflection, ReflectionWeek, StepChangeFact, WeekStats, reflect},
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
    let rows = sql::enrolled_page(conn, after, CANDIDATES_PER_PAGE).await?;
    Ok(rows
        .into_iter()
        .map(|row| EnrolledPerson {
            user_id: row.user_id,
            tz: row.timezone.parse().unwrap_or(chrono_tz::UTC),
            country: row.country,
            enrolled_at: ms_to_time(row.enrolled_at),
            latest: row.latest,
        })
        .collect())
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
    for bucket in sql::aggregate(conn, windows.iter().map(|(id, w)| (*id, w.values())), DAY_MS).await? {
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
    /// The values the aggregate binds for this window, in its `VALUES` order.
    fn values(&self) -> [i64; 6] {
        [self.from, self.to, self.switch, self.offset_before, self.offset_after, self.first_day]
    }

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

/// Step changes of these people within the three weeks, per person.
#[tracing::instrument(skip_all)]
async fn step_changes(
    conn: &impl ConnectionTrait,
    windows: &HashMap<Uuid, Window>,
) -> Result<HashMap<Uuid, Vec<StepChangeFact>>, DbErr> {
    let from = windows.values().map(|w| w.from).min().unwrap_or_default();
    let to = windows.values().map(|w| w.to).max().unwrap_or_default();
    let mut changes: HashMap<Uuid, Vec<StepChangeFact>> = HashMap::new();
    for row in sql::step_changes(conn, windows.keys().copied(), from, to).await? {
        let step = |value: i64| u8::try_from(value).map_err(crate::db::conversion::<i64, u8>);
        let change =
            StepChangeFact { from: step(row.from_step)?, to: step(row.to_step)?, at: ms_to_time(row.changed_at) };
        changes.entry(row.user_id).or_default().push(change);
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
