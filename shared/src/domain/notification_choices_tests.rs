#![allow(clippy::unwrap_used, reason = "tests")]

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::*;
use crate::{Clock, ManualClock};

const BERLIN: Tz = chrono_tz::Europe::Berlin;

/// `local` ("2026-03-29 02:30") in `tz`, as UTC (the first of a repeated time).
fn at(tz: Tz, local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

fn quiet(start: &str, end: &str) -> QuietHours {
    QuietHours { start: LocalTime::parse(start).unwrap(), end: LocalTime::parse(end).unwrap() }
}

fn with_quiet(start: &str, end: &str) -> NotificationChoices {
    NotificationChoices { quiet_hours: quiet(start, end), ..NotificationChoices::default() }
}

#[test]
fn quiet_hours_that_span_midnight_end_the_next_morning() {
    let clock = ManualClock::new(at(BERLIN, "2026-11-15 23:10"));
    let night = quiet("22:00", "07:00");
    assert!(in_quiet_hours(night, BERLIN, clock.now()));
    assert_eq!(quiet_hours_end(night, BERLIN, clock.now()), Some(at(BERLIN, "2026-11-16 07:00")));
    clock.set(at(BERLIN, "2026-11-16 06:59"));
    assert_eq!(quiet_hours_end(night, BERLIN, clock.now()), Some(at(BERLIN, "2026-11-16 07:00")), "same morning");
    clock.set(at(BERLIN, "2026-11-16 07:00"));
    assert!(!in_quiet_hours(night, BERLIN, clock.now()), "the end is not quiet");
    assert_eq!(quiet_hours_end(night, BERLIN, clock.now()), None);
    clock.set(at(BERLIN, "2026-11-15 21:59"));
    assert!(!in_quiet_hours(night, BERLIN, clock.now()), "before the start is not quiet");
}

#[test]
fn quiet_hours_within_a_day_end_the_same_day() {
    let evening = quiet("17:00", "21:00");
    let sunday_six = at(BERLIN, "2026-11-15 18:00");
    assert_eq!(quiet_hours_end(evening, BERLIN, sunday_six), Some(at(BERLIN, "2026-11-15 21:00")));
    assert_eq!(quiet_hours_end(evening, BERLIN, at(BERLIN, "2026-11-15 16:59")), None);
    assert_eq!(quiet_hours_end(evening, BERLIN, at(BERLIN, "2026-11-15 21:00")), None);
}

#[test]
fn equal_start_and_end_mean_no_quiet_hours() {
    let none = quiet("08:00", "08:00");
    for local in ["2026-11-15 08:00", "2026-11-15 03:00", "2026-11-15 20:00"] {
        assert_eq!(quiet_hours_end(none, BERLIN, at(BERLIN, local)), None, "{local}");
    }
}

/// Quiet hours are on the wall clock: across the spring-forward night
/// (Berlin, 2026-03-29, 02:00 → 03:00) they last an hour less in real time, and
/// an end the clocks skip ends them at the jump.
#[test]
fn quiet_hours_follow_the_wall_clock_across_daylight_saving_changes() {
    let night = quiet("22:00", "07:00");
    let start = at(BERLIN, "2026-03-28 22:00");
    let end = quiet_hours_end(night, BERLIN, start).unwrap();
    assert_eq!(end, at(BERLIN, "2026-03-29 07:00"));
    assert_eq!((end - start).num_hours(), 8, "nine wall-clock hours, eight real ones");

    // Autumn (2026-10-25, 03:00 → 02:00): an hour more.
    let start = at(BERLIN, "2026-10-24 22:00");
    let end = quiet_hours_end(night, BERLIN, start).unwrap();
    assert_eq!((end - start).num_hours(), 10);

    // An end at 02:30 does not exist on the spring-forward night: 03:00 instead.
    let to_half_two = quiet("23:00", "02:30");
    let end = quiet_hours_end(to_half_two, BERLIN, at(BERLIN, "2026-03-29 01:00")).unwrap();
    assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(), "03:00 CEST, the instant of the jump");
    assert!(!in_quiet_hours(to_half_two, BERLIN, end));

    // The repeated hour of the autumn night is quiet both times round.
    let to_four = quiet("23:00", "04:00");
    let first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap(); // 02:30 CEST
    let second = Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap(); // 02:30 CET
    for now in [first, second] {
        assert_eq!(quiet_hours_end(to_four, BERLIN, now), Some(Utc.with_ymd_and_hms(2026, 10, 25, 3, 0, 0).unwrap()));
    }
}

#[test]
fn a_notification_is_sent_now_when_on_and_outside_quiet_hours() {
    let choices = NotificationChoices::default();
    let sunday_six = at(BERLIN, "2026-11-15 18:00");
    assert_eq!(choices.decide(NotificationKind::Reflection, BERLIN, sunday_six), Delivery::Now);
    assert_eq!(choices.decide(NotificationKind::Reminder, BERLIN, sunday_six), Delivery::Now);
}

#[test]
fn one_falling_due_in_quiet_hours_waits_for_their_end() {
    let choices = with_quiet("17:00", "21:00");
    let sunday_six = at(BERLIN, "2026-11-15 18:00");
    assert_eq!(
        choices.decide(NotificationKind::Reflection, BERLIN, sunday_six),
        Delivery::At(at(BERLIN, "2026-11-15 21:00"))
    );
}

#[test]
fn a_kind_switched_off_is_never_sent_and_the_other_still_is() {
    let choices = NotificationChoices { reflections: false, ..NotificationChoices::default() };
    let sunday_six = at(BERLIN, "2026-11-15 18:00");
    assert_eq!(choices.decide(NotificationKind::Reflection, BERLIN, sunday_six), Delivery::Never);
    assert_eq!(choices.decide(NotificationKind::Reminder, BERLIN, sunday_six), Delivery::Now);
}

#[test]
fn paused_means_never_until_the_pause_ends_and_off_beats_quiet_hours() {
    let clock = ManualClock::new(at(BERLIN, "2026-11-15 18:00"));
    let until = at(BERLIN, "2026-11-16 09:00");
    let paused = NotificationChoices { paused_until: Some(until), ..with_quiet("17:00", "21:00") };
    assert_eq!(paused.decide(NotificationKind::Reflection, BERLIN, clock.now()), Delivery::Never, "not deferred");
    clock.set(until - chrono::Duration::milliseconds(1));
    assert_eq!(paused.decide(NotificationKind::Reminder, BERLIN, clock.now()), Delivery::Never);
    clock.set(until);
    assert_eq!(paused.decide(NotificationKind::Reminder, BERLIN, clock.now()), Delivery::Now, "the pause is over");
}

#[test]
fn the_default_is_reminders_and_reflections_on_quiet_at_night_and_discreet() {
    let choices = NotificationChoices::default();
    assert_eq!(
        serde_json::to_value(&choices).unwrap(),
        json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
               "paused_until": null, "descriptive": false, "partner_updates": false})
    );
}

/// Stored choices are read strictly: anything that is not exactly a set of
/// choices is an error, never a guess.
#[test]
fn stored_choices_that_do_not_parse_are_errors() {
    let good = serde_json::to_value(NotificationChoices::default()).unwrap();
    assert_eq!(serde_json::from_value::<NotificationChoices>(good.clone()).unwrap(), NotificationChoices::default());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("reflections");
    let mut unknown = good.clone();
    unknown["partner_updatez"] = json!(true);
    let mut bad_time = good.clone();
    bad_time["quiet_hours"]["end"] = json!("25:00");
    let mut bad_type = good;
    bad_type["descriptive"] = json!("yes");
    for broken in [missing, unknown, bad_time, bad_type] {
        assert!(serde_json::from_value::<NotificationChoices>(broken.clone()).is_err(), "{broken}");
    }
    assert!(serde_json::from_str::<NotificationChoices>("{not json").is_err());
}

#[test]
fn input_names_every_missing_or_wrong_field() {
    let input: NotificationChoicesInput = serde_json::from_value(json!({
        "reflections": true,
        "quiet_hours": {"start": "22:61"},
        "paused_until": "next tuesday",
    }))
    .unwrap();
    let errors = NotificationChoices::parse(input, &NotificationChoices::default()).unwrap_err();
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["reminders", "quiet_hours.start", "quiet_hours.end", "paused_until", "descriptive"]);

    let input: NotificationChoicesInput = serde_json::from_value(json!({
        "reminders": false, "reflections": true, "quiet_hours": {"start": "23:00", "end": "06:30"},
        "paused_until": null, "descriptive": true,
    }))
    .unwrap();
    let choices = NotificationChoices::parse(input, &NotificationChoices::default()).unwrap();
    assert_eq!(
        choices,
        NotificationChoices {
            reminders: false,
            quiet_hours: quiet("23:00", "06:30"),
            descriptive: true,
            ..NotificationChoices::default()
        }
    );

    // `partner_updates` is opt-in: left out, the current choice stays.
    let opted_in = NotificationChoices { partner_updates: true, ..NotificationChoices::default() };
    let without: NotificationChoicesInput = serde_json::from_value(json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false,
    }))
    .unwrap();
    assert!(NotificationChoices::parse(without.clone(), &opted_in).unwrap().partner_updates);
    assert!(!NotificationChoices::parse(without, &NotificationChoices::default()).unwrap().partner_updates);
    let off: NotificationChoicesInput = serde_json::from_value(json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false, "partner_updates": false,
    }))
    .unwrap();
    assert!(!NotificationChoices::parse(off, &opted_in).unwrap().partner_updates);
    // Choices stored before the field existed read as off.
    let stored: NotificationChoices = serde_json::from_value(json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false,
    }))
    .unwrap();
    assert_eq!(stored, NotificationChoices::default());
    assert!(!stored.allows(NotificationKind::PartnerUpdate));

    let absent_pause: NotificationChoicesInput = serde_json::from_value(json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "23:00", "end": "06:30"}, "descriptive": true,
    }))
    .unwrap();
    let errors = NotificationChoices::parse(absent_pause, &NotificationChoices::default()).unwrap_err();
    assert_eq!(errors.0[0].field, "paused_until", "absent is not the same as null");
}
