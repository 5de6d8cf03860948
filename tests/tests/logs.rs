//! What the logs say, and what they never say. One test per binary: it installs
//! the process-wide log subscriber and captures every line.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use attune_shared::{config::LogFormat, telemetry};
use attune_tests::{PASSWORD, TestApp, TestUser, eventually, fake_smtp::FakeSmtp, read};
use reqwest::Method;
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "a brand new private passphrase";

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn logs_carry_request_ids_and_never_secrets_or_personal_data() {
    let captured = Captured::default();
    let writer = captured.clone();
    telemetry::init_with_writer("debug", LogFormat::Json, move || writer.clone());

    let smtp = FakeSmtp::start().await;
    let smtp_url = smtp.url();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(smtp_url.parse().unwrap());
        s.mail_from = Some("no-reply@mail.test".into());
    })
    .await;
    let email = "private.person@example.org";
    let user = app.register(email).await;
    app.login(email, "a wrong password guess").await;
    let login = read(app.login(email, PASSWORD).await).await.2;
    let second = TestUser::from_token_response(email, &login);
    let refreshed =
        read(app.post("/v1/auth/refresh").json(&json!({"refresh_token": second.refresh_token})).send().await.unwrap())
            .await
            .2;
    let third = TestUser::from_token_response(email, &refreshed);
    app.get("/v1/me").bearer_auth(&third.access_token).header("x-request-id", "trace-me-42").send().await.unwrap();
    app.request(Method::PATCH, "/v1/me")
        .bearer_auth(&third.access_token)
        .json(&json!({"display_name": "Quiet Name"}))
        .send()
        .await
        .unwrap();
    // Re-authentication: a wrong password, a token, the export it opens, a new
    // password (which ends the other sessions) and the deletion confirmed with it.
    app.post("/v1/auth/reauth")
        .bearer_auth(&third.access_token)
        .json(&json!({"password": "a wrong reauth guess"}))
        .send()
        .await
        .unwrap();
    let reauth_token = app.reauth_token(&third).await;
    let export = app
        .get("/v1/me/export")
        .bearer_auth(&third.access_token)
        .header("x-reauth-token", &reauth_token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), reqwest::StatusCode::OK);
    let changed = app
        .post("/v1/me/password")
        .bearer_auth(&third.access_token)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), reqwest::StatusCode::NO_CONTENT);
    let deleted = app
        .request(Method::DELETE, "/v1/me")
        .bearer_auth(&third.access_token)
        .json(&json!({"password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), reqwest::StatusCode::ACCEPTED);
    // Mail: a verification code and a reset code, each followed from its mail.
    let mail_email = "mail.person@example.org";
    app.register(mail_email).await;
    let verification = smtp.wait_for(mail_email, 1).await[0].code().unwrap();
    let verified = app.post("/v1/auth/verify-email").json(&json!({"token": verification})).send().await.unwrap();
    assert_eq!(verified.status(), reqwest::StatusCode::NO_CONTENT);
    app.post("/v1/auth/password-reset").json(&json!({"email": mail_email})).send().await.unwrap();
    let reset_code = smtp.wait_for(mail_email, 2).await[1].code().unwrap();
    let reset = app
        .post("/v1/auth/password-reset/confirm")
        .json(&json!({"token": reset_code, "new_password": "a reset and private passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), reqwest::StatusCode::NO_CONTENT);
    let uid = user.uuid();
    eventually("purge", std::time::Duration::from_secs(30), || async {
        app.count_rows_for_user("users", "id", uid).await == 0
    })
    .await;
    app.stop().await;

    let logs = captured.text();
    assert!(logs.lines().count() > 10, "expected a real log:\n{logs}");
    for line in logs.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "every line is JSON: {line}");
    }
    let traced = logs.lines().filter(|l| l.contains("trace-me-42")).collect::<Vec<_>>();
    assert!(
        traced.iter().any(|l| l.contains(r#""route":"/v1/me""#) && l.contains(r#""status":200"#)),
        "the request id and route appear on the request's lines: {traced:?}"
    );
    let forbidden = [
        PASSWORD,
        "a wrong password guess",
        "a wrong reauth guess",
        NEW_PASSWORD,
        &reauth_token,
        email,
        "private.person",
        "Quiet Name",
        &user.access_token,
        &user.refresh_token,
        &second.access_token,
        &second.refresh_token,
        &third.access_token,
        &third.refresh_token,
        "test-only-jwt-secret",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        mail_email,
        "mail.person",
        &verification,
        &reset_code,
        &verification[..20],
        &reset_code[..20],
        "a reset and private passphrase",
    ];
    for secret in forbidden {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
    // Token prefixes too: a log line with half a token is still a leak.
    assert!(!logs.contains(&third.access_token[..40]));
    assert!(!logs.contains(&third.refresh_token[..20]));
    assert!(!logs.contains(&reauth_token[..40]));
}
