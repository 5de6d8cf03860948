//! Push delivery: the pieces the API and the worker share. Three services
//! reach a person's devices: Web Push (below), and APNs ([`ApnsClient`]) and FCM
//! ([`FcmClient`]) for native apps; every kind gets the same texts, TTL,
//! collapse key (the Topic) and removal of dead devices.
//!
//! A push message travels from us to the browser's push service (FCM, Mozilla
//! autopush, Apple, WNS), which stores and forwards it to the device. Three RFCs
//! govern the hop we make:
//!
//! - **RFC 8030** (the protocol): a `POST` to the subscription's endpoint with the
//!   `TTL` (§5.2), `Urgency` (§5.3) and `Topic` (§5.4) headers ([`PushMessage`]);
//!   201 means accepted, 404 (§7.3) and 410 mean the subscription is gone for good,
//!   429 and 5xx are transient ([`PushClient::send`]).
//! - **RFC 8291** (message encryption): the push service must not read the
//!   payload, so it is encrypted to the browser's `p256dh` key and `auth` secret
//!   with the `aes128gcm` content coding of RFC 8188, one record, a fresh
//!   ephemeral key and salt per message ([`encrypt()`]).
//! - **RFC 8292** (VAPID): the push service only forwards messages signed by the
//!   application server key the subscription was made with; the signed JWT is
//!   valid for at most 24 h, so it is cached per push-service origin rather than
//!   signed per message ([`VapidSigner`]).
//!
//! Endpoints are URLs a browser hands us, so they are untrusted: only hosts on
//! the configured allow list are accepted ([`PushPolicy`]), both when a
//! subscription is stored and again right before every request, and redirects
//! are never followed, so the worker cannot be steered at internal services.
//!
//! Nothing here logs key material, auth secrets, payload text or full endpoint
//! URLs (which are bearer capabilities); logs name the push service's host only.

mod apns;
mod apns_conn;
mod coalesce;
/// A user agent's side of RFC 8291, for the fake push service and tests only.
#[cfg(any(test, feature = "testing"))]
mod decrypt;
mod device;
mod encrypt;
mod fcm;
mod message;
mod native;
mod policy;
mod send;
mod subscription;
mod vapid;

pub use apns::{ApnsClient, ApnsConfig, PROVIDER_TOKEN_RENEW_AFTER};
#[cfg(any(test, feature = "testing"))]
pub use decrypt::{DecryptError, decrypt};
pub use device::{
    ApnsEnvironment, DeviceError, DeviceKind, DeviceRegistrationJson, NativeDevice, NativeServices, ValidDevice,
};
pub use encrypt::{AUTH_SECRET_LEN, EncryptError, MAX_PAYLOAD_LEN, P256_POINT_LEN, RECORD_SIZE, encrypt};
pub use fcm::{ACCESS_TOKEN_MARGIN, FCM_SCOPE, FcmClient, FcmConfig};
pub use message::{MAX_TTL_SECS, PushKind, PushMessage, PushPayload, Topic, TopicError, Urgency, UrgencyError};
pub use native::{NativePushConfig, NativePushError, NativeSenders};
pub use policy::{EndpointError, MAX_ENDPOINT_LEN, PushPolicy};
pub use send::{
    CONNECT_TIMEOUT, MAX_ATTEMPTS, MAX_RETRY_AFTER, PushClient, REQUEST_TIMEOUT, RETRY_BASE_DELAY, RETRY_MAX_DELAY,
    Rejection, RetryPolicy, SendOutcome, classify_response, parse_retry_after,
};
pub use subscription::{PushSubscriptionJson, PushSubscriptionKeysJson, ValidSubscription};
pub use vapid::{GeneratedVapidKey, VAPID_RENEW_BEFORE_SECS, VAPID_VALIDITY_SECS, VapidError, VapidKey, VapidSigner};

use base64::{
    Engine,
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

/// base64url as Web Push uses it: written without padding (as the Push API's
/// `toJSON()` and VAPID's `k` are); read with or without it, because some
/// clients and libraries pad. Non-canonical trailing bits are refused.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn base64url_encode(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    BASE64URL.decode(text.trim()).ok()
}

/// Decodes base64url into exactly `N` bytes.
pub(crate) fn base64url_decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    base64url_decode(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_reads_padded_and_unpadded_and_writes_unpadded() {
        assert_eq!(base64url_decode("BTBZMqHH6r4Tts7J_aSIgg").map(|b| b.len()), Some(16));
        assert_eq!(base64url_decode("BTBZMqHH6r4Tts7J_aSIgg=="), base64url_decode("BTBZMqHH6r4Tts7J_aSIgg"));
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        // Standard base64's alphabet is not base64url.
        assert_eq!(base64url_decode("+/8"), None);
        // Non-canonical trailing bits.
        assert_eq!(base64url_decode("-_9"), None);
        assert_eq!(base64url_decode_array::<2>("-_8"), Some([0xfb, 0xff]));
        assert_eq!(base64url_decode_array::<3>("-_8"), None);
    }
}
