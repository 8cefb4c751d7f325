//! `campaign watch` against mosquitto: status uplinks become `lora` rows
//! of the van's report store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use otavan_campaign::mqtt::{DeviceIds, NetworkServer};
use otavan_campaign::watch::{WatchConfig, WatchEvent, WatchSummary, watch};
use otavan_store::reports::ReportStore;

use crate::broker::{Mosquitto, publish};

async fn watch_while(
    broker: &Mosquitto,
    server: NetworkServer,
    store: &ReportStore,
    messages: &[(&str, String)],
    expected: usize,
) -> WatchSummary {
    let config = WatchConfig {
        broker: broker.url().parse().unwrap(),
        server,
        client_id: "otavan-watch-test".into(),
        fport: 200,
        versions: vec!["1.0.0".parse().unwrap(), "1.1.0".parse().unwrap()],
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (subscribed, ready) = tokio::sync::oneshot::channel::<()>();
    let mut subscribed = Some(subscribed);
    let port = broker.port();
    let messages: Vec<(String, String)> = messages
        .iter()
        .map(|(t, m)| ((*t).to_owned(), m.clone()))
        .collect();
    // Every message of the watched application gives one event once
    // handled; stop when `expected` have (or after 20 s).
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&handled);
    let publisher = tokio::spawn(async move {
        ready.await.unwrap();
        for (topic, message) in &messages {
            publish(port, topic, message).await;
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A message too many would show up in the summary.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
    });
    let summary = watch(
        &config,
        store,
        async { stopped.await.unwrap() },
        &mut |e| match e {
            WatchEvent::Subscribed(_) => {
                if let Some(tx) = subscribed.take() {
                    tx.send(()).unwrap();
                }
            }
            WatchEvent::Stored { .. }
            | WatchEvent::OtherPort { .. }
            | WatchEvent::Malformed { .. } => {
                handled.fetch_add(1, Ordering::SeqCst);
            }
            WatchEvent::Disconnected { .. } => {}
        },
    )
    .await
    .unwrap();
    publisher.await.unwrap();
    summary
}

fn csv(store: &ReportStore) -> String {
    let mut out = Vec::new();
    store.export_csv(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn chirpstack_status_uplinks_are_stored_as_lora_rows() {
    let broker = Mosquitto::start();
    let dir = tempfile::TempDir::new().unwrap();
    let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
    let status = |eui: &str, data: &str| {
        format!(
            r#"{{"time":"2025-06-03T09:10:00Z","deviceInfo":{{"applicationId":"app","devEui":"{eui}"}},"fCnt":1,"fPort":200,"data":"{data}"}}"#
        )
    };
    // 1.1.0's tag, updated, battery 200, campaign 7.
    let tag = hex::encode(otavan_protocol::lora::VersionTag::of(&"1.1.0".parse().unwrap()).0);
    let updated = base64_of(&hex::decode(format!("18{tag}0001c80007")).unwrap());
    let unknown_tag = base64_of(&hex::decode("18deadbeef0008c80007").unwrap());
    let reading = r#"{"deviceInfo":{"devEui":"70b3d57ed0000003"},"fPort":1,"data":"AAECAw=="}"#;
    let summary = watch_while(
        &broker,
        NetworkServer::chirpstack("app").unwrap(),
        &store,
        &[
            (
                "application/app/device/70b3d57ed0000001/event/up",
                status("70b3d57ed0000001", &updated),
            ),
            (
                "application/app/device/70b3d57ed0000002/event/up",
                status("70b3d57ed0000002", &unknown_tag),
            ),
            (
                "application/app/device/70b3d57ed0000003/event/up",
                reading.to_owned(),
            ),
            (
                "application/app/device/70b3d57ed0000004/event/up",
                status("70b3d57ed0000004", "Ew=="),
            ),
            (
                "application/other/device/70b3d57ed0000005/event/up",
                status("70b3d57ed0000005", &updated),
            ),
        ],
        4, // the other application's is never seen
    )
    .await;
    assert_eq!(
        summary,
        WatchSummary {
            stored: 2,
            other_port: 1,
            malformed: 1
        }
    );
    assert_eq!(
        csv(&store),
        "time,device_id,from_version,to_version,state,error,source,verified,van_lat,van_lon,van_fix_time\n\
         2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.1.0,1.1.0,UPDATED,,lora,network,,,\n\
         2025-06-03T09:10:00.000Z,70B3D57ED0000002,tag:deadbeef,tag:deadbeef,WIFI_JOIN_FAILED,,lora,network,,,\n"
    );
}

#[tokio::test]
async fn tts_status_uplinks_are_stored_as_lora_rows() {
    let broker = Mosquitto::start();
    let dir = tempfile::TempDir::new().unwrap();
    let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
    let message = r#"{"end_device_ids":{"device_id":"eui-70b3d57ed0000009","dev_eui":"70B3D57ED0000009"},
        "received_at":"2025-06-03T09:11:00.250Z",
        "uplink_message":{"f_port":200,"f_cnt":9,"frm_payload":"GN6tvu8BCMgABw=="}}"#;
    let summary = watch_while(
        &broker,
        NetworkServer::tts("meters@acme", DeviceIds::default()).unwrap(),
        &store,
        &[(
            "v3/meters@acme/devices/eui-70b3d57ed0000009/up",
            message.to_owned(),
        )],
        1,
    )
    .await;
    assert_eq!(summary.stored, 1);
    assert!(
        csv(&store).ends_with(
            "2025-06-03T09:11:00.250Z,70B3D57ED0000009,tag:deadbeef,tag:deadbeef,WIFI_JOIN_FAILED,,lora,network,,,\n"
        ),
        "{}",
        csv(&store)
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
