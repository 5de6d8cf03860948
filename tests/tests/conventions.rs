//! The conventions every endpoint follows: problem+json errors, request ids,
//! security headers, limits, operations endpoints and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration tests")]

use attune_tests::{TestApp, expect_problem, problem_fields, read};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/v1/nothing-here").send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let wrong = app.request(Method::PUT, "/v1/auth/login").send().await.unwrap();
    assert_eq!(wrong.headers()["allow"], "POST");
    expect_problem(wrong, StatusCode::METHOD_NOT_ALLOWED).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_clear_problems_never_a_500() {
    let app = TestApp::spawn().await;
    let cases: [(&str, Option<&str>, StatusCode); 6] = [
        ("{not json", Some("application/json"), StatusCode::BAD_REQUEST),
        (r#"{"email":"a@b.org"}"#, None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (r#"{"email":"a@b.org","password":12}"#, Some("application/json"), StatusCode::UNPROCESSABLE_ENTITY),
        ("[]", Some("application/json"), StatusCode::UNPROCESSABLE_ENTITY),
        ("", Some("application/json"), StatusCode::BAD_REQUEST),
        ("\u{0}\u{1}\u{2}", Some("application/json"), StatusCode::BAD_REQUEST),
    ];
    for (body, content_type, status) in cases {
        let mut request = app.post("/v1/auth/login").body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let problem = expect_problem(request.send().await.unwrap(), status).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY && body.contains("12") {
            assert_eq!(problem_fields(&problem), ["password"], "{problem}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 1024).await;
    let big = format!(r#"{{"email":"{}@example.org","password":"x"}}"#, "a".repeat(4096));
    let response =
        app.post("/v1/auth/login").header("content-type", "application/json").body(big).send().await.unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    app.stop().await;
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_always_returned() {
    let app = TestApp::spawn().await;
    let kept = app.get("/healthz").header("x-request-id", "client-abc.123").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-abc.123");
    let made = app.get("/healthz").send().await.unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let unsafe_id = app.get("/healthz").header("x-request-id", "evil id\twith spaces").send().await.unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "evil id\twith spaces");
    let on_error = app.get("/nope").header("x-request-id", "err-1").send().await.unwrap();
    assert_eq!(on_error.headers()["x-request-id"], "err-1");
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/v1/me", "/missing"] {
        let response = app.get(path).send().await.unwrap();
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'none'"), "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::spawn_with(|s| s.cors_origins = vec!["https://app.example.org".into()]).await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/v1/me")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example.org").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.org");
    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let (status, _, body) = read(app.get("/healthz").send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, _, body) = read(app.get("/readyz").send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));

    let user = app.register("metrics@example.org").await;
    app.get("/v1/me").bearer_auth(&user.access_token).send().await.unwrap();
    let metrics = app.get("/metrics").send().await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    let counted = text.lines().any(|l| {
        l.starts_with("http_requests_total{")
            && l.contains(r#"route="/v1/me""#)
            && l.contains(r#"status="200""#)
            && l.contains(r#"method="GET""#)
    });
    assert!(counted, "no request count for GET /v1/me:\n{text}");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "no latency histogram:\n{text}");
    app.stop().await;
}

#[tokio::test]
async fn the_service_refuses_to_start_without_its_database() {
    let app = TestApp::spawn().await;
    let mut settings = app.settings.clone();
    settings.database_url = Some(attune_shared::secrets::Secret::new("postgres://nobody@127.0.0.1:1/none"));
    let options = attune_api::BuildOptions {
        clock: std::sync::Arc::new(app.clock.clone()),
        migrate: true,
        worker: attune_api::WorkerMode::None,
    };
    let error = attune_api::Application::build(settings, options).await.err().expect("must not start");
    assert!(error.to_string().contains("database"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let app = TestApp::spawn().await;
    let (status, _, doc) = read(app.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let expected = [
        ("post", "/v1/auth/register"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("get", "/v1/me"),
        ("patch", "/v1/me"),
        ("delete", "/v1/me"),
        ("get", "/v1/me/export"),
        ("post", "/v1/me/password"),
        ("get", "/v1/me/sessions"),
        ("delete", "/v1/me/sessions"),
        ("delete", "/v1/me/sessions/{id}"),
        ("post", "/v1/auth/reauth"),
        ("get", "/v1/sync"),
        ("post", "/v1/sync"),
        ("get", "/v1/programs"),
        ("get", "/v1/programs/{slug}"),
        ("post", "/v1/enrollments"),
        ("get", "/v1/enrollments/current"),
        ("patch", "/v1/enrollments/current"),
        ("post", "/v1/enrollments/current/advance"),
        ("post", "/v1/enrollments/current/step-back"),
        ("get", "/v1/today"),
        ("get", "/v1/resources"),
        ("get", "/v1/notifications/settings"),
        ("put", "/v1/notifications/settings"),
        ("get", "/v1/reminders/settings"),
        ("put", "/v1/reminders/settings"),
        ("post", "/v1/reminders/{delivery_id}/opened"),
        ("post", "/v1/partner/invitations"),
        ("delete", "/v1/partner/invitations"),
        ("get", "/v1/partner/invitations/{code}"),
        ("post", "/v1/partner/invitations/{code}/accept"),
        ("get", "/v1/partner"),
        ("delete", "/v1/partner"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ];
    for (method, path) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing from the OpenAPI document");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
    }
    let secured = &doc["paths"]["/v1/me"]["get"];
    assert!(secured["security"].is_array());
    assert!(secured["responses"]["401"]["content"]["application/problem+json"].is_object());
    for schema in ["Problem", "TokenResponse", "RegisterRequest", "UserView", "FieldError"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The old homes of the notification choices stay for one release, marked so.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("UserView", "descriptive_notifications"),
        ("ProfileUpdate", "descriptive_notifications"),
        ("ReminderSettings", "descriptive"),
        ("ReminderSettings", "enabled"),
        ("ReminderSettings", "quiet_hours"),
        ("ReminderSettings", "paused_until"),
        ("ReminderSettingsInput", "descriptive"),
        ("ReminderSettingsInput", "enabled"),
        ("ReminderSettingsInput", "quiet_hours"),
        ("ReminderSettingsInput", "paused_until"),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(property["deprecated"], true, "{schema}.{field} deprecated: {property}");
    }
    assert_eq!(doc["info"]["license"]["identifier"], "AGPL-3.0-only");
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));

    // What a client generator relies on, for every operation.
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(operation_ids.insert(id.to_owned()), "{method} {path}: operationId {id} is used twice");
            assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
            assert!(op["security"].is_array(), "{method} {path}: security not declared (public: [])");
            if let Some(body) = op.get("requestBody") {
                let example = &body["content"]["application/json"]["example"];
                assert!(example.is_object(), "{method} {path}: no request body example");
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let response = match response["$ref"].as_str() {
                    Some(reference) => &doc["components"]["responses"][reference.rsplit('/').next().unwrap()],
                    None => response,
                };
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {status}");
                if status.starts_with('4') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is not documented as problem+json"
                    );
                }
            }
        }
    }

    // The sync change set names every synced table with its columns.
    for table in &attune_shared::sync::tables::TABLES {
        let changes = &doc["components"]["schemas"]["Changes"]["properties"][table.name];
        let name = changes["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        let record = doc["components"]["schemas"][name]["properties"]["created"]["items"]["$ref"].as_str().unwrap();
        let record = &doc["components"]["schemas"][record.rsplit('/').next().unwrap()];
        for column in table.columns {
            assert!(record["properties"][column.name].is_object(), "{}.{} undocumented", table.name, column.name);
        }
    }

    // Swagger UI, from the binary, under its own narrow CSP.
    let docs = app.get("/docs").send().await.unwrap();
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = docs.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = docs.text().await.unwrap();
    assert!(html.contains(r#"<base href="/docs/">"#) && html.contains("swagger-ui-bundle.js"), "{html}");
    let script = app.get("/docs/swagger-initializer.js").send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains(r#""url": "/openapi.json""#));
    app.stop().await;
}

#[tokio::test]
async fn attune_api_openapi_prints_the_served_document() {
    let app = TestApp::spawn().await;
    let (_, _, served) = read(app.get("/openapi.json").send().await.unwrap()).await;
    assert_eq!(attune_api::openapi::document().unwrap(), served);
    app.stop().await;
}

#[tokio::test]
async fn every_documented_route_answers_without_a_server_error() {
    // A crude fuzz: every documented operation, called with no token and with a
    // junk body, must answer with a 2xx or a 4xx problem, never a 5xx, and only
    // with a status its documentation lists.
    let app = TestApp::spawn().await;
    let (_, _, doc) = read(app.get("/openapi.json").send().await.unwrap()).await;
    let paths = doc["paths"].as_object().unwrap().clone();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            let method: Method = method.to_uppercase().parse().unwrap();
            for body in ["", "{}", r#"{"x":[1,2,{"y":null}]}"#, "\"str\""] {
                let response = app
                    .request(method.clone(), &path)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(!status.is_server_error(), "{method} {path} with {body:?} answered {status}");
                assert!(
                    documented.iter().any(|d| d.as_str() == status.as_str()),
                    "{method} {path} with {body:?} answered {status}, which its documentation does not list: {documented:?}"
                );
                if status.is_client_error() {
                    let ct = response.headers()["content-type"].to_str().unwrap().to_owned();
                    assert_eq!(ct, "application/problem+json", "{method} {path}");
                    let _: Value = response.json().await.unwrap();
                }
            }
        }
    }
    app.stop().await;
}
