//! Starting servers on temporary trees and speaking raw HTTP to them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use otavan_server::{Reloader, Server, ServerConfig};
use otavan_store::StoreLocation;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A running server and what it owns.
pub struct TestServer {
    pub addr: SocketAddr,
    pub reloader: Reloader,
    /// Holds the database (and the tree, when the test made one).
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Serves `root` with default settings on 127.0.0.1:0.
    pub async fn start(root: &Path) -> TestServer {
        TestServer::start_with(root, |_| {}).await
    }

    /// Serves `root` after `adjust` has changed the configuration.
    pub async fn start_with(root: &Path, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = TempDir::new().unwrap();
        let mut config = ServerConfig::new(root);
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.store = StoreLocation::Sqlite(dir.path().join("reports.db"));
        config.patch_cache = Some(dir.path().join("patches"));
        adjust(&mut config);
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let reloader = server.reloader();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            reloader,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Asks the server to shut down and waits until it has.
    pub async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.take().unwrap().await.unwrap();
    }

    /// Sends raw request bytes and reads the whole response (the server
    /// must close the connection).
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        raw_request(self.addr, request.to_vec()).await
    }

    /// `GET path` over HTTP/1.1 with `Host: van.local:8000` and any extra
    /// header lines, closing the connection after the response.
    pub async fn get(&self, path: &str, extra_headers: &[&str]) -> RawResponse {
        self.request("GET", path, extra_headers, b"").await
    }

    /// Any method with a body, HTTP/1.1, `Connection: close`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        extra_headers: &[&str],
        body: &[u8],
    ) -> RawResponse {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: van.local:8000\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for header in extra_headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Everything received, headers included.
    pub raw: Vec<u8>,
    pub status: u16,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// Parses a full response; `None` when incomplete or not HTTP.
    pub fn parse(raw: Vec<u8>) -> Option<RawResponse> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = raw[end + 4..].to_vec();
        Some(RawResponse {
            raw,
            status,
            headers,
            body,
        })
    }
}

/// Writes `request`, then reads until the server closes, 100 bytes at a
/// time (the Pycom library's pattern). Panics after 20 s.
pub async fn raw_request(addr: SocketAddr, request: Vec<u8>) -> RawResponse {
    tokio::task::spawn_blocking(move || {
        let raw = read_to_close(addr, &request, 100);
        RawResponse::parse(raw.clone())
            .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
    })
    .await
    .unwrap()
}

/// Blocking: connect, send, read `chunk` bytes at a time until EOF.
pub fn read_to_close(addr: SocketAddr, request: &[u8], chunk: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; chunk];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading response: {e}"),
        }
    }
    raw
}

/// Writes `files` (relative path -> content) under a fresh temporary root.
pub fn tree(files: &[(&str, &[u8])]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

pub fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The sample release shipped in `examples/releases`.
pub fn sample_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/releases")
}

pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}
