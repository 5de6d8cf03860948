//! What the program's rules need of a person's check-ins, kept small: per
//! exercise, its completions; the latest distress signal; and the completions
//! of each quarter hour. Its size depends on the catalog and on one week, never
//! on how long someone has used the app. The store keeps it up to date as
//! check-ins are written ([`SummaryDelta`], in the push's transaction); the
//! rules read only it. [`CheckinSummary::of`] builds it from a full history: the
//! rules' tests go through it, and the property test checks that the stored
//! summary equals it after any sequence of pushes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::pacing::{CheckinFact, week_of};
use super::today::COMFORTABLE;

/// The length of a session slot. Every time zone's offset today is a multiple
/// of a quarter hour, so a local midnight (and so a week's bounds) never falls
/// inside a slot, and every instant of a slot has the slot's local date
/// (`pacing::tests::local_midnights_fall_on_quarter_hours` checks every zone).
pub const SLOT: Duration = Duration::minutes(15);

/// One exercise's completed check-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExerciseTally {
    /// Completed check-ins naming the exercise.
    pub completions: i64,
    /// Those of them with comfort of at least [`COMFORTABLE`].
    pub comfortable: i64,
    /// The latest of them.
    pub last_completed_at: DateTime<Utc>,
}

/// A person's check-ins as the rules see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckinSummary {
    /// Exercises with at least one completed check-in, by id.
    pub exercises: BTreeMap<String, ExerciseTally>,
    /// Check-ins that signalled distress.
    pub distress_checkins: i64,
    /// The latest of them.
    pub last_distress_at: Option<DateTime<Utc>>,
    /// Completed check-ins with an exercise, by the start of their slot. What is
    /// read from the store holds only the slots of the current week.
    pub session_slots: BTreeMap<DateTime<Utc>, i64>,
}

/// The start of the slot holding `at`.
pub fn slot_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let width = SLOT.num_milliseconds();
    let ms = at.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(width)).unwrap_or(at)
}

/// Whether a check-in counts as a session of its day.
fn is_session(fact: &CheckinFact) -> bool {
    fact.completed && fact.exercise_id.is_some()
}

impl CheckinSummary {
    /// The summary of a whole history.
    pub fn of(checkins: &[CheckinFact]) -> Self {
        let mut delta = SummaryDelta::default();
        for fact in checkins {
            delta.add(fact);
        }
        let mut summary = Self::default();
        for (id, change) in delta.exercises {
            if let Some(last) = change.latest_added.filter(|_| change.completions > 0) {
                summary.exercises.insert(
                    id,
                    ExerciseTally {
                        completions: change.completions,
                        comfortable: change.comfortable,
                        last_completed_at: last,
                    },
                );
            }
        }
        summary.distress_checkins = delta.distress.count;
        summary.last_distress_at = delta.distress.latest_added;
        summary.session_slots = delta.slots.into_iter().filter(|(_, n)| *n > 0).collect();
        summary
    }

    /// The exercise's tally, if it was ever completed.
    pub fn completed(&self, exercise_id: &str) -> Option<&ExerciseTally> {
        self.exercises.get(exercise_id)
    }

    /// Whether any check-in in `(now - window, now]` signalled distress. Check-ins
    /// dated in the future (a device clock ahead) count as now.
    pub fn distress_within(&self, now: DateTime<Utc>, window: Duration) -> bool {
        self.last_distress_at.is_some_and(|at| at > now - window)
    }

    /// Sessions in the week of `now`: local days with at least one completed
    /// exercise.
    pub fn sessions_this_week(&self, now: DateTime<Utc>, tz: Tz) -> u32 {
        let (start, end) = week_of(now, tz);
        let mut days: Vec<NaiveDate> = self
            .session_slots
            .range(start..end)
            .filter(|(_, n)| **n > 0)
            .map(|(slot, _)| slot.with_timezone(&tz).date_naive())
            .collect();
        days.dedup();
        days.len() as u32
    }
}

/// How one exercise's tally changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallyChange {
    pub completions: i64,
    pub comfortable: i64,
    /// The latest completion added.
    pub latest_added: Option<DateTime<Utc>>,
    /// The latest completion removed: if it was the tally's latest, the store
    /// looks up the new latest.
    pub latest_removed: Option<DateTime<Utc>>,
}

/// How the distress signal's count and latest instant change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistressChange {
    pub count: i64,
    pub latest_added: Option<DateTime<Utc>>,
    pub latest_removed: Option<DateTime<Utc>>,
}

/// What a push changes in the summary: each check-in it replaces or deletes is
/// removed, each it writes is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryDelta {
    pub exercises: BTreeMap<String, TallyChange>,
    pub distress: DistressChange,
    /// Change in completions, by slot.
    pub slots: BTreeMap<DateTime<Utc>, i64>,
}

impl SummaryDelta {
    pub fn add(&mut self, fact: &CheckinFact) {
        self.record(fact, 1);
    }

    pub fn remove(&mut self, fact: &CheckinFact) {
        self.record(fact, -1);
    }

    pub fn is_empty(&self) -> bool {
        self.exercises.is_empty() && self.distress == DistressChange::default() && self.slots.is_empty()
    }

    fn record(&mut self, fact: &CheckinFact, sign: i64) {
        let at = fact.occurred_at;
        let latest = |slot: &mut Option<DateTime<Utc>>| *slot = Some(slot.map_or(at, |t| t.max(at)));
        if fact.completed
            && let Some(id) = &fact.exercise_id
        {
            let change = self.exercises.entry(id.clone()).or_default();
            change.completions += sign;
            change.comfortable += sign * i64::from(fact.comfort >= COMFORTABLE);
            latest(if sign > 0 { &mut change.latest_added } else { &mut change.latest_removed });
        }
        if fact.is_distress() {
            self.distress.count += sign;
            let distress = &mut self.distress;
            latest(if sign > 0 { &mut distress.latest_added } else { &mut distress.latest_removed });
        }
        if is_session(fact) {
            *self.slots.entry(slot_of(at)).or_default() += sign;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn fact(exercise: Option<&str>, at: DateTime<Utc>, anxiety: i64, comfort: i64, completed: bool) -> CheckinFact {
        CheckinFact { occurred_at: at, anxiety, comfort, exercise_id: exercise.map(str::to_owned), completed }
    }

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap()
    }

    #[test]
    fn slots_start_on_quarter_hours() {
        assert_eq!(slot_of(t(9, 14) + Duration::seconds(59)), t(9, 0));
        assert_eq!(slot_of(t(9, 15)), t(9, 15));
        let before_1970 = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 0).unwrap();
        assert_eq!(slot_of(before_1970), Utc.with_ymd_and_hms(1969, 12, 31, 23, 45, 0).unwrap());
    }

    #[test]
    fn a_history_sums_up_per_exercise_distress_and_slot() {
        let history = [
            fact(Some("a"), t(9, 0), 2, 4, true),
            fact(Some("a"), t(9, 10), 2, 2, true),
            fact(Some("b"), t(10, 0), 2, 4, false),
            fact(None, t(11, 0), 9, 3, false),
            fact(None, t(8, 0), 2, 1, false),
        ];
        let summary = CheckinSummary::of(&history);
        assert_eq!(
            summary.completed("a"),
            Some(&ExerciseTally { completions: 2, comfortable: 1, last_completed_at: t(9, 10) })
        );
        assert_eq!(summary.completed("b"), None, "not completed");
        assert_eq!((summary.distress_checkins, summary.last_distress_at), (2, Some(t(11, 0))));
        assert_eq!(summary.session_slots, BTreeMap::from([(t(9, 0), 2)]));
    }

    #[test]
    fn removing_what_was_added_leaves_no_change_but_the_latest_removed() {
        let checkin = fact(Some("a"), t(9, 0), 9, 4, true);
        let mut delta = SummaryDelta::default();
        delta.add(&checkin);
        delta.remove(&checkin);
        let change = &delta.exercises["a"];
        assert_eq!((change.completions, change.comfortable), (0, 0));
        assert_eq!((change.latest_added, change.latest_removed), (Some(t(9, 0)), Some(t(9, 0))));
        assert_eq!(delta.distress.count, 0);
        assert_eq!(delta.slots[&t(9, 0)], 0);
    }
}
