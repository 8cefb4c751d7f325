//! Signed releases: a provisioned meter installs only what the release
//! manager's key vouches for; everything else is refused with a clear
//! reason, FAILED is reported, and the meter stays as it was.

use otavan_client::clock::SystemEntropy;
use otavan_client::{Engine, EngineConfig, EngineError};
use otavan_protocol::UpdateState;
use otavan_protocol::descriptor::{KeyPair, SignedDescriptor, TargetDescriptor};
use serde_json::json;

use crate::harness::{FixedClock, NEW, OLD, Release, TestMeter};

fn keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

fn far_future() -> u64 {
    4_000_000_000
}

fn signed_release() -> Release {
    let mut release = Release::sample();
    release.sign(&keys(), far_future());
    release
}

/// Runs an update that must be refused; checks the meter did not move and
/// FAILED carries the reason.
async fn refused(
    release: &Release,
    transport: otavan_client::transport::MemoryTransport,
    expected: &str,
) {
    let meter = TestMeter::provisioned_with(release, OLD, Some(&keys().public()));
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(matches!(error, EngineError::Untrusted(_)), "{error}");
    assert!(error.to_string().contains(expected), "{error}");
    meter.assert_at(release, OLD);
    meter.assert_outside_untouched();
    let failed = transport
        .reports()
        .into_iter()
        .find(|r| r.state == UpdateState::Failed)
        .expect("FAILED reported");
    assert!(failed.error.unwrap().contains(expected));
}

#[tokio::test]
async fn a_signed_release_installs_and_raises_the_counter() {
    let release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    let state = meter.meter().state().unwrap();
    assert_eq!(state.highest_counter, release.descriptor(NEW).counter);
    // Rolling back keeps the counter: anti-rollback survives it.
    meter.meter().rollback().unwrap();
    meter.assert_at(&release, OLD);
    assert_eq!(
        meter.meter().state().unwrap().highest_counter,
        release.descriptor(NEW).counter
    );
}

#[tokio::test]
async fn an_unsigned_manifest_is_refused() {
    let release = Release::sample();
    refused(&release, release.transport(), "unsigned manifest").await;
}

#[tokio::test]
async fn a_rogue_server_with_another_key_is_refused() {
    let mut release = Release::sample();
    release.sign(&KeyPair::from_seed([66; 32]), far_future());
    refused(&release, release.transport(), "does not verify").await;
}

#[tokio::test]
async fn a_tampered_descriptor_is_refused() {
    let mut release = signed_release();
    let descriptor = release.descriptor(NEW);
    let mut signed = SignedDescriptor::sign(&descriptor, &keys());
    signed.signed = signed.signed.replace(
        &format!("\"counter\":{}", descriptor.counter),
        "\"counter\":999",
    );
    release.put_descriptor(NEW, &signed);
    refused(&release, release.transport(), "does not verify").await;
}

#[tokio::test]
async fn an_expired_descriptor_is_refused() {
    let mut release = Release::sample();
    release.sign(&keys(), 1_000_000_000);
    refused(&release, release.transport(), "expired").await;
}

/// Expiry is checked against the clock the engine is given, to the
/// second, in both directions from the machine's own clock: a meter that
/// read the system clock instead would install the one and refuse the
/// other.
#[tokio::test]
async fn expiry_is_judged_by_the_meters_clock_not_the_systems() {
    let update_at = |release: &Release, now: u64| {
        let meter = TestMeter::provisioned_with(release, OLD, Some(&keys().public()));
        let transport = release.transport();
        let engine = Engine::new(
            meter.meter(),
            transport.clone(),
            EngineConfig::new("meter-1"),
            FixedClock::at(now),
            SystemEntropy,
        );
        (meter, transport, engine)
    };
    // Expired long ago by the system's clock (2001), not yet by the meter's.
    let past = 1_000_000_000;
    let mut release = Release::sample();
    release.sign(&keys(), past);
    let (meter, _, engine) = update_at(&release, past - 1);
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);
    // At the instant it expires, the meter refuses it.
    let (meter, transport, engine) = update_at(&release, past);
    let error = engine.update().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expired at Unix time 1000000000"),
        "{error}"
    );
    meter.assert_at(&release, OLD);
    assert!(
        transport
            .reports()
            .iter()
            .any(|r| r.state == UpdateState::Failed)
    );
    // Valid for decades by the system's clock (until 2096), expired by the
    // meter's.
    let future = 4_000_000_000;
    release.sign(&keys(), future);
    let (meter, _, engine) = update_at(&release, future);
    assert!(
        engine
            .update()
            .await
            .unwrap_err()
            .to_string()
            .contains("expired")
    );
    meter.assert_at(&release, OLD);
    let (meter, _, engine) = update_at(&release, future - 1);
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_replayed_older_release_is_refused() {
    let mut release = signed_release();
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    // The meter installs counter N, then rolls back (counter stays N).
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().rollback().unwrap();
    // A replay: the same target re-signed with a lower counter.
    let mut old: TargetDescriptor = release.descriptor(NEW);
    old.counter -= 1;
    release.put_descriptor(NEW, &SignedDescriptor::sign(&old, &keys()));
    let transport = release.transport();
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(error.to_string().contains("rollback refused"), "{error}");
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn a_manifest_adding_a_file_the_descriptor_lacks_is_refused() {
    let release = signed_release();
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    let mut extra = manifest["new"][0].clone();
    extra["dst_path"] = json!("/flash/backdoor.py");
    manifest["new"].as_array_mut().unwrap().push(extra);
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&release, transport, "does not contain").await;
}

#[tokio::test]
async fn a_manifest_that_swaps_content_or_skips_files_is_refused() {
    let release = signed_release();
    // Same path, other content: the server swaps the bytes and the hashes.
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest["update"][0]["sha256"] = json!("ab".repeat(32));
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&release, transport, "differs from the signed release").await;

    // Leaving out an update leaves the meter different from the target.
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest["update"].as_array_mut().unwrap().remove(0);
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&release, transport, "different from the signed release").await;

    // Deleting a file the target has.
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest["delete"]
        .as_array_mut()
        .unwrap()
        .push(json!("flash/boot.py"));
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&release, transport, "deletes /flash/boot.py").await;

    // Withholding the firmware.
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest.as_object_mut().unwrap().remove("firmware");
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&release, transport, "needs firmware").await;
}

#[tokio::test]
async fn unprovisioned_meters_keep_working_in_pycom_mode() {
    let release = signed_release();
    let meter = TestMeter::provisioned(&release, OLD);
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

/// Endless data: a van sends far more bytes than the signed size of a
/// file or of the image. The meter stops reading at the signed size (it
/// never fills its flash with junk), reports the download failed, and
/// stays as it was.
#[tokio::test]
async fn endless_data_a_file_or_image_longer_than_signed_stops_at_its_size() {
    let release = signed_release();
    let junk = vec![0x5a; 16 * 1024 * 1024];
    for (url, signed_size) in [
        (
            format!("/{NEW}/flash/main.py"),
            release.tree(NEW)["flash/main.py"].len(),
        ),
        (format!("/firmware_{NEW}.bin"), release.image(NEW).len()),
    ] {
        let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
        let transport = release.transport();
        transport.set_file(&url, junk.clone());
        let error = meter.engine(transport.clone()).update().await.unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(&format!("sent more than the {signed_size} bytes expected")),
            "{url}: {text}"
        );
        meter.assert_at(&release, OLD);
        // Nothing on the meter grew past the signed size.
        let mut largest = 0;
        for dir in [".otavan/staging", ".otavan/slots"] {
            let Ok(entries) = std::fs::read_dir(meter.root().join(dir)) else {
                continue;
            };
            for entry in entries {
                largest = largest.max(entry.unwrap().metadata().unwrap().len());
            }
        }
        assert!(largest <= 16_000, "{url}: {largest} bytes staged");
        let fetched = transport.stats().bytes;
        assert!(fetched < 1024 * 1024, "{url}: read {fetched} bytes");
        let failed = transport
            .reports()
            .into_iter()
            .find(|r| r.state == UpdateState::Failed)
            .unwrap();
        assert_eq!(failed.error.as_deref(), Some(text.as_str()));
    }
}
