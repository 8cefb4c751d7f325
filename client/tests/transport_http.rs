//! `HttpTransport` over real sockets: against the otavan server, against a
//! Pycom-style server (HTTP/1.0, no Content-Length, no Range), and against
//! fixtures that misbehave (cut bodies, wrong ranges, huge or malformed
//! manifests, silence).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otavan_client::transport::{
    Fetched, HttpTransport, HttpTransportConfig, Sink, Transport, TransportError,
};
use otavan_protocol::{Report, UpdateState, Version};
use otavan_server::{Server, ServerConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- helpers

/// A sink that keeps everything in memory and counts restarts.
#[derive(Debug, Default)]
struct VecSink {
    data: Vec<u8>,
    restarts: u32,
}

impl VecSink {
    fn holding(data: &[u8]) -> VecSink {
        VecSink {
            data: data.to_vec(),
            restarts: 0,
        }
    }
}

impl Sink for VecSink {
    fn restart(&mut self) -> io::Result<()> {
        self.data.clear();
        self.restarts += 1;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }
}

fn transport(addr: SocketAddr) -> HttpTransport {
    HttpTransport::new(HttpTransportConfig::new(format!("http://{addr}"))).unwrap()
}

fn version(v: &str) -> Version {
    Version::parse(v).unwrap()
}

/// 300 KiB: many chunks on the wire.
fn big() -> Vec<u8> {
    (0..300 * 1024u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

// ------------------------------------------------------ the otavan server

/// The real server on 127.0.0.1:0, serving a tree of its own.
struct Van {
    addr: SocketAddr,
    _root: TempDir,
    _db: TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Van {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const MAIN_V1: &[u8] = b"print('v1')\n";
const MAIN_V2: &[u8] = b"print('v2')\n";

async fn start_van() -> Van {
    start_van_with(|_| {}).await
}

/// [`start_van`] after `adjust` has changed the server's configuration.
async fn start_van_with(adjust: impl FnOnce(&mut ServerConfig)) -> Van {
    let root = TempDir::new().unwrap();
    let big = big();
    let files: [(&str, &[u8]); 5] = [
        ("1.0.0/flash/main.py", MAIN_V1),
        ("1.0.0/flash/OTA_VERSION.py", b"VERSION = '1.0.0'\n"),
        ("1.1.0/flash/main.py", MAIN_V2),
        ("1.1.0/flash/OTA_VERSION.py", b"VERSION = '1.1.0'\n"),
        ("1.1.0/sd/big.bin", &big),
    ];
    for (path, content) in files {
        write(root.path(), path, content);
    }
    let db = TempDir::new().unwrap();
    let mut config = ServerConfig::new(root.path());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.store = otavan_store::StoreLocation::Sqlite(db.path().join("reports.db"));
    config.patch_cache = Some(db.path().join("patches"));
    adjust(&mut config);
    let server = Server::bind(config).await.expect("server starts");
    let addr = server.local_addr();
    let task = tokio::spawn(server.run(std::future::pending()));
    Van {
        addr,
        _root: root,
        _db: db,
        task,
    }
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[tokio::test]
async fn otavan_manifest_has_extensions_and_null_when_current() {
    let van = start_van().await;
    let http = transport(van.addr);

    let manifest = http
        .fetch_manifest(&version("1.0.0"))
        .await
        .unwrap()
        .expect("an update from 1.0.0");
    assert_eq!(manifest.version, "1.1.0");
    assert!(manifest.delete.is_empty());
    let big_entry = manifest
        .new
        .iter()
        .find(|e| e.dst_path == "/sd/big.bin")
        .expect("big.bin is new");
    assert_eq!(big_entry.size, Some(300 * 1024));
    assert_eq!(
        big_entry.sha256.as_deref(),
        Some(sha256_hex(&big()).as_str())
    );
    assert_eq!(big_entry.hash, sha1_hex(&big()));
    assert_eq!(
        big_entry.url,
        format!("http://{}/1.1.0/sd/big.bin", van.addr)
    );
    let main = manifest
        .update
        .iter()
        .find(|e| e.dst_path == "/flash/main.py")
        .expect("main.py is updated");
    assert_eq!(main.size, Some(MAIN_V2.len() as u64));
    assert_eq!(main.sha256.as_deref(), Some(sha256_hex(MAIN_V2).as_str()));

    for current in ["1.1.0", "1.10.0"] {
        assert_eq!(
            http.fetch_manifest(&version(current)).await.unwrap(),
            None,
            "{current}"
        );
    }
}

#[tokio::test]
async fn otavan_full_fetch_and_resume() {
    let van = start_van().await;
    let http = transport(van.addr);
    let url = format!("http://{}/1.1.0/sd/big.bin", van.addr);
    let data = big();

    let mut sink = VecSink::default();
    let fetched = http.fetch(&url, 0, &mut sink).await.unwrap();
    assert_eq!(
        fetched,
        Fetched {
            from: 0,
            received: data.len() as u64
        }
    );
    assert_eq!(sink.data, data);

    // Resume: the server answers 206 and only the tail is appended.
    let mut sink = VecSink::holding(&data[..100_000]);
    let fetched = http.fetch(&url, 100_000, &mut sink).await.unwrap();
    assert_eq!(
        fetched,
        Fetched {
            from: 100_000,
            received: data.len() as u64 - 100_000
        }
    );
    assert_eq!(sink.restarts, 0);
    assert_eq!(sink.data, data);

    // The last byte alone.
    let last = data.len() as u64 - 1;
    let mut sink = VecSink::default();
    let fetched = http.fetch(&url, last, &mut sink).await.unwrap();
    assert_eq!(
        fetched,
        Fetched {
            from: last,
            received: 1
        }
    );
    assert_eq!(sink.data, &data[last as usize..]);
}

#[tokio::test]
async fn otavan_requests_go_to_the_configured_server() {
    let van = start_van().await;
    let http = transport(van.addr);
    // The manifest's host is ignored, like the Pycom device library does.
    let mut sink = VecSink::default();
    let fetched = http
        .fetch("http://192.0.2.1:9/1.1.0/flash/main.py", 0, &mut sink)
        .await
        .unwrap();
    assert_eq!(fetched.received, MAIN_V2.len() as u64);
    assert_eq!(sink.data, MAIN_V2);
}

#[tokio::test]
async fn otavan_errors_map_to_status() {
    let van = start_van().await;
    let http = transport(van.addr);
    let url = format!("http://{}/1.1.0/sd/big.bin", van.addr);
    for from in [300 * 1024, 400_000] {
        let mut sink = VecSink::holding(b"kept");
        let err = http.fetch(&url, from, &mut sink).await.unwrap_err();
        assert!(
            matches!(err, TransportError::Status { status: 416, .. }),
            "{from}: {err}"
        );
        assert_eq!(sink.data, b"kept");
        assert_eq!(sink.restarts, 0);
    }
    let mut sink = VecSink::default();
    let err = http
        .fetch(
            &format!("http://{}/1.1.0/flash/nope.py", van.addr),
            0,
            &mut sink,
        )
        .await
        .unwrap_err();
    match err {
        TransportError::Status { status, what } => {
            assert_eq!(status, 404);
            assert!(what.contains("/1.1.0/flash/nope.py"), "{what}");
        }
        other => panic!("expected a 404, got {other}"),
    }
    for bad in ["/1.1.0/sd/big.bin", "https://van/1.1.0/sd/big.bin", "::"] {
        let err = http.fetch(bad, 0, &mut sink).await.unwrap_err();
        assert!(
            matches!(err, TransportError::BadResponse(_)),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn otavan_reports_show_up_in_the_csv() {
    let van = start_van().await;
    let http = transport(van.addr);
    let mut report = Report {
        device_id: "70B3D57ED0001234".into(),
        from_version: version("1.0.0"),
        to_version: version("1.1.0"),
        state: UpdateState::Downloading,
        error: None,
        bytes: Some(0),
        full_bytes: Some(4096),
        report_id: None,
    };
    http.send_report(&report).await.unwrap();
    report.state = UpdateState::Failed;
    report.error = Some("sha1 mismatch for /flash/main.py".into());
    http.send_report(&report).await.unwrap();

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let csv = client
        .get(format!("http://{}/reports.csv", van.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].contains("70B3D57ED0001234,1.0.0,1.1.0,DOWNLOADING"),
        "{csv}"
    );
    assert!(
        rows[1].contains("FAILED,sha1 mismatch for /flash/main.py"),
        "{csv}"
    );
}

// ------------------------------------------------------------- fixtures

/// What a fixture sends back for one request.
struct Reply {
    /// Raw response bytes, status line included.
    bytes: Vec<u8>,
    /// How long to keep the connection open after writing them.
    linger: Duration,
}

impl Reply {
    /// Writes `bytes`, then closes.
    fn close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            linger: Duration::ZERO,
        }
    }

    /// `HTTP/1.0 200 OK`, no headers at all, `body`, close: the Pycom
    /// reference server.
    fn pycom(body: &[u8]) -> Reply {
        let mut bytes = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        bytes.extend_from_slice(body);
        Reply::close(bytes)
    }

    /// A response with the given status line tail, extra headers and body,
    /// sent exactly as written (no Content-Length unless in `headers`).
    fn raw(status: &str, headers: &[&str], body: &[u8]) -> Reply {
        let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Reply::close(bytes)
    }
}

/// Request heads a fixture received, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// A one-handler HTTP server on 127.0.0.1:0: reads each request head
/// (GET only, no body), answers `handler(head)` and closes.
async fn fixture(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let handler = Arc::new(handler);
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                seen.lock().unwrap().push(head.clone());
                let reply = handler(&head);
                // The client may hang up early (manifest cap): ignore errors.
                let _ = stream.write_all(&reply.bytes).await;
                let _ = stream.flush().await;
                tokio::time::sleep(reply.linger).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, log)
}

/// The request target of a request head.
fn target(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

// ---------------------------------------------------- Pycom-style server

fn pycom_file() -> Vec<u8> {
    (0..200 * 1024u32).map(|i| (i * 31 % 253) as u8).collect()
}

/// What the Pycom reference server would answer: manifests without
/// otavan's extensions, `null` when current, files without Content-Length,
/// Range ignored.
fn pycom_handler(head: &str) -> Reply {
    let host = header(head, "host").unwrap_or("unknown").to_owned();
    match target(head) {
        "/manifest.json?current_ver=1.0.0" => {
            let body = format!(
                r#"{{"delete": ["sd/old.wav"], "new": [{{"URL": "http://{host}/1.1.0/sd/data.bin", "dst_path": "/sd/data.bin", "hash": "{}"}}], "update": [], "version": "1.1.0"}}"#,
                sha1_hex(&pycom_file())
            );
            Reply::pycom(body.as_bytes())
        }
        "/manifest.json?current_ver=1.1.0" => Reply::pycom(b"null"),
        "/1.1.0/sd/data.bin" => Reply::pycom(&pycom_file()),
        _ => Reply::pycom(b""),
    }
}

#[tokio::test]
async fn pycom_manifest_without_extensions_and_null() {
    let (addr, log) = fixture(pycom_handler).await;
    let http = transport(addr);
    let manifest = http
        .fetch_manifest(&version("1.0.0"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.version, "1.1.0");
    assert_eq!(manifest.delete, ["sd/old.wav"]);
    let entry = &manifest.new[0];
    assert_eq!(entry.hash, sha1_hex(&pycom_file()));
    assert_eq!(entry.sha256, None);
    assert_eq!(entry.size, None);
    assert_eq!(entry.url, format!("http://{addr}/1.1.0/sd/data.bin"));

    assert_eq!(http.fetch_manifest(&version("1.1.0")).await.unwrap(), None);
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn pycom_fetch_reads_until_close_and_restarts_when_range_is_ignored() {
    let (addr, log) = fixture(pycom_handler).await;
    let http = transport(addr);
    let url = format!("http://{addr}/1.1.0/sd/data.bin");
    let data = pycom_file();

    let mut sink = VecSink::default();
    let fetched = http.fetch(&url, 0, &mut sink).await.unwrap();
    assert_eq!(
        fetched,
        Fetched {
            from: 0,
            received: data.len() as u64
        }
    );
    assert_eq!(sink.data, data);

    let mut sink = VecSink::holding(&data[..5000]);
    let fetched = http.fetch(&url, 5000, &mut sink).await.unwrap();
    assert_eq!(
        fetched,
        Fetched {
            from: 0,
            received: data.len() as u64
        }
    );
    assert_eq!(sink.restarts, 1);
    assert_eq!(sink.data, data);

    let heads = log.lock().unwrap().clone();
    assert_eq!(header(&heads[0], "range"), None);
    assert_eq!(header(&heads[1], "range"), Some("bytes=5000-"));
}

// ------------------------------------------------- misbehaving fixtures

#[tokio::test]
async fn cut_body_is_a_connection_error_and_keeps_the_bytes() {
    let body: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let (addr, _) = fixture({
        let body = body.clone();
        move |head| {
            if header(head, "range").is_some() {
                Reply::raw(
                    "206 Partial Content",
                    &["Content-Range: bytes 100-1099/1100", "Content-Length: 1000"],
                    &body,
                )
            } else {
                Reply::raw("200 OK", &["Content-Length: 1000"], &body)
            }
        }
    })
    .await;
    let http = transport(addr);
    let url = format!("http://{addr}/f.bin");

    let mut sink = VecSink::default();
    let err = http.fetch(&url, 0, &mut sink).await.unwrap_err();
    match &err {
        TransportError::Connection(message) => {
            assert!(message.contains("cut after 300 bytes"), "{message}");
            assert!(message.contains("/f.bin"), "{message}");
        }
        other => panic!("expected a connection error, got {other}"),
    }
    assert_eq!(sink.data, body);

    let mut sink = VecSink::holding(&[7; 100]);
    let err = http.fetch(&url, 100, &mut sink).await.unwrap_err();
    assert!(matches!(err, TransportError::Connection(_)), "{err}");
    assert_eq!(sink.data.len(), 400);
    assert_eq!(&sink.data[100..], body.as_slice());
    assert_eq!(sink.restarts, 0);
}

#[tokio::test]
async fn bad_partial_responses_are_bad_responses() {
    let (addr, _) = fixture(|head| match target(head) {
        "/wrong-start" => Reply::raw(
            "206 Partial Content",
            &["Content-Range: bytes 0-9/10", "Content-Length: 10"],
            b"0123456789",
        ),
        "/malformed" => Reply::raw(
            "206 Partial Content",
            &["Content-Range: bytes 5-x/10", "Content-Length: 5"],
            b"56789",
        ),
        "/short-range" => Reply::raw(
            "206 Partial Content",
            &["Content-Range: bytes 5-6/10", "Content-Length: 2"],
            b"56",
        ),
        "/no-range" => Reply::raw("206 Partial Content", &["Content-Length: 5"], b"56789"),
        _ => Reply::raw("500 Oops", &["Content-Length: 0"], b""),
    })
    .await;
    let http = transport(addr);
    for path in ["/wrong-start", "/malformed", "/short-range", "/no-range"] {
        let mut sink = VecSink::holding(b"01234");
        let err = http
            .fetch(&format!("http://{addr}{path}"), 5, &mut sink)
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransportError::BadResponse(_)),
            "{path}: {err}"
        );
        assert_eq!(sink.data, b"01234", "{path}");
        assert_eq!(sink.restarts, 0, "{path}");
    }
    let mut sink = VecSink::default();
    let err = http
        .fetch(&format!("http://{addr}/other"), 0, &mut sink)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Status { status: 500, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_and_malformed_manifests_are_bad_responses() {
    let (addr, log) = fixture(|head| {
        let query = target(head).split_once('=').map_or("", |(_, v)| v);
        match query {
            // 5 MiB of whitespace, no Content-Length: the cap must apply
            // while reading.
            "1.0.0" => Reply::pycom(&vec![b' '; 5 * 1024 * 1024]),
            "1.0.1" => Reply::pycom(br#"{"version": "1.1.0", "new": [{"URL": 1}]}"#),
            "1.0.2" => Reply::pycom(b"{\"version\": "),
            "1.0.3" => Reply::pycom(b""),
            "1.0.4" => Reply::raw("500 Internal Server Error", &["Content-Length: 0"], b""),
            "1.0.5" => Reply::pycom(b"\r\n  null \n"),
            _ => Reply::pycom(br#"{"version": "1.1.0"}"#),
        }
    })
    .await;
    let http = transport(addr);
    for current in ["1.0.0", "1.0.1", "1.0.2", "1.0.3"] {
        let err = http.fetch_manifest(&version(current)).await.unwrap_err();
        assert!(
            matches!(err, TransportError::BadResponse(_)),
            "{current}: {err}"
        );
    }
    let err = http.fetch_manifest(&version("1.0.4")).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Status { status: 500, .. }),
        "{err}"
    );
    assert_eq!(http.fetch_manifest(&version("1.0.5")).await.unwrap(), None);

    // A smaller configured cap applies too, Content-Length or not.
    let mut config = HttpTransportConfig::new(format!("http://{addr}/"));
    config.max_manifest_bytes = 10;
    let small = HttpTransport::new(config).unwrap();
    let err = small.fetch_manifest(&version("2.0.0")).await.unwrap_err();
    assert!(matches!(err, TransportError::BadResponse(_)), "{err}");

    // The version is percent-encoded in the query.
    http.fetch_manifest(&version("1.2.0+build.5"))
        .await
        .unwrap();
    let heads = log.lock().unwrap().clone();
    assert_eq!(
        target(heads.last().unwrap()),
        "/manifest.json?current_ver=1.2.0%2Bbuild.5"
    );
}

#[tokio::test]
async fn silence_and_refused_connections_are_connection_errors() {
    let (addr, _) = fixture(|_| Reply {
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".to_vec(),
        linger: Duration::from_secs(5),
    })
    .await;
    let mut config = HttpTransportConfig::new(format!("http://{addr}"));
    config.read_timeout = Duration::from_millis(300);
    let http = HttpTransport::new(config).unwrap();
    let mut sink = VecSink::default();
    let err = http
        .fetch(&format!("http://{addr}/slow.bin"), 0, &mut sink)
        .await
        .unwrap_err();
    match &err {
        TransportError::Connection(message) => {
            assert!(message.contains("timed out"), "{message}");
            assert!(message.contains("cut after 3 bytes"), "{message}");
        }
        other => panic!("expected a connection error, got {other}"),
    }
    assert_eq!(sink.data, b"abc");

    // A port nobody listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let http = transport(closed);
    let err = http.fetch_manifest(&version("1.0.0")).await.unwrap_err();
    match &err {
        TransportError::Connection(message) => {
            assert!(message.contains("/manifest.json"), "{message}");
        }
        other => panic!("expected a connection error, got {other}"),
    }
}

#[test]
fn server_urls_are_validated() {
    for good in [
        "http://127.0.0.1:8000",
        "http://192.168.4.1:8000/",
        "http://van.local",
    ] {
        assert!(
            HttpTransport::new(HttpTransportConfig::new(good)).is_ok(),
            "{good}"
        );
    }
    let http = HttpTransport::new(HttpTransportConfig::new("http://192.168.4.1:8000/")).unwrap();
    assert_eq!(http.server(), "http://192.168.4.1:8000");
    for bad in [
        "https://192.168.4.1",
        "192.168.4.1:8000",
        "http://192.168.4.1:8000/ota",
        "http://192.168.4.1:8000/?a=b",
        "",
    ] {
        assert!(
            HttpTransport::new(HttpTransportConfig::new(bad)).is_err(),
            "{bad}"
        );
    }
}

/// A meter with its report key signs what it posts: the van, holding the
/// fleet secret, stores it `verified`; a meter with another fleet's key is
/// refused (403) and nothing is stored; without a key it is `unsigned`.
#[tokio::test]
async fn reports_signed_with_the_meter_key_are_verified() {
    use otavan_protocol::report_auth::FleetSecret;
    let secret = "00ff".repeat(16);
    let fleet = FleetSecret::from_hex(&secret).unwrap();
    let van = start_van_with(|config| {
        config.report_auth.secret = Some(fleet.clone());
    })
    .await;
    let report = |id: &str| Report {
        device_id: "70B3D57ED0001234".into(),
        from_version: version("1.0.0"),
        to_version: version("1.1.0"),
        state: UpdateState::Updated,
        error: None,
        bytes: Some(10),
        full_bytes: None,
        report_id: Some(id.into()),
    };
    let signing = |key| {
        let mut config = HttpTransportConfig::new(format!("http://{}", van.addr));
        config.report_key = Some(key);
        HttpTransport::new(config).unwrap()
    };
    let meter = signing(fleet.meter_key("70B3D57ED0001234"));
    meter.send_report(&report("a/UPDATED")).await.unwrap();
    let stranger = FleetSecret::from_hex(&"11".repeat(32)).unwrap();
    let impostor = signing(stranger.meter_key("70B3D57ED0001234"));
    let refused = impostor.send_report(&report("b/UPDATED")).await;
    assert!(
        matches!(refused, Err(TransportError::Status { status: 403, .. })),
        "{refused:?}"
    );
    transport(van.addr)
        .send_report(&report("c/UPDATED"))
        .await
        .unwrap();

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let csv = client
        .get(format!("http://{}/reports.csv", van.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marks: Vec<&str> = csv
        .lines()
        .skip(1)
        // `verified`, before the van's position (no GPS here).
        .map(|l| l.rsplit(',').nth(3).unwrap())
        .collect();
    assert_eq!(marks, ["verified", "unsigned"], "{csv}");
}
