//! `campaign push` against mosquitto: topics, messages, exactly once
//! across a broker restart and across runs.

use std::path::Path;
use std::time::Duration;

use otavan_campaign::deveui::DevEui;
use otavan_campaign::mqtt::{DeviceIds, NetworkServer};
use otavan_campaign::plan_csv::{self, PlanRow};
use otavan_campaign::progress::{self, Progress};
use otavan_campaign::push::{PushConfig, PushEvent, PushSummary, push};
use otavan_protocol::lora::Wake;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::broker::{Mosquitto, Subscriber};

/// A plan of `n` meters whose WAKEs are due `gap` apart from now + `gap`.
fn rows(n: u8, gap: Duration) -> Vec<PlanRow> {
    let now = OffsetDateTime::now_utc();
    (0..n)
        .map(|i| PlanRow {
            dev_eui: DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, i]),
            enqueue_at: now + gap * (u32::from(i) + 1),
            wake: Wake::new(
                7,
                Duration::from_secs(3600 + u64::from(i)),
                Duration::from_secs(600),
                1,
                None,
            )
            .unwrap(),
            expected_contact_at: now + Duration::from_secs(3700),
            expected_contact_s: 30.0,
            fport: 200,
        })
        .collect()
}

fn config(broker: &Mosquitto, server: NetworkServer) -> PushConfig {
    PushConfig {
        broker: broker.url().parse().unwrap(),
        server,
        client_id: "otavan-push-test".into(),
        max_late: Duration::from_secs(60),
        ack_timeout: Duration::from_secs(5),
        chirpstack_api: None,
    }
}

/// Writes the plan and pushes it, as `campaign push` does.
async fn push_plan(
    dir: &Path,
    rows: &[PlanRow],
    config: &PushConfig,
) -> (PushSummary, Vec<PushEvent>) {
    let plan = dir.join("PLAN.csv");
    plan_csv::write(&plan, rows).unwrap();
    let digest = progress::digest(&std::fs::read(&plan).unwrap());
    let mut progress = Progress::open(&progress::path_for(&plan), &digest).unwrap();
    let rows = plan_csv::read(&plan).unwrap();
    let mut events = Vec::new();
    let summary = push(&rows, &mut progress, config, &mut |e| events.push(e))
        .await
        .unwrap();
    (summary, events)
}

#[tokio::test]
async fn chirpstack_downlinks_carry_each_wake_on_its_device_topic() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "cs-sub", "application/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let plan = rows(3, Duration::from_millis(100));
    let server = NetworkServer::chirpstack("4d5e6f").unwrap();
    let (summary, _) = push_plan(dir.path(), &plan, &config(&broker, server)).await;
    assert_eq!(
        (summary.sent, summary.already_sent, summary.skipped.len()),
        (3, 0, 0)
    );
    let got = sub.wait_for(3, Duration::from_secs(10)).await;
    for (row, (topic, message)) in plan.iter().zip(&got) {
        assert_eq!(
            *topic,
            format!(
                "application/4d5e6f/device/{}/command/down",
                row.dev_eui.lower()
            )
        );
        let message: Value = serde_json::from_str(message).unwrap();
        let data = base64_of(&row.wake.encode());
        assert_eq!(
            message,
            json!({"devEui": row.dev_eui.lower(), "confirmed": false, "fPort": 200, "data": data})
        );
    }
    // Sent in order, none before its time.
    assert!(OffsetDateTime::now_utc() >= plan[2].enqueue_at);
}

#[tokio::test]
async fn tts_downlinks_are_pushed_to_the_device_queue() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "tts-sub", "v3/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let plan = rows(2, Duration::from_millis(50));
    let server = NetworkServer::tts("meters@acme", DeviceIds::default()).unwrap();
    push_plan(dir.path(), &plan, &config(&broker, server)).await;
    let got = sub.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].0,
        "v3/meters@acme/devices/eui-70b3d57ed0000000/down/push"
    );
    let message: Value = serde_json::from_str(&got[1].1).unwrap();
    assert_eq!(
        message,
        json!({"downlinks": [{"f_port": 200, "frm_payload": base64_of(&plan[1].wake.encode()), "priority": "NORMAL"}]})
    );
}

#[tokio::test]
async fn a_broker_restart_mid_push_loses_and_duplicates_nothing() {
    let mut broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "restart-sub", "application/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let plan = rows(10, Duration::from_millis(300));
    let server = NetworkServer::chirpstack("app").unwrap();
    let config = config(&broker, server);
    let pushing = {
        let (dir, plan, config) = (dir.path().to_owned(), plan.clone(), config.clone());
        tokio::spawn(async move { push_plan(&dir, &plan, &config).await })
    };
    // Stop after the third WAKE, for long enough that the fourth and fifth
    // fall due while the broker is down, then start it again.
    sub.wait_for(3, Duration::from_secs(10)).await;
    broker.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    broker.resume();
    let (summary, events) = pushing.await.unwrap();
    assert_eq!((summary.sent, summary.skipped.len()), (10, 0), "{events:?}");
    // A WAKE fell due while the broker was down: connecting failed and
    // was retried with backoff.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PushEvent::Disconnected { retry_in, .. } if !retry_in.is_zero())),
        "no retry while the broker was down: {events:?}"
    );
    let got = sub.wait_for(10, Duration::from_secs(20)).await;
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = sub.messages.lock().unwrap().clone();
    assert_eq!(got_all.len(), 10, "{got_all:?}");
    let mut topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    assert_eq!(topics.len(), 10);
    // Every WAKE is in the progress file; pushing again sends nothing.
    let (again, _) = push_plan(dir.path(), &plan, &config).await;
    assert_eq!((again.sent, again.already_sent), (0, 10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sub.messages.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn wakes_past_their_time_are_skipped_not_sent_late() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "late-sub", "application/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let mut plan = rows(2, Duration::from_millis(50));
    plan[0].enqueue_at -= Duration::from_secs(600);
    let server = NetworkServer::chirpstack("app").unwrap();
    let (summary, _) = push_plan(dir.path(), &plan, &config(&broker, server)).await;
    assert_eq!(summary.sent, 1);
    assert_eq!(summary.skipped, [plan[0].dev_eui.to_string()]);
    let got = sub.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].0.contains(&plan[1].dev_eui.lower()));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
