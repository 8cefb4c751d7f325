//! The Pycom device library's view: HTTP/1.0, `recv(100)` until close, the
//! header end found only inside one 100-byte chunk, status never read.

use std::net::SocketAddr;

use crate::harness::{TestServer, read_to_close, sample_root, sha1_hex};

/// What the Pycom library does with one response: read 100 bytes at a
/// time, find `\r\n\r\n` inside a single chunk, keep what follows.
fn pycom_get(addr: SocketAddr, path: &str, host: Option<&str>) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.0\r\n");
    if let Some(host) = host {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    request.push_str("\r\n");
    let raw = read_to_close(addr, request.as_bytes(), 100);
    let chunks: Vec<&[u8]> = raw.chunks(100).collect();
    let header_chunk = chunks
        .iter()
        .position(|chunk| chunk.windows(4).any(|w| w == b"\r\n\r\n"))
        .expect("header end inside one 100-byte chunk");
    assert_eq!(
        header_chunk, 0,
        "header block must end within the first 100 bytes"
    );
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw[end + 4..].to_vec()
}

#[tokio::test]
async fn a_pycom_meter_updates_from_1_0_0() {
    let server = TestServer::start(&sample_root()).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        let host = format!("{addr}");
        let body = pycom_get(addr, "/manifest.json?current_ver=1.0.0", Some(&host));
        let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let entries = manifest["new"]
            .as_array()
            .unwrap()
            .iter()
            .chain(manifest["update"].as_array().unwrap());
        let mut fetched = 0;
        for entry in entries {
            // The library requests the path part of the URL from its server.
            let url = entry["URL"].as_str().unwrap();
            let path = url.strip_prefix(&format!("http://{host}")).unwrap();
            let content = pycom_get(addr, path, Some(&host));
            assert_eq!(
                sha1_hex(&content),
                entry["hash"].as_str().unwrap(),
                "{path}"
            );
            fetched += 1;
        }
        assert!(fetched >= 4);
        let firmware = &manifest["firmware"];
        let path = firmware["URL"]
            .as_str()
            .unwrap()
            .strip_prefix(&format!("http://{host}"))
            .unwrap();
        let image = pycom_get(addr, path, Some(&host));
        assert_eq!(sha1_hex(&image), firmware["hash"].as_str().unwrap());
        assert_eq!(image.len() as u64, firmware["size"].as_u64().unwrap());

        assert_eq!(
            pycom_get(addr, "/manifest.json?current_ver=1.1.0", Some(&host)),
            b"null"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn every_http10_answer_ends_its_headers_within_100_bytes() {
    let server = TestServer::start(&sample_root()).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        for path in [
            "/manifest.json",
            "/manifest.json?current_ver=..",
            "/firmware_1.1.0.bin",
            "/1.1.0/flash/main.py",
            "/missing",
            "/report",
        ] {
            pycom_get(addr, path, None);
        }
    })
    .await
    .unwrap();
    // A Range from an HTTP/1.0 client is ignored, keeping the block short.
    let response = server
        .raw(b"GET /firmware_1.1.0.bin HTTP/1.0\r\nRange: bytes=100-\r\n\r\n")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 16384);
}

#[tokio::test]
async fn http10_without_host_gets_urls_with_the_local_address() {
    let server = TestServer::start(&sample_root()).await;
    let addr = server.addr;
    let body = tokio::task::spawn_blocking(move || {
        pycom_get(addr, "/manifest.json?current_ver=1.0.1", None)
    })
    .await
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = manifest["update"][0]["URL"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{addr}/1.1.0/")), "{url}");
}

#[tokio::test]
async fn http10_connection_closes_after_the_body() {
    let server = TestServer::start(&sample_root()).await;
    // read_to_close only returns once the server closes; the body is whole.
    let response = server
        .raw(b"GET /firmware_1.0.0.bin HTTP/1.0\r\n\r\n")
        .await;
    assert_eq!(response.body.len(), 12288);
    assert_eq!(response.header("content-length"), Some("12288"));
    assert!(response.raw.starts_with(b"HTTP/1.0 200 OK\r\n"));
}
