//! The session cache's bound without any announcement: what changed behind the
//! API's back (straight in the database, so neither this process nor Redis
//! hears of it) is served for at most `FRESH_FOR_MS` after it was read, on the
//! app's clock, and never after. Changes made through the API are read at once
//! (`accounts.rs`, `accounts_control.rs`), and on other replicas within a
//! second (`replicas.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_shared::{Clock, person_cache::FRESH_FOR_MS};
use attune_tests::{TestApp, TestUser, read};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

async fn me(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn a_session_ended_unannounced_is_refused_once_its_cached_second_is_over() {
    let app = TestApp::spawn().await;
    let sam = app.register("sam@example.org").await;
    assert_eq!(me(&app, &sam).await.0, StatusCode::OK, "read now, and kept");
    let now = app.clock.now_ms();
    let revoked = app
        .execute("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2", vec![now.into(), sam.uuid().into()])
        .await;
    assert_eq!(revoked, 1);

    app.clock.advance(Duration::milliseconds(FRESH_FOR_MS - 1));
    assert_eq!(me(&app, &sam).await.0, StatusCode::OK, "still the cached session, within its second");
    app.clock.advance(Duration::milliseconds(1));
    let (status, body) = me(&app, &sam).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_profile_changed_unannounced_is_read_again_once_its_cached_second_is_over() {
    let app = TestApp::spawn().await;
    let sam = app.register("sam@example.org").await;
    assert_eq!(me(&app, &sam).await.1["display_name"], "Sam");
    let changed =
        app.execute("UPDATE users SET display_name = $1 WHERE id = $2", vec!["Samira".into(), sam.uuid().into()]).await;
    assert_eq!(changed, 1);

    app.clock.advance(Duration::milliseconds(FRESH_FOR_MS - 1));
    assert_eq!(me(&app, &sam).await.1["display_name"], "Sam", "the cached profile, within its second");
    app.clock.advance(Duration::milliseconds(1));
    assert_eq!(me(&app, &sam).await.1["display_name"], "Samira");
    app.stop().await;
}
