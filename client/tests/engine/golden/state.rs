//! The device state, the boot state and the provisioned tree.

use otavan_client::confirm::Revert;
use otavan_client::device::provision;
use otavan_client::health::Evidence;
use otavan_client::path::MeterPath;
use otavan_client::slots::{BootState, FileSlots, FirmwareSlots, Slot};
use otavan_client::state::{DeviceState, Journal, Op, Phase};
use otavan_client::storage::{DirStorage, Storage, walk_files};
use otavan_client::trust::Anchor;
use otavan_client::{Meter, Recovery};
use otavan_protocol::descriptor::KeyPair;
use tempfile::TempDir;

use super::{assert_writes, empty_meter, golden, meter_with, path, version};

/// A journal like the engine's for an update from 1.0.0 to 1.1.0 that
/// adds a file in a new folder, replaces one and deletes one; with the
/// boot state before its firmware, when it has one.
fn journal(phase: Phase, firmware_from: Option<BootState>) -> Journal {
    Journal {
        phase,
        from: version("1.0.0"),
        to: version("1.1.0"),
        ops: vec![
            Op::Install {
                path: path("flash/lib/tariff/peak.py"),
                staged: path(
                    ".otavan/staging/6b5f1c1f9d3e0a7e-0f8a3c6a3d3bcbd0e86b7a0ab5a0e4b3c6f0f5a1",
                ),
                backup: None,
            },
            Op::Install {
                path: path("flash/main.py"),
                staged: path(
                    ".otavan/staging/0cc0ad4c6b3f4b51-8f2d3b2a7b1c9e0d4a5f6e7d8c9b0a1f2e3d4c5b",
                ),
                backup: Some(path(".otavan/backup/flash/main.py")),
            },
            Op::Delete {
                path: path("sd/sounds/beep.wav"),
                backup: path(".otavan/backup/sd/sounds/beep.wav"),
            },
        ],
        created_dirs: vec![path("flash/lib/tariff")],
        removed_dirs: vec![],
        firmware_from,
        boots: 0,
        seen: Evidence::default(),
    }
}

/// A journal like the engine's for an update where files and folders
/// swap places: `flash/config` becomes a folder, `flash/lib/drivers/` a
/// file. Deletes come first, then the emptied folder goes, then the new
/// one is made, then files are installed.
fn swap_journal(phase: Phase) -> Journal {
    Journal {
        phase,
        from: version("1.0.0"),
        to: version("1.1.0"),
        ops: vec![
            Op::Delete {
                path: path("flash/config"),
                backup: path(".otavan/backup/flash/config"),
            },
            Op::Delete {
                path: path("flash/lib/drivers/modbus.py"),
                backup: path(".otavan/backup/flash/lib/drivers/modbus.py"),
            },
            Op::Install {
                path: path("flash/config/site.json"),
                staged: path(
                    ".otavan/staging/1f0e3dad99908345-a9993e364706816aba3e25717850c26c9cd0d89d",
                ),
                backup: None,
            },
            Op::Install {
                path: path("flash/lib/drivers"),
                staged: path(
                    ".otavan/staging/4b227777d4dd1fc6-84983e441c3bd26ebaae4aa1f95129e5e54670f1",
                ),
                backup: None,
            },
        ],
        created_dirs: vec![path("flash/config")],
        removed_dirs: vec![path("flash/lib/drivers")],
        firmware_from: None,
        boots: 0,
        seen: Evidence::default(),
    }
}

const BOOTED_A: BootState = BootState {
    boot: Slot::A,
    pending: false,
};

/// Every golden state file and the state it holds. All of them load,
/// forever.
fn states() -> Vec<(&'static str, DeviceState)> {
    let at = |v: &str, update, highest_counter| DeviceState {
        version: version(v),
        update,
        highest_counter,
        reverted: None,
        trusted_time: 0,
    };
    // On trial: booted twice since it was applied, and the van heard it.
    let on_trial = Journal {
        boots: 2,
        seen: Evidence::VAN_REPORT,
        ..journal(Phase::Applied, firmware_a())
    };
    let reverted = DeviceState {
        reverted: Some(Revert {
            from: version("1.0.0"),
            to: version("1.1.0"),
            reason: "1.1.0 was not confirmed within 3 boots".into(),
        }),
        ..at("1.0.0", None, 12)
    };
    let firmware = Some(BOOTED_A);
    vec![
        ("state/current.json", at("1.0.0", None, 0)),
        ("state/current-signed.json", at("1.1.0", None, 12)),
        (
            "state/applying.json",
            at("1.0.0", Some(journal(Phase::Applying, firmware)), 0),
        ),
        (
            "state/applying-files-only.json",
            at("1.0.0", Some(journal(Phase::Applying, None)), 0),
        ),
        (
            "state/applied.json",
            at("1.1.0", Some(journal(Phase::Applied, firmware)), 12),
        ),
        (
            "state/rolling-back.json",
            at("1.1.0", Some(journal(Phase::RollingBack, firmware)), 12),
        ),
        (
            "state/applying-swap.json",
            at("1.0.0", Some(swap_journal(Phase::Applying)), 0),
        ),
        (
            "state/applied-on-trial.json",
            at("1.1.0", Some(on_trial), 12),
        ),
        ("state/reverted.json", reverted),
    ]
}

fn firmware_a() -> Option<BootState> {
    Some(BOOTED_A)
}

/// The golden state files today's code writes.
const STATES_WRITTEN: &[&str] = &[
    "state/current.json",
    "state/current-signed.json",
    "state/applying.json",
    "state/applying-files-only.json",
    "state/applied.json",
    "state/rolling-back.json",
    "state/applying-swap.json",
    "state/applied-on-trial.json",
    "state/reverted.json",
];

#[test]
fn golden_device_states_load_and_are_written_byte_for_byte() {
    for name in STATES_WRITTEN {
        let (_, state) = states().into_iter().find(|(n, _)| n == name).unwrap();
        let (_dir, storage) = empty_meter();
        state.save(&storage).unwrap();
        assert_writes(name, &storage.read(&path(".otavan/state.json")).unwrap());
    }
    for (name, expected) in states() {
        let (_dir, storage) = meter_with(name, ".otavan/state.json");
        assert_eq!(DeviceState::load(&storage).unwrap(), expected, "{name}");
    }
}

#[test]
fn a_golden_journal_is_recovered_by_todays_code() {
    // The interrupted update of state/applying-files-only.json, on disk
    // as a power cut after its first rename left it: today's recovery
    // puts the meter back at 1.0.0.
    let (dir, storage) = meter_with("state/applying-files-only.json", ".otavan/state.json");
    let root = dir.path();
    let write = |p: &str, bytes: &[u8]| {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), bytes).unwrap();
    };
    write("flash/lib/tariff/peak.py", b"new peak");
    write(
        ".otavan/staging/0cc0ad4c6b3f4b51-8f2d3b2a7b1c9e0d4a5f6e7d8c9b0a1f2e3d4c5b",
        b"new main",
    );
    write("flash/main.py", b"old main");
    write("sd/sounds/beep.wav", b"beep");
    let slots = FileSlots::new(storage.clone());
    slots.set_state(BOOTED_A).unwrap();
    let meter = Meter::new(storage.clone(), slots);
    assert_eq!(
        meter.recover().unwrap(),
        Recovery::Undone {
            version: version("1.0.0")
        }
    );
    assert!(!root.join("flash/lib/tariff").exists());
    assert_eq!(
        std::fs::read(root.join("flash/main.py")).unwrap(),
        b"old main"
    );
    assert_eq!(
        std::fs::read(root.join("sd/sounds/beep.wav")).unwrap(),
        b"beep"
    );
    let state = meter.state().unwrap();
    assert_eq!((state.version.as_str(), state.update), ("1.0.0", None));
}

#[test]
fn a_golden_swap_journal_is_recovered_by_todays_code() {
    // state/applying-swap.json cut after its folder steps: flash/config
    // is a new, empty folder (its file in the backup), flash/lib/drivers
    // is gone (its one file in the backup).
    let (dir, storage) = meter_with("state/applying-swap.json", ".otavan/state.json");
    let root = dir.path();
    let write = |p: &str, bytes: &[u8]| {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), bytes).unwrap();
    };
    write("flash/lib/meter.py", b"meter");
    write(".otavan/backup/flash/config", b"old config");
    write(".otavan/backup/flash/lib/drivers/modbus.py", b"old modbus");
    std::fs::create_dir_all(root.join("flash/config")).unwrap();
    write(
        ".otavan/staging/1f0e3dad99908345-a9993e364706816aba3e25717850c26c9cd0d89d",
        b"new site",
    );
    let slots = FileSlots::new(storage.clone());
    slots.set_state(BOOTED_A).unwrap();
    let meter = Meter::new(storage.clone(), slots);
    assert_eq!(
        meter.recover().unwrap(),
        Recovery::Undone {
            version: version("1.0.0")
        }
    );
    assert_eq!(
        std::fs::read(root.join("flash/config")).unwrap(),
        b"old config"
    );
    assert_eq!(
        std::fs::read(root.join("flash/lib/drivers/modbus.py")).unwrap(),
        b"old modbus"
    );
    let state = meter.state().unwrap();
    assert_eq!((state.version.as_str(), state.update), ("1.0.0", None));
}

/// Every golden boot state and what it holds; all load, forever.
fn boot_states() -> Vec<(&'static str, BootState)> {
    vec![
        ("slots/boot-a.json", BOOTED_A),
        (
            "slots/boot-b-pending.json",
            BootState {
                boot: Slot::B,
                pending: true,
            },
        ),
    ]
}

/// The golden boot states today's code writes.
const BOOT_STATES_WRITTEN: &[&str] = &["slots/boot-a.json", "slots/boot-b-pending.json"];

#[test]
fn golden_boot_states_load_and_are_written_byte_for_byte() {
    for name in BOOT_STATES_WRITTEN {
        let (_, state) = boot_states().into_iter().find(|(n, _)| n == name).unwrap();
        let (_dir, storage) = empty_meter();
        FileSlots::new(storage.clone()).set_state(state).unwrap();
        let written = storage.read(&path(".otavan/slots/boot.json")).unwrap();
        assert_writes(name, &written);
    }
    for (name, expected) in boot_states() {
        let (_dir, storage) = meter_with(name, ".otavan/slots/boot.json");
        assert_eq!(FileSlots::new(storage).state().unwrap(), expected, "{name}");
    }
}

/// The image and key of the golden provisioned meter.
const PROVISIONED_IMAGE: &[u8] = b"otavan golden firmware 1.0.0\n";

fn release_keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

/// The files of golden tree `provisioned/`, all under `.otavan/`.
const PROVISIONED: &[&str] = &[
    ".otavan/slots/a.bin",
    ".otavan/slots/boot.json",
    ".otavan/state.json",
    ".otavan/trust.pub",
];

#[test]
fn provisioning_writes_the_golden_tree_byte_for_byte_and_a_meter_opens_it() {
    // (b) Provisioning writes exactly these files.
    let dir = TempDir::new().unwrap();
    let storage = DirStorage::new(dir.path()).unwrap();
    let mut image = PROVISIONED_IMAGE;
    let key = Anchor::Key(release_keys().public());
    provision(&storage, &version("1.0.0"), Some(&mut image), Some(&key)).unwrap();
    let files: Vec<MeterPath> = walk_files(&storage, None).unwrap();
    let names: Vec<&str> = files.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, PROVISIONED);
    for file in &files {
        let written = storage.read(file).unwrap();
        assert_writes(&format!("provisioned/{}", file.as_str()), &written);
    }

    // (a) Today's meter opens the golden tree.
    let dir = TempDir::new().unwrap();
    for file in PROVISIONED {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, golden(&format!("provisioned/{file}"))).unwrap();
    }
    let storage = DirStorage::new(dir.path()).unwrap();
    let meter = Meter::new(storage.clone(), FileSlots::new(storage));
    assert_eq!(meter.recover().unwrap(), Recovery::Clean);
    let status = meter.status().unwrap();
    assert_eq!(status.version.as_str(), "1.0.0");
    assert_eq!((status.boot_slot, status.pending_confirm), (Slot::A, false));
    let sha1 = otavan_client::digest::digest(PROVISIONED_IMAGE)
        .unwrap()
        .sha1;
    assert_eq!(status.firmware_sha1, Some(sha1));
    assert_eq!(
        Anchor::load(meter.storage()).unwrap(),
        Some(Anchor::Key(release_keys().public()))
    );
}
