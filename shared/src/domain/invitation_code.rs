//! Partner invitation codes: short enough to read aloud or type, long enough
//! that guessing one (throttled to 10 wrong tries an hour) is hopeless.
//!
//! Ten characters from 32 symbols are 50 bits. The alphabet leaves out `0`/`O`
//! and `1`/`I`, which people mistake for each other; codes are read without
//! regard to case, spaces or dashes, so `abcd-efgh-jk` is `ABCDEFGHJK`.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Every symbol a code uses: digits 2–9 and the capital letters but `I` and `O`.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
pub const CODE_LENGTH: usize = 10;

/// A well-formed invitation code (whether any invitation has it is another matter).
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationCode(String);

impl std::fmt::Debug for InvitationCode {
    // A code is a credential for linking with someone: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationCode(…)")
    }
}

impl InvitationCode {
    /// A fresh random code.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let code = (0..CODE_LENGTH).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
        Self(code)
    }

    /// Reads what a person typed; `None` when it cannot be any code.
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_ascii_uppercase()).collect();
        let valid = code.len() == CODE_LENGTH && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database keeps: the SHA-256, hex. (50 random bits behind a
    /// throttle need no slow hash; the hash keeps a database reader from linking.)
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_only_unambiguous_symbols_and_parse_back() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let code = InvitationCode::generate(&mut rng);
            assert_eq!(code.as_str().len(), CODE_LENGTH);
            assert!(!code.as_str().contains(['0', 'O', '1', 'I']), "{}", code.as_str());
            assert_eq!(InvitationCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn typing_is_forgiven_but_impossible_codes_are_not() {
        let code = InvitationCode::parse("abcd-efgh jk").map(|c| c.as_str().to_owned());
        assert_eq!(code.as_deref(), Some("ABCDEFGHJK"));
        assert_eq!(InvitationCode::parse("ABCDEFGHJ"), None, "too short");
        assert_eq!(InvitationCode::parse("ABCDEFGHJKL"), None, "too long");
        assert_eq!(InvitationCode::parse("ABCDEFGHJ0"), None, "0 is never in a code");
        assert_eq!(InvitationCode::parse("ABCDEFGHJÖ"), None);
    }

    #[test]
    fn the_stored_hash_is_not_the_code() {
        let code = InvitationCode::parse("ABCDEFGHJK").map(|c| c.hash()).unwrap_or_default();
        assert_eq!(code.len(), 64);
        assert!(!code.contains("ABCDEFGHJK"));
    }
}
