//! The end-of-run checks of a live rehearsal: every meter is exactly at
//! its target or exactly at its source (files and booted firmware), and
//! the van server's report store agrees with what the meters did.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use otavan_client::meter::Meter;
use otavan_client::slots::FileSlots;
use otavan_client::storage::DirStorage;
use otavan_protocol::Version;
use otavan_server::index::ReleaseIndex;
use otavan_store::reports::ReportStore;
use serde::Serialize;
use sha1::{Digest, Sha1};

/// What the checks found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    /// Meters checked.
    pub meters_checked: u64,
    /// Meters at the target with exactly the target's files and firmware.
    pub exactly_target: u64,
    /// Meters at their source version with exactly its files and firmware.
    pub exactly_source: u64,
    /// Of the meters at the target, those still on trial at the end: their
    /// self-test never passed (the van never heard their report), so they
    /// would revert at their fourth start.
    pub on_trial: u64,
    /// Meters that recorded a signed release's counter and keep its
    /// descriptor: they verified the chain from the root key (0 when the
    /// release is not signed).
    pub verified_signed_release: u64,
    /// Meters in neither state (should be 0), with what differs.
    pub mismatched: Vec<String>,
    /// Reports in the van server's store.
    pub reports_stored: u64,
    /// Of those, reports whose signature the van verified (live meters
    /// sign every report; the van refuses a bad signature).
    pub reports_verified: u64,
    /// Meters whose last stored report agrees with their state (UPDATED
    /// for an updated meter, anything else or nothing for the others).
    pub store_agrees: u64,
    /// Meters where it does not, by device id.
    pub store_disagrees: Vec<String>,
    /// Updated meters whose UPDATED report never reached the van (the link
    /// ended or the power failed after the apply had committed, so the
    /// store's last word is an earlier state or FAILED); the van learns at
    /// the meter's next contact. Not a disagreement.
    pub store_behind: Vec<String>,
}

impl Checks {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.mismatched.is_empty() && self.store_disagrees.is_empty()
    }
}

/// One meter to check.
pub struct Checked<'a> {
    /// Its directory.
    pub root: &'a Path,
    /// Its report id.
    pub device_id: String,
    /// The version it started at.
    pub source: &'a Version,
    /// It reached the target but its UPDATED report never reached the van.
    pub updated_unreported: bool,
}

/// Checks `meters` against the release `index` and the report `store`.
pub fn check(index: &ReleaseIndex, store: &ReportStore, meters: &[Checked<'_>]) -> Checks {
    let mut checks = Checks::default();
    let (last_states, verified) = last_states(store);
    checks.reports_stored = store.count().unwrap_or(0);
    checks.reports_verified = verified;
    let target = index.target().clone();
    for meter in meters {
        checks.meters_checked += 1;
        let Ok(storage) = DirStorage::new(meter.root) else {
            checks
                .mismatched
                .push(format!("{}: cannot open", meter.device_id));
            continue;
        };
        let device = Meter::new(storage.clone(), FileSlots::new(storage));
        let (version, on_trial) = match device.state() {
            Ok(state) => {
                let kept = otavan_client::trust::installed::load(device.storage(), &state.version)
                    .is_ok_and(|d| d.is_some());
                checks.verified_signed_release += u64::from(state.highest_counter > 0 && kept);
                (state.version, state.update.is_some())
            }
            Err(e) => {
                checks
                    .mismatched
                    .push(format!("{}: no state: {e}", meter.device_id));
                continue;
            }
        };
        let at_target = version == target;
        checks.on_trial += u64::from(at_target && on_trial);
        let expected = if at_target { &target } else { meter.source };
        match differences(index, expected, meter.root, &device) {
            None if at_target => checks.exactly_target += 1,
            None if &version == meter.source => checks.exactly_source += 1,
            None => checks.mismatched.push(format!(
                "{}: at {version}, neither source nor target",
                meter.device_id
            )),
            Some(what) => checks
                .mismatched
                .push(format!("{}: at {version} but {what}", meter.device_id)),
        }
        let stored = last_states.get(&meter.device_id).map(String::as_str);
        if (stored == Some("UPDATED")) == at_target {
            checks.store_agrees += 1;
        } else if at_target && meter.updated_unreported {
            checks.store_behind.push(meter.device_id.clone());
        } else {
            checks.store_disagrees.push(meter.device_id.clone());
        }
    }
    checks
}

/// Each device's last stored state, and how many stored reports were
/// verified.
fn last_states(store: &ReportStore) -> (HashMap<String, String>, u64) {
    let mut csv = Vec::new();
    let mut last = HashMap::new();
    let mut verified = 0;
    if store.export_csv(&mut csv).is_err() {
        return (last, verified);
    }
    let mut reader = csv::Reader::from_reader(&csv[..]);
    let mark = reader
        .headers()
        .ok()
        .and_then(|h| h.iter().position(|name| name == "verified"));
    for record in reader.records().flatten() {
        if let (Some(device), Some(state)) = (record.get(1), record.get(4)) {
            last.insert(device.to_string(), state.to_string());
        }
        verified += u64::from(mark.and_then(|i| record.get(i)) == Some("verified"));
    }
    (last, verified)
}

/// What differs between the meter and `version` of the release: `None`
/// when its files and booted image are exactly the release's.
fn differences(
    index: &ReleaseIndex,
    version: &Version,
    root: &Path,
    meter: &Meter<DirStorage, FileSlots<DirStorage>>,
) -> Option<String> {
    let expected: BTreeMap<String, String> = index
        .version(version)
        .map(|tree| {
            tree.iter()
                .map(|(p, f)| (p.clone(), f.sha1.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut found = BTreeMap::new();
    if let Err(e) = walk(root, root, &mut found) {
        return Some(format!("its files cannot be read: {e}"));
    }
    if found != expected {
        let missing = expected.keys().filter(|k| !found.contains_key(*k)).count();
        let extra = found.keys().filter(|k| !expected.contains_key(*k)).count();
        let changed = expected
            .iter()
            .filter(|(k, v)| found.get(*k).is_some_and(|f| f != *v))
            .count();
        return Some(format!(
            "its files differ from {version}'s ({missing} missing, {extra} extra, {changed} changed)"
        ));
    }
    let image = index.firmware_for(version).map(|(_, f)| f.sha256.clone());
    let booted = meter.booted_sha256().ok().flatten();
    match (image, booted) {
        (Some(want), Some(have)) if want != have => {
            Some(format!("its booted image is not {version}'s"))
        }
        (Some(_), None) => Some("it has no booted image".into()),
        _ => None,
    }
}

/// Every file under `dir` except the meter's own `.otavan/`, as path ->
/// SHA-1.
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if relative == ".otavan" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let mut hasher = Sha1::new();
            let mut file = std::fs::File::open(&path)?;
            let mut buf = [0u8; 16 * 1024];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            out.insert(relative, hex::encode(hasher.finalize()));
        }
    }
    Ok(())
}
