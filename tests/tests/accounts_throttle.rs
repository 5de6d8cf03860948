//! The sign-in throttle: counted atomically under concurrent guessing, and keyed
//! on the real client behind trusted proxies, never on what a client claims.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::{
    accounts::throttle,
    config::Settings,
    entities::login_throttle::{self, Entity as LoginThrottle},
};
use attune_tests::{PASSWORD, TestApp, expect_problem};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::json;

async fn login_from(app: &TestApp, email: &str, password: &str, forwarded_for: &str) -> StatusCode {
    app.post("/v1/auth/login")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn stored_count(app: &TestApp, key: &str) -> Option<login_throttle::Model> {
    LoginThrottle::find_by_id(key.to_owned()).one(&app.db).await.unwrap()
}

/// Fires `n` wrong sign-ins at once; how many were checked (401) and refused (429).
async fn guess_at_once(app: &TestApp, emails: Vec<String>) -> (usize, usize) {
    let guesses = emails.into_iter().map(|email| async move { app.login(&email, "a wrong guess!!").await.status() });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, statuses.len(), "only 401 or 429: {statuses:?}");
    (checked, refused)
}

#[tokio::test]
async fn forty_concurrent_guesses_at_one_account_let_exactly_five_through() {
    let app = TestApp::spawn().await;
    app.register("gus@example.org").await;
    let (checked, refused) = guess_at_once(&app, vec!["gus@example.org".to_owned(); 40]).await;
    assert_eq!((checked, refused), (5, 35), "the limit holds however the guesses interleave");
    let row = stored_count(&app, &throttle::account_key("gus@example.org")).await.unwrap();
    assert_eq!(row.failures, 40, "every attempt counted, none lost");
    assert!(row.locked_until.is_some());
    expect_problem(app.login("gus@example.org", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;
    app.stop().await;
}

#[tokio::test]
async fn forty_concurrent_guesses_from_one_address_let_exactly_twenty_through() {
    let app = TestApp::spawn().await;
    let emails = (0..40).map(|n| format!("guess{n}@example.org")).collect();
    let (checked, refused) = guess_at_once(&app, emails).await;
    assert_eq!((checked, refused), (20, 20), "the 21st and later are refused");
    let row = stored_count(&app, &throttle::address_key("127.0.0.1")).await.unwrap();
    assert_eq!(row.failures, 40);
    app.stop().await;
}

#[tokio::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    // Each guess claims another address; the throttle still sees the one peer.
    for n in 0..20 {
        let status =
            login_from(&app, &format!("guess{n}@example.org"), "a wrong guess!!", &format!("198.51.100.{n}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let status = login_from(&app, "guess99@example.org", "a wrong guess!!", "203.0.113.250").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(stored_count(&app, &throttle::address_key("198.51.100.0")).await.is_none());
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own_address() {
    let trusted = Settings::from_args(["--trusted-proxies", "127.0.0.1/32"]).unwrap().trusted_proxies;
    let app = TestApp::spawn_with(|settings| settings.trusted_proxies = trusted).await;
    app.register("hal@example.org").await;
    // One client behind the proxy fails twenty times, forging an address left of
    // the one the proxy appended.
    for n in 0..20 {
        let status =
            login_from(&app, &format!("guess{n}@example.org"), "a wrong guess!!", "10.9.9.9, 203.0.113.7").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    assert_eq!(
        login_from(&app, "guess99@example.org", "a wrong guess!!", "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The forged part bought nothing, and other people behind the same proxy are
    // not locked out.
    assert_eq!(login_from(&app, "hal@example.org", PASSWORD, "203.0.113.8").await, StatusCode::OK);
    assert_eq!(stored_count(&app, &throttle::address_key("203.0.113.7")).await.unwrap().failures, 21);
    assert!(stored_count(&app, &throttle::address_key("10.9.9.9")).await.is_none());
    assert!(stored_count(&app, &throttle::address_key("127.0.0.1")).await.is_none());
    app.stop().await;
}

#[test]
fn a_trusted_proxies_setting_that_is_no_cidr_is_a_clear_start_up_error() {
    let error = Settings::from_args(["--trusted-proxies", "10.0.0.0/8,the-ingress"]).unwrap_err().to_string();
    assert!(error.contains("--trusted-proxies") && error.contains("`the-ingress`"), "{error}");
    assert!(Settings::from_args(Vec::<String>::new()).unwrap().trusted_proxies.is_empty(), "empty by default");
}
