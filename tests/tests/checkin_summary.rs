//! The summary of check-ins that the program's rules read (`sync::summary`):
//! after any sequence of pushes, edits and deletes through the real API it
//! equals the summary of the whole stored history; the migration computes it
//! for people who had check-ins before it; and `today` follows it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::collections::BTreeMap;

use attune_shared::{
    Clock,
    content::catalog,
    domain::{history::CheckinSummary, pacing::week_days},
    sync::summary::{self, all_facts, read_all},
};
use attune_tests::{TestApp, TestUser, read};
use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestRunner},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// One check-in as a push writes it.
#[derive(Debug, Clone)]
struct Checkin {
    /// Minutes before the test's start: spread over ten days, so check-ins
    /// share quarter hours, days and weeks.
    minutes_ago: i64,
    anxiety: i64,
    comfort: i64,
    /// An index into a few exercises of the catalog, or none.
    exercise: Option<usize>,
    completed: bool,
}

#[derive(Debug, Clone)]
enum Op {
    /// Creates the record, or replaces it if it exists: as `updated`, or, when
    /// the flag is set, as `created` again (a device that never heard its
    /// first push's answer sends it so; the server replaces what it stored).
    Write(usize, Checkin, bool),
    Delete(usize),
}

/// Few ids, so later pushes edit and delete what earlier ones wrote.
const IDS: usize = 6;

fn checkin() -> impl Strategy<Value = Checkin> {
    (0..14_400_i64, 0..=10_i64, 1..=5_i64, proptest::option::of(0..3_usize), any::<bool>()).prop_map(
        |(minutes_ago, anxiety, comfort, exercise, completed)| Checkin {
            minutes_ago,
            anxiety,
            comfort,
            exercise,
            completed,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..IDS, checkin(), proptest::bool::weighted(0.25)).prop_map(|(id, c, again)| Op::Write(id, c, again)),
        1 => (0..IDS).prop_map(Op::Delete),
    ]
}

/// Exercises of different intensities, so the ladder moves.
fn exercises() -> Vec<String> {
    let program = catalog().unwrap().program("closer").unwrap();
    let all: Vec<_> = program.steps.iter().flat_map(|s| &s.exercises).collect();
    (1..=3).map(|level| all.iter().find(|e| e.intensity.get() == level).unwrap().id.clone()).collect()
}

fn record(id: usize, checkin: &Checkin, start_ms: i64, exercises: &[String]) -> Value {
    json!({"id": format!("c{id}"), "occurred_at": start_ms - checkin.minutes_ago * 60_000, "mood": 3,
           "anxiety": checkin.anxiety, "comfort": checkin.comfort,
           "exercise_id": checkin.exercise.map(|i| exercises[i].clone()), "completed": checkin.completed,
           "note": null, "tags": null})
}

/// Applies `pushes` as a device would (pull, then push what changed), keeping
/// what should be stored; then the stored summary must equal the summary of
/// everything stored.
async fn check_sequence(app: &TestApp, user: &TestUser, pushes: &[Vec<Op>]) -> Result<(), TestCaseError> {
    let start_ms = app.clock.now().timestamp_millis();
    let exercises = exercises();
    let mut stored: BTreeMap<usize, Checkin> = BTreeMap::new();
    for ops in pushes {
        // One change per record a push: the last op on an id wins.
        let mut last: BTreeMap<usize, &Op> = BTreeMap::new();
        for op in ops {
            let id = match op {
                Op::Write(id, ..) | Op::Delete(id) => *id,
            };
            last.insert(id, op);
        }
        let (mut created, mut updated, mut deleted) = (vec![], vec![], vec![]);
        for (id, op) in last {
            match op {
                Op::Write(_, checkin, as_created) => {
                    let list = if stored.contains_key(&id) && !as_created { &mut updated } else { &mut created };
                    list.push(record(id, checkin, start_ms, &exercises));
                    stored.insert(id, checkin.clone());
                }
                Op::Delete(_) => {
                    if stored.remove(&id).is_some() {
                        deleted.push(json!(format!("c{id}")));
                    }
                }
            }
        }
        let since = app.pull(user, None).await["timestamp"].as_i64();
        let changes = json!({"checkins": {"created": created, "updated": updated, "deleted": deleted}});
        let (status, _, body) = read(app.push(user, since, changes).await).await;
        prop_assert_eq!(status, StatusCode::OK, "{}", body);
        app.clock.advance(chrono::Duration::milliseconds(5));
    }
    let user_id: Uuid = user.uuid();
    let facts = all_facts(&app.db, user_id).await.unwrap();
    prop_assert_eq!(facts.len(), stored.len(), "every push was stored");
    let kept = read_all(&app.db, user_id).await.unwrap();
    prop_assert_eq!(&kept, &CheckinSummary::of(&facts));
    // What the rules read (one round trip): the same tallies and distress, and
    // of the week's slots the first with a completion of each local day, in
    // zones whose midnights fall on whole, half and quarter hours of UTC; this
    // week (its days so far) and the last (all seven, the check-ins reaching ten
    // days back).
    let now = app.clock.now();
    let zones = [chrono_tz::UTC, chrono_tz::America::Los_Angeles, chrono_tz::Asia::Kolkata, chrono_tz::Asia::Kathmandu];
    for (tz, now) in zones.into_iter().flat_map(|tz| [(tz, now), (tz, now - chrono::Duration::days(7))]) {
        let days = week_days(now, tz);
        let mut expected = kept.clone();
        expected.session_slots = days
            .windows(2)
            .filter_map(|day| {
                kept.session_slots.range(day[0]..day[1]).find(|(_, n)| **n > 0).map(|(slot, _)| (*slot, 1))
            })
            .collect();
        let read = summary::read(&app.db, user_id, Some(&days)).await.unwrap();
        prop_assert_eq!(&read, &expected, "{} {}", tz, now);
        prop_assert_eq!(read.sessions_this_week(now, tz), kept.sessions_this_week(now, tz), "{} {}", tz, now);
    }
    let mut expected = kept.clone();
    expected.session_slots.clear();
    prop_assert_eq!(&summary::read(&app.db, user_id, None).await.unwrap(), &expected);
    Ok(())
}

#[test]
fn the_stored_summary_equals_the_whole_history_after_any_pushes_edits_and_deletes() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let mut runner = TestRunner::new(Config { cases: 40, failure_persistence: None, ..Config::default() });
    let result = runner.run(&vec(vec(op(), 1..8), 1..6), |pushes| {
        runtime.block_on(async {
            // A new person each case (also each shrinking step): nothing carries over.
            let user = app.register(&format!("{}@example.org", Uuid::new_v4().simple())).await;
            check_sequence(&app, &user, &pushes).await
        })
    });
    runtime.block_on(app.stop());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// People who had check-ins before the summary existed: the migration computes
/// theirs from their check-ins, equal to what pushes would have kept.
#[tokio::test]
async fn the_migration_computes_the_summary_of_existing_check_ins() {
    use attune_migrations::{Migrator, MigratorTrait};

    let app = TestApp::spawn().await;
    let exercises = exercises();
    let start_ms = app.clock.now().timestamp_millis();
    let mut people = Vec::new();
    for (n, email) in ["early@example.org", "later@example.org"].into_iter().enumerate() {
        let user = app.register(email).await;
        let records: Vec<Value> = (0..40_usize)
            .map(|i| {
                let checkin = Checkin {
                    minutes_ago: (i as i64) * 97 + n as i64,
                    anxiety: (i % 11) as i64,
                    comfort: (i % 5) as i64 + 1,
                    exercise: (i % 4 < 3).then_some(i % 3),
                    completed: i % 3 != 1,
                };
                record(i, &checkin, start_ms, &exercises)
            })
            .collect();
        let pushed = app.push(&user, None, json!({"checkins": {"created": records, "updated": [], "deleted": []}}));
        assert_eq!(pushed.await.status(), StatusCode::OK);
        people.push(user.uuid());
    }
    let kept: Vec<CheckinSummary> = futures::future::join_all(people.iter().map(|id| read_all(&app.db, *id)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    let since = attune_tests::migrations_back_through("m20261202_000017_checkin_summary");
    Migrator::down(&app.db, Some(since)).await.unwrap();
    Migrator::up(&app.db, None).await.unwrap();

    for (id, kept) in people.iter().zip(kept) {
        let computed = read_all(&app.db, *id).await.unwrap();
        assert_eq!(computed, CheckinSummary::of(&all_facts(&app.db, *id).await.unwrap()));
        assert_eq!(computed, kept, "the migration agrees with what pushes kept");
        assert!(!computed.exercises.is_empty() && computed.distress_checkins > 0 && !computed.session_slots.is_empty());
    }
    app.stop().await;
}

/// `today` reads the summary: a hard check-in turns it gentle, and deleting
/// that check-in (the latest distress signal) turns it back, because the
/// summary looks up the one before it, which is older than 48 hours.
#[tokio::test]
async fn deleting_the_latest_hard_check_in_gives_today_back() {
    let app = TestApp::spawn().await;
    let user = app.register("today@example.org").await;
    app.enroll(&user, "steady").await;
    let now = app.clock.now().timestamp_millis();
    let hard = |id: &str, hours_ago: i64| {
        json!({"id": id, "occurred_at": now - hours_ago * 3_600_000, "mood": 1, "anxiety": 9, "comfort": 2,
               "exercise_id": null, "completed": false, "note": "a hard evening", "tags": null})
    };
    let pushed = app.push(
        &user,
        None,
        json!({"checkins": {"created": [hard("old", 72), hard("new", 1)], "updated": [], "deleted": []}}),
    );
    assert_eq!(pushed.await.status(), StatusCode::OK);
    let kind = || async {
        let (status, _, today) = read(app.get("/v1/today").bearer_auth(&user.access_token).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{today}");
        today["kind"].as_str().unwrap().to_owned()
    };
    assert_eq!(kind().await, "grounding");
    let since = app.pull(&user, None).await["timestamp"].as_i64();
    let deleted = app.push(&user, since, json!({"checkins": {"created": [], "updated": [], "deleted": ["new"]}}));
    assert_eq!(deleted.await.status(), StatusCode::OK);
    assert_eq!(kind().await, "exercise");
    let summary = read_all(&app.db, user.uuid()).await.unwrap();
    assert_eq!(summary.distress_checkins, 1);
    assert_eq!(summary.last_distress_at.map(|t| t.timestamp_millis()), Some(now - 72 * 3_600_000));
    app.stop().await;
}
