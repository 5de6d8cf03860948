//! A person's notification choices, and the one rule every notification the
//! worker sends goes through: send it now, at the end of quiet hours, or never.
//!
//! Pure rules over plain data; the zone and `now` are passed in. Loading the
//! stored choices (and failing closed when they no longer parse) is in
//! `notifications::choices`.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::reminders::{LocalTime, QuietHours, TimeRangeInput, resolve_local};
use super::validation::ValidationErrors;

/// What a notification is about. Each kind can be switched off on its own; test
/// pushes are not a kind (the person asked for them that very moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    /// A paced reminder.
    Reminder,
    /// The notice that a weekly reflection is ready.
    Reflection,
    /// "Something new is waiting": the linked partner shared an item (opt-in,
    /// at most one a day).
    PartnerUpdate,
}

/// One person's choices for every notification they may get. Stored as JSON in
/// exactly this shape; reading it is strict (every field, nothing unknown), so a
/// row that no longer parses is noticed instead of read as something else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationChoices {
    /// Paced reminders on or off.
    pub reminders: bool,
    /// Weekly reflection notices on or off (the reflection itself is always kept).
    pub reflections: bool,
    /// No notification is sent from `start` until `end`, in the person's time
    /// zone; may span midnight. Equal times mean no quiet hours.
    pub quiet_hours: QuietHours,
    /// Nothing is sent before this instant (RFC 3339), or `null`. What falls due
    /// while paused is not sent later either.
    pub paused_until: Option<DateTime<Utc>>,
    /// Whether texts may say what they are about (today's exercise, say).
    /// `false`: discreet texts, safe on a lock screen.
    pub descriptive: bool,
    /// Opt-in: a discreet "Something new is waiting in Attune" when the linked
    /// partner shares an item, at most one a day. Nothing else about a partner
    /// is ever sent. Off unless chosen (choices stored before it existed read
    /// as off).
    #[serde(default)]
    pub partner_updates: bool,
}

impl Default for NotificationChoices {
    /// Reminders and reflection notices on, partner updates off, quiet from
    /// 22:00 to 07:00, discreet texts.
    fn default() -> Self {
        Self {
            reminders: true,
            reflections: true,
            quiet_hours: QuietHours {
                start: LocalTime::from_hm(22, 0).unwrap_or(LocalTime::MIDNIGHT),
                end: LocalTime::from_hm(7, 0).unwrap_or(LocalTime::MIDNIGHT),
            },
            paused_until: None,
            descriptive: false,
            partner_updates: false,
        }
    }
}

/// What to do with a notification that falls due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Send it.
    Now,
    /// Quiet hours: send it at this instant, when they end.
    At(DateTime<Utc>),
    /// Switched off, paused, or unreadable choices: never send it.
    Never,
}

impl NotificationChoices {
    /// Whether this kind is switched on.
    pub fn allows(&self, kind: NotificationKind) -> bool {
        match kind {
            NotificationKind::Reminder => self.reminders,
            NotificationKind::Reflection => self.reflections,
            NotificationKind::PartnerUpdate => self.partner_updates,
        }
    }

    /// Whether `now` lies in a pause.
    pub fn paused_at(&self, now: DateTime<Utc>) -> bool {
        self.paused_until.is_some_and(|until| now < until)
    }

    /// The decision for a notification of `kind` falling due at `now` for a
    /// person in `tz`. Off or paused: never, not even after the pause ends (a
    /// late notice about a paused week would be exactly the nudge a pause asks
    /// to be spared). In quiet hours: when they end.
    pub fn decide(&self, kind: NotificationKind, tz: Tz, now: DateTime<Utc>) -> Delivery {
        if !self.allows(kind) || self.paused_at(now) {
            return Delivery::Never;
        }
        quiet_hours_end(self.quiet_hours, tz, now).map_or(Delivery::Now, Delivery::At)
    }
}

/// Whether `now` falls in quiet hours, read on the wall clock of `tz`.
pub fn in_quiet_hours(quiet_hours: QuietHours, tz: Tz, now: DateTime<Utc>) -> bool {
    quiet_hours.contains(LocalTime::of(now.with_timezone(&tz).time()))
}

/// When the quiet hours `now` falls in end (the next local `end`), or `None`
/// when `now` is not in quiet hours. A local end the clocks skip (02:30 on a
/// spring-forward night) ends them at the jump; a repeated one at its first
/// occurrence.
pub fn quiet_hours_end(quiet_hours: QuietHours, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !in_quiet_hours(quiet_hours, tz, now) {
        return None;
    }
    let local = now.with_timezone(&tz).naive_local();
    let end = quiet_hours.end.naive();
    let day = if local.time() < end { local.date() } else { local.date() + Duration::days(1) };
    resolve_local(day.and_time(end), tz).filter(|end| *end > now)
}

/// The choices as a client sends them, before validation: every field optional
/// here so a missing one is named rather than reported as a parse error.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct NotificationChoicesInput {
    pub reminders: Option<bool>,
    pub reflections: Option<bool>,
    pub quiet_hours: Option<TimeRangeInput>,
    /// RFC 3339, or `null` for not paused. Required (send `null` to unpause).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub paused_until: Option<Option<String>>,
    pub descriptive: Option<bool>,
    /// Optional: when left out, the current choice stays (so an app that does
    /// not know it yet never turns it on or off).
    pub partner_updates: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

impl NotificationChoices {
    /// Checks a whole set of choices and names each problem: `reminders`,
    /// `reflections`, `quiet_hours.start`, `quiet_hours.end`, `paused_until`,
    /// `descriptive`. A missing `partner_updates` keeps `current`'s.
    pub fn parse(input: NotificationChoicesInput, current: &Self) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let required = || "is required".to_owned();
        let reminders = errors.check("reminders", input.reminders.ok_or_else(required));
        let reflections = errors.check("reflections", input.reflections.ok_or_else(required));
        let quiet_hours = parse_quiet_hours(&mut errors, input.quiet_hours);
        let paused_until = errors.check(
            "paused_until",
            input
                .paused_until
                .ok_or_else(|| "is required; send null when not paused".to_owned())
                .and_then(|raw| parse_instant(raw.as_deref())),
        );
        let descriptive = errors.check("descriptive", input.descriptive.ok_or_else(required));
        match (reminders, reflections, quiet_hours, paused_until, descriptive) {
            (Some(reminders), Some(reflections), Some(quiet_hours), Some(paused_until), Some(descriptive))
                if errors.is_empty() =>
            {
                Ok(Self {
                    reminders,
                    reflections,
                    quiet_hours,
                    paused_until,
                    descriptive,
                    partner_updates: input.partner_updates.unwrap_or(current.partner_updates),
                })
            }
            _ => Err(errors),
        }
    }
}

/// `quiet_hours` with its `start` and `end`, each problem under its own name.
pub(crate) fn parse_quiet_hours(errors: &mut ValidationErrors, raw: Option<TimeRangeInput>) -> Option<QuietHours> {
    let Some(raw) = raw else {
        errors.add("quiet_hours", "is required");
        return None;
    };
    let mut time = |part: &str, value: Option<String>| {
        errors.check(
            &format!("quiet_hours.{part}"),
            value.ok_or_else(|| "is required".to_owned()).and_then(|v| LocalTime::parse(&v)),
        )
    };
    let start = time("start", raw.start);
    let end = time("end", raw.end);
    Some(QuietHours { start: start?, end: end? })
}

/// An RFC 3339 instant, or `None` for `null`.
pub(crate) fn parse_instant(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|instant| instant.with_timezone(&Utc))
            .map_err(|_| "must be an RFC 3339 date-time like 2026-11-20T09:00:00Z, or null".to_owned())
    })
    .transpose()
}

#[cfg(test)]
#[path = "notification_choices_tests.rs"]
mod tests;
