//! A version in four bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::Version;

/// The first four bytes of the SHA-256 of a version string: short enough
/// for a downlink, long enough that two versions of one fleet practically
/// never share a tag. Shown as 8 lowercase hex digits.
///
/// ```
/// use otavan_protocol::{Version, lora::VersionTag};
/// let v: Version = "1.1.0".parse().unwrap();
/// assert_eq!(VersionTag::of(&v).to_string().len(), 8);
/// assert_eq!(VersionTag::of(&v), VersionTag::of(&"1.1.0".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionTag(pub [u8; 4]);

impl VersionTag {
    /// The tag of `version` (of its exact string: `1.1` and `1.1.0` differ).
    pub fn of(version: &Version) -> VersionTag {
        let digest = Sha256::digest(version.as_str().as_bytes());
        VersionTag([digest[0], digest[1], digest[2], digest[3]])
    }

    /// The four bytes.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for VersionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for VersionTag {
    type Err = hex::FromHexError;

    /// Parses 8 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; 4];
        hex::decode_to_slice(s, &mut bytes)?;
        Ok(VersionTag(bytes))
    }
}

impl Serialize for VersionTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
