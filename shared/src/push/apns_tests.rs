use std::collections::HashSet;

use jsonwebtoken::{DecodingKey, Validation};
use p256::{
    elliptic_curve::{rand_core::OsRng, sec1::ToEncodedPoint},
    pkcs8::LineEnding,
};
use uuid::Uuid;

use super::*;
use crate::{
    push::{PushKind, PushPayload, Topic},
    secrets::Secret,
};

fn p8() -> (String, p256::SecretKey) {
    let key = p256::SecretKey::random(&mut OsRng);
    (key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(), key)
}

fn settings(args: &[&str]) -> Settings {
    Settings::from_args(args.iter().copied()).unwrap()
}

fn complete(pem: &str) -> Settings {
    let mut s =
        settings(&["--apns-key-id", "KEY1234567", "--apns-team-id", "TEAM123456", "--apns-topic", "org.attune.app"]);
    s.apns_key = Some(Secret::new(pem));
    s
}

fn config(settings: &Settings) -> Result<Option<ApnsConfig>, NativePushError> {
    ApnsConfig::from_settings(settings, &PushPolicy::from_settings(settings))
}

#[test]
fn nothing_set_is_apns_off_and_a_partial_configuration_names_what_is_missing() {
    assert!(config(&settings(&[])).unwrap().is_none());
    let error = config(&settings(&["--apns-key-id", "KEY1234567"])).unwrap_err();
    assert_eq!(
        error,
        NativePushError::Partial {
            service: "APNs",
            missing: vec!["ATTUNE_APNS_KEY", "ATTUNE_APNS_TEAM_ID", "ATTUNE_APNS_TOPIC"],
            all: &APNS_SETTINGS
        }
    );
    let text = error.to_string();
    assert!(text.contains("ATTUNE_APNS_KEY, ATTUNE_APNS_TEAM_ID, ATTUNE_APNS_TOPIC not set"), "{text}");
    let endpoint_alone = config(&settings(&["--apns-endpoint", "https://api.push.apple.com"])).unwrap_err();
    assert!(matches!(endpoint_alone, NativePushError::Partial { .. }));
}

#[test]
fn a_partial_configuration_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&["--data-dir", dir.path().to_str().unwrap(), "--apns-topic", "org.attune.app"]);
    s.database_url = None;
    s.redis_url = None;
    let error = crate::secrets::Secrets::resolve(&s).unwrap_err().to_string();
    assert!(error.contains("APNs is only partly configured") && error.contains("ATTUNE_APNS_KEY_ID"), "{error}");
}

#[test]
fn a_complete_configuration_checks_the_key_and_the_hosts() {
    let (pem, _) = p8();
    let apns = config(&complete(&pem)).unwrap().unwrap();
    assert_eq!(apns.topic(), "org.attune.app");
    assert!(!format!("{apns:?}").contains("PRIVATE"), "no key in Debug");
    // A PEM squeezed onto one line with `\n` escapes, as env files carry it.
    assert!(config(&complete(&pem.replace('\n', "\\n"))).unwrap().is_some());
    let error = config(&complete("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")).unwrap_err();
    assert!(matches!(error, NativePushError::Invalid("ATTUNE_APNS_KEY", _)), "{error}");

    let mut relay = complete(&pem);
    relay.apns_endpoint = Some("https://apns-relay.internal.example".into());
    let error = config(&relay).unwrap_err();
    assert!(matches!(error, NativePushError::Invalid("ATTUNE_APNS_ENDPOINT", _)), "{error}");
    relay.push_allowed_hosts.push("apns-relay.internal.example".into());
    assert!(config(&relay).unwrap().is_some());

    let mut narrow = complete(&pem);
    narrow.push_allowed_hosts = vec!["fcm.googleapis.com".into()];
    assert_eq!(config(&narrow).unwrap_err(), NativePushError::HostNotAllowed("api.push.apple.com".into()));
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    iat: i64,
}

#[test]
fn the_provider_token_is_es256_signed_cached_and_renewed_after_fifty_minutes() {
    let (pem, key) = p8();
    let s = complete(&pem);
    let client = ApnsClient::new(config(&s).unwrap().unwrap(), PushPolicy::from_settings(&s), vec![]).unwrap();
    let start = Utc::now();
    let first = client.authorization(start).unwrap();
    assert_eq!(client.authorization(start + ChronoDuration::minutes(49)).unwrap(), first);
    let renewed = client.authorization(start + ChronoDuration::minutes(50)).unwrap();
    assert_ne!(renewed, first);

    let jwt = first.to_str().unwrap().strip_prefix("bearer ").unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!((header.alg, header.kid.as_deref()), (Algorithm::ES256, Some("KEY1234567")));
    let point = key.public_key().to_encoded_point(false);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decoding =
        DecodingKey::from_ec_components(&b64.encode(point.x().unwrap()), &b64.encode(point.y().unwrap())).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims = HashSet::new();
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Claims>(jwt, &decoding, &validation).unwrap().claims;
    assert_eq!((claims.iss.as_str(), claims.iat), ("TEAM123456", start.timestamp()));
}

#[test]
fn apple_answers_map_to_outcomes() {
    let after = Some(std::time::Duration::from_secs(7));
    assert_eq!(classify(StatusCode::OK, "", None), SendOutcome::Delivered);
    assert_eq!(classify(StatusCode::GONE, "Unregistered", None), SendOutcome::Gone);
    for reason in ["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"] {
        assert_eq!(classify(StatusCode::BAD_REQUEST, reason, None), SendOutcome::Gone, "{reason}");
    }
    for reason in ["BadTopic", "PayloadTooLarge", ""] {
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, reason, None),
            SendOutcome::Rejected(Rejection::Status(StatusCode::BAD_REQUEST)),
            "a mistake of ours costs no device: {reason}"
        );
    }
    assert_eq!(
        classify(StatusCode::FORBIDDEN, "ExpiredProviderToken", None),
        SendOutcome::Rejected(Rejection::ProviderAuth {
            service: DeviceKind::Apns,
            reason: "ExpiredProviderToken".into()
        })
    );
    for status in [StatusCode::TOO_MANY_REQUESTS, StatusCode::INTERNAL_SERVER_ERROR, StatusCode::SERVICE_UNAVAILABLE] {
        assert_eq!(classify(status, "", after), SendOutcome::Retry { after }, "{status}");
    }
}

#[test]
fn the_body_carries_the_alert_and_the_apps_keys_and_the_headers_follow_the_message() {
    let payload = PushPayload {
        r#type: PushKind::Reminder,
        title: "A moment for you".into(),
        body: "Ready when you are.".into(),
        url: "/today".into(),
        delivery_id: Some(Uuid::nil()),
    };
    let message = PushMessage::new(payload, 3600, Urgency::Low).with_topic(Topic::parse("reminder").unwrap());
    assert_eq!(
        request_body(&message),
        serde_json::json!({"aps": {"alert": {"title": "A moment for you", "body": "Ready when you are."}},
            "type": "reminder", "url": "/today", "delivery_id": Uuid::nil()})
    );
    let sent: Value = serde_json::from_slice(&serde_json::to_vec(&RequestBody::of(&message)).unwrap()).unwrap();
    assert_eq!(sent, request_body(&message), "what is sent is the body above");
    let anonymous =
        PushMessage { payload: PushPayload { delivery_id: None, ..message.payload.clone() }, ..message.clone() };
    let sent: Value = serde_json::from_slice(&serde_json::to_vec(&RequestBody::of(&anonymous)).unwrap()).unwrap();
    assert_eq!(sent, request_body(&anonymous));
    assert!(sent.get("delivery_id").is_none());
    let now = Utc::now();
    assert_eq!(expiration(&message, now), now.timestamp() + 3600);
    assert_eq!(expiration(&PushMessage { ttl_secs: 0, ..message.clone() }, now), 0);
    assert_eq!((priority(Urgency::Low), priority(Urgency::Normal), priority(Urgency::High)), ("5", "5", "10"));
}
