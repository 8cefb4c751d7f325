//! `otavan release sign`: writing a signed target descriptor for every
//! version of a release, and the timestamp naming the latest, on the
//! release manager's machine.
//!
//! A version's counter is fixed the first time it is signed. Signing again
//! (to renew the expiry, or with keys certified after a rotation) keeps
//! every existing descriptor's counter, read from the descriptors already
//! in the release root, and gives only versions signed for the first time
//! counters above the highest. A new version must lie above every version
//! already signed: its counter will be above theirs, and meters take
//! counters and versions only in the same order, so a lower one would
//! either never install or, worse, give an old version a counter above a
//! newer one.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use otavan_protocol::Version;
use otavan_protocol::descriptor::{
    DescribedFile, DescribedImage, KeyPair, SignedDescriptor, TargetDescriptor,
};
use otavan_protocol::timestamp::{TIMESTAMP_FILE, Timestamp};

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
    /// An existing descriptor cannot be read, so its counter is unknown.
    #[error("{path}: {reason} (its counter must be kept; restore or remove it)")]
    Existing {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A version signed for the first time lies below one already signed.
    #[error(
        "{new} is below {signed}, already signed with counter {counter}: a new version must be above every signed one"
    )]
    BelowSigned {
        /// The new version.
        new: Version,
        /// The highest version already signed.
        signed: Version,
        /// Its counter.
        counter: u64,
    },
    /// No key to sign with.
    #[error("no signing key given")]
    NoKey,
}

/// How to sign.
pub struct Signing<'a> {
    /// The release keys that sign (all of them sign every file; a
    /// certificate's threshold says how many meters need).
    pub keys: &'a [&'a KeyPair],
    /// Unix seconds now (the timestamp's `issued`).
    pub now: u64,
    /// Unix seconds until which meters accept the descriptors.
    pub expires: u64,
    /// Unix seconds until which meters accept the timestamp.
    pub timestamp_expires: u64,
}

/// One descriptor written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The version described.
    pub version: Version,
    /// Its release counter.
    pub counter: u64,
    /// Whether the version was signed for the first time.
    pub new: bool,
    /// The file written.
    pub path: PathBuf,
}

/// Signs every version under `root` with `signing.keys` and writes the
/// timestamp naming the one with the highest counter. Each file is
/// written atomically and durably ([`otavan_durable::write_atomic`]: on
/// disk when this returns); nothing is written when a check fails.
pub fn sign_release(root: &Path, signing: &Signing<'_>) -> Result<Vec<Signed>, SignError> {
    let (first, more) = signing.keys.split_first().ok_or(SignError::NoKey)?;
    let index = ReleaseIndex::build(root, None, &[])?;
    let counters = assign_counters(&index)?;
    let mut written = Vec::new();
    for (version, (counter, new)) in &counters {
        let descriptor = describe(&index, version, *counter, signing.expires);
        let signed = SignedDescriptor::sign_by(&descriptor, first, more);
        let path = index.root().join(descriptor_url_path(version));
        write(
            &path,
            &serde_json::to_vec_pretty(&signed).expect("serialises"),
        )?;
        written.push(Signed {
            version: version.clone(),
            counter: *counter,
            new: *new,
            path,
        });
    }
    if let Some(latest) = written.iter().max_by_key(|s| s.counter) {
        let timestamp = Timestamp::new(
            latest.version.as_str(),
            latest.counter,
            signing.now,
            signing.timestamp_expires,
        );
        let envelope = timestamp.sign(signing.keys);
        let path = index.root().join(TIMESTAMP_FILE);
        write(
            &path,
            &serde_json::to_vec_pretty(&envelope).expect("serialises"),
        )?;
    }
    Ok(written)
}

/// Every version to sign with its counter and whether it is new: the
/// existing descriptors' counters (also of versions whose folder is
/// gone), and counters above the highest for the rest, in version order.
fn assign_counters(index: &ReleaseIndex) -> Result<BTreeMap<Version, (u64, bool)>, SignError> {
    let mut existing = BTreeMap::new();
    for (version, file) in index.descriptors() {
        let reason = |reason: String| SignError::Existing {
            path: file.disk_path.clone(),
            reason,
        };
        let bytes = std::fs::read(&file.disk_path).map_err(|e| reason(e.to_string()))?;
        let descriptor = serde_json::from_slice::<SignedDescriptor>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|signed| signed.descriptor().map_err(|e| e.to_string()))
            .map_err(reason)?;
        if descriptor.version != version.as_str() {
            return Err(reason(format!("describes version {}", descriptor.version)));
        }
        existing.insert(version.clone(), descriptor.counter);
    }
    let mut highest_counter = existing.values().copied().max().unwrap_or(0);
    let mut highest_version = existing.iter().next_back().map(|(v, c)| (v.clone(), *c));
    let mut counters: BTreeMap<Version, (u64, bool)> = existing
        .iter()
        .filter(|(version, _)| index.version(version).is_some())
        .map(|(version, counter)| (version.clone(), (*counter, false)))
        .collect();
    for version in index.versions() {
        if counters.contains_key(version) {
            continue;
        }
        if let Some((signed, counter)) = &highest_version
            && signed > version
        {
            return Err(SignError::BelowSigned {
                new: version.clone(),
                signed: signed.clone(),
                counter: *counter,
            });
        }
        highest_counter += 1;
        counters.insert(version.clone(), (highest_counter, true));
        highest_version = Some((version.clone(), highest_counter));
    }
    Ok(counters)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), SignError> {
    otavan_durable::write_atomic(path, bytes).map_err(|error| SignError::Write {
        path: path.to_path_buf(),
        error,
    })
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
