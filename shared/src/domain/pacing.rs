//! Pace, weeks and the safety signal: the small facts the program's rules share.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::history::CheckinSummary;

/// How often a person wants to practise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// Two sessions a week; at least 7 days in a step.
    Gentle,
    /// Three sessions a week; at least 5 days in a step.
    Steady,
    /// Five sessions a week; at least 3 days in a step.
    Committed,
}

impl Pace {
    pub fn sessions_per_week(self) -> u32 {
        match self {
            Self::Gentle => 2,
            Self::Steady => 3,
            Self::Committed => 5,
        }
    }

    pub fn min_days_in_step(self) -> i64 {
        match self {
            Self::Gentle => 7,
            Self::Steady => 5,
            Self::Committed => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gentle => "gentle",
            Self::Steady => "steady",
            Self::Committed => "committed",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "gentle" => Ok(Self::Gentle),
            "steady" => Ok(Self::Steady),
            "committed" => Ok(Self::Committed),
            _ => Err("must be gentle, steady or committed".into()),
        }
    }
}

/// What the rules need of a synced check-in (never its private note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinFact {
    pub occurred_at: DateTime<Utc>,
    pub anxiety: i64,
    pub comfort: i64,
    pub exercise_id: Option<String>,
    pub completed: bool,
}

/// Anxiety at or above this is a distress signal.
pub const DISTRESS_ANXIETY: i64 = 8;
/// Comfort at or below this is a distress signal.
pub const DISTRESS_COMFORT: i64 = 1;

impl CheckinFact {
    pub fn is_distress(&self) -> bool {
        self.anxiety >= DISTRESS_ANXIETY || self.comfort <= DISTRESS_COMFORT
    }
}

/// Whether any check-in in `(now - window, now]` signals distress. Check-ins dated
/// in the future (a device clock ahead) count as now. Over a whole history; the
/// store reads [`CheckinSummary::distress_within`].
pub fn distress_within(checkins: &[CheckinFact], now: DateTime<Utc>, window: Duration) -> bool {
    CheckinSummary::of(checkins).distress_within(now, window)
}

/// The local week (Monday 00:00 to the next Monday 00:00) containing `now`, in
/// the person's zone, as UTC instants `[start, end)`.
pub fn week_of(now: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let days = week_days(now, tz);
    (days[0], days[7])
}

/// The local midnights of the week containing `now`: Monday's, each following
/// day's, and the next Monday's, as UTC instants. Day `i` is `[days[i], days[i + 1])`.
pub fn week_days(now: DateTime<Utc>, tz: Tz) -> [DateTime<Utc>; 8] {
    let local_date = now.with_timezone(&tz).date_naive();
    let monday = local_date - Duration::days(i64::from(local_date.weekday().num_days_from_monday()));
    std::array::from_fn(|day| local_midnight(monday + Duration::days(day as i64), tz))
}

/// The first instant of `date` in `tz` (midnight, or the first valid time when a
/// daylight-saving change skips midnight).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut time = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(instant) = tz.from_local_datetime(&time).earliest() {
            return instant.with_timezone(&Utc);
        }
        time += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Sessions in the week of `now`: local days with at least one completed
/// exercise. Over a whole history; the store reads
/// [`CheckinSummary::sessions_this_week`].
pub fn sessions_this_week(checkins: &[CheckinFact], now: DateTime<Utc>, tz: Tz) -> u32 {
    CheckinSummary::of(checkins).sessions_this_week(now, tz)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(tz: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap().with_timezone(&Utc)
    }

    fn done(when: DateTime<Utc>) -> CheckinFact {
        CheckinFact { occurred_at: when, anxiety: 2, comfort: 4, exercise_id: Some("x".into()), completed: true }
    }

    #[test]
    fn paces_have_their_numbers() {
        assert_eq!([Pace::Gentle, Pace::Steady, Pace::Committed].map(Pace::sessions_per_week), [2, 3, 5]);
        assert_eq!([Pace::Gentle, Pace::Steady, Pace::Committed].map(Pace::min_days_in_step), [7, 5, 3]);
        assert_eq!(Pace::parse("steady"), Ok(Pace::Steady));
        assert!(Pace::parse("fast").is_err());
    }

    #[test]
    fn distress_thresholds_are_inclusive() {
        let base = CheckinFact { occurred_at: Utc::now(), anxiety: 7, comfort: 2, exercise_id: None, completed: false };
        assert!(!base.is_distress());
        assert!(CheckinFact { anxiety: 8, ..base.clone() }.is_distress());
        assert!(CheckinFact { comfort: 1, ..base.clone() }.is_distress());
    }

    #[test]
    fn distress_window_edges() {
        let now = at(chrono_tz::UTC, 2026, 11, 23, 12, 0);
        let distress = |hours_ago: i64| CheckinFact {
            occurred_at: now - Duration::hours(hours_ago),
            anxiety: 9,
            comfort: 3,
            exercise_id: None,
            completed: false,
        };
        assert!(distress_within(&[distress(47)], now, Duration::hours(48)));
        assert!(!distress_within(&[distress(48)], now, Duration::hours(48)), "exactly 48 h ago is outside");
        assert!(distress_within(&[distress(-2)], now, Duration::hours(48)), "a clock ahead still counts");
    }

    #[test]
    fn weeks_start_on_local_monday() {
        let auckland = chrono_tz::Pacific::Auckland;
        // Monday 00:30 in Auckland is still Sunday in UTC.
        let now = at(auckland, 2026, 11, 23, 0, 30);
        let (start, end) = week_of(now, auckland);
        assert_eq!(start, at(auckland, 2026, 11, 23, 0, 0));
        assert_eq!(end, at(auckland, 2026, 11, 30, 0, 0));
        // Sunday 23:59 in Los Angeles belongs to the week that began six days before.
        let la = chrono_tz::America::Los_Angeles;
        let sunday_night = at(la, 2026, 11, 29, 23, 59);
        assert_eq!(week_of(sunday_night, la).0, at(la, 2026, 11, 23, 0, 0));
    }

    #[test]
    fn a_week_across_a_daylight_saving_change_has_its_real_length() {
        let berlin = chrono_tz::Europe::Berlin;
        // The week of 2026-03-29, when Berlin springs forward, is 167 hours long.
        let (start, end) = week_of(at(berlin, 2026, 3, 25, 12, 0), berlin);
        assert_eq!(end - start, Duration::hours(167));
    }

    /// What lets the stored summary count sessions by quarter-hour slot
    /// (`history::SLOT`): in every zone, every week from 2000 to 2100 starts on
    /// a quarter hour.
    #[test]
    fn local_midnights_fall_on_quarter_hours() {
        let quarter = super::super::history::SLOT.num_milliseconds();
        let first = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap(); // a Monday
        for tz in chrono_tz::TZ_VARIANTS {
            for week in 0..(100 * 53) {
                let start = local_midnight(first + Duration::weeks(week), tz);
                assert_eq!(start.timestamp_millis().rem_euclid(quarter), 0, "{tz} week of {start}");
            }
        }
    }

    #[test]
    fn sessions_count_local_days_with_a_completed_exercise() {
        let la = chrono_tz::America::Los_Angeles;
        let now = at(la, 2026, 11, 26, 20, 0); // Thursday
        let checkins = vec![
            done(at(la, 2026, 11, 23, 9, 0)),
            done(at(la, 2026, 11, 23, 21, 0)), // same day: one session
            done(at(la, 2026, 11, 25, 7, 0)),
            done(at(la, 2026, 11, 22, 23, 30)), // last week (Sunday night)
            CheckinFact { completed: false, ..done(at(la, 2026, 11, 24, 9, 0)) },
            CheckinFact { exercise_id: None, ..done(at(la, 2026, 11, 24, 10, 0)) },
        ];
        assert_eq!(sessions_this_week(&checkins, now, la), 2);
    }
}
