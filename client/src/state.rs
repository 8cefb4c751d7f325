//! The meter's durable update state: its version and, while an update is
//! being applied, awaiting confirmation or being rolled back, the journal
//! that says how to undo it.
//!
//! Both live in one file (`.otavan/state.json`) replaced atomically, so the
//! version and the journal phase change together: saving the state with the
//! new version and an [`Phase::Applied`] journal is the single commit point
//! of an update.

use std::io;

use otavan_protocol::Version;
use serde::{Deserialize, Serialize};

use crate::confirm::Revert;
use crate::health::Evidence;
use crate::path::MeterPath;
use crate::slots::BootState;
use crate::storage::{Storage, write_atomic};

/// The client's state directory holds staging, backups and this file.
pub fn state_file() -> MeterPath {
    MeterPath::state("state.json")
}

/// Where downloads are staged until they are installed.
pub fn staging_dir() -> MeterPath {
    MeterPath::state("staging")
}

/// Where replaced and deleted files wait until confirm or rollback.
pub fn backup_dir() -> MeterPath {
    MeterPath::state("backup")
}

/// The provisioned release-signing public key, in single-key mode.
pub fn trust_file() -> MeterPath {
    MeterPath::state("trust.pub")
}

/// The provisioned root public key, in root mode.
pub fn root_key_file() -> MeterPath {
    MeterPath::state("root.pub")
}

/// The highest root certificate the meter has verified (root mode).
pub fn certificate_file() -> MeterPath {
    MeterPath::state("root.json")
}

/// The signed descriptors of the installed version (and, until an update
/// is confirmed, of the version before), one `VERSION.json` each.
pub fn descriptors_dir() -> MeterPath {
    MeterPath::state("descriptors")
}

/// What the meter runs and what it is in the middle of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// The installed version (the new one once an update is committed).
    pub version: Version,
    /// The update being applied, awaiting confirmation, or being undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Journal>,
    /// The highest signed release counter ever installed (0: none). Never
    /// lowered, not by a rollback either: anti-rollback for signed releases.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub highest_counter: u64,
    /// The last update the meter reverted by itself, until a van has been
    /// told why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverted: Option<Revert>,
    /// Unix seconds the meter knows have passed (0: none): raised by the
    /// network's authenticated time and at provisioning, never lowered,
    /// never from the meter's own clock. Expiry checks take the time as at
    /// least this, so a clock that reset to 1970 cannot revive an expired
    /// release.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trusted_time: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// Where an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Files are being swapped; a power cut here is undone on start.
    Applying,
    /// Installed and committed; awaiting confirm or rollback.
    Applied,
    /// A rollback is restoring the old files; finished on start.
    RollingBack,
}

/// The intent journal: every step of an update, written (and synced)
/// before the first file is touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Where the update is.
    pub phase: Phase,
    /// The version before the update.
    pub from: Version,
    /// The version after it.
    pub to: Version,
    /// File steps, in the order they are applied: deletes, then installs
    /// (journals written before deletes went first list installs first).
    pub ops: Vec<Op>,
    /// Directories the update creates in the meter's tree, outermost
    /// first; removed again on undo.
    pub created_dirs: Vec<MeterPath>,
    /// Directories the update's deletes leave empty and it removes,
    /// deepest first; created again on undo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_dirs: Vec<MeterPath>,
    /// The boot state before a firmware change, when the update has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_from: Option<BootState>,
    /// Starts of the meter since the update was applied, while it awaits
    /// confirmation ([`crate::Meter::count_boot`]).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub boots: u32,
    /// What the new version has shown since it was applied (for its
    /// self-test, [`crate::health`]).
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub seen: Evidence,
}

/// One file step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Put `staged` at `path`, moving an existing file to `backup` first.
    Install {
        /// Where the file goes.
        path: MeterPath,
        /// The verified download.
        staged: MeterPath,
        /// Where the replaced file goes, when there is one.
        backup: Option<MeterPath>,
    },
    /// Move `path` to `backup`.
    Delete {
        /// The file to remove.
        path: MeterPath,
        /// Where it waits until confirm.
        backup: MeterPath,
    },
}

impl DeviceState {
    /// Reads the state; `NotFound` when the meter was never provisioned.
    pub fn load(storage: &dyn Storage) -> io::Result<DeviceState> {
        let bytes = storage.read(&state_file())?;
        serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt {}: {e}", state_file()),
            )
        })
    }

    /// This state at `version` with `update`, keeping the rest.
    pub fn with(&self, version: &Version, update: Option<Journal>) -> DeviceState {
        DeviceState {
            version: version.clone(),
            update,
            ..self.clone()
        }
    }

    /// Replaces the state atomically (the commit point of each phase).
    pub fn save(&self, storage: &dyn Storage) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("state serialises");
        write_atomic(storage, &state_file(), &json)
    }
}
