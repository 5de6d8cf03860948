//! The user agent's side of RFC 8291: what a browser does with a push message.
//!
//! The server never decrypts; this exists so the fake push service of the
//! end-to-end tests (and our own tests) can read what we send, checking it as
//! strictly as a browser would.

use p256::{PublicKey, SecretKey, elliptic_curve::sec1::ToEncodedPoint};
use ring::aead::Aad;

use super::encrypt::{
    AUTH_SECRET_LEN, HEADER_LEN, LAST_RECORD_DELIMITER, P256_POINT_LEN, SALT_LEN, TAG_LEN, content_keys,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("the body is shorter than an aes128gcm header and one record")]
    Truncated,
    #[error("the key id is not a 65-byte P-256 public key")]
    KeyId,
    #[error("the record size is invalid or the body holds more than one record")]
    RecordSize,
    #[error("the sender key is not a valid P-256 public key")]
    SenderKey,
    #[error("the record does not authenticate")]
    Authentication,
    #[error("the record's padding has no last-record delimiter")]
    Padding,
}

/// Decrypts an `aes128gcm` push message body with the subscription's private key
/// and `auth` secret, returning the payload.
pub fn decrypt(body: &[u8], receiver: &SecretKey, auth: &[u8; AUTH_SECRET_LEN]) -> Result<Vec<u8>, DecryptError> {
    if body.len() < HEADER_LEN {
        return Err(DecryptError::Truncated);
    }
    let (header, ciphertext) = body.split_at(HEADER_LEN);
    let salt: &[u8; SALT_LEN] = header[..SALT_LEN].try_into().map_err(|_| DecryptError::Truncated)?;
    let rs = u32::from_be_bytes([header[16], header[17], header[18], header[19]]) as usize;
    if usize::from(header[20]) != P256_POINT_LEN {
        return Err(DecryptError::KeyId);
    }
    let sender_public: &[u8; P256_POINT_LEN] = header[21..].try_into().map_err(|_| DecryptError::KeyId)?;
    // RFC 8188 §2: rs must leave room for the delimiter and the tag; RFC 8291 §4:
    // exactly one record.
    if rs < TAG_LEN + 1 || ciphertext.len() > rs {
        return Err(DecryptError::RecordSize);
    }
    if ciphertext.len() < TAG_LEN + 1 {
        return Err(DecryptError::Truncated);
    }
    if sender_public[0] != 0x04 {
        return Err(DecryptError::SenderKey);
    }
    let sender = PublicKey::from_sec1_bytes(sender_public).map_err(|_| DecryptError::SenderKey)?;
    let ecdh = p256::ecdh::diffie_hellman(receiver.to_nonzero_scalar(), sender.as_affine());
    let receiver_public = receiver.public_key().to_encoded_point(false);
    let receiver_public: &[u8; P256_POINT_LEN] =
        receiver_public.as_bytes().try_into().map_err(|_| DecryptError::SenderKey)?;

    let (key, nonce) = content_keys(&ecdh.raw_secret_bytes()[..], auth, receiver_public, sender_public, salt)
        .map_err(|_| DecryptError::Authentication)?;
    let mut record = ciphertext.to_vec();
    let plaintext_len =
        key.open_in_place(nonce, Aad::empty(), &mut record).map_err(|_| DecryptError::Authentication)?.len();
    record.truncate(plaintext_len);

    // Padding is zeros after the delimiter; the last record's delimiter is 0x02.
    let delimiter_at = record.iter().rposition(|&b| b != 0).ok_or(DecryptError::Padding)?;
    if record[delimiter_at] != LAST_RECORD_DELIMITER {
        return Err(DecryptError::Padding);
    }
    record.truncate(delimiter_at);
    Ok(record)
}
