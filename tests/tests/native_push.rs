//! Native push end to end: APNs and FCM devices beside Web Push. The API
//! accepts all three kinds, the worker sends reminders, reflection notices and
//! test pushes to each through fakes that check what Apple and Google check
//! (fake_apns.rs: HTTP/2 over TLS, ES256 provider tokens; fake_fcm.rs: the
//! OAuth RS256 assertion and the bearer token it issued), and acts on their
//! answers: dead devices removed, busy services retried, auth errors counted.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{sync::Arc, time::Duration};

use attune_shared::{Clock, ManualClock, reflections::REFLECTION_TTL_SECS, reminders::REMINDER_TTL_SECS};
use attune_tests::{
    TestApp, TestUser, expect_problem,
    fake_apns::{ApnsAnswer, FakeApns},
    fake_fcm::{FakeFcm, FcmAnswer},
    fake_push::{FakePushService, FakeSubscription},
    problem_fields, read,
};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The app with all three services pointed at their fakes, which share one
/// clock with each other; [`Fakes::set_time`] moves it and the app's together.
struct Fakes {
    web: FakePushService,
    apns: FakeApns,
    fcm: FakeFcm,
    clock: ManualClock,
}

impl Fakes {
    fn set_time(&self, app: &TestApp, at: DateTime<Utc>) {
        app.clock.set(at);
        self.clock.set(at);
    }
}

async fn setup() -> (TestApp, Fakes) {
    let clock = ManualClock::new(Utc::now());
    let web = FakePushService::start(Arc::new(clock.clone())).await;
    let apns = FakeApns::start(Arc::new(clock.clone())).await;
    let fcm = FakeFcm::start(Arc::new(clock.clone())).await;
    let app = TestApp::spawn_with(|s| {
        s.push_allowed_hosts = vec!["127.0.0.1".into()];
        s.push_allow_http = true;
        apns.configure(s);
        fcm.configure(s);
    })
    .await;
    app.clock.set(clock.now());
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    web.set_application_server_key(key["public_key"].as_str().unwrap());
    (app, Fakes { web, apns, fcm, clock })
}

async fn register_device(app: &TestApp, user: &TestUser, body: &Value) -> (StatusCode, Value) {
    let response = app.post("/v1/push/subscriptions").bearer_auth(&user.access_token).json(body).send().await.unwrap();
    let (status, _, body) = read(response).await;
    (status, body)
}

fn apns_device(token: &str) -> Value {
    json!({"kind": "apns", "token": token, "environment": "sandbox"})
}

fn fcm_device(token: &str) -> Value {
    json!({"kind": "fcm", "token": token})
}

/// One device of each kind for `user`: (web subscription, APNs token, FCM token).
async fn three_devices(app: &TestApp, fakes: &Fakes, user: &TestUser) -> (FakeSubscription, String, String) {
    let web = fakes.web.new_subscription();
    let (apns, fcm) = (fakes.apns.new_token(), fakes.fcm.new_token());
    for body in [web.json.clone(), apns_device(&apns), fcm_device(&fcm)] {
        let (status, answer) = register_device(app, user, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    (web, apns, fcm)
}

async fn test_push(app: &TestApp, user: &TestUser) -> (StatusCode, Value) {
    let (status, _, body) = read(app.post("/v1/push/test").bearer_auth(&user.access_token).send().await.unwrap()).await;
    (status, body)
}

/// The lock-screen text each kind's delivery carried: (title, body).
struct Shown {
    web: (Value, Value),
    apns: (Value, Value),
    fcm: (Value, Value),
}

async fn one_of_each(fakes: &Fakes, n: usize) -> Shown {
    let web = fakes.web.wait_for_deliveries(n, WAIT).await.pop().unwrap().payload;
    let apns = fakes.apns.wait_for_deliveries(n, WAIT).await.pop().unwrap().payload;
    let fcm = fakes.fcm.wait_for_deliveries(n, WAIT).await.pop().unwrap().message;
    Shown {
        web: (web["title"].clone(), web["body"].clone()),
        apns: (apns["aps"]["alert"]["title"].clone(), apns["aps"]["alert"]["body"].clone()),
        fcm: (fcm["notification"]["title"].clone(), fcm["notification"]["body"].clone()),
    }
}

impl Shown {
    /// Every kind showed the same text; returns it.
    fn same_everywhere(&self) -> String {
        assert_eq!(self.web, self.apns, "APNs shows what Web Push shows");
        assert_eq!(self.web, self.fcm, "FCM shows what Web Push shows");
        format!("{} {}", self.web.0, self.web.1).to_lowercase()
    }
}

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn providers_and_devices_of_every_kind_without_their_tokens() {
    let (app, fakes) = setup().await;
    let (status, _, providers) = read(app.get("/v1/push/providers").send().await.unwrap()).await;
    assert_eq!((status, providers), (StatusCode::OK, json!({"kinds": ["web", "apns", "fcm"]})));

    let sam = app.register("sam@example.org").await;
    let (_, apns, fcm) = three_devices(&app, &fakes, &sam).await;
    // The same token again is an update, in any case Apple prints it.
    let (status, again) = register_device(&app, &sam, &apns_device(&apns.to_uppercase())).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let (_, _, listed) =
        read(app.get("/v1/push/subscriptions").bearer_auth(&sam.access_token).send().await.unwrap()).await;
    let kinds: Vec<&str> = listed.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["web", "apns", "fcm"]);
    assert_eq!(listed[1]["environment"], "sandbox");
    assert_eq!(listed[1]["push_service"], "api.sandbox.push.apple.com");
    assert_eq!(listed[2]["push_service"], "fcm.googleapis.com");
    let text = listed.to_string();
    assert!(!text.contains(&apns) && !text.contains(&fcm), "tokens are never shown: {text}");
    // The export lists the same devices, and no token either.
    let (status, _, export) = read(app.export(&sam).await).await;
    assert_eq!(status, StatusCode::OK, "{export}");
    assert_eq!(export["devices"], listed);
    assert!(!export.to_string().contains(&apns) && !export.to_string().contains(&fcm));

    // A phone handed on: its token moves to the new owner.
    let alex = app.register("alex@example.org").await;
    assert_eq!(register_device(&app, &alex, &fcm_device(&fcm)).await.0, StatusCode::OK);
    let (_, _, left) =
        read(app.get("/v1/push/subscriptions").bearer_auth(&sam.access_token).send().await.unwrap()).await;
    assert_eq!(left.as_array().unwrap().len(), 2);

    // The cap counts every kind: Sam has 2, so 8 more of any kind, then 409.
    for i in 0..8 {
        let body = if i % 2 == 0 { apns_device(&fakes.apns.new_token()) } else { fcm_device(&fakes.fcm.new_token()) };
        assert_eq!(register_device(&app, &sam, &body).await.0, StatusCode::CREATED);
    }
    let response =
        app.post("/v1/push/subscriptions").bearer_auth(&sam.access_token).json(&fcm_device(&fakes.fcm.new_token()));
    let problem = expect_problem(response.send().await.unwrap(), StatusCode::CONFLICT).await;
    assert_eq!(problem["type"], "/problems/too-many-devices");
    app.stop().await;
}

#[tokio::test]
async fn bad_registrations_are_422_naming_the_field() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let cases = [
        (json!({"kind": "apns", "token": "abc123", "environment": "production"}), "token"),
        (json!({"kind": "apns", "token": "z".repeat(64), "environment": "production"}), "token"),
        (json!({"kind": "apns", "token": fakes.apns.new_token()}), "environment"),
        (json!({"kind": "apns", "token": fakes.apns.new_token(), "environment": "staging"}), "environment"),
        (json!({"kind": "fcm"}), "token"),
        (json!({"kind": "fcm", "token": "short"}), "token"),
        (json!({"kind": "fcm", "token": "has spaces and {braces} in it, which no token has"}), "token"),
        (json!({"kind": "fcm", "token": fakes.fcm.new_token(), "environment": "sandbox"}), "environment"),
        (json!({"kind": "huawei", "token": "x"}), "kind"),
    ];
    for (body, field) in cases {
        let response = app.post("/v1/push/subscriptions").bearer_auth(&sam.access_token).json(&body);
        let problem = expect_problem(response.send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem_fields(&problem), [field], "{body}: {problem}");
    }
    assert_eq!(app.count_rows("push_subscriptions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_kind_the_operator_has_not_enabled_is_409() {
    let app = TestApp::spawn().await;
    let (_, _, providers) = read(app.get("/v1/push/providers").send().await.unwrap()).await;
    assert_eq!(providers, json!({"kinds": ["web"]}));
    let sam = app.register("sam@example.org").await;
    let token = "ab".repeat(32);
    for body in [apns_device(&token), fcm_device(&format!("{token}:APA91b"))] {
        let response = app.post("/v1/push/subscriptions").bearer_auth(&sam.access_token).json(&body);
        let problem = expect_problem(response.send().await.unwrap(), StatusCode::CONFLICT).await;
        assert_eq!(problem["type"], "/problems/push-service-not-enabled", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("operator"), "{problem}");
    }
    assert_eq!(app.count_rows("push_subscriptions").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_test_push_reaches_all_three_kinds_with_the_same_text() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let (web, apns, fcm) = three_devices(&app, &fakes, &sam).await;
    let (status, queued) = test_push(&app, &sam).await;
    assert_eq!((status, queued["devices"].as_u64()), (StatusCode::ACCEPTED, Some(3)));
    one_of_each(&fakes, 1).await.same_everywhere();
    let now = app.clock.now().timestamp();

    assert_eq!(fakes.web.deliveries()[0].subscription_id, web.id);
    let to_apple = &fakes.apns.deliveries()[0];
    assert_eq!(to_apple.token, apns);
    assert_eq!(to_apple.payload["type"], "test");
    assert!(to_apple.payload["delivery_id"].is_string());
    assert_eq!(to_apple.priority, "5");
    assert_eq!(to_apple.expiration, now + 3600, "the test push's TTL, an hour");
    let to_google = &fakes.fcm.deliveries()[0];
    assert_eq!(to_google.token, fcm);
    assert_eq!(to_google.message["data"]["type"], "test");
    assert_eq!(to_google.message["data"]["delivery_id"], to_apple.payload["delivery_id"]);
    assert_eq!(to_google.message["android"]["ttl"], "3600s");
    assert_eq!(to_google.message["android"]["priority"], "normal");
    assert!(fakes.apns.refusals().is_empty() && fakes.fcm.refusals().is_empty());
    assert_eq!(fakes.fcm.token_refusals(), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test]
async fn a_due_reminder_reaches_all_three_kinds_discreetly_and_collapsible() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    app.enroll(&sam, "steady").await;
    let every_day = json!({"enabled": true, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "window": {"start": "19:00", "end": "21:00"}, "quiet_hours": {"start": "22:00", "end": "07:00"},
        "descriptive": false, "paused_until": null});
    let response = app.request(Method::PUT, "/v1/reminders/settings").bearer_auth(&sam.access_token).json(&every_day);
    assert_eq!(response.send().await.unwrap().status(), StatusCode::OK);
    three_devices(&app, &fakes, &sam).await;
    let (_, _, settings) =
        read(app.get("/v1/reminders/settings").bearer_auth(&sam.access_token).send().await.unwrap()).await;
    let slot: DateTime<Utc> = settings["next_reminder_at"].as_str().unwrap().parse().unwrap();
    fakes.set_time(&app, slot + chrono::Duration::seconds(30));
    let deps = app.worker_deps().await;
    // The in-process worker's dispatcher may claim it first; either way it is claimed once.
    attune_worker::jobs::dispatch_reminders::dispatch_due_reminders(&deps, app.clock.now(), 100).await.unwrap();

    let text = one_of_each(&fakes, 1).await.same_everywhere();
    for word in ["intima", "sex", "touch", "partner", "body", "exercise", "step", "program", "closer"] {
        assert!(!text.contains(word), "a discreet reminder says nothing about `{word}`: {text}");
    }
    let now = app.clock.now().timestamp();
    let to_apple = &fakes.apns.deliveries()[0];
    assert_eq!(to_apple.payload["type"], "reminder");
    assert_eq!((to_apple.priority.as_str(), to_apple.collapse_id.as_deref()), ("5", Some("reminder")));
    assert_eq!(to_apple.expiration, now + i64::from(REMINDER_TTL_SECS));
    let to_google = &fakes.fcm.deliveries()[0].message;
    assert_eq!(to_google["data"]["type"], "reminder");
    assert_eq!(to_google["data"]["url"], "/today");
    assert_eq!(to_google["android"]["collapse_key"], "reminder");
    assert_eq!(to_google["android"]["ttl"], format!("{REMINDER_TTL_SECS}s"));
    app.stop().await;
}

#[tokio::test]
async fn a_reflection_notice_reaches_all_three_kinds() {
    let (app, fakes) = setup().await;
    let utc = chrono_tz::UTC;
    let monday = "2026-11-09T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
    fakes.set_time(&app, monday);
    let sam = app.register("sam@example.org").await;
    let response = app.request(Method::PATCH, "/v1/me").bearer_auth(&sam.access_token);
    let response = response.json(&json!({"timezone": utc.name(), "country": "GB"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.enroll(&sam, "committed").await;
    three_devices(&app, &fakes, &sam).await;
    let due = "2026-11-15T18:00:00Z".parse::<DateTime<Utc>>().unwrap();
    fakes.set_time(&app, due);
    let deps = app.worker_deps().await;
    attune_worker::jobs::reflections::run(&deps, due).await.unwrap();

    let shown = one_of_each(&fakes, 1).await;
    assert_eq!(
        shown.same_everywhere(),
        "\"a moment to look back\" \"a short look at your week is ready whenever you'd like it.\""
    );
    let to_apple = &fakes.apns.deliveries()[0];
    assert_eq!(to_apple.payload["type"], "reflection");
    assert_eq!(to_apple.collapse_id.as_deref(), Some("reflection"));
    assert_eq!(to_apple.expiration, due.timestamp() + i64::from(REFLECTION_TTL_SECS));
    assert_eq!(fakes.fcm.deliveries()[0].message["android"]["collapse_key"], "reflection");
    app.stop().await;
}

#[tokio::test]
async fn dead_devices_are_removed_for_each_answer_that_says_so() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let (gone, bad, unregistered, invalid, alive) = (
        fakes.apns.new_token(),
        fakes.apns.new_token(),
        fakes.fcm.new_token(),
        fakes.fcm.new_token(),
        fakes.fcm.new_token(),
    );
    for token in [&gone, &bad] {
        assert_eq!(register_device(&app, &sam, &apns_device(token)).await.0, StatusCode::CREATED);
    }
    for token in [&unregistered, &invalid, &alive] {
        assert_eq!(register_device(&app, &sam, &fcm_device(token)).await.0, StatusCode::CREATED);
    }
    fakes.apns.respond_with(&gone, vec![ApnsAnswer::unregistered()]);
    fakes.apns.respond_with(&bad, vec![ApnsAnswer::bad_device_token()]);
    fakes.fcm.respond_with(&unregistered, vec![FcmAnswer::unregistered()]);
    fakes.fcm.respond_with(&invalid, vec![FcmAnswer::invalid_token()]);
    test_push(&app, &sam).await;
    fakes.fcm.wait_for_deliveries(1, WAIT).await;
    attune_tests::eventually("the four dead devices are deleted", WAIT, || async {
        app.count_rows("push_subscriptions").await == 1
    })
    .await;
    for token in [&gone, &bad] {
        assert_eq!(fakes.apns.requests_for(token), 1, "not retried");
    }
    for token in [&unregistered, &invalid] {
        assert_eq!(fakes.fcm.requests_for(token), 1, "not retried");
    }
    let (_, _, listed) =
        read(app.get("/v1/push/subscriptions").bearer_auth(&sam.access_token).send().await.unwrap()).await;
    assert_eq!(listed[0]["kind"], "fcm", "the one that answered stays");
    app.stop().await;
}

#[tokio::test]
async fn busy_services_are_retried_until_delivered_or_given_up() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let (apns_busy, apns_hopeless, fcm_busy) = (fakes.apns.new_token(), fakes.apns.new_token(), fakes.fcm.new_token());
    for body in [apns_device(&apns_busy), apns_device(&apns_hopeless), fcm_device(&fcm_busy)] {
        assert_eq!(register_device(&app, &sam, &body).await.0, StatusCode::CREATED);
    }
    fakes.apns.respond_with(&apns_busy, vec![ApnsAnswer::too_many_requests(), ApnsAnswer::service_unavailable()]);
    fakes.apns.respond_with(&apns_hopeless, vec![ApnsAnswer::service_unavailable(); 5]);
    // Retry-After: 2. The queue schedules in whole seconds, so the retry comes
    // between 1 and 2 s later; without it, at once (the tests' back-off is 0).
    fakes.fcm.respond_with(&fcm_busy, vec![FcmAnswer::quota_exceeded("2"), FcmAnswer::unavailable()]);
    let started = std::time::Instant::now();
    test_push(&app, &sam).await;
    fakes.apns.wait_for_deliveries(1, WAIT).await;
    fakes.fcm.wait_for_deliveries(1, WAIT).await;
    assert_eq!(fakes.apns.requests_for(&apns_busy), 3, "429, 503, then delivered");
    assert_eq!(fakes.fcm.requests_for(&fcm_busy), 3, "429, 503, then delivered");
    assert!(started.elapsed() >= Duration::from_secs(1), "FCM's Retry-After was honoured");
    fakes.apns.wait_for_requests(&apns_hopeless, 5, WAIT).await;
    attune_tests::queue_drained(&app.worker_deps().await.queue).await;
    assert_eq!(fakes.apns.requests_for(&apns_hopeless), 5, "given up after five sends");
    assert_eq!(fakes.apns.deliveries().len(), 1);
    assert_eq!(app.count_rows("push_subscriptions").await, 3, "a busy service does not lose a device");
    let metrics = metrics(&app).await;
    assert!(metrics.lines().any(|l| l.starts_with("attune_push_total{outcome=\"failed\"}")), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn apns_provider_tokens_are_reused_then_renewed_and_a_refusal_is_counted_not_retried() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let token = fakes.apns.new_token();
    assert_eq!(register_device(&app, &sam, &apns_device(&token)).await.0, StatusCode::CREATED);
    let start = app.clock.now();
    test_push(&app, &sam).await;
    fakes.apns.wait_for_deliveries(1, WAIT).await;
    fakes.set_time(&app, start + chrono::Duration::minutes(30));
    let sam = app.sign_in_again(&sam).await;
    test_push(&app, &sam).await;
    fakes.apns.wait_for_deliveries(2, WAIT).await;
    assert_eq!(fakes.apns.distinct_provider_tokens(), 1, "30 minutes on, the same token");
    fakes.set_time(&app, start + chrono::Duration::minutes(51));
    let sam = app.sign_in_again(&sam).await;
    test_push(&app, &sam).await;
    fakes.apns.wait_for_deliveries(3, WAIT).await;
    assert_eq!(fakes.apns.distinct_provider_tokens(), 2, "renewed after 50 minutes, within Apple's 20 to 60");

    fakes.apns.revoke_key();
    test_push(&app, &sam).await;
    fakes.apns.wait_for_requests(&token, 4, WAIT).await;
    attune_tests::queue_drained(&app.worker_deps().await.queue).await;
    assert_eq!(fakes.apns.requests_for(&token), 4, "a 403 is not retried");
    assert_eq!(app.count_rows("push_subscriptions").await, 1, "nor does it cost the device");
    let metrics = metrics(&app).await;
    assert!(metrics.contains("attune_push_auth_errors_total{service=\"apns\"} 1"), "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn fcm_access_tokens_are_cached_refreshed_before_expiry_and_once_on_401() {
    let (app, fakes) = setup().await;
    let sam = app.register("sam@example.org").await;
    let token = fakes.fcm.new_token();
    assert_eq!(register_device(&app, &sam, &fcm_device(&token)).await.0, StatusCode::CREATED);
    test_push(&app, &sam).await;
    test_push(&app, &sam).await;
    fakes.fcm.wait_for_deliveries(2, WAIT).await;
    assert_eq!(fakes.fcm.token_requests(), 1, "one access token for both");

    fakes.fcm.expire_access_tokens();
    test_push(&app, &sam).await;
    fakes.fcm.wait_for_deliveries(3, WAIT).await;
    assert_eq!((fakes.fcm.unauthenticated(), fakes.fcm.token_requests()), (1, 2), "a 401, one new token, delivered");

    // Google's tokens last an hour; ours is replaced five minutes before.
    let start = app.clock.now();
    fakes.set_time(&app, start + chrono::Duration::minutes(56));
    let sam = app.sign_in_again(&sam).await;
    test_push(&app, &sam).await;
    fakes.fcm.wait_for_deliveries(4, WAIT).await;
    assert_eq!((fakes.fcm.unauthenticated(), fakes.fcm.token_requests()), (1, 3), "renewed ahead of its expiry");
    assert_eq!(fakes.fcm.token_refusals(), Vec::<String>::new(), "every assertion passed Google's checks");
    app.stop().await;
}

#[tokio::test]
async fn a_partial_or_off_list_configuration_stops_the_start_naming_what_is_wrong() {
    let (app, fakes) = setup().await;
    let build = |settings: attune_shared::config::Settings| {
        let options = attune_api::BuildOptions {
            clock: Arc::new(app.clock.clone()),
            migrate: false,
            worker: attune_api::WorkerMode::None,
        };
        attune_api::Application::build(settings, options)
    };
    let mut partial = app.settings.clone();
    partial.bind = "127.0.0.1:0".parse().unwrap();
    partial.apns_team_id = None;
    partial.apns_topic = Some("  ".into());
    let error = build(partial).await.err().expect("must not start").to_string();
    assert!(error.contains("APNs is only partly configured"), "{error}");
    assert!(error.contains("ATTUNE_APNS_TEAM_ID, ATTUNE_APNS_TOPIC not set"), "{error}");

    let mut off_list = app.settings.clone();
    off_list.bind = "127.0.0.1:0".parse().unwrap();
    off_list.apns_key = None;
    off_list.apns_key_id = None;
    off_list.apns_team_id = None;
    off_list.apns_topic = None;
    off_list.apns_endpoint = None;
    off_list.push_allowed_hosts = vec!["fcm.googleapis.com".into()];
    let error = build(off_list).await.err().expect("must not start").to_string();
    assert!(error.contains("ATTUNE_FCM_SERVICE_ACCOUNT") && error.contains("token_uri"), "{error}");
    drop(fakes);
    app.stop().await;
}
