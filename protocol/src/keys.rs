//! Ed25519 keys, their files, and the role each key plays.
//!
//! Two roles: the **root** key, kept offline, only certifies which
//! release keys meters trust ([`crate::root`]); a **release** key signs
//! target descriptors ([`crate::descriptor`]) and timestamps
//! ([`crate::timestamp`]). A key file names its role on its first line,
//! so a release key given where the root key is expected (or the other
//! way round) is refused instead of silently trusted.
//!
//! ```
//! use otavan_protocol::keys::{KeyPair, KeyRole, PublicKey};
//! let root = KeyPair::from_seed([1; 32]);
//! let file = root.public().to_file_as(KeyRole::Root);
//! assert!(file.starts_with("otavan-ed25519-root-public\n"));
//! assert_eq!(PublicKey::from_text_as(&file, KeyRole::Root).unwrap(), root.public());
//! assert!(PublicKey::from_text(&file).is_err(), "a root key is not a release key");
//! ```

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Signs descriptors and timestamps (`otavan keygen`).
    Release,
    /// Certifies release keys, offline (`otavan keygen --role root`).
    Root,
}

impl KeyRole {
    /// The first line of a public key file of this role.
    fn public_tag(self) -> &'static str {
        match self {
            KeyRole::Release => "otavan-ed25519-public",
            KeyRole::Root => "otavan-ed25519-root-public",
        }
    }

    /// The first line of a secret key file of this role.
    fn secret_tag(self) -> &'static str {
        match self {
            KeyRole::Release => "otavan-ed25519-secret",
            KeyRole::Root => "otavan-ed25519-root-secret",
        }
    }
}

/// An Ed25519 public key (a meter's trust anchor, or a certified release
/// key).
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

impl PublicKey {
    /// The key in hex (64 digits).
    pub fn to_text(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Parses a release public key file (tag line optional) or bare hex.
    pub fn from_text(text: &str) -> Result<PublicKey, KeyError> {
        PublicKey::from_text_as(text, KeyRole::Release)
    }

    /// Parses a public key file of `role` (tag line optional) or bare hex.
    pub fn from_text_as(text: &str, role: KeyRole) -> Result<PublicKey, KeyError> {
        let bytes = key_bytes(text, role.public_tag())?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError("not a valid Ed25519 public key".into()))
    }

    /// The contents of a release key's `.pub` file.
    pub fn to_file(&self) -> String {
        self.to_file_as(KeyRole::Release)
    }

    /// The contents of a `.pub` file for a key of `role`.
    pub fn to_file_as(&self, role: KeyRole) -> String {
        format!("{}\n{}\n", role.public_tag(), self.to_text())
    }

    /// Whether `signature` (hex) is this key's strict Ed25519 signature of
    /// `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = hex::decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
        else {
            return false;
        };
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// A signing key and its public half.
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

    /// Parses a release secret key file.
    pub fn from_text(text: &str) -> Result<KeyPair, KeyError> {
        KeyPair::from_text_as(text, KeyRole::Release)
    }

    /// Parses a secret key file of `role`.
    pub fn from_text_as(text: &str, role: KeyRole) -> Result<KeyPair, KeyError> {
        key_bytes(text, role.secret_tag()).map(KeyPair::from_seed)
    }

    /// The contents of a release key's `.key` file.
    pub fn to_file(&self) -> String {
        self.to_file_as(KeyRole::Release)
    }

    /// The contents of a `.key` file for a key of `role`.
    pub fn to_file_as(&self, role: KeyRole) -> String {
        format!(
            "{}\n{}\n",
            role.secret_tag(),
            hex::encode(self.signing.to_bytes())
        )
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The hex Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.signing.sign(message).to_bytes())
    }
}

/// 32 bytes of hex after an optional tag line, which must be `tag`.
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
    fn a_key_file_of_one_role_is_refused_for_the_other() {
        let keys = KeyPair::from_seed([9; 32]);
        for (role, other) in [
            (KeyRole::Root, KeyRole::Release),
            (KeyRole::Release, KeyRole::Root),
        ] {
            let public = keys.public().to_file_as(role);
            let secret = keys.to_file_as(role);
            assert_eq!(
                PublicKey::from_text_as(&public, role).unwrap(),
                keys.public()
            );
            assert_eq!(
                KeyPair::from_text_as(&secret, role).unwrap().public(),
                keys.public()
            );
            let error = PublicKey::from_text_as(&public, other).unwrap_err();
            assert!(error.to_string().contains("expected a"), "{error}");
            assert!(KeyPair::from_text_as(&secret, other).is_err());
        }
        // Bare hex carries no role: accepted as either, as before roles.
        let bare = keys.public().to_text();
        assert!(PublicKey::from_text_as(&bare, KeyRole::Root).is_ok());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let keys = KeyPair::from_seed([3; 32]);
        let signature = keys.sign(b"message");
        assert!(keys.public().verifies(b"message", &signature));
        assert!(!keys.public().verifies(b"massage", &signature));
        let other = KeyPair::from_seed([4; 32]);
        assert!(!other.public().verifies(b"message", &signature));
        assert!(!keys.public().verifies(b"message", "00"));
        assert!(!keys.public().verifies(b"message", "not hex"));
    }
}
