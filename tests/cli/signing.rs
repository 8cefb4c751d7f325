//! `otavan keygen`, `otavan release sign`, and a provisioned meter against
//! the real server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{Served, copy_tree, ok, otavan};

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn keys_sign_releases_and_provisioned_meters_check_them() {
    let dir = tempfile::TempDir::new().unwrap();
    let prefix = dir.path().join("release-manager");
    ok(&[os("keygen"), os("--out"), prefix.as_os_str()]);
    let secret = dir.path().join("release-manager.key");
    let public = dir.path().join("release-manager.pub");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("otavan-ed25519-public\n")
    );
    let again = otavan()
        .args([os("keygen"), os("--out"), prefix.as_os_str()])
        .output()
        .unwrap();
    assert!(!again.status.success(), "never overwrites a key");

    // Sign a copy of the sample release twice: counters only grow.
    let release = dir.path().join("release");
    copy_tree(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/releases")),
        &release,
    );
    let first = ok(&[
        os("release"),
        os("sign"),
        os("--root"),
        release.as_os_str(),
        os("--key"),
        secret.as_os_str(),
        os("--expires"),
        os("30d"),
    ]);
    assert!(first.contains("1.1.0 counter 3"), "{first}");
    let second = ok(&[
        os("release"),
        os("sign"),
        os("--root"),
        release.as_os_str(),
        os("--key"),
        secret.as_os_str(),
    ]);
    // Re-signing renews the expiry only: every version keeps its counter.
    assert!(
        second.contains("1.0.0 counter 1 ->") && second.contains("1.1.0 counter 3 ->"),
        "{second}"
    );

    let served = Served::start(&release, &dir.path().join("van.db"));
    let manifest = served.get("/manifest.json?current_ver=1.0.0");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let descriptor_url = manifest["descriptor"].as_str().unwrap();
    assert!(
        descriptor_url.ends_with("/target_1.1.0.json"),
        "{descriptor_url}"
    );
    let descriptor = served.get("/target_1.1.0.json");
    assert!(descriptor.contains("\"signature\""), "{descriptor}");

    // A meter trusting this key updates; one trusting another key refuses.
    let server = format!("http://{}", served.addr);
    for (name, key, should_update) in [
        ("trusting", public.clone(), true),
        ("other", dir.path().join("other.pub"), false),
    ] {
        if !should_update {
            ok(&[
                os("keygen"),
                os("--out"),
                dir.path().join("other").as_os_str(),
            ]);
        }
        let meter = dir.path().join(name);
        copy_tree(&release.join("1.0.0"), &meter);
        let image = release.join("firmware_1.0.0.bin");
        ok(&[
            os("device"),
            os("init"),
            os("--root"),
            meter.as_os_str(),
            os("--version"),
            os("1.0.0"),
            os("--firmware"),
            image.as_os_str(),
            os("--public-key"),
            key.as_os_str(),
        ]);
        let output = otavan()
            .args([
                os("device"),
                os("update"),
                os("--root"),
                meter.as_os_str(),
                os("--server"),
                os(&server),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.success(), should_update, "{name}: {stderr}");
        if !should_update {
            assert!(
                stderr.contains("refused") && stderr.contains("does not verify"),
                "{stderr}"
            );
        }
    }
}
