//! The signed descriptors a meter keeps: `.otavan/descriptors/VERSION.json`.
//!
//! Each is the [`SignedDescriptor`] as verified when it was taken, one per
//! version. The engine writes the target's (and, on a first signed update,
//! the installed version's) durably before the apply's journal; the
//! commit that makes the target the installed version is what makes its
//! descriptor the installed one, so a power cut anywhere leaves the
//! installed version's descriptor in place. A rollback finds the old
//! version's still there; `confirm` drops every other.
//!
//! The files are the meter's own record, like `state.json`: read back
//! without checking the signatures again (a key rotated out since must
//! not make the meter forget what it holds).

use std::io;

use otavan_protocol::Version;
use otavan_protocol::descriptor::{SignedDescriptor, TargetDescriptor};

use crate::path::MeterPath;
use crate::state::descriptors_dir;
use crate::storage::{Storage, create_parents, write_atomic};

/// Where the descriptor of `version` is kept (`:`, which a version may
/// hold and a meter's file name may not, written `%3A`).
pub fn descriptor_file(version: &Version) -> MeterPath {
    let name = version.as_str().replace('%', "%25").replace(':', "%3A");
    descriptors_dir()
        .join(&format!("{name}.json"))
        .expect("a version without ':' is a valid file name")
}

/// The kept descriptor of `version`, if there is one.
pub fn load(storage: &dyn Storage, version: &Version) -> io::Result<Option<TargetDescriptor>> {
    let path = descriptor_file(version);
    let bytes = match storage.read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let corrupt =
        |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {why}"));
    let signed: SignedDescriptor =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let descriptor = signed.descriptor().map_err(|e| corrupt(e.to_string()))?;
    if descriptor.version != version.as_str() {
        return Err(corrupt(format!("describes {}", descriptor.version)));
    }
    Ok(Some(descriptor))
}

/// Keeps `signed` as the descriptor of `version`, durably.
pub fn keep(storage: &dyn Storage, version: &Version, signed: &SignedDescriptor) -> io::Result<()> {
    let path = descriptor_file(version);
    create_parents(storage, &path)?;
    let json = serde_json::to_vec_pretty(signed).expect("descriptors serialise");
    write_atomic(storage, &path, &json)
}

/// Removes every kept descriptor but `version`'s.
pub fn prune(storage: &dyn Storage, version: &Version) -> io::Result<()> {
    let dir = descriptors_dir();
    if !storage.exists(&dir)? {
        return Ok(());
    }
    let keep = descriptor_file(version);
    for entry in storage.list(Some(&dir))? {
        if !entry.is_dir && entry.path != keep {
            storage.remove_file(&entry.path)?;
        }
    }
    Ok(())
}
