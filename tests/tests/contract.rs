//! The OpenAPI document against the running server: every route the router serves
//! is documented with exactly its methods, and every status the document lists
//! for an operation is one that operation really answers, shown here by making it
//! answer it. (The route fuzz in `conventions.rs` checks the other direction on
//! junk input: whatever an operation answers is documented.)

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use attune_tests::{TestApp, TestUser, fake_push::FakePushService, fake_smtp::FakeSmtp, read};
use reqwest::{Method, RequestBuilder, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// (method, path template) → what the document says of the operation.
type Documented = BTreeMap<(String, String), Operation>;

struct Operation {
    statuses: BTreeSet<u16>,
    /// Declares the bearer scheme.
    secured: bool,
    /// Takes a JSON body.
    has_body: bool,
}

/// Documented statuses no request from outside can produce on demand, each with
/// where else it is proven.
const NOT_DRIVEN_HERE: [(&str, &str, u16, &str); 5] = [
    (
        "post",
        "/v1/enrollments/current/step-back",
        409,
        "only when two step changes race; the conditional update is in shared/src/enrollment.rs",
    ),
    ("post", "/v1/reminders/{delivery_id}/opened", 204, "needs a delivered reminder: tests/tests/reminders.rs"),
    ("get", "/v1/reflections/{week_start}", 200, "needs the worker's weekly reflection: tests/tests/reflections.rs"),
    ("get", "/readyz", 503, "needs the database or the queue down"),
    (
        "post",
        "/v1/auth/password-reset",
        409,
        "needs a scaled install without SMTP: tests/tests/accounts_mail.rs, on the PostgreSQL + Redis run",
    ),
];

async fn documented(app: &TestApp) -> (Value, Documented) {
    let (status, _, doc) = read(app.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let mut out = Documented::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let statuses = operation["responses"].as_object().unwrap().keys().map(|s| s.parse().unwrap()).collect();
            let secured = operation["security"].as_array().unwrap().iter().any(|r| r.get("bearer").is_some());
            let has_body = operation.get("requestBody").is_some();
            out.insert((method.clone(), path.clone()), Operation { statuses, secured, has_body });
        }
    }
    (doc, out)
}

/// Every answer seen, by operation.
#[derive(Default)]
struct Seen(BTreeSet<(String, String, u16)>);

impl Seen {
    async fn send(&mut self, template: &str, request: RequestBuilder) -> (StatusCode, Value) {
        let built = request.build().unwrap();
        let method = built.method().as_str().to_lowercase();
        let response = reqwest::Client::new().execute(built).await.unwrap();
        let (status, _, body) = read(response).await;
        self.0.insert((method, template.to_owned(), status.as_u16()));
        (status, body)
    }

    /// Sends and insists on `expected`.
    async fn expect(&mut self, template: &str, request: RequestBuilder, expected: StatusCode) -> Value {
        let described = format!("{request:?}");
        let (status, body) = self.send(template, request).await;
        assert_eq!(status, expected, "{template}: {described}\n{body}");
        body
    }
}

fn concrete(template: &str) -> String {
    template
        .replace("{slug}", "closer")
        .replace("{id}", &uuid::Uuid::now_v7().to_string())
        .replace("{delivery_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{week_start}", "2026-11-16")
        .replace("{code}", "ZZZZZZZZZZ")
        .replace("{file}", "swagger-ui.css")
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_methods_of_every_documented_path() {
    let app = TestApp::spawn().await;
    let (_, documented) = documented(&app).await;
    let mut by_path: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in documented.keys() {
        by_path.entry(path.clone()).or_default().insert(method.to_uppercase());
    }
    for (template, methods) in by_path {
        let path = concrete(&template);
        // `OPTIONS` is answered by no route here, so its 405 lists every method the
        // router holds for the path (axum adds HEAD to every GET).
        let response = app.request(Method::OPTIONS, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{template}");
        let allowed: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(allowed, methods, "{template}: the router's methods (left) against the document's (right)");
    }
    // Unknown paths fall through to the problem+json 404, so a route outside the
    // document would have to be one of the paths above.
    let (status, _, _) = read(app.get("/v1/not-a-route").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn every_documented_status_is_one_the_operation_really_answers() {
    let clock = attune_shared::ManualClock::new(chrono::Utc::now());
    let fake = FakePushService::start(Arc::new(clock.clone())).await;
    let host = fake.host().to_owned();
    let smtp = FakeSmtp::start().await;
    let smtp_url = smtp.url();
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(smtp_url.parse().unwrap());
        s.mail_from = Some("no-reply@mail.test".into());
        s.max_body_bytes = 4096;
        s.push_allowed_hosts = vec![host];
        s.push_allow_http = true;
    })
    .await;
    let (_, documented) = documented(&app).await;
    let (_, _, key) = read(app.get("/v1/push/vapid-public-key").send().await.unwrap()).await;
    fake.set_application_server_key(key["public_key"].as_str().unwrap());
    let sam = app.register("sam@example.org").await;
    let mut seen = Seen::default();

    // What the extractors answer, for every operation that uses them.
    for ((method, template), operation) in &documented {
        let method: Method = method.to_uppercase().parse().unwrap();
        let path = concrete(template);
        let call = || app.request(method.clone(), &path).bearer_auth(&sam.access_token);
        if operation.secured {
            seen.expect(template, app.request(method.clone(), &path), StatusCode::UNAUTHORIZED).await;
        } else {
            // A public operation answers without a token (whatever it answers).
            let (status, _) = seen.send(template, app.request(method.clone(), &path)).await;
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {template} is documented as public");
        }
        if operation.has_body {
            let json = |body: &str| call().header("content-type", "application/json").body(body.to_owned());
            seen.expect(template, json("{"), StatusCode::BAD_REQUEST).await;
            seen.expect(template, json("[]"), StatusCode::UNPROCESSABLE_ENTITY).await;
            seen.expect(template, call().body("{}"), StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
            let big = format!(r#"{{"padding":"{}"}}"#, "x".repeat(5000));
            seen.expect(template, json(&big), StatusCode::PAYLOAD_TOO_LARGE).await;
        }
    }

    accounts(&app, &mut seen).await;
    account_mail(&app, &smtp, &mut seen).await;
    sync(&app, &sam, &mut seen).await;
    let sam = program(&app, &sam, &mut seen).await;
    push(&app, &fake, &sam, &mut seen).await;
    reminders_and_reflections(&app, &sam, &mut seen).await;
    notification_settings(&app, &mut seen).await;
    partners(&app, &mut seen).await;
    operations(&app, &mut seen).await;

    let mut undocumented = vec![];
    for (method, template, status) in &seen.0 {
        let listed = documented.get(&(method.clone(), template.clone())).is_some_and(|o| o.statuses.contains(status));
        if !listed {
            undocumented.push(format!("{method} {template} answered {status}"));
        }
    }
    assert!(undocumented.is_empty(), "answers the document does not list: {undocumented:#?}");

    let mut never_shown = vec![];
    for ((method, template), operation) in &documented {
        for status in &operation.statuses {
            let shown = seen.0.contains(&(method.clone(), template.clone(), *status));
            let excused = NOT_DRIVEN_HERE.iter().any(|(m, t, s, _)| m == method && t == template && s == status);
            assert!(
                !(shown && excused),
                "{method} {template} {status} is driven here now: drop it from NOT_DRIVEN_HERE"
            );
            if !shown && !excused {
                never_shown.push(format!("{method} {template} {status}"));
            }
        }
    }
    assert!(never_shown.is_empty(), "documented, never answered: {never_shown:#?}");
    for (method, template, status, _) in NOT_DRIVEN_HERE {
        let listed =
            documented.get(&(method.to_owned(), template.to_owned())).is_some_and(|o| o.statuses.contains(&status));
        assert!(listed, "{method} {template} {status} is excused but not documented");
    }
    app.stop().await;
}

async fn accounts(app: &TestApp, seen: &mut Seen) {
    let register = "/v1/auth/register";
    let new_account = |email: &str| json!({"email": email, "password": attune_tests::PASSWORD, "display_name": "Alex", "timezone": "Europe/Berlin"});
    let body =
        seen.expect(register, app.post(register).json(&new_account("alex@example.org")), StatusCode::CREATED).await;
    let alex = TestUser::from_token_response("alex@example.org", &body);
    seen.expect(register, app.post(register).json(&new_account("alex@example.org")), StatusCode::CONFLICT).await;

    let login = "/v1/auth/login";
    let credentials = json!({"email": "alex@example.org", "password": attune_tests::PASSWORD});
    seen.expect(login, app.post(login).json(&credentials), StatusCode::OK).await;
    let wrong = json!({"email": "alex@example.org", "password": "not the passphrase"});
    let mut throttled = false;
    for _ in 0..6 {
        let (status, _) = seen.send(login, app.post(login).json(&wrong)).await;
        throttled |= status == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(throttled, "five failures lock sign-in");

    let refresh = "/v1/auth/refresh";
    let token = json!({"refresh_token": alex.refresh_token});
    seen.expect(refresh, app.post(refresh).json(&token), StatusCode::OK).await;
    seen.expect(refresh, app.post(refresh).json(&json!({"refresh_token": "nope"})), StatusCode::UNAUTHORIZED).await;

    let me = "/v1/me";
    let bearer = |request: RequestBuilder| request.bearer_auth(&alex.access_token);
    seen.expect(me, bearer(app.get(me)), StatusCode::OK).await;
    seen.expect(me, bearer(app.request(Method::PATCH, me)).json(&json!({"display_name": "Al"})), StatusCode::OK).await;
    seen.expect(
        me,
        bearer(app.request(Method::PATCH, me)).json(&json!({"display_name": ""})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Alex's sign-in is locked by the failures above: a password given to
    // re-authenticate waits too.
    let password = json!({"password": attune_tests::PASSWORD});
    let reauth = "/v1/auth/reauth";
    let change = "/v1/me/password";
    let new_password =
        json!({"current_password": attune_tests::PASSWORD, "new_password": "a new and longer passphrase"});
    seen.expect(reauth, bearer(app.post(reauth)).json(&password), StatusCode::TOO_MANY_REQUESTS).await;
    let new_email = json!({"email": "alex.new@example.org", "password": attune_tests::PASSWORD});
    seen.expect(me, bearer(app.request(Method::PATCH, me)).json(&new_email), StatusCode::TOO_MANY_REQUESTS).await;
    seen.expect(me, bearer(app.request(Method::DELETE, me)).json(&password), StatusCode::TOO_MANY_REQUESTS).await;
    seen.expect(change, bearer(app.post(change)).json(&new_password), StatusCode::TOO_MANY_REQUESTS).await;

    // Jo re-authenticates, changes email and password, and signs other devices out.
    let jo = app.register("jo@example.org").await;
    let jo_elsewhere = app.sign_in_again(&jo).await;
    let bearer = |request: RequestBuilder| request.bearer_auth(&jo.access_token);
    let guess = json!({"password": "not the passphrase"});
    seen.expect(reauth, bearer(app.post(reauth)).json(&guess), StatusCode::UNAUTHORIZED).await;
    let issued = seen.expect(reauth, bearer(app.post(reauth)).json(&password), StatusCode::OK).await;
    let reauth_token = issued["reauth_token"].as_str().unwrap().to_owned();
    let export = "/v1/me/export";
    seen.expect(export, bearer(app.get(export)), StatusCode::UNAUTHORIZED).await;
    seen.expect(export, bearer(app.get(export)).header("x-reauth-token", &reauth_token), StatusCode::OK).await;
    let taken = json!({"email": "alex@example.org", "password": attune_tests::PASSWORD});
    seen.expect(me, bearer(app.request(Method::PATCH, me)).json(&taken), StatusCode::CONFLICT).await;
    let jo_new = json!({"email": "jo.new@example.org"});
    seen.expect(me, bearer(app.request(Method::PATCH, me)).json(&jo_new), StatusCode::UNAUTHORIZED).await;
    let wrong_current =
        json!({"current_password": "not the passphrase", "new_password": "a new and longer passphrase"});
    seen.expect(change, bearer(app.post(change)).json(&wrong_current), StatusCode::UNAUTHORIZED).await;
    let weak = json!({"current_password": attune_tests::PASSWORD, "new_password": "short"});
    seen.expect(change, bearer(app.post(change)).json(&weak), StatusCode::UNPROCESSABLE_ENTITY).await;

    let sessions = "/v1/me/sessions";
    let one = "/v1/me/sessions/{id}";
    let listed = seen.expect(sessions, bearer(app.get(sessions)), StatusCode::OK).await;
    let other =
        listed.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let end = |id: &str| bearer(app.request(Method::DELETE, &format!("/v1/me/sessions/{id}")));
    seen.expect(one, end(&other), StatusCode::NO_CONTENT).await;
    seen.expect(one, end(&other), StatusCode::NOT_FOUND).await;
    seen.expect(sessions, bearer(app.request(Method::DELETE, sessions)), StatusCode::NO_CONTENT).await;
    assert_eq!(
        app.get(me).bearer_auth(&jo_elsewhere.access_token).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    seen.expect(change, bearer(app.post(change)).json(&new_password), StatusCode::NO_CONTENT).await;

    seen.expect(me, bearer(app.request(Method::DELETE, me)), StatusCode::UNAUTHORIZED).await;
    seen.expect(
        me,
        bearer(app.request(Method::DELETE, me)).header("x-reauth-token", &reauth_token),
        StatusCode::ACCEPTED,
    )
    .await;

    let robin = app.register("robin@example.org").await;
    seen.expect(
        "/v1/auth/logout",
        app.post("/v1/auth/logout").bearer_auth(&robin.access_token),
        StatusCode::NO_CONTENT,
    )
    .await;
}

async fn account_mail(app: &TestApp, smtp: &FakeSmtp, seen: &mut Seen) {
    let request = "/v1/auth/password-reset";
    let confirm = "/v1/auth/password-reset/confirm";
    let verify = "/v1/auth/verify-email";
    app.register("mo@example.org").await;
    let verification = smtp.wait_for("mo@example.org", 1).await[0].code().unwrap();
    seen.expect(verify, app.post(verify).json(&json!({"token": verification})), StatusCode::NO_CONTENT).await;
    seen.expect(verify, app.post(verify).json(&json!({"token": verification})), StatusCode::UNPROCESSABLE_ENTITY).await;

    let mo = json!({"email": "mo@example.org"});
    seen.expect(request, app.post(request).json(&mo), StatusCode::ACCEPTED).await;
    let code = smtp.wait_for("mo@example.org", 2).await[1].code().unwrap();
    seen.expect(request, app.post(request).json(&json!({"email": "mo"})), StatusCode::UNPROCESSABLE_ENTITY).await;
    seen.expect(request, app.post(request).json(&mo), StatusCode::ACCEPTED).await;
    seen.expect(request, app.post(request).json(&mo), StatusCode::ACCEPTED).await;
    seen.expect(request, app.post(request).json(&mo), StatusCode::TOO_MANY_REQUESTS).await;

    let weak = json!({"token": code, "new_password": "short"});
    seen.expect(confirm, app.post(confirm).json(&weak), StatusCode::UNPROCESSABLE_ENTITY).await;
    let strong = json!({"token": code, "new_password": "a new and longer passphrase"});
    seen.expect(confirm, app.post(confirm).json(&strong), StatusCode::NO_CONTENT).await;
}

async fn sync(app: &TestApp, sam: &TestUser, seen: &mut Seen) {
    let path = "/v1/sync";
    let bearer = |request: RequestBuilder| request.bearer_auth(&sam.access_token);
    let pulled = seen.expect(path, bearer(app.get(path)), StatusCode::OK).await;
    seen.expect(path, bearer(app.get("/v1/sync?last_pulled_at=yesterday")), StatusCode::UNPROCESSABLE_ENTITY).await;
    let checkin = json!({"id": "c1", "occurred_at": 1_764_000_000_000_i64, "mood": 3, "anxiety": 2, "comfort": 4,
                         "exercise_id": null, "completed": true, "note": null, "tags": null});
    let created = json!({"changes": {"checkins": {"created": [checkin], "updated": [], "deleted": []}}});
    let first = pulled["timestamp"].as_i64().unwrap();
    seen.expect(path, bearer(app.post(&format!("{path}?last_pulled_at={first}"))).json(&created), StatusCode::OK).await;
    // The record changed on the server after this client's last pull: 409.
    let updated = json!({"changes": {"checkins": {"created": [], "updated": [checkin], "deleted": []}}});
    seen.expect(path, bearer(app.post(&format!("{path}?last_pulled_at={first}"))).json(&updated), StatusCode::CONFLICT)
        .await;
}

/// Returns Sam signed in again: the story moves the clock past the access token's life.
async fn program(app: &TestApp, sam: &TestUser, seen: &mut Seen) -> TestUser {
    for (template, path) in [("/v1/programs", "/v1/programs"), ("/v1/programs/{slug}", "/v1/programs/closer")] {
        let response = app.get(path).send().await.unwrap();
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        seen.expect(template, app.get(path), StatusCode::OK).await;
        seen.expect(template, app.get(path).header("if-none-match", etag), StatusCode::NOT_MODIFIED).await;
    }
    seen.expect("/v1/programs/{slug}", app.get("/v1/programs/nothing"), StatusCode::NOT_FOUND).await;

    let bearer = |request: RequestBuilder| request.bearer_auth(&sam.access_token);
    let current = "/v1/enrollments/current";
    let advance = "/v1/enrollments/current/advance";
    let back = "/v1/enrollments/current/step-back";
    seen.expect(current, bearer(app.get(current)), StatusCode::NOT_FOUND).await;
    seen.expect(
        current,
        bearer(app.request(Method::PATCH, current)).json(&json!({"pace": "steady"})),
        StatusCode::NOT_FOUND,
    )
    .await;
    seen.expect(advance, bearer(app.post(advance)), StatusCode::NOT_FOUND).await;
    seen.expect(back, bearer(app.post(back)), StatusCode::NOT_FOUND).await;
    seen.expect("/v1/today", bearer(app.get("/v1/today")), StatusCode::NOT_FOUND).await;

    let enroll = "/v1/enrollments";
    let solo = json!({"program": "closer", "mode": "solo", "pace": "gentle"});
    seen.expect(enroll, bearer(app.post(enroll)).json(&solo), StatusCode::CREATED).await;
    seen.expect(enroll, bearer(app.post(enroll)).json(&solo), StatusCode::CONFLICT).await;
    let unknown = json!({"program": "closer", "mode": "solo", "pace": "sprint"});
    seen.expect(enroll, bearer(app.post(enroll)).json(&unknown), StatusCode::UNPROCESSABLE_ENTITY).await;

    seen.expect(current, bearer(app.get(current)), StatusCode::OK).await;
    let patch = |body: Value| bearer(app.request(Method::PATCH, current)).json(&body);
    seen.expect(current, patch(json!({"pace": "steady"})), StatusCode::OK).await;
    seen.expect(current, patch(json!({"mode": "couple"})), StatusCode::CONFLICT).await;
    seen.expect(current, patch(json!({"pace": "sprint"})), StatusCode::UNPROCESSABLE_ENTITY).await;
    seen.expect(advance, bearer(app.post(advance)), StatusCode::CONFLICT).await;
    seen.expect("/v1/today", bearer(app.get("/v1/today")), StatusCode::OK).await;

    // Practice two exercises of step 1 and give the step its time: advancing works.
    let (_, _, closer) = read(app.get("/v1/programs/closer").send().await.unwrap()).await;
    let now = attune_shared::Clock::now(&app.clock).timestamp_millis();
    let practised: Vec<Value> = closer["steps"][0]["exercises"].as_array().unwrap()[..2]
        .iter()
        .enumerate()
        .map(|(n, e)| {
            json!({"id": format!("p{n}"), "occurred_at": now, "mood": 3, "anxiety": 2, "comfort": 4,
                   "exercise_id": e["id"], "completed": true, "note": null, "tags": ""})
        })
        .collect();
    let changes = json!({"checkins": {"created": practised, "updated": [], "deleted": []}});
    assert_eq!(app.push(sam, Some(0), changes).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::days(8));
    let sam = app.sign_in_again(sam).await;
    let bearer = |request: RequestBuilder| request.bearer_auth(&sam.access_token);
    let moved = seen.expect(advance, bearer(app.post(advance)), StatusCode::OK).await;
    assert_eq!(moved["step"], 2);
    seen.expect(back, bearer(app.post(back)), StatusCode::OK).await;

    seen.expect("/v1/resources", app.get("/v1/resources?country=DE"), StatusCode::OK).await;
    seen.expect("/v1/resources", app.get("/v1/resources?country=Germany"), StatusCode::UNPROCESSABLE_ENTITY).await;
    sam
}

async fn push(app: &TestApp, fake: &FakePushService, sam: &TestUser, seen: &mut Seen) {
    let bearer = |request: RequestBuilder| request.bearer_auth(&sam.access_token);
    let subscriptions = "/v1/push/subscriptions";
    let one = "/v1/push/subscriptions/{id}";
    let test = "/v1/push/test";
    seen.expect("/v1/push/vapid-public-key", app.get("/v1/push/vapid-public-key"), StatusCode::OK).await;
    seen.expect("/v1/push/providers", app.get("/v1/push/providers"), StatusCode::OK).await;
    seen.expect(test, bearer(app.post(test)), StatusCode::CONFLICT).await;
    // This install has not enabled APNs: 409 (tests/tests/native_push.rs drives the rest).
    let iphone = json!({"kind": "apns", "token": "ab".repeat(32), "environment": "production"});
    seen.expect(subscriptions, bearer(app.post(subscriptions)).json(&iphone), StatusCode::CONFLICT).await;

    let phone = fake.new_subscription();
    let created =
        seen.expect(subscriptions, bearer(app.post(subscriptions)).json(&phone.json), StatusCode::CREATED).await;
    seen.expect(subscriptions, bearer(app.post(subscriptions)).json(&phone.json), StatusCode::OK).await;
    let mut bad = phone.json.clone();
    bad["keys"]["p256dh"] = json!("BAAA");
    seen.expect(subscriptions, bearer(app.post(subscriptions)).json(&bad), StatusCode::UNPROCESSABLE_ENTITY).await;
    seen.expect(subscriptions, bearer(app.get(subscriptions)), StatusCode::OK).await;
    seen.expect(test, bearer(app.post(test)), StatusCode::ACCEPTED).await;

    // One device too many.
    let mut answered = StatusCode::CREATED;
    for _ in 0..attune_shared::notifications::MAX_SUBSCRIPTIONS_PER_USER {
        let device = fake.new_subscription();
        (answered, _) = seen.send(subscriptions, bearer(app.post(subscriptions)).json(&device.json)).await;
    }
    assert_eq!(answered, StatusCode::CONFLICT);

    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/push/subscriptions/{id}");
    seen.expect(one, bearer(app.request(Method::DELETE, &path)), StatusCode::NO_CONTENT).await;
    seen.expect(one, bearer(app.request(Method::DELETE, &path)), StatusCode::NOT_FOUND).await;
}

async fn reminders_and_reflections(app: &TestApp, sam: &TestUser, seen: &mut Seen) {
    let bearer = |request: RequestBuilder| request.bearer_auth(&sam.access_token);
    let settings = "/v1/reminders/settings";
    seen.expect(settings, bearer(app.get(settings)), StatusCode::OK).await;
    let chosen = json!({"enabled": true, "days": ["mon", "thu"], "window": {"start": "18:00", "end": "20:00"},
                        "quiet_hours": {"start": "22:00", "end": "07:00"}, "descriptive": false, "paused_until": null});
    seen.expect(settings, bearer(app.request(Method::PUT, settings)).json(&chosen), StatusCode::OK).await;
    let opened = format!("/v1/reminders/{}/opened", uuid::Uuid::now_v7());
    seen.expect("/v1/reminders/{delivery_id}/opened", bearer(app.post(&opened)), StatusCode::NOT_FOUND).await;

    seen.expect("/v1/reflections", bearer(app.get("/v1/reflections")), StatusCode::OK).await;
    seen.expect("/v1/reflections", bearer(app.get("/v1/reflections?limit=0")), StatusCode::UNPROCESSABLE_ENTITY).await;
    let week = "/v1/reflections/{week_start}";
    seen.expect(week, bearer(app.get("/v1/reflections/2026-11-16")), StatusCode::NOT_FOUND).await;
    seen.expect(week, bearer(app.get("/v1/reflections/2026-11-17")), StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn notification_settings(app: &TestApp, seen: &mut Seen) {
    let casey = app.register("casey@example.org").await;
    let bearer = |request: RequestBuilder| request.bearer_auth(&casey.access_token);
    let settings = "/v1/notifications/settings";
    seen.expect(settings, bearer(app.get(settings)), StatusCode::OK).await;
    let choices = json!({"reminders": true, "reflections": false, "quiet_hours": {"start": "22:00", "end": "07:00"},
                         "paused_until": null, "descriptive": false});
    seen.expect(settings, bearer(app.request(Method::PUT, settings)).json(&choices), StatusCode::OK).await;
    seen.expect(
        settings,
        bearer(app.request(Method::PUT, settings)).json(&json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // A stored row that no longer parses: every reader of it answers 409.
    let backend = app.db.get_database_backend();
    let broken = Statement::from_sql_and_values(
        backend,
        "UPDATE notification_settings SET settings = $1 WHERE user_id = $2",
        vec![r#"{"reminders": tru"#.into(), casey.uuid().into()],
    );
    assert_eq!(app.db.execute_raw(broken).await.unwrap().rows_affected(), 1);
    seen.expect(settings, bearer(app.get(settings)), StatusCode::CONFLICT).await;
    let reminders = "/v1/reminders/settings";
    seen.expect(reminders, bearer(app.get(reminders)), StatusCode::CONFLICT).await;
    let plan = json!({"days": ["tue"], "window": {"start": "18:00", "end": "20:00"}});
    seen.expect(reminders, bearer(app.request(Method::PUT, reminders)).json(&plan), StatusCode::CONFLICT).await;
    let descriptive = json!({"descriptive_notifications": true});
    seen.expect("/v1/me", bearer(app.request(Method::PATCH, "/v1/me")).json(&descriptive), StatusCode::CONFLICT).await;
}

async fn partners(app: &TestApp, seen: &mut Seen) {
    let (ana, ben) = (app.register("ana@example.org").await, app.register("ben@example.org").await);
    let as_ana = |request: RequestBuilder| request.bearer_auth(&ana.access_token);
    let as_ben = |request: RequestBuilder| request.bearer_auth(&ben.access_token);
    let (invitations, preview, accept) =
        ("/v1/partner/invitations", "/v1/partner/invitations/{code}", "/v1/partner/invitations/{code}/accept");
    let partner = "/v1/partner";
    seen.expect(partner, as_ana(app.get(partner)), StatusCode::NOT_FOUND).await;
    seen.expect(invitations, as_ana(app.request(Method::DELETE, invitations)), StatusCode::NO_CONTENT).await;
    let created = seen.expect(invitations, as_ana(app.post(invitations)), StatusCode::CREATED).await;
    let code = created["code"].as_str().unwrap();
    let at = |template: &str| template.replace("{code}", code);
    seen.expect(preview, as_ben(app.get(&at(preview))), StatusCode::OK).await;
    seen.expect(accept, as_ana(app.post(&at(accept))), StatusCode::UNPROCESSABLE_ENTITY).await;
    seen.expect(accept, as_ben(app.post(&at(accept))), StatusCode::CREATED).await;
    seen.expect(accept, as_ben(app.post(&at(accept))), StatusCode::NOT_FOUND).await;
    seen.expect(invitations, as_ben(app.post(invitations)), StatusCode::CONFLICT).await;
    let cy = app.register("cy@example.org").await;
    let cys = seen.expect(invitations, app.post(invitations).bearer_auth(&cy.access_token), StatusCode::CREATED).await;
    let cys = accept.replace("{code}", cys["code"].as_str().unwrap());
    seen.expect(accept, as_ben(app.post(&cys)), StatusCode::CONFLICT).await;
    seen.expect(partner, as_ana(app.get(partner)), StatusCode::OK).await;
    seen.expect(partner, as_ana(app.request(Method::DELETE, partner)), StatusCode::NO_CONTENT).await;
    // Guessing: ten unknown codes an hour (the used one is the first), then 429.
    for _ in 0..9 {
        seen.expect(preview, as_ben(app.get(&at(preview))), StatusCode::NOT_FOUND).await;
    }
    seen.expect(preview, as_ben(app.get(&at(preview))), StatusCode::TOO_MANY_REQUESTS).await;
    seen.expect(accept, as_ben(app.post(&cys)), StatusCode::TOO_MANY_REQUESTS).await;
}

async fn operations(app: &TestApp, seen: &mut Seen) {
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        seen.expect(path, app.get(path), StatusCode::OK).await;
    }
    seen.expect("/docs/{file}", app.get("/docs/swagger-ui-bundle.js"), StatusCode::OK).await;
    seen.expect("/docs/{file}", app.get("/docs/nothing.js"), StatusCode::NOT_FOUND).await;
}
