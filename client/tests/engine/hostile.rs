//! Hostile and broken manifests: a clear error, nothing written outside the
//! root, the meter unchanged, and FAILED reported with the reason.

use otavan_client::EngineError;
use otavan_protocol::UpdateState;
use serde_json::{Value, json};

use crate::harness::{OLD, Release, TestMeter};

/// Runs an update against `manifest` and checks the meter did not move.
async fn refused(release: &Release, manifest: Vec<u8>) -> (EngineError, Option<String>) {
    let meter = TestMeter::provisioned(release, OLD);
    let transport = release.transport();
    transport.set_manifest(OLD, manifest);
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    meter.assert_at(release, OLD);
    meter.assert_outside_untouched();
    assert!(!meter.meter().status().unwrap().pending_confirm);
    let failed = transport
        .reports()
        .into_iter()
        .find(|r| r.state == UpdateState::Failed);
    (error, failed.and_then(|r| r.error))
}

fn sample_manifest(release: &Release) -> Value {
    serde_json::from_slice(&release.manifest_json(OLD)).unwrap()
}

fn with(release: &Release, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut manifest = sample_manifest(release);
    edit(&mut manifest);
    serde_json::to_vec(&manifest).unwrap()
}

#[tokio::test]
async fn traversal_and_unsafe_paths_are_refused_before_any_write() {
    let release = Release::sample();
    for bad in [
        "/../outside.txt",
        "../../etc/passwd",
        "/flash/../../outside.txt",
        "/flash/%2e%2e/x",
        "C:/Windows/system.ini",
        "/flash\\..\\..\\outside.txt",
        "/flash/x\u{0}.py",
        "//outside.txt",
        "/.otavan/state.json",
        "/.otavan/slots/boot.json",
        "",
    ] {
        // %2e%2e is a harmless literal name; everything else must be refused.
        let manifest = with(&release, |m| m["new"][0]["dst_path"] = json!(bad));
        if bad.contains("%2e") {
            continue;
        }
        let (error, reported) = refused(&release, manifest).await;
        assert!(matches!(error, EngineError::Plan(_)), "{bad:?}: {error}");
        assert!(reported.unwrap().contains("unsafe path"), "{bad:?}");

        let manifest = with(&release, |m| m["delete"] = json!([bad]));
        let (error, _) = refused(&release, manifest).await;
        assert!(
            matches!(error, EngineError::Plan(_)),
            "delete {bad:?}: {error}"
        );
    }
}

#[tokio::test]
async fn wrong_hashes_are_refused_after_a_second_download() {
    let release = Release::sample();
    let manifest = with(&release, |m| m["update"][0]["hash"] = json!("0".repeat(40)));
    let (error, reported) = refused(&release, manifest).await;
    assert!(error.to_string().contains("sha1 mismatch"), "{error}");
    assert!(reported.unwrap().contains("sha1 mismatch"));

    let manifest = with(&release, |m| {
        m["firmware"]["sha256"] = json!("a".repeat(64))
    });
    let (error, _) = refused(&release, manifest).await;
    assert!(error.to_string().contains("sha256 mismatch"), "{error}");

    // A file longer than its declared size stops being read at that size.
    let manifest = with(&release, |m| m["new"][0]["size"] = json!(1));
    let (error, _) = refused(&release, manifest).await;
    assert!(
        error
            .to_string()
            .contains("the server sent more than the 1 bytes expected"),
        "{error}"
    );
}

#[tokio::test]
async fn corrupted_bytes_on_the_wire_are_caught() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let url = sample_manifest(&release)["update"][0]["URL"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.strip_prefix("http://van.local").unwrap().to_owned();
    transport.corrupt_byte(&path, 10);
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(error.to_string().contains("mismatch"), "{error}");
    meter.assert_at(&release, OLD);
    // The wire heals: the next pass succeeds.
    transport.clear_corruptions();
    meter.engine(transport).update().await.unwrap();
    assert_eq!(meter.tree(), release.tree(crate::harness::NEW));
}

#[tokio::test]
async fn malformed_values_are_refused() {
    let release = Release::sample();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge size",
            with(&release, |m| m["new"][0]["size"] = json!(1u64 << 50)),
            "over the limit",
        ),
        (
            "huge firmware",
            with(&release, |m| m["firmware"]["size"] = json!(u64::MAX)),
            "over the limit",
        ),
        (
            "short hash",
            with(&release, |m| m["new"][0]["hash"] = json!("abc")),
            "malformed sha1",
        ),
        (
            "non-hex hash",
            with(&release, |m| m["new"][0]["hash"] = json!("z".repeat(40))),
            "malformed sha1",
        ),
        (
            "bad sha256",
            with(&release, |m| m["new"][0]["sha256"] = json!("1234")),
            "malformed sha256",
        ),
        (
            "duplicate path",
            with(&release, |m| {
                let first = m["new"][0].clone();
                m["update"].as_array_mut().unwrap().push(first);
            }),
            "more than once",
        ),
        (
            "delete what is installed",
            with(&release, |m| {
                let path = m["new"][0]["dst_path"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('/')
                    .to_owned();
                m["delete"] = json!([path]);
            }),
            "more than once",
        ),
        (
            "file URL",
            with(&release, |m| {
                m["new"][0]["URL"] = json!("file:///etc/passwd")
            }),
            "unsupported URL",
        ),
        (
            "wrong base",
            with(&release, |m| m["previous_version"] = json!("0.9.0")),
            "manifest is for version 0.9.0",
        ),
    ];
    for (name, manifest, expected) in cases {
        let (error, reported) = refused(&release, manifest).await;
        assert!(error.to_string().contains(expected), "{name}: {error}");
        assert!(
            reported.is_some_and(|r| r.contains(expected)),
            "{name}: FAILED report"
        );
    }
}

#[tokio::test]
async fn wrong_json_types_are_refused() {
    let release = Release::sample();
    for body in [
        with(&release, |m| m["new"] = json!("everything")),
        with(&release, |m| m["new"][0]["hash"] = json!(5)),
        with(&release, |m| m["new"][0]["size"] = json!("big")),
        with(&release, |m| m["new"][0]["size"] = json!(-1)),
        with(&release, |m| m["version"] = json!(["1.1.0"])),
        with(&release, |m| {
            m.as_object_mut().unwrap().remove("version");
        }),
        b"{\"new\": [".to_vec(),
        b"[]".to_vec(),
        b"\"1.1.0\"".to_vec(),
    ] {
        let (error, _) = refused(&release, body.clone()).await;
        assert!(
            matches!(error, EngineError::Manifest(_)),
            "{}: {error}",
            String::from_utf8_lossy(&body)
        );
    }
    // A target that is not a version cannot even be reported.
    let (error, reported) =
        refused(&release, with(&release, |m| m["version"] = json!("../.."))).await;
    assert!(error.to_string().contains("not a version"), "{error}");
    assert!(reported.is_none());
}

#[tokio::test]
async fn a_full_disk_fails_cleanly() {
    use otavan_client::fault::FaultStorage;
    use otavan_client::slots::FileSlots;
    use otavan_client::{EngineConfig, Meter};

    use crate::harness::new_engine;

    let release = Release::sample();
    // Declared sizes: refused before downloading anything.
    let meter = TestMeter::provisioned(&release, OLD);
    let storage = FaultStorage::with_capacity(meter.storage(), 10_000);
    let engine = new_engine(
        Meter::new(storage.clone(), FileSlots::new(storage)),
        release.transport(),
        EngineConfig::new("m"),
    );
    let error = engine.update().await.unwrap_err();
    assert!(matches!(error, EngineError::NoSpace { .. }), "{error}");
    meter.assert_at(&release, OLD);

    // Pycom-style manifest without sizes: the disk fills mid-download.
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.set_manifest(OLD, with(&release, strip_extensions));
    let storage = FaultStorage::with_capacity(meter.storage(), 20_000);
    let mut config = EngineConfig::new("m");
    config.limits.reserve = 0;
    let engine = new_engine(
        Meter::new(storage.clone(), FileSlots::new(storage)),
        transport,
        config,
    );
    let error = engine.update().await.unwrap_err();
    assert!(error.to_string().contains("no space left"), "{error}");
    meter.assert_at(&release, OLD);
}

/// Removes otavan's extensions, leaving what a Pycom server sends.
pub fn strip_extensions(manifest: &mut Value) {
    for list in ["new", "update"] {
        for entry in manifest[list].as_array_mut().unwrap() {
            entry
                .as_object_mut()
                .unwrap()
                .retain(|k, _| matches!(k.as_str(), "URL" | "dst_path" | "hash"));
        }
    }
    if let Some(firmware) = manifest.get_mut("firmware") {
        firmware
            .as_object_mut()
            .unwrap()
            .retain(|k, _| matches!(k.as_str(), "URL" | "hash"));
    }
    manifest.as_object_mut().unwrap().remove("previous_version");
}
