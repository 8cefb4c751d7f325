//! Report authenticity against the real server: forged reports are stored
//! `unsigned` and not counted under `--require-signed-reports`, a meter's
//! signed report is `verified` and counted, bad signatures are refused,
//! LoRa status uplinks count as authenticated.

use std::sync::Arc;
use std::time::SystemTime;

use otavan_protocol::lora::{OtaResult, StatusUplink, VersionTag};
use otavan_protocol::report_auth::FleetSecret;
use otavan_server::authenticity::ReportAuth;
use otavan_store::reports::LoraStatus;
use otavan_store::{ReportStore, StoreLocation};
use tempfile::TempDir;

use crate::harness::{RawResponse, TestServer, sample_root};

const SECRET: &str = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";

fn updated(device: &str, report_id: &str) -> String {
    format!(
        r#"{{"device_id":"{device}","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","report_id":"{report_id}"}}"#
    )
}

/// The text of the element with `id` on a page (`<b id="x">text</b>`).
fn by_id(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in\n{page}"));
    let text = &page[start + id.len() + 6..];
    text[..text.find('<').unwrap()].to_owned()
}

async fn post(server: &TestServer, body: &str, signature: Option<&str>) -> RawResponse {
    let header = signature.map(|s| format!("X-Otavan-Signature: {s}"));
    let headers: Vec<&str> = header.iter().map(String::as_str).collect();
    server
        .request("POST", "/report", &headers, body.as_bytes())
        .await
}

/// Every row of `/reports.csv` as (device_id, state, source, verified).
async fn rows(server: &TestServer) -> Vec<[String; 4]> {
    let csv = server.get("/reports.csv", &[]).await;
    let mut reader = csv::Reader::from_reader(csv.body.as_slice());
    assert_eq!(&reader.headers().unwrap()[7], "verified");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            [&r[1], &r[4], &r[6], &r[7]].map(str::to_owned)
        })
        .collect()
}

fn row(device: &str, state: &str, source: &str, verified: &str) -> [String; 4] {
    [device, state, source, verified].map(str::to_owned)
}

#[tokio::test]
async fn only_signed_reports_and_lora_uplinks_count_as_updated_when_required() {
    let fleet = FleetSecret::from_hex(SECRET).unwrap();
    let db = TempDir::new().unwrap();
    let db_path = db.path().join("van.db");
    let server = TestServer::start_with(&sample_root(), |config| {
        config.store = StoreLocation::Sqlite(db_path.clone());
        config.report_auth = ReportAuth {
            secret: Some(fleet.clone()),
            require_signed: true,
        };
    })
    .await;

    // Anyone on the van's WiFi claims meter m-forged is updated.
    let forged = updated("m-forged", "x/UPDATED");
    assert_eq!(post(&server, &forged, None).await.status, 204);
    let page = server.get("/", &[]).await.text();
    assert_eq!(by_id(&page, "count-UPDATED"), "0", "a forged report counts");
    assert_eq!(by_id(&page, "unverified-reports"), "1");

    // A forger who saw m1's report id posts it unsigned first: the meter's
    // own signed report is still stored, and verified.
    let genuine = updated("m1", "a7f3/UPDATED");
    assert_eq!(post(&server, &genuine, None).await.status, 204);
    let signature = fleet.meter_key("m1").sign(genuine.as_bytes());
    assert_eq!(post(&server, &genuine, Some(&signature)).await.status, 204);
    let page = server.get("/", &[]).await.text();
    assert_eq!(by_id(&page, "count-UPDATED"), "1");

    // Signatures that do not match are refused and store nothing.
    let tampered = genuine.replace("1.0.0", "1.0.1");
    let as_other_device = genuine.replace("\"m1\"", "\"m2\"");
    let other_fleet = FleetSecret::from_hex(&SECRET.replace("c0ffee", "bad000")).unwrap();
    let wrong_key = other_fleet.meter_key("m1").sign(genuine.as_bytes());
    for (what, body, signature, status) in [
        ("tampered body", &tampered, signature.clone(), 403),
        (
            "replayed for another device",
            &as_other_device,
            signature.clone(),
            403,
        ),
        ("wrong key", &genuine, wrong_key, 403),
        ("malformed", &genuine, "hmac-sha256=beef".to_owned(), 400),
    ] {
        let response = post(&server, body, Some(&signature)).await;
        assert_eq!(response.status, status, "{what}");
        assert!(response.json()["error"].is_string(), "{what}");
    }
    // A replay of the genuine report is a duplicate: nothing new stored.
    assert_eq!(post(&server, &genuine, Some(&signature)).await.status, 204);

    // A LoRa status uplink (authenticated by the network server) saying m3
    // runs the target after an update, stored by `campaign watch`.
    let store = Arc::new(ReportStore::open(&db_path).unwrap());
    let status = StatusUplink {
        version_tag: VersionTag::of(&"1.1.0".parse().unwrap()),
        pending_confirm: false,
        last_result: OtaResult::Updated,
        battery: 180,
        campaign: 3,
    };
    let lora = LoraStatus {
        device_id: "m3",
        version: "1.1.0",
        status: &status,
    };
    store.insert_lora(&lora, SystemTime::now()).unwrap();

    let page = server.get("/", &[]).await.text();
    assert_eq!(by_id(&page, "count-UPDATED"), "2", "m1 signed, m3 by LoRa");
    assert_eq!(by_id(&page, "meters"), "2");
    assert_eq!(by_id(&page, "unverified-reports"), "2");
    assert_eq!(
        rows(&server).await,
        [
            row("m-forged", "UPDATED", "van", "unsigned"),
            row("m1", "UPDATED", "van", "unsigned"),
            row("m1", "UPDATED", "van", "verified"),
            row("m3", "UPDATED", "lora", "network"),
        ]
    );
    let history = server.get("/devices/m1", &[]).await.text();
    assert!(
        history.contains("<td class=\"verified\">unsigned</td>")
            && history.contains("<td class=\"verified\">verified</td>"),
        "{history}"
    );
    let metrics = server.get("/metrics", &[]).await.text();
    assert!(
        metrics.contains("otavan_reports_total{state=\"refused\"} 4"),
        "{metrics}"
    );
    server.shutdown().await;
}

/// Without `--require-signed-reports` every report counts (as before), and
/// a van without the fleet secret stores signed reports `unchecked`.
#[tokio::test]
async fn without_the_flag_or_the_secret_reports_count_and_are_marked() {
    let fleet = FleetSecret::from_hex(SECRET).unwrap();
    let server = TestServer::start(&sample_root()).await;
    let forged = updated("m-forged", "x/UPDATED");
    assert_eq!(post(&server, &forged, None).await.status, 204);
    let genuine = updated("m1", "b2/UPDATED");
    let signature = fleet.meter_key("m1").sign(genuine.as_bytes());
    assert_eq!(post(&server, &genuine, Some(&signature)).await.status, 204);
    let page = server.get("/", &[]).await.text();
    assert_eq!(by_id(&page, "count-UPDATED"), "2");
    assert_eq!(
        rows(&server).await,
        [
            row("m-forged", "UPDATED", "van", "unsigned"),
            row("m1", "UPDATED", "van", "unchecked"),
        ]
    );
    server.shutdown().await;
}
