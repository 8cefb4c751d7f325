//! Working against a plain Pycom server: manifests without sha256 or size,
//! `null` when up to date, and (over HTTP) no Content-Length and no Range.

use std::net::SocketAddr;

use otavan_client::transport::{HttpTransport, HttpTransportConfig};
use otavan_client::{EngineConfig, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::{NEW, OLD, Release, TestMeter, new_engine};
use crate::hostile::strip_extensions;

/// A server answering like the Pycom reference `OTA_server.py`: HTTP/1.0
/// status line, no headers, body until close, Range ignored, reports 404.
async fn pycom_server(release: &Release) -> SocketAddr {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    strip_extensions(&mut manifest);
    let mut routes = std::collections::HashMap::new();
    routes.insert(
        format!("/manifest.json?current_ver={OLD}"),
        serde_json::to_vec(&manifest).unwrap(),
    );
    routes.insert(
        format!("/manifest.json?current_ver={NEW}"),
        b"null".to_vec(),
    );
    for (path, bytes) in release.tree(NEW) {
        routes.insert(format!("/{NEW}/{path}"), bytes);
    }
    routes.insert(format!("/firmware_{NEW}.bin"), release.image(NEW));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                let response = match routes.get(&target) {
                    Some(body) => [b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), body].concat(),
                    None => b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(),
                };
                let _ = socket.write_all(&response).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_meter_updates_from_a_plain_pycom_server() {
    let release = Release::sample();
    let addr = pycom_server(&release).await;
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = HttpTransport::new(HttpTransportConfig::new(format!("http://{addr}"))).unwrap();
    let engine = new_engine(meter.meter(), transport, EngineConfig::new("meter-1"));
    let outcome = engine.update().await.unwrap();
    assert!(matches!(outcome, Outcome::Updated { .. }), "{outcome:?}");
    meter.assert_at(&release, NEW);
    meter.meter().confirm().unwrap();
    assert_eq!(
        engine.update().await.unwrap(),
        Outcome::UpToDate {
            version: NEW.parse().unwrap()
        }
    );
}
