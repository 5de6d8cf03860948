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

use super::notification_choices::{NotificationChoices, present};
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
    pub const MIDNIGHT: Self = Self(0);

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

    pub(crate) fn of(time: NaiveTime) -> Self {
        // Hours and minutes of a NaiveTime are always in range.
        Self((time.hour() * 60 + time.minute()) as u16)
    }

    pub(crate) fn naive(self) -> NaiveTime {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "StoredWindow")]
pub struct TimeWindow {
    start: LocalTime,
    end: LocalTime,
}

/// A stored window, checked again when read (see [`TimeWindow::new`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredWindow {
    start: LocalTime,
    end: LocalTime,
}

impl TryFrom<StoredWindow> for TimeWindow {
    type Error = String;

    fn try_from(raw: StoredWindow) -> Result<Self, String> {
        Self::new(raw.start, raw.end)
    }
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

/// No notifications from `start` until `end`, local time; may span midnight
/// (22:00–07:00). `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

/// A person's reminder settings as the reminder rules see them: the reminder
/// plan (days and window, stored with the schedule) together with the person's
/// notification choices that apply to reminders (on/off, quiet hours, pause,
/// texts), which are stored once for every kind of notification
/// ([`NotificationChoices`]). Deserializing validates (see [`ReminderSettings::parse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "ReminderSettingsInput")]
pub struct ReminderSettings {
    /// Deprecated: the notification settings' `reminders`
    /// (`/v1/notifications/settings`), of which this is an alias for one release.
    #[schema(deprecated)]
    pub enabled: bool,
    #[schema(value_type = Vec<Weekday>)]
    pub days: BTreeSet<Weekday>,
    pub window: TimeWindow,
    /// Deprecated: the notification settings' `quiet_hours`, which hold for
    /// every notification; an alias for one release.
    #[schema(deprecated)]
    pub quiet_hours: QuietHours,
    /// Deprecated: the notification settings' `descriptive`, the one setting for
    /// every notification's texts; an alias for one release.
    #[schema(deprecated)]
    pub descriptive: bool,
    /// Deprecated: the notification settings' `paused_until` (RFC 3339 or
    /// `null`), which pauses every notification; an alias for one release.
    #[schema(deprecated)]
    pub paused_until: Option<DateTime<Utc>>,
}

/// What only reminders have: the days and the daily window. Stored with the
/// person's schedule; a stored plan is read strictly enough that a broken one is
/// an error (no days, an unknown day, a bad window), never the defaults. Keys the
/// previous release stored beside these (`enabled`, `quiet_hours`, …, now in
/// the notification choices) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredPlan")]
pub struct ReminderPlan {
    pub days: BTreeSet<Weekday>,
    pub window: TimeWindow,
}

#[derive(Deserialize)]
struct StoredPlan {
    days: BTreeSet<Weekday>,
    window: TimeWindow,
}

impl TryFrom<StoredPlan> for ReminderPlan {
    type Error = String;

    fn try_from(raw: StoredPlan) -> Result<Self, String> {
        if raw.days.is_empty() {
            return Err("a reminder plan without days".into());
        }
        Ok(Self { days: raw.days, window: raw.window })
    }
}

impl Default for ReminderPlan {
    fn default() -> Self {
        ReminderSettings::default().plan()
    }
}

impl ReminderSettings {
    /// The settings a plan and the person's choices give.
    pub fn from_parts(plan: &ReminderPlan, choices: &NotificationChoices) -> Self {
        Self {
            enabled: choices.reminders,
            days: plan.days.clone(),
            window: plan.window,
            quiet_hours: choices.quiet_hours,
            descriptive: choices.descriptive,
            paused_until: choices.paused_until,
        }
    }

    /// The reminder-only part, stored with the schedule.
    pub fn plan(&self) -> ReminderPlan {
        ReminderPlan { days: self.days.clone(), window: self.window }
    }

    /// `choices` with what these settings say about reminders, quiet hours,
    /// the pause and texts; reflections stay as they were.
    pub fn onto(&self, choices: &NotificationChoices) -> NotificationChoices {
        NotificationChoices {
            reminders: self.enabled,
            quiet_hours: self.quiet_hours,
            paused_until: self.paused_until,
            descriptive: self.descriptive,
            ..choices.clone()
        }
    }
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
    /// Deprecated alias of the notification settings' `reminders`; left out:
    /// unchanged.
    #[schema(deprecated)]
    pub enabled: Option<bool>,
    pub days: Option<Vec<String>>,
    pub window: Option<TimeRangeInput>,
    /// Deprecated alias of the notification settings' `quiet_hours` (for every
    /// notification); left out: unchanged.
    #[schema(deprecated)]
    pub quiet_hours: Option<TimeRangeInput>,
    /// Deprecated alias of the notification settings' `descriptive` (for every
    /// notification); left out: unchanged.
    #[schema(deprecated)]
    pub descriptive: Option<bool>,
    /// Deprecated alias of the notification settings' `paused_until`: RFC 3339,
    /// or `null` for not paused; left out: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, deprecated)]
    pub paused_until: Option<Option<String>>,
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
        let paused_until = errors.check("paused_until", parse_instant(input.paused_until.flatten().as_deref()));
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

impl ReminderSettings {
    /// As [`ReminderSettings::parse`], for `PUT /v1/reminders/settings`: the
    /// fields that now belong to the notification choices (`enabled`,
    /// `quiet_hours`, `descriptive`, `paused_until`) may be left out, and then
    /// keep the person's `current` choices; `paused_until: null` unpauses.
    pub fn parse_over(
        mut input: ReminderSettingsInput,
        current: &NotificationChoices,
    ) -> Result<Self, ValidationErrors> {
        input.enabled.get_or_insert(current.reminders);
        input.descriptive.get_or_insert(current.descriptive);
        input.quiet_hours.get_or_insert_with(|| TimeRangeInput {
            start: Some(current.quiet_hours.start.to_string()),
            end: Some(current.quiet_hours.end.to_string()),
        });
        input.paused_until.get_or_insert_with(|| current.paused_until.map(|t| t.to_rfc3339()));
        Self::parse(input)
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
#[path = "reminders_tests.rs"]
mod tests;
