//! `otavan release sign`: writing a signed target descriptor for every
//! version of a release, on the release manager's machine.

use std::io;
use std::path::{Path, PathBuf};

use otavan_protocol::Version;
use otavan_protocol::descriptor::{
    DescribedFile, DescribedImage, KeyPair, SignedDescriptor, TargetDescriptor,
};

use crate::index::{IndexError, ReleaseIndex, descriptor_url_path};

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The release could not be indexed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A descriptor could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why not.
        error: io::Error,
    },
}

/// One descriptor written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The version described.
    pub version: Version,
    /// Its release counter.
    pub counter: u64,
    /// The file written.
    pub path: PathBuf,
}

/// Signs every version under `root` with `keys`, valid until `expires`
/// (Unix seconds). Counters continue above any descriptor already in the
/// root that verifies with these keys, in version order, so they only ever
/// grow. Each descriptor is written atomically and durably
/// ([`otavan_durable::write_atomic`]: on disk when this returns).
pub fn sign_release(root: &Path, keys: &KeyPair, expires: u64) -> Result<Vec<Signed>, SignError> {
    let index = ReleaseIndex::build(root, None, &[])?;
    let mut counter = highest_counter(&index, keys);
    let mut written = Vec::new();
    for version in index.versions() {
        counter += 1;
        let descriptor = describe(&index, version, counter, expires);
        let signed = SignedDescriptor::sign(&descriptor, keys);
        let path = index.root().join(descriptor_url_path(version));
        let json = serde_json::to_vec_pretty(&signed).expect("serialises");
        otavan_durable::write_atomic(&path, &json).map_err(|error| SignError::Write {
            path: path.clone(),
            error,
        })?;
        written.push(Signed {
            version: version.clone(),
            counter,
            path,
        });
    }
    Ok(written)
}

/// What a meter at `version` must hold, from the index.
pub fn describe(
    index: &ReleaseIndex,
    version: &Version,
    counter: u64,
    expires: u64,
) -> TargetDescriptor {
    let files = index
        .version(version)
        .map(|tree| {
            tree.iter()
                .map(|(path, file)| DescribedFile {
                    path: path.clone(),
                    sha256: file.sha256.clone(),
                    size: file.size,
                })
                .collect()
        })
        .unwrap_or_default();
    let firmware = index
        .firmware_for(version)
        .map(|(_, image)| DescribedImage {
            sha256: image.sha256.clone(),
            size: image.size,
        });
    TargetDescriptor {
        version: version.to_string(),
        counter,
        expires,
        files,
        firmware,
    }
}

/// The highest counter among the root's descriptors signed by `keys`.
fn highest_counter(index: &ReleaseIndex, keys: &KeyPair) -> u64 {
    index
        .descriptors()
        .values()
        .filter_map(|file| std::fs::read(&file.disk_path).ok())
        .filter_map(|bytes| serde_json::from_slice::<SignedDescriptor>(&bytes).ok())
        .filter_map(|signed| signed.verify(&keys.public()).ok())
        .map(|descriptor| descriptor.counter)
        .max()
        .unwrap_or(0)
}
