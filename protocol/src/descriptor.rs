//! Signed target descriptors: what a release manager vouches for, offline.
//!
//! A [`TargetDescriptor`] lists everything a version consists of (every
//! file's path, SHA-256 and size, the firmware image's SHA-256 and size),
//! a release counter that only ever grows, and an expiry. The release
//! manager signs it with an Ed25519 key that never leaves their machine;
//! the van only carries the result, so a rogue access point, or a stolen
//! van, cannot make a provisioned meter install anything else.
//!
//! On the wire a [`SignedDescriptor`] carries the descriptor as the exact
//! JSON text that was signed, so verification never depends on how JSON is
//! re-serialised.
//!
//! ```
//! use otavan_protocol::descriptor::{KeyPair, SignedDescriptor, TargetDescriptor};
//! let keys = KeyPair::from_seed([7; 32]);
//! let descriptor = TargetDescriptor {
//!     version: "1.1.0".into(),
//!     counter: 3,
//!     expires: 2_000_000_000,
//!     files: vec![],
//!     firmware: None,
//! };
//! let signed = SignedDescriptor::sign(&descriptor, &keys);
//! assert_eq!(signed.verify(&keys.public()).unwrap(), descriptor);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::keys::{KeyError, KeyPair, PublicKey};
use crate::signed::{KeySignature, signers};

/// Everything a version consists of, as the release manager signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDescriptor {
    /// The version described.
    pub version: String,
    /// Grows with every signing run; meters refuse anything below the
    /// highest counter they have installed.
    pub counter: u64,
    /// Unix time (seconds) after which meters refuse the descriptor.
    pub expires: u64,
    /// Every file of the version, sorted by path (relative, no leading `/`).
    pub files: Vec<DescribedFile>,
    /// The firmware image a meter at this version runs, if any.
    pub firmware: Option<DescribedImage>,
}

/// One file of a described version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribedFile {
    /// Path relative to the meter's root (`flash/main.py`).
    pub path: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A described firmware image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribedImage {
    /// Lower-case hex SHA-256 of the image.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

impl TargetDescriptor {
    /// The entry for `path`, if the version has that file.
    pub fn file(&self, path: &str) -> Option<&DescribedFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// A descriptor and its signatures, as served next to the release
/// (`target_VERSION.json`).
///
/// One signer's descriptor has exactly the shape meters read before
/// release roles existed (`signed`, `signature`, `key`); further signers,
/// for a certificate's threshold above one, go in `cosignatures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDescriptor {
    /// The [`TargetDescriptor`] as the JSON text that was signed.
    pub signed: String,
    /// Hex Ed25519 signature of `signed`'s bytes.
    pub signature: String,
    /// Hex public key of the signer (informative: meters verify against
    /// the keys they trust, never this one).
    pub key: String,
    /// Signatures by further release keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosignatures: Vec<KeySignature>,
}

/// Why a descriptor is not trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorError {
    /// The signature is malformed or does not match the provisioned key.
    BadSignature,
    /// Fewer certified release keys signed it than the certificate asks.
    BelowThreshold {
        /// Distinct certified keys with a valid signature.
        signers: usize,
        /// How many the certificate asks for.
        threshold: u32,
    },
    /// The signed text is not a descriptor.
    Malformed(String),
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::BadSignature => {
                f.write_str("descriptor signature does not verify with the provisioned key")
            }
            DescriptorError::BelowThreshold { signers, threshold } => write!(
                f,
                "descriptor signature does not verify: {signers} certified release key(s) signed it, {threshold} needed"
            ),
            DescriptorError::Malformed(why) => write!(f, "malformed descriptor: {why}"),
        }
    }
}

impl std::error::Error for DescriptorError {}

impl SignedDescriptor {
    /// Signs `descriptor` with `keys`.
    pub fn sign(descriptor: &TargetDescriptor, keys: &KeyPair) -> SignedDescriptor {
        SignedDescriptor::sign_by(descriptor, keys, &[])
    }

    /// Signs `descriptor` with `first` and every key of `more`.
    pub fn sign_by(
        descriptor: &TargetDescriptor,
        first: &KeyPair,
        more: &[&KeyPair],
    ) -> SignedDescriptor {
        let signed = serde_json::to_string(descriptor).expect("descriptor serialises");
        SignedDescriptor {
            signature: first.sign(signed.as_bytes()),
            key: first.public().to_text(),
            cosignatures: more.iter().map(|k| KeySignature::of(&signed, k)).collect(),
            signed,
        }
    }

    /// Checks that `key` signed it and returns the descriptor.
    pub fn verify(&self, key: &PublicKey) -> Result<TargetDescriptor, DescriptorError> {
        if self.signers(std::slice::from_ref(key)) == 0 {
            return Err(DescriptorError::BadSignature);
        }
        self.descriptor()
    }

    /// Checks that at least `threshold` distinct keys of `certified`
    /// signed it and returns the descriptor.
    pub fn verify_threshold(
        &self,
        certified: &[PublicKey],
        threshold: u32,
    ) -> Result<TargetDescriptor, DescriptorError> {
        let signers = self.signers(certified);
        if signers < threshold as usize || signers == 0 {
            return Err(DescriptorError::BelowThreshold { signers, threshold });
        }
        self.descriptor()
    }

    /// The signed descriptor, parsed without checking any signature: for
    /// a meter's own record of what it installed, and for the release
    /// manager's record of the counters it gave.
    pub fn descriptor(&self) -> Result<TargetDescriptor, DescriptorError> {
        serde_json::from_str(&self.signed).map_err(|e| DescriptorError::Malformed(e.to_string()))
    }

    /// Distinct keys of `trusted` that signed it.
    fn signers(&self, trusted: &[PublicKey]) -> usize {
        let primary = KeySignature {
            key: self.key.clone(),
            signature: self.signature.clone(),
        };
        let all: Vec<KeySignature> = std::iter::once(primary)
            .chain(self.cosignatures.iter().cloned())
            .collect();
        signers(self.signed.as_bytes(), &all, trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor() -> TargetDescriptor {
        TargetDescriptor {
            version: "1.1.0".into(),
            counter: 4,
            expires: 1_900_000_000,
            files: vec![DescribedFile {
                path: "flash/main.py".into(),
                sha256: "ab".repeat(32),
                size: 10,
            }],
            firmware: Some(DescribedImage {
                sha256: "cd".repeat(32),
                size: 100,
            }),
        }
    }

    #[test]
    fn signed_descriptors_verify_only_with_their_key() {
        let keys = KeyPair::from_seed([1; 32]);
        let signed = SignedDescriptor::sign(&descriptor(), &keys);
        assert_eq!(signed.verify(&keys.public()), Ok(descriptor()));
        let other = KeyPair::from_seed([2; 32]);
        assert_eq!(
            signed.verify(&other.public()),
            Err(DescriptorError::BadSignature)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let keys = KeyPair::from_seed([1; 32]);
        let signed = SignedDescriptor::sign(&descriptor(), &keys);
        let mut tampered = signed.clone();
        tampered.signed = tampered.signed.replace("\"counter\":4", "\"counter\":9");
        assert_ne!(tampered.signed, signed.signed);
        assert_eq!(
            tampered.verify(&keys.public()),
            Err(DescriptorError::BadSignature)
        );
        let mut bad = signed.clone();
        bad.signature = "00".into();
        assert_eq!(
            bad.verify(&keys.public()),
            Err(DescriptorError::BadSignature)
        );
        // Swapping in the attacker's key field changes nothing: it is informative.
        let mut relabelled = signed;
        relabelled.key = KeyPair::from_seed([2; 32]).public().to_text();
        assert!(relabelled.verify(&keys.public()).is_ok());
    }

    #[test]
    fn file_lookup_uses_the_sorted_order() {
        let d = descriptor();
        assert_eq!(d.file("flash/main.py").unwrap().size, 10);
        assert!(d.file("flash/other.py").is_none());
    }
}
