//! Installing a verified plan, step by step, and undoing an install.
//!
//! Files move only by rename, so each move is atomic, and each is
//! idempotent to undo: whether a step happened can be read off the disk (is the staged
//! file still there? is there a backup?). That is what lets recovery after
//! a power cut at any instant put the meter back exactly as it was.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::engine::EngineError;
use crate::health::Evidence;
use crate::path::MeterPath;
use crate::plan::{PlanError, UpdatePlan};
use crate::slots::{BootState, FirmwareSlots, Slot};
use crate::state::{Journal, Op, Phase, backup_dir};
use crate::storage::{Storage, create_parents};

/// What is at a path of the meter's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    File,
    Dir,
}

fn kind(storage: &dyn Storage, path: &MeterPath) -> io::Result<Kind> {
    Ok(if storage.size(path)?.is_some() {
        Kind::File
    } else if storage.exists(path)? {
        Kind::Dir
    } else {
        Kind::Missing
    })
}

fn conflict(path: &MeterPath, reason: &'static str) -> EngineError {
    EngineError::Plan(PlanError::Tree {
        path: path.clone(),
        reason,
    })
}

/// The journal for installing `plan` on the tree as it is now, or why the
/// plan cannot be installed there (checked before anything moves).
///
/// The order makes every transition of the tree possible: deletes come
/// first (a file can make way for a directory), then the directories the
/// deletes leave empty are removed, deepest first (a directory can make
/// way for a file), then the new directories are created, outermost
/// first, then files are installed. Top-level directories are never
/// removed: on a meter they are volumes (`/flash`, `/sd`). On storage
/// that ignores case, no two paths of the plan may differ only in case:
/// they would be one file there (and so would their backups).
pub fn journal(
    storage: &dyn Storage,
    plan: &UpdatePlan,
    firmware_from: Option<BootState>,
) -> Result<Journal, EngineError> {
    if storage.case_insensitive()? {
        check_case(plan)?;
    }
    let backup = |path: &MeterPath| backup_dir().join(path.as_str()).map_err(io::Error::other);
    let mut deletes = Vec::new();
    // What the update takes away: deleted files, then emptied directories.
    let mut gone = BTreeSet::new();
    for path in &plan.deletes {
        // Deleting what is not there (or is not a file) is already done.
        if kind(storage, path)? == Kind::File {
            deletes.push(Op::Delete {
                path: path.clone(),
                backup: backup(path)?,
            });
            gone.insert(path.clone());
        }
    }
    let needed: BTreeSet<MeterPath> = plan.files.iter().flat_map(|f| f.path.ancestors()).collect();
    let mut emptied: Vec<MeterPath> = gone
        .iter()
        .flat_map(MeterPath::ancestors)
        .filter(|dir| dir.parent().is_some() && !needed.contains(dir))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    emptied.sort_by_key(|dir| Reverse(dir.ancestors().len()));
    let mut removed_dirs = Vec::new();
    for dir in emptied {
        let entries = storage.list(Some(&dir))?;
        if entries.iter().all(|entry| gone.contains(&entry.path)) {
            gone.insert(dir.clone());
            removed_dirs.push(dir);
        }
    }
    let mut created_dirs = Vec::new();
    let mut planned = BTreeSet::new();
    for file in &plan.files {
        for dir in file.path.ancestors() {
            if planned.contains(&dir) {
                continue;
            }
            match kind(storage, &dir)? {
                Kind::Dir => {}
                Kind::File if !gone.contains(&dir) => {
                    return Err(conflict(
                        &dir,
                        "is a file the update does not delete, but new files go inside it",
                    ));
                }
                Kind::Missing | Kind::File => {
                    planned.insert(dir.clone());
                    created_dirs.push(dir);
                }
            }
        }
    }
    let mut installs = Vec::new();
    for file in &plan.files {
        let existing = match kind(storage, &file.path)? {
            Kind::File => true,
            Kind::Missing => false,
            Kind::Dir if gone.contains(&file.path) => false,
            Kind::Dir if file.path.parent().is_none() => {
                return Err(conflict(
                    &file.path,
                    "is a top-level directory (a volume) and cannot become a file",
                ));
            }
            Kind::Dir => {
                return Err(conflict(
                    &file.path,
                    "is a directory holding files the update does not delete",
                ));
            }
        };
        installs.push(Op::Install {
            path: file.path.clone(),
            staged: file.staged.clone(),
            backup: existing.then(|| backup(&file.path)).transpose()?,
        });
    }
    deletes.extend(installs);
    Ok(Journal {
        phase: Phase::Applying,
        from: plan.from.clone(),
        to: plan.to.clone(),
        ops: deletes,
        created_dirs,
        removed_dirs,
        firmware_from,
        boots: 0,
        seen: Evidence::default(),
    })
}

/// Refuses two paths (files or the directories above them) that differ
/// only in case.
fn check_case(plan: &UpdatePlan) -> Result<(), PlanError> {
    let mut spellings: BTreeMap<String, MeterPath> = BTreeMap::new();
    let paths = plan.files.iter().map(|f| &f.path).chain(&plan.deletes);
    for path in paths {
        for name in path.ancestors().into_iter().chain([path.clone()]) {
            let folded = name.as_str().to_lowercase();
            match spellings.get(&folded) {
                Some(other) if *other != name => {
                    return Err(PlanError::CaseCollision(other.clone(), name));
                }
                Some(_) => {}
                None => {
                    spellings.insert(folded, name);
                }
            }
        }
    }
    Ok(())
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
    /// Remove a directory the update's deletes left empty (if it is still
    /// there).
    RemoveDir(&'a MeterPath),
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
/// the new firmware, when the update has one. Deletes, then removed and
/// created directories, then installs (see [`journal`]).
pub fn steps(journal: &Journal, image: Option<Slot>) -> Vec<Step<'_>> {
    let mut steps = vec![Step::Journal];
    for op in &journal.ops {
        if let Op::Delete { path, backup } = op {
            steps.push(Step::File(FileStep::Delete { path, backup }));
        }
    }
    steps.extend(
        journal
            .removed_dirs
            .iter()
            .map(FileStep::RemoveDir)
            .map(Step::File),
    );
    steps.extend(
        journal
            .created_dirs
            .iter()
            .map(FileStep::CreateDir)
            .map(Step::File),
    );
    for op in &journal.ops {
        if let Op::Install {
            path,
            staged,
            backup,
        } = op
        {
            if let Some(backup) = backup {
                steps.push(Step::File(FileStep::Backup { path, backup }));
            }
            steps.push(Step::File(FileStep::Install { staged, path }));
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
        FileStep::RemoveDir(dir) => {
            if storage.exists(dir)? {
                storage.remove_dir(dir)?;
            }
            Ok(())
        }
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

/// Reverses whatever part of the journal's file steps happened, in the
/// reverse order of [`steps`]: installs, created directories, removed
/// directories, deletes. Safe to run again after being cut short. New
/// files go back to staging (a later pass reuses them); replaced and
/// deleted ones come back from their backups; directories the update
/// created are removed and those it removed come back. (Journals written
/// before deletes went first listed them last; undoing them in this order
/// is as exact, since their paths never crossed.)
pub fn undo(storage: &dyn Storage, journal: &Journal) -> io::Result<()> {
    for op in journal.ops.iter().rev() {
        if let Op::Install {
            path,
            staged,
            backup,
        } = op
        {
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
    }
    for dir in journal.created_dirs.iter().rev() {
        // A created directory's path may still be the file it replaces.
        if kind(storage, dir)? == Kind::Dir {
            storage.remove_dir(dir)?;
        }
    }
    for dir in journal.removed_dirs.iter().rev() {
        if !storage.exists(dir)? {
            storage.create_dir(dir)?;
        }
    }
    for op in journal.ops.iter().rev() {
        if let Op::Delete { path, backup } = op
            && storage.size(backup)?.is_some()
        {
            storage.rename(backup, path)?;
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
