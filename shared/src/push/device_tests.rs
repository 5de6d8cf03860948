use super::*;

fn all_enabled() -> PushPolicy {
    PushPolicy::new(&["fcm.googleapis.com".into()], false).with_native(NativeServices { apns: true, fcm: true })
}

fn registration(json: serde_json::Value) -> DeviceRegistrationJson {
    serde_json::from_value(json).unwrap()
}

fn fields(error: DeviceError) -> Vec<String> {
    match error {
        DeviceError::Invalid(errors) => errors.0.into_iter().map(|e| e.field).collect(),
        DeviceError::NotEnabled(kind) => vec![format!("not enabled: {}", kind.as_str())],
    }
}

const APNS_TOKEN: &str = "740F4707BEBCF74F9B7C25D48E3358945F6AA01DA5DDB387462C7EAF61BB78AD";
const FCM_TOKEN: &str = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";

#[test]
fn an_apns_token_is_normalised_and_stored_under_its_kind() {
    let json = registration(serde_json::json!({"kind": "apns", "token": APNS_TOKEN, "environment": "sandbox"}));
    let ValidDevice::Native(device) = ValidDevice::parse(&json, &all_enabled()).unwrap() else { panic!("native") };
    assert_eq!(device.kind(), DeviceKind::Apns);
    assert_eq!(device.token(), APNS_TOKEN.to_ascii_lowercase());
    assert_eq!(device.environment(), Some(ApnsEnvironment::Sandbox));
    let key = device.storage_key();
    assert_eq!(key, format!("apns:{}", APNS_TOKEN.to_ascii_lowercase()));
    assert_eq!(NativeDevice::from_stored(DeviceKind::Apns, &key, Some("sandbox")), Some(device.clone()));
    assert_eq!(NativeDevice::from_stored(DeviceKind::Fcm, &key, None), None, "the prefix names the kind");
    assert!(
        !format!("{device:?}").to_ascii_lowercase().contains(&APNS_TOKEN.to_ascii_lowercase()),
        "no token in Debug"
    );
}

#[test]
fn an_fcm_token_round_trips() {
    let json = registration(serde_json::json!({"kind": "fcm", "token": FCM_TOKEN}));
    let ValidDevice::Native(device) = ValidDevice::parse(&json, &all_enabled()).unwrap() else { panic!("native") };
    assert_eq!((device.kind(), device.token(), device.environment()), (DeviceKind::Fcm, FCM_TOKEN, None));
    assert_eq!(NativeDevice::from_stored(DeviceKind::Fcm, &device.storage_key(), None), Some(device));
}

#[test]
fn without_a_kind_the_body_is_a_web_push_subscription() {
    let json = registration(serde_json::json!({"endpoint": "https://fcm.googleapis.com/fcm/send/x"}));
    assert_eq!(fields(ValidDevice::parse(&json, &all_enabled()).unwrap_err()), ["keys.p256dh", "keys.auth"]);
}

#[test]
fn bad_registrations_name_their_fields() {
    let long = "a".repeat(201);
    let cases = [
        (serde_json::json!({"kind": "apns", "token": "abc", "environment": "production"}), vec!["token"]),
        (serde_json::json!({"kind": "apns", "token": long, "environment": "production"}), vec!["token"]),
        (serde_json::json!({"kind": "apns", "environment": "production"}), vec!["token"]),
        (serde_json::json!({"kind": "apns", "token": APNS_TOKEN}), vec!["environment"]),
        (serde_json::json!({"kind": "apns", "token": "xyz", "environment": "dev"}), vec!["token", "environment"]),
        (serde_json::json!({"kind": "fcm", "token": "a b"}), vec!["token"]),
        (serde_json::json!({"kind": "fcm", "token": FCM_TOKEN, "environment": "sandbox"}), vec!["environment"]),
        (serde_json::json!({"kind": "pigeon"}), vec!["kind"]),
    ];
    for (json, expected) in cases {
        let error = ValidDevice::parse(&registration(json.clone()), &all_enabled()).unwrap_err();
        assert_eq!(fields(error), expected, "{json}");
    }
}

#[test]
fn a_kind_that_is_not_enabled_is_refused_after_its_body_is_checked() {
    let web_only = PushPolicy::new(&[], false);
    let apns = registration(serde_json::json!({"kind": "apns", "token": APNS_TOKEN, "environment": "production"}));
    assert_eq!(fields(ValidDevice::parse(&apns, &web_only).unwrap_err()), ["not enabled: apns"]);
    let bad = registration(serde_json::json!({"kind": "fcm", "token": "a b"}));
    assert_eq!(fields(ValidDevice::parse(&bad, &web_only).unwrap_err()), ["token"]);
    assert_eq!(NativeServices::default().kinds(), [DeviceKind::Web]);
    assert_eq!(NativeServices { apns: true, fcm: true }.kinds(), [DeviceKind::Web, DeviceKind::Apns, DeviceKind::Fcm]);
}
