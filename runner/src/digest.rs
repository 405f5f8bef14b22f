//! [`Digest`]: a typed blake3 digest, the name of every artifact, key and file in the store.
//!
//! Displayed as `b3:` followed by 64 lowercase hex digits; [`Digest::from_str`] accepts that form
//! and the bare hex form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a blake3 digest in bytes.
pub const DIGEST_LEN: usize = 32;

const PREFIX: &str = "b3:";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; DIGEST_LEN]);

impl Digest {
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_hash(hash: blake3::Hash) -> Digest {
        Digest(*hash.as_bytes())
    }

    /// Returns the 64 hex digits without the algorithm prefix; used in store paths.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Returns the first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The text is not a blake3 digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest `{text}`: expected `b3:` and 64 hex digits")]
pub struct InvalidDigest {
    pub text: String,
}

impl FromStr for Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Digest, InvalidDigest> {
        let hex = text.strip_prefix(PREFIX).unwrap_or(text);
        let invalid = || InvalidDigest { text: text.to_string() };
        if hex.len() != DIGEST_LEN * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let hash = blake3::Hash::from_hex(hex).map_err(|_| invalid())?;
        Ok(Digest(*hash.as_bytes()))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_text() {
        let digest = Digest::of_bytes(b"flywheel");
        let text = digest.to_string();
        assert!(text.starts_with("b3:"));
        assert_eq!(text.parse::<Digest>().unwrap(), digest);
        assert_eq!(digest.to_hex().parse::<Digest>().unwrap(), digest);
    }

    #[test]
    fn digest_rejects_malformed_text() {
        for text in ["", "b3:", "b3:zz", &"a".repeat(63), &"A".repeat(64)] {
            assert!(text.parse::<Digest>().is_err(), "accepted {text:?}");
        }
    }
}
