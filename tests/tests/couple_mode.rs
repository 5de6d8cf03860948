//! Couple mode as two people live it through `GET /v1/today`: exercises for two
//! come only when both are in couple mode and within what both share; either
//! person's distress sets them aside for both, and nothing in one person's
//! today tells anything of the other; unlinking turns couple mode into
//! partnered, and today says so kindly for a week. On SQLite and (with
//! `ATTUNE_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::{
    Clock,
    content::catalog,
    domain::today::{COUPLE_ENDED_REASON, OWN_REASON, TOGETHER_REASON},
};
use attune_tests::{PASSWORD, TestApp, TestUser, read};
use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn enroll(app: &TestApp, user: &TestUser, mode: &str) {
    let response = app
        .post("/v1/enrollments")
        .bearer_auth(&user.access_token)
        .json(&json!({"program": "closer", "mode": mode, "pace": "steady"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn set_mode(app: &TestApp, user: &TestUser, patch: Value) {
    let response =
        app.request(Method::PATCH, "/v1/enrollments/current").bearer_auth(&user.access_token).json(&patch).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
}

/// Signs in again: moving the clock by hours outlives the access token.
async fn again(app: &TestApp, user: &TestUser) -> TestUser {
    let (status, _, body) = read(app.login(&user.email, PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestUser::from_token_response(&user.email, &body)
}

async fn today(app: &TestApp, user: &TestUser) -> Value {
    let (status, _, body) = read(app.get("/v1/today").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn reasons(today: &Value) -> Vec<String> {
    today["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
}

fn suggested_mode(today: &Value) -> &str {
    today["suggestion"]["exercise"]["mode"].as_str().unwrap()
}

/// Every solo exercise of step 1 done comfortably three weeks ago: the ladder
/// is at 3, and only the step's exercise for two is still undone.
async fn did_the_solo_exercises(app: &TestApp, user: &TestUser, prefix: &str) {
    let at = app.clock.now_ms() - Duration::days(21).num_milliseconds();
    let done: Vec<Value> = catalog()
        .unwrap()
        .program("closer")
        .unwrap()
        .step(1)
        .unwrap()
        .exercises
        .iter()
        .filter(|e| e.is_solo())
        .enumerate()
        .map(|(i, e)| {
            json!({"id": format!("{prefix}{i}"), "occurred_at": at, "mood": 3, "anxiety": 2, "comfort": 4,
                   "exercise_id": e.id, "completed": true, "note": null, "tags": null})
        })
        .collect();
    push_checkins(app, user, done).await;
}

async fn push_checkins(app: &TestApp, user: &TestUser, created: Vec<Value>) {
    let changes = json!({"checkins": {"created": created, "updated": [], "deleted": []}});
    let (status, _, body) = read(app.push(user, Some(i64::MAX / 2), changes).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn exercises_for_two_need_both_and_step_aside_for_both_without_saying_why() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    enroll(&app, &ana, "couple").await;
    enroll(&app, &ben, "solo").await;
    did_the_solo_exercises(&app, &ana, "ana-").await;
    did_the_solo_exercises(&app, &ben, "ben-").await;

    // Ben is not in couple mode: Ana gets one of her own.
    let alone = today(&app, &ana).await;
    assert_eq!(suggested_mode(&alone), "solo", "{alone}");
    assert!(reasons(&alone).contains(&OWN_REASON.to_owned()));

    set_mode(&app, &ben, json!({"mode": "couple"})).await;
    let together = today(&app, &ana).await;
    assert_eq!(suggested_mode(&together), "partner", "{together}");
    assert!(reasons(&together).contains(&TOGETHER_REASON.to_owned()));
    let exercise_for_two = together["suggestion"]["exercise"]["id"].clone();
    assert_eq!(today(&app, &ben).await["suggestion"]["exercise"]["id"], exercise_for_two, "the same for both");

    // Ben has a hard evening: exercises for two step aside for both. Ben's own
    // today turns gentle; Ana's says nothing of it, word for word what it said
    // while Ben was not in couple mode.
    let hard = json!({"id": "ben-hard", "occurred_at": app.clock.now_ms(), "mood": 1, "anxiety": 9, "comfort": 1,
                      "exercise_id": null, "completed": false, "note": "a hard evening", "tags": null});
    push_checkins(&app, &ben, vec![hard]).await;
    assert_eq!(today(&app, &ben).await["kind"], "grounding");
    let set_aside = today(&app, &ana).await;
    assert_eq!(set_aside["kind"], "exercise");
    assert_eq!(suggested_mode(&set_aside), "solo");
    assert_eq!((reasons(&set_aside), &set_aside["message"]), (reasons(&alone), &alone["message"]));
    assert_eq!(set_aside["max_intensity"], alone["max_intensity"], "her own ladder, not the couple's");

    // Two days on, the window has passed: together again.
    app.clock.advance(Duration::hours(49));
    let (ana, ben) = (again(&app, &ana).await, again(&app, &ben).await);
    assert_eq!(suggested_mode(&today(&app, &ana).await), "partner");

    // Ben pauses: that, too, is not told.
    set_mode(&app, &ben, json!({"paused": true})).await;
    let paused_partner = today(&app, &ana).await;
    assert_eq!(suggested_mode(&paused_partner), "solo");
    assert_eq!(reasons(&paused_partner), reasons(&alone));
    app.stop().await;
}

#[tokio::test]
async fn after_unlinking_today_says_kindly_that_couple_mode_became_partnered() {
    let app = TestApp::spawn().await;
    let ana = app.register("ana@example.org").await;
    let ben = app.register("ben@example.org").await;
    app.link_partners(&ana, &ben).await;
    enroll(&app, &ana, "couple").await;
    enroll(&app, &ben, "couple").await;
    did_the_solo_exercises(&app, &ana, "ana-").await;
    assert!(!reasons(&today(&app, &ana).await).contains(&COUPLE_ENDED_REASON.to_owned()));

    let response = app.request(Method::DELETE, "/v1/partner").bearer_auth(&ben.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for person in [&ana, &ben] {
        let after = today(&app, person).await;
        assert_eq!(reasons(&after).first().map(String::as_str), Some(COUPLE_ENDED_REASON), "{after}");
    }
    // Partnered: exercises for two stay possible, offline, within her own ladder.
    assert_eq!(suggested_mode(&today(&app, &ana).await), "partner");

    // A week on, the words have done their work.
    app.clock.advance(Duration::days(7));
    assert!(!reasons(&today(&app, &again(&app, &ana).await).await).contains(&COUPLE_ENDED_REASON.to_owned()));
    // And a mode chosen again ends them at once.
    app.clock.advance(-Duration::days(7));
    set_mode(&app, &ben, json!({"mode": "partnered"})).await;
    assert!(!reasons(&today(&app, &ben).await).contains(&COUPLE_ENDED_REASON.to_owned()));
    assert!(reasons(&today(&app, &ana).await).contains(&COUPLE_ENDED_REASON.to_owned()));
    app.stop().await;
}
