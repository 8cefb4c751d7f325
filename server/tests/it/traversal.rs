//! Only indexed files are ever served, whatever the request path says.

use otavan_store::StoreLocation;

use crate::harness::{TestServer, write};

const SECRET: &[u8] = b"the van's private key";

#[tokio::test]
async fn nothing_outside_the_index_is_served() {
    let outer = tempfile::TempDir::new().unwrap();
    std::fs::write(outer.path().join("secret.txt"), SECRET).unwrap();
    let root = outer.path().join("release");
    write(&root, "1.0.0/flash/main.py", b"print(1)");
    write(&root, "1.0.0/flash/pymakr.conf", SECRET);
    write(&root, "1.0.0/.DS_Store", SECRET);
    write(&root, "OTA_server.py", SECRET);
    write(&root, "notes/readme.txt", SECRET);
    std::os::unix::fs::symlink(
        outer.path().join("secret.txt"),
        root.join("1.0.0/flash/link.py"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outer.path(), root.join("1.0.0/outside")).unwrap();
    // The server's own database inside the served version folder.
    let db = root.join("1.0.0/flash/otavan.db");
    let server =
        TestServer::start_with(&root, |c| c.store = StoreLocation::Sqlite(db.clone())).await;

    let attempts = [
        "/../secret.txt",
        "/../../secret.txt",
        "/1.0.0/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/secret.txt",
        "/1.0.0/%2e%2e/%2e%2e/secret.txt",
        "/1.0.0%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/1.0.0/flash/..%5c..%5c..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/1.0.0/flash/main.py%00.txt",
        "/1.0.0/flash/link.py",
        "/1.0.0/outside/secret.txt",
        "/1.0.0/flash/pymakr.conf",
        "/1.0.0/.DS_Store",
        "/OTA_server.py",
        "/notes/readme.txt",
        "/1.0.0/flash/otavan.db",
        "/1.0.0/flash/otavan.db-wal",
        "/1.0.0/flash/",
        "/1.0.0",
        "//etc/passwd",
        "/etc/passwd",
        "/1.0.0//flash/main.py",
        "/1.0.0/./flash/main.py",
    ];
    for path in attempts {
        let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let response = server.raw(request.as_bytes()).await;
        assert!(
            response.status == 404 || response.status == 400,
            "{path}: status {}",
            response.status
        );
        assert!(!contains(&response.raw, SECRET), "{path} leaked the secret");
    }
    // `/` is the dashboard (issue 9), not a directory listing.
    let dashboard = server.get("/", &[]).await;
    assert_eq!(dashboard.status, 200);
    assert!(!contains(&dashboard.raw, SECRET));
    assert!(!dashboard.text().contains("secret.txt"));
    // Raw bytes that are not legal in a request target at all.
    for path in ["/..\\secret.txt", "/1.0.0/flash/main.py\0"] {
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.0\r\n\r\n");
        let raw = tokio::task::spawn_blocking({
            let addr = server.addr;
            move || crate::harness::read_to_close(addr, &request, 100)
        })
        .await
        .unwrap();
        assert!(!contains(&raw, SECRET), "{path:?} leaked the secret");
        assert!(
            !raw.starts_with(b"HTTP/1.0 200") && !raw.starts_with(b"HTTP/1.1 200"),
            "{path:?}"
        );
    }
    // The legitimate file is served.
    assert_eq!(
        server.get("/1.0.0/flash/main.py", &[]).await.body,
        b"print(1)"
    );
    // And the manifest never mentions what was skipped.
    let manifest = server.get("/manifest.json", &[]).await.text();
    for skipped in ["pymakr", "DS_Store", "link.py", "outside", "otavan.db"] {
        assert!(!manifest.contains(skipped), "{skipped} in {manifest}");
    }
}

#[tokio::test]
async fn percent_encoded_names_are_served_by_their_decoded_path() {
    let root = crate::harness::tree(&[("1.0.0/sd/sound files/door bell#1.wav", b"ding")]);
    let server = TestServer::start(root.path()).await;
    let manifest = server.get("/manifest.json", &[]).await.json();
    let url = manifest["new"][0]["URL"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        "http://van.local:8000/1.0.0/sd/sound%20files/door%20bell%231.wav"
    );
    assert_eq!(
        manifest["new"][0]["dst_path"],
        "/sd/sound files/door bell#1.wav"
    );
    let path = url.strip_prefix("http://van.local:8000").unwrap();
    assert_eq!(server.get(path, &[]).await.body, b"ding");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
