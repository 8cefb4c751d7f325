//! Downloading a plan into staging, resumable across cut connections and
//! van passes, with every staged byte verified.
//!
//! Progress is the staging files themselves: a partial file's length is
//! where the next fetch resumes (`Range: bytes=len-`). Files are hashed
//! (SHA-1 and SHA-256) as their bytes are written, so verifying one needs
//! no second read; a file resumed from bytes staged earlier has that prefix
//! hashed again from disk first, so what is verified is always the whole
//! staged file, never only the bytes of this pass. Staging is not fsynced
//! file by file (a thousand fsyncs would dominate an update); one
//! file-system sync makes the verified files durable before they are
//! installed. A power cut before it may tear a staged prefix: the next pass
//! hashes that prefix again, so a torn file costs one re-download, never a
//! bad install.

use std::io::{self, Read};

use tracing::{debug, warn};

use crate::digest::{Digest3, Hashes, Mismatch, digest};
use crate::path::MeterPath;
use crate::plan::{PlannedFile, PlannedPatch, UpdatePlan};
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

impl DownloadError {
    /// A storage error about `path`.
    pub(crate) fn storage(path: &MeterPath) -> impl Fn(io::Error) -> DownloadError + '_ {
        move |source| DownloadError::Storage {
            path: path.clone(),
            source,
        }
    }
}

/// Fetches whatever of `plan` is not fully staged yet, verifying each
/// file as it completes and re-fetching a mismatching one once from byte
/// 0. Returns the bytes received. Staging files from other plans are
/// removed first.
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
    let staging = staging_dir();
    prepare_staging(storage, plan).map_err(DownloadError::storage(&staging))?;
    let mut received = 0;
    for file in &plan.files {
        received += stage_file(storage, transport, file, retries).await?;
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
                        StagingFile::new(storage, image)
                            .discard()
                            .map_err(DownloadError::storage(&image.path))?;
                        false
                    }
                }
            }
            _ => false,
        };
        if !patched {
            received += stage_file(storage, transport, image, retries).await?;
        }
    }
    storage
        .sync_all()
        .map_err(DownloadError::storage(&staging))?;
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
    let mut staged = StagingFile::new(storage, file);
    if let Err(error) = staged.fetch_checked(transport, retries, received).await {
        if matches!(error, DownloadError::Mismatch(_)) {
            staged
                .discard()
                .map_err(DownloadError::storage(&file.path))?;
        }
        return Err(error);
    }
    let storage_error = DownloadError::storage(&image.path);
    let patch_bytes = storage.read(&file.staged).map_err(&storage_error)?;
    let mut target = storage.create(&image.staged).map_err(&storage_error)?;
    let patcher = qbsdiff::Bspatch::new(&patch_bytes).map_err(&storage_error)?;
    patcher.apply(source, &mut target).map_err(&storage_error)?;
    drop(target);
    let rebuilt = storage.open(&image.staged).map_err(&storage_error)?;
    digest(rebuilt)
        .map_err(&storage_error)?
        .check(&image.expect, &image.path)?;
    Ok(())
}

/// Brings one file fully into staging and verifies it; a mismatching file
/// is fetched once more from byte 0. Returns the bytes received.
async fn stage_file<T: Transport>(
    storage: &dyn Storage,
    transport: &T,
    file: &PlannedFile,
    retries: u32,
) -> Result<u64, DownloadError> {
    let mut staged = StagingFile::new(storage, file);
    let mut received = 0;
    match staged
        .fetch_checked(transport, retries, &mut received)
        .await
    {
        Err(DownloadError::Mismatch(mismatch)) => {
            warn!(error = %mismatch, "staged file does not verify; fetching it again from the start");
            staged
                .discard()
                .map_err(DownloadError::storage(&file.path))?;
            staged
                .fetch_checked(transport, retries, &mut received)
                .await?;
        }
        other => other?,
    }
    Ok(received)
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

/// Brings `target` to `file`'s full length, resuming from what is there.
/// Cut connections are retried (resuming) up to `retries` times. Adds the
/// bytes received to `received`, those of cut fetches included.
async fn fetch_resuming<T: Transport>(
    target: &mut StagingFile<'_>,
    transport: &T,
    file: &PlannedFile,
    retries: u32,
    received: &mut u64,
) -> Result<(), DownloadError> {
    let storage_error = DownloadError::storage(&file.path);
    let mut attempt = 0;
    loop {
        let have = target.len().map_err(&storage_error)?;
        match file.expect.size {
            Some(size) if have == size => return Ok(()),
            Some(size) if have > size => {
                target.discard().map_err(&storage_error)?;
                continue;
            }
            _ => {}
        }
        target.resume_after(have).map_err(&storage_error)?;
        // Whatever arrives is progress, even from a cut fetch.
        match transport.fetch(&file.url, have, &mut *target).await {
            Ok(fetched) => {
                debug!(path = %file.path, from = fetched.from, bytes = fetched.received, "fetched");
                *received += fetched.received;
                return Ok(());
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
                    target.discard().map_err(&storage_error)?;
                }
                // Bytes of a cut fetch are counted by the length now there.
                let now = target.len().map_err(&storage_error)?;
                *received += now.saturating_sub(have);
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

/// A file's staging file, hashed as it is written.
struct StagingFile<'a> {
    storage: &'a dyn Storage,
    file: &'a PlannedFile,
    writer: Option<Box<dyn WriteFile + 'a>>,
    /// Hashes of the staging file's first `hashes.len()` bytes.
    hashes: Hashes,
}

impl<'a> StagingFile<'a> {
    /// `file`'s staging file, as it is.
    fn new(storage: &'a dyn Storage, file: &'a PlannedFile) -> StagingFile<'a> {
        StagingFile {
            storage,
            file,
            writer: None,
            hashes: Hashes::new(),
        }
    }

    /// Fetches what is missing and checks the whole staged file against
    /// the manifest. Adds the bytes received to `received`.
    async fn fetch_checked<T: Transport>(
        &mut self,
        transport: &T,
        retries: u32,
        received: &mut u64,
    ) -> Result<(), DownloadError> {
        let file = self.file;
        fetch_resuming(self, transport, file, retries, received).await?;
        self.digest()
            .map_err(DownloadError::storage(&file.path))?
            .check(&file.expect, &file.path)?;
        Ok(())
    }

    /// The digest of the whole staging file: the hashes kept while
    /// writing, after hashing again whatever they do not cover.
    fn digest(&mut self) -> io::Result<Digest3> {
        let have = self.len()?;
        self.resume_after(have)?;
        Ok(std::mem::take(&mut self.hashes).finish())
    }
}

impl Sink for StagingFile<'_> {
    fn restart(&mut self) -> io::Result<()> {
        self.writer = Some(self.storage.create(&self.file.staged)?);
        self.hashes = Hashes::new();
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.writer.is_none() {
            self.writer = Some(self.storage.append(&self.file.staged)?);
        }
        let writer = self.writer.as_mut().expect("opened above");
        writer.write_all(data)?;
        self.hashes.update(data);
        Ok(())
    }
}

impl StagingFile<'_> {
    /// Bytes already staged: where the next fetch resumes.
    fn len(&mut self) -> io::Result<u64> {
        Ok(self.storage.size(&self.file.staged)?.unwrap_or(0))
    }

    /// Called before a fetch that appends after the first `have` bytes:
    /// makes the hashes cover them.
    fn resume_after(&mut self, have: u64) -> io::Result<()> {
        if self.hashes.len() == have {
            return Ok(());
        }
        // Bytes staged by an earlier pass (or torn): hash them from disk.
        let mut hashes = Hashes::new();
        if have > 0 {
            hashes.update_from(self.storage.open(&self.file.staged)?.take(have))?;
        }
        if hashes.len() != have {
            return Err(io::Error::other("the staging file shrank while being read"));
        }
        self.hashes = hashes;
        Ok(())
    }

    /// Drops what is staged; the next fetch starts from byte 0.
    fn discard(&mut self) -> io::Result<()> {
        self.writer = None;
        self.hashes = Hashes::new();
        match self.storage.remove_file(&self.file.staged) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
