//! `POST /report` validation and storage, `GET /reports.csv`.

use otavan_store::StoreLocation;

use crate::harness::{TestServer, sample_root};

const GOOD: &str = r#"{"device_id":"70B3D57ED0001234","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","bytes":4096}"#;

#[tokio::test]
async fn valid_reports_are_stored_and_exported() {
    let server = TestServer::start(&sample_root()).await;
    let response = server
        .request(
            "POST",
            "/report",
            &["Content-Type: application/json"],
            GOOD.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 204);
    let failed = r#"{"device_id":"meter,\"7\"","from_version":"1.0.0","to_version":"1.1.0","state":"FAILED","error":"sha1 mismatch for /flash/main.py"}"#;
    assert_eq!(
        server
            .request("POST", "/report", &[], failed.as_bytes())
            .await
            .status,
        204
    );

    let csv = server.get("/reports.csv", &[]).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "time",
            "device_id",
            "from_version",
            "to_version",
            "state",
            "error",
            "source",
            "verified",
            "van_lat",
            "van_lon",
            "van_fix_time"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0][0].ends_with('Z') && rows[0][0].contains('T'),
        "RFC 3339 time: {}",
        &rows[0][0]
    );
    assert_eq!(&rows[0][1], "70B3D57ED0001234");
    assert_eq!(&rows[0][4], "UPDATED");
    assert_eq!(&rows[0][5], "");
    assert_eq!(&rows[0][6], "van");
    assert_eq!(&rows[0][7], "unsigned");
    // No GPS on this van: no position.
    assert_eq!((&rows[0][8], &rows[0][9], &rows[0][10]), ("", "", ""));
    assert_eq!(&rows[1][1], "meter,\"7\"");
    assert_eq!(&rows[1][4], "FAILED");
    assert_eq!(&rows[1][5], "sha1 mismatch for /flash/main.py");
}

#[tokio::test]
async fn malformed_reports_get_4xx_and_store_nothing() {
    let server = TestServer::start(&sample_root()).await;
    let oversized = format!(
        r#"{{"device_id":"a","from_version":"1.0.0","to_version":"1.1.0","state":"FAILED","error":"{}"}}"#,
        "x".repeat(17 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"hello".to_vec(), 400),
        ("empty", Vec::new(), 400),
        ("JSON array", b"[]".to_vec(), 400),
        (
            "unknown state",
            GOOD.replace("UPDATED", "DONE").into_bytes(),
            400,
        ),
        (
            "number as id",
            GOOD.replace("\"70B3D57ED0001234\"", "42").into_bytes(),
            400,
        ),
        (
            "traversal version",
            GOOD.replace("\"1.0.0\"", "\"../..\"").into_bytes(),
            400,
        ),
        (
            "negative bytes",
            GOOD.replace("4096", "-1").into_bytes(),
            400,
        ),
        (
            "missing state",
            br#"{"device_id":"a","from_version":"1.0.0","to_version":"1.1.0"}"#.to_vec(),
            400,
        ),
        (
            "empty id",
            GOOD.replace("70B3D57ED0001234", "").into_bytes(),
            400,
        ),
        (
            "control char id",
            GOOD.replace("70B3D57ED0001234", "a\\u0000b").into_bytes(),
            400,
        ),
        ("invalid UTF-8", b"{\"device_id\":\"\xff\"}".to_vec(), 400),
        ("over 16 KiB", oversized.into_bytes(), 413),
    ];
    for (name, body, status) in cases {
        let response = server.request("POST", "/report", &[], &body).await;
        assert_eq!(response.status, status, "{name}");
        assert!(response.json()["error"].is_string(), "{name}");
    }
    // Oversized without a Content-Length (chunked) is cut off too.
    let mut chunked = b"POST /report HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let big = vec![b'x'; 20 * 1024];
    chunked.extend_from_slice(format!("{:x}\r\n", big.len()).as_bytes());
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(server.raw(&chunked).await.status, 413);

    assert_eq!(server.get("/report", &[]).await.status, 405);
    assert_eq!(
        server
            .request("DELETE", "/reports.csv", &[], b"")
            .await
            .status,
        405
    );
    let csv = server.get("/reports.csv", &[]).await.text();
    assert_eq!(
        csv,
        "time,device_id,from_version,to_version,state,error,source,verified,van_lat,van_lon,van_fix_time\n",
        "nothing stored"
    );
}

#[tokio::test]
async fn reports_survive_a_restart() {
    let db_dir = tempfile::TempDir::new().unwrap();
    let db = db_dir.path().join("van.db");
    let first = TestServer::start_with(&sample_root(), |c| {
        c.store = StoreLocation::Sqlite(db.clone())
    })
    .await;
    assert_eq!(
        first
            .request("POST", "/report", &[], GOOD.as_bytes())
            .await
            .status,
        204
    );
    first.shutdown().await;
    let second = TestServer::start_with(&sample_root(), |c| {
        c.store = StoreLocation::Sqlite(db.clone())
    })
    .await;
    let csv = second.get("/reports.csv", &[]).await.text();
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

/// OWASP CSV injection: a cell that a spreadsheet would read as a formula
/// (it begins with `=`, `+`, `-`, `@`, tab or carriage return) is exported
/// with a leading `'`, so it shows as text; every other cell is unchanged.
/// Tab and carriage return never reach the store in a device id: such a
/// report is refused (the store module's unit test covers their cells).
#[tokio::test]
async fn formula_cells_are_neutralised_in_the_export() {
    let server = TestServer::start(&sample_root()).await;
    let hostile = [
        (
            "=HYPERLINK(\"http://evil.example\",\"x\")",
            "+cmd|' /C calc'!A0",
        ),
        ("@SUM(1+1)", "-2+3"),
    ];
    for (device, error) in hostile {
        let body = serde_json::json!({
            "device_id": device,
            "from_version": "1.0.0",
            "to_version": "1.1.0",
            "state": "FAILED",
            "error": error,
        });
        let response = server
            .request("POST", "/report", &[], body.to_string().as_bytes())
            .await;
        assert_eq!(response.status, 204, "{device:?}");
    }
    let tab =
        r#"{"device_id":"\tTAB","from_version":"1.0.0","to_version":"1.1.0","state":"FAILED"}"#;
    let response = server.request("POST", "/report", &[], tab.as_bytes()).await;
    assert_eq!(response.status, 400);
    let csv = server.get("/reports.csv", &[]).await;
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), hostile.len());
    for (row, (device, error)) in rows.iter().zip(hostile) {
        assert_eq!(&row[1], format!("'{device}"));
        assert_eq!(&row[5], format!("'{error}"));
        // Versions, state and source start with none of the characters.
        assert_eq!(&row[2], "1.0.0");
        assert_eq!(&row[4], "FAILED");
        assert_eq!(&row[6], "van");
    }
}
