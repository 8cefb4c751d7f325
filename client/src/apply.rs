//! Installing a verified plan, and undoing an install.
//!
//! Every step is a rename, so each is atomic, and each is idempotent to
//! undo: whether a step happened can be read off the disk (is the staged
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

/// Performs the journal's file steps.
pub fn install(storage: &dyn Storage, journal: &Journal) -> io::Result<()> {
    for dir in &journal.created_dirs {
        if !storage.exists(dir)? {
            storage.create_dir(dir)?;
        }
    }
    for op in &journal.ops {
        match op {
            Op::Install {
                path,
                staged,
                backup,
            } => {
                if let Some(backup) = backup {
                    create_parents(storage, backup)?;
                    storage.rename(path, backup)?;
                }
                storage.rename(staged, path)?;
            }
            Op::Delete { path, backup } => {
                create_parents(storage, backup)?;
                storage.rename(path, backup)?;
            }
        }
    }
    // One file-system sync makes every rename durable before the commit.
    storage.sync_all()
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
