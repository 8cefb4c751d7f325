//! `GET /metrics`, `GET /` and `GET /devices/{id}` over real sockets: the
//! numbers match what was requested and posted, downloads in flight are
//! listed while they last.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use otavan_store::VanId;

use crate::harness::{TestServer, sample_root, tree, write};

fn report(device: &str, state: &str) -> String {
    format!(
        r#"{{"device_id":"{device}","from_version":"1.0.0","to_version":"1.1.0","state":"{state}"}}"#
    )
}

/// The value of the metric line starting with `series` (name and labels).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_bytes_reports_and_reloads() {
    let server = TestServer::start_with(&sample_root(), |c| {
        c.van_id = VanId::new("van-m").unwrap();
    })
    .await;
    for _ in 0..3 {
        let manifest = server.get("/manifest.json?current_ver=1.0.0", &[]).await;
        assert_eq!(manifest.status, 200);
    }
    let image = server.get("/firmware_1.1.0.bin", &[]).await;
    assert_eq!(image.status, 200);
    let range = server
        .get("/firmware_1.1.0.bin", &["Range: bytes=0-9"])
        .await;
    assert_eq!(range.status, 206);
    assert_eq!(server.get("/nope", &[]).await.status, 404);
    assert_eq!(server.request("DELETE", "/", &[], b"").await.status, 405);
    for body in [
        report("m1", "DOWNLOADING"),
        report("m1", "UPDATED"),
        report("m1", "UPDATED"),
        report("m2", "FAILED"),
    ] {
        let posted = server
            .request("POST", "/report", &[], body.as_bytes())
            .await;
        assert_eq!(posted.status, 204);
    }
    server.reloader.reload().await.unwrap();

    let scraped = server.get("/metrics", &[]).await;
    assert_eq!(scraped.status, 200);
    assert_eq!(
        scraped.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = scraped.text();
    let expect = [
        (
            "otavan_requests_total{route=\"manifest\",status=\"200\"}",
            3.0,
        ),
        ("otavan_requests_total{route=\"file\",status=\"200\"}", 1.0),
        ("otavan_requests_total{route=\"file\",status=\"206\"}", 1.0),
        ("otavan_requests_total{route=\"file\",status=\"404\"}", 1.0),
        ("otavan_requests_total{route=\"other\",status=\"405\"}", 1.0),
        (
            "otavan_requests_total{route=\"report\",status=\"204\"}",
            4.0,
        ),
        ("otavan_manifests_total{source=\"rendered\"}", 1.0),
        ("otavan_manifests_total{source=\"cache\"}", 2.0),
        ("otavan_reports_total{state=\"DOWNLOADING\"}", 1.0),
        ("otavan_reports_total{state=\"UPDATED\"}", 1.0),
        ("otavan_reports_total{state=\"FAILED\"}", 1.0),
        ("otavan_reports_total{state=\"duplicate\"}", 1.0),
        ("otavan_index_reloads_total{result=\"ok\"}", 1.0),
        ("otavan_active_downloads", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(metric(&text, series), value, "{series}");
    }
    assert!(text.contains("otavan_info{target=\"1.1.0\",van_id=\"van-m\"} 1"));
    // Every body byte sent before this scrape: three manifests, the image,
    // the range, and the error bodies.
    let manifest_len = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .body
        .len() as f64;
    let image_len = image.body.len() as f64;
    let not_found = server.get("/nope", &[]).await.body.len() as f64;
    let not_allowed = server.request("DELETE", "/", &[], b"").await.body.len() as f64;
    let bytes = metric(&text, "otavan_bytes_served_total");
    assert_eq!(
        bytes,
        3.0 * manifest_len + image_len + 10.0 + not_found + not_allowed
    );
}

#[tokio::test]
async fn a_streamed_download_in_flight_is_listed_until_it_ends() {
    download_in_flight(0).await;
}

#[tokio::test]
async fn a_preloaded_download_in_flight_is_listed_until_it_ends() {
    download_in_flight(64 * 1024 * 1024).await;
}

/// A meter starts a download and stops reading: the dashboard lists it,
/// with the bytes the socket took (not the whole file), until the meter
/// goes away.
async fn download_in_flight(preload_bytes: u64) {
    // Large enough that it cannot all sit in the sockets' buffers.
    let big = vec![7u8; 48 * 1024 * 1024];
    let root = tree(&[("1.0.0/flash/main.py", b"a")]);
    write(root.path(), "1.1.0/sd/big.bin", &big);
    let server = TestServer::start_with(root.path(), |c| c.preload_bytes = preload_bytes).await;
    let addr = server.addr;
    // A meter that starts the download and then stops reading.
    let stalled = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /1.1.0/sd/big.bin HTTP/1.1\r\nHost: van\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 4096];
        stream.read_exact(&mut first).unwrap();
        stream
    })
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = server.get("/", &[]).await.text();
        if page.contains("/1.1.0/sd/big.bin") {
            break page;
        }
        assert!(Instant::now() < deadline, "download never listed:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        page.contains("<dd id=\"active-downloads\">1</dd>"),
        "{page}"
    );
    assert!(page.contains("<td class=\"num\">48.0 MiB</td>"), "{page}");
    // What the socket took so far, not what the body handed to hyper.
    assert!(
        !page.contains("<td class=\"num\">48.0 MiB</td><td class=\"num\">48.0 MiB</td>"),
        "{page}"
    );
    assert!(page.contains("/s</td>"), "{page}");
    let text = server.get("/metrics", &[]).await.text();
    assert_eq!(metric(&text, "otavan_active_downloads"), 1.0);

    // The meter goes away: the download ends and leaves the list.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = server.get("/metrics", &[]).await.text();
        if metric(&text, "otavan_active_downloads") == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "download never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = server.get("/", &[]).await.text();
    assert!(!page.contains("big.bin"), "{page}");
}

#[tokio::test]
async fn device_pages_list_a_meters_reports_and_refuse_unknown_ones() {
    let server = TestServer::start(&sample_root()).await;
    for state in ["DOWNLOADING", "FAILED"] {
        let body = report("meter 7/a", state);
        assert_eq!(
            server
                .request("POST", "/report", &[], body.as_bytes())
                .await
                .status,
            204
        );
    }
    let page = server.get("/devices/meter%207%2Fa", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let text = page.text();
    assert!(
        text.contains("<span id=\"report-count\">2</span>"),
        "{text}"
    );
    assert!(text.contains("<span id=\"device-id\">meter 7/a</span>"));
    assert_eq!(server.get("/devices/unknown", &[]).await.status, 404);
    assert_eq!(server.get("/devices/%ff", &[]).await.status, 400);
    assert_eq!(server.get("/devices/", &[]).await.status, 404);
    assert_eq!(
        server
            .request("POST", "/devices/meter", &[], b"")
            .await
            .status,
        405
    );
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip stream");
    text
}

#[tokio::test]
async fn pages_are_gzipped_for_browsers_that_accept_it_and_nothing_else_is() {
    let server = TestServer::start(&sample_root()).await;
    for state in ["DOWNLOADING", "UPDATED"] {
        let body = report("m9", state);
        let posted = server
            .request("POST", "/report", &[], body.as_bytes())
            .await;
        assert_eq!(posted.status, 204);
    }
    for path in ["/", "/devices/m9"] {
        let plain = server.get(path, &[]).await;
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("content-encoding"), None);
        assert_eq!(plain.header("vary"), Some("accept-encoding"));
        let zipped = server.get(path, &["Accept-Encoding: br, gzip;q=0.8"]).await;
        assert_eq!(zipped.status, 200);
        assert_eq!(zipped.header("content-encoding"), Some("gzip"));
        assert_eq!(zipped.header("vary"), Some("accept-encoding"));
        assert_eq!(
            zipped.header("content-length"),
            Some(zipped.body.len().to_string().as_str())
        );
        assert!(zipped.body.len() < plain.body.len(), "{path}");
        let text = gunzip(&zipped.body);
        assert!(text.contains("</html>"), "{text}");
        let same_page = match path {
            "/" => "<title>otavan vm → 1.1.0</title>",
            _ => "<span id=\"device-id\">m9</span>",
        };
        assert!(text.contains(same_page), "{text}");
        assert!(plain.text().contains(same_page));
        // Refused by q=0, or over HTTP/1.0 (whose responses keep only
        // their length, for the Pycom library): sent as they are.
        let refused = server.get(path, &["Accept-Encoding: gzip;q=0"]).await;
        assert_eq!(refused.header("content-encoding"), None);
        let old = server
            .raw(format!("GET {path} HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n").as_bytes())
            .await;
        assert_eq!(old.status, 200);
        assert!(String::from_utf8(old.body).unwrap().contains("</html>"));
    }
    // A meter's manifest and files are never compressed.
    for path in ["/manifest.json?current_ver=1.0.0", "/firmware_1.1.0.bin"] {
        let answer = server.get(path, &["Accept-Encoding: gzip"]).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), None, "{path}");
    }
}
