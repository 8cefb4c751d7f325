//! A/B firmware slots with the ESP-IDF OTA lifecycle.
//!
//! ESP-IDF writes a new image into the partition that is not running
//! (`esp_ota_begin`/`write`/`end`), selects it for the next boot
//! (`esp_ota_set_boot_partition`), and after the reboot the image is
//! *pending verify* until the application confirms it
//! (`esp_ota_mark_app_valid_cancel_rollback`) or gives up and boots the old
//! one again (`esp_ota_mark_app_invalid_rollback_and_reboot`). The
//! [`FirmwareSlots`] trait is that lifecycle; the reboot in between is the
//! device's business and is modelled as immediate here.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::path::MeterPath;
use crate::storage::{Storage, WriteFile, write_atomic};

/// One of the two firmware slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The first slot (`ota_0`).
    A,
    /// The second slot (`ota_1`).
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// `"a"` or `"b"`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// Which slot boots, and whether it still awaits confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootState {
    /// The slot the meter boots (and, after the modelled reboot, runs).
    pub boot: Slot,
    /// The booted image is new and not yet confirmed.
    pub pending: bool,
}

/// A/B image storage. Implementations persist [`BootState`] atomically.
pub trait FirmwareSlots {
    /// The current boot state.
    fn state(&self) -> io::Result<BootState>;
    /// Erases the slot that is not booted and opens it for writing.
    fn begin(&self) -> io::Result<Box<dyn WriteFile + '_>>;
    /// Bytes written into the slot that is not booted since it was last
    /// erased by [`begin`](Self::begin): where an interrupted write
    /// resumes. Only meaningful for a slot the caller began writing (a
    /// slot never begun may report an older image's length).
    fn written(&self) -> io::Result<u64>;
    /// Opens the slot that is not booted for writing after its
    /// [`written`](Self::written) bytes, without erasing it (ESP-IDF's
    /// `esp_ota_resume`). Syncing the returned writer makes everything
    /// written into the slot durable.
    fn resume(&self) -> io::Result<Box<dyn WriteFile + '_>>;
    /// Reads back a slot's image (`None` when the slot is empty or erased).
    fn read(&self, slot: Slot) -> io::Result<Option<Box<dyn Read + '_>>>;
    /// Persists a new boot state (set boot partition, confirm, roll back).
    fn set_state(&self, state: BootState) -> io::Result<()>;
}

/// Slots as files under the client's state directory
/// (`.otavan/slots/a.bin`, `b.bin`, `boot.json`), for Linux meters and
/// tests. Goes through [`Storage`], so fault injection reaches it too.
pub struct FileSlots<S> {
    storage: S,
}

impl<S: Storage> FileSlots<S> {
    /// Slots kept in `storage`.
    pub fn new(storage: S) -> FileSlots<S> {
        FileSlots { storage }
    }

    /// Creates the slot directory with `image` (may be empty) in slot A,
    /// booted and confirmed.
    pub fn provision(&self, image: &mut dyn Read) -> io::Result<()> {
        let dir = MeterPath::state("slots");
        if !self.storage.exists(&dir)? {
            self.storage.create_dir(&dir)?;
        }
        let mut file = self.storage.create(&image_path(Slot::A))?;
        io::copy(image, &mut file)?;
        file.sync()?;
        drop(file);
        self.set_state(BootState {
            boot: Slot::A,
            pending: false,
        })
    }
}

fn image_path(slot: Slot) -> MeterPath {
    MeterPath::state(&format!("slots/{}.bin", slot.name()))
}

fn state_path() -> MeterPath {
    MeterPath::state("slots/boot.json")
}

impl<S: Storage> FirmwareSlots for FileSlots<S> {
    fn state(&self) -> io::Result<BootState> {
        let bytes = self.storage.read(&state_path())?;
        serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn begin(&self) -> io::Result<Box<dyn WriteFile + '_>> {
        let inactive = self.state()?.boot.other();
        self.storage.create(&image_path(inactive))
    }

    fn written(&self) -> io::Result<u64> {
        let inactive = self.state()?.boot.other();
        Ok(self.storage.size(&image_path(inactive))?.unwrap_or(0))
    }

    fn resume(&self) -> io::Result<Box<dyn WriteFile + '_>> {
        let inactive = self.state()?.boot.other();
        self.storage.append(&image_path(inactive))
    }

    fn read(&self, slot: Slot) -> io::Result<Option<Box<dyn Read + '_>>> {
        let path = image_path(slot);
        if matches!(self.storage.size(&path)?, None | Some(0)) {
            return Ok(None);
        }
        self.storage.open(&path).map(Some)
    }

    fn set_state(&self, state: BootState) -> io::Result<()> {
        let json = serde_json::to_vec(&state).expect("boot state serialises");
        write_atomic(&self.storage, &state_path(), &json)
    }
}
