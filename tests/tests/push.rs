//! Web Push end to end: the API, the worker and a fake push service that checks
//! VAPID signatures and decrypts payloads as a real one does.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{sync::Arc, time::Duration};

use attune_tests::{
    TestApp, TestUser, expect_problem,
    fake_push::{FakePushService, FakeResponse},
    problem_fields, read,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The app, with the fake push service as its only allowed push host.
async fn setup() -> (TestApp, FakePushService, TestUser) {
    let clock = attune_shared::ManualClock::new(chrono::Utc::now());
    let fake = FakePushService::start(Arc::new(clock.clone())).await;
    let host = fake.host().to_owned();
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
    })
    .await;
    app.clock.set(attune_shared::Clock::now(&clock));
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    let user = app.register("push@example.org").await;
    (app, fake, user)
}

async fn subscribe(app: &TestApp, user: &TestUser, body: &Value) -> reqwest::Response {
    app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(body).send().await.unwrap()
}

async fn test_push(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.post("/v1/push/test").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

#[tokio::test]
async fn a_test_notification_reaches_every_device_signed_and_encrypted() {
    let (app, fake, user) = setup().await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    let public_key = key["public_key"].as_str().unwrap();
    assert_eq!(public_key.len(), 87, "65 bytes, base64url without padding");

    let phone = fake.new_subscription();
    let laptop = fake.new_subscription();
    for device in [&phone, &laptop] {
        let response = subscribe(&app, &user, &device.json).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // The same endpoint again updates rather than duplicates.
    assert_eq!(subscribe(&app, &user, &phone.json).await.status(), StatusCode::OK);
    let (_, _, listed) =
        read(app.get("/v1/push/subscriptions").bearer_auth(&user.access_token).send().await.unwrap()).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let text = listed.to_string();
    assert!(!text.contains(&phone.p256dh_b64url) && !text.contains(&phone.auth_b64url), "no key material: {text}");
    assert!(!text.contains(&phone.endpoint), "no endpoint (a bearer capability): {text}");
    assert_eq!(listed[0]["push_service"], "127.0.0.1");

    let (status, queued) = test_push(&app, &user).await;
    assert_eq!((status, queued["devices"].as_u64()), (StatusCode::ACCEPTED, Some(2)));
    let deliveries = fake.wait_for_deliveries(2, WAIT).await;
    for delivery in &deliveries {
        assert_eq!(delivery.payload["type"], "test");
        assert!(delivery.payload["delivery_id"].is_string());
        assert!(delivery.payload["title"].is_string() && delivery.payload["body"].is_string());
        assert!(delivery.ttl > 0 && delivery.urgency.is_some(), "TTL and Urgency are always set");
        assert_eq!(delivery.vapid_subject, "mailto:ops@attune.test");
    }
    let mut ids: Vec<&str> = deliveries.iter().map(|d| d.subscription_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![phone.id.as_str(), laptop.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "one message per device");
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    app.stop().await;
}

#[tokio::test]
async fn a_gone_subscription_is_deleted_at_once() {
    let (app, fake, user) = setup().await;
    let device = fake.new_subscription();
    subscribe(&app, &user, &device.json).await;
    fake.gone(&device.id);
    test_push(&app, &user).await;
    attune_tests::eventually("the subscription is deleted", WAIT, || async {
        app.count_rows("push_subscriptions").await == 0
    })
    .await;
    assert_eq!(fake.requests_for(&device.id), 1, "not retried");
    let (status, _) = test_push(&app, &user).await;
    assert_eq!(status, StatusCode::CONFLICT, "no devices left");
    app.stop().await;
}

#[tokio::test]
async fn busy_and_failing_push_services_are_retried_until_delivered() {
    let (app, fake, user) = setup().await;
    let device = fake.new_subscription();
    subscribe(&app, &user, &device.json).await;
    fake.respond_with(
        &device.id,
        vec![
            FakeResponse::status(StatusCode::TOO_MANY_REQUESTS).with_retry_after("1"),
            FakeResponse::status(StatusCode::INTERNAL_SERVER_ERROR),
            FakeResponse::status(StatusCode::SERVICE_UNAVAILABLE),
        ],
    );
    test_push(&app, &user).await;
    let deliveries = fake.wait_for_deliveries(1, WAIT).await;
    assert_eq!(deliveries[0].subscription_id, device.id);
    assert_eq!(fake.requests_for(&device.id), 4, "429, 500, 503, then delivered");
    assert_eq!(app.count_rows("push_subscriptions").await, 1, "a busy service does not lose the device");
    app.stop().await;
}

#[tokio::test]
async fn a_push_service_that_keeps_failing_is_given_up_on() {
    let (app, fake, user) = setup().await;
    let device = fake.new_subscription();
    subscribe(&app, &user, &device.json).await;
    fake.respond_with(&device.id, vec![FakeResponse::status(StatusCode::BAD_GATEWAY); 8]);
    test_push(&app, &user).await;
    fake.wait_for_requests(&device.id, attune_shared::push::MAX_ATTEMPTS as usize, WAIT).await;
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    attune_tests::eventually("the drop is counted", WAIT, || async {
        let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
        metrics.lines().any(|l| l.starts_with("attune_push_total{outcome=\"failed\"}"))
    })
    .await;
    assert!(metrics.contains("attune_push_total{outcome=\"retried\"}"), "{metrics}");
    assert!(metrics.contains("attune_queue_depth"), "{metrics}");
    assert!(fake.deliveries().is_empty());
    assert_eq!(fake.requests_for(&device.id), attune_shared::push::MAX_ATTEMPTS as usize, "bounded");
    app.stop().await;
}

#[tokio::test]
async fn invalid_subscriptions_are_refused_with_the_field_named() {
    let (app, fake, user) = setup().await;
    let device = fake.new_subscription();
    let mut bad = device.json.clone();
    bad["keys"]["p256dh"] = json!("BAAA");
    bad["keys"]["auth"] = json!("c2hvcnQ");
    let problem = expect_problem(subscribe(&app, &user, &bad).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["keys.p256dh", "keys.auth"]);

    // Not a point on the curve, although 65 bytes with the right prefix.
    let mut off_curve = device.json.clone();
    off_curve["keys"]["p256dh"] = json!(format!("BA{}", "A".repeat(85)));
    let problem = expect_problem(subscribe(&app, &user, &off_curve).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), ["keys.p256dh"]);

    // SSRF: endpoints on hosts that are not push services are refused, and nothing is sent there.
    for endpoint in
        ["http://169.254.169.254/latest/meta-data", "https://evil.example.com/push/1", "http://localhost:6379/"]
    {
        let body = device.json_with_endpoint(endpoint);
        let problem = expect_problem(subscribe(&app, &user, &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), ["endpoint"], "{endpoint}");
    }
    let missing = expect_problem(subscribe(&app, &user, &json!({})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(problem_fields(&missing).contains(&"endpoint".to_owned()));
    assert_eq!(app.count_rows("push_subscriptions").await, 0);
    assert_eq!(fake.request_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn devices_are_capped_owned_and_removable() {
    let (app, fake, user) = setup().await;
    let mut first_id = String::new();
    for n in 0..10 {
        let (status, _, body) = read(subscribe(&app, &user, &fake.new_subscription().json).await).await;
        assert_eq!(status, StatusCode::CREATED);
        if n == 0 {
            first_id = body["id"].as_str().unwrap().to_owned();
        }
    }
    let eleventh = subscribe(&app, &user, &fake.new_subscription().json).await;
    expect_problem(eleventh, StatusCode::CONFLICT).await;

    let other = app.register("someone-else@example.org").await;
    let theirs = app
        .request(Method::DELETE, &format!("/v1/push/subscriptions/{first_id}"))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    expect_problem(theirs, StatusCode::NOT_FOUND).await;
    let mine = app
        .request(Method::DELETE, &format!("/v1/push/subscriptions/{first_id}"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), StatusCode::NO_CONTENT);
    assert_eq!(subscribe(&app, &user, &fake.new_subscription().json).await.status(), StatusCode::CREATED);
    let not_uuid = app
        .request(Method::DELETE, "/v1/push/subscriptions/not-a-uuid")
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    expect_problem(not_uuid, StatusCode::NOT_FOUND).await;
    app.stop().await;
}
