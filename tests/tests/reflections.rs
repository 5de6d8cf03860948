//! Weekly reflections end to end: check-ins synced over a week, the worker's run
//! at Sunday 18:00 in the person's zone, the discreet notice through the fake
//! push service, and the API. Time moves with the manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{sync::Arc, time::Duration};

use attune_shared::{
    Clock, ManualClock,
    domain::reflection::ReflectionWeek,
    entities::reflection,
    reflections::{ANNOUNCE_LEASE, REFLECTION_TTL_SECS, Reflections},
};
use attune_tests::{
    TestApp, TestUser, expect_problem,
    fake_push::{FakePushService, FakeResponse, FakeSubscription},
    problem_fields, read,
};
use attune_worker::{WorkerDeps, jobs::reflections::run};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The app with the fake push service allowed; tests run the worker's job themselves.
async fn setup() -> (TestApp, FakePushService, ManualClock) {
    let clock = ManualClock::new(Utc::now());
    let fake = FakePushService::start(Arc::new(clock.clone())).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
    })
    .await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    (app, fake, clock)
}

/// `local` ("2026-11-09 09:00") in `tz`, as UTC.
fn at(tz: Tz, local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    tz.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

fn week(monday: &str) -> ReflectionWeek {
    ReflectionWeek::parse(monday).unwrap()
}

/// Registers someone in `tz` and `country`, enrolled at the clock's time.
async fn enrolled(app: &TestApp, email: &str, tz: Tz, country: &str) -> TestUser {
    let user = app.register(email).await;
    let response = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"timezone": tz.name(), "country": country}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.enroll(&user, "committed").await;
    user
}

/// Subscribes one of the fake push service's devices for `user`.
async fn subscribe(app: &TestApp, fake: &FakePushService, user: &TestUser) -> FakeSubscription {
    let device = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    device
}

/// Someone in UTC, enrolled on Monday 2026-11-09 with one device, and both
/// clocks at that week's Sunday 18:00, when its reflection falls due; returns that time.
async fn due_with_a_device(
    app: &TestApp,
    fake: &FakePushService,
    fake_clock: &ManualClock,
    email: &str,
) -> DateTime<Utc> {
    let utc = chrono_tz::UTC;
    app.clock.set(at(utc, "2026-11-09 09:00"));
    let user = enrolled(app, email, utc, "GB").await;
    subscribe(app, fake, &user).await;
    let due = at(utc, "2026-11-15 18:00");
    app.clock.set(due);
    fake_clock.set(due);
    due
}

/// A check-in at `when`: (mood, anxiety, comfort), and a completed exercise.
fn checkin(id: &str, when: DateTime<Utc>, (mood, anxiety, comfort): (u8, u8, u8), exercise: Option<&str>) -> Value {
    json!({
        "id": id, "occurred_at": when.timestamp_millis(), "mood": mood, "anxiety": anxiety, "comfort": comfort,
        "exercise_id": exercise, "completed": exercise.is_some(), "note": "private words", "tags": null,
    })
}

/// Pushes check-ins as new records, signing in again first (the clock may have
/// moved past the access token).
async fn push_checkins(app: &TestApp, user: &TestUser, checkins: Vec<Value>) -> TestUser {
    let user = app.sign_in_again(user).await;
    let changes = json!({"checkins": {"created": checkins, "updated": [], "deleted": []}});
    let (status, _, body) = read(app.push(&user, None, changes).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    user
}

async fn reflection(app: &TestApp, user: &TestUser, week_start: &str) -> (StatusCode, Value) {
    let response =
        app.get(&format!("/v1/reflections/{week_start}")).bearer_auth(&user.access_token).send().await.unwrap();
    let (status, _, body) = read(response).await;
    (status, body)
}

async fn run_at(deps: &WorkerDeps, now: DateTime<Utc>) -> usize {
    run(deps, now).await.unwrap()
}

#[tokio::test]
async fn a_week_is_reflected_once_at_six_on_sunday_local_and_announced_discreetly() {
    let (app, fake, fake_clock) = setup().await;
    let la = chrono_tz::America::Los_Angeles;
    app.clock.set(at(la, "2026-11-09 09:00"));
    let user = enrolled(&app, "week@example.org", la, "US").await;
    let device = subscribe(&app, &fake, &user).await;
    let user = push_checkins(
        &app,
        &user,
        vec![
            checkin("mon", at(la, "2026-11-09 10:00"), (3, 4, 3), Some("s1-arrival-breath")),
            checkin("wed", at(la, "2026-11-11 20:00"), (4, 3, 4), Some("s1-barrier-map")),
            checkin("wed-2", at(la, "2026-11-11 21:00"), (4, 3, 4), None),
        ],
    )
    .await;
    // Committed pace: three days at step 1 and two exercises done, so step 2 on Thursday.
    app.clock.set(at(la, "2026-11-12 20:00"));
    let user = app.sign_in_again(&user).await;
    let response = app.post("/v1/enrollments/current/advance").bearer_auth(&user.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let user = push_checkins(&app, &user, vec![checkin("sun", at(la, "2026-11-15 09:00"), (5, 2, 4), None)]).await;

    let (one, two) = (app.worker_deps().await, app.worker_deps().await);
    let just_before = at(la, "2026-11-15 17:59");
    app.clock.set(just_before);
    assert_eq!(run_at(&one, just_before).await, 0, "not due before 18:00 local");
    let user = app.sign_in_again(&user).await;
    let (status, _, page) =
        read(app.get("/v1/reflections").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"reflections": [], "next_cursor": null}));

    let due = at(la, "2026-11-15 18:00") + chrono::Duration::seconds(30);
    app.clock.set(due);
    fake_clock.set(due);
    // Two workers at once: stored once, announced once.
    let (a, b) = tokio::join!(
        tokio::spawn(async move { run(&one, due).await.unwrap() }),
        tokio::spawn(async move { run(&two, due).await.unwrap() }),
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "stored by exactly one run");
    let user = app.sign_in_again(&user).await;
    let (status, body) = reflection(&app, &user, "2026-11-09").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["week_start"], "2026-11-09");
    assert_eq!(body["week_end"], "2026-11-15");
    assert_eq!(body["checkin_count"], 4);
    assert_eq!(body["active_days"], 3, "Monday, Wednesday and Sunday");
    assert_eq!(body["averages"], json!({"mood": 4.0, "anxiety": 3.0, "comfort": 3.8}));
    assert_eq!(body["changes"], Value::Null, "no week before enrolling to compare with");
    assert_eq!(body["exercises_completed"], json!([{"step": 1, "count": 2}]));
    assert_eq!(body["step_changes"].as_array().unwrap().len(), 1);
    assert_eq!(body["step_changes"][0]["from"], 1);
    assert_eq!(body["step_changes"][0]["to"], 2);
    assert!(!body["prompt"].as_str().unwrap().is_empty());
    assert_eq!(body["focus"]["kind"], "keep_pace");
    assert_eq!(body["focus"]["resources"], Value::Null);
    assert!(!body.to_string().contains("private words"), "a reflection carries no private text");

    let pushed = fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(pushed[0].subscription_id, device.id);
    assert_eq!(pushed[0].payload["type"], "reflection");
    assert_eq!(pushed[0].payload["url"], "/reflections/2026-11-09");
    assert_eq!(pushed[0].ttl, REFLECTION_TTL_SECS);
    assert_eq!(pushed[0].urgency.as_deref(), Some("low"));
    assert_eq!(pushed[0].topic.as_deref(), Some("reflection"));
    let text = format!("{} {}", pushed[0].payload["title"], pushed[0].payload["body"]).to_lowercase();
    for word in ["intima", "sex", "touch", "partner", "missed", "closer", "step", "anxi", "mood"] {
        assert!(!text.contains(word), "the notice says nothing about `{word}`: {text}");
    }

    // Later runs, into Monday, store and announce nothing more.
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due + chrono::Duration::hours(1)).await, 0);
    assert_eq!(run_at(&deps, at(la, "2026-11-16 09:00")).await, 0);
    assert_eq!(app.count_rows("reflections").await, 1);
    // Every job queued so far has finished, so a second notice would have been sent.
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries().len(), 1, "announced once");
    app.stop().await;
}

#[tokio::test]
async fn two_weeks_of_rising_distress_suggest_professional_help_for_the_persons_country() {
    let (app, _fake, _) = setup().await;
    let berlin = chrono_tz::Europe::Berlin;
    app.clock.set(at(berlin, "2026-10-12 10:00"));
    let user = enrolled(&app, "rising@example.org", berlin, "DE").await;
    let user = push_checkins(
        &app,
        &user,
        vec![
            // Week of 12 October: settled.
            checkin("a1", at(berlin, "2026-10-13 19:00"), (4, 3, 4), None),
            checkin("a2", at(berlin, "2026-10-15 19:00"), (4, 3, 4), None),
            // Week of 19 October: one distress signal. The last falls at 23:30 on
            // the Sunday the clocks go back: still that week in Berlin, though a
            // fixed summer-time offset would put it on Monday.
            checkin("b1", at(berlin, "2026-10-20 19:00"), (3, 5, 3), None),
            checkin("b2", at(berlin, "2026-10-25 23:30"), (2, 8, 2), None),
            // Week of 26 October: two.
            checkin("c1", at(berlin, "2026-10-27 19:00"), (2, 8, 2), None),
            checkin("c2", at(berlin, "2026-10-29 19:00"), (2, 9, 1), None),
        ],
    )
    .await;
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, at(berlin, "2026-11-01 18:00")).await, 1);
    let user = app.sign_in_again(&user).await;
    let (status, body) = reflection(&app, &user, "2026-10-26").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checkin_count"], 2);
    assert_eq!(body["averages"], json!({"mood": 2.0, "anxiety": 8.5, "comfort": 1.5}));
    // Against the week of 19 October: mood 2.5, anxiety 6.5, comfort 2.5.
    assert_eq!(body["changes"], json!({"mood": -0.5, "anxiety": 2.0, "comfort": -1.0}));
    assert_eq!(body["focus"]["kind"], "seek_support");
    assert_eq!(body["focus"]["resources"]["country"], "DE");
    assert!(!body["focus"]["resources"]["entries"].as_array().unwrap().is_empty());
    let message = body["focus"]["message"].as_str().unwrap().to_lowercase();
    assert!(message.contains("professional"), "{message}");
    // Stored by reference, so the list shown is always the current one.
    let stored = reflection::Entity::find_by_id((user.uuid(), "2026-10-26".to_owned())).one(&app.db).await.unwrap();
    let stored: Value = serde_json::from_str(&stored.unwrap().body).unwrap();
    assert_eq!(stored["focus"]["resources"], json!({"country": "DE"}));
    app.stop().await;
}

#[tokio::test]
async fn weeks_follow_the_persons_zone_in_auckland_and_los_angeles() {
    let (app, _fake, _) = setup().await;
    let (auckland, la) = (chrono_tz::Pacific::Auckland, chrono_tz::America::Los_Angeles);
    app.clock.set(at(chrono_tz::UTC, "2026-11-02 00:00"));
    let kiwi = enrolled(&app, "kiwi@example.org", auckland, "NZ").await;
    let angeleno = enrolled(&app, "angeleno@example.org", la, "US").await;
    // Sunday 23:30 and Monday 00:30 local: in UTC, Auckland's Monday is still
    // Sunday and Los Angeles's Sunday night is already Monday.
    push_checkins(
        &app,
        &kiwi,
        vec![
            checkin("sun", at(auckland, "2026-11-15 23:30"), (3, 3, 3), None),
            checkin("mon", at(auckland, "2026-11-16 00:30"), (5, 1, 5), None),
        ],
    )
    .await;
    push_checkins(
        &app,
        &angeleno,
        vec![
            checkin("sun", at(la, "2026-11-15 23:30"), (3, 3, 3), None),
            checkin("mon", at(la, "2026-11-16 00:30"), (5, 1, 5), None),
        ],
    )
    .await;
    // Each week's reflection, computed once the week is over everywhere.
    app.clock.set(at(chrono_tz::UTC, "2026-11-24 12:00"));
    let reflections = Reflections::new(app.db.clone(), Arc::new(app.clock.clone()));
    for monday in ["2026-11-09", "2026-11-16"] {
        let done = reflections.recompute_week(week(monday)).await.unwrap();
        assert_eq!(done.created, 2, "{monday}");
    }
    for user in [&kiwi, &angeleno] {
        let user = app.sign_in_again(user).await;
        let (_, earlier) = reflection(&app, &user, "2026-11-09").await;
        let (_, later) = reflection(&app, &user, "2026-11-16").await;
        assert_eq!((earlier["checkin_count"].clone(), earlier["averages"]["mood"].clone()), (json!(1), json!(3.0)));
        assert_eq!((later["checkin_count"].clone(), later["averages"]["mood"].clone()), (json!(1), json!(5.0)));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_worker_stopped_before_announcing_leaves_the_notice_to_the_next_run() {
    let (app, fake, fake_clock) = setup().await;
    let due = due_with_a_device(&app, &fake, &fake_clock, "stopped@example.org").await;
    // A worker stores the reflection and stops before queuing its notice.
    let reflections = Reflections::new(app.db.clone(), Arc::new(app.clock.clone()));
    let stored = reflections.make_due(due).await.unwrap();
    assert_eq!(stored.len(), 1);

    let deps = app.worker_deps().await;
    let soon = due + ANNOUNCE_LEASE - chrono::Duration::seconds(1);
    assert_eq!(run_at(&deps, soon).await, 0, "already stored");
    assert!(fake.deliveries().is_empty(), "within the lease the first worker may still announce it");

    let later = due + ANNOUNCE_LEASE;
    app.clock.set(later);
    fake_clock.set(later);
    assert_eq!(run_at(&deps, later).await, 0);
    let pushed = fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(pushed[0].payload["url"], "/reflections/2026-11-09");
    assert_eq!(run_at(&deps, later + chrono::Duration::minutes(10)).await, 0);
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries().len(), 1, "announced exactly once");
    app.stop().await;
}

#[tokio::test]
async fn a_worker_stopped_after_queuing_but_before_marking_sends_no_second_notice() {
    let (app, fake, fake_clock) = setup().await;
    let due = due_with_a_device(&app, &fake, &fake_clock, "marked@example.org").await;
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due).await, 1);
    fake.wait_for_deliveries(1, WAIT).await;
    // The worker queued the notice, then stopped before recording that it had:
    // its row still shows the notice as due after the lease.
    let stuck = (due + ANNOUNCE_LEASE).timestamp_millis();
    let backend = app.db.get_database_backend();
    let marked_back = app
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => "UPDATE reflections SET announce_at = $1",
                _ => "UPDATE reflections SET announce_at = ?",
            },
            [stuck.into()],
        ))
        .await
        .unwrap();
    assert_eq!(marked_back.rows_affected(), 1);

    let later = due + ANNOUNCE_LEASE;
    app.clock.set(later);
    fake_clock.set(later);
    assert_eq!(run_at(&deps, later).await, 0);
    let taken: Option<i64> = reflection::Entity::find().one(&app.db).await.unwrap().map(|row| row.announce_at).unwrap();
    assert_eq!(taken, None, "the next run took the notice over and recorded it");
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries().len(), 1, "the notice queued again under the same key is dropped");
    app.stop().await;
}

#[tokio::test]
async fn no_reflection_while_paused_or_for_a_week_that_ended_before_enrolling() {
    let (app, _fake, _) = setup().await;
    let utc = chrono_tz::UTC;
    app.clock.set(at(utc, "2026-11-09 09:00"));
    let paused = enrolled(&app, "paused@example.org", utc, "GB").await;
    let response = app
        .request(Method::PATCH, "/v1/enrollments/current")
        .bearer_auth(&paused.access_token)
        .json(&json!({"paused": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Enrolled on Sunday evening, after the week fell due.
    app.clock.set(at(utc, "2026-11-15 19:00"));
    let late = enrolled(&app, "late@example.org", utc, "GB").await;

    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, at(utc, "2026-11-15 19:30")).await, 0);
    assert_eq!(app.count_rows("reflections").await, 0);
    // The late one's first week is the next; a quiet one is still reflected, kindly.
    app.clock.set(at(utc, "2026-11-22 18:00"));
    assert_eq!(run_at(&deps, app.clock.now()).await, 1);
    let late = app.sign_in_again(&late).await;
    let (status, body) = reflection(&app, &late, "2026-11-16").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checkin_count"], 0);
    assert_eq!(body["averages"], json!({"mood": null, "anxiety": null, "comfort": null}));
    assert_eq!(body["focus"]["kind"], "keep_pace");
    assert!(body["focus"]["message"].as_str().unwrap().contains("quiet week"));
    let paused = app.sign_in_again(&paused).await;
    assert_eq!(reflection(&app, &paused, "2026-11-16").await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn reflections_page_newest_first_and_bad_requests_name_the_field() {
    let (app, _fake, _) = setup().await;
    let utc = chrono_tz::UTC;
    app.clock.set(at(utc, "2026-10-26 09:00"));
    let user = enrolled(&app, "pages@example.org", utc, "AU").await;
    let deps = app.worker_deps().await;
    for sunday in ["2026-11-01", "2026-11-08", "2026-11-15"] {
        assert_eq!(run_at(&deps, at(utc, &format!("{sunday} 18:00"))).await, 1, "{sunday}");
    }
    app.clock.set(at(utc, "2026-11-16 09:00"));
    let user = app.sign_in_again(&user).await;
    let list = |query: &str| app.get(&format!("/v1/reflections{query}")).bearer_auth(&user.access_token).send();

    let (status, _, first) = read(list("?limit=2").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let weeks = |page: &Value| -> Vec<String> {
        page["reflections"].as_array().unwrap().iter().map(|r| r["week_start"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(weeks(&first), ["2026-11-09", "2026-11-02"]);
    assert_eq!(first["next_cursor"], "2026-11-02");
    let (_, _, second) = read(list("?limit=2&cursor=2026-11-02").await.unwrap()).await;
    assert_eq!(weeks(&second), ["2026-10-26"]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (_, _, all) = read(list("").await.unwrap()).await;
    assert_eq!(weeks(&all).len(), 3);

    // Someone else sees none of them.
    let other = app.register("other@example.org").await;
    let (status, _) = reflection(&app, &other, "2026-11-09").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = reflection(&app, &user, "2026-11-16").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no reflection for that week yet");
    assert!(body["detail"].as_str().unwrap().contains("2026-11-16"));
    for (path, field) in [
        ("/v1/reflections/2026-11-10", "week_start"),
        ("/v1/reflections/last-week", "week_start"),
        ("/v1/reflections?limit=0", "limit"),
        ("/v1/reflections?limit=500", "limit"),
        ("/v1/reflections?limit=ten", "limit"),
        ("/v1/reflections?cursor=2026-13-01", "cursor"),
    ] {
        let body = expect_problem(
            app.get(path).bearer_auth(&user.access_token).send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem_fields(&body), [field], "{path}: {body}");
    }
    let response = app.get("/v1/reflections").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The account export carries them, oldest first.
    let (status, _, export) = read(app.export(&user).await).await;
    assert_eq!(status, StatusCode::OK);
    let exported: Vec<&str> =
        export["reflections"].as_array().unwrap().iter().map(|r| r["week_start"].as_str().unwrap()).collect();
    assert_eq!(exported, ["2026-10-26", "2026-11-02", "2026-11-09"]);
    app.stop().await;
}

#[tokio::test]
async fn recomputing_a_week_is_idempotent_and_picks_up_late_check_ins_silently() {
    let (app, fake, fake_clock) = setup().await;
    let utc = chrono_tz::UTC;
    app.clock.set(at(utc, "2026-11-09 09:00"));
    let user = enrolled(&app, "recompute@example.org", utc, "CA").await;
    subscribe(&app, &fake, &user).await;
    let user = push_checkins(&app, &user, vec![checkin("one", at(utc, "2026-11-10 19:00"), (3, 3, 3), None)]).await;
    let reflections = Reflections::new(app.db.clone(), Arc::new(app.clock.clone()));
    // Not over yet: nobody's week of 9 November has fallen due.
    assert_eq!(reflections.recompute_week(week("2026-11-09")).await.unwrap().created, 0);

    app.clock.set(at(utc, "2026-11-17 09:00"));
    fake_clock.set(app.clock.now());
    let first = reflections.recompute_week(week("2026-11-09")).await.unwrap();
    assert_eq!((first.created, first.updated, first.unchanged), (1, 0, 0));
    let again = reflections.recompute_week(week("2026-11-09")).await.unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 1));
    // A check-in synced late, from a phone that was offline.
    let user = push_checkins(&app, &user, vec![checkin("two", at(utc, "2026-11-14 19:00"), (5, 1, 5), None)]).await;
    let changed = reflections.recompute_week(week("2026-11-09")).await.unwrap();
    assert_eq!((changed.created, changed.updated, changed.unchanged), (0, 1, 0));
    let (_, body) = reflection(&app, &user, "2026-11-09").await;
    assert_eq!(body["checkin_count"], 2);
    assert_eq!(body["active_days"], 2);
    // Operators' recomputations are never announced, not even by a later run.
    let deps = app.worker_deps().await;
    run_at(&deps, app.clock.now() + ANNOUNCE_LEASE * 2).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert!(fake.deliveries().is_empty());
    app.stop().await;
}

/// `PUT /v1/notifications/settings` for `user`: the defaults changed by `change`.
async fn choose(app: &TestApp, user: &TestUser, change: Value) {
    let mut choices = json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false,
    });
    choices.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
    let response = app
        .request(Method::PUT, "/v1/notifications/settings")
        .bearer_auth(&user.access_token)
        .json(&choices)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Two people in UTC enrolled on Monday 2026-11-09, each with a device: one who
/// made `change` to their notification choices, and one on the defaults whose
/// notice shows when the worker has announced. Both clocks stand at that week's
/// Sunday 18:00; returns the chooser, their device, the other's device, and the time.
async fn chooser_and_neighbour(
    app: &TestApp,
    fake: &FakePushService,
    fake_clock: &ManualClock,
    change: Value,
) -> (TestUser, FakeSubscription, FakeSubscription, DateTime<Utc>) {
    let utc = chrono_tz::UTC;
    app.clock.set(at(utc, "2026-11-09 09:00"));
    let chooser = enrolled(app, "chooser@example.org", utc, "GB").await;
    let chosen = subscribe(app, fake, &chooser).await;
    choose(app, &chooser, change).await;
    let neighbour = enrolled(app, "neighbour@example.org", utc, "GB").await;
    let heard = subscribe(app, fake, &neighbour).await;
    let due = at(utc, "2026-11-15 18:00");
    app.clock.set(due);
    fake_clock.set(due);
    (chooser, chosen, heard, due)
}

/// Moves both clocks to `now` and runs the reflections job there; then waits
/// until every push it queued is done, so what the fake has is all there is.
async fn run_then_drain(app: &TestApp, fake_clock: &ManualClock, deps: &WorkerDeps, now: DateTime<Utc>) -> usize {
    app.clock.set(now);
    fake_clock.set(now);
    let stored = run_at(deps, now).await;
    attune_tests::queue_drained(&deps.queue).await;
    stored
}

#[tokio::test]
async fn with_reflection_notices_off_the_week_is_still_reflected_and_nothing_is_pushed() {
    let (app, fake, fake_clock) = setup().await;
    let (chooser, chosen, heard, due) =
        chooser_and_neighbour(&app, &fake, &fake_clock, json!({"reflections": false})).await;
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due).await, 2, "both weeks stored on time");
    // The neighbour's notice was queued in the same run as the chooser's would have been.
    fake.wait_for_deliveries(1, WAIT).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries_for(&heard.id).len(), 1);
    assert!(fake.deliveries_for(&chosen.id).is_empty(), "reflection notices are off");
    let chooser = app.sign_in_again(&chooser).await;
    let (status, body) = reflection(&app, &chooser, "2026-11-09").await;
    assert_eq!(status, StatusCode::OK, "the reflection is there to read: {body}");

    // Nor later, when a notice left over would be handed out.
    run_then_drain(&app, &fake_clock, &deps, due + ANNOUNCE_LEASE + chrono::Duration::hours(1)).await;
    assert!(fake.deliveries_for(&chosen.id).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_reflection_due_while_paused_is_stored_and_never_announced_even_after_the_pause() {
    let (app, fake, fake_clock) = setup().await;
    let pause_ends = at(chrono_tz::UTC, "2026-11-16 09:00");
    let change = json!({"paused_until": pause_ends.to_rfc3339()});
    let (chooser, chosen, heard, due) = chooser_and_neighbour(&app, &fake, &fake_clock, change).await;
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due).await, 2, "both weeks stored on time");
    fake.wait_for_deliveries(1, WAIT).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries_for(&heard.id).len(), 1);
    assert!(fake.deliveries_for(&chosen.id).is_empty(), "paused");

    // The pause is over: the paused week's notice still does not come.
    for later in [pause_ends, pause_ends + ANNOUNCE_LEASE, pause_ends + chrono::Duration::days(1)] {
        assert_eq!(run_then_drain(&app, &fake_clock, &deps, later).await, 0);
        assert!(fake.deliveries_for(&chosen.id).is_empty(), "nothing at {later}");
    }
    let chooser = app.sign_in_again(&chooser).await;
    let (status, _) = reflection(&app, &chooser, "2026-11-09").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_reflection_due_in_quiet_hours_is_stored_at_six_and_announced_when_they_end() {
    let (app, fake, fake_clock) = setup().await;
    let change = json!({"quiet_hours": {"start": "17:00", "end": "21:00"}});
    let (chooser, chosen, heard, due) = chooser_and_neighbour(&app, &fake, &fake_clock, change).await;
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due).await, 2, "stored at 18:00, quiet hours or not");
    let chooser = app.sign_in_again(&chooser).await;
    let (status, _) = reflection(&app, &chooser, "2026-11-09").await;
    assert_eq!(status, StatusCode::OK, "readable at once");
    fake.wait_for_deliveries(1, WAIT).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries_for(&heard.id).len(), 1);
    assert!(fake.deliveries_for(&chosen.id).is_empty(), "not in quiet hours");

    // Every run until the quiet hours end, past the lease too, holds it back.
    let utc = chrono_tz::UTC;
    for still_quiet in ["2026-11-15 18:05", "2026-11-15 19:00", "2026-11-15 20:59"] {
        run_then_drain(&app, &fake_clock, &deps, at(utc, still_quiet)).await;
        assert!(fake.deliveries_for(&chosen.id).is_empty(), "nothing at {still_quiet}");
    }
    let end = at(utc, "2026-11-15 21:00");
    run_then_drain(&app, &fake_clock, &deps, end).await;
    fake.wait_for_deliveries(2, WAIT).await;
    let pushed = fake.deliveries_for(&chosen.id);
    assert_eq!(pushed.len(), 1, "announced when the quiet hours end");
    assert_eq!(pushed[0].payload["url"], "/reflections/2026-11-09");
    assert_eq!(pushed[0].topic.as_deref(), Some("reflection"));
    run_then_drain(&app, &fake_clock, &deps, end + ANNOUNCE_LEASE + chrono::Duration::minutes(1)).await;
    assert_eq!(fake.deliveries_for(&chosen.id).len(), 1, "announced once");
    app.stop().await;
}

/// A notice the push service asked to retry is asked of the person's choices
/// again before the retry: paused in between, it is not sent.
#[tokio::test]
async fn a_notice_retried_after_the_person_paused_is_not_sent() {
    let (app, fake, fake_clock) = setup().await;
    let (chooser, chosen, _, due) = chooser_and_neighbour(&app, &fake, &fake_clock, json!({})).await;
    // Long enough for the pause below to land first, on a busy machine too.
    fake.respond_with(&chosen.id, vec![FakeResponse::status(StatusCode::TOO_MANY_REQUESTS).with_retry_after("5")]);
    let deps = app.worker_deps().await;
    assert_eq!(run_at(&deps, due).await, 2);
    fake.wait_for_requests(&chosen.id, 1, WAIT).await;
    let chooser = app.sign_in_again(&chooser).await;
    choose(&app, &chooser, json!({"paused_until": (due + chrono::Duration::days(1)).to_rfc3339()})).await;

    attune_tests::eventually("the retry is withheld", WAIT, || async {
        let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
        metrics.lines().any(|l| l.starts_with("attune_push_total{outcome=\"withheld\"}"))
    })
    .await;
    assert_eq!(fake.requests_for(&chosen.id), 1, "only the first try reached the push service");
    assert!(fake.deliveries_for(&chosen.id).is_empty());
    app.stop().await;
}
