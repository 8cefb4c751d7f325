//! What a meter can do without a network: apply a staged plan, confirm,
//! roll back, recover after a power cut (or after the bootloader fell
//! back to the old image), count its starts while an update is on trial
//! and revert it, report its status.

use std::io::{self, Read};

use otavan_protocol::Version;
use tracing::{info, warn};

use crate::apply::{ApplyObserver, ApplyStep, Step, boot, journal, perform, steps, undo};
use crate::confirm::{BootCount, Revert};
use crate::digest::digest;
use crate::download::Staged;
use crate::engine::EngineError;
use crate::health::Evidence;
use crate::path::MeterPath;
use crate::plan::UpdatePlan;
use crate::slots::{BootState, FirmwareSlots, Slot};
use crate::state::{DeviceState, Journal, Phase, backup_dir, staging_dir};
use crate::storage::Storage;

/// What recovery found on start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No interrupted work.
    Clean,
    /// An apply or rollback was cut short and has been undone.
    Undone {
        /// The version the meter is at again.
        version: Version,
    },
    /// The bootloader fell back to the old image while the new version
    /// awaited confirmation: the files followed it back.
    Reverted(Revert),
}

/// The meter's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The installed version.
    pub version: Version,
    /// An update is installed but not yet confirmed.
    pub pending_confirm: bool,
    /// The version a rollback would return to.
    pub rollback_version: Option<Version>,
    /// The booted slot.
    pub boot_slot: Slot,
    /// Lower-case hex SHA-1 of the booted image (`None`: empty slot).
    pub firmware_sha1: Option<String>,
    /// Starts of the meter while the pending update awaited confirmation.
    pub boots: u32,
    /// The last update the meter reverted by itself, until a van has been
    /// told.
    pub reverted: Option<Revert>,
}

/// A meter's file system and firmware slots.
pub struct Meter<S, F> {
    storage: S,
    slots: F,
}

impl<S: Storage, F: FirmwareSlots> Meter<S, F> {
    /// The meter over `storage` and `slots`. Call [`Meter::recover`] before
    /// anything else on start.
    pub fn new(storage: S, slots: F) -> Meter<S, F> {
        Meter { storage, slots }
    }

    /// The meter's storage.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The meter's firmware slots.
    pub fn slots(&self) -> &F {
        &self.slots
    }

    /// The persisted state; [`EngineError::NotProvisioned`] without one.
    pub fn state(&self) -> Result<DeviceState, EngineError> {
        match DeviceState::load(&self.storage) {
            Ok(state) => Ok(state),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(EngineError::NotProvisioned),
            Err(e) => Err(e.into()),
        }
    }

    /// Undoes whatever a power cut interrupted, so the meter is exactly at
    /// one version. Leaves an applied, unconfirmed update alone.
    pub fn recover(&self) -> Result<Recovery, EngineError> {
        let state = self.state()?;
        let Some(journal) = &state.update else {
            // A confirm cut short may have left its backups behind, and
            // the old version's kept descriptor.
            self.remove_dir_if_present(&backup_dir())?;
            crate::trust::installed::prune(&self.storage, &state.version)?;
            return Ok(Recovery::Clean);
        };
        match journal.phase {
            Phase::Applied => match self.fallen_back(journal)? {
                Some(booted) => {
                    let reason = format!(
                        "the bootloader booted slot {} instead of the new image of {}",
                        booted.name(),
                        journal.to
                    );
                    warn!(%reason, "following the bootloader back");
                    Ok(Recovery::Reverted(self.revert(reason)?))
                }
                None => Ok(Recovery::Clean),
            },
            Phase::Applying | Phase::RollingBack => {
                warn!(from = %journal.from, to = %journal.to, phase = ?journal.phase, "undoing an interrupted update");
                self.undo_to_old(&state)?;
                Ok(Recovery::Undone {
                    version: journal.from.clone(),
                })
            }
        }
    }

    /// Checks that `plan` can be installed over the meter's tree as it is
    /// now (paths that differ only in case on storage that ignores case,
    /// files or directories in the way), before anything is downloaded.
    pub fn check_plan(&self, plan: &UpdatePlan) -> Result<(), EngineError> {
        journal(&self.storage, plan, None).map(drop)
    }

    /// Journals and installs a staged, verified plan, boots the new image
    /// (already verified in the inactive slot), then commits the new
    /// version as pending confirmation, telling `observer` of each
    /// [`Step`] before it runs. A failure is undone before returning, so
    /// the meter stays at the old version.
    pub fn apply(
        &self,
        staged: &Staged<'_>,
        observer: Option<&dyn ApplyObserver>,
    ) -> Result<(), EngineError> {
        let plan = staged.plan();
        let image = staged.image_slot();
        let firmware_from = match image {
            Some(_) => Some(self.slots.state()?),
            None => None,
        };
        let before = self.state()?;
        let journal = journal(&self.storage, plan, firmware_from)?;
        let applying = before.with(&plan.from, Some(journal.clone()));
        let applied = Journal {
            phase: Phase::Applied,
            ..journal.clone()
        };
        let mut committed = before.with(&plan.to, Some(applied));
        committed.highest_counter = committed.highest_counter.max(plan.counter.unwrap_or(0));
        let steps = steps(&journal, image);
        for (index, &step) in steps.iter().enumerate() {
            if let Some(observer) = observer {
                observer.before(&ApplyStep {
                    index,
                    total: steps.len(),
                    step,
                });
            }
            match step {
                Step::Journal => applying.save(&self.storage)?,
                Step::File(file) => self.undo_on_error(&applying, perform(&self.storage, file))?,
                Step::Boot(slot) => self.undo_on_error(&applying, boot(&self.slots, slot))?,
                Step::Commit => committed.save(&self.storage)?,
            }
        }
        Ok(())
    }

    /// Makes a pending update permanent: keeps the new firmware, drops the
    /// backups. Refused when the booted image is not the new version's
    /// (the bootloader fell back to the old one).
    pub fn confirm(&self) -> Result<Version, EngineError> {
        let state = self.state()?;
        let Some(journal) = state.update.as_ref().filter(|j| j.phase == Phase::Applied) else {
            return Err(EngineError::NothingPending);
        };
        if let Some(booted) = self.fallen_back(journal)? {
            return Err(EngineError::BootMismatch {
                version: journal.to.clone(),
                booted,
            });
        }
        if journal.firmware_from.is_some() {
            let boot = self.slots.state()?;
            if boot.pending {
                self.slots.set_state(BootState {
                    pending: false,
                    ..boot
                })?;
            }
        }
        state.with(&journal.to, None).save(&self.storage)?;
        self.remove_dir_if_present(&backup_dir())?;
        self.remove_dir_if_present(&staging_dir())?;
        crate::trust::installed::prune(&self.storage, &journal.to)?;
        info!(version = %journal.to, "update confirmed");
        Ok(journal.to.clone())
    }

    /// Restores the files, version and boot slot from before the pending
    /// update, exactly.
    pub fn rollback(&self) -> Result<Version, EngineError> {
        let journal = self.roll_back(None)?;
        info!(version = %journal.from, "rolled back");
        Ok(journal.from)
    }

    /// Rolls the pending update back by the meter's own decision, and
    /// keeps why in the device state (saved with the rollback's journal,
    /// so a power cut cannot lose it) until a van has been told.
    pub fn revert(&self, reason: String) -> Result<Revert, EngineError> {
        let journal = self.roll_back(Some(reason.clone()))?;
        warn!(from = %journal.to, to = %journal.from, %reason, "reverted");
        Ok(Revert {
            from: journal.from,
            to: journal.to,
            reason,
        })
    }

    fn roll_back(&self, reason: Option<String>) -> Result<Journal, EngineError> {
        let state = self.state()?;
        let Some(journal) = state.update.as_ref().filter(|j| j.phase == Phase::Applied) else {
            return Err(EngineError::NothingPending);
        };
        let mut rolling = journal.clone();
        rolling.phase = Phase::RollingBack;
        let mut next = state.with(&state.version, Some(rolling));
        if let Some(reason) = reason {
            next.reverted = Some(Revert {
                from: journal.from.clone(),
                to: journal.to.clone(),
                reason,
            });
        }
        next.save(&self.storage)?;
        self.undo_to_old(&next)?;
        self.remove_dir_if_present(&staging_dir())?;
        Ok(journal.clone())
    }

    /// Counts a start of the meter while an update awaits confirmation
    /// (call it once per start, after [`Meter::recover`]); reverts the
    /// update instead once it has had `max_boots` starts unconfirmed.
    pub fn count_boot(&self, max_boots: u32) -> Result<BootCount, EngineError> {
        let state = self.state()?;
        let Some(journal) = state.update.as_ref().filter(|j| j.phase == Phase::Applied) else {
            return Ok(BootCount::Settled);
        };
        if journal.boots >= max_boots {
            let reason = format!(
                "{} was not confirmed within {} boots",
                journal.to, journal.boots
            );
            return Ok(BootCount::Reverted(self.revert(reason)?));
        }
        let mut counted = journal.clone();
        counted.boots += 1;
        state
            .with(&state.version, Some(counted.clone()))
            .save(&self.storage)?;
        info!(version = %counted.to, boot = counted.boots, of = max_boots, "booted on trial");
        Ok(BootCount::OnTrial {
            version: counted.to,
            boot: counted.boots,
        })
    }

    /// Adds `seen` to what the version on trial has shown (saved when it
    /// adds anything); returns that version and all it has shown, `None`
    /// when no update awaits confirmation.
    pub fn record(&self, seen: Evidence) -> Result<Option<(Version, Evidence)>, EngineError> {
        let state = self.state()?;
        let Some(journal) = state.update.as_ref().filter(|j| j.phase == Phase::Applied) else {
            return Ok(None);
        };
        let all = journal.seen.and(seen);
        if all != journal.seen {
            let mut recorded = journal.clone();
            recorded.seen = all;
            state
                .with(&state.version, Some(recorded))
                .save(&self.storage)?;
        }
        Ok(Some((journal.to.clone(), all)))
    }

    /// Forgets `revert` once a van has been told of it.
    pub fn revert_reported(&self, revert: &Revert) -> Result<(), EngineError> {
        let mut state = self.state()?;
        if state.reverted.as_ref() == Some(revert) {
            state.reverted = None;
            state.save(&self.storage)?;
        }
        Ok(())
    }

    /// The slot booted instead of the new image's, when the bootloader
    /// fell back to the old one under `journal` (an update with firmware
    /// boots the slot that was not booted before it).
    fn fallen_back(&self, journal: &Journal) -> io::Result<Option<Slot>> {
        let Some(before) = journal.firmware_from else {
            return Ok(None);
        };
        let booted = self.slots.state()?.boot;
        Ok((booted != before.boot.other()).then_some(booted))
    }

    /// Raises the trusted time kept in the device state to `unix` (Unix
    /// seconds), if that is later; it is never lowered.
    pub fn raise_trusted_time(&self, unix: u64) -> Result<(), EngineError> {
        let state = self.state()?;
        if unix > state.trusted_time {
            DeviceState {
                trusted_time: unix,
                ..state
            }
            .save(&self.storage)?;
        }
        Ok(())
    }

    /// SHA-256 of the booted image (`None`: empty slot).
    pub fn booted_sha256(&self) -> Result<Option<String>, EngineError> {
        let boot = self.slots.state()?;
        match self.slots.read(boot.boot)? {
            Some(reader) => Ok(Some(digest(reader)?.sha256)),
            None => Ok(None),
        }
    }

    /// The booted image in memory, if it has SHA-256 `sha256` and is at
    /// most `limit` bytes (patches need their source in memory).
    pub fn booted_image_matching(
        &self,
        sha256: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let boot = self.slots.state()?;
        let Some(reader) = self.slots.read(boot.boot)? else {
            return Ok(None);
        };
        let mut image = Vec::new();
        let read = reader.take(limit + 1).read_to_end(&mut image)?;
        if read as u64 > limit {
            return Ok(None);
        }
        let matches = digest(image.as_slice())?.sha256 == sha256;
        Ok(matches.then_some(image))
    }

    /// The meter's status.
    pub fn status(&self) -> Result<Status, EngineError> {
        let state = self.state()?;
        let boot = self.slots.state()?;
        let firmware_sha1 = match self.slots.read(boot.boot)? {
            Some(reader) => Some(digest(reader)?.sha1),
            None => None,
        };
        let applied = state.update.as_ref().filter(|j| j.phase == Phase::Applied);
        // After the bootloader fell back, the meter runs the old version
        // (until recovery moves the files back too): never report the new.
        let fallen_back = match applied {
            Some(journal) => self.fallen_back(journal)?.is_some(),
            None => false,
        };
        let pending = applied.filter(|_| !fallen_back);
        // A rollback cut short ends at the old version too.
        let rolling_back = state
            .update
            .as_ref()
            .filter(|j| j.phase == Phase::RollingBack);
        Ok(Status {
            version: match (applied, rolling_back) {
                (Some(journal), _) if fallen_back => journal.from.clone(),
                (_, Some(journal)) => journal.from.clone(),
                _ => state.version.clone(),
            },
            pending_confirm: pending.is_some(),
            rollback_version: pending.map(|j| j.from.clone()),
            boot_slot: boot.boot,
            firmware_sha1,
            boots: pending.map_or(0, |j| j.boots),
            reverted: state.reverted.clone(),
        })
    }

    /// Undoes the journal in `state` (idempotently), restores the boot
    /// state, and records the old version.
    fn undo_to_old(&self, state: &DeviceState) -> Result<(), EngineError> {
        let journal = state.update.as_ref().expect("called with a journal");
        undo(&self.storage, journal)?;
        if let Some(before) = journal.firmware_from
            && self.slots.state()? != before
        {
            self.slots.set_state(before)?;
        }
        state.with(&journal.from, None).save(&self.storage)?;
        self.remove_dir_if_present(&backup_dir())?;
        Ok(())
    }

    /// `result` of a step between the journal and the commit; an error is
    /// undone first, back to the old version in `applying`.
    fn undo_on_error(
        &self,
        applying: &DeviceState,
        result: io::Result<()>,
    ) -> Result<(), EngineError> {
        let Err(error) = result else {
            return Ok(());
        };
        warn!(%error, "apply failed; restoring the old version");
        if let Err(undo_error) = self.undo_to_old(applying) {
            warn!(error = %undo_error, "undo failed; it is finished on the next start");
        }
        Err(error.into())
    }

    fn remove_dir_if_present(&self, dir: &MeterPath) -> Result<(), EngineError> {
        if self.storage.exists(dir)? {
            self.storage.remove_dir_all(dir)?;
        }
        Ok(())
    }
}
