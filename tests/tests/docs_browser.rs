//! `/docs` in a real browser: an app developer opens Swagger UI, authorizes with
//! their access token, sends `GET /v1/me` with "Try it out" and sees the 200.
//! Headless Debian Chromium through ChromeDriver; under `CI=true` a missing browser
//! fails the test (`.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::time::Duration;

use attune_tests::{TestApp, chromium};

const ME: &str = "#operations-accounts-getMe";

#[tokio::test]
async fn a_developer_authorizes_in_swagger_ui_and_gets_their_profile() {
    if !chromium::required_or_warn("a_developer_authorizes_in_swagger_ui_and_gets_their_profile") {
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.register("swagger@example.org").await;
    let browser = chromium::Browser::start().await;

    browser.goto(&app.url("/docs")).await;
    let title =
        browser.wait_for_text(".information-container .title", Duration::from_secs(30), |t| !t.is_empty()).await;
    assert!(title.starts_with("Attune API"), "{title}");

    // Authorize: the bearer scheme's dialog takes the access token.
    browser.click("button.authorize").await;
    browser.type_into(".auth-container input[type=text]", &user.access_token).await;
    browser.click(".auth-btn-wrapper button.authorize").await;
    browser.click(".auth-btn-wrapper button.btn-done").await;

    // GET /v1/me: open it, "Try it out", "Execute".
    browser.click(&format!("{ME} .opblock-summary-control")).await;
    browser.click(&format!("{ME} .try-out__btn")).await;
    browser.click(&format!("{ME} button.execute")).await;

    let status = browser
        .wait_for_text(
            &format!("{ME} .live-responses-table tr.response .response-col_status"),
            Duration::from_secs(20),
            |t| !t.trim().is_empty(),
        )
        .await;
    assert_eq!(status.trim(), "200", "the page shows the server's answer");
    let body = browser.text(&format!("{ME} .live-responses-table tr.response .response-col_description")).await;
    assert!(body.contains("swagger@example.org"), "the page shows the profile the token belongs to: {body}");

    let screenshot = browser.screenshot().await;
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Ok(path) = std::env::var("ATTUNE_DOCS_SCREENSHOT") {
        std::fs::write(&path, &screenshot).unwrap();
    }
    // The page's CSP is narrow; nothing Swagger UI needs may be refused by it.
    let refused: Vec<String> =
        browser.console().await.into_iter().filter(|m| m.contains("Content Security Policy")).collect();
    assert!(refused.is_empty(), "the CSP of /docs refused something: {refused:#?}");

    browser.quit().await;
    app.stop().await;
}
