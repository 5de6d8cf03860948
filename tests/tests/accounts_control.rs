//! Control over one's own account: changing the password, seeing and ending the
//! sessions on other devices, and re-authenticating before what a thief or a
//! controlling partner holding the phone would use.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_tests::{PASSWORD, TestApp, TestUser, expect_problem, problem_fields, read};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a fresh and private passphrase";
const REAUTH_PROBLEM: &str = "/problems/reauthentication-required";

async fn sign_in(app: &TestApp, email: &str, device_name: Option<&str>, user_agent: Option<&str>) -> TestUser {
    let mut request =
        app.post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD, "device_name": device_name}));
    if let Some(agent) = user_agent {
        request = request.header("user-agent", agent);
    }
    let (status, _, body) = read(request.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestUser::from_token_response(email, &body)
}

async fn me(app: &TestApp, user: &TestUser) -> StatusCode {
    app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap().status()
}

async fn refresh(app: &TestApp, user: &TestUser) -> StatusCode {
    app.post("/v1/auth/refresh").json(&json!({"refresh_token": user.refresh_token})).send().await.unwrap().status()
}

async fn change_password(app: &TestApp, user: &TestUser, body: Value) -> Response {
    app.post("/v1/me/password").bearer_auth(&user.access_token).json(&body).send().await.unwrap()
}

async fn sessions(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, _, body) =
        read(app.get("/v1/me/sessions").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn expect_reauth_required(response: Response) {
    let body = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["type"], REAUTH_PROBLEM, "{body}");
}

#[tokio::test]
async fn changing_the_password_signs_out_every_other_device_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    let phone = app.register("ada@example.org").await;
    let laptop = sign_in(&app, &phone.email, None, None).await;

    let response =
        change_password(&app, &phone, json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(me(&app, &phone).await, StatusCode::OK, "the device that changed it stays signed in");
    assert_eq!(refresh(&app, &phone).await, StatusCode::OK);
    expect_problem(app.get("/v1/me").bearer_auth(&laptop.access_token).send().await.unwrap(), StatusCode::UNAUTHORIZED)
        .await;
    assert_eq!(refresh(&app, &laptop).await, StatusCode::UNAUTHORIZED, "the other device's refresh token is dead");
    assert_eq!(app.login(&phone.email, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&phone.email, NEW_PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_current_password_or_a_weak_new_one_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = app.register("bo@example.org").await;
    let other_device = sign_in(&app, &user.email, None, None).await;

    let wrong =
        change_password(&app, &user, json!({"current_password": "not my password", "new_password": NEW_PASSWORD}));
    expect_reauth_required(wrong.await).await;
    expect_reauth_required(change_password(&app, &user, json!({"new_password": NEW_PASSWORD})).await).await;
    let weak = change_password(&app, &user, json!({"current_password": PASSWORD, "new_password": "short"})).await;
    let body = expect_problem(weak, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["new_password"]);

    assert_eq!(me(&app, &other_device).await, StatusCode::OK, "a refused change ends no session");
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), StatusCode::OK, "the password is unchanged");
    app.stop().await;
}

#[tokio::test]
async fn a_person_sees_their_devices_and_signs_one_or_all_others_out() {
    let app = TestApp::spawn().await;
    let register = app
        .post("/v1/auth/register")
        .json(&json!({"email": "cy@example.org", "password": PASSWORD, "display_name": "Cy",
                      "timezone": "Europe/Berlin", "device_name": "Cy's phone"}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(register).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let phone = TestUser::from_token_response("cy@example.org", &body);
    // A device name the list could not show well is refused, naming the field.
    for (path, body) in [
        (
            "/v1/auth/register",
            json!({"email": "cy2@example.org", "password": PASSWORD, "display_name": "Cy",
                                     "timezone": "Europe/Berlin", "device_name": "   "}),
        ),
        ("/v1/auth/login", json!({"email": "cy@example.org", "password": PASSWORD, "device_name": "x".repeat(65)})),
    ] {
        let refused =
            expect_problem(app.post(path).json(&body).send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&refused), ["device_name"], "{path}");
    }
    app.clock.advance(chrono::Duration::seconds(5));
    let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    let laptop = sign_in(&app, &phone.email, None, Some(firefox)).await;
    app.clock.advance(chrono::Duration::seconds(5));
    let long_agent = format!("CustomClient/9 {}", "x".repeat(3000));
    let tablet = sign_in(&app, &phone.email, None, Some(&long_agent)).await;

    let listed = sessions(&app, &phone).await;
    let devices: Vec<(&str, bool)> =
        listed.iter().map(|s| (s["device"].as_str().unwrap(), s["current"].as_bool().unwrap())).collect();
    assert_eq!(devices, [("CustomClient", false), ("Firefox on Windows", false), ("Cy's phone", true)]);
    for session in &listed {
        assert!(session["id"].is_string() && session["created_at"].is_string() && session["last_used_at"].is_string());
    }

    // Last use is recorded at most once a minute, not on every request.
    let laptop_id = listed[1]["id"].as_str().unwrap().to_owned();
    let last_used =
        |listed: &[Value]| listed.iter().find(|s| s["id"] == laptop_id.as_str()).unwrap()["last_used_at"].clone();
    let before = last_used(&listed);
    app.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(me(&app, &laptop).await, StatusCode::OK);
    assert_eq!(last_used(&sessions(&app, &phone).await), before, "not written within the minute");
    app.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(me(&app, &laptop).await, StatusCode::OK);
    assert_ne!(last_used(&sessions(&app, &phone).await), before, "written once the minute is over");

    // One device out: its tokens stop at once.
    let end = |id: String| {
        app.request(Method::DELETE, &format!("/v1/me/sessions/{id}")).bearer_auth(&phone.access_token).send()
    };
    assert_eq!(end(laptop_id.clone()).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&app, &laptop).await, StatusCode::UNAUTHORIZED);

    // An id that is not one of yours: the same 404 whether it is someone else's,
    // already ended, or never existed.
    let stranger = app.register("stranger@example.org").await;
    let strangers_id = sessions(&app, &stranger).await[0]["id"].as_str().unwrap().to_owned();
    let mut answers = vec![];
    for id in [strangers_id, laptop_id, uuid::Uuid::now_v7().to_string()] {
        let body = expect_problem(end(id).await.unwrap(), StatusCode::NOT_FOUND).await;
        answers.push((body["type"].clone(), body["detail"].clone()));
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:?}");
    expect_problem(end("not-an-id".into()).await.unwrap(), StatusCode::NOT_FOUND).await;
    assert_eq!(me(&app, &stranger).await, StatusCode::OK, "the stranger's session lives on");

    // Everyone else out; this device stays.
    let all = app.request(Method::DELETE, "/v1/me/sessions").bearer_auth(&phone.access_token).send().await.unwrap();
    assert_eq!(all.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &tablet).await, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&app, &tablet).await, StatusCode::UNAUTHORIZED);
    let left = sessions(&app, &phone).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["current"], true);
    app.stop().await;
}

#[tokio::test]
async fn export_and_deletion_need_the_password_again() {
    let app = TestApp::spawn().await;
    let user = app.register("di@example.org").await;
    let other_device = sign_in(&app, &user.email, None, None).await;
    let export_with = |token: Option<String>| {
        let mut request = app.get("/v1/me/export").bearer_auth(&user.access_token);
        if let Some(token) = token {
            request = request.header("x-reauth-token", token);
        }
        request.send()
    };

    expect_reauth_required(export_with(None).await.unwrap()).await;
    let wrong = app.post("/v1/auth/reauth").bearer_auth(&user.access_token).json(&json!({"password": "a guess at it"}));
    expect_reauth_required(wrong.send().await.unwrap()).await;

    let (status, _, issued) = read(
        app.post("/v1/auth/reauth")
            .bearer_auth(&user.access_token)
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["expires_in"], 300);
    let token = issued["reauth_token"].as_str().unwrap().to_owned();
    assert_eq!(export_with(Some(token.clone())).await.unwrap().status(), StatusCode::OK);

    // Bound to the session that asked for it, and no access token.
    let elsewhere = app.get("/v1/me/export").bearer_auth(&other_device.access_token).header("x-reauth-token", &token);
    expect_reauth_required(elsewhere.send().await.unwrap()).await;
    expect_reauth_required(export_with(Some(other_device.access_token.clone())).await.unwrap()).await;
    let as_bearer =
        expect_problem(app.get("/v1/me").bearer_auth(&token).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(as_bearer["type"], "about:blank");

    // Five minutes, then the password again.
    app.clock.advance(chrono::Duration::seconds(299));
    assert_eq!(export_with(Some(token.clone())).await.unwrap().status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(2));
    expect_reauth_required(export_with(Some(token)).await.unwrap()).await;

    // Deletion: nothing, a wrong password or someone else's token is refused.
    let user = app.sign_in_again(&user).await;
    let delete = || app.request(Method::DELETE, "/v1/me").bearer_auth(&user.access_token);
    expect_reauth_required(delete().send().await.unwrap()).await;
    expect_reauth_required(delete().json(&json!({"password": "a guess at it"})).send().await.unwrap()).await;
    let others_token = app.reauth_token(&other_device).await;
    expect_reauth_required(delete().header("x-reauth-token", others_token).send().await.unwrap()).await;
    assert_eq!(me(&app, &user).await, StatusCode::OK, "still there");

    let own_token = app.reauth_token(&user).await;
    assert_eq!(delete().header("x-reauth-token", own_token).send().await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(me(&app, &user).await, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn a_new_email_or_password_needs_the_current_password_or_a_reauth_token() {
    // A new email is confirmed by mail (a scaled install without SMTP refuses it:
    // tests/tests/accounts_mail.rs).
    let smtp = attune_tests::fake_smtp::FakeSmtp::start().await;
    let smtp_url = smtp.url();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(smtp_url.parse().unwrap());
        s.mail_from = Some("no-reply@mail.test".into());
    })
    .await;
    let user = app.register("ed@example.org").await;
    app.register("taken@example.org").await;
    let patch = |body: Value| app.request(Method::PATCH, "/v1/me").bearer_auth(&user.access_token).json(&body).send();

    // Other fields need nothing more.
    assert_eq!(patch(json!({"display_name": "Ed"})).await.unwrap().status(), StatusCode::OK);
    expect_reauth_required(patch(json!({"email": "ed.new@example.org"})).await.unwrap()).await;
    let guessed = patch(json!({"email": "ed.new@example.org", "password": "a guess at it"})).await.unwrap();
    expect_reauth_required(guessed).await;
    let taken = expect_problem(
        patch(json!({"email": "taken@example.org", "password": PASSWORD})).await.unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(taken["type"], "/problems/email-taken");
    let invalid = patch(json!({"email": "not an email", "password": PASSWORD})).await.unwrap();
    assert_eq!(problem_fields(&expect_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await), ["email"]);

    let (status, _, profile) =
        read(patch(json!({"email": "ED.new@example.org", "password": PASSWORD})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(profile["email"], "ed.new@example.org");
    assert_eq!(app.login("ed@example.org", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login("ed.new@example.org", PASSWORD).await.status(), StatusCode::OK);

    // The password too may be changed with a reauth token instead of the password.
    let token = app.reauth_token(&user).await;
    let response = app
        .post("/v1/me/password")
        .bearer_auth(&user.access_token)
        .header("x-reauth-token", token)
        .json(&json!({"new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login("ed.new@example.org", NEW_PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn wrong_passwords_when_re_authenticating_count_in_the_sign_in_throttle() {
    let app = TestApp::spawn().await;
    let user = app.register("flo@example.org").await;
    for attempt in 0..5 {
        let response =
            change_password(&app, &user, json!({"current_password": "a guess at it", "new_password": NEW_PASSWORD}));
        let body = expect_problem(response.await, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["type"], REAUTH_PROBLEM, "attempt {attempt}");
    }
    // Locked: even the right password waits, here and at sign-in.
    let reauth = app.post("/v1/auth/reauth").bearer_auth(&user.access_token).json(&json!({"password": PASSWORD}));
    let locked = reauth.send().await.unwrap();
    assert!(locked.headers().contains_key("retry-after"));
    expect_problem(locked, StatusCode::TOO_MANY_REQUESTS).await;
    expect_problem(app.login(&user.email, PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;

    app.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(app.login(&user.email, PASSWORD).await.status(), StatusCode::OK);
    app.stop().await;
}
