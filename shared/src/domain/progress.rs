//! Moving through the steps. Only the person advances, and only when the step has
//! had its time, some practice, and no recent distress; stepping back is always
//! allowed and never judged.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::history::CheckinSummary;
use super::pacing::{CheckinFact, Pace};
use crate::content::Program;

/// Completed exercises of the current step needed before advancing.
pub const REQUIRED_PRACTICE: usize = 2;
/// No distress signal in this long before advancing.
pub const CALM_BEFORE_ADVANCING: Duration = Duration::days(3);
pub const LAST_STEP: u8 = 10;

/// Where a person is in the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub step: u8,
    pub step_started_at: DateTime<Utc>,
    pub pace: Pace,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmetCode {
    /// The step has not had its minimum time yet.
    MinimumTime,
    /// Fewer than two exercises of the step completed.
    Practice,
    /// A check-in in the last three days showed distress.
    RecentDistress,
    /// Step 10 is the last step.
    LastStep,
    /// The enrollment is paused.
    Paused,
}

/// One reason advancing is not possible yet, kindly worded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UnmetReason {
    pub code: UnmetCode,
    pub message: String,
    /// For `minimum_time`: when the step's time is up (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_at: Option<String>,
    /// For `practice`: completed exercises of this step so far, and needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<usize>,
}

impl UnmetReason {
    fn new(code: UnmetCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), available_at: None, completed: None, required: None }
    }
}

/// Distinct exercises of `step` with a completed check-in, over a whole history.
pub fn completed_in_step(program: &Program, step: u8, checkins: &[CheckinFact]) -> usize {
    completed_in(program, step, &CheckinSummary::of(checkins))
}

/// Distinct exercises of `step` with a completed check-in.
pub fn completed_in(program: &Program, step: u8, summary: &CheckinSummary) -> usize {
    let Some(step) = program.step(step) else { return 0 };
    step.exercises.iter().filter(|e| summary.completed(&e.id).is_some()).count()
}

/// Every reason advancing is not possible now, over a whole history.
pub fn advance_blockers(
    position: &Position,
    program: &Program,
    checkins: &[CheckinFact],
    now: DateTime<Utc>,
) -> Vec<UnmetReason> {
    blockers(position, program, &CheckinSummary::of(checkins), now)
}

/// Every reason advancing is not possible now; empty when it is.
pub fn blockers(
    position: &Position,
    program: &Program,
    summary: &CheckinSummary,
    now: DateTime<Utc>,
) -> Vec<UnmetReason> {
    let mut unmet = Vec::new();
    if position.step >= LAST_STEP {
        unmet.push(UnmetReason::new(
            UnmetCode::LastStep,
            "This is the last step. There is nothing to rush toward; stay as long as it helps.",
        ));
    }
    if position.paused {
        unmet.push(UnmetReason::new(UnmetCode::Paused, "Your program is paused. Resume it whenever you are ready."));
    }
    let ready_at = position.step_started_at + Duration::days(position.pace.min_days_in_step());
    if now < ready_at {
        let mut reason = UnmetReason::new(
            UnmetCode::MinimumTime,
            format!(
                "At a {} pace each step gets at least {} days, so there is time for it to settle.",
                position.pace.as_str(),
                position.pace.min_days_in_step()
            ),
        );
        reason.available_at = Some(ready_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        unmet.push(reason);
    }
    let completed = completed_in(program, position.step, summary);
    if completed < REQUIRED_PRACTICE {
        let mut reason = UnmetReason::new(
            UnmetCode::Practice,
            "Try at least two of this step's exercises first, whichever feel right.",
        );
        reason.completed = Some(completed);
        reason.required = Some(REQUIRED_PRACTICE);
        unmet.push(reason);
    }
    if summary.distress_within(now, CALM_BEFORE_ADVANCING) {
        unmet.push(UnmetReason::new(
            UnmetCode::RecentDistress,
            "A recent check-in said things felt hard. Let's stay here for now and be gentle with yourself.",
        ));
    }
    unmet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::catalog;

    fn program() -> &'static Program {
        catalog().unwrap().program("closer").unwrap()
    }

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn position(pace: Pace) -> Position {
        Position { step: 3, step_started_at: start(), pace, paused: false }
    }

    fn done(exercise: &str, at: DateTime<Utc>) -> CheckinFact {
        CheckinFact { occurred_at: at, anxiety: 2, comfort: 4, exercise_id: Some(exercise.into()), completed: true }
    }

    fn step3_ids() -> Vec<String> {
        program().step(3).unwrap().exercises.iter().map(|e| e.id.clone()).collect()
    }

    fn codes(reasons: &[UnmetReason]) -> Vec<UnmetCode> {
        reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn minimum_days_per_pace_to_the_second() {
        let ids = step3_ids();
        let practice = vec![done(&ids[0], start()), done(&ids[1], start())];
        for (pace, days) in [(Pace::Gentle, 7), (Pace::Steady, 5), (Pace::Committed, 3)] {
            let ready = start() + Duration::days(days);
            let early = advance_blockers(&position(pace), program(), &practice, ready - Duration::seconds(1));
            assert_eq!(codes(&early), [UnmetCode::MinimumTime], "{pace:?}");
            assert!(early[0].available_at.is_some());
            assert!(advance_blockers(&position(pace), program(), &practice, ready).is_empty(), "{pace:?}");
        }
    }

    #[test]
    fn two_distinct_exercises_of_the_step_are_needed() {
        let ids = step3_ids();
        let now = start() + Duration::days(10);
        let one_twice = vec![done(&ids[0], start()), done(&ids[0], start() + Duration::days(1))];
        let unmet = advance_blockers(&position(Pace::Steady), program(), &one_twice, now);
        assert_eq!(codes(&unmet), [UnmetCode::Practice]);
        assert_eq!((unmet[0].completed, unmet[0].required), (Some(1), Some(2)));
        let other_step = program().step(2).unwrap().exercises[0].id.clone();
        let wrong_step = vec![done(&ids[0], start()), done(&other_step, start())];
        assert_eq!(
            codes(&advance_blockers(&position(Pace::Steady), program(), &wrong_step, now)),
            [UnmetCode::Practice]
        );
        let not_completed = vec![done(&ids[0], start()), CheckinFact { completed: false, ..done(&ids[1], start()) }];
        assert_eq!(
            codes(&advance_blockers(&position(Pace::Steady), program(), &not_completed, now)),
            [UnmetCode::Practice]
        );
    }

    #[test]
    fn distress_in_the_last_three_days_holds_the_step() {
        let ids = step3_ids();
        let now = start() + Duration::days(10);
        let hard = |hours_ago: i64, anxiety: i64, comfort: i64| CheckinFact {
            occurred_at: now - Duration::hours(hours_ago),
            anxiety,
            comfort,
            exercise_id: None,
            completed: false,
        };
        let mut checkins = vec![done(&ids[0], start()), done(&ids[1], start())];
        checkins.push(hard(71, 8, 3));
        assert_eq!(
            codes(&advance_blockers(&position(Pace::Gentle), program(), &checkins, now)),
            [UnmetCode::RecentDistress]
        );
        checkins.pop();
        checkins.push(hard(1, 3, 1));
        assert_eq!(
            codes(&advance_blockers(&position(Pace::Gentle), program(), &checkins, now)),
            [UnmetCode::RecentDistress]
        );
        checkins.pop();
        checkins.push(hard(72, 10, 1));
        checkins.push(hard(2, 7, 2));
        assert!(advance_blockers(&position(Pace::Gentle), program(), &checkins, now).is_empty(), "72 h ago is past");
    }

    #[test]
    fn every_unmet_reason_is_listed_at_once() {
        let mut p = position(Pace::Gentle);
        p.paused = true;
        p.step = 10;
        let distress =
            CheckinFact { occurred_at: start(), anxiety: 9, comfort: 1, exercise_id: None, completed: false };
        let unmet = advance_blockers(&p, program(), &[distress], start() + Duration::hours(1));
        assert_eq!(
            codes(&unmet),
            [
                UnmetCode::LastStep,
                UnmetCode::Paused,
                UnmetCode::MinimumTime,
                UnmetCode::Practice,
                UnmetCode::RecentDistress
            ]
        );
        assert!(unmet.iter().all(|r| !r.message.to_lowercase().contains("fail")), "never judging");
    }
}
