//! Paced reminders end to end: settings, the next reminder, the dispatcher and
//! the fake push service, back-off and its reset. Time moves with the manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use attune_shared::{
    Clock, ManualClock,
    domain::Timezone,
    entities::reminder_delivery,
    jobs::{Job, JobQueue, UniqueJob},
    person_cache::PersonChanges,
    reminders::{REMINDER_TTL_SECS, Reminders, delivery_id},
};
use attune_tests::{PASSWORD, TestApp, TestUser, expect_problem, fake_push::FakePushService, problem_fields, read};
use attune_worker::{
    WorkerDeps,
    jobs::dispatch_reminders::{claim_and_queue_in, dispatch_due_reminders},
};
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The app with the fake push service allowed. Its own dispatcher runs hourly
/// (real time), so the tests run the dispatcher themselves.
async fn setup() -> (TestApp, FakePushService, ManualClock) {
    let clock = attune_shared::ManualClock::new(Utc::now());
    let fake = FakePushService::start(Arc::new(clock.clone())).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
        s.dispatch_interval_secs = 3600;
    })
    .await;
    app.clock.set(clock.now());
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    (app, fake, clock)
}

async fn dispatch(app: &TestApp, deps: &WorkerDeps) -> usize {
    dispatch_due_reminders(deps, app.clock.now(), 100).await.unwrap()
}

fn every_day(window: (&str, &str)) -> Value {
    json!({
        "enabled": true,
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "window": {"start": window.0, "end": window.1},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "descriptive": false,
        "paused_until": null,
    })
}

async fn get_settings(app: &TestApp, user: &TestUser) -> Value {
    let (status, _, body) =
        read(app.get("/v1/reminders/settings").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn put_settings(app: &TestApp, user: &TestUser, settings: &Value) -> reqwest::Response {
    app.request(Method::PUT, "/v1/reminders/settings")
        .bearer_auth(&user.access_token)
        .json(settings)
        .send()
        .await
        .unwrap()
}

async fn next_reminder_at(app: &TestApp, user: &TestUser) -> Option<DateTime<Utc>> {
    get_settings(app, user).await["next_reminder_at"]
        .as_str()
        .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
}

async fn patch_enrollment(app: &TestApp, user: &TestUser, body: Value) {
    let response = app
        .request(Method::PATCH, "/v1/enrollments/current")
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn deliveries(app: &TestApp) -> Vec<reminder_delivery::Model> {
    reminder_delivery::Entity::find().order_by_asc(reminder_delivery::Column::SlotAt).all(&app.db).await.unwrap()
}

#[tokio::test]
async fn settings_round_trip_and_invalid_ones_name_the_field() {
    let (app, _fake, _) = setup().await;
    let user = app.register("settings@example.org").await;
    let defaults = get_settings(&app, &user).await;
    assert_eq!(defaults["enabled"], true);
    assert_eq!(defaults["days"], json!(["mon", "wed", "fri"]));
    assert_eq!(defaults["quiet_hours"], json!({"start": "22:00", "end": "07:00"}));
    assert_eq!(defaults["next_reminder_at"], Value::Null, "not enrolled: no reminders");

    let mine = json!({
        "enabled": true,
        "days": ["tue", "sat"],
        "window": {"start": "08:30", "end": "09:15"},
        "quiet_hours": {"start": "23:00", "end": "06:00"},
        "descriptive": true,
        "paused_until": "2030-01-01T09:00:00Z",
    });
    let (status, _, stored) = read(put_settings(&app, &user, &mine).await).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let read_back = get_settings(&app, &user).await;
    for field in ["enabled", "days", "window", "quiet_hours", "descriptive"] {
        assert_eq!(read_back[field], mine[field], "{field}");
        assert_eq!(stored[field], mine[field], "{field}");
    }
    assert!(read_back["paused_until"].as_str().unwrap().starts_with("2030-01-01T09:00:00"));

    let invalid = [
        (json!({"days": []}), "days"),
        (json!({"window": {"start": "25:00", "end": "21:00"}}), "window.start"),
        (json!({"window": {"start": "21:00", "end": "19:00"}}), "window.end"),
        (json!({"window": {"start": "23:00", "end": "23:30"}}), "window"),
        (json!({"quiet_hours": {"start": "7pm", "end": "07:00"}}), "quiet_hours.start"),
        (json!({"paused_until": "tomorrow"}), "paused_until"),
    ];
    for (change, field) in invalid {
        let mut body = every_day(("19:00", "21:00"));
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let problem = expect_problem(put_settings(&app, &user, &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(problem_fields(&problem).contains(&field.to_owned()), "{field}: {problem}");
    }
    let mut missing = every_day(("19:00", "21:00"));
    missing.as_object_mut().unwrap().remove("days");
    let problem = expect_problem(put_settings(&app, &user, &missing).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["days"], "{problem}");
    assert_eq!(get_settings(&app, &user).await["days"], mine["days"], "a refused change stores nothing");
    app.stop().await;
}

#[tokio::test]
async fn reminders_come_only_with_an_active_enrollment_and_follow_every_change() {
    let (app, _fake, _) = setup().await;
    let user = app.register("next@example.org").await;
    assert_eq!(next_reminder_at(&app, &user).await, None, "not enrolled");
    // A check-in with no reminders to answer stores no schedule.
    let checkin = json!({"id": "c0", "occurred_at": app.clock.now().timestamp_millis(), "mood": 3, "anxiety": 2,
        "comfort": 3, "exercise_id": null, "completed": false, "note": null, "tags": ""});
    let response =
        app.push(&user, Some(0), json!({"checkins": {"created": [checkin], "updated": [], "deleted": []}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.count_rows_for_user("reminder_schedules", "user_id", user.uuid()).await, 0);
    app.enroll(&user, "steady").await;
    let first = next_reminder_at(&app, &user).await.expect("enrolled: a reminder is coming");
    assert!(first > app.clock.now());

    // Settings: a new window moves the next reminder at once.
    put_settings(&app, &user, &every_day(("08:00", "09:00"))).await;
    let morning = next_reminder_at(&app, &user).await.unwrap();
    let berlin = Timezone::parse("Europe/Berlin").unwrap().tz();
    assert_eq!(morning.with_timezone(&berlin).format("%H:%M").to_string(), "08:00");

    // Time zone: the same local time in another zone is another instant.
    let response = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"timezone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new_york = Timezone::parse("America/New_York").unwrap().tz();
    let moved = next_reminder_at(&app, &user).await.unwrap();
    assert_eq!(moved.with_timezone(&new_york).format("%H:%M").to_string(), "08:00");
    assert_ne!(moved, morning);

    // Pausing the enrollment stops reminders; resuming brings them back.
    patch_enrollment(&app, &user, json!({"paused": true})).await;
    assert_eq!(next_reminder_at(&app, &user).await, None, "paused enrollment");
    patch_enrollment(&app, &user, json!({"paused": false})).await;
    assert_eq!(next_reminder_at(&app, &user).await, Some(moved));

    // Disabled, and paused until a date.
    let mut off = every_day(("08:00", "09:00"));
    off["enabled"] = json!(false);
    let (_, _, answer) = read(put_settings(&app, &user, &off).await).await;
    assert_eq!(answer["next_reminder_at"], Value::Null, "disabled");
    let mut paused = every_day(("08:00", "09:00"));
    let until = app.clock.now() + chrono::Duration::days(10);
    paused["paused_until"] = json!(until.to_rfc3339());
    put_settings(&app, &user, &paused).await;
    assert!(next_reminder_at(&app, &user).await.unwrap() >= until, "not before paused_until");
    app.stop().await;
}

#[tokio::test]
async fn a_due_reminder_is_pushed_once_to_every_device_even_with_two_dispatchers() {
    let (app, fake, fake_clock) = setup().await;
    let user = app.register("due@example.org").await;
    app.enroll(&user, "steady").await;
    put_settings(&app, &user, &every_day(("19:00", "21:00"))).await;
    let (phone, laptop) = (fake.new_subscription(), fake.new_subscription());
    for device in [&phone, &laptop] {
        let response =
            app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let slot = next_reminder_at(&app, &user).await.unwrap();
    let (one, two) = (app.worker_deps().await, app.worker_deps().await);
    app.clock.set(slot - chrono::Duration::seconds(1));
    assert_eq!(dispatch(&app, &one).await, 0, "not due yet");

    app.clock.set(slot + chrono::Duration::seconds(30));
    // The push service checks VAPID tokens against its own clock.
    fake_clock.set(app.clock.now());
    let user = sign_in(&app, &user).await;
    let now = app.clock.now();
    let (a, b) = tokio::join!(
        tokio::spawn(async move { dispatch_due_reminders(&one, now, 100).await.unwrap() }),
        tokio::spawn(async move { dispatch_due_reminders(&two, now, 100).await.unwrap() }),
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "claimed by exactly one dispatcher");
    let sent = deliveries(&app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].slot_at, slot.timestamp_millis());

    let pushed = fake.wait_for_deliveries(2, WAIT).await;
    let mut devices: Vec<&str> = pushed.iter().map(|d| d.subscription_id.as_str()).collect();
    devices.sort_unstable();
    let mut expected = vec![phone.id.as_str(), laptop.id.as_str()];
    expected.sort_unstable();
    assert_eq!(devices, expected, "one push per device");
    for delivery in &pushed {
        assert_eq!(delivery.payload["type"], "reminder");
        assert_eq!(delivery.payload["url"], "/today");
        assert_eq!(delivery.payload["delivery_id"], sent[0].id.to_string());
        assert_eq!(delivery.ttl, REMINDER_TTL_SECS);
        assert_eq!(delivery.urgency.as_deref(), Some("low"));
        assert_eq!(delivery.topic.as_deref(), Some("reminder"));
        let text = format!("{} {}", delivery.payload["title"], delivery.payload["body"]).to_lowercase();
        for word in ["intima", "sex", "touch", "partner", "missed", "closer", "step"] {
            assert!(!text.contains(word), "a discreet reminder says nothing about `{word}`: {text}");
        }
    }

    // The schedule moved on: running again sends nothing more.
    let next = next_reminder_at(&app, &user).await.unwrap();
    assert!(next > slot + chrono::Duration::hours(12), "at most one a day: {slot} then {next}");
    let deps = app.worker_deps().await;
    assert_eq!(dispatch(&app, &deps).await, 0);
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries().len(), 2, "no duplicate pushes");
    app.stop().await;
}

/// Signs in again: access tokens expire while the clock moves days ahead.
async fn sign_in(app: &TestApp, user: &TestUser) -> TestUser {
    let (status, _, body) = read(app.login(&user.email, PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestUser::from_token_response(&user.email, &body)
}

/// Moves the clock to the next reminder, dispatches it and returns its slot and
/// the user signed in again.
async fn send_next(app: &TestApp, user: &TestUser, deps: &WorkerDeps) -> (DateTime<Utc>, TestUser) {
    let slot = next_reminder_at(app, user).await.expect("a reminder is coming");
    app.clock.set(slot + chrono::Duration::minutes(1));
    assert_eq!(dispatch(app, deps).await, 1);
    (slot, sign_in(app, user).await)
}

#[tokio::test]
async fn unanswered_reminders_space_out_and_a_checkin_or_opening_one_resets_that() {
    let (app, _fake, _) = setup().await;
    // A Monday morning: the steady pace's Mon, Wed, Fri then give two-day gaps
    // before the weekend's three-day one, whatever day the test runs on.
    app.clock.set(Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap());
    let user = app.register("backoff@example.org").await;
    app.enroll(&user, "steady").await;
    put_settings(&app, &user, &every_day(("19:00", "21:00"))).await;
    let deps = app.worker_deps().await;
    let normal = chrono::Duration::hours(73); // steady: Mon, Wed, Fri; a DST change adds an hour at most
    let backed_off = attune_shared::domain::reminders::backoff_gap(attune_shared::domain::pacing::Pace::Steady, 1);

    let (first, user) = send_next(&app, &user, &deps).await;
    let (second, user) = send_next(&app, &user, &deps).await;
    assert!(second - first <= normal, "the first reminder had nothing before it to answer");
    // The first went unanswered: the gap after the second at least doubles.
    let spaced = next_reminder_at(&app, &user).await.unwrap();
    assert!(spaced - second >= backed_off, "spacing doubles: {second} then {spaced}");
    assert!(backed_off >= (second - first) * 2);

    // A journal entry is no answer to a reminder.
    app.clock.advance(chrono::Duration::hours(1));
    let user = sign_in(&app, &user).await;
    let entry = json!({"id": "j1", "step": 1, "prompt_id": null, "body": "A few quiet words.",
        "occurred_at": app.clock.now().timestamp_millis()});
    let response =
        app.push(&user, Some(0), json!({"journal_entries": {"created": [entry], "updated": [], "deleted": []}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(next_reminder_at(&app, &user).await, Some(spaced));

    // A check-in answers: the spacing is normal again at once.
    let checkin = json!({"id": "c1", "occurred_at": app.clock.now().timestamp_millis(), "mood": 3, "anxiety": 2,
        "comfort": 3, "exercise_id": null, "completed": false, "note": null, "tags": ""});
    let response =
        app.push(&user, Some(0), json!({"checkins": {"created": [checkin], "updated": [], "deleted": []}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let reset = next_reminder_at(&app, &user).await.unwrap();
    assert!(reset < spaced && reset - second <= normal, "reset at the check-in: {second} then {reset}, not {spaced}");
    let (third, user) = send_next(&app, &user, &deps).await;
    assert_eq!(third, reset);
    let fourth = next_reminder_at(&app, &user).await.unwrap();
    assert!(fourth - third <= normal, "a check-in resets the spacing: {third} then {fourth}");

    // Unanswered again, then the reminder is opened: normal spacing at once.
    let (_, user) = send_next(&app, &user, &deps).await;
    let after_fourth = next_reminder_at(&app, &user).await.unwrap();
    assert!(after_fourth - fourth >= backed_off, "spaced out again: {fourth} then {after_fourth}");
    let latest = deliveries(&app).await.pop().unwrap();
    let opened =
        app.post(&format!("/v1/reminders/{}/opened", latest.id)).bearer_auth(&user.access_token).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::NO_CONTENT);
    let reset = next_reminder_at(&app, &user).await.unwrap();
    assert!(reset - fourth <= normal && reset > fourth, "opening resets: {fourth} then {reset}");

    // Someone else's reminder, or none at all: 404.
    let other = app.register("other@example.org").await;
    for id in [latest.id.to_string(), uuid::Uuid::now_v7().to_string()] {
        let response =
            app.post(&format!("/v1/reminders/{id}/opened")).bearer_auth(&other.access_token).send().await.unwrap();
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    app.stop().await;
}

/// A user enrolled with reminders every day and one device; returns their first
/// reminder's slot.
async fn user_with_a_device(app: &TestApp, fake: &FakePushService, email: &str) -> DateTime<Utc> {
    subscribed_user(app, fake, email).await.1
}

/// Someone enrolled at a steady pace, reminded every evening, with one device;
/// and their next reminder's slot.
async fn subscribed_user(app: &TestApp, fake: &FakePushService, email: &str) -> (TestUser, DateTime<Utc>) {
    let user = app.register(email).await;
    app.enroll(&user, "steady").await;
    put_settings(app, &user, &every_day(("19:00", "21:00"))).await;
    let device = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let slot = next_reminder_at(app, &user).await.unwrap();
    (user, slot)
}

/// Moves the app's and the push service's clocks just past `slot`.
fn just_after(app: &TestApp, fake_clock: &ManualClock, slot: DateTime<Utc>) {
    app.clock.set(std::cmp::max(app.clock.now(), slot + chrono::Duration::minutes(1)));
    fake_clock.set(app.clock.now());
}

async fn due_user_with_a_device(app: &TestApp, fake: &FakePushService, fake_clock: &ManualClock, email: &str) {
    let slot = user_with_a_device(app, fake, email).await;
    just_after(app, fake_clock, slot);
}

#[tokio::test]
async fn deleting_an_account_purges_its_reminder_deliveries_and_no_one_elses() {
    let (app, fake, fake_clock) = setup().await;
    let (user, slot) = subscribed_user(&app, &fake, "purged@example.org").await;
    let neighbours_slot = user_with_a_device(&app, &fake, "neighbour@example.org").await;
    just_after(&app, &fake_clock, std::cmp::max(slot, neighbours_slot));
    let deps = app.worker_deps().await;
    assert_eq!(dispatch(&app, &deps).await, 2);
    let recorded = deliveries(&app).await;
    assert_eq!(recorded.iter().filter(|d| d.user_id == user.uuid()).count(), 1);

    let user = sign_in(&app, &user).await;
    let response = app.delete_account(&user).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    attune_tests::eventually("the purge removes the person's deliveries", WAIT, || async {
        deliveries(&app).await.iter().all(|d| d.user_id != user.uuid())
    })
    .await;
    let left = deliveries(&app).await;
    assert_eq!(left.len(), 1, "the neighbour's delivery stays");
    assert_ne!(left[0].user_id, user.uuid());
    app.stop().await;
}

/// Dispatches until a run sends something, which it does once the database has
/// rolled a dead worker's transaction back and released its locks; returns how
/// many reminders were sent in all.
async fn dispatch_once_unlocked(app: &TestApp, deps: &WorkerDeps) -> usize {
    let sent = Arc::new(AtomicUsize::new(0));
    attune_tests::eventually("the reminder is dispatched", WAIT, || {
        let sent = sent.clone();
        async move {
            sent.fetch_add(dispatch(app, deps).await, Ordering::SeqCst);
            sent.load(Ordering::SeqCst) > 0
        }
    })
    .await;
    sent.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_worker_killed_after_queuing_but_before_its_claim_commits_doubles_none() {
    let (app, fake, fake_clock) = setup().await;
    let (user, slot) = subscribed_user(&app, &fake, "killed@example.org").await;
    just_after(&app, &fake_clock, slot);
    let (one, two) = (app.worker_deps().await, app.worker_deps().await);

    // The crash window: the pushes are on the queue, and the worker dies before
    // its claim commits. The push still goes out.
    let txn = attune_shared::db::begin(&app.db).await.unwrap();
    assert_eq!(claim_and_queue_in(&one, &txn, app.clock.now(), 100).await.unwrap(), 1);
    drop(txn);
    let pushed = fake.wait_for_deliveries(1, WAIT).await;
    let id = delivery_id(user.uuid(), slot.timestamp_millis());
    assert_eq!(pushed[0].payload["delivery_id"], id.to_string());

    // Nothing was recorded, so the next run claims the same slot again (once the
    // database has rolled the dead transaction back and released its locks),
    // under the same delivery id: the queue drops the second push.
    assert_eq!(dispatch_once_unlocked(&app, &two).await, 1);
    let stored = deliveries(&app).await;
    assert_eq!(stored.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id], "recorded once, under the pushed id");
    assert_eq!(dispatch(&app, &one).await, 0, "recorded: never again");
    attune_tests::queue_drained(&two.queue).await;
    assert_eq!(fake.deliveries().len(), 1, "sent exactly once");
    app.stop().await;
}

#[tokio::test]
async fn a_claim_that_never_commits_loses_nothing() {
    let (app, fake, fake_clock) = setup().await;
    due_user_with_a_device(&app, &fake, &fake_clock, "uncommitted@example.org").await;
    let deps = app.worker_deps().await;

    // The worker dies inside its claim's transaction.
    let reminders = Reminders::new(app.db.clone(), Arc::new(app.clock.clone()), PersonChanges::none());
    let txn = attune_shared::db::begin(&app.db).await.unwrap();
    assert_eq!(reminders.claim_due(&txn, app.clock.now(), 100).await.unwrap().len(), 1);
    drop(txn);

    // Nothing was recorded: the next run sends it.
    assert_eq!(dispatch_once_unlocked(&app, &deps).await, 1);
    fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(dispatch(&app, &deps).await, 0);
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries().len(), 1, "sent exactly once");
    app.stop().await;
}

#[tokio::test]
async fn a_job_queued_again_under_its_key_is_dropped() {
    let app = TestApp::spawn().await;
    // A queue of its own that no worker consumes, so its depth counts every job.
    let mut settings = app.settings.clone();
    settings.queue_namespace = format!("{}:unique", app.settings.queue_namespace);
    let queue = JobQueue::connect(&settings).await.unwrap();
    let job = |key: &str| UniqueJob { key: key.to_owned(), job: Job::PurgeAccount { user_id: uuid::Uuid::now_v7() } };
    queue.enqueue_unique(vec![job("a"), job("b")]).await.unwrap();
    queue.enqueue_unique(vec![job("a"), job("c")]).await.unwrap();
    assert_eq!(queue.depth().await.unwrap().pending, 3, "`a` once, `b`, `c`");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_jobs_is_ready_for_workers_at_once() {
    let app = TestApp::spawn().await;
    let mut settings = app.settings.clone();
    settings.queue_namespace = format!("{}:burst", app.settings.queue_namespace);
    let queue = JobQueue::connect(&settings).await.unwrap();
    // More than one Lua `unpack` takes: apalis-redis's own fetch could not move them all.
    let jobs: Vec<_> = (0..9_000)
        .map(|n| UniqueJob { key: format!("burst:{n}"), job: Job::PurgeAccount { user_id: uuid::Uuid::now_v7() } })
        .collect();
    queue.enqueue_unique(jobs).await.unwrap();
    assert_eq!(queue.depth().await.unwrap().pending, 9_000, "all due for workers at once");
    if let attune_shared::jobs::QueueBackend::Redis(mut storage) = queue.backend().clone() {
        let active = storage.get_config().active_jobs_list();
        let listed: u64 = redis::cmd("LLEN").arg(active).query_async(storage.get_connection()).await.unwrap();
        assert_eq!(listed, 9_000, "all on the active list, none left in the scheduled set");
    }
    app.stop().await;
}

#[tokio::test]
async fn two_workers_dispatching_many_reminders_send_each_exactly_once() {
    const USERS: usize = 60;
    let (app, fake, fake_clock) = setup().await;
    let slots: Vec<DateTime<Utc>> = futures::stream::iter(0..USERS)
        .map(|n| {
            let (app, fake) = (&app, &fake);
            async move { user_with_a_device(app, fake, &format!("many{n}@example.org")).await }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    just_after(&app, &fake_clock, slots.into_iter().max().unwrap());
    let (one, two) = (app.worker_deps().await, app.worker_deps().await);

    // Two worker processes at once, in small batches so that their claims interleave.
    let now = app.clock.now();
    let queue = one.queue.clone();
    let (a, b) = tokio::join!(
        tokio::spawn(async move { dispatch_due_reminders(&one, now, 7).await.unwrap() }),
        tokio::spawn(async move { dispatch_due_reminders(&two, now, 7).await.unwrap() }),
    );
    assert_eq!(a.unwrap() + b.unwrap(), USERS, "each reminder queued by exactly one worker");
    let stored = deliveries(&app).await;
    assert_eq!(stored.len(), USERS);

    let pushed = fake.wait_for_deliveries(USERS, WAIT).await;
    attune_tests::queue_drained(&queue).await;
    let pushed_ids: std::collections::BTreeSet<String> =
        pushed.iter().map(|d| d.payload["delivery_id"].as_str().unwrap().to_owned()).collect();
    let stored_ids: std::collections::BTreeSet<String> = stored.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(pushed_ids, stored_ids, "every reminder pushed");
    assert_eq!(fake.deliveries().len(), USERS, "none pushed twice");
    app.stop().await;
}

/// `descriptive` is one setting (the notification settings'), and both of its
/// deprecated aliases still work for a release: the profile's
/// `descriptive_notifications` and the reminder settings' `descriptive` each
/// change it, the last change wins, every view shows the same value, and a
/// descriptive reminder names today's exercise while a discreet one never does.
#[tokio::test]
async fn the_old_descriptive_fields_both_set_the_one_descriptive_choice() {
    let (app, fake, fake_clock) = setup().await;
    let mut users = Vec::new();
    // (who, reminder settings' `descriptive`, then the profile's, if sent; what holds)
    for (email, in_reminders, on_profile, descriptive) in [
        ("profile@example.org", false, Some(true), true),
        ("reminders@example.org", true, None, true),
        ("changed-mind@example.org", true, Some(false), false),
    ] {
        let user = app.register(email).await;
        app.enroll(&user, "steady").await;
        let mut settings = every_day(("19:00", "21:00"));
        settings["descriptive"] = json!(in_reminders);
        assert_eq!(put_settings(&app, &user, &settings).await.status(), StatusCode::OK);
        if let Some(on_profile) = on_profile {
            let response = app
                .request(Method::PATCH, "/v1/me")
                .bearer_auth(&user.access_token)
                .json(&json!({"descriptive_notifications": on_profile}))
                .send()
                .await
                .unwrap();
            let (status, _, profile) = read(response).await;
            assert_eq!((status, &profile["descriptive_notifications"]), (StatusCode::OK, &json!(on_profile)));
        }
        let (_, _, me) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
        let (_, _, choices) =
            read(app.get("/v1/notifications/settings").bearer_auth(&user.access_token).send().await.unwrap()).await;
        assert_eq!(me["descriptive_notifications"], json!(descriptive), "{email}: profile");
        assert_eq!(get_settings(&app, &user).await["descriptive"], json!(descriptive), "{email}: reminder settings");
        assert_eq!(choices["descriptive"], json!(descriptive), "{email}: notification settings");
        let device = fake.new_subscription();
        let response =
            app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        users.push((user, device, descriptive));
    }
    let slot = next_reminder_at(&app, &users[0].0).await.unwrap();
    for (user, _, _) in &users[1..] {
        assert_eq!(next_reminder_at(&app, user).await, Some(slot), "the same settings, the same slot");
    }
    // Today's suggestion as of the reminder's time.
    just_after(&app, &fake_clock, slot);
    let mut titles = Vec::new();
    for (user, _, _) in &users {
        let user = sign_in(&app, user).await;
        let (status, _, today) = read(app.get("/v1/today").bearer_auth(&user.access_token).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{today}");
        titles.push(today["suggestion"]["exercise"]["title"].as_str().expect("an exercise suggested").to_owned());
    }

    let deps = app.worker_deps().await;
    assert_eq!(dispatch(&app, &deps).await, 3);
    fake.wait_for_deliveries(3, WAIT).await;
    for ((_, device, descriptive), title) in users.iter().zip(&titles) {
        let pushed = fake.deliveries_for(&device.id);
        assert_eq!(pushed.len(), 1);
        let text = format!("{} {}", pushed[0].payload["title"], pushed[0].payload["body"]);
        assert_eq!(text.contains(title.as_str()), *descriptive, "`{title}` in: {text}");
    }
    app.stop().await;
}

/// The previous release's workers may still run while this one rolls out, or again
/// after a rollback (migrations are not reversed): its claim records deliveries
/// with `ON CONFLICT (user_id, slot_at)` and marks them queued afterwards, and
/// this schema takes both.
#[tokio::test]
async fn the_previous_releases_dispatch_statements_still_work_on_this_schema() {
    let (app, fake, _) = setup().await;
    let (user, slot) = subscribed_user(&app, &fake, "previous@example.org").await;
    let (user_id, slot) = (user.uuid(), slot.timestamp_millis());
    let backend = app.db.get_database_backend();
    for attempt in 0..2 {
        let record = Statement::from_sql_and_values(
            backend,
            "INSERT INTO reminder_deliveries (id, user_id, slot_at, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, slot_at) DO NOTHING",
            [uuid::Uuid::now_v7().into(), user_id.into(), slot.into(), (slot + attempt).into()],
        );
        app.db.execute_raw(record).await.unwrap();
    }
    let mark = Statement::from_sql_and_values(
        backend,
        "UPDATE reminder_deliveries SET queued_at = $1 WHERE user_id = $2",
        [slot.into(), user_id.into()],
    );
    assert_eq!(app.db.execute_raw(mark).await.unwrap().rows_affected(), 1, "recorded once, then marked");
    let stored = deliveries(&app).await;
    assert_eq!((stored.len(), stored[0].sent_at, stored[0].queued_at), (1, slot, Some(slot)));
    app.stop().await;
}

/// Where a delivery's foreign key points: the person's schedule on PostgreSQL,
/// their account on SQLite (see migration `m20261124_000010`).
async fn delivery_key_target(app: &TestApp) -> String {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT confrelid::regclass::text AS target FROM pg_constraint \
             WHERE conrelid = 'reminder_deliveries'::regclass AND contype = 'f'"
        }
        _ => "SELECT \"table\" AS target FROM pragma_foreign_key_list('reminder_deliveries')",
    };
    let rows = app.db.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    let targets: Vec<String> = rows.iter().map(|r| r.try_get("", "target").unwrap()).collect();
    assert_eq!(targets.len(), 1, "one foreign key: {targets:?}");
    targets[0].clone()
}

/// The migration that points deliveries' key at schedules applies over recorded
/// deliveries (and reverts), and an account's deletion still reaches them.
#[tokio::test]
async fn deliveries_key_on_the_schedule_and_the_migration_keeps_recorded_ones() {
    use attune_migrations::{Migrator, MigratorTrait};

    let (app, fake, fake_clock) = setup().await;
    let (user, slot) = subscribed_user(&app, &fake, "keyed@example.org").await;
    just_after(&app, &fake_clock, slot);
    let deps = app.worker_deps().await;
    assert_eq!(dispatch(&app, &deps).await, 1);
    let postgres = app.db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let on_schedules = if postgres { "reminder_schedules" } else { "users" };
    assert_eq!(delivery_key_target(&app).await, on_schedules);

    // Back past m20261124_000010, and whatever came after it.
    let since = attune_tests::migrations_back_through("m20261124_000010_reminder_delivery_schedule_key");
    Migrator::down(&app.db, Some(since)).await.unwrap();
    assert_eq!(delivery_key_target(&app).await, "users");
    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(delivery_key_target(&app).await, on_schedules);
    assert_eq!(deliveries(&app).await.len(), 1, "the recorded delivery stays through both");

    let user = sign_in(&app, &user).await;
    let response = app.delete_account(&user).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    attune_tests::eventually("the purge removes the delivery", WAIT, || async { deliveries(&app).await.is_empty() })
        .await;
    app.stop().await;
}

/// A claim of the largest batch writes its deliveries and its moves in one
/// statement each, on both backends (SQLite takes at most 32,766 bound values).
#[tokio::test]
async fn the_largest_claim_records_and_moves_its_whole_batch() {
    use attune_shared::{
        domain::reminders::ReminderSettings,
        entities::{enrollment, reminder_schedule, user},
        reminders::MAX_CLAIM_BATCH,
    };
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, Set};

    let app = TestApp::spawn().await;
    // Midday in Berlin: outside everyone's quiet hours, whenever the test runs.
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-11-18T11:00:00Z").unwrap().with_timezone(&Utc));
    let now = app.clock.now().timestamp_millis();
    let people = MAX_CLAIM_BATCH as usize + 1;
    let ids: Vec<uuid::Uuid> = (0..people).map(|_| uuid::Uuid::now_v7()).collect();
    let settings = serde_json::to_string(&ReminderSettings::default()).unwrap();
    for chunk in ids.chunks(1_000) {
        user::Entity::insert_many(chunk.iter().map(|&id| user::ActiveModel {
            id: Set(id),
            email: Set(format!("{id}@example.org")),
            password_hash: Set("x".into()),
            display_name: Set("Someone".into()),
            timezone: Set("Europe/Berlin".into()),
            created_at: Set(now),
            updated_at: Set(now),
            deleted_at: Set(None),
            country: Set(None),
            email_verified_at: Set(None),
        }))
        .exec(&app.db)
        .await
        .unwrap();
        enrollment::Entity::insert_many(chunk.iter().map(|&id| enrollment::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(id),
            program: Set("closer".into()),
            mode: Set(enrollment::StoredMode::Solo),
            pace: Set(enrollment::StoredPace::Steady),
            step: Set(1),
            step_started_at: Set(now),
            paused_at: Set(None),
            couple_ended_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }))
        .exec(&app.db)
        .await
        .unwrap();
        reminder_schedule::Entity::insert_many(chunk.iter().enumerate().map(|(n, &id)| {
            reminder_schedule::ActiveModel {
                user_id: Set(id),
                settings: Set(settings.clone()),
                next_slot_at: Set(Some(now - 60_000 - n as i64)),
                unanswered: Set(0),
                last_sent_at: Set(None),
                updated_at: Set(now),
            }
        }))
        .exec(&app.db)
        .await
        .unwrap();
    }

    let reminders = Reminders::new(app.db.clone(), Arc::new(app.clock.clone()), PersonChanges::none());
    let txn = attune_shared::db::begin(&app.db).await.unwrap();
    let due = reminders.claim_due(&txn, app.clock.now(), MAX_CLAIM_BATCH).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(due.len(), MAX_CLAIM_BATCH as usize, "a whole batch claimed");
    assert_eq!(deliveries(&app).await.len(), MAX_CLAIM_BATCH as usize, "and recorded");
    let moved = reminder_schedule::Entity::find()
        .filter(reminder_schedule::Column::NextSlotAt.gt(now))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(moved, MAX_CLAIM_BATCH, "every claimed schedule moved to a later slot");

    let txn = attune_shared::db::begin(&app.db).await.unwrap();
    let rest = reminders.claim_due(&txn, app.clock.now(), MAX_CLAIM_BATCH).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(rest.len(), 1, "the one left over is claimed next");
    app.stop().await;
}

#[tokio::test]
async fn a_batch_of_first_sends_run_again_sends_only_what_it_had_not() {
    use attune_shared::{
        jobs::KeyedPush,
        push::{PushKind, PushMessage, PushPayload, Urgency},
    };
    let (app, fake, _) = setup().await;
    let user = app.register("batch@example.org").await;
    let (phone, laptop) = (fake.new_subscription(), fake.new_subscription());
    let mut stored = Vec::new();
    for device in [&phone, &laptop] {
        let response =
            app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
        let (status, _, body) = read(response).await;
        assert_eq!(status, StatusCode::CREATED);
        stored.push(body["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let payload = PushPayload {
        r#type: PushKind::Reminder,
        title: "A moment for you".into(),
        body: "When it suits you.".into(),
        url: "/today".into(),
        delivery_id: None,
    };
    let message = PushMessage::new(payload, REMINDER_TTL_SECS, Urgency::Low);
    let pushes: Vec<KeyedPush> = stored
        .iter()
        .zip(["batch:phone", "batch:laptop"])
        .map(|(&subscription_id, key)| KeyedPush {
            key: key.to_owned(),
            user_id: user.id.parse().unwrap(),
            subscription_id,
            message: message.clone(),
        })
        .collect();
    let deps = app.worker_deps().await;
    let run_batch = attune_worker::jobs::send_push::run_batch;

    if app.settings.redis_url.is_some() {
        // The phone's push went out before the batch's worker died.
        deps.queue.mark_push_sent("batch:phone").await.unwrap();
        run_batch(&deps, pushes.clone()).await.unwrap();
        let sent: Vec<String> = fake.deliveries().iter().map(|d| d.subscription_id.clone()).collect();
        assert_eq!(sent, vec![laptop.id.clone()], "only what had not gone out");
        assert!(deps.queue.push_was_sent("batch:laptop").await.unwrap(), "and it is marked now");
        run_batch(&deps, pushes).await.unwrap();
        assert_eq!(fake.deliveries().len(), 1, "a third run sends nothing");
    } else {
        // SQLite carries each push as a job of its own: nothing is marked there.
        deps.queue.mark_push_sent("batch:phone").await.unwrap();
        assert!(!deps.queue.push_was_sent("batch:phone").await.unwrap());
        let mut settings = app.settings.clone();
        settings.queue_namespace = format!("{}:single", app.settings.queue_namespace);
        let queue = JobQueue::connect(&settings).await.unwrap();
        let jobs = pushes
            .into_iter()
            .map(|p| UniqueJob {
                key: p.key,
                job: Job::SendPush {
                    user_id: p.user_id,
                    subscription_id: p.subscription_id,
                    message: p.message,
                    attempt: 0,
                },
            })
            .collect();
        queue.enqueue_unique(jobs).await.unwrap();
        assert_eq!(queue.depth().await.unwrap().pending, 2, "one job a push");
    }
    app.stop().await;
}
