//! RFC 8291 message encryption with the `aes128gcm` content coding of RFC 8188.
//!
//! Every message gets a fresh ephemeral P-256 key and a fresh 16-byte salt
//! (RFC 8291 §3.1 and RFC 8188 §2.1), so the content key and nonce are never
//! reused and one record with nonce counter 0 is safe. RFC 8291 §4 asks for a
//! single record, which a minimal user agent is entitled to expect.

use ring::{
    aead::{self, AES_128_GCM, Aad, LessSafeKey, Nonce},
    agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey},
    error::Unspecified,
    hkdf::{self, HKDF_SHA256},
    rand::{SecureRandom, SystemRandom},
};

/// The `rs` we announce: one record of up to 4096 octets (RFC 8291 §4).
pub const RECORD_SIZE: u32 = 4096;
/// An uncompressed P-256 point: `0x04 ‖ x ‖ y`.
pub const P256_POINT_LEN: usize = 65;
/// The subscription's `auth` secret (RFC 8291 §3.2).
pub const AUTH_SECRET_LEN: usize = 16;

pub(super) const SALT_LEN: usize = 16;
pub(super) const TAG_LEN: usize = 16;
/// `salt(16) ‖ rs(4) ‖ idlen(1) ‖ keyid(65)`, RFC 8188 §2.1 with RFC 8291 §4's keyid.
pub(super) const HEADER_LEN: usize = SALT_LEN + 4 + 1 + P256_POINT_LEN;
/// RFC 8188 §2: the last record's plaintext ends with 0x02 (then optional zeros).
pub(super) const LAST_RECORD_DELIMITER: u8 = 0x02;

/// The largest payload we send. RFC 8030 §7.2 only obliges push services to
/// accept 4096 octets of *body*, so the header, delimiter and tag must fit in that
/// too: 4096 − 86 − 1 − 16 = 3993.
pub const MAX_PAYLOAD_LEN: usize = RECORD_SIZE as usize - HEADER_LEN - 1 - TAG_LEN;

const KEY_INFO: &[u8] = b"WebPush: info\0";
const CEK_INFO: &[u8] = b"Content-Encoding: aes128gcm\0";
const NONCE_INFO: &[u8] = b"Content-Encoding: nonce\0";
const NONCE_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    #[error("the payload is {len} bytes; at most {MAX_PAYLOAD_LEN} fit in a push message")]
    PayloadTooLarge { len: usize },
    #[error("the subscription's p256dh is not a valid P-256 public key")]
    InvalidReceiverKey,
    #[error("the system random source or the cipher failed")]
    Crypto,
}

impl From<Unspecified> for EncryptError {
    fn from(_: Unspecified) -> Self {
        Self::Crypto
    }
}

/// Encrypts `payload` for a subscription with public key `p256dh` (65 bytes,
/// uncompressed) and `auth` secret: the whole request body, header included.
///
/// One allocation, sized exactly; the payload is sealed in place.
pub fn encrypt(
    p256dh: &[u8; P256_POINT_LEN],
    auth: &[u8; AUTH_SECRET_LEN],
    payload: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    check_len(payload)?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    let sender = EphemeralPrivateKey::generate(&ECDH_P256, &rng)?;
    let sender_public = sender.compute_public_key()?;
    let sender_public: &[u8; P256_POINT_LEN] = sender_public.as_ref().try_into().map_err(|_| EncryptError::Crypto)?;
    // ring checks that the receiver's point is on the curve.
    let receiver = UnparsedPublicKey::new(&ECDH_P256, p256dh);
    agreement::agree_ephemeral(sender, &receiver, |ecdh_secret| {
        seal(ecdh_secret, auth, p256dh, sender_public, &salt, payload)
    })
    .map_err(|_| EncryptError::InvalidReceiverKey)?
}

fn check_len(payload: &[u8]) -> Result<(), EncryptError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(EncryptError::PayloadTooLarge { len: payload.len() });
    }
    Ok(())
}

/// Builds the body from the ECDH secret: the part shared by the production path
/// (ring's ephemeral key) and the test-vector path (a fixed sender key).
fn seal(
    ecdh_secret: &[u8],
    auth: &[u8; AUTH_SECRET_LEN],
    receiver_public: &[u8; P256_POINT_LEN],
    sender_public: &[u8; P256_POINT_LEN],
    salt: &[u8; SALT_LEN],
    payload: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let (key, nonce) = content_keys(ecdh_secret, auth, receiver_public, sender_public, salt)?;
    let mut body = Vec::with_capacity(HEADER_LEN + payload.len() + 1 + TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(P256_POINT_LEN as u8);
    body.extend_from_slice(sender_public);
    body.extend_from_slice(payload);
    body.push(LAST_RECORD_DELIMITER);
    let tag = key.seal_in_place_separate_tag(nonce, Aad::empty(), &mut body[HEADER_LEN..])?;
    body.extend_from_slice(tag.as_ref());
    Ok(body)
}

/// The content-encryption key and nonce of RFC 8291 §3.3–3.4 and RFC 8188 §2.2–2.3.
pub(super) fn content_keys(
    ecdh_secret: &[u8],
    auth: &[u8; AUTH_SECRET_LEN],
    receiver_public: &[u8; P256_POINT_LEN],
    sender_public: &[u8; P256_POINT_LEN],
    salt: &[u8; SALT_LEN],
) -> Result<(LessSafeKey, Nonce), Unspecified> {
    // PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret);
    // IKM = HKDF-Expand(PRK_key, "WebPush: info" ‖ 0x00 ‖ ua_public ‖ as_public, 32)
    let prk_key = hkdf::Salt::new(HKDF_SHA256, auth).extract(ecdh_secret);
    let mut ikm = [0u8; 32];
    prk_key.expand(&[KEY_INFO, receiver_public, sender_public], OkmLen(ikm.len()))?.fill(&mut ikm)?;
    let prk = hkdf::Salt::new(HKDF_SHA256, salt).extract(&ikm);
    let cek: aead::UnboundKey = prk.expand(&[CEK_INFO], &AES_128_GCM)?.into();
    let mut nonce = [0u8; NONCE_LEN];
    prk.expand(&[NONCE_INFO], OkmLen(NONCE_LEN))?.fill(&mut nonce)?;
    // The first (and only) record's nonce is NONCE XOR 0 (RFC 8188 §2.3).
    Ok((LessSafeKey::new(cek), Nonce::assume_unique_for_key(nonce)))
}

/// An HKDF output length that is not a key type of ring's.
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// The deterministic variant behind the RFC 8291 test vector: a fixed sender key
/// and salt, ECDH by `p256` because ring cannot import an ephemeral key.
#[cfg(test)]
pub(super) fn encrypt_with_sender_key(
    p256dh: &[u8; P256_POINT_LEN],
    auth: &[u8; AUTH_SECRET_LEN],
    payload: &[u8],
    salt: &[u8; SALT_LEN],
    sender: &p256::SecretKey,
) -> Result<Vec<u8>, EncryptError> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    check_len(payload)?;
    let receiver = p256::PublicKey::from_sec1_bytes(p256dh).map_err(|_| EncryptError::InvalidReceiverKey)?;
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), receiver.as_affine());
    let sender_public = sender.public_key().to_encoded_point(false);
    let sender_public: &[u8; P256_POINT_LEN] = sender_public.as_bytes().try_into().map_err(|_| EncryptError::Crypto)?;
    seal(&shared.raw_secret_bytes()[..], auth, p256dh, sender_public, salt, payload)
}

#[cfg(test)]
#[path = "encrypt_tests.rs"]
pub(super) mod tests;
