//! `GET /manifest.json`: golden answers for the sample release, version
//! order traps, and request validation.

use std::path::Path;

use crate::harness::{TestServer, sample_root, tree};

/// Compares `actual` with `tests/golden/NAME`; `UPDATE_GOLDEN=1` rewrites it.
fn assert_golden(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{name} differs from the golden file"
    );
}

#[tokio::test]
async fn sample_release_matches_golden_manifests() {
    let server = TestServer::start(&sample_root()).await;
    for (query, golden) in [
        ("?current_ver=1.0.0", "manifest_from_1.0.0.json"),
        ("?current_ver=1.0.1", "manifest_from_1.0.1.json"),
        ("", "manifest_full_install.json"),
        ("?current_ver=0.9.0", "manifest_from_unknown_0.9.0.json"),
    ] {
        let response = server.get(&format!("/manifest.json{query}"), &[]).await;
        assert_eq!(response.status, 200, "{query}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_golden(golden, &response.body);
    }
}

#[tokio::test]
async fn at_or_above_target_is_null() {
    let server = TestServer::start(&sample_root()).await;
    for version in ["1.1.0", "1.10.0", "2.0.0", "1.1.0b"] {
        let response = server
            .get(&format!("/manifest.json?current_ver={version}"), &[])
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"null", "{version}");
    }
}

#[tokio::test]
async fn same_request_gives_same_bytes_and_entries_are_sorted() {
    let server = TestServer::start(&sample_root()).await;
    let first = server.get("/manifest.json", &[]).await;
    let second = server.get("/manifest.json", &[]).await;
    assert_eq!(first.body, second.body);
    let manifest = first.json();
    let paths: Vec<&str> = manifest["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dst_path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(
        !paths.contains(&"/flash/pymakr.conf"),
        "pymakr.conf is never shipped"
    );
}

#[tokio::test]
async fn version_order_traps_pick_the_right_target_and_firmware() {
    let root = tree(&[
        ("1.9.0/flash/main.py", b"nine"),
        ("1.10.0/flash/main.py", b"ten"),
        ("1.0.1/flash/main.py", b"one"),
        ("1.0.1b/flash/main.py", b"one-b"),
        ("firmware_1.0.1b.bin", b"fw-1.0.1b"),
        ("firmware_1.9.0.bin", b"fw-1.9.0"),
        ("firmware_1.10.0.bin", b"fw-1.10.0"),
        // Above the target: never offered.
        ("firmware_2.0.0.bin", b"fw-2.0.0"),
    ]);
    let server = TestServer::start(root.path()).await;

    let manifest = server
        .get("/manifest.json?current_ver=1.9.0", &[])
        .await
        .json();
    assert_eq!(manifest["version"], "1.10.0", "1.10.0 is above 1.9.0");
    assert_eq!(
        manifest["firmware"]["URL"],
        "http://van.local:8000/firmware_1.10.0.bin"
    );
    assert_eq!(
        manifest["update"][0]["URL"],
        "http://van.local:8000/1.10.0/flash/main.py"
    );

    let manifest = server
        .get("/manifest.json?current_ver=1.0.1", &[])
        .await
        .json();
    assert_eq!(
        manifest["firmware"]["URL"],
        "http://van.local:8000/firmware_1.10.0.bin"
    );

    // 1.0.1 < 1.0.1b: a meter on 1.0.1b still needs 1.10.0.
    let manifest = server
        .get("/manifest.json?current_ver=1.0.1b", &[])
        .await
        .json();
    assert_eq!(manifest["previous_version"], "1.0.1b");
    assert_eq!(
        manifest["update"][0]["hash"],
        crate::harness::sha1_hex(b"ten")
    );

    assert_eq!(
        server
            .get("/manifest.json?current_ver=1.10.0", &[])
            .await
            .body,
        b"null"
    );
}

#[tokio::test]
async fn firmware_is_omitted_when_the_meter_has_the_newest_image() {
    let root = tree(&[
        ("1.0.0/flash/main.py", b"a"),
        ("1.1.0/flash/main.py", b"b"),
        ("firmware_1.0.0.bin", b"fw"),
    ]);
    let server = TestServer::start(root.path()).await;
    let manifest = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    assert!(manifest.get("firmware").is_none(), "{manifest}");
    let manifest = server
        .get("/manifest.json?current_ver=0.1", &[])
        .await
        .json();
    assert_eq!(
        manifest["firmware"]["URL"],
        "http://van.local:8000/firmware_1.0.0.bin"
    );
}

#[tokio::test]
async fn semver_prerelease_orders_below_its_release() {
    let root = tree(&[
        ("1.2.0-rc.1/flash/main.py", b"rc"),
        ("1.2.0/flash/main.py", b"final"),
        ("1.2.0-beta.2/flash/main.py", b"beta"),
    ]);
    let server = TestServer::start(root.path()).await;
    let manifest = server
        .get("/manifest.json?current_ver=1.2.0-rc.1", &[])
        .await
        .json();
    assert_eq!(manifest["version"], "1.2.0");
    assert_eq!(manifest["update"][0]["dst_path"], "/flash/main.py");
}

#[tokio::test]
async fn target_flag_overrides_the_highest_version() {
    let server = TestServer::start_with(&sample_root(), |config| {
        config.target = Some("1.0.1".parse().unwrap());
    })
    .await;
    let manifest = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    assert_eq!(manifest["version"], "1.0.1");
    assert!(
        manifest.get("firmware").is_none(),
        "no image above 1.0.0 up to 1.0.1"
    );
    assert_eq!(
        server
            .get("/manifest.json?current_ver=1.0.1", &[])
            .await
            .body,
        b"null"
    );
}

#[tokio::test]
async fn current_versions_that_are_not_versions_get_400_json() {
    let server = TestServer::start(&sample_root()).await;
    for bad in [
        "../..",
        "1.0.0/..",
        "..%2F..",
        "%2e%2e",
        "1.0%00",
        "a%0Ab1",
        &"9".repeat(65),
    ] {
        let response = server
            .get(&format!("/manifest.json?current_ver={bad}"), &[])
            .await;
        assert_eq!(response.status, 400, "{bad}");
        let error = response.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("current_ver"), "{error}");
    }
}

#[tokio::test]
async fn urls_follow_the_host_header() {
    let server = TestServer::start(&sample_root()).await;
    let response = server
        .raw(b"GET /manifest.json?current_ver=1.0.1 HTTP/1.1\r\nHost: 192.168.4.1:8000\r\nConnection: close\r\n\r\n")
        .await;
    let manifest = response.json();
    assert!(
        manifest["update"][0]["URL"]
            .as_str()
            .unwrap()
            .starts_with("http://192.168.4.1:8000/1.1.0/"),
        "{manifest}"
    );
    // Manifests for different hosts are cached apart.
    let other = server
        .raw(b"GET /manifest.json?current_ver=1.0.1 HTTP/1.1\r\nHost: [fe80::1]:8000\r\nConnection: close\r\n\r\n")
        .await;
    assert!(other.text().contains("http://[fe80::1]:8000/1.1.0/"));

    for bad_host in ["evil.com/x", "a b", "x@y", "h\"ost"] {
        let request =
            format!("GET /manifest.json HTTP/1.1\r\nHost: {bad_host}\r\nConnection: close\r\n\r\n");
        let response = server.raw(request.as_bytes()).await;
        assert_eq!(response.status, 400, "{bad_host}");
    }
}

#[tokio::test]
async fn non_version_folders_are_skipped_not_fatal() {
    let root = tree(&[
        ("1.0.0/flash/main.py", b"a"),
        ("docs/readme.txt", b"docs"),
        ("latest/flash/main.py", b"latest"),
        (".git/HEAD", b"ref"),
        ("1.0.0 copy/flash/main.py", b"copy"),
        ("OTA_server.py", b"print('server')"),
        ("firmware_latest.bin", b"not a version"),
    ]);
    let server = TestServer::start(root.path()).await;
    let manifest = server.get("/manifest.json", &[]).await.json();
    assert_eq!(manifest["version"], "1.0.0");
    assert_eq!(manifest["new"].as_array().unwrap().len(), 1);
    assert!(manifest.get("firmware").is_none());
}

#[tokio::test]
async fn signed_releases_name_and_serve_their_descriptor() {
    use otavan_protocol::descriptor::{KeyPair, SignedDescriptor};
    let root = tree(&[
        ("1.0.0/flash/main.py", b"a"),
        ("1.1.0/flash/main.py", b"b"),
        ("firmware_1.1.0.bin", b"image"),
    ]);
    let keys = KeyPair::from_seed([3; 32]);
    let signing = otavan_server::sign::Signing {
        keys: &[&keys],
        now: 1_767_225_600,
        expires: 4_000_000_000,
        timestamp_expires: 1_767_225_600 + 7 * 86_400,
    };
    let signed = otavan_server::sign::sign_release(root.path(), &signing).unwrap();
    assert_eq!(signed.iter().map(|s| s.counter).collect::<Vec<_>>(), [1, 2]);
    let server = TestServer::start(root.path()).await;
    let manifest = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    assert_eq!(
        manifest["descriptor"],
        "http://van.local:8000/target_1.1.0.json"
    );
    let body = server.get("/target_1.1.0.json", &[]).await.body;
    let descriptor = serde_json::from_slice::<SignedDescriptor>(&body)
        .unwrap()
        .verify(&keys.public())
        .unwrap();
    assert_eq!(descriptor.version, "1.1.0");
    assert_eq!(descriptor.files.len(), 1);
    assert_eq!(descriptor.files[0].path, "flash/main.py");
    assert_eq!(descriptor.firmware.unwrap().size, 5);
    // Unsigned releases have no descriptor field at all.
    let plain = TestServer::start(&crate::harness::sample_root()).await;
    assert!(
        plain
            .get("/manifest.json", &[])
            .await
            .json()
            .get("descriptor")
            .is_none()
    );
}

/// Two images like successive builds (shared code, a few edits).
fn similar_images() -> (Vec<u8>, Vec<u8>) {
    let old: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x3f)
        .collect();
    let mut new = old.clone();
    new.splice(500..500, *b"inserted block");
    new[100_000] ^= 0xff;
    (old, new)
}

#[tokio::test]
async fn firmware_patches_are_offered_served_and_cached() {
    use sha2::Digest;
    let (old, new) = similar_images();
    let root = tree(&[
        ("1.0.0/flash/main.py", b"a"),
        ("1.1.0/flash/main.py", b"b"),
        ("firmware_1.0.0.bin", &old),
        ("firmware_1.1.0.bin", &new),
    ]);
    let cache = tempfile::TempDir::new().unwrap();
    let start = |deltas: bool| {
        let cache = cache.path().to_path_buf();
        TestServer::start_with(root.path(), move |c| {
            c.patch_cache = deltas.then_some(cache)
        })
    };
    let server = start(true).await;
    let manifest = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    let patch = &manifest["firmware"]["patch"];
    assert_eq!(
        patch["source_sha256"],
        hex::encode(sha2::Sha256::digest(&old))
    );
    let size = patch["size"].as_u64().unwrap();
    assert!(
        size * 10 < new.len() as u64,
        "patch of {size} bytes for {}",
        new.len()
    );
    let url = patch["URL"]
        .as_str()
        .unwrap()
        .strip_prefix("http://van.local:8000")
        .unwrap()
        .to_owned();
    let body = server.get(&url, &[]).await.body;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        patch["sha256"].as_str().unwrap()
    );
    let mut rebuilt = Vec::new();
    qbsdiff::Bspatch::new(&body)
        .unwrap()
        .apply(&old, &mut rebuilt)
        .unwrap();
    assert_eq!(rebuilt, new);
    // A full install has no image to patch from.
    assert!(
        server.get("/manifest.json", &[]).await.json()["firmware"]
            .get("patch")
            .is_none()
    );

    // Restarting reuses the cached patch instead of diffing again.
    let cached = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let written = std::fs::metadata(&cached).unwrap().modified().unwrap();
    server.shutdown().await;
    let again = start(true).await;
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        written
    );
    assert_eq!(again.get(&url, &[]).await.body, body);

    let plain = start(false).await;
    let manifest = plain
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    assert!(manifest["firmware"].get("patch").is_none());
}
