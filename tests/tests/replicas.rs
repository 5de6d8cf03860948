//! Two `attune-api` processes on one PostgreSQL database and one Redis, as a
//! scaled install runs its replicas. Each keeps the sessions it read for up to a
//! second; a session ended through one, in any of the ways a session ends, is
//! refused at once by that one and within a second by the other, and a profile
//! changed through one is read at once there and within a second on the other.
//! What today's suggestion is computed from is cached the same way: a check-in
//! pushed through one replica changes today at once there and within a second
//! on the other.
//! PostgreSQL + Redis only (`ATTUNE_TEST_DATABASE_URL`, `ATTUNE_TEST_REDIS_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::time::Duration;

use attune_shared::person_cache::{ANNOUNCEMENTS_RECEIVED_METRIC, LISTENING_METRIC};
use attune_tests::{
    PASSWORD, TestUser, poll_until,
    replicas::{Replica, Replicas},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The promise: an ended session is refused on every replica within a second.
const WITHIN: Duration = Duration::from_secs(1);

async fn started() -> Option<Replicas> {
    let replicas = Replicas::start(2).await;
    if replicas.is_none() {
        eprintln!("NOT RUN: two replicas need ATTUNE_TEST_DATABASE_URL and ATTUNE_TEST_REDIS_URL");
    }
    replicas
}

/// `replica` refuses `token` within [`WITHIN`] of the change that ended it.
async fn refused_within_a_second(replica: &Replica, token: &str, how: &str) {
    poll_until(&format!("the other replica to refuse a session ended by {how}"), WITHIN, || async {
        match replica.me(token).await {
            (StatusCode::UNAUTHORIZED, _) => Ok(()),
            (status, body) => Err(format!("it answered {status}: {body}")),
        }
    })
    .await;
}

/// `replica` has read `user`'s session: from now on it holds it in its cache.
async fn known_to(replica: &Replica, user: &TestUser) {
    assert_eq!(replica.me(&user.access_token).await.0, StatusCode::OK);
}

async fn send(replica: &Replica, method: Method, path: &str, user: &TestUser, body: Option<Value>) -> StatusCode {
    let mut request = replica.request(method, path).bearer_auth(&user.access_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

async fn refresh(replica: &Replica, refresh_token: &str) -> (StatusCode, Value) {
    let request = replica.request(Method::POST, "/v1/auth/refresh").json(&json!({"refresh_token": refresh_token}));
    let (status, _, body) = attune_tests::read(request.send().await.unwrap()).await;
    (status, body)
}

/// The id of the person's other session, as listed to `asking`.
async fn session_id(replica: &Replica, asking: &TestUser) -> String {
    let response = replica.request(Method::GET, "/v1/me/sessions").bearer_auth(&asking.access_token).send();
    let (_, _, listed) = attune_tests::read(response.await.unwrap()).await;
    let other = listed.as_array().unwrap().iter().find(|s| s["current"] == false).expect("another session");
    other["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_way_of_ending_a_session_reaches_the_other_replica_within_a_second() {
    let Some(replicas) = started().await else { return };
    let (a, b) = (replicas.replica(0), replicas.replica(1));
    assert_eq!(b.metric(LISTENING_METRIC).await, 1.0, "a replica that serves listens for the others' changes");
    let announced_before = b.metric(ANNOUNCEMENTS_RECEIVED_METRIC).await;

    // Signing out.
    let sam = a.register("logout@example.org").await;
    known_to(b, &sam).await;
    assert_eq!(send(a, Method::POST, "/v1/auth/logout", &sam, None).await, StatusCode::NO_CONTENT);
    assert_eq!(a.me(&sam.access_token).await.0, StatusCode::UNAUTHORIZED, "at once where it ended");
    refused_within_a_second(b, &sam.access_token, "signing out").await;

    // A refresh token used twice: its session (token family) is revoked.
    let kim = a.register("reuse@example.org").await;
    let (status, rotated) = refresh(a, &kim.refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    known_to(b, &kim).await;
    let rotated = TestUser::from_token_response(&kim.email, &rotated);
    known_to(b, &rotated).await;
    assert_eq!(refresh(a, &kim.refresh_token).await.0, StatusCode::UNAUTHORIZED, "the reuse");
    refused_within_a_second(b, &kim.access_token, "a reused refresh token").await;
    refused_within_a_second(b, &rotated.access_token, "a reused refresh token").await;

    // A new password ends every other session; the one that changed it stays.
    let phone = a.register("password@example.org").await;
    let laptop = a.sign_in(&phone.email).await;
    known_to(b, &laptop).await;
    known_to(b, &phone).await;
    let body = json!({"current_password": PASSWORD, "new_password": "a fresh and private passphrase"});
    assert_eq!(send(a, Method::POST, "/v1/me/password", &phone, Some(body)).await, StatusCode::NO_CONTENT);
    refused_within_a_second(b, &laptop.access_token, "a password change").await;
    assert_eq!(b.me(&phone.access_token).await.0, StatusCode::OK, "the session that changed it lives on");

    // One device signed out by another.
    let phone = a.register("one-device@example.org").await;
    let tablet = a.sign_in(&phone.email).await;
    known_to(b, &tablet).await;
    let tablet_id = session_id(a, &phone).await;
    let path = format!("/v1/me/sessions/{tablet_id}");
    assert_eq!(send(a, Method::DELETE, &path, &phone, None).await, StatusCode::NO_CONTENT);
    refused_within_a_second(b, &tablet.access_token, "DELETE /v1/me/sessions/{id}").await;
    assert_eq!(b.me(&phone.access_token).await.0, StatusCode::OK);

    // Every other device signed out.
    let phone = a.register("all-devices@example.org").await;
    let tablet = a.sign_in(&phone.email).await;
    known_to(b, &tablet).await;
    assert_eq!(send(a, Method::DELETE, "/v1/me/sessions", &phone, None).await, StatusCode::NO_CONTENT);
    refused_within_a_second(b, &tablet.access_token, "DELETE /v1/me/sessions").await;
    assert_eq!(b.me(&phone.access_token).await.0, StatusCode::OK);

    // The account deleted.
    let gone = a.register("deleted@example.org").await;
    known_to(b, &gone).await;
    let body = json!({"password": PASSWORD});
    assert_eq!(send(a, Method::DELETE, "/v1/me", &gone, Some(body)).await, StatusCode::ACCEPTED);
    assert_eq!(a.me(&gone.access_token).await.0, StatusCode::UNAUTHORIZED, "at once where it was deleted");
    refused_within_a_second(b, &gone.access_token, "deleting the account").await;

    // Each of the six ended sessions was announced to B, not left to expire.
    let announced = b.metric(ANNOUNCEMENTS_RECEIVED_METRIC).await - announced_before;
    assert!(announced >= 6.0, "B heard {announced} announcements");
    replicas.stop().await;
}

#[tokio::test]
async fn a_profile_change_is_read_at_once_where_it_was_made_and_within_a_second_elsewhere() {
    let Some(replicas) = started().await else { return };
    let (a, b) = (replicas.replica(0), replicas.replica(1));
    let sam = a.register("profile@example.org").await;
    let (_, before) = b.me(&sam.access_token).await;
    assert_eq!(
        (before["display_name"].as_str(), before["descriptive_notifications"].as_bool()),
        (Some("Sam"), Some(false))
    );
    // Both replicas hold the profile now.
    assert_eq!(a.me(&sam.access_token).await.0, StatusCode::OK);

    let body = json!({"display_name": "Samira"});
    assert_eq!(send(a, Method::PATCH, "/v1/me", &sam, Some(body)).await, StatusCode::OK);
    assert_eq!(a.me(&sam.access_token).await.1["display_name"], "Samira", "read at once where it was changed");
    let settings = json!({"reminders": true, "reflections": true, "quiet_hours": {"start": "22:00", "end": "07:00"},
                          "paused_until": null, "descriptive": true});
    assert_eq!(send(a, Method::PUT, "/v1/notifications/settings", &sam, Some(settings)).await, StatusCode::OK);
    assert_eq!(a.me(&sam.access_token).await.1["descriptive_notifications"], true);

    poll_until("the other replica to read the new profile", WITHIN, || async {
        let (status, me) = b.me(&sam.access_token).await;
        match (status, me["display_name"].as_str(), me["descriptive_notifications"].as_bool()) {
            (StatusCode::OK, Some("Samira"), Some(true)) => Ok(()),
            _ => Err(format!("it answered {status}: {me}")),
        }
    })
    .await;
    replicas.stop().await;
}

/// `GET /v1/today` as `user` on `replica`: the kind of suggestion.
async fn today_kind(replica: &Replica, user: &TestUser) -> String {
    let response = replica.request(Method::GET, "/v1/today").bearer_auth(&user.access_token).send();
    let (status, _, today) = attune_tests::read(response.await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{today}");
    today["kind"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_hard_check_in_turns_today_gentle_at_once_where_it_was_pushed_and_within_a_second_elsewhere() {
    let Some(replicas) = started().await else { return };
    let (a, b) = (replicas.replica(0), replicas.replica(1));
    let sam = a.register("today@example.org").await;
    let enrollment = json!({"program": "closer", "mode": "solo", "pace": "gentle"});
    assert_eq!(send(a, Method::POST, "/v1/enrollments", &sam, Some(enrollment)).await, StatusCode::CREATED);
    // Both replicas hold what today is computed from now.
    assert_eq!(today_kind(b, &sam).await, "exercise");
    assert_eq!(today_kind(a, &sam).await, "exercise");
    let announced_before = b.metric(ANNOUNCEMENTS_RECEIVED_METRIC).await;

    let now = chrono::Utc::now().timestamp_millis();
    let hard = json!({"id": "hard", "occurred_at": now, "mood": 2, "anxiety": 9, "comfort": 2,
                      "exercise_id": null, "completed": false, "note": null, "tags": ""});
    let changes = json!({"checkins": {"created": [hard], "updated": [], "deleted": []}});
    let pushed = send(a, Method::POST, "/v1/sync?last_pulled_at=null", &sam, Some(json!({"changes": changes})));
    assert_eq!(pushed.await, StatusCode::OK);
    assert_eq!(today_kind(a, &sam).await, "grounding", "read at once where it was pushed");

    poll_until("the other replica to suggest grounding", WITHIN, || async {
        match today_kind(b, &sam).await.as_str() {
            "grounding" => Ok(()),
            other => Err(format!("it suggested {other}")),
        }
    })
    .await;
    // Told, not left to expire: the cache keeps for a second too.
    let announced = b.metric(ANNOUNCEMENTS_RECEIVED_METRIC).await - announced_before;
    assert!(announced >= 1.0, "B heard {announced} announcements");
    replicas.stop().await;
}
