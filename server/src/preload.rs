//! Keeping the hot part of a release in memory.
//!
//! Every meter in a campaign downloads the same target files and firmware,
//! so the van serves those from memory as shared [`Bytes`]: 500 meters
//! fetching one image cost one copy of it, not 500 read buffers. What is
//! preloaded is bounded by a byte budget; everything else is streamed from
//! disk in fixed-size chunks. Preloaded content is checked against the
//! index's SHA-256, so it is exactly what the manifests promise even if the
//! file on disk changes before the next reload.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::index::{IndexedFile, ReleaseIndex};

/// Loads the files meters will ask for, in order of need, until `budget`
/// bytes are used: the target version's files, then firmware images not
/// above the target, highest first. Returns the bytes held.
pub fn preload(index: &ReleaseIndex, budget: u64) -> u64 {
    let target_files = index
        .version(index.target())
        .into_iter()
        .flat_map(|t| t.values());
    let images = index
        .firmware()
        .range(..=index.target())
        .rev()
        .map(|(_, f)| f);
    let mut used = 0;
    for file in target_files.chain(images) {
        if used + file.size > budget {
            continue;
        }
        if load(file) {
            used += file.size;
        }
    }
    used
}

/// Reads one file into memory if its content still matches the index.
fn load(file: &Arc<IndexedFile>) -> bool {
    let content = match std::fs::read(&file.disk_path) {
        Ok(content) => content,
        Err(error) => {
            warn!(path = %file.disk_path.display(), %error, "cannot preload file");
            return false;
        }
    };
    if hex::encode(Sha256::digest(&content)) != file.sha256 {
        warn!(path = %file.disk_path.display(), "file changed since it was indexed; not preloading");
        return false;
    }
    file.set_cached(Bytes::from(content));
    true
}
