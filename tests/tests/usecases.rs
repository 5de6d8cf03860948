//! Every use case that spans services runs in one transaction: when its later
//! step fails, nothing of its earlier steps remains, and the client's retry
//! succeeds (no half-done state answering "already enrolled"). The failure is
//! made inside the database (`TestApp::fail_writes`), on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::Clock;
use attune_tests::{PASSWORD, TestApp, TestUser, expect_problem, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The reminder schedule is the later step of every use case here.
const SCHEDULES: &str = "reminder_schedules";

async fn enroll(app: &TestApp, user: &TestUser) -> reqwest::Response {
    app.post("/v1/enrollments")
        .bearer_auth(&user.access_token)
        .json(&json!({"program": "closer", "mode": "solo", "pace": "gentle"}))
        .send()
        .await
        .unwrap()
}

async fn current_enrollment(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let response = app.get("/v1/enrollments/current").bearer_auth(&user.access_token).send().await.unwrap();
    let (status, _, body) = read(response).await;
    (status, body)
}

async fn patch(app: &TestApp, user: &TestUser, path: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, path).bearer_auth(&user.access_token).json(body).send().await.unwrap()
}

async fn me(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

async fn schedule_rows(app: &TestApp, user: &TestUser) -> i64 {
    app.count_rows_for_user(SCHEDULES, "user_id", user.uuid()).await
}

fn checkin(app: &TestApp, id: &str) -> Value {
    json!({"id": id, "occurred_at": app.clock.now_ms(), "mood": 3, "anxiety": 2, "comfort": 3,
        "exercise_id": null, "completed": false, "note": "a private note", "tags": ""})
}

#[tokio::test]
async fn an_enrollment_whose_reminder_schedule_fails_is_not_kept_and_the_retry_enrolls() {
    let app = TestApp::spawn().await;
    let user = app.register("enroll@example.org").await;
    app.fail_writes(SCHEDULES, "INSERT").await;
    expect_problem(enroll(&app, &user).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(current_enrollment(&app, &user).await.0, StatusCode::NOT_FOUND, "the enrollment was rolled back");
    assert_eq!(app.count_rows_for_user("enrollments", "user_id", user.uuid()).await, 0);

    app.allow_writes(SCHEDULES, "INSERT").await;
    assert_eq!(enroll(&app, &user).await.status(), StatusCode::CREATED, "the retry is not 'already enrolled'");
    assert_eq!(schedule_rows(&app, &user).await, 1, "enrolling schedules the first reminder");
    app.stop().await;
}

#[tokio::test]
async fn a_pace_change_or_pause_whose_reminders_cannot_move_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("pace@example.org").await;
    app.enroll(&user, "gentle").await;
    let (_, before) = current_enrollment(&app, &user).await;
    app.fail_writes(SCHEDULES, "UPDATE").await;
    for change in [json!({"pace": "committed"}), json!({"paused": true})] {
        let response = patch(&app, &user, "/v1/enrollments/current", &change).await;
        expect_problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert_eq!(current_enrollment(&app, &user).await.1, before, "{change}: the enrollment is as it was");
    }

    app.allow_writes(SCHEDULES, "UPDATE").await;
    let (status, _, body) =
        read(patch(&app, &user, "/v1/enrollments/current", &json!({"pace": "committed"})).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pace"], "committed");
    app.stop().await;
}

#[tokio::test]
async fn a_time_zone_change_whose_reminders_cannot_move_leaves_the_profile_as_it_was() {
    let app = TestApp::spawn().await;
    let user = app.register("zone@example.org").await;
    app.enroll(&user, "steady").await;
    let (_, before) = me(&app, &user).await;
    app.fail_writes(SCHEDULES, "UPDATE").await;
    let change = json!({"timezone": "America/New_York", "display_name": "Someone new",
        "descriptive_notifications": true});
    expect_problem(patch(&app, &user, "/v1/me", &change).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(me(&app, &user).await.1, before, "neither the zone, the name nor the choice changed");

    app.allow_writes(SCHEDULES, "UPDATE").await;
    let (status, _, body) = read(patch(&app, &user, "/v1/me", &change).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timezone"], "America/New_York");
    assert_eq!(body["descriptive_notifications"], true);
    app.stop().await;
}

#[tokio::test]
async fn a_check_in_push_whose_reminder_spacing_cannot_reset_stores_no_record() {
    let app = TestApp::spawn().await;
    let user = app.register("push@example.org").await;
    app.enroll(&user, "steady").await;
    // Two reminders went unanswered: a check-in answers them, in the push's transaction.
    let unanswered = match app.backend {
        attune_tests::Backend::Postgres => "UPDATE reminder_schedules SET unanswered = 2 WHERE user_id = $1",
        attune_tests::Backend::Sqlite => "UPDATE reminder_schedules SET unanswered = 2 WHERE user_id = ?",
    };
    assert_eq!(app.execute(unanswered, vec![user.uuid().into()]).await, 1);
    app.fail_writes(SCHEDULES, "UPDATE").await;
    let changes = json!({"checkins": {"created": [checkin(&app, "c1")], "updated": [], "deleted": []}});
    expect_problem(app.push(&user, Some(0), changes.clone()).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    let pulled = app.pull(&user, None).await;
    assert_eq!(pulled["changes"]["checkins"]["updated"], json!([]), "the check-in was rolled back: {pulled}");

    app.allow_writes(SCHEDULES, "UPDATE").await;
    assert_eq!(app.push(&user, Some(0), changes).await.status(), StatusCode::OK);
    let pulled = app.pull(&user, None).await;
    assert_eq!(pulled["changes"]["checkins"]["updated"][0]["id"], "c1", "{pulled}");
    app.stop().await;
}

#[tokio::test]
async fn an_account_deletion_whose_reminders_cannot_stop_leaves_the_account_working() {
    let app = TestApp::spawn().await;
    let user = app.register("delete@example.org").await;
    app.enroll(&user, "steady").await;
    app.fail_writes(SCHEDULES, "UPDATE").await;
    expect_problem(app.delete_account(&user).await, StatusCode::INTERNAL_SERVER_ERROR).await;
    let (status, body) = me(&app, &user).await;
    assert_eq!(status, StatusCode::OK, "the session still works: {body}");
    assert_eq!(body["email"], "delete@example.org", "the email was not released");
    assert_eq!(app.login("delete@example.org", PASSWORD).await.status(), StatusCode::OK, "the password still works");

    app.allow_writes(SCHEDULES, "UPDATE").await;
    assert_eq!(app.delete_account(&user).await.status(), StatusCode::ACCEPTED);
    assert_eq!(me(&app, &user).await.0, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
