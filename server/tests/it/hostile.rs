//! What anyone on the van's WiFi can try against the server's memory and
//! connections: a cache filler, clients that stop reading, a trickling
//! reader, one address opening many connections.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use otavan_server::pace::Pace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{RawResponse, TestServer, tree, write};

/// A release whose full manifest is about `files` × 200 bytes, with a
/// firmware image of `firmware` bytes.
fn release(files: usize, firmware: usize) -> tempfile::TempDir {
    let root = tree(&[("firmware_1.1.0.bin", &vec![7u8; firmware])]);
    for i in 0..files {
        let path = format!("1.1.0/flash/lib/module_with_a_long_name_{i:04}.py");
        write(root.path(), &path, format!("print({i})\n").as_bytes());
    }
    write(root.path(), "1.0.0/flash/main.py", b"old\n");
    root
}

/// A connection from `source` (any 127.0.0.0/8 address) to `server`.
async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from(source), 0))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// Sends `GET path` with `host` and reads the response to the end.
async fn get(stream: &mut TcpStream, path: &str, host: &str) -> Option<RawResponse> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    RawResponse::parse(raw)
}

/// A value from the server's `/metrics`.
async fn metric(server: &TestServer, name: &str) -> u64 {
    let text = server.get("/metrics", &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// Before: every unknown `current_ver` and every Host rendered and kept a
/// full manifest of its own (4,100 of them took a 1,000-file release's
/// server to 2.1 GB). Now versions without a folder share entries, foreign
/// Hosts are capped, and the cache stays inside its byte budget, while
/// each answer still names the version and Host it was asked for.
#[tokio::test]
async fn a_cache_filler_cannot_grow_the_manifest_cache_past_its_budget() {
    let root = release(300, 1024);
    let budget = 2 * 1024 * 1024;
    let server = TestServer::start_with(root.path(), |c| c.manifest_cache_bytes = budget).await;
    let full = server.get("/manifest.json", &[]).await.body.len();
    assert!(full > 50_000, "the full manifest is {full} bytes");
    for n in 0..400 {
        let host = format!("filler-{}.example:8000", n % 40);
        let mut stream = connect_from([127, 0, 0, 2], server.addr).await;
        let response = get(
            &mut stream,
            &format!("/manifest.json?current_ver=0.{n}.0"),
            &host,
        )
        .await
        .expect("an answer");
        assert_eq!(response.status, 200);
        let manifest = response.json();
        assert_eq!(manifest["previous_version"], format!("0.{n}.0"));
        assert_eq!(
            manifest["new"].as_array().map(Vec::len),
            Some(300),
            "{manifest}"
        );
        let url = manifest["firmware"]["URL"]
            .as_str()
            .unwrap_or_else(|| panic!("{manifest}"));
        assert!(url.starts_with(&format!("http://{host}/")), "{url}");
    }
    let held = metric(&server, "otavan_manifest_cache_bytes").await as usize;
    assert!(
        held <= budget,
        "the cache holds {held} bytes, over {budget}"
    );
    // One shared entry per foreign Host admitted (plus the full install
    // asked for above through the harness's Host).
    let most = (otavan_server::manifest_cache::MAX_FOREIGN_HOSTS + 1) * full;
    assert!(held <= most, "the cache holds {held} bytes, over {most}");
}

/// A tiny budget: manifests are still right, rendered per request.
#[tokio::test]
async fn past_the_budget_manifests_are_still_served() {
    let root = release(50, 1024);
    let server = TestServer::start_with(root.path(), |c| c.manifest_cache_bytes = 100).await;
    for version in ["1.0.0", "0.1.0", ""] {
        let query = format!("/manifest.json?current_ver={version}");
        let response = server.get(&query, &[]).await;
        assert_eq!(response.status, 200, "{version}");
        assert_eq!(response.json()["version"], "1.1.0");
    }
    assert_eq!(metric(&server, "otavan_manifest_cache_bytes").await, 0);
}

/// Before: eight sockets that asked for a large image and never read held
/// all eight slots, and a new meter's manifest request timed out. Now the
/// stalest connection is closed to make room.
#[tokio::test]
async fn stalled_downloads_do_not_keep_a_new_meter_from_its_manifest() {
    let root = release(5, 32 * 1024 * 1024);
    let server = TestServer::start_with(root.path(), |c| {
        c.max_connections = 8;
        c.preload_bytes = 0;
    })
    .await;
    let mut stalled = Vec::new();
    for i in 0..8u8 {
        let mut stream = connect_from([127, 0, 1, i + 1], server.addr).await;
        let request = "GET /firmware_1.1.0.bin HTTP/1.1\r\nHost: van\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meter = async {
        let mut stream = connect_from([127, 0, 2, 1], server.addr).await;
        get(&mut stream, "/manifest.json?current_ver=1.0.0", "van").await
    };
    // The stalled downloads wait on their clients: closed for the newcomer
    // after 10 s without taking a byte (before the stall timeout's 20 s).
    let response = tokio::time::timeout(Duration::from_secs(18), meter)
        .await
        .expect("the new meter got its manifest while the others stalled")
        .expect("an answer");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["version"], "1.1.0");
    assert!(
        metric(
            &server,
            "otavan_connections_closed_total{reason=\"evicted\"}"
        )
        .await
            >= 1
    );
    drop(stalled);
}

/// Reads from `stream` until it ends or `deadline` passes, `step` bytes
/// every `every`; the bytes read.
async fn trickle(
    stream: &mut TcpStream,
    step: usize,
    every: Duration,
    deadline: Duration,
) -> usize {
    let mut buffer = vec![0u8; step];
    let mut total = 0;
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end {
        match tokio::time::timeout(every, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return total,
            Ok(Ok(n)) => total += n,
            Err(_) => {}
        }
        tokio::time::sleep(every).await;
    }
    panic!("the server was still sending after {deadline:?} ({total} bytes)");
}

/// A socket with a small receive buffer, so the server's writes wait on
/// the reader instead of the kernel's buffers.
async fn small_window(server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    socket.connect(server).await.unwrap()
}

/// Before: a client that stopped reading kept its connection for ever.
/// Now a response that waits longer than the stall timeout is cut.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_the_stall_timeout() {
    let size = 16 * 1024 * 1024;
    let root = release(5, size);
    let pace = Pace {
        stall_timeout: Duration::from_secs(1),
        min_rate: 0,
    };
    let server = TestServer::start_with(root.path(), |c| c.pace = pace).await;
    let mut stream = small_window(server.addr).await;
    let request = "GET /firmware_1.1.0.bin HTTP/1.1\r\nHost: van\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    let got = rest.len();
    assert!(read.is_ok(), "the connection stayed open");
    assert!(got < size, "the whole image arrived ({got} bytes)");
}

/// A reader under the minimum rate is cut; one above it gets everything.
#[tokio::test]
async fn a_reader_under_the_minimum_rate_is_cut_and_one_above_it_is_not() {
    let size = 16 * 1024 * 1024;
    let root = release(5, size);
    // The kernel's buffers hold about a megabyte on loopback, which a cut
    // reader still gets: a floor far above that makes the cut show.
    let pace = Pace {
        stall_timeout: Duration::from_secs(1),
        min_rate: 4 * 1024 * 1024,
    };
    let server = TestServer::start_with(root.path(), |c| {
        c.pace = pace;
        c.preload_bytes = 0;
    })
    .await;
    let request = "GET /firmware_1.1.0.bin HTTP/1.1\r\nHost: van\r\nConnection: close\r\n\r\n";

    let mut slow = small_window(server.addr).await;
    slow.write_all(request.as_bytes()).await.unwrap();
    // About 400 KiB/s, a tenth of the floor.
    let step = 40 * 1024;
    let got = trickle(
        &mut slow,
        step,
        Duration::from_millis(100),
        Duration::from_secs(30),
    )
    .await;
    assert!(got < size, "the slow reader got the whole image");

    let mut fast = small_window(server.addr).await;
    fast.write_all(request.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    fast.read_to_end(&mut all).await.unwrap();
    let response = RawResponse::parse(all).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), size);
}

/// Before: one address could open every slot. Now its connections past
/// the cap are closed unanswered, and other addresses are served.
#[tokio::test]
async fn one_address_cannot_take_more_than_its_share_of_connections() {
    let root = release(5, 1024);
    let server = TestServer::start_with(root.path(), |c| c.max_connections_per_ip = 2).await;
    let greedy = [127, 0, 3, 1];
    let _held = [
        connect_from(greedy, server.addr).await,
        connect_from(greedy, server.addr).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect_from(greedy, server.addr).await;
    let refused = get(&mut third, "/manifest.json", "van").await;
    assert!(
        refused.is_none(),
        "a third connection was served: {refused:?}"
    );
    let mut other = connect_from([127, 0, 3, 2], server.addr).await;
    let served = get(&mut other, "/manifest.json", "van")
        .await
        .expect("served");
    assert_eq!(served.status, 200);
    assert_eq!(
        metric(
            &server,
            "otavan_connections_closed_total{reason=\"refused\"}"
        )
        .await,
        1
    );
}
