//! The weekly reflection: one person's week in numbers, one prompt, and a gentle
//! focus for the week ahead. The database aggregates the weeks set-based; this
//! turns one person's aggregates into their reflection.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::pacing::local_midnight;
use super::reminders::{pick, resolve_local};
use crate::content::{CountryResources, Resource};

/// A week's reflection falls due at this local time on its Sunday.
pub const DUE_TIME: NaiveTime = match NaiveTime::from_hms_opt(18, 0, 0) {
    Some(time) => time,
    None => NaiveTime::MIN,
};
/// An anxiety average (0–10) at least this much above the week before is a notable rise.
pub const NOTABLE_ANXIETY_RISE: f64 = 1.0;
/// A comfort average (1–5) at least this much below the week before is a notable fall.
pub const NOTABLE_COMFORT_FALL: f64 = 0.5;

/// One person's aggregates for one local week (Monday to Sunday).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeekStats {
    pub checkin_count: u32,
    /// Local days with at least one check-in.
    pub active_days: u32,
    pub mood_avg: Option<f64>,
    pub anxiety_avg: Option<f64>,
    pub comfort_avg: Option<f64>,
    /// Check-ins with a distress signal (see `pacing::CheckinFact::is_distress`).
    pub distress_count: u32,
    /// Completed exercises per step: (step, count).
    pub exercises_completed: Vec<(u8, u32)>,
    pub step_changes: Vec<StepChangeFact>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChangeFact {
    pub from: u8,
    pub to: u8,
    pub at: DateTime<Utc>,
}

/// A local week, Monday to Sunday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReflectionWeek {
    start: NaiveDate,
}

impl ReflectionWeek {
    /// The week a local date belongs to.
    pub fn for_local_date(date: NaiveDate) -> Self {
        Self { start: date - Duration::days(i64::from(date.weekday().num_days_from_monday())) }
    }

    /// The week `now` falls in, in the person's zone.
    pub fn containing(now: DateTime<Utc>, tz: Tz) -> Self {
        Self::for_local_date(now.with_timezone(&tz).date_naive())
    }

    /// A week named by its Monday ("2026-11-16"), as in URLs and the operators' CLI.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| format!("\"{raw}\" is not a date; use YYYY-MM-DD, like 2026-11-16"))?;
        let week = Self::for_local_date(date);
        if week.start == date { Ok(week) } else { Err(format!("must be a Monday; that week starts on {}", week.start)) }
    }

    /// The Monday.
    pub fn start(self) -> NaiveDate {
        self.start
    }

    /// The Sunday.
    pub fn end(self) -> NaiveDate {
        self.start + Duration::days(6)
    }

    pub fn previous(self) -> Self {
        Self { start: self.start - Duration::days(7) }
    }

    pub fn next(self) -> Self {
        Self { start: self.start + Duration::days(7) }
    }

    /// The week as UTC instants `[Monday 00:00, next Monday 00:00)` local, for
    /// the aggregate queries; 167 or 169 hours long across a daylight-saving change.
    pub fn bounds(self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (local_midnight(self.start, tz), local_midnight(self.next().start, tz))
    }

    /// Sunday 18:00 local, when the week's reflection is due. Should a zone ever
    /// skip 18:00, the first valid time after it.
    pub fn due_at(self, tz: Tz) -> DateTime<Utc> {
        let local = self.end().and_time(DUE_TIME);
        resolve_local(local, tz).unwrap_or_else(|| Utc.from_utc_datetime(&local))
    }

    /// The most recent week whose reflection is due by `now`: this week from
    /// Sunday 18:00 local, the week before until then.
    pub fn last_due_week(now: DateTime<Utc>, tz: Tz) -> Self {
        let week = Self::containing(now, tz);
        if week.due_at(tz) <= now { week } else { week.previous() }
    }
}

impl fmt::Display for ReflectionWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.start.fmt(f)
    }
}

/// A week's reflection, as stored and as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reflection {
    pub week_start: NaiveDate,
    pub week_end: NaiveDate,
    pub checkin_count: u32,
    pub active_days: u32,
    pub averages: Averages,
    /// This week's averages minus the week before's; `null` unless both weeks had check-ins.
    pub changes: Option<Averages>,
    pub exercises_completed: Vec<ExerciseCount>,
    pub step_changes: Vec<StepChange>,
    pub prompt: String,
    pub focus: Focus,
}

/// Mood (1–5), anxiety (0–10) and comfort (1–5), to one decimal; `null` without check-ins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Averages {
    pub mood: Option<f64>,
    pub anxiety: Option<f64>,
    pub comfort: Option<f64>,
}

impl Averages {
    fn of(stats: &WeekStats) -> Self {
        let rounded = |value: Option<f64>| value.filter(|_| stats.checkin_count > 0).map(round1);
        Self { mood: rounded(stats.mood_avg), anxiety: rounded(stats.anxiety_avg), comfort: rounded(stats.comfort_avg) }
    }

    /// The change from `earlier`, computed from the rounded figures so it matches
    /// what both reflections show.
    fn minus(self, earlier: Self) -> Self {
        let delta = |now: Option<f64>, then: Option<f64>| Some(round1(now? - then?));
        Self {
            mood: delta(self.mood, earlier.mood),
            anxiety: delta(self.anxiety, earlier.anxiety),
            comfort: delta(self.comfort, earlier.comfort),
        }
    }
}

/// Rounds to one decimal, half away from zero, without a negative zero.
fn round1(value: f64) -> f64 {
    tenths(value) as f64 / 10.0
}

fn tenths(value: f64) -> i64 {
    (value * 10.0).round() as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExerciseCount {
    pub step: u8,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepChange {
    pub from: u8,
    pub to: u8,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FocusKind {
    /// The week went well enough: carry on as you are.
    KeepPace,
    /// Distress this week, or a notably harder week than the last: go gentler.
    SlowDown,
    /// Distress rising two weeks running: consider professional support.
    SeekSupport,
}

/// The suggestion for the week ahead.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Focus {
    pub kind: FocusKind,
    pub message: String,
    /// Professional-help resources for the person's country: with `seek_support`,
    /// and with `slow_down` when the week had a distress signal; else `null`.
    pub resources: Option<CountryResources>,
}

// `CountryResources` is only `Serialize`; a stored reflection reads back through
// this mirror of it.
impl<'de> Deserialize<'de> for Focus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct StoredFocus {
            kind: FocusKind,
            message: String,
            resources: Option<StoredResources>,
        }
        #[derive(Deserialize)]
        struct StoredResources {
            country: Option<String>,
            notice: Option<String>,
            entries: Vec<Resource>,
        }
        let stored = StoredFocus::deserialize(deserializer)?;
        Ok(Self {
            kind: stored.kind,
            message: stored.message,
            resources: stored.resources.map(|r| CountryResources {
                country: r.country,
                notice: r.notice,
                entries: r.entries,
            }),
        })
    }
}

const PROMPTS: [&str; 8] = [
    "What is one moment this week when you felt at ease?",
    "What helped you feel safe or settled this week?",
    "Did you notice anything about yourself this week that surprised you?",
    "What would you like a little more of next week, and what a little less?",
    "How did you look after yourself when things felt hard?",
    "What is something kind you could say to yourself about this week?",
    "Which moment from this week would you like to remember?",
    "What does going at your own pace mean to you right now?",
];

const SEEK_SUPPORT: &str = "The past two weeks seem to have felt harder, one after the other. That matters, and you \
                            don't have to carry it alone: talking with a professional can really help, and reaching \
                            out is a strong step, never a failure. Everything here will wait for you.";
const SLOW_DOWN_AFTER_DISTRESS: &str = "Some moments this week felt hard. It's completely fine to slow down: stay \
                                        with gentler exercises, or simply rest, for as long as you need. If talking \
                                        to someone would help, support is here too.";
const SLOW_DOWN: &str = "This week seemed a little harder than the one before. Going slower is part of the work: \
                         gentler exercises, more time where you are, and plenty of rest.";
const KEEP_PACE: &str = "This week seems to have gone at a pace that suits you. Keep going as you are, and keep \
                         noticing what feels good.";
const QUIET_WEEK: &str = "A quiet week, and that's okay. Quiet weeks are part of it too; whenever you feel like it, \
                          the next exercise will be here for you.";

/// The reflection on `week` from its aggregates and those of the two weeks
/// before (`None` when the person was not enrolled yet). `seed` picks the
/// prompt; anything stable for the (person, week) keeps a recomputation identical.
///
/// The focus:
/// - `seek_support` after two weeks of rising distress ([`rising_distress`]),
///   with `resources`;
/// - `slow_down` when this week had a distress signal (with `resources`), or,
///   against the week before, the anxiety average rose by at least
///   [`NOTABLE_ANXIETY_RISE`] or the comfort average fell by at least
///   [`NOTABLE_COMFORT_FALL`] (compared as shown, to one decimal);
/// - else `keep_pace`, kindly noting a week without check-ins as a quiet week.
pub fn reflect(
    week: ReflectionWeek,
    this: &WeekStats,
    previous: Option<&WeekStats>,
    before: Option<&WeekStats>,
    resources: &CountryResources,
    seed: u64,
) -> Reflection {
    let averages = Averages::of(this);
    let changes = previous
        .filter(|previous| previous.checkin_count > 0 && this.checkin_count > 0)
        .map(|previous| averages.minus(Averages::of(previous)));
    let mut exercises = BTreeMap::<u8, u32>::new();
    for (step, count) in &this.exercises_completed {
        *exercises.entry(*step).or_default() += count;
    }
    let mut step_changes: Vec<StepChange> =
        this.step_changes.iter().map(|c| StepChange { from: c.from, to: c.to, at: c.at }).collect();
    step_changes.sort_by_key(|change| change.at);
    Reflection {
        week_start: week.start(),
        week_end: week.end(),
        checkin_count: this.checkin_count,
        active_days: this.active_days,
        averages,
        changes,
        exercises_completed: exercises
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(step, count)| ExerciseCount { step, count })
            .collect(),
        step_changes,
        prompt: PROMPTS[pick(seed, PROMPTS.len())].to_owned(),
        focus: focus(this, previous, before, resources),
    }
}

fn focus(
    this: &WeekStats,
    previous: Option<&WeekStats>,
    before: Option<&WeekStats>,
    resources: &CountryResources,
) -> Focus {
    let (kind, message, resources) = if rising_distress(this, previous, before) {
        (FocusKind::SeekSupport, SEEK_SUPPORT, Some(resources.clone()))
    } else if this.distress_count > 0 {
        (FocusKind::SlowDown, SLOW_DOWN_AFTER_DISTRESS, Some(resources.clone()))
    } else if previous.is_some_and(|previous| notably_harder(previous, this)) {
        (FocusKind::SlowDown, SLOW_DOWN, None)
    } else if this.checkin_count == 0 {
        (FocusKind::KeepPace, QUIET_WEEK, None)
    } else {
        (FocusKind::KeepPace, KEEP_PACE, None)
    };
    Focus { kind, message: message.to_owned(), resources }
}

/// Rising distress over two weeks: this week had at least one distress signal,
/// and each of the last two weeks was harder than the one before it
/// ([`harder`]). It needs all three weeks; a week without check-ins in the middle
/// is not harder than anything, so it breaks the run.
pub fn rising_distress(this: &WeekStats, previous: Option<&WeekStats>, before: Option<&WeekStats>) -> bool {
    let (Some(previous), Some(before)) = (previous, before) else {
        return false;
    };
    this.distress_count > 0 && harder(before, previous) && harder(previous, this)
}

/// Whether `later` was harder than `earlier`: more distress signals, or a
/// notably higher anxiety or lower comfort average ([`notably_harder`]).
pub fn harder(earlier: &WeekStats, later: &WeekStats) -> bool {
    later.distress_count > earlier.distress_count || notably_harder(earlier, later)
}

/// Anxiety up by at least [`NOTABLE_ANXIETY_RISE`] or comfort down by at least
/// [`NOTABLE_COMFORT_FALL`], comparing the one-decimal averages; both weeks need
/// check-ins.
pub fn notably_harder(earlier: &WeekStats, later: &WeekStats) -> bool {
    let (then, now) = (Averages::of(earlier), Averages::of(later));
    let rise = |now: Option<f64>, then: Option<f64>| Some(tenths(now?) - tenths(then?));
    rise(now.anxiety, then.anxiety).is_some_and(|up| up >= tenths(NOTABLE_ANXIETY_RISE))
        || rise(then.comfort, now.comfort).is_some_and(|down| down >= tenths(NOTABLE_COMFORT_FALL))
}

/// The discreet push announcing a new reflection: title and body.
pub fn reflection_notice() -> (&'static str, &'static str) {
    ("A moment to look back", "A short look at your week is ready whenever you'd like it.")
}

#[cfg(test)]
#[path = "reflection_tests.rs"]
mod tests;
