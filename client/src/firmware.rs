//! The firmware image goes straight into the slot that is not booted,
//! without a copy in staging, and is verified by reading the slot back.
//!
//! Writing the inactive slot early is harmless: nothing boots it until
//! [`crate::apply`] selects it, and while no update is pending (the engine
//! refuses to start one otherwise) it holds nothing the meter needs, not
//! even a rollback target.
//!
//! Progress across passes: a one-byte marker at the image's staging path
//! names the slot being filled with that image (`a` or `b`). It is written
//! after the slot is erased, so a marker never vouches for an older image's
//! bytes; with it, the slot's [`written`](FirmwareSlots::written) length is
//! where the next fetch resumes. The marker is not synced: whatever it or
//! the slot say after a power cut, the read-back below catches a wrong
//! prefix, which then costs one re-download.
//!
//! Verification is the read-back: once the bytes are in the slot and
//! synced, the slot is read and hashed with SHA-1 and SHA-256 and compared
//! with the manifest, so what is checked is what the flash holds, not what
//! the network delivered. A mismatch erases the slot and fetches the image
//! once more from byte 0.

use std::io::{self, Write};

use tracing::{debug, warn};

use crate::bspatch::{self, PatchError};
use crate::digest::digest;
use crate::download::{DownloadError, Partial, StagingFile, fetch_resuming};
use crate::plan::{PlannedFile, PlannedPatch};
use crate::slots::{FirmwareSlots, Slot};
use crate::storage::{Storage, WriteFile};
use crate::transport::{Sink, Transport};

/// Brings the slot that is not booted to hold `image`, verified by reading
/// it back and synced. Returns the slot and the bytes received.
///
/// With `patch` (the plan's patch and the booted image it applies to) the
/// image is rebuilt from the patch; if the patch or the rebuilt image does
/// not verify, the full image is downloaded instead.
pub(crate) async fn stage_image<T: Transport>(
    storage: &dyn Storage,
    slots: &dyn FirmwareSlots,
    transport: &T,
    image: &PlannedFile,
    patch: Option<(&PlannedPatch, &[u8])>,
    retries: u32,
) -> Result<(Slot, u64), DownloadError> {
    let storage_error = DownloadError::storage(&image.path);
    let target = slots.state().map_err(&storage_error)?.boot.other();
    let slot = SlotImage {
        storage,
        slots,
        image,
        target,
    };
    let mut received = 0;
    let mut erase = !slot.claimed().map_err(&storage_error)?;
    if !erase && slot.complete().map_err(&storage_error)? {
        // An earlier pass wrote all of it; it may not have synced.
        slot.sync().map_err(&storage_error)?;
        match slot.verify() {
            Ok(()) => return Ok((target, 0)),
            Err(DownloadError::Mismatch(mismatch)) => {
                warn!(error = %mismatch, "the image in the slot does not verify; writing it again");
                erase = true;
            }
            Err(error) => return Err(error),
        }
    }
    if let Some((patch, source)) = patch {
        match from_patch(&slot, transport, patch, source, retries, &mut received).await {
            Ok(()) => return Ok((target, received)),
            // A cut link fails this pass like any download; the partial
            // patch is resumed on the next one.
            Err(cut @ DownloadError::Transport { .. }) => return Err(cut),
            Err(error) => {
                warn!(%error, "firmware patch failed; downloading the full image");
                erase = true;
            }
        }
    }
    let mut sink = SlotSink {
        slots,
        writer: None,
    };
    if erase {
        sink.writer = Some(slot.claim().map_err(&storage_error)?);
    }
    fetch_resuming(&mut sink, transport, image, retries, &mut received).await?;
    sink.sync().map_err(&storage_error)?;
    debug!(slot = target.name(), "image written and synced");
    match slot.verify() {
        Ok(()) => {}
        Err(DownloadError::Mismatch(mismatch)) => {
            warn!(error = %mismatch, "the image in the slot does not verify; fetching it again from the start");
            sink.writer = Some(slot.claim().map_err(&storage_error)?);
            fetch_resuming(&mut sink, transport, image, retries, &mut received).await?;
            sink.sync().map_err(&storage_error)?;
            slot.verify()?;
        }
        Err(error) => return Err(error),
    }
    debug!(slot = target.name(), "image read back and verified");
    Ok((target, received))
}

/// Downloads and verifies the patch (kept in staging, so a later pass
/// reuses it, until the plan changes), then rebuilds the image from the
/// booted one straight into the slot, streaming the patch from staging
/// and stopping at the image's size ([`bspatch`]), and verifies it there.
async fn from_patch<T: Transport>(
    slot: &SlotImage<'_>,
    transport: &T,
    patch: &PlannedPatch,
    source: &[u8],
    retries: u32,
    received: &mut u64,
) -> Result<(), DownloadError> {
    let file = &patch.file;
    let mut staged = StagingFile::new(slot.storage, file);
    if let Err(error) = staged.fetch_checked(transport, retries, received).await {
        if matches!(error, DownloadError::Mismatch(_)) {
            staged
                .discard()
                .map_err(DownloadError::storage(&file.path))?;
        }
        return Err(error);
    }
    let storage_error = DownloadError::storage(&slot.image.path);
    let size = slot
        .image
        .expect
        .size
        .ok_or_else(|| storage_error(io::Error::other("the image's size is unknown")))?;
    let mut writer = slot.claim().map_err(&storage_error)?;
    bspatch::apply(slot.storage, &file.staged, source, size, &mut writer).map_err(|e| match e {
        PatchError::Io(e) => storage_error(e),
        invalid => storage_error(io::Error::new(io::ErrorKind::InvalidData, invalid)),
    })?;
    writer.sync().map_err(&storage_error)?;
    drop(writer);
    slot.verify()
}

/// The image's place in the inactive slot.
struct SlotImage<'a> {
    storage: &'a dyn Storage,
    slots: &'a dyn FirmwareSlots,
    image: &'a PlannedFile,
    target: Slot,
}

impl<'a> SlotImage<'a> {
    /// Whether the marker says the slot is being filled with this image.
    fn claimed(&self) -> io::Result<bool> {
        // Only a one-byte file can be a marker (older clients staged the
        // whole image at this path).
        if self.storage.size(&self.image.staged)? != Some(1) {
            return Ok(false);
        }
        Ok(self.storage.read(&self.image.staged)? == self.target.name().as_bytes())
    }

    /// Erases the slot, then marks it as being filled with this image.
    /// Returns the slot's writer.
    fn claim(&self) -> io::Result<Box<dyn WriteFile + 'a>> {
        let writer = self.slots.begin()?;
        let mut marker = self.storage.create(&self.image.staged)?;
        marker.write_all(self.target.name().as_bytes())?;
        Ok(writer)
    }

    /// Whether the slot holds as many bytes as the image has (unknown
    /// without a declared size).
    fn complete(&self) -> io::Result<bool> {
        let written = self.slots.written()?;
        Ok(self.image.expect.size == Some(written))
    }

    fn sync(&self) -> io::Result<()> {
        self.slots.resume()?.sync()
    }

    /// Reads the slot back and checks it against the manifest.
    fn verify(&self) -> Result<(), DownloadError> {
        let storage_error = DownloadError::storage(&self.image.path);
        let reader = self
            .slots
            .read(self.target)
            .map_err(&storage_error)?
            .ok_or_else(|| storage_error(io::Error::other("the slot is empty after writing")))?;
        digest(reader)
            .map_err(&storage_error)?
            .check(&self.image.expect, &self.image.path)?;
        Ok(())
    }
}

/// Appends a download to the inactive slot.
struct SlotSink<'a> {
    slots: &'a dyn FirmwareSlots,
    writer: Option<Box<dyn WriteFile + 'a>>,
}

impl SlotSink<'_> {
    /// Makes what was written durable.
    fn sync(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(writer) => writer.sync(),
            None => self.slots.resume()?.sync(),
        }
    }
}

impl Sink for SlotSink<'_> {
    fn restart(&mut self) -> io::Result<()> {
        self.writer = Some(self.slots.begin()?);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.writer.is_none() {
            self.writer = Some(self.slots.resume()?);
        }
        self.writer.as_mut().expect("opened above").write_all(data)
    }
}

impl Partial for SlotSink<'_> {
    fn len(&mut self) -> io::Result<u64> {
        self.slots.written()
    }

    fn resume_after(&mut self, _have: u64) -> io::Result<()> {
        // The read-back verifies the whole slot; nothing to hash here.
        Ok(())
    }

    fn discard(&mut self) -> io::Result<()> {
        self.restart()
    }
}
