//! The signed timestamp (`timestamp.json`): which release is current, for
//! a few days.
//!
//! Descriptors are valid for months, so on their own a van could keep
//! serving an old but unexpired release long after a newer one was
//! published (a freeze). `otavan release sign` also writes a
//! [`Timestamp`], signed by the release keys, that names the latest
//! release's version and counter and expires soon (7 days by default). A
//! meter in root mode installs a target only with an unexpired timestamp
//! and only if the target's counter is at least the timestamp's: a van
//! can freeze a meter at most until the last timestamp it holds expires.
//!
//! ```
//! use otavan_protocol::keys::KeyPair;
//! use otavan_protocol::timestamp::Timestamp;
//! let release = KeyPair::from_seed([2; 32]);
//! let timestamp = Timestamp::new("1.1.0", 7, 1_000, 1_000 + 7 * 86_400);
//! let envelope = timestamp.sign(&[&release]);
//! assert_eq!(Timestamp::open(&envelope, &[release.public()], 1).unwrap(), timestamp);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PublicKey};
use crate::signed::{DocumentType, Envelope};

/// The timestamp's file name at the release root.
pub const TIMESTAMP_FILE: &str = "timestamp.json";

/// The layout meters read ([`Timestamp::format`]).
pub const TIMESTAMP_FORMAT: u32 = 1;

/// The latest release, as the release keys said at `issued`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    /// Always [`DocumentType::Timestamp`] (`"otavan-timestamp"`).
    #[serde(rename = "type")]
    pub kind: DocumentType,
    /// The layout of this text ([`TIMESTAMP_FORMAT`]).
    pub format: u32,
    /// The latest release's version.
    pub version: String,
    /// The latest release's counter: meters refuse targets below it.
    pub counter: u64,
    /// Unix time (seconds) it was signed (informative: meters never take
    /// their time from it).
    pub issued: u64,
    /// Unix time (seconds) from which meters refuse it.
    pub expires: u64,
}

/// Why a timestamp is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampError {
    /// Fewer certified keys signed it than the threshold.
    BelowThreshold {
        /// Distinct certified keys with a valid signature.
        signers: usize,
        /// How many are needed.
        threshold: u32,
    },
    /// The signed text is not a timestamp this code can read.
    Malformed(String),
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::BelowThreshold { signers, threshold } => write!(
                f,
                "timestamp signature does not verify: {signers} certified release key(s) signed it, {threshold} needed"
            ),
            TimestampError::Malformed(why) => write!(f, "malformed timestamp: {why}"),
        }
    }
}

impl std::error::Error for TimestampError {}

impl Timestamp {
    /// A timestamp (format [`TIMESTAMP_FORMAT`]).
    pub fn new(version: &str, counter: u64, issued: u64, expires: u64) -> Timestamp {
        Timestamp {
            kind: DocumentType::Timestamp,
            format: TIMESTAMP_FORMAT,
            version: version.to_owned(),
            counter,
            issued,
            expires,
        }
    }

    /// The timestamp signed by `keys`.
    pub fn sign(&self, keys: &[&KeyPair]) -> Envelope {
        Envelope::sign(self, keys)
    }

    /// Verifies that `threshold` distinct keys of `certified` signed it.
    pub fn open(
        envelope: &Envelope,
        certified: &[PublicKey],
        threshold: u32,
    ) -> Result<Timestamp, TimestampError> {
        let signers = envelope.signed_by(certified);
        if signers == 0 || signers < threshold as usize {
            return Err(TimestampError::BelowThreshold { signers, threshold });
        }
        let timestamp: Timestamp = serde_json::from_str(&envelope.signed)
            .map_err(|e| TimestampError::Malformed(e.to_string()))?;
        if timestamp.kind != DocumentType::Timestamp {
            return Err(TimestampError::Malformed(format!(
                "a {:?} document is not a timestamp",
                timestamp.kind
            )));
        }
        if timestamp.format != TIMESTAMP_FORMAT {
            return Err(TimestampError::Malformed(format!(
                "format {} (this meter reads format {TIMESTAMP_FORMAT})",
                timestamp.format
            )));
        }
        Ok(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::RootCertificate;

    #[test]
    fn a_timestamp_needs_the_threshold_of_certified_keys() {
        let (a, b, c) = (
            KeyPair::from_seed([1; 32]),
            KeyPair::from_seed([2; 32]),
            KeyPair::from_seed([3; 32]),
        );
        let certified = [a.public(), b.public()];
        let timestamp = Timestamp::new("1.1.0", 3, 10, 20);
        assert!(Timestamp::open(&timestamp.sign(&[&a, &b]), &certified, 2).is_ok());
        assert_eq!(
            Timestamp::open(&timestamp.sign(&[&a, &c]), &certified, 2),
            Err(TimestampError::BelowThreshold {
                signers: 1,
                threshold: 2
            })
        );
        assert!(Timestamp::open(&timestamp.sign(&[&c]), &certified, 1).is_err());
    }

    #[test]
    fn no_other_signed_text_passes_for_a_timestamp() {
        let a = KeyPair::from_seed([1; 32]);
        let certificate = RootCertificate::new(1, vec![a.public()], 1, 10, 99);
        let envelope = certificate.sign(&a);
        let error = Timestamp::open(&envelope, &[a.public()], 1).unwrap_err();
        assert!(matches!(error, TimestampError::Malformed(_)), "{error}");
    }
}
