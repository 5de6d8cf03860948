//! Private text at rest: XChaCha20-Poly1305 (192-bit random nonces, so no nonce
//! bookkeeping) under the key ring from `ATTUNE_DATA_KEYS`.
//!
//! A stored value is `v1:<key id>:<base64url(nonce ‖ ciphertext)>`. The key id lets
//! old values stay readable after a new key is added, and `attune-api rotate-keys`
//! re-encrypts them. The associated data binds a value to its owner, table, column
//! and record, so a value copied to another row does not decrypt.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use uuid::Uuid;

use crate::secrets::KeyRing;

const PREFIX: &str = "v1";
const NONCE_LEN: usize = 24;

/// Where a private value lives; it is authenticated along with the value.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub user_id: Uuid,
    pub table: &'a str,
    pub column: &'a str,
    pub record_id: &'a str,
}

impl Binding<'_> {
    fn associated_data(&self) -> String {
        format!("attune/{}/{}/{}/{}", self.user_id, self.table, self.column, self.record_id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("stored private text is not in a known format")]
    Malformed,
    #[error("stored private text uses key `{0}`, which is not in ATTUNE_DATA_KEYS")]
    UnknownKey(String),
    #[error("stored private text failed authentication (tampered, or moved to another record)")]
    Authentication,
}

#[derive(Debug, Clone)]
pub struct DataCipher {
    ring: KeyRing,
}

impl DataCipher {
    pub fn new(ring: KeyRing) -> Self {
        Self { ring }
    }

    /// Encrypts `plaintext` under the newest key.
    pub fn seal(&self, plaintext: &str, binding: &Binding<'_>) -> String {
        let key = self.ring.current();
        let cipher = XChaCha20Poly1305::new((&key.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = binding.associated_data();
        // Encryption with a valid key and in-memory buffers cannot fail.
        let ciphertext =
            cipher.encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() }).unwrap_or_default();
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!("{PREFIX}:{}:{}", key.id, URL_SAFE_NO_PAD.encode(sealed))
    }

    pub fn open(&self, stored: &str, binding: &Binding<'_>) -> Result<String, CryptoError> {
        let (key_id, payload) = split(stored)?;
        let key = self.ring.get(key_id).ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = binding.associated_data();
        let plaintext = XChaCha20Poly1305::new((&key.key).into())
            .decrypt(&nonce_from(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .map_err(|_| CryptoError::Authentication)?;
        String::from_utf8(plaintext).map_err(|_| CryptoError::Malformed)
    }

    /// Whether `stored` was sealed under an older key than the newest.
    pub fn needs_rotation(&self, stored: &str) -> bool {
        split(stored).is_ok_and(|(key_id, _)| key_id != self.ring.current().id)
    }
}

fn nonce_from(bytes: &[u8]) -> XNonce {
    let mut nonce = XNonce::default();
    nonce.copy_from_slice(bytes);
    nonce
}

fn split(stored: &str) -> Result<(&str, &str), CryptoError> {
    let mut parts = stored.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(PREFIX), Some(key_id), Some(payload)) if !key_id.is_empty() => Ok((key_id, payload)),
        _ => Err(CryptoError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn ring(spec: &[(&str, u8)]) -> KeyRing {
        let text = spec
            .iter()
            .map(|(id, byte)| format!("{id}:{}", STANDARD.encode([*byte; 32])))
            .collect::<Vec<_>>()
            .join(",");
        KeyRing::parse(&text).unwrap()
    }

    fn binding(record_id: &str) -> Binding<'_> {
        Binding { user_id: Uuid::nil(), table: "checkins", column: "note", record_id }
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let cipher = DataCipher::new(ring(&[("k1", 1)]));
        let sealed = cipher.seal("I felt safe today", &binding("r1"));
        assert!(sealed.starts_with("v1:k1:"), "{sealed}");
        assert!(!sealed.contains("safe"));
        assert_eq!(cipher.open(&sealed, &binding("r1")).unwrap(), "I felt safe today");
        assert_ne!(sealed, cipher.seal("I felt safe today", &binding("r1")), "fresh nonce each time");
    }

    #[test]
    fn a_value_moved_to_another_record_or_user_does_not_open() {
        let cipher = DataCipher::new(ring(&[("k1", 1)]));
        let sealed = cipher.seal("private", &binding("r1"));
        assert_eq!(cipher.open(&sealed, &binding("r2")), Err(CryptoError::Authentication));
        let other_user = Binding { user_id: Uuid::max(), ..binding("r1") };
        assert_eq!(cipher.open(&sealed, &other_user), Err(CryptoError::Authentication));
        let other_column = Binding { column: "tags", ..binding("r1") };
        assert_eq!(cipher.open(&sealed, &other_column), Err(CryptoError::Authentication));
    }

    #[test]
    fn old_keys_still_open_and_are_flagged_for_rotation() {
        let old = DataCipher::new(ring(&[("k1", 1)]));
        let sealed = old.seal("written last year", &binding("r1"));
        let rotated = DataCipher::new(ring(&[("k1", 1), ("k2", 2)]));
        assert_eq!(rotated.open(&sealed, &binding("r1")).unwrap(), "written last year");
        assert!(rotated.needs_rotation(&sealed));
        let resealed = rotated.seal("written last year", &binding("r1"));
        assert!(resealed.starts_with("v1:k2:") && !rotated.needs_rotation(&resealed));
        let without_old = DataCipher::new(ring(&[("k2", 2)]));
        assert_eq!(without_old.open(&sealed, &binding("r1")), Err(CryptoError::UnknownKey("k1".into())));
    }

    #[test]
    fn tampering_and_garbage_are_refused() {
        let cipher = DataCipher::new(ring(&[("k1", 1)]));
        let mut sealed = cipher.seal("private", &binding("r1"));
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(cipher.open(&sealed, &binding("r1")).is_err());
        for garbage in ["", "plain text", "v1:k1:", "v1::abc", "v2:k1:AAAA", "v1:k1:!!!"] {
            assert!(cipher.open(garbage, &binding("r1")).is_err(), "{garbage:?}");
        }
    }
}
