//! Signed JSON documents: the exact text that was signed, and who signed
//! it.
//!
//! Verification never depends on how JSON is re-serialised: the signature
//! covers the bytes of `signed`, and the document is parsed from those
//! bytes only after enough trusted keys have signed them. A key counts
//! once however often it appears, and a signature by a key the verifier
//! does not trust counts for nothing, so extra signatures can neither help
//! nor hurt.

use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PublicKey};

/// What a signed document is, its `type` field: one role's document can
/// never be passed off as another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocumentType {
    /// A [`crate::root::RootCertificate`].
    #[serde(rename = "otavan-root")]
    Root,
    /// A [`crate::timestamp::Timestamp`].
    #[serde(rename = "otavan-timestamp")]
    Timestamp,
    /// A [`crate::halt::Halt`].
    #[serde(rename = "otavan-halt")]
    Halt,
}

/// One key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySignature {
    /// Hex public key of the signer (informative: a signature counts for
    /// every trusted key it verifies with, whatever this says).
    pub key: String,
    /// Hex Ed25519 signature of the signed text's bytes.
    pub signature: String,
}

impl KeySignature {
    /// `keys`' signature of `text`.
    pub fn of(text: &str, keys: &KeyPair) -> KeySignature {
        KeySignature {
            key: keys.public().to_text(),
            signature: keys.sign(text.as_bytes()),
        }
    }
}

/// A JSON document and its signatures (`root.json`, `timestamp.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The document, as the JSON text that was signed.
    pub signed: String,
    /// Its signatures.
    pub signatures: Vec<KeySignature>,
}

impl Envelope {
    /// `body` serialised and signed by every key in `keys`.
    pub fn sign<T: Serialize>(body: &T, keys: &[&KeyPair]) -> Envelope {
        let signed = serde_json::to_string(body).expect("documents serialise");
        let signatures = keys.iter().map(|k| KeySignature::of(&signed, k)).collect();
        Envelope { signed, signatures }
    }

    /// How many distinct keys of `trusted` signed this envelope.
    pub fn signed_by(&self, trusted: &[PublicKey]) -> usize {
        signers(self.signed.as_bytes(), &self.signatures, trusted)
    }
}

/// How many distinct keys of `trusted` made a valid signature of
/// `message` among `signatures`.
pub fn signers(message: &[u8], signatures: &[KeySignature], trusted: &[PublicKey]) -> usize {
    trusted
        .iter()
        .filter(|key| {
            signatures
                .iter()
                .any(|s| key.verifies(message, &s.signature))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_distinct_trusted_keys_with_valid_signatures_count() {
        let (a, b, c) = (
            KeyPair::from_seed([1; 32]),
            KeyPair::from_seed([2; 32]),
            KeyPair::from_seed([3; 32]),
        );
        let trusted = [a.public(), b.public()];
        let mut envelope = Envelope::sign(&"hello", &[&a, &c]);
        assert_eq!(envelope.signed_by(&trusted), 1, "c is not trusted");
        // The same key twice counts once.
        envelope.signatures.push(envelope.signatures[0].clone());
        assert_eq!(envelope.signed_by(&trusted), 1);
        envelope
            .signatures
            .push(KeySignature::of(&envelope.signed, &b));
        assert_eq!(envelope.signed_by(&trusted), 2);
        // A signature relabelled with a trusted key's name is still c's.
        let mut relabelled = Envelope::sign(&"hello", &[&c]);
        relabelled.signatures[0].key = a.public().to_text();
        assert_eq!(relabelled.signed_by(&trusted), 0);
        // Any change of the text breaks every signature.
        envelope.signed = "\"hullo\"".into();
        assert_eq!(envelope.signed_by(&trusted), 0);
    }
}
