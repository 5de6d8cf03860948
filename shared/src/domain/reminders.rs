//! Reminder settings and when the next reminder falls: at the person's pace, on
//! their chosen days, inside their window and outside quiet hours, in their zone.
//!
//! Pure rules over plain data; `after` and the zone are passed in. The worker keeps
//! one next slot per person and calls [`next_slot`] again after each delivery.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use super::pacing::{Pace, local_midnight};
use super::validation::ValidationErrors;

const MINUTES_PER_DAY: u16 = 24 * 60;
const WEEK: Duration = Duration::days(7);

/// A day of the week, named as the settings name it ("mon" … "sun").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [Self::Mon, Self::Tue, Self::Wed, Self::Thu, Self::Fri, Self::Sat, Self::Sun];

    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|day| day.as_str() == name)
            .ok_or_else(|| format!("\"{raw}\" is not a day; use mon, tue, wed, thu, fri, sat or sun"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Tue => "tue",
            Self::Wed => "wed",
            Self::Thu => "thu",
            Self::Fri => "fri",
            Self::Sat => "sat",
            Self::Sun => "sun",
        }
    }

    /// The weekday of a local date.
    pub fn of(date: NaiveDate) -> Self {
        Self::from(date.weekday())
    }

    /// Days since Monday.
    fn index(self) -> u32 {
        self as u32
    }
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        Self::ALL[day.num_days_from_monday() as usize]
    }
}

/// A local wall-clock time to the minute, written "19:00".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ToSchema)]
#[schema(value_type = String, example = "19:00")]
pub struct LocalTime(u16);

impl LocalTime {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = || format!("\"{raw}\" is not a time; use HH:MM from 00:00 to 23:59, like 19:00");
        let (hours, minutes) = raw.split_once(':').ok_or_else(invalid)?;
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return Err(invalid());
        }
        let (hours, minutes) = (hours.parse().map_err(|_| invalid())?, minutes.parse().map_err(|_| invalid())?);
        Self::from_hm(hours, minutes).ok_or_else(invalid)
    }

    pub fn from_hm(hour: u16, minute: u16) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(Self(hour * 60 + minute))
    }

    pub fn minutes_since_midnight(self) -> u16 {
        self.0
    }

    fn of(time: NaiveTime) -> Self {
        // Hours and minutes of a NaiveTime are always in range.
        Self((time.hour() * 60 + time.minute()) as u16)
    }

    fn naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(u32::from(self.0 / 60), u32::from(self.0 % 60), 0).unwrap_or(NaiveTime::MIN)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The daily window reminders may fall in: `[start, end)` within one local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct TimeWindow {
    start: LocalTime,
    end: LocalTime,
}

impl TimeWindow {
    pub fn new(start: LocalTime, end: LocalTime) -> Result<Self, String> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(format!("must be later than the start ({start}); the window cannot cross midnight"))
        }
    }

    pub fn start(self) -> LocalTime {
        self.start
    }

    pub fn end(self) -> LocalTime {
        self.end
    }
}

/// No reminders from `start` until `end`; may span midnight (22:00–07:00).
/// `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuietHours {
    pub start: LocalTime,
    pub end: LocalTime,
}

impl QuietHours {
    pub const NONE: Self = Self { start: LocalTime(0), end: LocalTime(0) };

    pub fn contains(self, time: LocalTime) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start <= time && time < self.end,
            std::cmp::Ordering::Greater => time >= self.start || time < self.end,
            std::cmp::Ordering::Equal => false,
        }
    }

    /// The quiet minutes of a day as half-open ranges.
    fn ranges(self) -> Vec<(u16, u16)> {
        let (start, end) = (self.start.0, self.end.0);
        match start.cmp(&end) {
            std::cmp::Ordering::Less => vec![(start, end)],
            std::cmp::Ordering::Greater => vec![(0, end), (start, MINUTES_PER_DAY)],
            std::cmp::Ordering::Equal => Vec::new(),
        }
    }
}

/// A person's reminder settings. Deserializing validates (see [`ReminderSettings::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "ReminderSettingsInput")]
pub struct ReminderSettings {
    pub enabled: bool,
    #[schema(value_type = Vec<Weekday>)]
    pub days: BTreeSet<Weekday>,
    pub window: TimeWindow,
    pub quiet_hours: QuietHours,
    /// Whether reminder texts may name today's exercise; discreet by default.
    /// This, not the account's `descriptive_notifications`, governs reminders.
    pub descriptive: bool,
    /// No reminders before this instant (RFC 3339), or `null`.
    pub paused_until: Option<DateTime<Utc>>,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            days: BTreeSet::from([Weekday::Mon, Weekday::Wed, Weekday::Fri]),
            window: TimeWindow { start: LocalTime(19 * 60), end: LocalTime(21 * 60) },
            quiet_hours: QuietHours { start: LocalTime(22 * 60), end: LocalTime(7 * 60) },
            descriptive: false,
            paused_until: None,
        }
    }
}

/// The settings as a client sends them, before validation. Every field is
/// optional here so a missing one is reported by name rather than as a parse error.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ReminderSettingsInput {
    pub enabled: Option<bool>,
    pub days: Option<Vec<String>>,
    pub window: Option<TimeRangeInput>,
    pub quiet_hours: Option<TimeRangeInput>,
    /// Defaults to `false` (discreet).
    pub descriptive: Option<bool>,
    /// RFC 3339, or `null`/absent for not paused.
    pub paused_until: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct TimeRangeInput {
    pub start: Option<String>,
    pub end: Option<String>,
}

impl ReminderSettings {
    /// Checks every field and names each problem: `enabled`, `days`,
    /// `window.start`, `window.end`, `quiet_hours.start`, `quiet_hours.end`,
    /// `paused_until`, and `window` when it lies entirely within quiet hours.
    pub fn parse(input: ReminderSettingsInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let enabled = errors.check("enabled", input.enabled.ok_or_else(required));
        let days = errors.check("days", parse_days(input.days));
        let window = parse_range(&mut errors, "window", input.window);
        let window = window.and_then(|(start, end)| errors.check("window.end", TimeWindow::new(start, end)));
        let quiet_hours =
            parse_range(&mut errors, "quiet_hours", input.quiet_hours).map(|(start, end)| QuietHours { start, end });
        let paused_until = errors.check("paused_until", parse_instant(input.paused_until.as_deref()));
        if let (Some(window), Some(quiet_hours)) = (window, quiet_hours)
            && allowed_ranges(window, quiet_hours).is_empty()
        {
            errors.add("window", "lies entirely within quiet hours, so no reminder could ever be sent");
        }
        match (enabled, days, window, quiet_hours, paused_until) {
            (Some(enabled), Some(days), Some(window), Some(quiet_hours), Some(paused_until)) if errors.is_empty() => {
                let descriptive = input.descriptive.unwrap_or(false);
                Ok(Self { enabled, days, window, quiet_hours, descriptive, paused_until })
            }
            _ => Err(errors),
        }
    }
}

impl TryFrom<ReminderSettingsInput> for ReminderSettings {
    type Error = ValidationErrors;

    fn try_from(input: ReminderSettingsInput) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

fn required() -> String {
    "is required".into()
}

fn parse_days(raw: Option<Vec<String>>) -> Result<BTreeSet<Weekday>, String> {
    let raw = raw.ok_or_else(required)?;
    let days = raw.iter().map(|day| Weekday::parse(day)).collect::<Result<BTreeSet<_>, _>>()?;
    if days.is_empty() {
        return Err("choose at least one day".into());
    }
    Ok(days)
}

fn parse_range(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<TimeRangeInput>,
) -> Option<(LocalTime, LocalTime)> {
    let Some(raw) = raw else {
        errors.add(field, required());
        return None;
    };
    let mut time = |part: &str, value: Option<String>| {
        errors.check(&format!("{field}.{part}"), value.ok_or_else(required).and_then(|v| LocalTime::parse(&v)))
    };
    let start = time("start", raw.start);
    let end = time("end", raw.end);
    Some((start?, end?))
}

fn parse_instant(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|instant| instant.with_timezone(&Utc))
            .map_err(|_| "must be an RFC 3339 date-time like 2026-11-20T09:00:00Z, or null".to_owned())
    })
    .transpose()
}

/// The window minus quiet hours, as half-open minute ranges in order.
fn allowed_ranges(window: TimeWindow, quiet_hours: QuietHours) -> Vec<(u16, u16)> {
    let mut allowed = vec![(window.start.0, window.end.0)];
    for (quiet_start, quiet_end) in quiet_hours.ranges() {
        allowed = allowed
            .into_iter()
            .flat_map(|(start, end)| [(start, end.min(quiet_start)), (start.max(quiet_end), end)])
            .filter(|(start, end)| start < end)
            .collect();
    }
    allowed.sort_unstable();
    allowed
}

/// How many reminders in a row went unanswered. A check-in (or opening a
/// reminder) resets it to [`Spacing::NORMAL`]; the caller keeps the count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Spacing {
    pub unanswered: u32,
}

impl Spacing {
    pub const NORMAL: Self = Self { unanswered: 0 };

    /// The spacing once one more reminder has gone unanswered.
    pub fn after_unanswered(self) -> Self {
        Self { unanswered: self.unanswered.saturating_add(1) }
    }
}

/// The normal gap between reminders at a pace: a week shared by its sessions.
pub fn base_gap(pace: Pace) -> Duration {
    WEEK / pace.sessions_per_week() as i32
}

/// The least time between reminders after `unanswered` reminders in a row went
/// unanswered: the base gap doubled each time, but never more than a week, so a
/// reminder still comes at least weekly. Zero when nothing went unanswered.
pub fn backoff_gap(pace: Pace, unanswered: u32) -> Duration {
    if unanswered == 0 {
        return Duration::zero();
    }
    // 2^3 already exceeds the week at every pace; the cap keeps the shift small.
    (base_gap(pace) * (1 << unanswered.min(8))).min(WEEK)
}

/// The days of each week reminders fall on: all chosen days when there are no
/// more than the pace's sessions a week, else that many of them spread as evenly
/// over the week as possible (the smallest sum of squared gaps between them,
/// counting the gap from the last day round to next week's first; then no two
/// short gaps side by side; then the earliest days). Seven chosen days give Mon,
/// Thu (gentle); Mon, Wed, Fri (steady); Mon, Tue, Wed, Fri, Sat (committed).
pub fn spread_days(days: &BTreeSet<Weekday>, pace: Pace) -> BTreeSet<Weekday> {
    let chosen: Vec<Weekday> = days.iter().copied().collect();
    let wanted = pace.sessions_per_week() as usize;
    if chosen.len() <= wanted {
        return days.clone();
    }
    // At most 35 subsets of the right size (C(7, 3)): trying them all is simplest and exact.
    let mut best: Option<((u32, u32), Vec<Weekday>)> = None;
    for mask in 0u32..(1 << chosen.len()) {
        if mask.count_ones() as usize != wanted {
            continue;
        }
        let picked: Vec<Weekday> =
            chosen.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, day)| *day).collect();
        let candidate = (unevenness(&picked), picked);
        if best.as_ref().is_none_or(|current| candidate < *current) {
            best = Some(candidate);
        }
    }
    best.map(|(_, picked)| picked.into_iter().collect()).unwrap_or_default()
}

/// (sum of squared gaps, largest sum of two neighbouring gaps): lower is more even.
fn unevenness(picked: &[Weekday]) -> (u32, u32) {
    let n = picked.len();
    let gaps: Vec<u32> = (0..n).map(|i| (picked[(i + 1) % n].index() + 7 - picked[i].index() - 1) % 7 + 1).collect();
    let squares = gaps.iter().map(|gap| gap * gap).sum();
    let neighbours = (0..n).map(|i| gaps[i] + gaps[(i + 1) % n]).max().unwrap_or(0);
    (squares, neighbours)
}

/// The next reminder strictly after `after`, or `None` when reminders are off
/// (disabled, or no day or time could ever qualify).
///
/// - Only on the days of [`spread_days`], at most one a local day.
/// - At the start of the window's first part outside quiet hours (window
///   21:00–23:30 with quiet hours 22:00–07:00 → 21:00).
/// - A time the clocks skip moves to the first valid time after it (02:30 on a
///   spring-forward night → 03:00, the instant the clock jumps), unless that lands
///   in quiet hours, when the next part of the window is tried, then the next day.
///   A repeated time (clocks going back) fires once, at its first occurrence.
/// - Not before `paused_until`: the first slot at or after it.
/// - Back-off: with `spacing.unanswered = n > 0`, the first slot at or after
///   `after + backoff_gap(pace, n)`. The gap is measured on the local wall clock,
///   so a daylight-saving change never stretches the weekly cap beyond a week.
///
/// Feeding each result back as `after` gives strictly increasing slots on
/// distinct local days. When recomputing after a change of settings, pace or
/// zone, pass [`recompute_after`] as `after`.
pub fn next_slot(
    settings: &ReminderSettings,
    pace: Pace,
    tz: Tz,
    after: DateTime<Utc>,
    spacing: Spacing,
) -> Option<DateTime<Utc>> {
    if !settings.enabled {
        return None;
    }
    let days = spread_days(&settings.days, pace);
    let ranges = allowed_ranges(settings.window, settings.quiet_hours);
    if days.is_empty() || ranges.is_empty() {
        return None;
    }
    let after_local = after.with_timezone(&tz).naive_local();
    let not_before_local = after_local + backoff_gap(pace, spacing.unanswered);
    let paused_until = settings.paused_until.filter(|until| *until > after);
    let first_date = paused_until
        .map_or(not_before_local.date(), |until| until.with_timezone(&tz).date_naive().max(not_before_local.date()));
    // A chosen weekday comes round within a week; the second week covers a day
    // lost to a daylight-saving change.
    (0..15)
        .map(|offset| first_date + Duration::days(offset))
        .filter(|date| days.contains(&Weekday::of(*date)))
        .find_map(|date| {
            let slot = slot_on(date, &ranges, settings.quiet_hours, tz)?;
            let local = slot.with_timezone(&tz).naive_local();
            let due = slot > after
                && (spacing.unanswered == 0 || local >= not_before_local)
                && paused_until.is_none_or(|until| slot >= until);
            due.then_some(slot)
        })
}

/// The one reminder instant of a local date, if any.
fn slot_on(date: NaiveDate, ranges: &[(u16, u16)], quiet_hours: QuietHours, tz: Tz) -> Option<DateTime<Utc>> {
    ranges.iter().find_map(|(start, _)| {
        let slot = resolve_local(date.and_time(LocalTime(*start).naive()), tz)?;
        let local = slot.with_timezone(&tz).naive_local();
        (local.date() == date && !quiet_hours.contains(LocalTime::of(local.time()))).then_some(slot)
    })
}

/// The instant a local wall-clock time names: the first of a repeated time, or,
/// for a time the clocks skip, the first valid time after it (the instant of the
/// jump). `None` only if nothing is valid within a day after it.
pub(crate) fn resolve_local(local: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    // Skipped stretches are an hour or less in practice, a whole day at most.
    (0..=i64::from(MINUTES_PER_DAY)).find_map(|minutes| {
        let candidate = local.checked_add_signed(Duration::minutes(minutes))?;
        tz.from_local_datetime(&candidate).earliest().map(|instant| instant.with_timezone(&Utc))
    })
}

/// The `after` to pass to [`next_slot`] when settings, pace or zone change: now,
/// but past the local day of the last reminder sent, so that moving the window
/// later in the day cannot bring a second reminder on the same day.
pub fn recompute_after(now: DateTime<Utc>, last_sent: Option<DateTime<Utc>>, tz: Tz) -> DateTime<Utc> {
    let Some(last_sent) = last_sent else {
        return now;
    };
    let next_day = last_sent.with_timezone(&tz).date_naive() + Duration::days(1);
    now.max(local_midnight(next_day, tz) - Duration::nanoseconds(1))
}

/// Discreet texts: nothing about the program's subject, safe on a lock screen.
const DISCREET: [(&str, &str); 5] = [
    ("A quiet moment for you", "Whenever you're ready, there's something gentle waiting."),
    ("A little time for yourself", "If today has room for a few calm minutes, they're here for you."),
    ("Something gentle for today", "No rush at all. Open the app whenever it suits you."),
    ("A pause, if you'd like one", "A few minutes just for you, at your own pace."),
    ("Just saying hello", "However today is going, you're welcome to take a moment for yourself."),
];

/// Descriptive texts; `{}` is today's suggested exercise.
const DESCRIPTIVE: [(&str, &str); 5] = [
    ("Today's suggestion: {}", "Whenever you're ready, \"{}\" is waiting. Take it at your own pace."),
    ("A gentle moment: {}", "If it feels right today, try \"{}\". Stopping whenever you like is always fine."),
    ("Something for you today", "\"{}\" is there when you want it. No rush."),
    ("When you have a few minutes", "Today's suggestion is \"{}\". Go as gently as you like."),
    ("A little time for yourself", "\"{}\" is ready whenever you are, and it's fine to take it slowly."),
];

/// A reminder's title and body, chosen by `seed` (say, the slot's timestamp) from
/// a few kind phrasings. Discreet unless the person asked for descriptive texts
/// and there is a suggestion to name. Never guilt: no "missed", no streaks.
pub fn reminder_text(descriptive: bool, suggestion_title: Option<&str>, seed: u64) -> (String, String) {
    match suggestion_title.filter(|_| descriptive) {
        Some(title) => {
            let (head, body) = DESCRIPTIVE[pick(seed, DESCRIPTIVE.len())];
            (head.replace("{}", title), body.replace("{}", title))
        }
        None => {
            let (head, body) = DISCREET[pick(seed, DISCREET.len())];
            (head.to_owned(), body.to_owned())
        }
    }
}

/// An index in `0..len` from a seed, mixed (splitmix64) so that seeds with a
/// common factor, such as timestamps of whole minutes, still vary.
pub(crate) fn pick(seed: u64, len: usize) -> usize {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % len.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use chrono_tz::{America, Europe, Pacific};
    use serde_json::json;

    use super::*;
    use crate::domain::pacing::week_of;

    use super::Weekday::{Fri, Mon, Sat, Sun, Thu, Tue, Wed};

    const PACES: [Pace; 3] = [Pace::Gentle, Pace::Steady, Pace::Committed];

    fn time(raw: &str) -> LocalTime {
        LocalTime::parse(raw).unwrap()
    }

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0).earliest().unwrap().with_timezone(&Utc)
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
    }

    fn settings(days: &[Weekday], window: (&str, &str), quiet: (&str, &str)) -> ReminderSettings {
        ReminderSettings {
            days: days.iter().copied().collect(),
            window: TimeWindow::new(time(window.0), time(window.1)).unwrap(),
            quiet_hours: QuietHours { start: time(quiet.0), end: time(quiet.1) },
            ..ReminderSettings::default()
        }
    }

    fn slots(settings: &ReminderSettings, pace: Pace, tz: Tz, from: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(next_slot(settings, pace, tz, from, Spacing::NORMAL), |last| {
            next_slot(settings, pace, tz, *last, Spacing::NORMAL)
        })
        .take(count)
        .collect()
    }

    fn input(value: serde_json::Value) -> ReminderSettingsInput {
        serde_json::from_value(value).unwrap()
    }

    fn error_fields(value: serde_json::Value) -> Vec<String> {
        ReminderSettings::parse(input(value)).unwrap_err().0.into_iter().map(|e| e.field).collect()
    }

    fn valid_json() -> serde_json::Value {
        json!({"enabled": true, "days": ["mon", "wed", "fri"], "window": {"start": "19:00", "end": "21:00"},
               "quiet_hours": {"start": "22:00", "end": "07:00"}, "descriptive": false, "paused_until": null})
    }

    #[test]
    fn settings_have_the_documented_json_shape() {
        let parsed: ReminderSettings = serde_json::from_value(valid_json()).unwrap();
        assert_eq!(parsed, ReminderSettings::default());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), valid_json());

        let mut paused = valid_json();
        paused["paused_until"] = json!("2026-11-20T09:00:00+01:00");
        paused["days"] = json!(["sun", "MON", "mon"]);
        let parsed: ReminderSettings = serde_json::from_value(paused).unwrap();
        assert_eq!(parsed.paused_until, Some(utc("2026-11-20T08:00:00Z")));
        let out = serde_json::to_value(&parsed).unwrap();
        assert_eq!(out["paused_until"], "2026-11-20T08:00:00Z");
        assert_eq!(out["days"], json!(["mon", "sun"]), "a set, in week order");
    }

    #[test]
    fn local_times_are_strict_hh_mm() {
        assert_eq!(time("00:00").minutes_since_midnight(), 0);
        assert_eq!(time("23:59").minutes_since_midnight(), 23 * 60 + 59);
        assert_eq!(time("07:05").to_string(), "07:05");
        for bad in ["24:00", "19:60", "7:00", "1900", " 19:00", "19:00:00", "-1:00", "", "ab:cd", "+1:00"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(serde_json::from_value::<LocalTime>(json!("25:00")).is_err());
    }

    #[test]
    fn validation_names_every_field_at_once() {
        let mut raw = valid_json();
        raw["window"]["start"] = json!("25:00");
        raw["quiet_hours"]["end"] = json!("7");
        raw["days"] = json!([]);
        raw["paused_until"] = json!("next tuesday");
        assert_eq!(error_fields(raw), ["days", "window.start", "quiet_hours.end", "paused_until"]);

        let mut raw = valid_json();
        raw["days"] = json!(["mon", "funday"]);
        raw["window"] = json!({"start": "21:00", "end": "21:00"});
        assert_eq!(error_fields(raw), ["days", "window.end"]);

        assert_eq!(error_fields(json!({})), ["enabled", "days", "window", "quiet_hours"]);
        assert_eq!(
            error_fields(json!({"enabled": true, "days": ["mon"], "window": {"start": "19:00"},
                                       "quiet_hours": {"end": "07:00"}})),
            ["window.end", "quiet_hours.start"]
        );

        let mut raw = valid_json();
        raw.as_object_mut().unwrap().remove("descriptive");
        raw.as_object_mut().unwrap().remove("paused_until");
        raw["next_reminder_at"] = json!("2026-11-20T18:00:00Z");
        let parsed = ReminderSettings::parse(input(raw)).unwrap();
        assert!(!parsed.descriptive, "discreet unless asked");
        assert_eq!(parsed.paused_until, None);
    }

    #[test]
    fn a_window_entirely_inside_quiet_hours_is_refused() {
        let check = |window: (&str, &str), quiet: (&str, &str)| {
            let mut raw = valid_json();
            raw["window"] = json!({"start": window.0, "end": window.1});
            raw["quiet_hours"] = json!({"start": quiet.0, "end": quiet.1});
            ReminderSettings::parse(input(raw)).map(|_| ()).map_err(|e| e.0[0].field.clone())
        };
        assert_eq!(check(("22:30", "23:30"), ("22:00", "07:00")), Err("window".into()));
        assert_eq!(check(("01:00", "06:00"), ("22:00", "07:00")), Err("window".into()));
        assert_eq!(check(("22:00", "23:59"), ("22:00", "07:00")), Err("window".into()));
        assert_eq!(check(("12:00", "13:00"), ("12:00", "13:00")), Err("window".into()));
        // Partly quiet, or touching quiet hours at their half-open ends, is fine.
        assert_eq!(check(("21:00", "23:30"), ("22:00", "07:00")), Ok(()));
        assert_eq!(check(("21:00", "22:00"), ("22:00", "07:00")), Ok(()));
        assert_eq!(check(("07:00", "08:00"), ("22:00", "07:00")), Ok(()));
        assert_eq!(check(("22:30", "23:30"), ("09:00", "09:00")), Ok(()), "equal ends mean no quiet hours");
    }

    #[test]
    fn allowed_part_of_the_window_is_the_window_minus_quiet_hours() {
        let allowed = |w: (&str, &str), q: (&str, &str)| {
            let s = settings(&[Mon], w, q);
            allowed_ranges(s.window, s.quiet_hours)
        };
        let m = |raw: &str| time(raw).minutes_since_midnight();
        assert_eq!(allowed(("21:00", "23:30"), ("22:00", "07:00")), [(m("21:00"), m("22:00"))]);
        assert_eq!(allowed(("06:00", "09:00"), ("22:00", "07:00")), [(m("07:00"), m("09:00"))]);
        assert_eq!(
            allowed(("12:00", "20:00"), ("14:00", "15:00")),
            [(m("12:00"), m("14:00")), (m("15:00"), m("20:00"))]
        );
        assert_eq!(allowed(("19:00", "21:00"), ("00:00", "00:00")), [(m("19:00"), m("21:00"))]);
    }

    #[test]
    fn quiet_hours_across_midnight_leave_the_part_of_the_window_before_them() {
        let berlin = Europe::Berlin;
        let s = settings(&Weekday::ALL, ("21:00", "23:30"), ("22:00", "07:00"));
        for slot in slots(&s, Pace::Committed, berlin, at(berlin, 2026, 11, 16, 0, 0), 20) {
            assert_eq!(slot.with_timezone(&berlin).time(), NaiveTime::from_hms_opt(21, 0, 0).unwrap());
        }
        let morning = settings(&[Tue], ("06:00", "09:00"), ("22:00", "07:00"));
        assert_eq!(
            next_slot(&morning, Pace::Steady, berlin, at(berlin, 2026, 11, 16, 12, 0), Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 17, 7, 0))
        );
    }

    #[test]
    fn a_slot_the_clocks_skip_moves_to_the_jump_in_new_york() {
        let ny = America::New_York;
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT, at 07:00 UTC.
        let s = settings(&[Sun], ("02:30", "04:00"), ("00:00", "00:00"));
        let slot = next_slot(&s, Pace::Steady, ny, at(ny, 2026, 3, 7, 12, 0), Spacing::NORMAL);
        assert_eq!(slot, Some(utc("2026-03-08T07:00:00Z")));
        assert_eq!(slot.unwrap().with_timezone(&ny).time(), NaiveTime::from_hms_opt(3, 0, 0).unwrap());
        // A window wholly inside the skipped hour still gets its one reminder.
        let skipped = settings(&[Sun], ("02:00", "02:45"), ("00:00", "00:00"));
        assert_eq!(
            next_slot(&skipped, Pace::Steady, ny, at(ny, 2026, 3, 7, 12, 0), Spacing::NORMAL),
            Some(utc("2026-03-08T07:00:00Z"))
        );
        // The week before and after, 02:30 is an ordinary time.
        assert_eq!(
            slots(&s, Pace::Steady, ny, at(ny, 2026, 3, 1, 12, 0), 3),
            [utc("2026-03-08T07:00:00Z"), utc("2026-03-15T06:30:00Z"), utc("2026-03-22T06:30:00Z")]
        );
    }

    #[test]
    fn a_repeated_time_fires_once_in_new_york() {
        let ny = America::New_York;
        // 2026-11-01: 01:00–02:00 happens twice (EDT, then EST).
        let s = settings(&[Sun], ("01:30", "02:30"), ("00:00", "00:00"));
        let first = next_slot(&s, Pace::Steady, ny, at(ny, 2026, 10, 31, 12, 0), Spacing::NORMAL);
        assert_eq!(first, Some(utc("2026-11-01T05:30:00Z")), "the earlier 01:30");
        // Neither the slot itself nor an instant between the two 01:30s leads to the second.
        for after in [utc("2026-11-01T05:30:00Z"), utc("2026-11-01T05:45:00Z"), utc("2026-11-01T06:29:00Z")] {
            assert_eq!(
                next_slot(&s, Pace::Steady, ny, after, Spacing::NORMAL),
                Some(utc("2026-11-08T06:30:00Z")),
                "after {after}"
            );
        }
    }

    #[test]
    fn daylight_saving_in_berlin_skips_and_repeats_correctly() {
        let berlin = Europe::Berlin;
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
        let spring = settings(&[Sun], ("02:15", "04:00"), ("00:00", "00:00"));
        assert_eq!(
            next_slot(&spring, Pace::Gentle, berlin, at(berlin, 2026, 3, 28, 9, 0), Spacing::NORMAL),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let autumn = settings(&[Sun], ("02:30", "03:30"), ("00:00", "00:00"));
        assert_eq!(
            slots(&autumn, Pace::Gentle, berlin, at(berlin, 2026, 10, 24, 9, 0), 2),
            [utc("2026-10-25T00:30:00Z"), utc("2026-11-01T01:30:00Z")]
        );
        // A skipped start that lands in quiet hours falls back to the next part of the window.
        let split = settings(&[Sun], ("02:00", "05:00"), ("03:00", "04:00"));
        assert_eq!(
            next_slot(&split, Pace::Gentle, berlin, at(berlin, 2026, 3, 28, 9, 0), Spacing::NORMAL),
            Some(at(berlin, 2026, 3, 29, 4, 0))
        );
    }

    #[test]
    fn daily_windows_across_daylight_saving_changes_give_one_slot_a_day() {
        for (tz, from) in [
            (America::New_York, utc("2026-03-02T00:00:00Z")),
            (America::New_York, utc("2026-10-26T00:00:00Z")),
            (Europe::Berlin, utc("2026-03-23T00:00:00Z")),
            (Europe::Berlin, utc("2026-10-19T00:00:00Z")),
        ] {
            for window in [("00:30", "03:30"), ("01:00", "02:00"), ("02:00", "03:00"), ("02:30", "23:00")] {
                let mut s = settings(&Weekday::ALL, window, ("00:00", "00:00"));
                s.days = [Sun, Tue, Thu, Sat].into();
                let found = slots(&s, Pace::Committed, tz, from, 12);
                let dates: Vec<NaiveDate> = found.iter().map(|s| s.with_timezone(&tz).date_naive()).collect();
                assert_eq!(found.len(), 12, "{tz} {window:?}");
                assert!(dates.windows(2).all(|pair| pair[0] < pair[1]), "{tz} {window:?}: {dates:?}");
                assert!(dates.iter().all(|date| s.days.contains(&Weekday::of(*date))));
            }
        }
    }

    #[test]
    fn seven_chosen_days_spread_by_pace() {
        let all: BTreeSet<Weekday> = Weekday::ALL.into();
        assert_eq!(spread_days(&all, Pace::Gentle), [Mon, Thu].into());
        assert_eq!(spread_days(&all, Pace::Steady), [Mon, Wed, Fri].into());
        assert_eq!(spread_days(&all, Pace::Committed), [Mon, Tue, Wed, Fri, Sat].into());
        // Calendar gaps count, not positions in the list: Tue and Sat are 4 and 3 days apart.
        assert_eq!(spread_days(&[Mon, Tue, Wed, Sat].into(), Pace::Gentle), [Tue, Sat].into());
        assert_eq!(spread_days(&[Mon, Tue, Wed, Thu].into(), Pace::Gentle), [Mon, Thu].into());
        // No more days than the pace: all of them.
        assert_eq!(spread_days(&[Sat, Sun].into(), Pace::Steady), [Sat, Sun].into());
    }

    #[test]
    fn each_week_holds_as_many_slots_as_the_pace_allows() {
        let la = America::Los_Angeles;
        let day_sets: Vec<Vec<Weekday>> = (1..=7)
            .map(|n| Weekday::ALL[..n].to_vec())
            .chain([vec![Sat, Sun], vec![Tue, Thu, Sat, Sun], vec![Mon, Wed, Thu, Fri, Sat, Sun]])
            .collect();
        for pace in PACES {
            for days in &day_sets {
                let s = settings(days, ("19:00", "21:00"), ("22:00", "07:00"));
                let start = at(la, 2026, 10, 5, 0, 0); // a Monday; runs across the November change
                let found = slots(&s, pace, la, start - Duration::seconds(1), 60);
                let expected = days.len().min(pace.sessions_per_week() as usize);
                for week in 0..6 {
                    let (from, to) = week_of(start + Duration::days(7 * week + 3), la);
                    let in_week = found.iter().filter(|slot| **slot >= from && **slot < to).count();
                    assert_eq!(in_week, expected, "{pace:?} {days:?} week {week}");
                }
            }
        }
    }

    #[test]
    fn weeks_and_days_are_local_in_auckland_and_los_angeles() {
        let auckland = Pacific::Auckland;
        // Monday 07:00 in Auckland is still Sunday in UTC.
        let s = settings(&Weekday::ALL, ("07:00", "08:00"), ("22:00", "06:00"));
        let monday = next_slot(&s, Pace::Steady, auckland, at(auckland, 2026, 11, 22, 23, 0), Spacing::NORMAL);
        assert_eq!(monday, Some(utc("2026-11-22T18:00:00Z")));
        assert_eq!(Weekday::of(monday.unwrap().with_timezone(&auckland).date_naive()), Mon);
        let week = slots(&s, Pace::Steady, auckland, at(auckland, 2026, 11, 22, 23, 0), 3);
        let days: Vec<Weekday> = week.iter().map(|s| Weekday::of(s.with_timezone(&auckland).date_naive())).collect();
        assert_eq!(days, [Mon, Wed, Fri]);

        // Sunday 22:00 in Los Angeles is already Monday in UTC.
        let la = America::Los_Angeles;
        let s = settings(&[Sun, Mon], ("22:00", "23:00"), ("23:00", "06:00"));
        assert_eq!(
            slots(&s, Pace::Steady, la, at(la, 2026, 11, 22, 12, 0), 3),
            [utc("2026-11-23T06:00:00Z"), utc("2026-11-24T06:00:00Z"), utc("2026-11-30T06:00:00Z")]
        );
    }

    #[test]
    fn pausing_skips_slots_until_the_pause_ends() {
        let berlin = Europe::Berlin;
        let mut s = ReminderSettings::default(); // mon, wed, fri at 19:00
        let monday_morning = at(berlin, 2026, 11, 16, 8, 0);
        s.paused_until = Some(at(berlin, 2026, 11, 18, 12, 0));
        assert_eq!(
            next_slot(&s, Pace::Steady, berlin, monday_morning, Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 18, 19, 0))
        );
        s.paused_until = Some(at(berlin, 2026, 11, 18, 19, 0));
        assert_eq!(
            next_slot(&s, Pace::Steady, berlin, monday_morning, Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 18, 19, 0)),
            "at the end of the pause is allowed"
        );
        s.paused_until = Some(at(berlin, 2026, 11, 18, 19, 1));
        assert_eq!(
            next_slot(&s, Pace::Steady, berlin, monday_morning, Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 20, 19, 0))
        );
        s.paused_until = Some(at(berlin, 2026, 11, 1, 0, 0));
        assert_eq!(
            next_slot(&s, Pace::Steady, berlin, monday_morning, Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 16, 19, 0)),
            "a pause that ended changes nothing"
        );
    }

    #[test]
    fn disabled_or_impossible_settings_give_no_slot() {
        let berlin = Europe::Berlin;
        let now = at(berlin, 2026, 11, 16, 8, 0);
        let disabled = ReminderSettings { enabled: false, ..ReminderSettings::default() };
        assert_eq!(next_slot(&disabled, Pace::Steady, berlin, now, Spacing::NORMAL), None);
        // Built directly, past validation.
        let all_quiet = settings(&[Mon], ("23:00", "23:30"), ("22:00", "07:00"));
        assert_eq!(next_slot(&all_quiet, Pace::Steady, berlin, now, Spacing::NORMAL), None);
        let no_days = ReminderSettings { days: BTreeSet::new(), ..ReminderSettings::default() };
        assert_eq!(next_slot(&no_days, Pace::Steady, berlin, now, Spacing::NORMAL), None);
    }

    #[test]
    fn backoff_doubles_the_gap_up_to_a_week() {
        let hours = |d: Duration| d.num_seconds() as f64 / 3600.0;
        assert_eq!(backoff_gap(Pace::Steady, 0), Duration::zero());
        assert_eq!(hours(base_gap(Pace::Gentle)), 84.0);
        assert_eq!(hours(base_gap(Pace::Steady)), 56.0);
        assert_eq!(hours(base_gap(Pace::Committed)), 33.6);
        assert_eq!(hours(backoff_gap(Pace::Gentle, 1)), 168.0);
        assert_eq!(hours(backoff_gap(Pace::Steady, 1)), 112.0);
        assert_eq!(hours(backoff_gap(Pace::Steady, 2)), 168.0);
        assert_eq!(hours(backoff_gap(Pace::Committed, 1)), 67.2);
        assert_eq!(hours(backoff_gap(Pace::Committed, 2)), 134.4);
        for pace in PACES {
            for n in [3, 4, 10, 31, 32, 64, u32::MAX] {
                assert_eq!(backoff_gap(pace, n), Duration::days(7), "{pace:?} {n}");
            }
        }
        assert_eq!(Spacing::NORMAL.after_unanswered().after_unanswered(), Spacing { unanswered: 2 });
        assert_eq!(Spacing { unanswered: u32::MAX }.after_unanswered().unanswered, u32::MAX);
    }

    #[test]
    fn unanswered_reminders_space_out_but_still_come_weekly() {
        let berlin = Europe::Berlin;
        let s = settings(&Weekday::ALL, ("19:00", "21:00"), ("22:00", "07:00")); // committed: mon tue wed fri sat
        let monday = at(berlin, 2026, 11, 16, 19, 0);
        let next = |n| next_slot(&s, Pace::Committed, berlin, monday, Spacing { unanswered: n });
        assert_eq!(next(0), Some(at(berlin, 2026, 11, 17, 19, 0)));
        // 67.2 h → Thursday 14:12, not a reminder day → Friday.
        assert_eq!(next(1), Some(at(berlin, 2026, 11, 20, 19, 0)));
        // 134.4 h → Sunday 09:24 → Monday.
        assert_eq!(next(2), Some(at(berlin, 2026, 11, 23, 19, 0)));
        // Capped: exactly a week later, however many went unanswered.
        assert_eq!(next(3), Some(at(berlin, 2026, 11, 23, 19, 0)));
        assert_eq!(next(50), Some(at(berlin, 2026, 11, 23, 19, 0)));

        // Across the spring change the week is 167 hours; the weekly cap still holds.
        let before_change = at(berlin, 2026, 3, 23, 19, 0);
        let gentle = settings(&[Mon], ("19:00", "21:00"), ("22:00", "07:00"));
        let after_change = next_slot(&gentle, Pace::Gentle, berlin, before_change, Spacing { unanswered: 5 });
        assert_eq!(after_change, Some(at(berlin, 2026, 3, 30, 19, 0)));
        assert_eq!(after_change.unwrap() - before_change, Duration::hours(167));
    }

    #[test]
    fn successive_slots_strictly_increase_on_distinct_days() {
        let cases = [
            (Europe::Berlin, settings(&Weekday::ALL, ("01:30", "03:30"), ("00:00", "00:00"))),
            (America::New_York, settings(&[Sun, Mon, Sat], ("00:30", "02:30"), ("02:00", "01:00"))),
            (Pacific::Auckland, settings(&[Sun, Wed], ("21:00", "23:30"), ("22:00", "07:00"))),
            (America::Los_Angeles, ReminderSettings::default()),
        ];
        for (tz, s) in cases {
            for pace in PACES {
                for unanswered in [0, 1, 3] {
                    let mut after = utc("2026-01-01T00:00:00Z");
                    let mut last_date = None;
                    for _ in 0..120 {
                        let slot = next_slot(&s, pace, tz, after, Spacing { unanswered }).unwrap();
                        let local = slot.with_timezone(&tz);
                        assert!(slot > after);
                        assert!(Some(local.date_naive()) > last_date, "{tz} {pace:?}: two on {local}");
                        assert!(!s.quiet_hours.contains(LocalTime::of(local.time())), "{tz}: quiet at {local}");
                        assert!(spread_days(&s.days, pace).contains(&Weekday::of(local.date_naive())));
                        last_date = Some(local.date_naive());
                        after = slot;
                    }
                }
            }
        }
    }

    #[test]
    fn recomputing_never_brings_a_second_reminder_on_the_same_day() {
        let berlin = Europe::Berlin;
        let sent = at(berlin, 2026, 11, 16, 19, 0);
        let now = at(berlin, 2026, 11, 16, 20, 0);
        // The person moves the window later on the evening a reminder came.
        let later = settings(&Weekday::ALL, ("21:00", "21:45"), ("22:00", "07:00"));
        let after = recompute_after(now, Some(sent), berlin);
        assert_eq!(
            next_slot(&later, Pace::Committed, berlin, after, Spacing::NORMAL),
            Some(at(berlin, 2026, 11, 17, 21, 0))
        );
        assert_eq!(recompute_after(now, None, berlin), now);
        let next_week = at(berlin, 2026, 11, 23, 9, 0);
        assert_eq!(recompute_after(next_week, Some(sent), berlin), next_week);
    }

    const GUILT: [&str; 9] =
        ["missed", "streak", "don't forget", "don’t forget", "you haven't", "you haven’t", "again", "behind", "late"];
    const TOPIC: [&str; 9] = ["intima", "sex", "body", "bodies", "partner", "touch", "exercise", "step", "program"];

    #[test]
    fn reminder_texts_are_kind_and_discreet_by_default() {
        let title = "Breathing together";
        let mut seen = BTreeSet::new();
        for seed in 0..200u64 {
            for (descriptive, suggestion) in [(false, None), (false, Some(title)), (true, None), (true, Some(title))] {
                let (head, body) = reminder_text(descriptive, suggestion, seed);
                let text = format!("{head} {body}").to_lowercase();
                assert!(!head.is_empty() && !body.is_empty());
                for word in GUILT {
                    assert!(!text.contains(word), "{word:?} in {text:?}");
                }
                if descriptive && suggestion.is_some() {
                    assert!(text.contains(&title.to_lowercase()), "descriptive names the suggestion: {text}");
                } else {
                    assert!(!text.contains("breathing"), "discreet never names it: {text}");
                    for word in TOPIC {
                        assert!(!text.contains(word), "{word:?} in discreet {text:?}");
                    }
                }
                assert_eq!(reminder_text(descriptive, suggestion, seed), (head.clone(), body), "deterministic");
                seen.insert(head);
            }
        }
        assert!(seen.len() >= 8, "all phrasings come up: {seen:?}");
        // Seeds that share a factor (timestamps of whole days) still vary.
        let daily: BTreeSet<_> =
            (0..20u64).map(|day| reminder_text(false, None, 1_763_000_000 + day * 86_400)).collect();
        assert!(daily.len() >= 4);
    }
}
