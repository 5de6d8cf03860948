//! Tests of the weekly reflection's rules.

use chrono_tz::{America, Pacific};
use serde_json::json;

use super::*;

fn date(raw: &str) -> NaiveDate {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
}

fn utc(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().with_timezone(&Utc)
}

fn week(monday: &str) -> ReflectionWeek {
    ReflectionWeek::parse(monday).unwrap()
}

fn resources() -> CountryResources {
    CountryResources { country: Some("NZ".into()), notice: None, entries: Vec::new() }
}

/// A week with check-ins and these averages and distress signals.
fn stats(anxiety: f64, comfort: f64, distress: u32) -> WeekStats {
    WeekStats {
        checkin_count: 4,
        active_days: 3,
        mood_avg: Some(3.0),
        anxiety_avg: Some(anxiety),
        comfort_avg: Some(comfort),
        distress_count: distress,
        ..WeekStats::default()
    }
}

fn focus_of(this: &WeekStats, previous: Option<&WeekStats>, before: Option<&WeekStats>) -> FocusKind {
    reflect(week("2026-11-16"), this, previous, before, &resources(), 0).focus.kind
}

#[test]
fn weeks_run_monday_to_sunday() {
    for day in ["2026-11-16", "2026-11-18", "2026-11-22"] {
        let w = ReflectionWeek::for_local_date(date(day));
        assert_eq!((w.start(), w.end()), (date("2026-11-16"), date("2026-11-22")), "{day}");
    }
    assert_eq!(week("2026-11-16").previous(), week("2026-11-09"));
    assert_eq!(week("2026-11-16").next(), week("2026-11-23"));
    assert_eq!(week("2026-11-16").to_string(), "2026-11-16");
    assert!(ReflectionWeek::parse("2026-11-17").unwrap_err().contains("2026-11-16"));
    assert!(ReflectionWeek::parse("16/11/2026").is_err());
    assert!(ReflectionWeek::parse("2026-02-30").is_err());
}

#[test]
fn the_week_is_local_in_auckland_and_los_angeles() {
    // Monday 00:30 in Auckland is Sunday in UTC; Sunday 23:30 in LA is Monday in UTC.
    assert_eq!(ReflectionWeek::containing(utc("2026-11-22T11:30:00Z"), Pacific::Auckland), week("2026-11-23"));
    assert_eq!(ReflectionWeek::containing(utc("2026-11-23T07:30:00Z"), America::Los_Angeles), week("2026-11-16"));
}

#[test]
fn reflections_fall_due_on_sunday_at_six_in_the_evening_local() {
    let auckland = Pacific::Auckland;
    let la = America::Los_Angeles;
    assert_eq!(week("2026-11-16").due_at(auckland), utc("2026-11-22T05:00:00Z")); // NZDT, UTC+13
    assert_eq!(week("2026-11-16").due_at(la), utc("2026-11-23T02:00:00Z")); // PST, UTC-8
    for (tz, due) in [(auckland, utc("2026-11-22T05:00:00Z")), (la, utc("2026-11-23T02:00:00Z"))] {
        let just_before = due - Duration::minutes(1);
        assert_eq!(ReflectionWeek::last_due_week(just_before, tz), week("2026-11-09"), "{tz} 17:59");
        assert_eq!(ReflectionWeek::last_due_week(due, tz), week("2026-11-16"), "{tz} 18:00");
        assert_eq!(ReflectionWeek::last_due_week(due + Duration::hours(7), tz), week("2026-11-16"), "{tz} Monday");
    }
}

#[test]
fn weeks_with_a_daylight_saving_change_fall_due_at_local_six() {
    let la = America::Los_Angeles;
    // Los Angeles goes back an hour on Sunday 2026-11-01 at 02:00; 18:00 is PST.
    let fall = week("2026-10-26");
    assert_eq!(fall.due_at(la), utc("2026-11-02T02:00:00Z"));
    assert_eq!(fall.bounds(la).1 - fall.bounds(la).0, Duration::hours(169));
    assert_eq!(ReflectionWeek::last_due_week(utc("2026-11-02T01:59:00Z"), la), week("2026-10-19"));
    assert_eq!(ReflectionWeek::last_due_week(utc("2026-11-02T02:00:00Z"), la), fall);
    // ... and forward on 2026-03-08; 18:00 is PDT.
    assert_eq!(week("2026-03-02").due_at(la), utc("2026-03-09T01:00:00Z"));

    let auckland = Pacific::Auckland;
    // Auckland springs forward on 2026-09-27 (UTC+12 → +13) and falls back on 2026-04-05.
    let spring = week("2026-09-21");
    assert_eq!(spring.due_at(auckland), utc("2026-09-27T05:00:00Z"));
    assert_eq!(spring.bounds(auckland).1 - spring.bounds(auckland).0, Duration::hours(167));
    assert_eq!(ReflectionWeek::last_due_week(utc("2026-09-27T04:59:00Z"), auckland), week("2026-09-14"));
    assert_eq!(ReflectionWeek::last_due_week(utc("2026-09-27T05:00:00Z"), auckland), spring);
    let autumn = week("2026-03-30");
    assert_eq!(autumn.due_at(auckland), utc("2026-04-05T06:00:00Z"));
    assert_eq!(autumn.bounds(auckland), (utc("2026-03-29T11:00:00Z"), utc("2026-04-05T12:00:00Z")));
}

#[test]
fn averages_round_to_one_decimal() {
    let this =
        WeekStats { mood_avg: Some(3.456), anxiety_avg: Some(4.04), comfort_avg: Some(2.25), ..stats(0.0, 0.0, 0) };
    let r = reflect(week("2026-11-16"), &this, None, None, &resources(), 0);
    assert_eq!(r.averages, Averages { mood: Some(3.5), anxiety: Some(4.0), comfort: Some(2.3) });
    assert_eq!(round1(4.75), 4.8);
    assert_eq!(round1(-0.04), 0.0);
    assert!(round1(-0.04).is_sign_positive(), "no -0.0 in the JSON");
    assert_eq!(round1(0.1 + 0.2), 0.3);
}

#[test]
fn changes_compare_the_shown_figures_and_are_null_without_a_prior_week() {
    let this = WeekStats { mood_avg: Some(3.456), anxiety_avg: Some(4.04), comfort_avg: None, ..stats(0.0, 0.0, 0) };
    let previous =
        WeekStats { mood_avg: Some(3.04), anxiety_avg: Some(4.96), comfort_avg: Some(3.0), ..stats(0.0, 0.0, 0) };
    let r = reflect(week("2026-11-16"), &this, Some(&previous), None, &resources(), 0);
    // 3.5 − 3.0 and 4.0 − 5.0; no comfort this week, so no change in it.
    assert_eq!(r.changes, Some(Averages { mood: Some(0.5), anxiety: Some(-1.0), comfort: None }));

    let same = reflect(week("2026-11-16"), &this, Some(&this), None, &resources(), 0);
    assert!(same.changes.unwrap().mood.unwrap().is_sign_positive());

    assert_eq!(reflect(week("2026-11-16"), &this, None, None, &resources(), 0).changes, None);
    let quiet = WeekStats::default();
    assert_eq!(reflect(week("2026-11-16"), &this, Some(&quiet), None, &resources(), 0).changes, None);
    assert_eq!(reflect(week("2026-11-16"), &quiet, Some(&this), None, &resources(), 0).changes, None);
}

#[test]
fn a_week_without_check_ins_is_a_quiet_week() {
    let r = reflect(week("2026-11-16"), &WeekStats::default(), Some(&stats(2.0, 4.0, 0)), None, &resources(), 3);
    assert_eq!((r.checkin_count, r.active_days), (0, 0));
    assert_eq!(r.averages, Averages::default());
    assert_eq!(r.changes, None);
    assert_eq!(r.focus.kind, FocusKind::KeepPace);
    assert!(r.focus.message.contains("Quiet weeks are part of it too"));
    assert_eq!(r.focus.resources, None);
    // Stale averages in an empty aggregate are ignored.
    let odd = WeekStats { anxiety_avg: Some(9.0), ..WeekStats::default() };
    assert_eq!(reflect(week("2026-11-16"), &odd, None, None, &resources(), 0).averages, Averages::default());
}

#[test]
fn slowing_down_starts_at_any_distress_or_a_notable_change() {
    let previous = stats(3.0, 3.0, 0);
    assert_eq!(focus_of(&stats(3.0, 3.0, 0), Some(&previous), None), FocusKind::KeepPace);
    assert_eq!(focus_of(&stats(3.0, 3.0, 1), Some(&previous), None), FocusKind::SlowDown);
    assert_eq!(focus_of(&stats(3.0, 3.0, 1), None, None), FocusKind::SlowDown);
    // Anxiety: +0.9 is not notable, +1.0 is (also after rounding: 3.95 shows as 4.0).
    assert_eq!(focus_of(&stats(3.9, 3.0, 0), Some(&previous), None), FocusKind::KeepPace);
    assert_eq!(focus_of(&stats(4.0, 3.0, 0), Some(&previous), None), FocusKind::SlowDown);
    assert_eq!(focus_of(&stats(3.95, 3.0, 0), Some(&previous), None), FocusKind::SlowDown);
    assert_eq!(focus_of(&stats(3.94, 3.0, 0), Some(&previous), None), FocusKind::KeepPace);
    // Comfort: −0.4 is not notable, −0.5 is.
    assert_eq!(focus_of(&stats(3.0, 2.6, 0), Some(&previous), None), FocusKind::KeepPace);
    assert_eq!(focus_of(&stats(3.0, 2.5, 0), Some(&previous), None), FocusKind::SlowDown);
    // Getting easier is never a reason to slow down.
    assert_eq!(focus_of(&stats(1.0, 5.0, 0), Some(&previous), None), FocusKind::KeepPace);
    // Without a week before with check-ins, nothing to compare.
    assert_eq!(focus_of(&stats(9.0, 1.5, 0), Some(&WeekStats::default()), None), FocusKind::KeepPace);

    let r = reflect(week("2026-11-16"), &stats(3.0, 3.0, 1), Some(&previous), None, &resources(), 0);
    assert_eq!(r.focus.resources, Some(resources()), "distress brings resources");
    let r = reflect(week("2026-11-16"), &stats(4.0, 3.0, 0), Some(&previous), None, &resources(), 0);
    assert_eq!(r.focus.resources, None);
}

#[test]
fn two_weeks_of_rising_distress_suggest_professional_support() {
    let calm = stats(3.0, 3.0, 0);
    // Distress signals 0 → 1 → 2.
    let r = reflect(week("2026-11-16"), &stats(3.0, 3.0, 2), Some(&stats(3.0, 3.0, 1)), Some(&calm), &resources(), 0);
    assert_eq!(r.focus.kind, FocusKind::SeekSupport);
    assert_eq!(r.focus.resources, Some(resources()));
    // Anxiety up 1.0 twice, ending with a distress signal.
    assert_eq!(focus_of(&stats(5.0, 3.0, 1), Some(&stats(4.0, 3.0, 1)), Some(&calm)), FocusKind::SeekSupport);
    // Comfort down 0.5 twice, ending with a distress signal.
    assert_eq!(focus_of(&stats(3.0, 2.0, 1), Some(&stats(3.0, 2.5, 1)), Some(&calm)), FocusKind::SeekSupport);
    // Mixed: more distress signals, then notably lower comfort with as many.
    assert_eq!(focus_of(&stats(3.0, 2.5, 1), Some(&stats(3.0, 3.0, 1)), Some(&calm)), FocusKind::SeekSupport);
}

#[test]
fn short_of_two_rising_weeks_it_stays_slow_down() {
    let calm = stats(3.0, 3.0, 0);
    // Only one rise: 1 → 1 → 2.
    assert_eq!(
        focus_of(&stats(3.0, 3.0, 2), Some(&stats(3.0, 3.0, 1)), Some(&stats(3.0, 3.0, 1))),
        FocusKind::SlowDown
    );
    // The second rise just short of notable (+0.9), distress counts flat.
    assert_eq!(
        focus_of(&stats(4.9, 3.0, 1), Some(&stats(4.0, 3.0, 1)), Some(&stats(3.0, 3.0, 1))),
        FocusKind::SlowDown
    );
    // Comfort falling 0.4 a week is not notable.
    assert_eq!(
        focus_of(&stats(3.0, 2.2, 1), Some(&stats(3.0, 2.6, 1)), Some(&stats(3.0, 3.0, 1))),
        FocusKind::SlowDown
    );
    // Rising, but no distress signal this week.
    assert_eq!(focus_of(&stats(5.0, 3.0, 0), Some(&stats(4.0, 3.0, 0)), Some(&calm)), FocusKind::SlowDown);
    // Three weeks are needed.
    assert_eq!(focus_of(&stats(3.0, 3.0, 2), Some(&stats(3.0, 3.0, 1)), None), FocusKind::SlowDown);
    // A quiet week in between breaks the run.
    assert_eq!(
        focus_of(&stats(3.0, 3.0, 2), Some(&WeekStats::default()), Some(&stats(3.0, 3.0, 1))),
        FocusKind::SlowDown
    );
    assert!(!rising_distress(&stats(3.0, 3.0, 2), Some(&WeekStats::default()), Some(&calm)));
    // Distress falling after a peak.
    assert_eq!(focus_of(&stats(3.0, 3.0, 1), Some(&stats(3.0, 3.0, 3)), Some(&calm)), FocusKind::SlowDown);
}

#[test]
fn exercises_and_step_changes_are_listed_in_order() {
    let this = WeekStats {
        exercises_completed: vec![(2, 1), (1, 2), (2, 3), (3, 0)],
        step_changes: vec![
            StepChangeFact { from: 2, to: 1, at: utc("2026-11-20T10:00:00Z") },
            StepChangeFact { from: 1, to: 2, at: utc("2026-11-18T19:00:00Z") },
        ],
        ..stats(3.0, 3.0, 0)
    };
    let r = reflect(week("2026-11-16"), &this, None, None, &resources(), 0);
    assert_eq!(r.exercises_completed, [ExerciseCount { step: 1, count: 2 }, ExerciseCount { step: 2, count: 4 }]);
    assert_eq!(r.step_changes.iter().map(|c| (c.from, c.to)).collect::<Vec<_>>(), [(1, 2), (2, 1)]);
}

#[test]
fn the_reflection_serializes_to_the_documented_shape() {
    let this = WeekStats {
        checkin_count: 5,
        active_days: 4,
        mood_avg: Some(3.456),
        anxiety_avg: Some(4.0),
        comfort_avg: Some(2.25),
        distress_count: 0,
        exercises_completed: vec![(1, 2), (2, 1)],
        step_changes: vec![StepChangeFact { from: 1, to: 2, at: utc("2026-11-18T19:00:00Z") }],
    };
    let r = reflect(week("2026-11-16"), &this, None, None, &resources(), 7);
    let value = serde_json::to_value(&r).unwrap();
    assert_eq!(
        value,
        json!({
            "week_start": "2026-11-16",
            "week_end": "2026-11-22",
            "checkin_count": 5,
            "active_days": 4,
            "averages": {"mood": 3.5, "anxiety": 4.0, "comfort": 2.3},
            "changes": null,
            "exercises_completed": [{"step": 1, "count": 2}, {"step": 2, "count": 1}],
            "step_changes": [{"from": 1, "to": 2, "at": "2026-11-18T19:00:00Z"}],
            "prompt": r.prompt,
            "focus": {"kind": "keep_pace", "message": KEEP_PACE, "resources": null}
        })
    );
    assert!(PROMPTS.contains(&r.prompt.as_str()));
    assert_eq!(serde_json::from_value::<Reflection>(value).unwrap(), r, "a stored reflection reads back");

    let previous = stats(3.0, 3.0, 0);
    let support =
        reflect(week("2026-11-16"), &stats(3.0, 3.0, 2), Some(&stats(3.0, 3.0, 1)), Some(&previous), &resources(), 1);
    let value = serde_json::to_value(&support).unwrap();
    assert_eq!(value["changes"], json!({"mood": 0.0, "anxiety": 0.0, "comfort": 0.0}));
    assert_eq!(value["focus"]["kind"], "seek_support");
    assert_eq!(value["focus"]["resources"], json!({"country": "NZ", "notice": null, "entries": []}));
    assert_eq!(serde_json::from_value::<Reflection>(value).unwrap(), support);
}

#[test]
fn prompts_are_chosen_by_seed() {
    let prompt = |seed| reflect(week("2026-11-16"), &WeekStats::default(), None, None, &resources(), seed).prompt;
    assert_eq!(prompt(42), prompt(42));
    let seen: std::collections::BTreeSet<String> = (0..100).map(prompt).collect();
    assert_eq!(seen.len(), PROMPTS.len(), "every prompt comes up");
}

#[test]
fn nothing_written_here_sounds_like_guilt() {
    const GUILT: [&str; 9] =
        ["missed", "streak", "don't forget", "don’t forget", "you haven't", "you haven’t", "again", "behind", "late"];
    let (notice_title, notice_body) = reflection_notice();
    let texts = PROMPTS.iter().chain(&[SEEK_SUPPORT, SLOW_DOWN_AFTER_DISTRESS, SLOW_DOWN, KEEP_PACE, QUIET_WEEK]);
    for text in texts.chain(&[notice_title, notice_body]) {
        let lower = text.to_lowercase();
        for word in GUILT {
            assert!(!lower.contains(word), "{word:?} in {text:?}");
        }
    }
}
