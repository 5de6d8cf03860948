use chrono::TimeZone;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::Value;

use super::*;

// The application server key pair of RFC 8291 §5's example.
const PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";

fn signer() -> VapidSigner {
    VapidSigner::new(VapidKey::from_base64url(PRIVATE).unwrap(), "mailto:ops@attune.example").unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn url(endpoint: &str) -> Url {
    Url::parse(endpoint).unwrap()
}

/// Splits and checks a header the way a push service does, returning the claims.
fn verify(header: &str) -> Value {
    let (token, key) = header.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).unwrap();
    let mut parts = token.split('.');
    let (head, claims, signature) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(parts.next(), None);
    let head: Value = serde_json::from_slice(&base64url_decode(head).unwrap()).unwrap();
    assert_eq!(head, serde_json::json!({"typ": "JWT", "alg": "ES256"}));
    let signature = base64url_decode(signature).unwrap();
    assert_eq!(signature.len(), 64, "ES256 signatures are raw r ‖ s");
    let public = base64url_decode(key).unwrap();
    let signed = &token[..token.rfind('.').unwrap()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
        .verify(signed.as_bytes(), &signature)
        .expect("the signature verifies against k");
    serde_json::from_slice(&base64url_decode(claims).unwrap()).unwrap()
}

#[test]
fn the_public_key_is_derived_from_the_private_scalar() {
    let key = VapidKey::from_base64url(PRIVATE).unwrap();
    assert_eq!(key.public_key_base64url(), PUBLIC);
    assert_eq!(key.public_key()[0], 0x04);
    // Padding and surrounding whitespace (an env file's newline) are tolerated.
    let padded = VapidKey::from_base64url(&format!(" {PRIVATE}=\n")).unwrap();
    assert_eq!(padded.public_key_base64url(), PUBLIC);
}

#[test]
fn invalid_private_keys_are_refused() {
    assert_eq!(VapidKey::from_base64url("not base64!").unwrap_err(), VapidError::Encoding);
    assert_eq!(VapidKey::from_base64url(&base64url_encode(&[1u8; 31])).unwrap_err(), VapidError::Length(31));
    assert_eq!(VapidKey::from_base64url(&base64url_encode(&[1u8; 65])).unwrap_err(), VapidError::Length(65));
    assert_eq!(VapidKey::from_base64url(&base64url_encode(&[0u8; 32])).unwrap_err(), VapidError::InvalidKey);
    // Above the group order n.
    assert_eq!(VapidKey::from_base64url(&base64url_encode(&[0xffu8; 32])).unwrap_err(), VapidError::InvalidKey);
}

#[test]
fn generated_keys_parse_back_to_their_public_half() {
    let generated = VapidKey::generate().unwrap();
    let key = VapidKey::from_base64url(generated.private_key.expose()).unwrap();
    assert_eq!(key.public_key_base64url(), generated.public_key);
    assert_eq!(base64url_decode(&generated.public_key).unwrap().len(), 65);
    assert_eq!(generated.private_key.expose().len(), 43, "32 bytes, unpadded");
    assert_ne!(VapidKey::generate().unwrap().public_key, generated.public_key);
    assert!(!format!("{generated:?}").contains(generated.private_key.expose()));
}

#[test]
fn debug_never_shows_the_private_key() {
    let shown = format!("{:?} {:?}", VapidKey::from_base64url(PRIVATE).unwrap(), signer());
    assert!(!shown.contains(PRIVATE), "{shown}");
    assert!(shown.contains(PUBLIC));
}

#[test]
fn the_header_carries_a_signed_jwt_for_the_push_service_origin() {
    let header = signer().authorization(&url("https://fcm.googleapis.com/fcm/send/abc"), at(0)).unwrap();
    assert!(header.ends_with(&format!(", k={PUBLIC}")));
    let claims = verify(&header);
    assert_eq!(
        claims,
        serde_json::json!({
            "aud": "https://fcm.googleapis.com",
            "exp": at(12 * 3600).timestamp(),
            "sub": "mailto:ops@attune.example",
        })
    );
}

#[test]
fn the_audience_keeps_a_non_default_port_only() {
    let signer = signer();
    let claims = verify(&signer.authorization(&url("http://127.0.0.1:8080/push/1"), at(0)).unwrap());
    assert_eq!(claims["aud"], "http://127.0.0.1:8080");
    let claims = verify(&signer.authorization(&url("https://web.push.apple.com:443/x"), at(0)).unwrap());
    assert_eq!(claims["aud"], "https://web.push.apple.com");
}

#[test]
fn one_token_serves_an_origin_until_an_hour_before_it_expires() {
    let signer = signer();
    let first = signer.authorization(&url("https://fcm.googleapis.com/a"), at(0)).unwrap();
    let same_origin = signer.authorization(&url("https://fcm.googleapis.com/b"), at(10)).unwrap();
    assert!(Arc::ptr_eq(&first, &same_origin), "signed again for the same origin");
    let eleven_hours = signer.authorization(&url("https://fcm.googleapis.com/a"), at(11 * 3600 - 1)).unwrap();
    assert!(Arc::ptr_eq(&first, &eleven_hours));

    let renewed = signer.authorization(&url("https://fcm.googleapis.com/a"), at(11 * 3600)).unwrap();
    assert_ne!(first, renewed);
    assert_eq!(verify(&renewed)["exp"], at(23 * 3600).timestamp());

    let other = signer.authorization(&url("https://web.push.apple.com/a"), at(10)).unwrap();
    assert_ne!(other, renewed);
    assert_eq!(verify(&other)["aud"], "https://web.push.apple.com");
    assert_eq!(signer.cached_origins(), 2);
}

#[test]
fn a_clock_moved_back_gets_a_fresh_token() {
    let signer = signer();
    let later = signer.authorization(&url("https://fcm.googleapis.com/a"), at(86_400)).unwrap();
    let earlier = signer.authorization(&url("https://fcm.googleapis.com/a"), at(0)).unwrap();
    assert_ne!(later, earlier);
    assert_eq!(verify(&earlier)["exp"], at(12 * 3600).timestamp());
}

#[test]
fn the_cache_stays_bounded() {
    let signer = signer();
    for i in 0..(MAX_CACHED_ORIGINS + 10) {
        signer.authorization(&url(&format!("https://h{i}.notify.windows.com/w")), at(0)).unwrap();
    }
    assert!(signer.cached_origins() <= MAX_CACHED_ORIGINS);
}

#[test]
fn concurrent_senders_share_the_cache() {
    let signer = Arc::new(signer());
    let headers: Vec<Arc<str>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let signer = signer.clone();
                scope.spawn(move || {
                    let mut last = None;
                    for _ in 0..50 {
                        last = Some(signer.authorization(&url("https://fcm.googleapis.com/x"), at(0)).unwrap());
                    }
                    last.unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Whatever raced first, every thread ends up on the cached token.
    let cached = signer.authorization(&url("https://fcm.googleapis.com/x"), at(0)).unwrap();
    assert!(headers.iter().all(|h| *h == cached));
}

#[test]
fn the_subject_must_be_a_contact_url() {
    let key = || VapidKey::from_base64url(PRIVATE).unwrap();
    for ok in ["mailto:ops@attune.example", "https://attune.example/contact", " mailto:a@b.c "] {
        assert!(VapidSigner::new(key(), ok).is_ok(), "{ok}");
    }
    for bad in ["", "ops@attune.example", "mailto:", "mailto: ops@attune.example", "http://attune.example", "https:"] {
        assert_eq!(VapidSigner::new(key(), bad).unwrap_err(), VapidError::Subject, "{bad}");
    }
}

#[test]
fn an_endpoint_without_an_origin_is_refused() {
    assert_eq!(signer().authorization(&url("data:text/plain,hi"), at(0)).unwrap_err(), VapidError::Origin);
}
