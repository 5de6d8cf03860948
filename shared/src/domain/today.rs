//! Today's suggestion: one exercise and why, or rest, or, after distress, a gentle
//! grounding exercise and where to find help.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::pacing::{CheckinFact, distress_within, sessions_this_week};
use super::progress::Position;
use crate::content::{Exercise, ExerciseKind, Program, ProgramMode, Step};

/// A distress signal this recent turns today gentle.
pub const DISTRESS_WINDOW: Duration = Duration::hours(48);
/// Comfort at or above this counts a completed exercise as done comfortably.
pub const COMFORTABLE: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TodayKind {
    /// The next exercise of the step.
    Exercise,
    /// After a hard check-in: a low-intensity grounding exercise, and support.
    Grounding,
    /// This week's sessions are done; rest is part of the program.
    Rest,
    /// The program is paused.
    Paused,
}

/// What today holds. Pure data; the API adds the exercise's text and resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodayPlan<'a> {
    pub kind: TodayKind,
    pub exercise: Option<(&'a Step, &'a Exercise)>,
    pub message: String,
    pub reasons: Vec<String>,
    /// Whether to show professional-help resources.
    pub support: bool,
    pub sessions_this_week: u32,
    pub sessions_per_week: u32,
    /// The most intense exercise that may be suggested now.
    pub max_intensity: u8,
}

/// The ladder: at most one level above the highest intensity completed with
/// comfort of at least 3; level 1 until then.
pub fn max_intensity(program: &Program, checkins: &[CheckinFact]) -> u8 {
    let highest = checkins
        .iter()
        .filter(|c| c.completed && c.comfort >= COMFORTABLE)
        .filter_map(|c| c.exercise_id.as_deref())
        .filter_map(|id| program.steps.iter().flat_map(|s| &s.exercises).find(|e| e.id == id))
        .map(|e| e.intensity.get())
        .max()
        .unwrap_or(0);
    (highest + 1).clamp(1, 5)
}

fn allowed_in(mode: ProgramMode, exercise: &Exercise) -> bool {
    mode != ProgramMode::Solo || exercise.is_solo()
}

pub fn plan_today<'a>(
    program: &'a Program,
    position: &Position,
    mode: ProgramMode,
    checkins: &[CheckinFact],
    now: DateTime<Utc>,
    tz: Tz,
) -> TodayPlan<'a> {
    let sessions = sessions_this_week(checkins, now, tz);
    let per_week = position.pace.sessions_per_week();
    let ceiling = max_intensity(program, checkins);
    let mut plan = TodayPlan {
        kind: TodayKind::Exercise,
        exercise: None,
        message: String::new(),
        reasons: Vec::new(),
        support: false,
        sessions_this_week: sessions,
        sessions_per_week: per_week,
        max_intensity: ceiling,
    };

    if position.paused {
        plan.kind = TodayKind::Paused;
        plan.message = "Your program is paused. It will be here when you want it.".into();
        return plan;
    }

    if distress_within(checkins, now, DISTRESS_WINDOW) {
        plan.kind = TodayKind::Grounding;
        plan.support = true;
        plan.exercise = grounding_exercise(program, position.step);
        plan.message = "A recent check-in said things felt hard. Today is for something gentle: a few minutes to \
                        settle your body. Reaching out for support is a strong step, never a failure."
            .into();
        plan.reasons.push("A check-in in the last 48 hours showed high anxiety or very low comfort.".into());
        return plan;
    }

    if sessions >= per_week {
        plan.kind = TodayKind::Rest;
        plan.message = format!(
            "You've done your {per_week} sessions this week. Rest is part of the work; enjoy the pause, and pick \
             it up again next week."
        );
        plan.reasons
            .push(format!("{sessions} of {per_week} sessions done this week at a {} pace.", position.pace.as_str()));
        return plan;
    }

    let Some(step) = program.step(position.step) else {
        plan.kind = TodayKind::Rest;
        plan.message = "There is nothing to suggest right now.".into();
        return plan;
    };
    plan.exercise = next_exercise(step, mode, ceiling, checkins).map(|e| (step, e));
    if let Some((_, exercise)) = plan.exercise {
        plan.message = format!("Today, if it feels right: {}. About {} minutes.", exercise.title, exercise.minutes);
        plan.reasons.push(format!("Step {}: {}.", step.number, step.title));
        plan.reasons.push(format!(
            "Within your comfort: intensity {} of at most {ceiling}, one above what has felt comfortable so far.",
            exercise.intensity.get()
        ));
        if mode == ProgramMode::Solo {
            plan.reasons.push("On your own: only exercises you can do alone.".into());
        }
        plan.reasons.push(format!("{sessions} of {per_week} sessions this week so far."));
    }
    plan
}

/// Not yet done (lowest intensity first, in the step's order), else the one done
/// longest ago, always within the ladder and the mode. The step always has a
/// solo intensity-1 exercise (the content checks guarantee it).
fn next_exercise<'a>(step: &'a Step, mode: ProgramMode, ceiling: u8, checkins: &[CheckinFact]) -> Option<&'a Exercise> {
    let eligible: Vec<&Exercise> =
        step.exercises.iter().filter(|e| allowed_in(mode, e) && e.intensity.get() <= ceiling).collect();
    let last_done = |exercise: &Exercise| {
        checkins
            .iter()
            .filter(|c| c.completed && c.exercise_id.as_deref() == Some(exercise.id.as_str()))
            .map(|c| c.occurred_at)
            .max()
    };
    eligible
        .iter()
        .filter(|e| last_done(e).is_none())
        .min_by_key(|e| e.intensity.get())
        .or_else(|| eligible.iter().min_by_key(|e| last_done(e)))
        .copied()
}

/// A low-intensity solo mindfulness exercise: the current step's if it has one,
/// else the gentlest of the program.
fn grounding_exercise(program: &Program, step: u8) -> Option<(&Step, &Exercise)> {
    let current = program.step(step).and_then(|s| {
        s.exercises
            .iter()
            .find(|e| e.kind == ExerciseKind::Mindfulness && e.is_solo() && e.intensity.get() == 1)
            .map(|e| (s, e))
    });
    current.or_else(|| program.grounding_exercises().min_by_key(|(_, e)| e.intensity.get()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::{content::catalog, domain::pacing::Pace};

    fn program() -> &'static Program {
        catalog().unwrap().program("closer").unwrap()
    }

    fn berlin() -> Tz {
        chrono_tz::Europe::Berlin
    }

    fn now() -> DateTime<Utc> {
        berlin().with_ymd_and_hms(2026, 11, 26, 19, 0, 0).single().unwrap().with_timezone(&Utc) // Thursday
    }

    fn position(step: u8, pace: Pace) -> Position {
        Position { step, step_started_at: now() - Duration::days(10), pace, paused: false }
    }

    fn fact(exercise: Option<&str>, at: DateTime<Utc>, anxiety: i64, comfort: i64, completed: bool) -> CheckinFact {
        CheckinFact { occurred_at: at, anxiety, comfort, exercise_id: exercise.map(str::to_owned), completed }
    }

    fn exercise(id: &str) -> &'static Exercise {
        catalog().unwrap().exercise(id).unwrap().1
    }

    #[test]
    fn a_newcomer_gets_an_intensity_one_exercise_of_their_step() {
        let plan = plan_today(program(), &position(1, Pace::Steady), ProgramMode::Solo, &[], now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise);
        let (step, exercise) = plan.exercise.unwrap();
        assert_eq!(step.number, 1);
        assert_eq!(exercise.intensity.get(), 1);
        assert!(exercise.is_solo());
        assert_eq!(plan.max_intensity, 1);
        assert!(!plan.support && !plan.reasons.is_empty());
    }

    #[test]
    fn solo_mode_never_suggests_partner_exercises() {
        for step in 1..=10 {
            let plan = plan_today(program(), &position(step, Pace::Committed), ProgramMode::Solo, &[], now(), berlin());
            assert!(plan.exercise.unwrap().1.is_solo(), "step {step}");
        }
    }

    #[test]
    fn the_ladder_is_one_above_the_highest_comfortable_intensity() {
        let two = program().steps.iter().flat_map(|s| &s.exercises).find(|e| e.intensity.get() == 2).unwrap();
        let three = program().steps.iter().flat_map(|s| &s.exercises).find(|e| e.intensity.get() == 3).unwrap();
        let at = now() - Duration::days(20);
        assert_eq!(max_intensity(program(), &[fact(Some(&two.id), at, 2, 3, true)]), 3);
        assert_eq!(max_intensity(program(), &[fact(Some(&two.id), at, 2, 2, true)]), 1, "comfort 2 does not count");
        assert_eq!(max_intensity(program(), &[fact(Some(&three.id), at, 2, 5, false)]), 1, "not completed");
        assert_eq!(
            max_intensity(program(), &[fact(Some(&three.id), at, 2, 4, true), fact(Some(&two.id), at, 2, 4, true)]),
            4
        );
        let five = program().steps.iter().flat_map(|s| &s.exercises).find(|e| e.intensity.get() == 5).unwrap();
        assert_eq!(max_intensity(program(), &[fact(Some(&five.id), at, 2, 4, true)]), 5, "capped at 5");
        // And the suggestion respects it: step 8 in partnered mode, nothing done yet.
        let plan = plan_today(program(), &position(8, Pace::Steady), ProgramMode::Partnered, &[], now(), berlin());
        assert_eq!(plan.exercise.unwrap().1.intensity.get(), 1);
    }

    #[test]
    fn distress_in_the_last_48_hours_turns_today_gentle_with_support() {
        for (anxiety, comfort) in [(8, 3), (2, 1)] {
            let hard = fact(None, now() - Duration::hours(47), anxiety, comfort, false);
            let plan =
                plan_today(program(), &position(5, Pace::Steady), ProgramMode::Partnered, &[hard], now(), berlin());
            assert_eq!(plan.kind, TodayKind::Grounding);
            assert!(plan.support);
            let (_, exercise) = plan.exercise.unwrap();
            assert_eq!(
                (exercise.kind, exercise.intensity.get(), exercise.is_solo()),
                (ExerciseKind::Mindfulness, 1, true)
            );
        }
        let old = fact(None, now() - Duration::hours(48), 10, 1, false);
        let plan = plan_today(program(), &position(5, Pace::Steady), ProgramMode::Partnered, &[old], now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise, "48 hours ago is past the window");
        let mild = fact(None, now() - Duration::hours(1), 7, 2, false);
        let plan = plan_today(program(), &position(5, Pace::Steady), ProgramMode::Partnered, &[mild], now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise);
    }

    #[test]
    fn once_the_weeks_sessions_are_done_it_suggests_rest_kindly() {
        let step1 = &program().step(1).unwrap().exercises;
        let monday = berlin().with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().unwrap().with_timezone(&Utc);
        let two_sessions = vec![
            fact(Some(&step1[0].id), monday, 2, 4, true),
            fact(Some(&step1[1].id), monday + Duration::days(1), 2, 4, true),
        ];
        let gentle =
            plan_today(program(), &position(1, Pace::Gentle), ProgramMode::Solo, &two_sessions, now(), berlin());
        assert_eq!(gentle.kind, TodayKind::Rest);
        assert!(gentle.exercise.is_none());
        assert!(!gentle.message.contains("missed") && gentle.message.contains("Rest"), "{}", gentle.message);
        let steady =
            plan_today(program(), &position(1, Pace::Steady), ProgramMode::Solo, &two_sessions, now(), berlin());
        assert_eq!(steady.kind, TodayKind::Exercise, "steady allows a third");
        // Last week's sessions do not count: Sunday 23:30 Berlin is last week.
        let sunday = berlin().with_ymd_and_hms(2026, 11, 22, 23, 30, 0).single().unwrap().with_timezone(&Utc);
        let spanning = vec![fact(Some(&step1[0].id), sunday, 2, 4, true), fact(Some(&step1[1].id), monday, 2, 4, true)];
        let plan = plan_today(program(), &position(1, Pace::Gentle), ProgramMode::Solo, &spanning, now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise);
    }

    #[test]
    fn undone_exercises_come_before_repeats() {
        let step = program().step(1).unwrap();
        let first = plan_today(program(), &position(1, Pace::Committed), ProgramMode::Solo, &[], now(), berlin())
            .exercise
            .unwrap()
            .1;
        let did_first = vec![fact(Some(&first.id), now() - Duration::days(20), 2, 2, true)];
        let second =
            plan_today(program(), &position(1, Pace::Committed), ProgramMode::Solo, &did_first, now(), berlin())
                .exercise
                .unwrap()
                .1;
        assert_ne!(first.id, second.id);
        assert!(step.exercises.iter().any(|e| e.id == second.id));
        let _ = exercise(&first.id);
    }

    #[test]
    fn a_paused_program_suggests_nothing() {
        let mut p = position(2, Pace::Steady);
        p.paused = true;
        let plan = plan_today(program(), &p, ProgramMode::Solo, &[], now(), berlin());
        assert_eq!((plan.kind, plan.exercise), (TodayKind::Paused, None));
    }
}
