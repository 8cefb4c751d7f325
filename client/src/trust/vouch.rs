//! Holding a manifest to the signed descriptors: every file, delete and
//! image it asks for, and the tree it leaves behind.

use std::collections::BTreeSet;

use otavan_protocol::descriptor::TargetDescriptor;

use super::{Verified, refuse};
use crate::digest::digest;
use crate::engine::EngineError;
use crate::path::{MeterPath, STATE_DIR};
use crate::plan::UpdatePlan;
use crate::storage::{Storage, walk_files};

/// What the meter holds now, for the coverage checks.
pub struct MeterView<'a> {
    /// The meter's file system.
    pub storage: &'a dyn Storage,
    /// SHA-256 of the booted firmware image.
    pub booted_sha256: Option<String>,
}

/// Checks `plan` against the verified descriptors (step 4 of
/// [`super`]) and pins every expected hash and size to the signed values.
/// Nothing on the meter changes: a refusal comes before any file moves.
pub fn vouch(
    plan: &mut UpdatePlan,
    verified: &Verified,
    meter: &MeterView<'_>,
) -> Result<(), EngineError> {
    let descriptor = &verified.target;
    if descriptor.version != plan.to.as_str() {
        return Err(refuse(format!(
            "the signed descriptor is for version {}, the manifest targets {}",
            descriptor.version, plan.to
        )));
    }
    for file in &mut plan.files {
        let Some(signed) = descriptor.file(file.path.as_str()) else {
            return Err(refuse(format!(
                "the manifest installs {}, which the signed release does not contain",
                file.path
            )));
        };
        let expect = &mut file.expect;
        if expect.sha256.as_ref().is_some_and(|h| *h != signed.sha256)
            || expect.size.is_some_and(|s| s != signed.size)
        {
            return Err(refuse(format!(
                "{} differs from the signed release",
                file.path
            )));
        }
        expect.sha256 = Some(signed.sha256.clone());
        expect.size = Some(signed.size);
    }
    check_deletes(plan, descriptor, verified.installed.as_ref())?;
    match (&mut plan.firmware, &descriptor.firmware) {
        (Some(image), Some(signed)) => {
            let expect = &mut image.expect;
            if expect.sha256.as_ref().is_some_and(|h| *h != signed.sha256)
                || expect.size.is_some_and(|s| s != signed.size)
            {
                return Err(refuse("the firmware differs from the signed release"));
            }
            expect.sha256 = Some(signed.sha256.clone());
            expect.size = Some(signed.size);
        }
        (Some(_), None) => {
            return Err(refuse(
                "the manifest brings firmware the signed release does not contain",
            ));
        }
        (None, Some(signed)) if meter.booted_sha256.as_deref() != Some(signed.sha256.as_str()) => {
            return Err(refuse(
                "the signed release needs firmware the manifest does not provide",
            ));
        }
        (None, _) => {}
    }
    for signed in &descriptor.files {
        if plan.files.iter().any(|f| f.path.as_str() == signed.path) {
            continue;
        }
        if meter_sha256(meter.storage, &signed.path)?.as_deref() != Some(signed.sha256.as_str()) {
            return Err(refuse(format!(
                "the manifest leaves /{} different from the signed release",
                signed.path
            )));
        }
    }
    check_nothing_else_stays(plan, descriptor, meter.storage)?;
    plan.counter = Some(descriptor.counter);
    Ok(())
}

/// A delete must remove a file the installed version's signed descriptor
/// lists and the target's lacks; nothing else has a signature behind it.
fn check_deletes(
    plan: &UpdatePlan,
    target: &TargetDescriptor,
    installed: Option<&TargetDescriptor>,
) -> Result<(), EngineError> {
    for path in &plan.deletes {
        if target.file(path.as_str()).is_some() {
            return Err(refuse(format!(
                "the manifest deletes {path}, which the signed release contains"
            )));
        }
        if installed.is_none_or(|d| d.file(path.as_str()).is_none()) {
            return Err(refuse(format!(
                "the manifest deletes {path}, which the signed release {} does not list",
                plan.from
            )));
        }
    }
    Ok(())
}

/// After the install the tree outside `.otavan/` must be exactly the
/// target's: every file the meter holds and the plan neither installs nor
/// deletes must be one the target contains (the rest is checked against
/// its hash above).
fn check_nothing_else_stays(
    plan: &UpdatePlan,
    target: &TargetDescriptor,
    storage: &dyn Storage,
) -> Result<(), EngineError> {
    let changed: BTreeSet<&MeterPath> = plan
        .files
        .iter()
        .map(|f| &f.path)
        .chain(&plan.deletes)
        .collect();
    for file in meter_files(storage)? {
        if !changed.contains(&file) && target.file(file.as_str()).is_none() {
            return Err(refuse(format!(
                "{file} would stay on the meter, but the signed release {} does not contain it",
                plan.to
            )));
        }
    }
    Ok(())
}

/// Every file of the meter's tree, outside its state directory.
fn meter_files(storage: &dyn Storage) -> Result<Vec<MeterPath>, EngineError> {
    let mut files = Vec::new();
    for entry in storage.list(None)? {
        if entry.path.as_str() == STATE_DIR {
            continue;
        }
        if entry.is_dir {
            files.extend(walk_files(storage, Some(&entry.path))?);
        } else {
            files.push(entry.path);
        }
    }
    Ok(files)
}

/// SHA-256 of a file on the meter (`None`: absent or not a valid path).
fn meter_sha256(storage: &dyn Storage, path: &str) -> Result<Option<String>, EngineError> {
    let Ok(path) = MeterPath::parse(path) else {
        return Ok(None);
    };
    if storage.size(&path)?.is_none() {
        return Ok(None);
    }
    Ok(Some(digest(storage.open(&path)?)?.sha256))
}
