use serde_json::{Value, json};

use super::*;

const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const ENDPOINT: &str = "https://fcm.googleapis.com/fcm/send/dY3:APA91bF";

fn policy() -> PushPolicy {
    PushPolicy::new(&["fcm.googleapis.com".into(), "*.push.apple.com".into()], false)
}

fn browser_json() -> Value {
    json!({
        "endpoint": ENDPOINT,
        "expirationTime": null,
        "keys": {"p256dh": P256DH, "auth": AUTH},
    })
}

fn parse(value: Value) -> Result<ValidSubscription, ValidationErrors> {
    let json: PushSubscriptionJson = serde_json::from_value(value).unwrap();
    ValidSubscription::parse(&json, &policy())
}

fn error_fields(value: Value) -> Vec<String> {
    parse(value).unwrap_err().0.into_iter().map(|e| e.field).collect()
}

#[test]
fn a_browser_subscription_is_accepted() {
    let subscription = parse(browser_json()).unwrap();
    assert_eq!(subscription.endpoint().as_str(), ENDPOINT);
    assert_eq!(subscription.host(), "fcm.googleapis.com");
    assert_eq!(subscription.p256dh_base64url(), P256DH);
    assert_eq!(subscription.auth_base64url(), AUTH);
    assert_eq!(subscription.p256dh()[0], 0x04);
    assert_eq!(subscription.expiration_time(), None);
    assert!(!subscription.is_expired(Utc::now()));
}

#[test]
fn padded_keys_are_accepted_and_stored_unpadded() {
    let mut value = browser_json();
    value["keys"]["p256dh"] = json!(format!("{P256DH}="));
    value["keys"]["auth"] = json!(format!("{AUTH}=="));
    let subscription = parse(value).unwrap();
    assert_eq!(subscription.p256dh_base64url(), P256DH);
    assert_eq!(subscription.auth_base64url(), AUTH);
}

#[test]
fn an_expiration_time_in_milliseconds_is_kept() {
    let mut value = browser_json();
    value["expirationTime"] = json!(1_767_225_600_000_i64);
    let subscription = parse(value).unwrap();
    let at = subscription.expiration_time().unwrap();
    assert_eq!(at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    assert!(subscription.is_expired(at));
    assert!(!subscription.is_expired(at - chrono::Duration::seconds(1)));

    let mut fractional = browser_json();
    fractional["expirationTime"] = json!(1_767_225_600_000.4_f64);
    assert!(parse(fractional).is_ok());
}

#[test]
fn every_bad_field_is_named_at_once() {
    let fields = error_fields(json!({
        "endpoint": "http://fcm.googleapis.com/x",
        "expirationTime": -1,
        "keys": {"p256dh": "not base64!", "auth": "AAAA"},
    }));
    assert_eq!(fields, ["endpoint", "expirationTime", "keys.p256dh", "keys.auth"]);
}

#[test]
fn missing_fields_are_named() {
    assert_eq!(error_fields(json!({})), ["endpoint", "keys.p256dh", "keys.auth"]);
    assert_eq!(
        error_fields(json!({"endpoint": ENDPOINT, "keys": {"p256dh": "", "auth": null}})),
        ["keys.p256dh", "keys.auth"]
    );
}

#[test]
fn p256dh_must_be_an_uncompressed_point_on_the_curve() {
    let point = crate::push::base64url_decode(P256DH).unwrap();
    let off_curve = {
        let mut p = point.clone();
        p[64] ^= 1;
        base64url_encode(&p)
    };
    let compressed = {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = PublicKey::from_sec1_bytes(&point).unwrap();
        base64url_encode(key.to_encoded_point(true).as_bytes())
    };
    let wrong_prefix = {
        let mut p = point.clone();
        p[0] = 0x06;
        base64url_encode(&p)
    };
    let standard_base64 = "BCVxsr7N/eNgVRqvHtD0zTZsEc6+VV+JvLexhqUzORcxaOzi6+AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    for bad in [
        off_curve,
        compressed,
        wrong_prefix,
        base64url_encode(&[4u8; 64]),
        base64url_encode(&[0u8; 65]),
        standard_base64.to_owned(),
    ] {
        let mut value = browser_json();
        value["keys"]["p256dh"] = json!(bad);
        assert_eq!(error_fields(value), ["keys.p256dh"], "{bad}");
    }
}

#[test]
fn auth_must_be_16_bytes_of_base64url() {
    for bad in [
        base64url_encode(&[1u8; 15]),
        base64url_encode(&[1u8; 17]),
        base64url_encode(&[1u8; 32]),
        "BTBZMqHH6r4Tts7J/aSIgg".to_owned(),
        "!!".to_owned(),
    ] {
        let mut value = browser_json();
        value["keys"]["auth"] = json!(bad);
        assert_eq!(error_fields(value), ["keys.auth"], "{bad}");
    }
}

#[test]
fn endpoints_off_the_allow_list_are_refused() {
    for bad in [
        "https://evil.example/push",
        "https://push.apple.com/x",
        "https://evilpush.apple.com/x",
        "https://127.0.0.1/push",
        "https://localhost/push",
        "https://user@fcm.googleapis.com/x",
        "fcm.googleapis.com/x",
    ] {
        let mut value = browser_json();
        value["endpoint"] = json!(bad);
        assert_eq!(error_fields(value), ["endpoint"], "{bad}");
    }
    let mut value = browser_json();
    value["endpoint"] = json!("https://web.push.apple.com/QGuQyav");
    assert!(parse(value).is_ok());
}

#[test]
fn error_messages_do_not_echo_the_values() {
    let errors = parse(json!({
        "endpoint": "https://evil.example/secret-token",
        "keys": {"p256dh": "secret-key", "auth": "secret-auth"},
    }))
    .unwrap_err();
    let shown = format!("{errors:?} {errors}");
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn debug_shows_the_host_only() {
    let subscription = parse(browser_json()).unwrap();
    let shown = format!("{subscription:?}");
    assert!(shown.contains("fcm.googleapis.com"));
    assert!(!shown.contains("APA91") && !shown.contains(AUTH) && !shown.contains("BCVx"), "{shown}");
    let json: PushSubscriptionJson = serde_json::from_value(browser_json()).unwrap();
    let shown = format!("{json:?}");
    assert!(!shown.contains("APA91") && !shown.contains(AUTH), "{shown}");
}

#[test]
fn a_stored_subscription_is_rebuilt_against_todays_policy() {
    let expires = DateTime::from_timestamp(1_800_000_000, 0);
    let subscription = ValidSubscription::from_parts(ENDPOINT, P256DH, AUTH, expires, &policy()).unwrap();
    assert_eq!(subscription.expiration_time(), expires);
    assert_eq!(subscription, {
        let mut s = parse(browser_json()).unwrap();
        s.expiration_time = expires;
        s
    });
    let narrower = PushPolicy::new(&["*.push.apple.com".into()], false);
    let errors = ValidSubscription::from_parts(ENDPOINT, P256DH, AUTH, None, &narrower).unwrap_err();
    assert_eq!(errors.0[0].field, "endpoint");
}

#[test]
fn unknown_fields_are_ignored_and_wrong_types_do_not_parse() {
    let mut value = browser_json();
    value["extra"] = json!(true);
    assert!(parse(value).is_ok());
    let mut wrong = browser_json();
    wrong["expirationTime"] = json!("tomorrow");
    assert!(serde_json::from_value::<PushSubscriptionJson>(wrong).is_err());
}
