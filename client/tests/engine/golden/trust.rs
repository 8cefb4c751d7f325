//! What a signed meter keeps to trust the next update: the root key it was
//! provisioned with (`.otavan/root.pub`), the highest root certificate it
//! has followed (`.otavan/root.json`), the signed descriptors of its
//! installed version and, until confirmed, of the one before
//! (`.otavan/descriptors/VERSION.json`), and its trusted-time floor in the
//! device state.

use otavan_client::device::provision;
use otavan_client::slots::FileSlots;
use otavan_client::state::DeviceState;
use otavan_client::storage::{DirStorage, Storage, walk_files};
use otavan_client::trust::{Anchor, installed};
use otavan_client::{Meter, Recovery};
use otavan_protocol::descriptor::KeyPair;
use otavan_protocol::keys::KeyRole;
use otavan_server::certify::Terms;
use tempfile::TempDir;

use super::{assert_writes, empty_meter, golden, meter_with, path, version};
use crate::harness::{NEW, NOW, OLD, Release, TestMeter};

fn root() -> KeyPair {
    KeyPair::from_seed([1; 32])
}

fn release_key() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

/// A release of its own, signed at fixed times, so the kept files' bytes
/// are fixed here.
fn release() -> Release {
    let mut release = Release::from_trees(
        &[
            ("flash/main.py", b"print('1.0.0')\n".to_vec()),
            ("sd/old.txt", b"old\n".to_vec()),
        ],
        &[("flash/main.py", b"print('1.1.0')\n".to_vec())],
        b"golden image 1.0.0",
        b"golden image 1.1.0",
    );
    let terms = Terms {
        keys: vec![release_key().public()],
        expires: 4_000_000_000,
        ..Terms::default()
    };
    release.certify(&root(), &terms);
    release.sign_by(&[&release_key()], 4_000_000_000, NOW + 7 * 86_400);
    release
}

/// The kept files an update writes, and their golden names.
const KEPT: &[(&str, &str)] = &[
    (".otavan/root.json", "trust/root.json"),
    (
        ".otavan/descriptors/1.0.0.json",
        "trust/descriptor-1.0.0.json",
    ),
    (
        ".otavan/descriptors/1.1.0.json",
        "trust/descriptor-1.1.0.json",
    ),
];

#[tokio::test]
async fn a_signed_update_keeps_the_golden_certificate_and_descriptors() {
    // (b) The first signed update writes exactly these files.
    let release = release();
    let meter =
        TestMeter::provisioned_trusting(&release, OLD, Some(&Anchor::Root(root().public())));
    meter.engine(release.transport()).update().await.unwrap();
    for (file, name) in KEPT {
        assert_writes(name, &std::fs::read(meter.root().join(file)).unwrap());
    }

    // (a) Today's meter, holding the golden files, trusts them: it reads
    // the descriptors back, and updates from a van that serves no
    // certificate at all on the strength of the kept one.
    let meter =
        TestMeter::provisioned_trusting(&release, OLD, Some(&Anchor::Root(root().public())));
    for (file, name) in KEPT {
        let to = meter.root().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, golden(name)).unwrap();
    }
    let storage = meter.storage();
    for v in [OLD, NEW] {
        assert_eq!(
            installed::load(&storage, &version(v)).unwrap(),
            Some(release.descriptor(v)),
            "{v}"
        );
    }
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest.as_object_mut().unwrap().remove("root");
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    assert!(
        !transport
            .fetch_log()
            .iter()
            .any(|(f, _)| f.contains("root.json"))
    );
}

#[test]
fn a_golden_trusted_time_loads_and_is_written_byte_for_byte() {
    let name = "state/current-trusted-time.json";
    let state = DeviceState {
        version: version("1.1.0"),
        update: None,
        highest_counter: 12,
        reverted: None,
        trusted_time: 1_767_225_600,
    };
    let (_dir, storage) = empty_meter();
    state.save(&storage).unwrap();
    assert_writes(name, &storage.read(&path(".otavan/state.json")).unwrap());
    let (_dir, storage) = meter_with(name, ".otavan/state.json");
    assert_eq!(DeviceState::load(&storage).unwrap(), state);
}

/// The files of golden tree `provisioned-root/`.
const PROVISIONED_ROOT: &[&str] = &[
    ".otavan/root.pub",
    ".otavan/slots/a.bin",
    ".otavan/slots/boot.json",
    ".otavan/state.json",
];

#[test]
fn root_provisioning_writes_the_golden_tree_and_a_meter_opens_it() {
    let image: &[u8] = b"otavan golden firmware 1.0.0\n";
    let anchor = Anchor::Root(root().public());
    // (b)
    let dir = TempDir::new().unwrap();
    let storage = DirStorage::new(dir.path()).unwrap();
    provision(
        &storage,
        &version("1.0.0"),
        Some(&mut &image[..]),
        Some(&anchor),
    )
    .unwrap();
    let files = walk_files(&storage, None).unwrap();
    let names: Vec<&str> = files.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, PROVISIONED_ROOT);
    for file in &files {
        let written = storage.read(file).unwrap();
        assert_writes(&format!("provisioned-root/{}", file.as_str()), &written);
    }
    assert!(
        String::from_utf8(storage.read(&path(".otavan/root.pub")).unwrap())
            .unwrap()
            .starts_with("otavan-ed25519-root-public\n")
    );
    // (a)
    let dir = TempDir::new().unwrap();
    for file in PROVISIONED_ROOT {
        let to = dir.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, golden(&format!("provisioned-root/{file}"))).unwrap();
    }
    let storage = DirStorage::new(dir.path()).unwrap();
    let meter = Meter::new(storage.clone(), FileSlots::new(storage.clone()));
    assert_eq!(meter.recover().unwrap(), Recovery::Clean);
    assert_eq!(Anchor::load(&storage).unwrap(), Some(anchor));
    // A release key's file in the root key's place is refused.
    std::fs::write(
        dir.path().join(".otavan/root.pub"),
        release_key().public().to_file_as(KeyRole::Release),
    )
    .unwrap();
    assert!(Anchor::load(&storage).is_err());
}
