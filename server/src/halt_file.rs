//! A van's halt file (`otavan serve --halt-file HALT.json --halt-key
//! PUBKEY`, written by `otavan campaign halt`): read and verified when the
//! van starts, where a refused file stops the start, and read again on
//! every SIGHUP, where a refused or missing file changes nothing: the
//! halt read before stays in force (a halt is lifted by starting the van
//! without it, or by `campaign resume` in the fleet database).

use std::path::PathBuf;

use otavan_protocol::halt::{Halt, HaltError};
use otavan_protocol::keys::PublicKey;

/// Where the halt file is and the keys it must be signed with.
#[derive(Debug, Clone)]
pub struct HaltFile {
    /// The file.
    pub path: PathBuf,
    /// The release public keys a halt must verify with.
    pub keys: Vec<PublicKey>,
}

/// Why a halt file was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HaltFileError {
    /// It could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a halt signed by a trusted key.
    #[error("{} refused: {source}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        source: HaltError,
    },
}

impl HaltFile {
    /// The halt in the file, verified.
    ///
    /// # Errors
    ///
    /// [`HaltFileError`]: unreadable, or not a halt a trusted key signed.
    pub fn read(&self) -> Result<Halt, HaltFileError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| HaltFileError::Read {
            path: self.path.clone(),
            source,
        })?;
        Halt::open(&text, &self.keys).map_err(|source| HaltFileError::Refused {
            path: self.path.clone(),
            source,
        })
    }
}
