//! Downloading a plan, resumable across cut connections and van passes,
//! with every byte verified: files into staging (here), the firmware image
//! straight into the inactive slot ([`crate::firmware`]).
//!
//! Progress is what is already there: a partial staging file's length is
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
//!
//! Small files dominate an update's request count, so four are fetched at
//! once (one staging file and one response buffer each: memory stays
//! bounded).

use std::cell::Cell;
use std::io::{self, Read};

use tracing::{debug, warn};

use crate::bounded::{Bounded, overflow};
use crate::digest::{Digest3, Hashes, Mismatch};
use crate::firmware::stage_image;
use crate::path::MeterPath;
use crate::plan::{PlannedFile, UpdatePlan};
use crate::slots::{FirmwareSlots, Slot};
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
    /// Writing to staging or the firmware slot failed.
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

/// A plan whose downloads are staged, verified and durable, with the
/// firmware image (if any) verified in the inactive slot: what
/// [`Meter::apply`](crate::Meter::apply) installs. Only [`stage`] makes one.
#[derive(Debug)]
pub struct Staged<'a> {
    plan: &'a UpdatePlan,
    image_slot: Option<Slot>,
    received: u64,
}

impl<'a> Staged<'a> {
    /// The plan.
    pub fn plan(&self) -> &'a UpdatePlan {
        self.plan
    }

    /// The slot holding the verified firmware image, when the plan has one.
    pub fn image_slot(&self) -> Option<Slot> {
        self.image_slot
    }

    /// Bytes received while staging.
    pub fn received(&self) -> u64 {
        self.received
    }
}

/// Fetches whatever of `plan` is not there yet (files into staging, the
/// firmware image into the slot `slots` does not boot), verifying each
/// file as it completes and re-fetching a mismatching one once from byte
/// 0. Staging files from other plans are removed first.
///
/// With `patch_source` (the booted image, when the plan's patch applies to
/// it) the firmware image is rebuilt from the patch instead of downloaded;
/// if the patch or the rebuilt image does not verify, the full image is
/// downloaded after all.
pub async fn stage<'a, T: Transport>(
    storage: &dyn Storage,
    slots: &dyn FirmwareSlots,
    transport: &T,
    plan: &'a UpdatePlan,
    patch_source: Option<&[u8]>,
    retries: u32,
) -> Result<Staged<'a>, DownloadError> {
    let staging = staging_dir();
    prepare_staging(storage, plan).map_err(DownloadError::storage(&staging))?;
    let mut received = stage_files(storage, transport, &plan.files, retries).await?;
    debug!(files = plan.files.len(), "files staged and verified");
    let image_slot = match &plan.firmware {
        Some(image) => {
            if plan.patch.is_some() && plan.usable_patch().is_none() {
                warn!(
                    "the firmware patch is larger than the image it rebuilds; downloading the image"
                );
            }
            let patch = plan.usable_patch().zip(patch_source);
            let (slot, bytes) =
                stage_image(storage, slots, transport, image, patch, retries).await?;
            received += bytes;
            Some(slot)
        }
        None => None,
    };
    storage
        .sync_all()
        .map_err(DownloadError::storage(&staging))?;
    debug!("staging synced");
    Ok(Staged {
        plan,
        image_slot,
        received,
    })
}

/// Files not yet taken by a worker, and the bytes received so far.
struct Queue<'a> {
    files: &'a [PlannedFile],
    next: Cell<usize>,
    received: Cell<u64>,
}

impl<'a> Queue<'a> {
    fn take(&self) -> Option<&'a PlannedFile> {
        let file = self.files.get(self.next.get())?;
        self.next.set(self.next.get() + 1);
        Some(file)
    }
}

/// Stages `files` with four fetches in flight. The first error ends the
/// others; what they received so far stays staged for the next pass.
async fn stage_files<T: Transport>(
    storage: &dyn Storage,
    transport: &T,
    files: &[PlannedFile],
    retries: u32,
) -> Result<u64, DownloadError> {
    let queue = Queue {
        files,
        next: Cell::new(0),
        received: Cell::new(0),
    };
    let queue = &queue;
    let worker = || async move {
        while let Some(file) = queue.take() {
            let received = stage_file(storage, transport, file, retries).await?;
            queue.received.set(queue.received.get() + received);
        }
        Ok::<(), DownloadError>(())
    };
    tokio::try_join!(worker(), worker(), worker(), worker())?;
    Ok(queue.received.get())
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

/// Where a download accumulates across attempts and passes: a staging
/// file or the inactive firmware slot.
pub(crate) trait Partial: Sink {
    /// Bytes already there: where the next fetch resumes.
    fn len(&mut self) -> io::Result<u64>;
    /// Called before a fetch that appends after the first `have` bytes.
    fn resume_after(&mut self, have: u64) -> io::Result<()>;
    /// Drops what is there; the next fetch starts from byte 0.
    fn discard(&mut self) -> io::Result<()>;
}

/// Brings `target` to `file`'s full length, resuming from what is there.
/// Cut connections are retried (resuming) up to `retries` times. Adds the
/// bytes received to `received`, those of cut fetches included.
pub(crate) async fn fetch_resuming<T: Transport>(
    target: &mut dyn Partial,
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
        // Never more than the file's size: a server sending endless data
        // is cut off there. Whatever arrives is progress, even from a cut
        // fetch.
        let mut bounded = Bounded::new(&mut *target, file.expect.size, have);
        let fetched = transport.fetch(&file.url, have, &mut bounded).await;
        match fetched {
            Ok(fetched) => {
                debug!(path = %file.path, from = fetched.from, bytes = fetched.received, "fetched");
                *received += fetched.received;
                return Ok(());
            }
            Err(TransportError::Sink(ref source)) if let Some(over) = overflow(source) => {
                return Err(DownloadError::Mismatch(Mismatch {
                    path: file.path.clone(),
                    what: "size",
                    expected: over.limit.to_string(),
                    actual: format!("more: {over}"),
                }));
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
pub(crate) struct StagingFile<'a> {
    storage: &'a dyn Storage,
    file: &'a PlannedFile,
    writer: Option<Box<dyn WriteFile + 'a>>,
    /// Hashes of the staging file's first `hashes.len()` bytes.
    hashes: Hashes,
}

impl<'a> StagingFile<'a> {
    /// `file`'s staging file, as it is.
    pub(crate) fn new(storage: &'a dyn Storage, file: &'a PlannedFile) -> StagingFile<'a> {
        StagingFile {
            storage,
            file,
            writer: None,
            hashes: Hashes::new(),
        }
    }

    /// Fetches what is missing and checks the whole staged file against
    /// the manifest. Adds the bytes received to `received`.
    pub(crate) async fn fetch_checked<T: Transport>(
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

impl Partial for StagingFile<'_> {
    fn len(&mut self) -> io::Result<u64> {
        Ok(self.storage.size(&self.file.staged)?.unwrap_or(0))
    }

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

    fn discard(&mut self) -> io::Result<()> {
        self.writer = None;
        self.hashes = Hashes::new();
        match self.storage.remove_file(&self.file.staged) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
