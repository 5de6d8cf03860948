//! Account mail end to end, over a real SMTP conversation with the fake server in
//! this process: a forgotten password reset with the code from the mail, the
//! email verified with its code, every refusal, enumeration, throttling and
//! retries. Every mail read here is checked to be discreet.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::{accounts::mail::MailJob, config::Settings, jobs::JobQueue};
use attune_tests::{
    PASSWORD, TestApp, TestUser, expect_problem,
    fake_smtp::{FakeSmtp, ReceivedMail, assert_discreet},
    poll_until, problem_fields, queue_drained, read,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a new and longer passphrase";
const FROM: &str = "Accounts <no-reply@mail.test>";

async fn with_smtp(smtp: &FakeSmtp) -> TestApp {
    let url = smtp.url();
    TestApp::spawn_with(|s| {
        s.smtp_url = Some(url.parse().unwrap());
        s.mail_from = Some(FROM.into());
    })
    .await
}

async fn request_reset(app: &TestApp, email: &str) -> Response {
    app.post("/v1/auth/password-reset").json(&json!({"email": email})).send().await.unwrap()
}

async fn confirm(app: &TestApp, token: &str, new_password: &str) -> Response {
    app.post("/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "new_password": new_password}))
        .send()
        .await
        .unwrap()
}

async fn verify(app: &TestApp, token: &str) -> Response {
    app.post("/v1/auth/verify-email").json(&json!({"token": token})).send().await.unwrap()
}

async fn me(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

const RESET: &str = "Your password reset code";
const VERIFY: &str = "Please confirm your email address";

/// The code of the `n`th mail (1-based) to `email` with `subject`, after checking
/// it is discreet. (Mails of different kinds may arrive in any order.)
async fn nth_code(smtp: &FakeSmtp, email: &str, subject: &str, n: usize) -> (ReceivedMail, String) {
    let what = format!("mail {n} `{subject}` to {email}");
    let mail = poll_until(&what, std::time::Duration::from_secs(30), || {
        let mut mails: Vec<_> =
            smtp.received_by(email).into_iter().filter(|m| m.header("Subject").as_deref() == Some(subject)).collect();
        std::future::ready(if mails.len() >= n { Ok(mails.remove(n - 1)) } else { Err(format!("got {}", mails.len())) })
    })
    .await;
    assert_discreet(&mail);
    let code = mail.code().unwrap_or_else(|| panic!("no code in:\n{}", mail.body()));
    (mail, code)
}

async fn expect_token_refused(response: Response, message: &str) {
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&body), ["token"], "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains(message), "{body}");
}

#[tokio::test]
async fn a_forgotten_password_is_reset_with_the_code_from_the_mail_and_every_session_ends() {
    let smtp = FakeSmtp::start().await;
    let app = with_smtp(&smtp).await;
    let phone = app.register("sam@example.org").await;
    let laptop = app.sign_in_again(&phone).await;

    let response = request_reset(&app, "Sam@Example.org ").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (mail, code) = nth_code(&smtp, "sam@example.org", RESET, 1).await;
    assert_eq!(mail.rcpt_to, ["sam@example.org"]);
    assert_eq!(mail.header("From").as_deref(), Some("Accounts <no-reply@mail.test>"));
    assert_eq!(mail.mail_from, "no-reply@mail.test");
    assert_eq!(mail.header("Content-Transfer-Encoding").as_deref(), Some("7bit"));

    assert_eq!(confirm(&app, &code, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    for device in [&phone, &laptop] {
        assert_eq!(me(&app, device).await.0, StatusCode::UNAUTHORIZED, "every session ended");
        let refresh = app.post("/v1/auth/refresh").json(&json!({"refresh_token": device.refresh_token}));
        assert_eq!(refresh.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("sam@example.org", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let (status, _, body) = read(app.login("sam@example.org", NEW_PASSWORD).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = TestUser::from_token_response("sam@example.org", &body);
    assert_eq!(me(&app, &again).await.1["email_verified"], true, "the reset proved the mailbox is theirs");

    expect_token_refused(confirm(&app, &code, "yet another passphrase").await, "already used").await;
    app.stop().await;
}

#[tokio::test]
async fn the_code_mailed_at_registration_verifies_the_email() {
    let smtp = FakeSmtp::start().await;
    let app = with_smtp(&smtp).await;
    let kim = app.register("kim@example.org").await;
    assert_eq!(me(&app, &kim).await.1["email_verified"], false);
    let (mail, code) = nth_code(&smtp, "kim@example.org", VERIFY, 1).await;
    assert_eq!(mail.header("To").as_deref(), Some("kim@example.org"));

    assert_eq!(verify(&app, &code).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &kim).await.1["email_verified"], true);
    expect_token_refused(verify(&app, &code).await, "already used").await;
    // A verification code is no reset code, nor the other way round.
    expect_token_refused(confirm(&app, &code, NEW_PASSWORD).await, "not a valid code").await;
    assert_eq!(request_reset(&app, "kim@example.org").await.status(), StatusCode::ACCEPTED);
    let (_, reset_code) = nth_code(&smtp, "kim@example.org", RESET, 1).await;
    expect_token_refused(verify(&app, &reset_code).await, "not a valid code").await;
    app.stop().await;
}

#[tokio::test]
async fn expired_unknown_and_weak_are_refused_and_a_refusal_does_not_use_the_code_up() {
    let smtp = FakeSmtp::start().await;
    let app = with_smtp(&smtp).await;
    app.register("lee@example.org").await;
    assert_eq!(request_reset(&app, "lee@example.org").await.status(), StatusCode::ACCEPTED);
    let (_, code) = nth_code(&smtp, "lee@example.org", RESET, 1).await;

    expect_token_refused(confirm(&app, "not-a-code-anyone-was-sent", NEW_PASSWORD).await, "not a valid code").await;
    let weak = expect_problem(confirm(&app, &code, "short").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&weak), ["new_password"], "{weak}");
    let missing = expect_problem(
        app.post("/v1/auth/password-reset/confirm").json(&json!({"token": code})).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&missing), ["new_password"], "{missing}");

    app.clock.advance(chrono::Duration::minutes(61));
    expect_token_refused(confirm(&app, &code, NEW_PASSWORD).await, "expired").await;
    assert_eq!(app.login("lee@example.org", PASSWORD).await.status(), StatusCode::OK, "nothing changed");

    // A fresh code works where the weak password left the old one untouched.
    assert_eq!(request_reset(&app, "lee@example.org").await.status(), StatusCode::ACCEPTED);
    let (_, fresh) = nth_code(&smtp, "lee@example.org", RESET, 2).await;
    let weak = expect_problem(confirm(&app, &fresh, "short").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&weak), ["new_password"]);
    assert_eq!(confirm(&app, &fresh, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    let bad_email = expect_problem(request_reset(&app, "not an email").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&bad_email), ["email"]);
    app.stop().await;
}

#[tokio::test]
async fn a_new_email_is_verified_by_mail_and_the_old_address_is_told() {
    let smtp = FakeSmtp::start().await;
    let app = with_smtp(&smtp).await;
    let rae = app.register("rae@example.org").await;
    let (_, first) = nth_code(&smtp, "rae@example.org", VERIFY, 1).await;
    assert_eq!(verify(&app, &first).await.status(), StatusCode::NO_CONTENT);
    // A reset code mailed to the old address before the change.
    assert_eq!(request_reset(&app, "rae@example.org").await.status(), StatusCode::ACCEPTED);
    let (_, old_reset) = nth_code(&smtp, "rae@example.org", RESET, 1).await;

    let change = json!({"email": "rae.new@example.org", "password": PASSWORD});
    let response = app.request(reqwest::Method::PATCH, "/v1/me").bearer_auth(&rae.access_token).json(&change);
    let (status, _, body) = read(response.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["email"].as_str(), body["email_verified"].as_bool()), (Some("rae.new@example.org"), Some(false)));

    let (_, code) = nth_code(&smtp, "rae.new@example.org", VERIFY, 1).await;
    let notice = smtp.wait_for("rae@example.org", 3).await;
    let notice =
        notice.iter().find(|m| m.header("Subject").as_deref() == Some("Your sign-in email was changed")).unwrap();
    assert_discreet(notice);
    assert!(!notice.body().contains("rae.new"), "the notice does not say the new address");
    assert!(notice.code().is_none());

    expect_token_refused(confirm(&app, &old_reset, NEW_PASSWORD).await, "no longer uses").await;
    assert_eq!(verify(&app, &code).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &rae).await.1["email_verified"], true);
    app.stop().await;
}

/// What a client sees of an answer, minus what differs per request anyway.
async fn answer(response: Response) -> (StatusCode, Vec<(String, String)>, String) {
    let status = response.status();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    headers.sort();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn a_reset_request_takes_the_same_path_for_an_address_with_and_without_an_account() {
    let smtp = FakeSmtp::start().await;
    let url = smtp.url();
    // The API alone, as scaled: what a request does is what it leaves in the queue.
    let app = TestApp::spawn_api_only(|s| {
        s.smtp_url = Some(url.parse().unwrap());
        s.mail_from = Some(FROM.into());
    })
    .await;
    app.register("known@example.org").await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    let pending = || async { queue.depth().await.unwrap().pending };
    let before = pending().await;

    let known = answer(request_reset(&app, "known@example.org").await).await;
    assert_eq!(pending().await, before + 1, "one job queued");
    let unknown = answer(request_reset(&app, "nobody@example.org").await).await;
    assert_eq!(pending().await, before + 2, "one job queued, the same kind");
    assert_eq!(known, unknown, "the same answer, byte for byte");
    assert_eq!(known.0, StatusCode::ACCEPTED);

    // What the jobs carry names neither address in the clear, nor any code.
    let stored = queued_payloads(&app).await;
    assert!(!stored.is_empty());
    for payload in &stored {
        assert!(!payload.contains("known@") && !payload.contains("nobody@"), "{payload}");
    }

    // A worker then finds the account for one and sends one mail; for the other, nothing.
    let deps = app.worker_deps().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(attune_worker::run(deps, queue.clone(), async move {
        let _ = stopped.await;
    }));
    queue_drained(&queue).await;
    let _ = stop.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(smtp.received_by("known@example.org").len(), 2, "verification and reset");
    assert!(smtp.received_by("nobody@example.org").is_empty());
    assert_eq!(smtp.received().len(), 2);
    app.stop().await;
}

/// The serialized jobs in the queue, as stored (SQLite or Redis).
async fn queued_payloads(app: &TestApp) -> Vec<String> {
    match &app.settings.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.expose()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let pattern = format!("{}*", app.settings.queue_namespace);
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap();
            let mut values = vec![];
            for key in keys {
                let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
                if kind == "hash" {
                    let fields: Vec<String> =
                        redis::cmd("HVALS").arg(&key).query_async(&mut conn).await.unwrap_or_default();
                    values.extend(fields);
                }
            }
            values
        }
        None => {
            let path = app.settings.data_dir.join("queue.db");
            let bytes = std::fs::read(path).unwrap();
            vec![String::from_utf8_lossy(&bytes).into_owned()]
        }
    }
}

#[tokio::test]
async fn reset_requests_are_throttled_per_email_and_per_address() {
    let smtp = FakeSmtp::start().await;
    let url = smtp.url();
    let trusted = Settings::from_args(["--trusted-proxies", "127.0.0.1/32"]).unwrap().trusted_proxies;
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(url.parse().unwrap());
        s.mail_from = Some(FROM.into());
        s.trusted_proxies = trusted;
    })
    .await;
    let from = |address: &str, email: &str| {
        app.post("/v1/auth/password-reset").header("x-forwarded-for", address).json(&json!({"email": email})).send()
    };
    for n in 0..3 {
        assert_eq!(from("203.0.113.1", "pat@example.org").await.unwrap().status(), StatusCode::ACCEPTED, "{n}");
    }
    let refused = from("203.0.113.2", "pat@example.org").await.unwrap();
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3_590..=3_600).contains(&retry_after), "{retry_after}");
    let body = expect_problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/rate-limited");

    // One address, many emails: the 21st request in the hour waits.
    for n in 3..20 {
        let status = from("203.0.113.1", &format!("p{n}@example.org")).await.unwrap().status();
        assert_eq!(status, StatusCode::ACCEPTED, "{n}");
    }
    expect_problem(from("203.0.113.1", "p99@example.org").await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(from("203.0.113.3", "p99@example.org").await.unwrap().status(), StatusCode::ACCEPTED);
    // Sign-in is not locked by any of this.
    app.register("pat2@example.org").await;
    assert_eq!(app.login("pat2@example.org", PASSWORD).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(from("203.0.113.1", "pat@example.org").await.unwrap().status(), StatusCode::ACCEPTED);
    app.stop().await;
}

#[tokio::test]
async fn a_deferred_mail_is_retried_later_and_a_refused_one_is_given_up() {
    let smtp = FakeSmtp::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_api_only(|s| {
        s.smtp_url = Some(url.parse().unwrap());
        s.mail_from = Some(FROM.into());
    })
    .await;
    let ana = app.register("ana@example.org").await;
    let deps = app.worker_deps().await;
    let queue = JobQueue::connect(&app.settings).await.unwrap();
    let scheduled = || async { queue.depth().await.unwrap().scheduled };
    let send =
        |attempt| attune_worker::jobs::send_mail::run(&deps, MailJob::VerifyEmail { user_id: ana.uuid() }, attempt);

    smtp.refuse_next(451);
    send(0).await.unwrap();
    assert_eq!(smtp.refused(), 1);
    assert_eq!(scheduled().await, 1, "a 4xx is tried again later");

    smtp.refuse_next(451);
    send(attune_worker::jobs::send_mail::MAX_ATTEMPTS - 1).await.unwrap();
    assert_eq!(scheduled().await, 1, "the last attempt is not retried");

    smtp.refuse_next(550);
    send(0).await.unwrap();
    assert_eq!((smtp.refused(), scheduled().await), (3, 1), "a 5xx is given up at once");
    assert!(smtp.received().is_empty());

    send(1).await.unwrap();
    let (_, code) = nth_code(&smtp, "ana@example.org", VERIFY, 1).await;
    assert_eq!(verify(&app, &code).await.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn scaled_without_smtp_mail_routes_answer_409_and_registration_still_works() {
    if std::env::var("ATTUNE_TEST_REDIS_URL").map_or(true, |v| v.trim().is_empty()) {
        eprintln!("NOT RUN: scaled mode needs ATTUNE_TEST_REDIS_URL (the PostgreSQL + Redis run covers it)");
        return;
    }
    let app = TestApp::spawn().await;
    assert!(app.settings.redis_url.is_some() && app.settings.smtp_url.is_none());
    let user = app.register("solo@example.org").await;
    assert_eq!(me(&app, &user).await.1["email_verified"], false);
    let body = expect_problem(request_reset(&app, "solo@example.org").await, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/mail-not-configured");
    assert!(body["detail"].as_str().unwrap().contains("ATTUNE_SMTP_URL"), "{body}");
    // A new email could be neither confirmed nor announced to the old address.
    let change = json!({"email": "solo.new@example.org", "password": PASSWORD});
    let response = app.request(reqwest::Method::PATCH, "/v1/me").bearer_auth(&user.access_token).json(&change);
    let body = expect_problem(response.send().await.unwrap(), StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/mail-not-configured");
    assert_eq!(me(&app, &user).await.1["email"], "solo@example.org");
    app.stop().await;
}
