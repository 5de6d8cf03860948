//! Stored settings that no longer parse fail closed: that person is sent
//! nothing (no reminder, no reflection notice), an error naming only their user
//! id is logged, and `attune_notification_settings_invalid_total` counts it. One
//! test in this binary: it installs the process-wide log subscriber and reads a
//! process-wide counter.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use attune_shared::{ManualClock, config::LogFormat, telemetry};
use attune_tests::{
    TestApp, TestUser, expect_problem,
    fake_push::{FakePushService, FakeSubscription},
    read,
};
use attune_worker::jobs::{dispatch_reminders::dispatch_due_reminders, reflections};
use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
/// Written into a broken row: it must never reach a log line.
const MARKER: &str = "private-words-in-a-broken-row";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn berlin(local: &str) -> DateTime<Utc> {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    chrono_tz::Europe::Berlin.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
}

async fn invalid_settings_count(app: &TestApp) -> u64 {
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("attune_notification_settings_invalid_total "))
        .map_or(0, |value| value.trim().parse::<f64>().unwrap() as u64)
}

/// Someone enrolled at a steady pace, reminded every evening 19:00–21:00, who
/// saved their notification choices once, with one device.
async fn reminded_person(app: &TestApp, fake: &FakePushService, email: &str) -> (TestUser, FakeSubscription) {
    let user = app.register(email).await;
    app.enroll(&user, "steady").await;
    let plan = json!({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "window": {"start": "19:00", "end": "21:00"}});
    let response =
        app.request(Method::PUT, "/v1/reminders/settings").bearer_auth(&user.access_token).json(&plan).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    let choices = json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
                         "paused_until": null, "descriptive": false});
    let response =
        app.request(Method::PUT, "/v1/notifications/settings").bearer_auth(&user.access_token).json(&choices).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
    let device = fake.new_subscription();
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(&device.json).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    (user, device)
}

#[tokio::test]
async fn stored_settings_that_no_longer_parse_send_that_person_nothing_log_their_id_and_count() {
    let captured = Captured::default();
    let writer = captured.clone();
    telemetry::init_with_writer("info", LogFormat::Json, move || writer.clone());

    let fake_clock = ManualClock::new(Utc::now());
    let fake = FakePushService::start(Arc::new(fake_clock.clone())).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
        s.dispatch_interval_secs = 3600;
    })
    .await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    app.clock.set(berlin("2026-11-09 10:00"));

    let (_, heard) = reminded_person(&app, &fake, "healthy@example.org").await;
    let (bad_json, bad_json_device) = reminded_person(&app, &fake, "bad-json@example.org").await;
    let (bad_day, bad_day_device) = reminded_person(&app, &fake, "bad-day@example.org").await;
    let (bad_zone, bad_zone_device) = reminded_person(&app, &fake, "bad-zone@example.org").await;
    let broken = [(&bad_json, &bad_json_device), (&bad_day, &bad_day_device), (&bad_zone, &bad_zone_device)];

    // Three ways a stored row stops parsing: cut-off JSON, an unknown day, a zone that is no zone.
    let updated = app
        .execute(
            "UPDATE notification_settings SET settings = $1 WHERE user_id = $2",
            vec![format!(r#"{{"reminders": true, "note": "{MARKER}""#).into(), bad_json.uuid().into()],
        )
        .await;
    assert_eq!(updated, 1, "one row changed");
    let updated = app
        .execute(
            "UPDATE reminder_schedules SET settings = $1 WHERE user_id = $2",
            vec![
                json!({"days": ["mon", "someday"], "window": {"start": "19:00", "end": "21:00"}, "x": MARKER})
                    .to_string()
                    .into(),
                bad_day.uuid().into(),
            ],
        )
        .await;
    assert_eq!(updated, 1, "one row changed");
    let updated = app
        .execute(
            "UPDATE users SET timezone = $1 WHERE id = $2",
            vec!["Mars/Olympus_Mons".into(), bad_zone.uuid().into()],
        )
        .await;
    assert_eq!(updated, 1, "one row changed");
    let before = invalid_settings_count(&app).await;

    // Monday's reminders fall due at 19:00: only the healthy person's goes out.
    let evening = berlin("2026-11-09 19:01");
    app.clock.set(evening);
    fake_clock.set(evening);
    let deps = app.worker_deps().await;
    assert_eq!(dispatch_due_reminders(&deps, evening, 100).await.unwrap(), 1, "one reminder sent");
    fake.wait_for_deliveries(1, WAIT).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries_for(&heard.id).len(), 1);
    for (user, device) in broken {
        assert!(fake.deliveries_for(&device.id).is_empty(), "no reminder for {}", user.email);
    }
    let after_reminders = invalid_settings_count(&app).await;
    assert!(after_reminders >= before + 3, "each broken row counted: {before} → {after_reminders}");

    // Sunday's reflections are stored for all, announced only where the settings
    // read. (The broken zone's week is reckoned in UTC, so due an hour later.)
    let sunday = berlin("2026-11-15 19:00");
    app.clock.set(sunday);
    fake_clock.set(sunday);
    assert_eq!(reflections::run(&deps, sunday).await.unwrap(), 4);
    // The healthy person's notice and the broken plan's person's (reminders alone broken).
    fake.wait_for_deliveries(3, WAIT).await;
    attune_tests::queue_drained(&deps.queue).await;
    assert_eq!(fake.deliveries_for(&heard.id).len(), 2, "a reminder and a reflection notice");
    assert!(fake.deliveries_for(&bad_json_device.id).is_empty(), "the broken choices hold for reflections too");
    assert!(fake.deliveries_for(&bad_zone_device.id).is_empty(), "and the broken zone");
    assert_eq!(fake.deliveries_for(&bad_day_device.id).len(), 1, "a broken reminder plan is the reminders' alone");
    assert!(invalid_settings_count(&app).await > after_reminders);

    // The person sees why, and saving settings again mends it.
    let bad_json = app.sign_in_again(&bad_json).await;
    let response = app.get("/v1/notifications/settings").bearer_auth(&bad_json.access_token).send().await.unwrap();
    let problem = expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(problem["type"], "/problems/notification-settings-unreadable");
    let defaults = json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
                          "paused_until": null, "descriptive": false, "partner_updates": false});
    let response = app
        .request(Method::PUT, "/v1/notifications/settings")
        .bearer_auth(&bad_json.access_token)
        .json(&defaults)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _, read_back) =
        read(app.get("/v1/notifications/settings").bearer_auth(&bad_json.access_token).send().await.unwrap()).await;
    assert_eq!((status, read_back), (StatusCode::OK, defaults));

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(!logs.contains(MARKER), "a broken row's text is never logged");
    for user in [&bad_json.id, &bad_day.id, &bad_zone.id] {
        let line = logs
            .lines()
            .find(|line| line.contains("stored notification settings do not parse") && line.contains(user.as_str()))
            .unwrap_or_else(|| panic!("an error naming {user}"));
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["level"], "ERROR", "{line}");
    }
    app.stop().await;
}
