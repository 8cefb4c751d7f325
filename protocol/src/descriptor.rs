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

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

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

/// A descriptor and its signature, as served next to the release
/// (`target_VERSION.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDescriptor {
    /// The [`TargetDescriptor`] as the JSON text that was signed.
    pub signed: String,
    /// Hex Ed25519 signature of `signed`'s bytes.
    pub signature: String,
    /// Hex public key of the signer (informative: meters verify against
    /// their provisioned key, never this one).
    pub key: String,
}

/// Why a descriptor is not trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DescriptorError {
    /// The signature is malformed or does not match the provisioned key.
    BadSignature,
    /// The signed text is not a descriptor.
    Malformed(String),
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::BadSignature => {
                f.write_str("descriptor signature does not verify with the provisioned key")
            }
            DescriptorError::Malformed(why) => write!(f, "malformed descriptor: {why}"),
        }
    }
}

impl std::error::Error for DescriptorError {}

impl SignedDescriptor {
    /// Signs `descriptor` with `keys`.
    pub fn sign(descriptor: &TargetDescriptor, keys: &KeyPair) -> SignedDescriptor {
        let signed = serde_json::to_string(descriptor).expect("descriptor serialises");
        let signature = keys.signing.sign(signed.as_bytes());
        SignedDescriptor {
            signed,
            signature: hex::encode(signature.to_bytes()),
            key: keys.public().to_text(),
        }
    }

    /// Checks the signature against `key` and returns the descriptor.
    pub fn verify(&self, key: &PublicKey) -> Result<TargetDescriptor, DescriptorError> {
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(DescriptorError::BadSignature)?;
        key.0
            .verify_strict(self.signed.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| DescriptorError::BadSignature)?;
        serde_json::from_str(&self.signed).map_err(|e| DescriptorError::Malformed(e.to_string()))
    }
}

/// An Ed25519 public key (the meters' trust anchor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// Why a key file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// First line of a public key file.
const PUBLIC_TAG: &str = "otavan-ed25519-public";
/// First line of a secret key file.
const SECRET_TAG: &str = "otavan-ed25519-secret";

impl PublicKey {
    /// The key in hex (64 digits).
    pub fn to_text(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Parses a public key file (tag line optional) or bare hex.
    pub fn from_text(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = key_bytes(text, PUBLIC_TAG)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError("not a valid Ed25519 public key".into()))
    }

    /// The contents of a `.pub` file.
    pub fn to_file(&self) -> String {
        format!("{PUBLIC_TAG}\n{}\n", self.to_text())
    }
}

/// A signing key and its public half (the release manager's).
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// The key pair for a 32-byte secret seed (from a CSPRNG).
    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses a secret key file.
    pub fn from_text(text: &str) -> Result<KeyPair, KeyError> {
        key_bytes(text, SECRET_TAG).map(KeyPair::from_seed)
    }

    /// The contents of a `.key` file.
    pub fn to_file(&self) -> String {
        format!("{SECRET_TAG}\n{}\n", hex::encode(self.signing.to_bytes()))
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }
}

/// 32 bytes of hex after an optional tag line.
fn key_bytes(text: &str, tag: &str) -> Result<[u8; 32], KeyError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines
        .next()
        .ok_or_else(|| KeyError("empty key file".into()))?;
    if line.starts_with("otavan-") {
        if line != tag {
            return Err(KeyError(format!("expected a {tag} key, found {line}")));
        }
        line = lines
            .next()
            .ok_or_else(|| KeyError("key file has no key".into()))?;
    }
    hex::decode(line)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError("key is not 64 hex digits".into()))
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
    fn key_files_round_trip_and_are_checked() {
        let keys = KeyPair::from_seed([9; 32]);
        let public = PublicKey::from_text(&keys.public().to_file()).unwrap();
        assert_eq!(public, keys.public());
        let again = KeyPair::from_text(&keys.to_file()).unwrap();
        assert_eq!(again.public(), keys.public());
        assert!(
            PublicKey::from_text(&keys.to_file()).is_err(),
            "a secret key is not a public key"
        );
        assert!(PublicKey::from_text("zz").is_err());
        assert!(PublicKey::from_text("").is_err());
    }

    #[test]
    fn file_lookup_uses_the_sorted_order() {
        let d = descriptor();
        assert_eq!(d.file("flash/main.py").unwrap().size, 10);
        assert!(d.file("flash/other.py").is_none());
    }
}
