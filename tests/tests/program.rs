//! The program as a person lives it: joining, today's suggestion, moving through
//! the steps at their own pace, and help when things are hard.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_tests::{TestApp, TestUser, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn enroll(app: &TestApp, user: &TestUser, mode: &str, pace: &str) -> reqwest::Response {
    app.post("/v1/enrollments")
        .bearer_auth(&user.access_token)
        .json(&json!({"program": "closer", "mode": mode, "pace": pace}))
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, user: &TestUser, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = read(app.get(path).bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

async fn post_json(app: &TestApp, user: &TestUser, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = read(app.post(path).bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

/// A check-in as the app syncs it, at the app's current clock.
fn checkin(app: &TestApp, id: &str, exercise: Option<&str>, anxiety: i64, comfort: i64, completed: bool) -> Value {
    json!({"id": id, "occurred_at": app.clock.now_ms(), "mood": 3, "anxiety": anxiety, "comfort": comfort,
           "exercise_id": exercise, "completed": completed, "note": null, "tags": ""})
}

async fn sync_checkins(app: &TestApp, user: &TestUser, records: Vec<Value>) {
    let changes = json!({"checkins": {"created": records, "updated": [], "deleted": []}});
    let (status, _, body) = read(app.push(user, Some(0), changes).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

trait NowMs {
    fn now_ms(&self) -> i64;
}

impl NowMs for attune_shared::ManualClock {
    fn now_ms(&self) -> i64 {
        attune_shared::Clock::now_ms(self)
    }
}

#[tokio::test]
async fn the_program_is_public_content_with_etags() {
    let app = TestApp::spawn().await;
    let list = app.get("/v1/programs").send().await.unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    let etag = list.headers()["etag"].to_str().unwrap().to_owned();
    assert!(list.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let programs: Value = list.json().await.unwrap();
    assert_eq!(programs[0]["slug"], "closer");
    assert_eq!(programs[0]["steps"], 10);
    let again = app.get("/v1/programs").header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let closer = app.get("/v1/programs/closer").send().await.unwrap();
    let etag = closer.headers()["etag"].to_str().unwrap().to_owned();
    let program: Value = closer.json().await.unwrap();
    let steps = program["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    assert!(steps.iter().all(|s| (4..=8).contains(&s["exercises"].as_array().unwrap().len())));
    let cached =
        app.get("/v1/programs/closer").header("if-none-match", format!("W/{etag}, \"other\"")).send().await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let stale = app.get("/v1/programs/closer").header("if-none-match", "\"old\"").send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    expect_problem(app.get("/v1/programs/nope").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    app.stop().await;
}

#[tokio::test]
async fn joining_once_choosing_pace_and_mode_and_pausing() {
    let app = TestApp::spawn().await;
    let user = app.register("join@example.org").await;
    expect_problem(app.get("/v1/today").bearer_auth(&user.access_token).send().await.unwrap(), StatusCode::NOT_FOUND)
        .await;

    let bad = app
        .post("/v1/enrollments")
        .bearer_auth(&user.access_token)
        .json(&json!({"program": "nope", "mode": "solo", "pace": "fast"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["program", "pace"]);

    let couple = expect_problem(enroll(&app, &user, "couple", "steady").await, StatusCode::CONFLICT).await;
    assert_eq!(couple["type"], "/problems/no-linked-partner");
    assert!(couple["detail"].as_str().unwrap().contains("link with your partner first"));

    let (status, _, joined) = read(enroll(&app, &user, "solo", "steady").await).await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    assert_eq!(
        (joined["step"].as_i64(), joined["pace"].as_str(), joined["sessions_per_week"].as_i64()),
        (Some(1), Some("steady"), Some(3))
    );
    expect_problem(enroll(&app, &user, "solo", "gentle").await, StatusCode::CONFLICT).await;

    let patch = |body: Value| {
        app.request(Method::PATCH, "/v1/enrollments/current").bearer_auth(&user.access_token).json(&body).send()
    };
    let (_, _, changed) = read(patch(json!({"pace": "gentle", "mode": "partnered"})).await.unwrap()).await;
    assert_eq!((changed["pace"].as_str(), changed["mode"].as_str()), (Some("gentle"), Some("partnered")));
    let (_, _, paused) = read(patch(json!({"paused": true})).await.unwrap()).await;
    assert_eq!(paused["paused"], true);
    let (_, today) = get_json(&app, &user, "/v1/today").await;
    assert_eq!(today["kind"], "paused");
    assert!(today["suggestion"].is_null());
    app.clock.advance(chrono::Duration::minutes(10));
    let (_, _, resumed) = read(patch(json!({"paused": false})).await.unwrap()).await;
    assert_eq!(resumed["paused"], false);
    let started = |v: &Value| chrono::DateTime::parse_from_rfc3339(v["step_started_at"].as_str().unwrap()).unwrap();
    assert_eq!(started(&resumed) - started(&joined), chrono::Duration::minutes(10), "paused time does not count");
    expect_problem(patch(json!({"mode": "couple"})).await.unwrap(), StatusCode::CONFLICT).await;
    expect_problem(patch(json!({"pace": "turbo"})).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    app.stop().await;
}

#[tokio::test]
async fn advancing_takes_time_practice_and_calm_and_stepping_back_is_always_fine() {
    let app = TestApp::spawn().await;
    let user = app.register("steps@example.org").await;
    enroll(&app, &user, "solo", "steady").await;

    let (status, problem) = post_json(&app, &user, "/v1/enrollments/current/advance").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["type"], "/problems/not-ready");
    let codes: Vec<&str> = problem["unmet"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["minimum_time", "practice"]);

    let (_, program) = get_json(&app, &user, "/v1/programs/closer").await;
    let step1: Vec<String> = program["steps"][0]["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    sync_checkins(
        &app,
        &user,
        vec![checkin(&app, "a", Some(&step1[0]), 2, 4, true), checkin(&app, "b", Some(&step1[1]), 2, 4, true)],
    )
    .await;
    app.clock.advance(chrono::Duration::days(5) - chrono::Duration::seconds(1));
    let user = app.sign_in_again(&user).await;
    let (_, problem) = post_json(&app, &user, "/v1/enrollments/current/advance").await;
    let codes: Vec<&str> = problem["unmet"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["minimum_time"], "{problem}");

    app.clock.advance(chrono::Duration::seconds(1));
    let (status, moved) = post_json(&app, &user, "/v1/enrollments/current/advance").await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["step"], 2);

    // Distress holds the step even when time and practice are there.
    let (_, program) = get_json(&app, &user, "/v1/programs/closer").await;
    let step2: Vec<String> = program["steps"][1]["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    sync_checkins(
        &app,
        &user,
        vec![checkin(&app, "c", Some(&step2[0]), 2, 4, true), checkin(&app, "d", Some(&step2[1]), 2, 4, true)],
    )
    .await;
    app.clock.advance(chrono::Duration::days(6));
    let user = app.sign_in_again(&user).await;
    sync_checkins(&app, &user, vec![checkin(&app, "e", None, 9, 2, false)]).await;
    let (_, problem) = post_json(&app, &user, "/v1/enrollments/current/advance").await;
    let codes: Vec<&str> = problem["unmet"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["recent_distress"]);

    let (status, back) = post_json(&app, &user, "/v1/enrollments/current/step-back").await;
    assert_eq!((status, back["step"].as_i64()), (StatusCode::OK, Some(1)));
    let (status, still) = post_json(&app, &user, "/v1/enrollments/current/step-back").await;
    assert_eq!((status, still["step"].as_i64()), (StatusCode::OK, Some(1)), "step 1 is the floor, never an error");
    app.stop().await;
}

#[tokio::test]
async fn today_suggests_within_comfort_and_turns_gentle_after_a_hard_check_in() {
    let app = TestApp::spawn().await;
    let user = app.register("today@example.org").await;
    enroll(&app, &user, "solo", "gentle").await;
    let (status, today) = get_json(&app, &user, "/v1/today").await;
    assert_eq!(status, StatusCode::OK, "{today}");
    assert_eq!(today["kind"], "exercise");
    assert_eq!(today["suggestion"]["step"], 1);
    assert_eq!(today["suggestion"]["exercise"]["intensity"], 1);
    assert_eq!(today["suggestion"]["exercise"]["mode"], "solo");
    assert!(today["support"].is_null());
    assert!(!today["reasons"].as_array().unwrap().is_empty());

    // A hard evening: anxiety 9.
    sync_checkins(&app, &user, vec![checkin(&app, "hard", None, 9, 2, false)]).await;
    let (_, today) = get_json(&app, &user, "/v1/today").await;
    assert_eq!(today["kind"], "grounding");
    assert_eq!(today["suggestion"]["exercise"]["kind"], "mindfulness");
    assert_eq!(today["suggestion"]["exercise"]["intensity"], 1);
    let support = &today["support"];
    assert!(support["notice"].as_str().unwrap().to_lowercase().contains("emergency"), "{support}");

    // With a country on the profile, that country's help, emergency number first.
    let patched = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"country": "gb"}))
        .send()
        .await
        .unwrap();
    let (_, _, me) = read(patched).await;
    assert_eq!(me["country"], "GB");
    let (_, today) = get_json(&app, &user, "/v1/today").await;
    assert_eq!(today["support"]["country"], "GB");
    assert_eq!(today["support"]["entries"][0]["phone"], "999");
    assert!(today["support"]["entries"].as_array().unwrap().iter().any(|e| e["name"] == "Samaritans"));

    // Two days later the gentleness lifts.
    app.clock.advance(chrono::Duration::hours(49));
    let user = app.sign_in_again(&user).await;
    let (_, today) = get_json(&app, &user, "/v1/today").await;
    assert_eq!(today["kind"], "exercise");
    app.stop().await;
}

#[tokio::test]
async fn resources_by_country_and_unknown_exercises_are_refused_in_sync() {
    let app = TestApp::spawn().await;
    let (status, _, general) = read(app.get("/v1/resources").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(general["country"].is_null() && general["notice"].is_string());
    assert!(general["entries"].as_array().unwrap().iter().any(|e| e["name"] == "Find A Helpline"));
    let (_, _, us) = read(app.get("/v1/resources?country=us").send().await.unwrap()).await;
    assert_eq!(us["entries"][0]["phone"], "911");
    assert!(us["entries"].as_array().unwrap().iter().any(|e| e["phone"] == "988"));
    let (_, _, elsewhere) = read(app.get("/v1/resources?country=NZ").send().await.unwrap()).await;
    assert!(elsewhere["notice"].is_string(), "an unlisted country gets the general list and the notice");
    expect_problem(app.get("/v1/resources?country=XX").send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;

    let user = app.register("exercise-ids@example.org").await;
    let changes = json!({"checkins": {"created": [checkin(&app, "x", Some("s9-not-real"), 2, 4, true)], "updated": [], "deleted": []}});
    let problem = expect_problem(app.push(&user, Some(0), changes).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "exercise_id");
    let bad_country = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"country": "Narnia"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad_country, StatusCode::UNPROCESSABLE_ENTITY).await;
    let cleared = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"country": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(read(cleared).await.2["country"], Value::Null);
    app.stop().await;
}
