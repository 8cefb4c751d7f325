//! Downloading a plan into staging, resumable across cut connections and
//! van passes, and verifying every staged byte.
//!
//! Progress is the staging files themselves: a partial file's length is
//! where the next fetch resumes (`Range: bytes=len-`). Staging is not
//! fsynced file by file (a thousand fsyncs would dominate an update);
//! instead every staged byte is verified before use, so a prefix that a
//! power cut tore costs one re-download, never a bad install, and one
//! file-system sync makes the verified files durable before they are
//! installed.

use std::io;

use tracing::{debug, warn};

use crate::digest::{Mismatch, digest};
use crate::path::MeterPath;
use crate::plan::{Expected, PlannedFile, PlannedPatch, UpdatePlan};
use crate::state::staging_dir;
use crate::storage::{Storage, WriteFile, create_parents};
use crate::transport::{Sink, Transport, TransportError};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The transport failed (after retries).
    #[error("downloading {path}: {source}")]
    Transport {
        /// The file.
        path: MeterPath,
        /// What went wrong.
        source: TransportError,
    },
    /// The content does not match the manifest, even after a fresh download.
    #[error(transparent)]
    Mismatch(#[from] Mismatch),
    /// Writing to staging failed.
    #[error("staging {path}: {source}")]
    Storage {
        /// The file.
        path: MeterPath,
        /// What went wrong.
        source: io::Error,
    },
}

/// Appends downloads to a staging file.
struct StagingSink<'a> {
    storage: &'a dyn Storage,
    path: &'a MeterPath,
    file: Option<Box<dyn WriteFile + 'a>>,
}

impl<'a> StagingSink<'a> {
    fn new(storage: &'a dyn Storage, path: &'a MeterPath) -> StagingSink<'a> {
        StagingSink {
            storage,
            path,
            file: None,
        }
    }
}

impl Sink for StagingSink<'_> {
    fn restart(&mut self) -> io::Result<()> {
        self.file = Some(self.storage.create(self.path)?);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(self.storage.append(self.path)?);
        }
        self.file.as_mut().expect("opened above").write_all(data)
    }
}

/// Fetches whatever of `plan` is not fully staged yet, then verifies every
/// staged file, re-fetching a mismatching one once from byte 0. Returns
/// the bytes received. Staging files from other plans are removed first.
///
/// With `patch_source` (the booted image, when the plan's patch applies to
/// it) the firmware image is rebuilt from the patch instead of downloaded;
/// if the patch or the rebuilt image does not verify, the full image is
/// downloaded after all.
pub async fn stage<T: Transport>(
    storage: &dyn Storage,
    transport: &T,
    plan: &UpdatePlan,
    patch_source: Option<&[u8]>,
    retries: u32,
) -> Result<u64, DownloadError> {
    prepare_staging(storage, plan).map_err(|source| DownloadError::Storage {
        path: staging_dir(),
        source,
    })?;
    let mut received = 0;
    for file in &plan.files {
        received += fetch_resuming(storage, transport, file, retries).await?;
    }
    if let Some(image) = &plan.firmware {
        let patched = match (&plan.patch, patch_source) {
            (Some(patch), Some(source)) => {
                match stage_from_patch(
                    storage,
                    transport,
                    patch,
                    image,
                    source,
                    retries,
                    &mut received,
                )
                .await
                {
                    Ok(()) => true,
                    // A cut link fails this pass like any download; the
                    // partial patch is resumed on the next one.
                    Err(cut @ DownloadError::Transport { .. }) => return Err(cut),
                    Err(error) => {
                        warn!(%error, "firmware patch failed; downloading the full image");
                        remove_if_present(storage, &image.staged, &image.path)?;
                        false
                    }
                }
            }
            _ => false,
        };
        if !patched {
            received += fetch_resuming(storage, transport, image, retries).await?;
        }
    }
    for file in plan.downloads() {
        if let Err(mismatch) = verify(storage, &file.staged, &file.expect, &file.path) {
            warn!(error = %mismatch, "staged file does not verify; fetching it again from the start");
            remove_if_present(storage, &file.staged, &file.path)?;
            received += fetch_resuming(storage, transport, file, retries).await?;
            verify(storage, &file.staged, &file.expect, &file.path)?;
        }
    }
    storage
        .sync_all()
        .map_err(|source| DownloadError::Storage {
            path: staging_dir(),
            source,
        })?;
    Ok(received)
}

/// Downloads and verifies the patch, then rebuilds the image into its
/// staging file from `source` and verifies it against the full image's
/// hashes. The patch is kept staged (a later pass reuses it) until the
/// plan changes.
async fn stage_from_patch<T: Transport>(
    storage: &dyn Storage,
    transport: &T,
    patch: &PlannedPatch,
    image: &PlannedFile,
    source: &[u8],
    retries: u32,
    received: &mut u64,
) -> Result<(), DownloadError> {
    let file = &patch.file;
    *received += fetch_resuming(storage, transport, file, retries).await?;
    if let Err(mismatch) = verify(storage, &file.staged, &file.expect, &file.path) {
        remove_if_present(storage, &file.staged, &file.path)?;
        return Err(mismatch);
    }
    let storage_error = |source| DownloadError::Storage {
        path: image.path.clone(),
        source,
    };
    let patch_bytes = storage.read(&file.staged).map_err(storage_error)?;
    let mut target = storage.create(&image.staged).map_err(storage_error)?;
    let patcher = qbsdiff::Bspatch::new(&patch_bytes).map_err(storage_error)?;
    patcher.apply(source, &mut target).map_err(storage_error)?;
    drop(target);
    verify(storage, &image.staged, &image.expect, &image.path)
}

/// Creates the staging directory and drops staged files that belong to
/// no download of `plan` (an older target's leftovers).
fn prepare_staging(storage: &dyn Storage, plan: &UpdatePlan) -> io::Result<()> {
    let dir = staging_dir();
    create_parents(storage, &dir.join("x").expect("valid"))?;
    for entry in storage.list(Some(&dir))? {
        let patch = plan.patch.as_ref().map(|p| &p.file);
        if !plan
            .downloads()
            .chain(patch)
            .any(|f| f.staged == entry.path)
        {
            if entry.is_dir {
                storage.remove_dir_all(&entry.path)?;
            } else {
                storage.remove_file(&entry.path)?;
            }
        }
    }
    Ok(())
}

/// Brings one staged file to its full length, resuming from what is
/// there. Cut connections are retried (resuming) up to `retries` times.
async fn fetch_resuming<T: Transport>(
    storage: &dyn Storage,
    transport: &T,
    file: &PlannedFile,
    retries: u32,
) -> Result<u64, DownloadError> {
    let storage_error = |source| DownloadError::Storage {
        path: file.path.clone(),
        source,
    };
    let mut received = 0;
    let mut attempt = 0;
    loop {
        let have = storage
            .size(&file.staged)
            .map_err(storage_error)?
            .unwrap_or(0);
        match file.expect.size {
            Some(size) if have == size => return Ok(received),
            Some(size) if have > size => {
                remove_if_present(storage, &file.staged, &file.path)?;
                continue;
            }
            _ => {}
        }
        let mut sink = StagingSink::new(storage, &file.staged);
        // Whatever arrives is progress, even from a cut fetch.
        let result = transport.fetch(&file.url, have, &mut sink).await;
        drop(sink);
        match result {
            Ok(fetched) => {
                debug!(path = %file.path, from = fetched.from, bytes = fetched.received, "fetched");
                return Ok(received + fetched.received);
            }
            Err(TransportError::Sink(source)) => return Err(storage_error(source)),
            Err(error) if attempt < retries => {
                attempt += 1;
                warn!(path = %file.path, %error, attempt, "fetch failed; retrying");
                if matches!(
                    error,
                    TransportError::BadResponse(_) | TransportError::Status { status: 416, .. }
                ) {
                    // The server cannot resume this file: start it over.
                    remove_if_present(storage, &file.staged, &file.path)?;
                }
                // Bytes of a cut fetch are counted by the staged length.
                let now = storage
                    .size(&file.staged)
                    .map_err(storage_error)?
                    .unwrap_or(0);
                received += now.saturating_sub(have);
            }
            Err(source) => {
                return Err(DownloadError::Transport {
                    path: file.path.clone(),
                    source,
                });
            }
        }
    }
}

fn remove_if_present(
    storage: &dyn Storage,
    staged: &MeterPath,
    path: &MeterPath,
) -> Result<(), DownloadError> {
    match storage.remove_file(staged) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DownloadError::Storage {
            path: path.clone(),
            source,
        }),
    }
}

/// Hashes `staged` and compares it with `expect`.
pub fn verify(
    storage: &dyn Storage,
    staged: &MeterPath,
    expect: &Expected,
    path: &MeterPath,
) -> Result<(), DownloadError> {
    let reader = storage
        .open(staged)
        .map_err(|source| DownloadError::Storage {
            path: path.clone(),
            source,
        })?;
    let digest = digest(reader).map_err(|source| DownloadError::Storage {
        path: path.clone(),
        source,
    })?;
    digest.check(expect, path)?;
    Ok(())
}
