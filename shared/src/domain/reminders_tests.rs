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
    assert_eq!(allowed(("12:00", "20:00"), ("14:00", "15:00")), [(m("12:00"), m("14:00")), (m("15:00"), m("20:00"))]);
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
    let daily: BTreeSet<_> = (0..20u64).map(|day| reminder_text(false, None, 1_763_000_000 + day * 86_400)).collect();
    assert!(daily.len() >= 4);
}
