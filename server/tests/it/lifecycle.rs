//! Reloads, timeouts, the connection limit and graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use otavan_store::StoreLocation;

use crate::harness::{TestServer, tree, write};

#[tokio::test]
async fn reload_swaps_in_a_new_release() {
    let root = tree(&[("1.0.0/flash/main.py", b"a"), ("1.1.0/flash/main.py", b"b")]);
    let server = TestServer::start(root.path()).await;
    assert_eq!(
        server
            .get("/manifest.json?current_ver=1.1.0", &[])
            .await
            .body,
        b"null"
    );

    write(root.path(), "1.2.0/flash/main.py", b"c");
    write(root.path(), "firmware_1.2.0.bin", b"image");
    server.reloader.reload().await.unwrap();
    let manifest = server
        .get("/manifest.json?current_ver=1.1.0", &[])
        .await
        .json();
    assert_eq!(
        manifest["version"], "1.2.0",
        "cached manifest was dropped with its index"
    );
    assert_eq!(server.get("/firmware_1.2.0.bin", &[]).await.body, b"image");
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_release() {
    let root = tree(&[("1.0.0/flash/main.py", b"a")]);
    let server = TestServer::start(root.path()).await;
    std::fs::remove_dir_all(root.path().join("1.0.0")).unwrap();
    let error = server.reloader.reload().await.unwrap_err();
    assert!(error.to_string().contains("no version folders"), "{error}");
    let manifest = server.get("/manifest.json", &[]).await.json();
    assert_eq!(manifest["version"], "1.0.0");
}

#[tokio::test]
async fn a_target_that_does_not_exist_fails_at_start() {
    let root = tree(&[("1.0.0/flash/main.py", b"a")]);
    let mut config = otavan_server::ServerConfig::new(root.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.target = Some("9.9.9".parse().unwrap());
    config.store = StoreLocation::Sqlite(root.path().join("x.db"));
    let error = otavan_server::Server::bind(config)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("9.9.9"), "{error}");
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_timeout() {
    let root = tree(&[("1.0.0/flash/main.py", b"a")]);
    let server = TestServer::start_with(root.path(), |c| {
        c.header_timeout = Duration::from_millis(300)
    })
    .await;
    let addr = server.addr;
    let (silent, partial) = tokio::task::spawn_blocking(move || {
        // Sends nothing at all.
        let mut silent = TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        let mut buffer = [0u8; 256];
        let n = silent.read(&mut buffer).unwrap_or(0);
        let silent_result = (n, started.elapsed());
        // Sends half a request line, then stalls.
        let mut partial = TcpStream::connect(addr).unwrap();
        partial
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        partial.write_all(b"GET /manifest.json HT").unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = partial.read_to_end(&mut rest);
        (silent_result, started.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(silent.0, 0, "closed without a response");
    assert!(
        silent.1 < Duration::from_secs(9),
        "closed by the server, not the test's timeout"
    );
    assert!(partial < Duration::from_secs(9));
}

#[tokio::test]
async fn the_connection_limit_queues_further_clients() {
    let root = tree(&[("1.0.0/flash/main.py", b"a")]);
    let server = TestServer::start_with(root.path(), |c| c.max_connections = 1).await;
    let addr = server.addr;
    tokio::task::spawn_blocking(move || {
        // The first client holds the only slot with a keep-alive connection.
        let mut holder = TcpStream::connect(addr).unwrap();
        holder
            .write_all(b"GET /1.0.0/flash/main.py HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let mut buffer = [0u8; 1024];
        assert!(holder.read(&mut buffer).unwrap() > 0);

        let mut waiting = TcpStream::connect(addr).unwrap();
        waiting
            .write_all(b"GET /1.0.0/flash/main.py HTTP/1.0\r\n\r\n")
            .unwrap();
        waiting
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let early = waiting.read(&mut buffer);
        assert!(
            early.is_err(),
            "second client must wait while the slot is taken"
        );

        drop(holder);
        waiting
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut response = Vec::new();
        waiting.read_to_end(&mut response).unwrap();
        assert!(
            response.starts_with(b"HTTP/1.0 200 OK"),
            "{}",
            String::from_utf8_lossy(&response)
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn shutdown_lets_downloads_in_flight_finish() {
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let root = tree(&[("1.0.0/sd/big.bin", &big)]);
    let server = TestServer::start_with(root.path(), |c| c.preload_bytes = 0).await;
    let addr = server.addr;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET /1.0.0/sd/big.bin HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 4096];
        let mut received = stream.read(&mut first).unwrap();
        started_tx.send(()).unwrap();
        // Read slowly so the download is still going when shutdown starts.
        let mut buffer = [0u8; 64 * 1024];
        loop {
            std::thread::sleep(Duration::from_millis(2));
            match stream.read(&mut buffer).unwrap() {
                0 => break,
                n => received += n,
            }
        }
        received
    });
    started_rx.await.unwrap();
    server.shutdown().await;
    let received = reader.await.unwrap();
    assert!(
        received > big.len(),
        "whole body plus headers arrived: {received}"
    );
    assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
}
