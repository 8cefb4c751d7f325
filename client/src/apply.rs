//! Installing a verified plan, step by step, and undoing an install.
//!
//! Files move only by rename, so each move is atomic, and each is
//! idempotent to undo: whether a step happened can be read off the disk (is the staged
//! file still there? is there a backup?). That is what lets recovery after
//! a power cut at any instant put the meter back exactly as it was.

use std::collections::BTreeSet;
use std::io;

use crate::path::MeterPath;
use crate::plan::UpdatePlan;
use crate::slots::{BootState, FirmwareSlots, Slot};
use crate::state::{Journal, Op, Phase, backup_dir};
use crate::storage::{Storage, create_parents};

/// The journal for installing `plan` on the tree as it is now.
pub fn journal(
    storage: &dyn Storage,
    plan: &UpdatePlan,
    firmware_from: Option<BootState>,
) -> io::Result<Journal> {
    let backup = |path: &MeterPath| backup_dir().join(path.as_str()).map_err(io::Error::other);
    let mut ops = Vec::new();
    let mut created_dirs = Vec::new();
    let mut planned_dirs = BTreeSet::new();
    for file in &plan.files {
        let existing = storage.size(&file.path)?.is_some();
        for dir in file.path.ancestors() {
            if !storage.exists(&dir)? && planned_dirs.insert(dir.clone()) {
                created_dirs.push(dir);
            }
        }
        ops.push(Op::Install {
            path: file.path.clone(),
            staged: file.staged.clone(),
            backup: existing.then(|| backup(&file.path)).transpose()?,
        });
    }
    for path in &plan.deletes {
        // Deleting what is not there is already done.
        if storage.size(path)?.is_some() {
            ops.push(Op::Delete {
                path: path.clone(),
                backup: backup(path)?,
            });
        }
    }
    Ok(Journal {
        phase: Phase::Applying,
        from: plan.from.clone(),
        to: plan.to.clone(),
        ops,
        created_dirs,
        firmware_from,
    })
}

/// One step of an apply, in the order they run. Each is one change on
/// the disk whose completion can be read off it (an atomic save, a
/// directory, a rename, the sync that makes the renames durable, the boot
/// selection), so recovery after a cut anywhere knows what to undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Save the journal (phase `Applying`) beside the old version.
    Journal,
    /// Change the meter's files.
    File(FileStep<'a>),
    /// Select the slot holding the verified new image for the next boot.
    Boot(Slot),
    /// Save the new version with the journal `Applied`: the commit point.
    Commit,
}

/// A step of the journal on the meter's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStep<'a> {
    /// Create a directory the update adds (if it is not there yet).
    CreateDir(&'a MeterPath),
    /// Move a file the update replaces to its backup.
    Backup {
        /// The file.
        path: &'a MeterPath,
        /// Where it waits until confirm or rollback.
        backup: &'a MeterPath,
    },
    /// Rename a verified download into place.
    Install {
        /// The staged file.
        staged: &'a MeterPath,
        /// Where it goes.
        path: &'a MeterPath,
    },
    /// Move a file the update deletes to its backup.
    Delete {
        /// The file.
        path: &'a MeterPath,
        /// Where it waits until confirm.
        backup: &'a MeterPath,
    },
    /// Sync the file system, so every rename is durable before the commit.
    Sync,
}

/// Every step of applying `journal`, in order; `image` is the slot holding
/// the new firmware, when the update has one.
pub fn steps(journal: &Journal, image: Option<Slot>) -> Vec<Step<'_>> {
    let mut steps = vec![Step::Journal];
    steps.extend(
        journal
            .created_dirs
            .iter()
            .map(FileStep::CreateDir)
            .map(Step::File),
    );
    for op in &journal.ops {
        match op {
            Op::Install {
                path,
                staged,
                backup,
            } => {
                if let Some(backup) = backup {
                    steps.push(Step::File(FileStep::Backup { path, backup }));
                }
                steps.push(Step::File(FileStep::Install { staged, path }));
            }
            Op::Delete { path, backup } => {
                steps.push(Step::File(FileStep::Delete { path, backup }))
            }
        }
    }
    steps.push(Step::File(FileStep::Sync));
    steps.extend(image.map(Step::Boot));
    steps.push(Step::Commit);
    steps
}

/// Performs one file step.
pub fn perform(storage: &dyn Storage, step: FileStep<'_>) -> io::Result<()> {
    match step {
        FileStep::CreateDir(dir) => {
            if !storage.exists(dir)? {
                storage.create_dir(dir)?;
            }
            Ok(())
        }
        FileStep::Backup { path, backup } | FileStep::Delete { path, backup } => {
            create_parents(storage, backup)?;
            storage.rename(path, backup)
        }
        FileStep::Install { staged, path } => storage.rename(staged, path),
        FileStep::Sync => storage.sync_all(),
    }
}

/// A step of an apply about to run, with its place among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStep<'a> {
    /// Its position, from 0.
    pub index: usize,
    /// How many steps this apply has.
    pub total: usize,
    /// What it does.
    pub step: Step<'a>,
}

/// Told of each step of an apply right before it runs.
///
/// A meter needs none; the live rehearsal cuts a meter's power at the
/// start of a step it drew, and tests check the steps themselves. An
/// observer only watches: it cannot fail or stop the apply.
pub trait ApplyObserver {
    /// `step` runs next.
    fn before(&self, step: &ApplyStep<'_>);
}

/// A closure is an observer.
impl<F: Fn(&ApplyStep<'_>)> ApplyObserver for F {
    fn before(&self, step: &ApplyStep<'_>) {
        self(step)
    }
}

/// Reverses whatever part of the journal's file steps happened, newest
/// first. Safe to run again after being cut short. New files go back to
/// staging (a later pass reuses them); replaced and deleted ones come back
/// from their backups; directories the update created are removed.
pub fn undo(storage: &dyn Storage, journal: &Journal) -> io::Result<()> {
    for op in journal.ops.iter().rev() {
        match op {
            Op::Install {
                path,
                staged,
                backup,
            } => {
                // The staged file is gone only once it has become `path`.
                if storage.size(path)?.is_some() && storage.size(staged)?.is_none() {
                    storage.rename(path, staged)?;
                }
                if let Some(backup) = backup
                    && storage.size(backup)?.is_some()
                {
                    storage.rename(backup, path)?;
                }
            }
            Op::Delete { path, backup } => {
                if storage.size(backup)?.is_some() {
                    storage.rename(backup, path)?;
                }
            }
        }
    }
    for dir in journal.created_dirs.iter().rev() {
        if storage.exists(dir)? {
            storage.remove_dir(dir)?;
        }
    }
    storage.sync_all()
}

/// Boots `slot`, which holds the verified new image, pending
/// confirmation. The slot must still be the one not booted: nothing but
/// staging writes it, and staging verified the image there.
pub fn boot(slots: &dyn FirmwareSlots, slot: Slot) -> io::Result<()> {
    if slots.state()?.boot.other() != slot {
        return Err(io::Error::other(format!(
            "slot {} holds the new image but is not the inactive slot",
            slot.name()
        )));
    }
    slots.set_state(BootState {
        boot: slot,
        pending: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::FileSlots;
    use crate::storage::DirStorage;

    #[test]
    fn boot_selects_only_the_inactive_slot() {
        let root = tempfile::TempDir::new().unwrap();
        let storage = DirStorage::new(root.path()).unwrap();
        let state_dir = MeterPath::parse(crate::path::STATE_DIR).unwrap();
        storage.create_dir(&state_dir).unwrap();
        let slots = FileSlots::new(storage);
        slots.provision(&mut &b"old image"[..]).unwrap();
        let error = boot(&slots, Slot::A).unwrap_err();
        assert!(
            error.to_string().contains("not the inactive slot"),
            "{error}"
        );
        boot(&slots, Slot::B).unwrap();
        let state = slots.state().unwrap();
        assert_eq!((state.boot, state.pending), (Slot::B, true));
    }
}
