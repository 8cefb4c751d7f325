//! Firmware deltas: the patch path and every fallback end with the exact
//! target image.

use crate::harness::{NEW, OLD, Release, TestMeter};

/// Two images like successive builds: the same code with a few edits and
/// an inserted block, so bsdiff finds the shared bytes.
pub fn images() -> (Vec<u8>, Vec<u8>) {
    let functions: Vec<Vec<u8>> = (0..40u32)
        .map(|f| {
            (0..(200 + f * 37))
                .map(|i| (i.wrapping_mul(2654435761) >> (f % 7)) as u8 ^ f as u8)
                .collect()
        })
        .collect();
    let old: Vec<u8> = (0..300)
        .flat_map(|i| functions[(i * 7) % 40].clone())
        .collect();
    let mut new = old.clone();
    new.splice(1000..1000, vec![0xAB; 512]);
    for offset in [5000, 20_000, 60_000] {
        new[offset] ^= 0x5A;
    }
    (old, new)
}

pub fn delta_release() -> Release {
    delta_release_unpatched().with_patches()
}

/// The sample's trees with [`images`], before patches are computed (a
/// release signed first must compute them after, as the server does).
pub fn delta_release_unpatched() -> Release {
    let sample = Release::sample();
    let (old, new) = images();
    let old_tree: Vec<(String, Vec<u8>)> = sample.tree(OLD).into_iter().collect();
    let new_tree: Vec<(String, Vec<u8>)> = sample.tree(NEW).into_iter().collect();
    let old_refs: Vec<(&str, Vec<u8>)> = old_tree
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    let new_refs: Vec<(&str, Vec<u8>)> = new_tree
        .iter()
        .map(|(p, b)| (p.as_str(), b.clone()))
        .collect();
    Release::from_trees(&old_refs, &new_refs, &old, &new)
}

#[tokio::test]
async fn the_patch_rebuilds_the_exact_image_with_fewer_bytes() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    let fetched: Vec<String> = transport
        .fetch_log()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(fetched.contains(&release.patch_path()), "{fetched:?}");
    assert!(
        !fetched.iter().any(|p| p.starts_with("/firmware_")),
        "the full image was not needed"
    );
    let full = release.update_bytes();
    let moved = transport.stats().bytes;
    assert!(moved * 2 < full, "moved {moved} of {full}");
    let updated = transport.reports().pop().unwrap();
    assert_eq!(
        (updated.bytes, updated.full_bytes),
        (Some(moved), Some(full))
    );
}

#[tokio::test]
async fn a_meter_running_another_image_downloads_the_full_one() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    // Reflash the meter's slot with an image the patch was not made from.
    otavan_client::device::provision(
        &meter.storage(),
        &OLD.parse().unwrap(),
        Some(&mut &b"custom build"[..]),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let transport = release.transport();
    meter.engine(transport.clone()).update().await.unwrap();
    assert_eq!(meter.booted_image(), release.image(NEW));
    let fetched: Vec<String> = transport
        .fetch_log()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(!fetched.contains(&release.patch_path()));
    assert!(fetched.iter().any(|p| p == &format!("/firmware_{NEW}.bin")));
}

#[tokio::test]
async fn a_corrupted_patch_falls_back_to_the_full_image() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.corrupt_byte(&release.patch_path(), 40);
    meter.engine(transport.clone()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    let fetched: Vec<String> = transport
        .fetch_log()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(
        fetched.iter().any(|p| p == &format!("/firmware_{NEW}.bin")),
        "{fetched:?}"
    );
}

#[tokio::test]
async fn a_patch_that_builds_the_wrong_image_falls_back() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    // A well-formed patch with correct hashes in the manifest, but made
    // from another source: the rebuilt image does not verify.
    let (_, new) = images();
    let wrong = otavan_server::patches::diff(b"some other image entirely", &new).unwrap();
    transport.set_file(&release.patch_path(), wrong.clone());
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    let patch = &mut manifest["firmware"]["patch"];
    use sha1::Digest;
    patch["hash"] = serde_json::json!(hex::encode(sha1::Sha1::digest(&wrong)));
    patch["sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(&wrong)));
    patch["size"] = serde_json::json!(wrong.len());
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    meter.engine(transport).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_cut_patch_download_resumes_on_the_next_pass() {
    let release = delta_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let manifest: otavan_protocol::Manifest =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    let files: u64 = manifest
        .new
        .iter()
        .chain(&manifest.update)
        .map(|e| e.size.unwrap())
        .sum();
    // Cut a little way into the patch, after the files (staged first).
    transport.cut_after(files + 100);
    let mut config = otavan_client::EngineConfig::new("meter-1");
    config.retries = 0;
    let engine = crate::harness::new_engine(meter.meter(), transport.clone(), config);
    assert!(engine.update().await.is_err());
    meter.assert_at(&release, OLD);
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);
    let resumed = transport
        .fetch_log()
        .into_iter()
        .any(|(path, from)| path == release.patch_path() && from > 0);
    assert!(resumed, "{:?}", transport.fetch_log());
}
