use std::sync::OnceLock;

use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use uuid::Uuid;

use super::*;
use crate::{
    push::{PushKind, PushPayload, Topic, Urgency},
    secrets::Secret,
};

fn pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    })
}

fn account() -> serde_json::Value {
    json!({
        "type": "service_account", "project_id": "attune-prod", "private_key_id": "abc123",
        "private_key": pem(), "client_email": "push@attune-prod.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
}

fn config_of(account: &serde_json::Value) -> Result<Option<FcmConfig>, NativePushError> {
    let mut settings = Settings::from_args(Vec::<String>::new()).unwrap();
    settings.fcm_service_account = Some(Secret::new(account.to_string()));
    FcmConfig::from_settings(&settings, &PushPolicy::from_settings(&settings))
}

#[test]
fn a_downloaded_service_account_is_accepted_with_the_default_hosts() {
    let config = config_of(&account()).unwrap().unwrap();
    assert_eq!(config.project_id(), "attune-prod");
    assert!(!format!("{config:?}").contains("PRIVATE"), "no key in Debug");
    assert!(
        FcmConfig::from_settings(&Settings::from_args(Vec::<String>::new()).unwrap(), &PushPolicy::new(&[], false))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_broken_service_account_is_refused_naming_the_setting_and_the_field() {
    let mut cases = vec![];
    for field in ["project_id", "client_email", "private_key", "token_uri"] {
        let mut broken = account();
        broken.as_object_mut().unwrap().remove(field);
        cases.push((broken, format!("has no `{field}`")));
    }
    let mut other = account();
    other["type"] = json!("authorized_user");
    cases.push((other, "is not a service account key".into()));
    let mut key = account();
    key["private_key"] = json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    cases.push((key, "not a PKCS#8 RSA key".into()));
    let mut elsewhere = account();
    elsewhere["token_uri"] = json!("https://tokens.evil.example/token");
    cases.push((elsewhere, "token_uri".into()));
    for (broken, expected) in cases {
        let error = config_of(&broken).unwrap_err().to_string();
        assert!(error.starts_with("ATTUNE_FCM_SERVICE_ACCOUNT is invalid") && error.contains(&expected), "{error}");
    }
    let mut settings = Settings::from_args(["--fcm-endpoint", "https://fcm.googleapis.com"]).unwrap();
    let policy = PushPolicy::from_settings(&settings);
    assert!(matches!(FcmConfig::from_settings(&settings, &policy), Err(NativePushError::Partial { .. })));
    settings.fcm_service_account = Some(Secret::new("{not json"));
    assert!(matches!(FcmConfig::from_settings(&settings, &policy), Err(NativePushError::Invalid(ACCOUNT, _))));
}

fn error(code: &str, token_violation: bool) -> serde_json::Value {
    let mut details = vec![json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code})];
    if token_violation {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}]}));
    }
    json!({"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "X", "details": details}})
}

#[test]
fn google_answers_map_to_outcomes() {
    let after = Some(Duration::from_secs(3));
    assert_eq!(classify(StatusCode::OK, &json!({"name": "x"}), None), SendOutcome::Delivered);
    assert_eq!(classify(StatusCode::NOT_FOUND, &error("UNREGISTERED", false), None), SendOutcome::Gone);
    assert_eq!(classify(StatusCode::BAD_REQUEST, &error("INVALID_ARGUMENT", true), None), SendOutcome::Gone);
    let about_us = classify(StatusCode::BAD_REQUEST, &error("INVALID_ARGUMENT", false), None);
    assert_eq!(
        about_us,
        SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST)),
        "our mistake keeps the device"
    );
    let wrong_project = classify(StatusCode::NOT_FOUND, &json!({"error": {"status": "NOT_FOUND"}}), None);
    assert_eq!(wrong_project, SendOutcome::Rejected(Rejection::Status(StatusCode::NOT_FOUND)), "keeps every device");
    assert!(matches!(
        classify(StatusCode::FORBIDDEN, &error("SENDER_ID_MISMATCH", false), None),
        SendOutcome::Rejected(Rejection::ProviderAuth { service: DeviceKind::Fcm, .. })
    ));
    for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE, StatusCode::INTERNAL_SERVER_ERROR] {
        assert_eq!(classify(status, &error("QUOTA_EXCEEDED", false), after), SendOutcome::Retry { after });
    }
}

#[test]
fn the_message_has_string_data_a_ttl_and_the_topic_as_collapse_key() {
    let payload = PushPayload {
        r#type: PushKind::Reflection,
        title: "A moment to look back".into(),
        body: "Ready.".into(),
        url: "/reflections".into(),
        delivery_id: Some(Uuid::nil()),
    };
    let message = PushMessage::new(payload, 86_400, Urgency::Low).with_topic(Topic::parse("reflection").unwrap());
    assert_eq!(
        request_body("tok", &message),
        json!({"message": {
            "token": "tok",
            "notification": {"title": "A moment to look back", "body": "Ready."},
            "data": {"type": "reflection", "url": "/reflections", "delivery_id": Uuid::nil().to_string()},
            "android": {"ttl": "86400s", "priority": "normal", "collapse_key": "reflection"},
        }})
    );
    let mut bare = PushMessage { topic: None, ..message };
    bare.payload.delivery_id = None;
    let body = request_body("tok", &bare);
    assert!(
        body["message"]["data"].get("delivery_id").is_none()
            && body["message"]["android"].get("collapse_key").is_none()
    );
}
