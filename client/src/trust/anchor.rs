//! The trust anchor a meter is provisioned with, and its file.

use std::io;

use otavan_protocol::keys::{KeyRole, PublicKey};

use crate::engine::EngineError;
use crate::path::MeterPath;
use crate::state::{root_key_file, trust_file};
use crate::storage::{Storage, write_atomic};

/// What a signed meter trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// One release key signs everything (`.otavan/trust.pub`; `otavan
    /// device init --public-key`).
    Key(PublicKey),
    /// The offline root key, which certifies the release keys
    /// (`.otavan/root.pub`; `otavan device init --root-key`).
    Root(PublicKey),
}

impl Anchor {
    /// The meter's anchor; `None` for a meter that trusts any server.
    pub fn load(storage: &dyn Storage) -> Result<Option<Anchor>, EngineError> {
        let key = read(storage, &trust_file(), KeyRole::Release)?;
        let root = read(storage, &root_key_file(), KeyRole::Root)?;
        match (key, root) {
            (None, None) => Ok(None),
            (Some(key), None) => Ok(Some(Anchor::Key(key))),
            (None, Some(root)) => Ok(Some(Anchor::Root(root))),
            (Some(_), Some(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("both {} and {} exist", trust_file(), root_key_file()),
            )
            .into()),
        }
    }

    /// Writes the anchor's file (provisioning).
    pub fn save(&self, storage: &dyn Storage) -> io::Result<()> {
        let (path, text) = match self {
            Anchor::Key(key) => (trust_file(), key.to_file_as(KeyRole::Release)),
            Anchor::Root(key) => (root_key_file(), key.to_file_as(KeyRole::Root)),
        };
        write_atomic(storage, &path, text.as_bytes())
    }
}

/// The key in `path`, if the file exists.
fn read(
    storage: &dyn Storage,
    path: &MeterPath,
    role: KeyRole,
) -> Result<Option<PublicKey>, EngineError> {
    let bytes = match storage.read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let key = PublicKey::from_text_as(&String::from_utf8_lossy(&bytes), role)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {e}")))?;
    Ok(Some(key))
}
