//! File downloads: lengths, ETags, HEAD, ranges, from memory and from disk.

use crate::harness::{TestServer, tree};

/// 300 KiB: several streaming chunks.
fn big() -> Vec<u8> {
    (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// The same checks against a server that preloads everything and one that
/// streams everything from disk.
async fn servers() -> Vec<(TestServer, tempfile::TempDir)> {
    let mut servers = Vec::new();
    for preload in [32 * 1024 * 1024, 0] {
        let root = tree(&[("1.0.0/sd/big.bin", &big()), ("1.0.0/flash/empty.py", b"")]);
        let server = TestServer::start_with(root.path(), |c| c.preload_bytes = preload).await;
        servers.push((server, root));
    }
    servers
}

#[tokio::test]
async fn whole_file_with_length_and_etag() {
    for (server, _root) in servers().await {
        let response = server.get("/1.0.0/sd/big.bin", &[]).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body, big());
        assert_eq!(response.header("content-length"), Some("307200"));
        assert_eq!(response.header("accept-ranges"), Some("bytes"));
        let etag = response.header("etag").unwrap().to_owned();
        assert_eq!(etag, format!("\"{}\"", crate::harness::sha1_hex(&big())));

        let cached = server
            .get("/1.0.0/sd/big.bin", &[&format!("If-None-Match: {etag}")])
            .await;
        assert_eq!(cached.status, 304);
        assert!(cached.body.is_empty());

        let empty = server.get("/1.0.0/flash/empty.py", &[]).await;
        assert_eq!(empty.status, 200);
        assert_eq!(empty.header("content-length"), Some("0"));
    }
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    for (server, _root) in servers().await {
        let response = server.request("HEAD", "/1.0.0/sd/big.bin", &[], b"").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-length"), Some("307200"));
        assert!(response.body.is_empty());
    }
}

#[tokio::test]
async fn single_ranges() {
    let data = big();
    let len = data.len() as u64;
    for (server, _root) in servers().await {
        for (range, start, end) in [
            ("bytes=0-0", 0, 0),
            ("bytes=0-99", 0, 99),
            ("bytes=100000-", 100000, len - 1),
            ("bytes=-10", len - 10, len - 1),
            ("bytes=307199-307199", len - 1, len - 1),
            ("bytes=300000-999999", 300000, len - 1),
            ("bytes=-999999", 0, len - 1),
        ] {
            let response = server
                .get("/1.0.0/sd/big.bin", &[&format!("Range: {range}")])
                .await;
            assert_eq!(response.status, 206, "{range}");
            assert_eq!(
                response.header("content-range"),
                Some(format!("bytes {start}-{end}/{len}").as_str()),
                "{range}"
            );
            assert_eq!(
                response.body,
                &data[start as usize..=end as usize],
                "{range}"
            );
        }
    }
}

#[tokio::test]
async fn unsatisfiable_and_ignored_ranges() {
    for (server, _root) in servers().await {
        for range in ["bytes=307200-", "bytes=999999-1000000", "bytes=-0"] {
            let response = server
                .get("/1.0.0/sd/big.bin", &[&format!("Range: {range}")])
                .await;
            assert_eq!(response.status, 416, "{range}");
            assert_eq!(response.header("content-range"), Some("bytes */307200"));
        }
        // Empty file: no byte can be asked for.
        let response = server
            .get("/1.0.0/flash/empty.py", &["Range: bytes=0-"])
            .await;
        assert_eq!(response.status, 416);

        for range in ["bytes=0-1,5-9", "bytes=9-1", "items=0-1", "bytes=x-"] {
            let response = server
                .get("/1.0.0/sd/big.bin", &[&format!("Range: {range}")])
                .await;
            assert_eq!(response.status, 200, "{range}");
            assert_eq!(response.body.len(), 307200);
        }

        // If-Range with another entity: the whole (new) file.
        let response = server
            .get(
                "/1.0.0/sd/big.bin",
                &["Range: bytes=10-", "If-Range: \"0000\""],
            )
            .await;
        assert_eq!(response.status, 200);
        let etag = format!("\"{}\"", crate::harness::sha1_hex(&big()));
        let response = server
            .get(
                "/1.0.0/sd/big.bin",
                &["Range: bytes=10-", &format!("If-Range: {etag}")],
            )
            .await;
        assert_eq!(response.status, 206);
    }
}

#[tokio::test]
async fn keep_alive_serves_several_files_on_one_connection() {
    use std::io::{Read, Write};
    for (server, _root) in servers().await {
        let addr = server.addr;
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let request = b"GET /1.0.0/sd/big.bin HTTP/1.1\r\nHost: h\r\n\r\n\
                            GET /1.0.0/flash/empty.py HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
            stream.write_all(request).unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let responses = raw.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
        assert_eq!(responses, 2);
        assert!(raw.len() > 307200);
    }
}

#[tokio::test]
async fn a_file_changed_on_disk_is_refused_until_reload() {
    let root = tree(&[("1.0.0/sd/big.bin", &big())]);
    let server = TestServer::start_with(root.path(), |c| c.preload_bytes = 0).await;
    std::fs::write(root.path().join("1.0.0/sd/big.bin"), b"shorter").unwrap();
    let response = server.get("/1.0.0/sd/big.bin", &[]).await;
    assert_eq!(response.status, 500);
    assert!(response.text().contains("reload"), "{}", response.text());

    server.reloader.reload().await.unwrap();
    let response = server.get("/1.0.0/sd/big.bin", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"shorter");
}

#[tokio::test]
async fn preloaded_content_stays_what_the_manifest_promised() {
    let root = tree(&[("1.0.0/sd/big.bin", &big())]);
    let server = TestServer::start(root.path()).await;
    std::fs::write(root.path().join("1.0.0/sd/big.bin"), b"edited in place").unwrap();
    let response = server.get("/1.0.0/sd/big.bin", &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        big(),
        "memory copy matches the index's hashes"
    );
}
