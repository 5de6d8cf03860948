use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint};

use super::*;
use crate::push::{DecryptError, base64url_decode, base64url_decode_array, base64url_encode, decrypt};

// RFC 8291 §5 "Push Message Encryption Example" (intermediate values in Appendix A).
const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
const AUTH_SECRET: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const UA_PUBLIC: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const AS_PUBLIC: &str = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const BODY: &str = concat!(
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
);

fn secret(b64: &str) -> SecretKey {
    SecretKey::from_slice(&base64url_decode(b64).unwrap()).unwrap()
}

/// A fresh browser-like subscription key pair and auth secret.
pub(crate) fn browser_keys() -> (SecretKey, [u8; 65], [u8; 16]) {
    let mut bytes = [0u8; 32];
    let secret = loop {
        rand::fill(&mut bytes);
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let public: [u8; 65] = secret.public_key().to_encoded_point(false).as_bytes().try_into().unwrap();
    let mut auth = [0u8; 16];
    rand::fill(&mut auth);
    (secret, public, auth)
}

#[test]
fn reproduces_the_rfc_8291_example_byte_for_byte() {
    let body = encrypt_with_sender_key(
        &base64url_decode_array(UA_PUBLIC).unwrap(),
        &base64url_decode_array(AUTH_SECRET).unwrap(),
        PLAINTEXT,
        &base64url_decode_array(SALT).unwrap(),
        &secret(AS_PRIVATE),
    )
    .unwrap();
    assert_eq!(base64url_encode(&body), BODY);
    // The example's sender key is the key id the header carries.
    assert_eq!(base64url_encode(&body[21..86]), AS_PUBLIC);
}

#[test]
fn decrypts_the_rfc_8291_example_as_a_user_agent() {
    let body = base64url_decode(BODY).unwrap();
    let plaintext = decrypt(&body, &secret(UA_PRIVATE), &base64url_decode_array(AUTH_SECRET).unwrap()).unwrap();
    assert_eq!(plaintext, PLAINTEXT);
}

#[test]
fn a_message_round_trips_with_fresh_keys() {
    let (secret, public, auth) = browser_keys();
    let payload = br#"{"type":"test","title":"Hello"}"#;
    let body = encrypt(&public, &auth, payload).unwrap();
    assert_eq!(decrypt(&body, &secret, &auth).unwrap(), payload);
}

#[test]
fn the_header_is_salt_record_size_and_sender_key() {
    let (_, public, auth) = browser_keys();
    let body = encrypt(&public, &auth, b"hi").unwrap();
    assert_eq!(body.len(), HEADER_LEN + 2 + 1 + TAG_LEN);
    assert_eq!(&body[16..20], &4096u32.to_be_bytes());
    assert_eq!(body[20], 65);
    assert_eq!(body[21], 0x04);
    assert!(p256::PublicKey::from_sec1_bytes(&body[21..86]).is_ok());
}

#[test]
fn every_message_gets_a_fresh_salt_and_sender_key() {
    let (_, public, auth) = browser_keys();
    let first = encrypt(&public, &auth, b"same").unwrap();
    let second = encrypt(&public, &auth, b"same").unwrap();
    assert_ne!(first[..16], second[..16], "salt reused");
    assert_ne!(first[21..86], second[21..86], "sender key reused");
    assert_ne!(first[86..], second[86..]);
}

#[test]
fn the_largest_payload_fills_exactly_4096_bytes_and_one_more_is_refused() {
    let (secret, public, auth) = browser_keys();
    assert_eq!(MAX_PAYLOAD_LEN, 3993);
    let largest = vec![b'a'; MAX_PAYLOAD_LEN];
    let body = encrypt(&public, &auth, &largest).unwrap();
    assert_eq!(body.len(), 4096);
    assert_eq!(decrypt(&body, &secret, &auth).unwrap(), largest);
    assert_eq!(
        encrypt(&public, &auth, &vec![b'a'; MAX_PAYLOAD_LEN + 1]),
        Err(EncryptError::PayloadTooLarge { len: MAX_PAYLOAD_LEN + 1 })
    );
}

#[test]
fn an_empty_payload_is_one_delimiter_and_a_tag() {
    let (secret, public, auth) = browser_keys();
    let body = encrypt(&public, &auth, b"").unwrap();
    assert_eq!(body.len(), HEADER_LEN + 1 + TAG_LEN);
    assert_eq!(decrypt(&body, &secret, &auth).unwrap(), b"");
}

#[test]
fn a_receiver_key_off_the_curve_is_refused() {
    let (_, mut public, auth) = browser_keys();
    public[64] ^= 1;
    assert_eq!(encrypt(&public, &auth, b"x"), Err(EncryptError::InvalidReceiverKey));
    let mut compressed_prefix = browser_keys().1;
    compressed_prefix[0] = 0x02;
    assert_eq!(encrypt(&compressed_prefix, &auth, b"x"), Err(EncryptError::InvalidReceiverKey));
}

#[test]
fn decryption_fails_with_the_wrong_auth_secret_or_key() {
    let (secret, public, auth) = browser_keys();
    let body = encrypt(&public, &auth, b"private").unwrap();
    let mut other_auth = auth;
    other_auth[0] ^= 1;
    assert_eq!(decrypt(&body, &secret, &other_auth), Err(DecryptError::Authentication));
    let (other_secret, _, _) = browser_keys();
    assert_eq!(decrypt(&body, &other_secret, &auth), Err(DecryptError::Authentication));
}

#[test]
fn decryption_refuses_tampered_or_malformed_bodies() {
    let (secret, public, auth) = browser_keys();
    let body = encrypt(&public, &auth, b"private").unwrap();

    let mut flipped = body.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(decrypt(&flipped, &secret, &auth), Err(DecryptError::Authentication));

    let mut salt_changed = body.clone();
    salt_changed[0] ^= 1;
    assert_eq!(decrypt(&salt_changed, &secret, &auth), Err(DecryptError::Authentication));

    assert_eq!(decrypt(&body[..50], &secret, &auth), Err(DecryptError::Truncated));
    assert_eq!(decrypt(&body[..HEADER_LEN + 5], &secret, &auth), Err(DecryptError::Truncated));

    let mut idlen = body.clone();
    idlen[20] = 64;
    assert_eq!(decrypt(&idlen, &secret, &auth), Err(DecryptError::KeyId));

    let mut small_rs = body.clone();
    small_rs[16..20].copy_from_slice(&10u32.to_be_bytes());
    assert_eq!(decrypt(&small_rs, &secret, &auth), Err(DecryptError::RecordSize));

    let mut off_curve = body.clone();
    off_curve[85] ^= 1;
    assert_eq!(decrypt(&off_curve, &secret, &auth), Err(DecryptError::SenderKey));
}

#[test]
fn decryption_requires_the_last_record_delimiter() {
    // Seal a record whose plaintext ends in 0x01 (a non-last record) by hand.
    let (secret, public, auth) = browser_keys();
    let sender = browser_keys().0;
    let salt = [7u8; 16];
    let mut body = encrypt_with_sender_key(&public, &auth, b"abc", &salt, &sender).unwrap();
    // Re-seal with delimiter 0x01: decrypt, edit, encrypt again via the key schedule.
    let sender_public: [u8; 65] = body[21..86].try_into().unwrap();
    let receiver = p256::PublicKey::from_sec1_bytes(&public).unwrap();
    let ecdh = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), receiver.as_affine());
    let (key, nonce) = content_keys(&ecdh.raw_secret_bytes()[..], &auth, &public, &sender_public, &salt).unwrap();
    body.truncate(HEADER_LEN);
    body.extend_from_slice(b"abc\x01");
    let tag = key.seal_in_place_separate_tag(nonce, ring::aead::Aad::empty(), &mut body[HEADER_LEN..]).unwrap();
    body.extend_from_slice(tag.as_ref());
    assert_eq!(decrypt(&body, &secret, &auth), Err(DecryptError::Padding));
}
