//! A campaign's halt (`HALT.json`): signed by a release key when a wave's
//! gate trips (`otavan campaign halt`), it tells a van without the fleet
//! database to stop offering the campaign's target (`otavan serve
//! --halt-file HALT.json --halt-key KEY`: `null` manifests for that
//! target, every other version unaffected).
//!
//! ```
//! use otavan_protocol::halt::Halt;
//! use otavan_protocol::keys::KeyPair;
//! let key = KeyPair::from_seed([7; 32]);
//! let halt = Halt::new(7, "1.1.0", "wave 1: failure rate 25 %", 1_750_000_000);
//! let file = serde_json::to_string(&halt.sign(&key)).unwrap();
//! assert_eq!(Halt::open(&file, &[key.public()]).unwrap(), halt);
//! let other = KeyPair::from_seed([8; 32]);
//! assert!(Halt::open(&file, &[other.public()]).is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PublicKey};
use crate::signed::{DocumentType, Envelope};

/// The layout this code reads ([`Halt::format`]).
pub const HALT_FORMAT: u32 = 1;

/// A halted campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Halt {
    /// Always [`DocumentType::Halt`] (`"otavan-halt"`).
    #[serde(rename = "type")]
    pub kind: DocumentType,
    /// The layout of this text ([`HALT_FORMAT`]).
    pub format: u32,
    /// The campaign number its WAKEs carried.
    pub campaign: u16,
    /// The target version no van may offer any more.
    pub target: String,
    /// Why: the figures and thresholds that tripped the gate.
    pub reason: String,
    /// Unix time (seconds) it was decided.
    pub issued: u64,
}

/// Why a halt file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HaltError {
    /// It is not a signed envelope, or its text not a halt.
    #[error("not a halt file: {0}")]
    Malformed(String),
    /// No trusted key signed it.
    #[error("the halt's signature does not verify with the trusted halt key")]
    Untrusted,
}

impl Halt {
    /// A halt (format [`HALT_FORMAT`]).
    pub fn new(campaign: u16, target: &str, reason: &str, issued: u64) -> Halt {
        Halt {
            kind: DocumentType::Halt,
            format: HALT_FORMAT,
            campaign,
            target: target.to_owned(),
            reason: reason.to_owned(),
            issued,
        }
    }

    /// The halt signed by `key`.
    pub fn sign(&self, key: &KeyPair) -> Envelope {
        Envelope::sign(self, &[key])
    }

    /// The halt in the envelope `text`, when a key of `trusted` signed it.
    ///
    /// # Errors
    ///
    /// [`HaltError`]: not an envelope or a halt, or no trusted signature.
    pub fn open(text: &str, trusted: &[PublicKey]) -> Result<Halt, HaltError> {
        let envelope: Envelope =
            serde_json::from_str(text).map_err(|e| HaltError::Malformed(e.to_string()))?;
        if envelope.signed_by(trusted) == 0 {
            return Err(HaltError::Untrusted);
        }
        let halt: Halt = serde_json::from_str(&envelope.signed)
            .map_err(|e| HaltError::Malformed(e.to_string()))?;
        if halt.kind != DocumentType::Halt {
            return Err(HaltError::Malformed(format!(
                "a {:?} document is not a halt",
                halt.kind
            )));
        }
        if halt.format != HALT_FORMAT {
            return Err(HaltError::Malformed(format!(
                "format {} (this van reads format {HALT_FORMAT})",
                halt.format
            )));
        }
        Ok(halt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    #[test]
    fn an_edited_halt_or_another_signed_document_is_refused() {
        let key = KeyPair::from_seed([1; 32]);
        let halt = Halt::new(7, "1.1.0", "failure rate", 1);
        let mut envelope = halt.sign(&key);
        envelope.signed = envelope.signed.replace("1.1.0", "1.2.0");
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(
            Halt::open(&text, &[key.public()]),
            Err(HaltError::Untrusted)
        );
        let timestamp =
            serde_json::to_string(&Timestamp::new("1.1.0", 1, 1, 2).sign(&[&key])).unwrap();
        assert!(matches!(
            Halt::open(&timestamp, &[key.public()]),
            Err(HaltError::Malformed(_))
        ));
    }
}
