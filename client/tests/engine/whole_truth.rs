//! The signed descriptor is the whole truth: a signed meter deletes only
//! files of its installed signed release that the new one lacks, and after
//! the install its tree (outside `.otavan/`) is exactly the new descriptor.
//! Anything else is refused before a single file moves.

use otavan_client::EngineError;
use otavan_protocol::UpdateState;
use otavan_protocol::descriptor::KeyPair;
use serde_json::json;

use crate::harness::{NEW, OLD, Release, TestMeter, write};

fn keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

fn signed_release() -> Release {
    let mut release = Release::sample();
    release.sign(&keys(), 4_000_000_000);
    release
}

/// The manifest a meter at OLD gets, edited.
fn edited(release: &Release, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    edit(&mut manifest);
    serde_json::to_vec(&manifest).unwrap()
}

/// Runs the update with `manifest`; it must be refused with `expected` in
/// the one-line reason (also the FAILED report's), nothing moved.
async fn refused(meter: &TestMeter, release: &Release, manifest: Vec<u8>, expected: &str) {
    let transport = release.transport();
    transport.set_manifest(OLD, manifest);
    let before = meter.tree();
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, EngineError::Untrusted(_)), "{text}");
    assert!(text.contains(expected), "{text}");
    assert_eq!(meter.version(), OLD);
    assert!(meter.tree() == before, "the meter's files moved");
    assert!(!meter.meter().status().unwrap().pending_confirm);
    let failed = transport
        .reports()
        .into_iter()
        .find(|r| r.state == UpdateState::Failed)
        .expect("FAILED reported");
    assert_eq!(failed.error.as_deref(), Some(text.as_str()));
}

/// The reproduction: a signed manifest with an extra `delete`
/// entry removed `sd/calibration.dat`, a file no signed release lists.
#[tokio::test]
async fn a_delete_no_signed_release_justifies_is_refused() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    write(&meter.root(), "sd/calibration.dat", b"factory calibration");
    let manifest = edited(&release, |m| {
        m["delete"]
            .as_array_mut()
            .unwrap()
            .push(json!("sd/calibration.dat"))
    });
    refused(
        &meter,
        &release,
        manifest,
        "deletes /sd/calibration.dat, which the signed release 1.0.0 does not list",
    )
    .await;
    assert_eq!(
        std::fs::read(meter.root().join("sd/calibration.dat")).unwrap(),
        b"factory calibration"
    );
}

/// A file of the old version the manifest "forgets" to delete would stay
/// behind beside the new version (the downgrade leftover).
#[tokio::test]
async fn a_leftover_of_the_old_version_is_refused() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    let manifest = edited(&release, |m| {
        let deletes = m["delete"].as_array_mut().unwrap();
        deletes.retain(|d| d != "flash/lib/old_driver.py");
    });
    refused(
        &meter,
        &release,
        manifest,
        "/flash/lib/old_driver.py would stay on the meter, but the signed release 1.1.0 does not contain it",
    )
    .await;
}

/// A file that is on the meter but in no signed release: the new version
/// would not be what was signed, so nothing is installed.
#[tokio::test]
async fn an_extra_file_on_the_meter_is_refused() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    write(&meter.root(), "flash/lib/planted.py", b"import os");
    refused(
        &meter,
        &release,
        release.manifest_json(OLD),
        "/flash/lib/planted.py would stay on the meter, but the signed release 1.1.0 does not contain it",
    )
    .await;
}

#[tokio::test]
async fn a_signed_meter_keeps_the_installed_descriptor_and_drops_the_old_at_confirm() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().confirm().unwrap();
    meter.assert_at(&release, NEW);
    // The meter keeps 1.1.0's signed descriptor for its next update.
    let kept = meter.root().join(format!(".otavan/descriptors/{NEW}.json"));
    let kept: otavan_protocol::descriptor::SignedDescriptor =
        serde_json::from_slice(&std::fs::read(kept).unwrap()).unwrap();
    assert_eq!(
        kept.verify(&keys().public()).unwrap(),
        release.descriptor(NEW)
    );
    // The old version's is gone once the update is confirmed.
    assert!(
        !meter
            .root()
            .join(format!(".otavan/descriptors/{OLD}.json"))
            .exists()
    );
}

/// Once kept, the installed descriptor decides what may be deleted, not
/// what the van says the installed version was.
#[tokio::test]
async fn the_kept_descriptor_decides_the_deletes() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    // A first update and its rollback leave 1.0.0's descriptor kept.
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().rollback().unwrap();
    meter.assert_at(&release, OLD);
    // The van no longer names 1.0.0's descriptor: the kept one justifies
    // deleting flash/lib/old_driver.py and sd/sounds/beep.wav...
    let without_previous = |m: &mut serde_json::Value| {
        m.as_object_mut().unwrap().remove("previous_descriptor");
    };
    let transport = release.transport();
    transport.set_manifest(OLD, edited(&release, without_previous));
    meter.engine(transport).update().await.unwrap();
    meter.assert_at(&release, NEW);
    meter.meter().rollback().unwrap();
    // ...and nothing else.
    write(&meter.root(), "sd/calibration.dat", b"factory calibration");
    let manifest = edited(&release, |m| {
        without_previous(m);
        m["delete"]
            .as_array_mut()
            .unwrap()
            .push(json!("sd/calibration.dat"));
    });
    refused(
        &meter,
        &release,
        manifest,
        "deletes /sd/calibration.dat, which the signed release 1.0.0 does not list",
    )
    .await;
}

/// A meter whose version the van has no descriptor for (and which kept
/// none) has no signed reason to delete anything.
#[tokio::test]
async fn without_any_descriptor_of_the_installed_version_nothing_may_be_deleted() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    let manifest = edited(&release, |m| {
        m.as_object_mut().unwrap().remove("previous_descriptor");
    });
    refused(
        &meter,
        &release,
        manifest,
        "deletes /flash/lib/old_driver.py, which the signed release 1.0.0 does not list",
    )
    .await;
}

#[tokio::test]
async fn unsigned_meters_delete_what_the_manifest_says() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    write(&meter.root(), "sd/calibration.dat", b"factory calibration");
    let transport = release.transport();
    transport.set_manifest(
        OLD,
        edited(&release, |m| {
            m["delete"]
                .as_array_mut()
                .unwrap()
                .push(json!("sd/calibration.dat"))
        }),
    );
    meter.engine(transport).update().await.unwrap();
    meter.assert_at(&release, NEW);
}
