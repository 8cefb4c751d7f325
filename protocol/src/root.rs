//! The root certificate (`root.json`): which release keys meters trust.
//!
//! Meters are provisioned with the root public key only. The root key,
//! kept offline, signs a [`RootCertificate`]: the release keys, how many
//! of them must sign each descriptor and timestamp (the threshold), the
//! largest jump of the release counter a meter accepts, and an expiry.
//! The van serves it at the release root beside the descriptors. A meter
//! keeps the highest-`version` certificate it has verified and follows
//! every higher one: rotating a release key is a new certificate without
//! it, and from then on the meter refuses what the old key signs.
//!
//! The text is versioned twice: `format` (this layout, 1) and `version`
//! (the certificate's place in its sequence, only ever growing).
//!
//! ```
//! use otavan_protocol::keys::KeyPair;
//! use otavan_protocol::root::RootCertificate;
//! let root = KeyPair::from_seed([1; 32]);
//! let release = KeyPair::from_seed([2; 32]);
//! let certificate = RootCertificate::new(1, vec![release.public()], 1, 100, 2_000_000_000);
//! let envelope = certificate.sign(&root);
//! assert_eq!(RootCertificate::open(&envelope, &root.public()).unwrap(), certificate);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PublicKey};
use crate::signed::{DocumentType, Envelope};

/// The certificate's file name at the release root.
pub const ROOT_FILE: &str = "root.json";

/// The layout meters read ([`RootCertificate::format`]).
pub const ROOT_FORMAT: u32 = 1;

/// What the root key vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootCertificate {
    /// Always [`DocumentType::Root`] (`"otavan-root"`).
    #[serde(rename = "type")]
    pub kind: DocumentType,
    /// The layout of this text ([`ROOT_FORMAT`]).
    pub format: u32,
    /// Grows with every certificate the root signs; meters follow only
    /// higher ones.
    pub version: u64,
    /// Unix time (seconds) from which meters refuse the certificate.
    pub expires: u64,
    /// The certified release keys, hex.
    pub keys: Vec<String>,
    /// How many distinct certified keys must sign a descriptor or a
    /// timestamp.
    pub threshold: u32,
    /// The largest step from the highest release counter a meter has
    /// installed to the counter of the release it installs next.
    pub max_counter_jump: u64,
}

/// Why a certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateError {
    /// The root key did not sign it.
    BadSignature,
    /// The signed text is not a certificate this code can read.
    Malformed(String),
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateError::BadSignature => {
                f.write_str("root certificate signature does not verify with the root key")
            }
            CertificateError::Malformed(why) => write!(f, "malformed root certificate: {why}"),
        }
    }
}

impl std::error::Error for CertificateError {}

impl RootCertificate {
    /// A certificate (format [`ROOT_FORMAT`]) for `keys`.
    pub fn new(
        version: u64,
        keys: Vec<PublicKey>,
        threshold: u32,
        max_counter_jump: u64,
        expires: u64,
    ) -> RootCertificate {
        RootCertificate {
            kind: DocumentType::Root,
            format: ROOT_FORMAT,
            version,
            expires,
            keys: keys.iter().map(PublicKey::to_text).collect(),
            threshold,
            max_counter_jump,
        }
    }

    /// The certificate signed by the root key.
    pub fn sign(&self, root: &KeyPair) -> Envelope {
        Envelope::sign(self, &[root])
    }

    /// Verifies `envelope` with the root key and checks the certificate
    /// is usable: a known format, valid keys, a threshold from one to the
    /// number of keys.
    pub fn open(
        envelope: &Envelope,
        root: &PublicKey,
    ) -> Result<RootCertificate, CertificateError> {
        if envelope.signed_by(std::slice::from_ref(root)) == 0 {
            return Err(CertificateError::BadSignature);
        }
        let malformed = |why: String| Err(CertificateError::Malformed(why));
        let certificate: RootCertificate = match serde_json::from_str(&envelope.signed) {
            Ok(certificate) => certificate,
            Err(e) => return malformed(e.to_string()),
        };
        if certificate.kind != DocumentType::Root {
            return malformed(format!(
                "a {:?} document is not a certificate",
                certificate.kind
            ));
        }
        if certificate.format != ROOT_FORMAT {
            return malformed(format!(
                "format {} (this meter reads format {ROOT_FORMAT})",
                certificate.format
            ));
        }
        let keys = match certificate.public_keys() {
            Ok(keys) => keys,
            Err(e) => return malformed(e),
        };
        if certificate.threshold == 0 || certificate.threshold as usize > keys.len() {
            return malformed(format!(
                "threshold {} for {} key(s)",
                certificate.threshold,
                keys.len()
            ));
        }
        Ok(certificate)
    }

    /// The certified keys (each distinct).
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, String> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for text in &self.keys {
            let key = PublicKey::from_text(text).map_err(|e| format!("key {text:?}: {e}"))?;
            if keys.contains(&key) {
                return Err(format!("key {text} is listed twice"));
            }
            keys.push(key);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(n: u8) -> PublicKey {
        KeyPair::from_seed([n; 32]).public()
    }

    #[test]
    fn only_the_root_key_opens_a_certificate() {
        let root = KeyPair::from_seed([1; 32]);
        let certificate = RootCertificate::new(3, vec![release(2), release(3)], 2, 10, 99);
        let envelope = certificate.sign(&root);
        assert_eq!(
            RootCertificate::open(&envelope, &root.public()).unwrap(),
            certificate
        );
        assert_eq!(
            RootCertificate::open(&envelope, &release(2)),
            Err(CertificateError::BadSignature)
        );
        // A release key cannot certify itself.
        let forged = certificate.sign(&KeyPair::from_seed([2; 32]));
        assert!(RootCertificate::open(&forged, &root.public()).is_err());
        let mut tampered = envelope;
        tampered.signed = tampered.signed.replace("\"version\":3", "\"version\":4");
        assert_eq!(
            RootCertificate::open(&tampered, &root.public()),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn the_text_names_its_role_and_format() {
        let certificate = RootCertificate::new(1, vec![release(2)], 1, 10, 99);
        let text = serde_json::to_string(&certificate).unwrap();
        assert!(
            text.starts_with(r#"{"type":"otavan-root","format":1,"version":1,"#),
            "{text}"
        );
        // A text of another type, signed by the root, is not a certificate.
        let root = KeyPair::from_seed([1; 32]);
        let other = RootCertificate {
            kind: DocumentType::Timestamp,
            ..certificate
        };
        let error = RootCertificate::open(&other.sign(&root), &root.public()).unwrap_err();
        assert!(error.to_string().contains("not a certificate"), "{error}");
    }

    #[test]
    fn unusable_certificates_are_refused() {
        let root = KeyPair::from_seed([1; 32]);
        let open = |c: &RootCertificate| RootCertificate::open(&c.sign(&root), &root.public());
        let good = RootCertificate::new(1, vec![release(2)], 1, 10, 99);
        assert!(open(&good).is_ok());
        for (bad, why) in [
            (
                RootCertificate {
                    threshold: 2,
                    ..good.clone()
                },
                "threshold 2 for 1 key",
            ),
            (
                RootCertificate {
                    threshold: 0,
                    ..good.clone()
                },
                "threshold 0",
            ),
            (
                RootCertificate {
                    format: 2,
                    ..good.clone()
                },
                "format 2",
            ),
            (
                RootCertificate {
                    keys: vec![release(2).to_text(), release(2).to_text()],
                    ..good.clone()
                },
                "listed twice",
            ),
            (
                RootCertificate {
                    keys: vec!["zz".into()],
                    ..good.clone()
                },
                "64 hex digits",
            ),
        ] {
            let error = open(&bad).unwrap_err().to_string();
            assert!(error.contains(why), "{error}");
        }
    }
}
