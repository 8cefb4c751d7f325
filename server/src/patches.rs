//! Firmware deltas: bsdiff patches from every older image to the target's.
//!
//! The van's contact window is short and a firmware image is most of an
//! update, so at index time the server computes a patch from each older
//! image to the image meters at the target run, in parallel, and offers it
//! in the manifest beside the full image. Patches are cached on disk under
//! the names of the two images' SHA-256, so a restart (or a reload that did
//! not change the images) reuses them instead of diffing again.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use tracing::{info, warn};

use crate::index::{IndexError, IndexedFile, ReleaseIndex, hash_file};

/// bzip2 level for patches; the classic bsdiff (and Python's bsdiff4) use 9.
const COMPRESSION_LEVEL: u32 = 9;
/// Shortest match bsdiff takes as one: classic bsdiff's 8, not qbsdiff's 12,
/// which turns small edits into near-random diff bytes that compress badly
/// (docs/benchmarks.md: +13-15% on small firmware changes).
const SMALL_MATCH: usize = 8;

/// Largest image diffed. bsdiff holds both images and a suffix array of the
/// source (8 bytes per source byte) in memory, and meters only apply patches
/// to images up to this size (the client's `max_patch_source`); larger
/// images are served whole.
pub const MAX_PATCH_IMAGE: u64 = 16 * 1024 * 1024;

/// The URL path of the patch from the image with `source` SHA-256 to the
/// one with `target` SHA-256.
pub fn patch_url_path(source: &str, target: &str) -> String {
    format!("patches/{source}-{target}.bsdiff")
}

/// Computes a bsdiff patch from `source` to `target`.
pub fn diff(source: &[u8], target: &[u8]) -> io::Result<Vec<u8>> {
    let mut patch = Vec::new();
    // One pass over the whole image: chunked parallel matching splits the
    // image into independently matched pieces and costs bytes. Images are
    // diffed in parallel with each other instead (see `build_patches`).
    qbsdiff::Bsdiff::new(source, target)
        .compression_level(COMPRESSION_LEVEL)
        .small_match(SMALL_MATCH)
        .parallel_scheme(qbsdiff::ParallelScheme::Never)
        .compare(&mut patch)?;
    Ok(patch)
}

/// Patches to the target's image from every older image, keyed by the
/// source image's SHA-256, computed (in parallel) or taken from `cache`.
/// A patch no smaller than the full image is useless and left out.
pub fn build_patches(
    index: &ReleaseIndex,
    cache: &Path,
) -> Result<BTreeMap<String, Arc<IndexedFile>>, IndexError> {
    let Some((target_version, target)) = index.firmware_for(index.target()) else {
        return Ok(BTreeMap::new());
    };
    if target.size > MAX_PATCH_IMAGE {
        return Ok(BTreeMap::new());
    }
    std::fs::create_dir_all(cache).map_err(|error| IndexError::Io {
        path: cache.to_path_buf(),
        error,
    })?;
    let sources: Vec<&Arc<IndexedFile>> = index
        .firmware()
        .range(..target_version)
        .map(|(_, image)| image)
        .filter(|image| image.sha256 != target.sha256 && image.size <= MAX_PATCH_IMAGE)
        .collect();
    let patches: Vec<(String, IndexedFile)> = sources
        .par_iter()
        .map(|source| {
            cached_patch(source, target, cache).map(|patch| (source.sha256.clone(), patch))
        })
        .collect::<Result<_, _>>()?;
    Ok(patches
        .into_iter()
        .filter(|(_, patch)| patch.size < target.size)
        .map(|(source, patch)| (source, Arc::new(patch)))
        .collect())
}

/// The patch from the cache, or computed and written there atomically
/// and durably.
fn cached_patch(
    source: &IndexedFile,
    target: &IndexedFile,
    cache: &Path,
) -> Result<IndexedFile, IndexError> {
    let path = cache.join(format!("{}-{}.bsdiff", source.sha256, target.sha256));
    if !path.exists() {
        let started = std::time::Instant::now();
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |error| IndexError::Io { path, error }
        };
        let old = std::fs::read(&source.disk_path).map_err(io_error(&source.disk_path))?;
        let new = std::fs::read(&target.disk_path).map_err(io_error(&target.disk_path))?;
        let patch = diff(&old, &new).map_err(io_error(&path))?;
        otavan_durable::write_atomic(&path, &patch).map_err(io_error(&path))?;
        info!(
            source = %source.disk_path.display(),
            target = %target.disk_path.display(),
            patch_bytes = patch.len(),
            image_bytes = new.len(),
            ms = started.elapsed().as_millis() as u64,
            "firmware patch computed"
        );
    }
    match hash_file(&path) {
        Ok(patch) => Ok(patch),
        Err(error) => {
            warn!(path = %path.display(), %error, "cannot read cached patch");
            Err(error)
        }
    }
}
