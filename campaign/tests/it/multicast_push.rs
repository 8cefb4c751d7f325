//! `campaign push` of a multicast plan to The Things Stack through
//! mosquitto: each member's TS005 setup on its own device topic, then the
//! group's WAKE to its multicast device at an absolute time, each once.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use otavan_campaign::deveui::DevEui;
use otavan_campaign::groups_csv::{self, GroupRow};
use otavan_campaign::mqtt::{DeviceIds, NetworkServer};
use otavan_campaign::multicast::{self, Costs, Delivery, Group};
use otavan_campaign::progress::{self, Progress};
use otavan_campaign::push::{Downlink, PushConfig, PushSummary, push_downlinks};
use otavan_protocol::lora::Wake;
use otavan_protocol::lora::multicast::{McRequest, McRootKey, OTAVAN_SETUP_FPORT};
use otavan_protocol::region::Region;
use serde_json::Value;
use time::OffsetDateTime;

use crate::broker::{Mosquitto, Subscriber};

const ADDR: u32 = 0x0170_7000;
const KEY: [u8; 16] = [0x5a; 16];

fn root(i: u8) -> McRootKey {
    McRootKey::from_gen_app_key(&[i; 16])
}

fn member(i: u8) -> DevEui {
    DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 1, i])
}

/// A group of three, its setups due 50 ms apart from now, its WAKE after
/// them for transmission 10 min later.
fn rows() -> Vec<GroupRow> {
    let now = OffsetDateTime::now_utc();
    let session_at = (now + Duration::from_secs(600))
        .replace_nanosecond(0)
        .unwrap();
    let group = Group {
        addr: ADDR,
        key: KEY,
        van: 0,
        members: (0..3).map(member).collect(),
        session_at,
        costs: Costs {
            unicast: 0,
            multicast: 0,
            unicast_peak_hour: 0,
            hour_budget: 0,
            class_c_listen: 0,
            wifi_wait: 0,
            rx_amps: 0.0,
            wait_amps: 0.0,
            volts: 0.0,
            max_extra_j: 0.0,
        },
        delivery: Delivery::Multicast,
    };
    let mut rows: Vec<GroupRow> = (0..3u8)
        .map(|i| GroupRow::Setup {
            mc_addr: ADDR,
            dev_eui: member(i),
            enqueue_at: now + Duration::from_millis(50 * u64::from(i)),
            send_by: now + Duration::from_secs(300),
            fport: OTAVAN_SETUP_FPORT,
            frame: multicast::setup_frame(&group, &root(i), Region::Eu868),
        })
        .collect();
    rows.push(GroupRow::Wake {
        mc_addr: ADDR,
        enqueue_at: now + Duration::from_millis(100),
        send_by: session_at - Duration::from_secs(30),
        transmit_at: session_at + Duration::from_secs(5),
        fport: 200,
        wake: Wake::new(
            7,
            Duration::from_secs(60),
            Duration::from_secs(600),
            0,
            None,
        )
        .unwrap(),
    });
    rows
}

fn config(broker: &Mosquitto) -> PushConfig {
    PushConfig {
        broker: broker.url().parse().unwrap(),
        server: NetworkServer::tts("meters@acme", DeviceIds::default()).unwrap(),
        client_id: "otavan-push-mc".into(),
        max_late: Duration::from_secs(60),
        ack_timeout: Duration::from_secs(5),
        chirpstack_api: None,
    }
}

/// Writes GROUPS.csv, reads it back and pushes it, as `campaign push` does.
async fn push_groups(dir: &Path, rows: &[GroupRow], config: &PushConfig) -> PushSummary {
    let path = dir.join("GROUPS.csv");
    groups_csv::write(&path, rows).unwrap();
    let digest = progress::digest(&std::fs::read(&path).unwrap());
    let mut progress = Progress::open(&progress::path_for(&path), &digest).unwrap();
    let downlinks: Vec<Downlink> = groups_csv::read(&path)
        .unwrap()
        .iter()
        .map(|r| Downlink::group_row(r, &config.server, &["gw-north".into()]).unwrap())
        .collect();
    push_downlinks(&downlinks, &mut progress, config, &mut |_| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn setups_then_the_group_wake_reach_the_things_stack_once() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "mc-sub", "v3/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let rows = rows();
    let summary = push_groups(dir.path(), &rows, &config(&broker)).await;
    assert_eq!((summary.sent, summary.skipped.len()), (4, 0));
    let got = sub.wait_for(4, Duration::from_secs(10)).await;
    // The setups first, each on its meter's topic, decoding (with the
    // meter's root key) to the group's key and a class C session.
    for (i, (topic, message)) in got[..3].iter().enumerate() {
        assert_eq!(
            *topic,
            format!(
                "v3/meters@acme/devices/eui-{}/down/push",
                member(i as u8).lower()
            )
        );
        let message: Value = serde_json::from_str(message).unwrap();
        let downlink = &message["downlinks"][0];
        assert_eq!(downlink["f_port"], 201);
        let frame = STANDARD
            .decode(downlink["frm_payload"].as_str().unwrap())
            .unwrap();
        let requests = McRequest::decode_all(&frame).unwrap();
        let McRequest::GroupSetup(setup) = &requests[0] else {
            panic!("{requests:?}")
        };
        assert_eq!(setup.mc_addr, ADDR);
        assert_eq!(
            root(i as u8).decrypt_group_key(&setup.mc_key_encrypted),
            KEY
        );
        assert!(matches!(&requests[1], McRequest::ClassCSession(c)
            if c.timeout_exponent == multicast::CLASS_C_EXPONENT && c.frequency_hz == 869_525_000));
    }
    // Then the group's WAKE, to its multicast device at the session.
    let (topic, message) = &got[3];
    assert_eq!(topic, "v3/meters@acme/devices/mc-01707000/down/push");
    let message: Value = serde_json::from_str(message).unwrap();
    let downlink = &message["downlinks"][0];
    assert_eq!(downlink["f_port"], 200);
    let payload = STANDARD
        .decode(downlink["frm_payload"].as_str().unwrap())
        .unwrap();
    let GroupRow::Wake {
        wake, transmit_at, ..
    } = &rows[3]
    else {
        unreachable!()
    };
    assert_eq!(Wake::decode(&payload).unwrap(), *wake);
    assert_eq!(
        downlink["class_b_c"]["absolute_time"],
        otavan_campaign::clock::format(*transmit_at)
    );
    assert_eq!(
        downlink["class_b_c"]["gateways"][0]["gateway_ids"]["gateway_id"],
        "gw-north"
    );
    // Pushed again: all four are in the progress file, nothing is sent.
    let again = push_groups(dir.path(), &rows, &config(&broker)).await;
    assert_eq!((again.sent, again.already_sent), (0, 4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sub.messages.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_setup_past_its_send_by_is_skipped_and_the_group_still_goes() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "mc-late-sub", "v3/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let mut rows = rows();
    if let GroupRow::Setup {
        send_by,
        enqueue_at,
        ..
    } = &mut rows[0]
    {
        *enqueue_at -= Duration::from_secs(900);
        *send_by = *enqueue_at + Duration::from_secs(60);
    }
    let summary = push_groups(dir.path(), &rows, &config(&broker)).await;
    assert_eq!(summary.skipped, [format!("setup-{}", member(0))]);
    assert_eq!(summary.sent, 3);
    let got = sub.wait_for(3, Duration::from_secs(10)).await;
    assert!(got[2].0.ends_with("/mc-01707000/down/push"), "{got:?}");
}
