//! Today's suggestion: one exercise and why, or rest, or, after distress, a gentle
//! grounding exercise and where to find help.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::couple::PartnerExercises;
use super::history::CheckinSummary;
use super::pacing::CheckinFact;
use super::progress::Position;
use crate::content::{Exercise, ExerciseKind, Program, Step};

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

/// Whom today's exercise may involve: the enrollment's mode and, in couple mode,
/// what both people share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Together {
    /// Solo mode: only exercises one does alone.
    Alone,
    /// Partnered mode: any exercise within one's own ladder.
    Partnered,
    /// Partnered mode because a couple's link ended lately: as `Partnered`, and
    /// today says so, kindly.
    CoupleEnded,
    /// Couple mode: partner exercises within the limits both share
    /// ([`super::couple::partner_exercises`]); none while those are `None`.
    Couple(Option<PartnerExercises>),
}

/// Said in couple mode beside an exercise for two. The same words whatever the
/// limits were: nothing here tells one person anything of the other.
pub const TOGETHER_REASON: &str =
    "Together: an exercise for the two of you, at a pace and intensity that suit you both.";
/// Said in couple mode beside an exercise of one's own, whatever the reason.
pub const OWN_REASON: &str = "One of your own today; exercises for two come when they suit you both.";
/// Said for a while after a couple's link ended.
pub const COUPLE_ENDED_REASON: &str = "You're continuing in partnered mode now. Your step and your pace are yours as \
                                       before, and exercises for two are still here whenever they feel right.";

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

/// The ladder over a whole history ([`ladder`]).
pub fn max_intensity(program: &Program, checkins: &[CheckinFact]) -> u8 {
    ladder(program, &CheckinSummary::of(checkins))
}

/// The ladder: at most one level above the highest intensity completed with
/// comfort of at least 3; level 1 until then.
pub fn ladder(program: &Program, summary: &CheckinSummary) -> u8 {
    let highest = program
        .steps
        .iter()
        .flat_map(|s| &s.exercises)
        .filter(|e| summary.completed(&e.id).is_some_and(|tally| tally.comfortable > 0))
        .map(|e| e.intensity.get())
        .max()
        .unwrap_or(0);
    (highest + 1).clamp(1, 5)
}

/// Whether `exercise` of `step` may be suggested, `sessions` into the week.
fn allowed(together: Together, step: &Step, exercise: &Exercise, sessions: u32) -> bool {
    if exercise.is_solo() {
        return true;
    }
    match together {
        Together::Alone | Together::Couple(None) => false,
        Together::Partnered | Together::CoupleEnded => true,
        Together::Couple(Some(shared)) => {
            step.number <= shared.up_to_step
                && exercise.intensity.get() <= shared.max_intensity
                && sessions < shared.pace.sessions_per_week()
        }
    }
}

/// Today's suggestion over a whole history ([`plan`]).
pub fn plan_today<'a>(
    program: &'a Program,
    position: &Position,
    together: Together,
    checkins: &[CheckinFact],
    now: DateTime<Utc>,
    tz: Tz,
) -> TodayPlan<'a> {
    plan(program, position, together, &CheckinSummary::of(checkins), now, tz)
}

/// Today's suggestion. Each person's own step, pace, ladder and distress decide
/// it; in couple mode, exercises for two also keep within `together`'s limits.
pub fn plan<'a>(
    program: &'a Program,
    position: &Position,
    together: Together,
    summary: &CheckinSummary,
    now: DateTime<Utc>,
    tz: Tz,
) -> TodayPlan<'a> {
    let mut plan = plan_alone_or_together(program, position, together, summary, now, tz);
    if together == Together::CoupleEnded && plan.kind != TodayKind::Grounding {
        plan.reasons.insert(0, COUPLE_ENDED_REASON.into());
    }
    plan
}

fn plan_alone_or_together<'a>(
    program: &'a Program,
    position: &Position,
    together: Together,
    summary: &CheckinSummary,
    now: DateTime<Utc>,
    tz: Tz,
) -> TodayPlan<'a> {
    let sessions = summary.sessions_this_week(now, tz);
    let per_week = position.pace.sessions_per_week();
    let ceiling = ladder(program, summary);
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

    if summary.distress_within(now, DISTRESS_WINDOW) {
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
    plan.exercise = next_exercise(step, together, ceiling, sessions, summary).map(|e| (step, e));
    if let Some((_, exercise)) = plan.exercise {
        plan.message = format!("Today, if it feels right: {}. About {} minutes.", exercise.title, exercise.minutes);
        plan.reasons.push(format!("Step {}: {}.", step.number, step.title));
        plan.reasons.push(format!(
            "Within your comfort: intensity {} of at most {ceiling}, one above what has felt comfortable so far.",
            exercise.intensity.get()
        ));
        match together {
            Together::Alone => plan.reasons.push("On your own: only exercises you can do alone.".into()),
            Together::Couple(_) if exercise.is_solo() => plan.reasons.push(OWN_REASON.into()),
            Together::Couple(_) => plan.reasons.push(TOGETHER_REASON.into()),
            Together::Partnered | Together::CoupleEnded => {}
        }
        plan.reasons.push(format!("{sessions} of {per_week} sessions this week so far."));
    }
    plan
}

/// Not yet done (lowest intensity first, in the step's order), else the one done
/// longest ago, always within the ladder and the mode. The step always has a
/// solo intensity-1 exercise (the content checks guarantee it).
fn next_exercise<'a>(
    step: &'a Step,
    together: Together,
    ceiling: u8,
    sessions: u32,
    summary: &CheckinSummary,
) -> Option<&'a Exercise> {
    let eligible: Vec<&Exercise> = step
        .exercises
        .iter()
        .filter(|e| e.intensity.get() <= ceiling && allowed(together, step, e, sessions))
        .collect();
    let last_done = |exercise: &Exercise| summary.completed(&exercise.id).map(|tally| tally.last_completed_at);
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
        let plan = plan_today(program(), &position(1, Pace::Steady), Together::Alone, &[], now(), berlin());
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
            let plan = plan_today(program(), &position(step, Pace::Committed), Together::Alone, &[], now(), berlin());
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
        let plan = plan_today(program(), &position(8, Pace::Steady), Together::Partnered, &[], now(), berlin());
        assert_eq!(plan.exercise.unwrap().1.intensity.get(), 1);
    }

    #[test]
    fn distress_in_the_last_48_hours_turns_today_gentle_with_support() {
        for (anxiety, comfort) in [(8, 3), (2, 1)] {
            let hard = fact(None, now() - Duration::hours(47), anxiety, comfort, false);
            let plan = plan_today(program(), &position(5, Pace::Steady), Together::Partnered, &[hard], now(), berlin());
            assert_eq!(plan.kind, TodayKind::Grounding);
            assert!(plan.support);
            let (_, exercise) = plan.exercise.unwrap();
            assert_eq!(
                (exercise.kind, exercise.intensity.get(), exercise.is_solo()),
                (ExerciseKind::Mindfulness, 1, true)
            );
        }
        let old = fact(None, now() - Duration::hours(48), 10, 1, false);
        let plan = plan_today(program(), &position(5, Pace::Steady), Together::Partnered, &[old], now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise, "48 hours ago is past the window");
        let mild = fact(None, now() - Duration::hours(1), 7, 2, false);
        let plan = plan_today(program(), &position(5, Pace::Steady), Together::Partnered, &[mild], now(), berlin());
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
        let gentle = plan_today(program(), &position(1, Pace::Gentle), Together::Alone, &two_sessions, now(), berlin());
        assert_eq!(gentle.kind, TodayKind::Rest);
        assert!(gentle.exercise.is_none());
        assert!(!gentle.message.contains("missed") && gentle.message.contains("Rest"), "{}", gentle.message);
        let steady = plan_today(program(), &position(1, Pace::Steady), Together::Alone, &two_sessions, now(), berlin());
        assert_eq!(steady.kind, TodayKind::Exercise, "steady allows a third");
        // Last week's sessions do not count: Sunday 23:30 Berlin is last week.
        let sunday = berlin().with_ymd_and_hms(2026, 11, 22, 23, 30, 0).single().unwrap().with_timezone(&Utc);
        let spanning = vec![fact(Some(&step1[0].id), sunday, 2, 4, true), fact(Some(&step1[1].id), monday, 2, 4, true)];
        let plan = plan_today(program(), &position(1, Pace::Gentle), Together::Alone, &spanning, now(), berlin());
        assert_eq!(plan.kind, TodayKind::Exercise);
    }

    #[test]
    fn undone_exercises_come_before_repeats() {
        let step = program().step(1).unwrap();
        let first = plan_today(program(), &position(1, Pace::Committed), Together::Alone, &[], now(), berlin())
            .exercise
            .unwrap()
            .1;
        let did_first = vec![fact(Some(&first.id), now() - Duration::days(20), 2, 2, true)];
        let second = plan_today(program(), &position(1, Pace::Committed), Together::Alone, &did_first, now(), berlin())
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
        let plan = plan_today(program(), &p, Together::Alone, &[], now(), berlin());
        assert_eq!((plan.kind, plan.exercise), (TodayKind::Paused, None));
    }

    /// Check-ins long ago that did every solo exercise of `step` comfortably,
    /// and an intensity-4 one: the ladder is at 5 and only exercises for two
    /// are still undone.
    fn solo_done(step: u8) -> Vec<CheckinFact> {
        let at = now() - Duration::days(20);
        let four = program().step(5).unwrap().exercises.iter().find(|e| e.is_solo() && e.intensity.get() == 4);
        program()
            .step(step)
            .unwrap()
            .exercises
            .iter()
            .filter(|e| e.is_solo())
            .chain(four)
            .map(|e| fact(Some(&e.id), at, 2, 4, true))
            .collect()
    }

    fn shared(up_to_step: u8, max_intensity: u8, pace: Pace) -> Together {
        Together::Couple(Some(PartnerExercises { up_to_step, max_intensity, pace }))
    }

    #[test]
    fn couple_mode_suggests_exercises_for_two_only_within_what_both_share() {
        for step in 1..=10 {
            let done = solo_done(step);
            let plan =
                |together| plan_today(program(), &position(step, Pace::Committed), together, &done, now(), berlin());
            let both = plan(shared(step, 5, Pace::Committed));
            let (_, exercise) = both.exercise.unwrap();
            assert!(!exercise.is_solo(), "step {step}: an exercise for two once both reached it");
            assert!(both.reasons.iter().any(|r| r == TOGETHER_REASON), "{:?}", both.reasons);

            let ahead_of_partner = plan(shared(step - 1, 5, Pace::Committed));
            assert!(ahead_of_partner.exercise.unwrap().1.is_solo(), "step {step}: the partner has not reached it");
            let set_aside = plan(Together::Couple(None));
            assert!(set_aside.exercise.unwrap().1.is_solo(), "step {step}: set aside for both");
            // Nothing tells why: the same words whether the partner is behind
            // or partner exercises are set aside.
            assert_eq!(ahead_of_partner.reasons, set_aside.reasons);
            assert_eq!(ahead_of_partner.message, set_aside.message);
            assert!(set_aside.reasons.iter().any(|r| r == OWN_REASON));
            assert_eq!(set_aside.max_intensity, both.max_intensity, "one's own ladder is shown, not the couple's");

            // The lower ladder: only exercises for two at or below it.
            let low = plan(shared(step, 1, Pace::Committed)).exercise.unwrap().1;
            let any_gentle =
                program().step(step).unwrap().exercises.iter().any(|e| !e.is_solo() && e.intensity.get() == 1);
            assert_eq!(!low.is_solo(), any_gentle, "step {step}");
            assert!(low.intensity.get() <= 1 || low.is_solo());
        }
    }

    #[test]
    fn couple_mode_keeps_exercises_for_two_to_the_slower_pace() {
        let monday = berlin().with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().unwrap().with_timezone(&Utc);
        let step3 = &program().step(3).unwrap().exercises;
        let mut checkins = solo_done(3);
        checkins.push(fact(Some(&step3[0].id), monday, 2, 4, true));
        checkins.push(fact(Some(&step3[1].id), monday + Duration::days(1), 2, 4, true));
        let plan =
            |together| plan_today(program(), &position(3, Pace::Committed), together, &checkins, now(), berlin());
        // Two sessions this week: the gentle pace's two are done, so only one's own.
        let gentle = plan(shared(3, 5, Pace::Gentle));
        assert_eq!(gentle.kind, TodayKind::Exercise, "one's own pace allows more");
        assert!(gentle.exercise.unwrap().1.is_solo());
        let steady = plan(shared(3, 5, Pace::Steady));
        assert!(!steady.exercise.unwrap().1.is_solo(), "a steady pace allows a third, together");
    }

    #[test]
    fn distress_comes_before_anything_shared() {
        let hard = fact(None, now() - Duration::hours(2), 9, 1, false);
        let plan =
            plan_today(program(), &position(5, Pace::Steady), shared(5, 5, Pace::Steady), &[hard], now(), berlin());
        assert_eq!(plan.kind, TodayKind::Grounding);
        assert!(plan.exercise.unwrap().1.is_solo());
    }

    #[test]
    fn after_a_couple_link_ends_today_says_so_kindly_and_goes_on_as_partnered() {
        let done = solo_done(4);
        let ended = plan_today(program(), &position(4, Pace::Steady), Together::CoupleEnded, &done, now(), berlin());
        let partnered = plan_today(program(), &position(4, Pace::Steady), Together::Partnered, &done, now(), berlin());
        assert_eq!(ended.reasons.first().map(String::as_str), Some(COUPLE_ENDED_REASON));
        assert_eq!(ended.reasons[1..], partnered.reasons[..]);
        assert_eq!(ended.exercise, partnered.exercise);
        assert!(!partnered.reasons.iter().any(|r| r == COUPLE_ENDED_REASON));
    }
}
