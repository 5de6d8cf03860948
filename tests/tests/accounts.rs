//! Accounts, as a person and their app use them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::time::Duration;

use attune_tests::{PASSWORD, TestApp, TestUser, eventually, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn register_then_read_and_update_the_profile() {
    let app = TestApp::spawn().await;
    let user = app.register("Ana.Lima@Example.org").await;

    let (status, _, me) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["email"], "ana.lima@example.org", "email is normalised");
    assert_eq!(me["timezone"], "Europe/Berlin");
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'), "RFC 3339 UTC: {me}");
    assert_eq!(user.id.chars().nth(14), Some('7'), "ids are UUIDv7: {}", user.id);

    let patched = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"display_name": "Ana", "timezone": "America/Sao_Paulo"}))
        .send()
        .await
        .unwrap();
    let (status, _, me) = read(patched).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!((me["display_name"].as_str(), me["timezone"].as_str()), (Some("Ana"), Some("America/Sao_Paulo")));

    let bad = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"timezone": "Moon/Base", "display_name": ""}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["display_name", "timezone"]);

    let unknown = app
        .request(Method::PATCH, "/v1/me")
        .bearer_auth(&user.access_token)
        .json(&json!({"emial": "typo@example.org"}))
        .send()
        .await
        .unwrap();
    expect_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await;

    let (_, _, me) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(me["timezone"], "America/Sao_Paulo", "refused patches change nothing");
    app.stop().await;
}

#[tokio::test]
async fn registration_names_every_invalid_field_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let response = app
        .post("/v1/auth/register")
        .json(&json!({"email": "not-an-email", "password": "short", "display_name": " ", "timezone": "Nowhere/Land"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["email", "password", "display_name", "timezone"]);

    let missing = app.post("/v1/auth/register").json(&json!({"email": "a@example.org"})).send().await.unwrap();
    let body = expect_problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["password"], "{body}");

    let users = app.user_columns().await;
    assert!(users.iter().any(|(t, _)| t == "users"));
    assert_eq!(app.count_rows("users").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.register("kai@example.org").await;
    let again = app
        .post("/v1/auth/register")
        .json(&json!({"email": " KAI@example.org", "password": PASSWORD, "display_name": "Kai", "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(again, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/email-taken");
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = TestApp::spawn().await;
    app.register("noor@example.org").await;
    let wrong = read(app.login("noor@example.org", "not the password").await).await;
    let unknown = read(app.login("nobody@example.org", "not the password").await).await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown, "the answers must not reveal whether the account exists");

    let ok = app.login("NOOR@example.org", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account_and_lifted_later() {
    let app = TestApp::spawn().await;
    app.register("lee@example.org").await;
    for _ in 0..5 {
        assert_eq!(app.login("lee@example.org", "wrong password!").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked now, even with the right password.
    let locked = app.login("lee@example.org", PASSWORD).await;
    let retry_after: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    expect_problem(locked, StatusCode::TOO_MANY_REQUESTS).await;

    app.clock.advance(chrono::Duration::seconds(retry_after as i64));
    assert_eq!(app.login("lee@example.org", PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn one_address_failing_across_many_accounts_is_throttled() {
    let app = TestApp::spawn().await;
    for n in 0..20 {
        let response = app.login(&format!("guess{n}@example.org"), "wrong password!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let response = app.login("guess99@example.org", "wrong password!").await;
    assert!(response.headers().contains_key("retry-after"));
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    app.stop().await;
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/v1/auth/refresh").json(&json!({"refresh_token": token})).send().await.unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_its_whole_family() {
    let app = TestApp::spawn().await;
    let first = app.register("rio@example.org").await;

    let (status, _, body) = read(refresh(&app, &first.refresh_token).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = TestUser::from_token_response(&first.email, &body);
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);

    // Another sign-in is another family, untouched by what follows.
    let other_device = read(app.login(&first.email, PASSWORD).await).await.2;
    let other = TestUser::from_token_response(&first.email, &other_device);

    // The first token again: someone copied it. The family dies.
    expect_problem(refresh(&app, &first.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(refresh(&app, &second.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    let me = app.get("/v1/me").bearer_auth(&second.access_token).send().await.unwrap();
    expect_problem(me, StatusCode::UNAUTHORIZED).await;

    let me = app.get("/v1/me").bearer_auth(&other.access_token).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "other sessions live on");
    assert_eq!(refresh(&app, &other.refresh_token).await.status(), StatusCode::OK);

    expect_problem(refresh(&app, "rt_made_up").await, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn access_tokens_last_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let user = app.register("ima@example.org").await;
    app.clock.advance(chrono::Duration::seconds(14 * 60 + 59));
    assert_eq!(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap().status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(1));
    let expired = app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap();
    assert_eq!(expired.headers()["www-authenticate"], "Bearer");
    expect_problem(expired, StatusCode::UNAUTHORIZED).await;
    // The refresh token still works and gives a fresh access token.
    let (_, _, body) = read(refresh(&app, &user.refresh_token).await).await;
    let fresh = TestUser::from_token_response(&user.email, &body);
    assert_eq!(app.get("/v1/me").bearer_auth(&fresh.access_token).send().await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = TestApp::spawn().await;
    let user = app.register("ola@example.org").await;
    let response = app.post("/v1/auth/logout").bearer_auth(&user.access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_problem(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap(), StatusCode::UNAUTHORIZED)
        .await;
    expect_problem(refresh(&app, &user.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.get("/v1/me").send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    expect_problem(app.get("/v1/me").bearer_auth("garbage").send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn export_lists_the_profile_and_sessions() {
    let app = TestApp::spawn().await;
    let user = app.register("eli@example.org").await;
    app.login(&user.email, PASSWORD).await;
    let (status, _, export) = read(app.export(&user).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(export["user"]["email"], "eli@example.org");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(export["notification_settings"]["reflections"], true, "the notification settings, defaults included");
    assert!(export.to_string().find("password").is_none(), "no password hash in an export: {export}");
    app.stop().await;
}

#[tokio::test]
async fn deleting_the_account_revokes_every_token_and_purges_every_row() {
    let app = TestApp::spawn().await;
    let user = app.register("zoe@example.org").await;
    let second_device =
        TestUser::from_token_response(&user.email, &read(app.login(&user.email, PASSWORD).await).await.2);
    app.login(&user.email, "a wrong password").await;
    refresh(&app, &user.refresh_token).await;
    let neighbour = app.register("neighbour@example.org").await;

    let uid = user.uuid();
    let columns = app.user_columns().await;
    assert!(columns.len() >= 3, "users, sessions and refresh_tokens at least: {columns:?}");
    let mut held = 0;
    for (table, column) in &columns {
        held += app.count_rows_for_user(table, column, uid).await;
    }
    assert!(held >= 5, "the account has rows before deletion ({held})");

    let response = app.delete_account(&user).await;
    let (status, _, body) = read(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    for token in [&user.access_token, &second_device.access_token] {
        let me = app.get("/v1/me").bearer_auth(token).send().await.unwrap();
        expect_problem(me, StatusCode::UNAUTHORIZED).await;
    }
    expect_problem(refresh(&app, &second_device.refresh_token).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(app.login(&user.email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;

    eventually("the purge job removes every row of the account", Duration::from_secs(30), || async {
        let mut left = 0;
        for (table, column) in &columns {
            left += app.count_rows_for_user(table, column, uid).await;
        }
        left == 0
    })
    .await;

    // Nobody else lost anything, and the email is free again.
    assert_eq!(app.get("/v1/me").bearer_auth(&neighbour.access_token).send().await.unwrap().status(), StatusCode::OK);
    app.register(&user.email).await;
    app.stop().await;
}
