//! A person's notification choices end to end: `/v1/notifications/settings`,
//! the reminders that follow them, and the migration that brought the old
//! fields together. Reflection notices under the choices are in reflections.rs;
//! unreadable stored choices in notification_settings_invalid.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::Clock;
use attune_tests::{TestApp, TestUser, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

fn defaults() -> Value {
    json!({
        "reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "paused_until": null, "descriptive": false, "partner_updates": false,
    })
}

async fn get_json(app: &TestApp, user: &TestUser, path: &str) -> Value {
    let (status, _, body) = read(app.get(path).bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn put_choices(app: &TestApp, user: &TestUser, choices: &Value) -> reqwest::Response {
    app.request(Method::PUT, "/v1/notifications/settings")
        .bearer_auth(&user.access_token)
        .json(choices)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn notification_settings_round_trip_and_a_bad_one_names_every_field() {
    let app = TestApp::spawn().await;
    let user = app.register("choices@example.org").await;
    assert_eq!(get_json(&app, &user, "/v1/notifications/settings").await, defaults());

    let mine = json!({
        "reminders": false, "reflections": true, "quiet_hours": {"start": "21:30", "end": "08:00"},
        "paused_until": "2030-01-01T09:00:00Z", "descriptive": true,
    });
    let (status, _, stored) = read(put_choices(&app, &user, &mine).await).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let read_back = get_json(&app, &user, "/v1/notifications/settings").await;
    assert_eq!(stored, read_back);
    for field in ["reminders", "reflections", "quiet_hours", "descriptive"] {
        assert_eq!(read_back[field], mine[field], "{field}");
    }
    assert!(read_back["paused_until"].as_str().unwrap().starts_with("2030-01-01T09:00:00"));

    let bad = json!({
        "reflections": "yes please", "quiet_hours": {"start": "9pm", "end": "07:00"}, "paused_until": "soon",
    });
    let response = put_choices(&app, &user, &bad).await;
    // A value of the wrong JSON type is caught by the body's parser, before the other fields.
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["reflections"], "{problem}");
    let bad = json!({"reflections": true, "quiet_hours": {"start": "9pm", "end": "07:00"}, "paused_until": "soon"});
    let problem = expect_problem(put_choices(&app, &user, &bad).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["reminders", "quiet_hours.start", "paused_until", "descriptive"]);
    assert_eq!(get_json(&app, &user, "/v1/notifications/settings").await, read_back, "a refused change stores nothing");
    app.stop().await;
}

/// The reminder settings' old fields are views of the one set of choices: the
/// notification settings switch reminders off, move them out of quiet hours
/// and pause them, and the reminder settings show it.
#[tokio::test]
async fn reminders_follow_the_notification_settings() {
    let app = TestApp::spawn().await;
    let user = app.register("follow@example.org").await;
    app.enroll(&user, "steady").await;
    let every_evening = json!({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                               "window": {"start": "19:00", "end": "23:00"}});
    let response = app
        .request(Method::PUT, "/v1/reminders/settings")
        .bearer_auth(&user.access_token)
        .json(&every_evening)
        .send()
        .await
        .unwrap();
    let (status, _, settings) = read(response).await;
    assert_eq!(status, StatusCode::OK, "the days and window alone are a whole request now: {settings}");
    assert_eq!(settings["quiet_hours"], defaults()["quiet_hours"], "left out, so the person's quiet hours");
    let berlin = chrono_tz::Europe::Berlin;
    let next = |body: &Value| {
        body["next_reminder_at"]
            .as_str()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&berlin))
    };
    assert_eq!(next(&settings).unwrap().format("%H:%M").to_string(), "19:00");

    let mut choices = defaults();
    choices["quiet_hours"] = json!({"start": "18:00", "end": "20:30"});
    assert_eq!(put_choices(&app, &user, &choices).await.status(), StatusCode::OK);
    let settings = get_json(&app, &user, "/v1/reminders/settings").await;
    assert_eq!(settings["quiet_hours"], choices["quiet_hours"]);
    assert_eq!(next(&settings).unwrap().format("%H:%M").to_string(), "20:30", "out of the new quiet hours at once");

    choices["reminders"] = json!(false);
    assert_eq!(put_choices(&app, &user, &choices).await.status(), StatusCode::OK);
    let settings = get_json(&app, &user, "/v1/reminders/settings").await;
    assert_eq!((settings["enabled"].clone(), settings["next_reminder_at"].clone()), (json!(false), Value::Null));

    choices["reminders"] = json!(true);
    let pause_ends = app.clock.now() + chrono::Duration::days(10);
    choices["paused_until"] = json!(pause_ends.to_rfc3339());
    assert_eq!(put_choices(&app, &user, &choices).await.status(), StatusCode::OK);
    let settings = get_json(&app, &user, "/v1/reminders/settings").await;
    assert!(next(&settings).unwrap() >= pause_ends, "not before the pause ends: {settings}");

    // The old way still works: `enabled` and `paused_until: null` through the reminder settings.
    let mut old_style = every_evening.clone();
    old_style["enabled"] = json!(true);
    old_style["paused_until"] = Value::Null;
    let response = app
        .request(Method::PUT, "/v1/reminders/settings")
        .bearer_auth(&user.access_token)
        .json(&old_style)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let choices = get_json(&app, &user, "/v1/notifications/settings").await;
    assert_eq!((choices["reminders"].clone(), choices["paused_until"].clone()), (json!(true), Value::Null));
    assert_eq!(choices["quiet_hours"], json!({"start": "18:00", "end": "20:30"}), "left out, so kept");
    app.stop().await;
}

/// Runs `sql` with `values` on the app's database.
/// The migration that made `descriptive` one setting, over rows in the previous
/// release's shape: the reminder settings' `descriptive` (the one reminders
/// read) wins over the profile's, so each person keeps the texts they were
/// getting; the other reminder choices move along; and `down` puts them back.
#[tokio::test]
async fn the_migration_keeps_everyones_effective_choices() {
    use attune_migrations::{Migrator, MigratorTrait};

    let app = TestApp::spawn().await;
    let mut people = Vec::new();
    for email in
        ["profile-only@example.org", "reminders-only@example.org", "no-schedule@example.org", "off@example.org"]
    {
        people.push(app.register(email).await);
    }
    // Back to just before that migration, whatever came after it.
    let since = attune_tests::migrations_back_through("m20261201_000011_notification_settings");
    Migrator::down(&app.db, Some(since)).await.unwrap();
    let old_settings = |enabled: bool, descriptive: bool, paused_until: Value| {
        json!({"enabled": enabled, "days": ["tue", "sat"], "window": {"start": "08:30", "end": "09:15"},
               "quiet_hours": {"start": "23:00", "end": "06:00"}, "descriptive": descriptive,
               "paused_until": paused_until})
        .to_string()
    };
    // (person, the profile's descriptive_notifications, their reminder settings if any)
    let rows = [
        (&people[0], true, Some(old_settings(true, false, Value::Null))),
        (&people[1], false, Some(old_settings(true, true, Value::Null))),
        (&people[2], true, None),
        (&people[3], false, Some(old_settings(false, false, json!("2030-01-01T09:00:00Z")))),
    ];
    let now = app.clock.now().timestamp_millis();
    for (person, on_profile, schedule) in &rows {
        app.execute(
            "UPDATE users SET descriptive_notifications = $1 WHERE id = $2",
            vec![(*on_profile).into(), person.uuid().into()],
        )
        .await;
        if let Some(settings) = schedule {
            app.execute(
                "INSERT INTO reminder_schedules (user_id, settings, next_slot_at, unanswered, last_sent_at, updated_at) \
                 VALUES ($1, $2, NULL, 0, NULL, $3)",
                vec![person.uuid().into(), settings.clone().into(), now.into()],
            )
            .await;
        }
    }
    Migrator::up(&app.db, None).await.unwrap();

    let choices = |descriptive: bool| {
        json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "23:00", "end": "06:00"},
               "paused_until": null, "descriptive": descriptive, "partner_updates": false})
    };
    let mut off = choices(false);
    off["reminders"] = json!(false);
    off["paused_until"] = json!("2030-01-01T09:00:00Z");
    let expected = [choices(false), choices(true), defaults(), off];
    for ((person, _, _), expected) in rows.iter().zip(&expected) {
        let mut got = get_json(&app, person, "/v1/notifications/settings").await;
        if let Some(paused) = got["paused_until"].as_str() {
            assert!(paused.starts_with("2030-01-01T09:00:00"), "{paused}");
            got["paused_until"] = json!("2030-01-01T09:00:00Z");
        }
        assert_eq!(&got, expected, "{}", person.email);
        let me = get_json(&app, person, "/v1/me").await;
        assert_eq!(me["descriptive_notifications"], expected["descriptive"], "{}: the profile agrees", person.email);
    }
    let reminder_settings = get_json(&app, &people[1], "/v1/reminders/settings").await;
    assert_eq!(reminder_settings["days"], json!(["tue", "sat"]), "the plan stays with the schedule");
    assert_eq!(reminder_settings["window"], json!({"start": "08:30", "end": "09:15"}));
    assert_eq!(reminder_settings["descriptive"], json!(true));

    // And back: the previous release finds the choices where it kept them.
    Migrator::down(&app.db, Some(since)).await.unwrap();
    let backend = app.db.get_database_backend();
    let select = Statement::from_sql_and_values(
        backend,
        "SELECT s.settings AS settings, u.descriptive_notifications AS descriptive \
         FROM users u JOIN reminder_schedules s ON s.user_id = u.id WHERE u.id = $1",
        [people[1].uuid().into()],
    );
    let row = app.db.query_one_raw(select).await.unwrap().unwrap();
    let settings: Value = serde_json::from_str(&row.try_get::<String>("", "settings").unwrap()).unwrap();
    assert_eq!(settings.to_string(), serde_json::from_str::<Value>(rows[1].2.as_ref().unwrap()).unwrap().to_string());
    assert!(row.try_get::<bool>("", "descriptive").unwrap(), "the profile column follows the one setting");
    Migrator::up(&app.db, None).await.unwrap();
    app.stop().await;
}
