//! `campaign push` of a standing plan to The Things Stack through
//! mosquitto: the members' installation setups on their device topics,
//! then the group's WAKE to its multicast device at an absolute time in
//! its slot; a member row sends nothing, a late slot WAKE is skipped.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use otavan_campaign::clock;
use otavan_campaign::deveui::DevEui;
use otavan_campaign::groups_csv::{self, GroupKeys, GroupRow};
use otavan_campaign::mqtt::{DeviceIds, NetworkServer};
use otavan_campaign::progress::{self, Progress};
use otavan_campaign::push::{Downlink, PushConfig, PushSummary, push_downlinks};
use otavan_planning::standing;
use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::Wake;
use otavan_protocol::lora::multicast::{McRequest, McRootKey, OTAVAN_SETUP_FPORT};
use otavan_protocol::region::Region;
use serde_json::Value;
use time::OffsetDateTime;

use crate::broker::{Mosquitto, Subscriber};

const GROUP: u32 = 0x0180_0000;
const LATE_GROUP: u32 = 0x0180_0001;

fn keys() -> HashMap<u32, GroupKeys> {
    HashMap::from([
        (GROUP, GroupKeys::new(GROUP, [0x5a; 16])),
        (LATE_GROUP, GroupKeys::new(LATE_GROUP, [0x6b; 16])),
    ])
}

fn root(i: u8) -> McRootKey {
    McRootKey::from_gen_app_key(&[i; 16])
}

fn member(i: u8) -> DevEui {
    DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 3, i])
}

/// The slot (seconds after 00:00 UTC) whose frame goes out at `at`.
fn slot_of(at: OffsetDateTime) -> u32 {
    (at.unix_timestamp() - 2).rem_euclid(86_400) as u32
}

fn wake() -> Wake {
    Wake::new(
        9,
        Duration::from_secs(3600),
        Duration::from_secs(900),
        0,
        None,
    )
    .unwrap()
}

/// Group 01800000: two members set up now, a third already standing,
/// and its WAKE in the slot two seconds from now; group 01800001's WAKE
/// was due two minutes ago.
fn rows() -> Vec<GroupRow> {
    let now = OffsetDateTime::now_utc();
    let transmit_at = (now + Duration::from_secs(3))
        .replace_nanosecond(0)
        .unwrap();
    let slot_s = slot_of(transmit_at);
    let first_slot = Duration::from_secs((transmit_at.unix_timestamp() - 2) as u64);
    let mut rows: Vec<GroupRow> = (0..2u8)
        .map(|i| GroupRow::Standing {
            mc_addr: GROUP,
            dev_eui: member(i),
            slot_s,
            // The same second as the WAKE's: the push orders them by
            // (enqueue_at, last, id), the setups first. (Offsets of 50 ms
            // crossed into the next second now and then, after the WAKE.)
            enqueue_at: now.replace_nanosecond(0).unwrap(),
            send_by: now + Duration::from_secs(300),
            fport: OTAVAN_SETUP_FPORT,
            frame: standing::setup_frame(GROUP, &[0x5a; 16], &root(i), first_slot, Region::Eu868),
        })
        .collect();
    rows.push(GroupRow::Member {
        mc_addr: GROUP,
        dev_eui: member(2),
        slot_s,
    });
    rows.push(GroupRow::SlotWake {
        mc_addr: GROUP,
        slot_s,
        enqueue_at: now.replace_nanosecond(0).unwrap(),
        send_by: transmit_at,
        transmit_at,
        fport: 200,
        wake: wake(),
    });
    let late = transmit_at - Duration::from_secs(120);
    rows.push(GroupRow::SlotWake {
        mc_addr: LATE_GROUP,
        slot_s: slot_of(late),
        enqueue_at: late - Duration::from_secs(600),
        send_by: late - Duration::from_secs(30),
        transmit_at: late,
        fport: 200,
        wake: wake(),
    });
    rows
}

fn config(broker: &Mosquitto) -> PushConfig {
    PushConfig {
        broker: broker.url().parse().unwrap(),
        server: NetworkServer::tts("meters@acme", DeviceIds::default()).unwrap(),
        client_id: "otavan-push-standing".into(),
        max_late: Duration::from_secs(60),
        ack_timeout: Duration::from_secs(5),
        chirpstack_api: None,
    }
}

/// Writes GROUPS.csv, reads it back (checked) and pushes it, as
/// `campaign push --groups` does.
async fn push_groups(dir: &Path, rows: &[GroupRow], config: &PushConfig) -> PushSummary {
    let path = dir.join("GROUPS.csv");
    groups_csv::write(&path, rows).unwrap();
    let digest = progress::digest(&std::fs::read(&path).unwrap());
    let mut progress = Progress::open(&progress::path_for(&path), &digest).unwrap();
    let downlinks = Downlink::group_rows(
        &groups_csv::read(&path).unwrap(),
        &config.server,
        &["gw-north".into()],
        &keys(),
        Region::Eu868,
    )
    .unwrap();
    assert_eq!(downlinks.len(), 4, "the member row sends nothing");
    push_downlinks(&downlinks, &mut progress, config, &mut |_| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn setups_then_the_slot_wake_reach_the_things_stack_once_and_a_late_one_is_skipped() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port(), "standing-sub", "v3/#").await;
    let dir = tempfile::TempDir::new().unwrap();
    let rows = rows();
    let summary = push_groups(dir.path(), &rows, &config(&broker)).await;
    let GroupRow::SlotWake {
        transmit_at: late, ..
    } = rows[4]
    else {
        unreachable!()
    };
    assert_eq!(
        summary.skipped,
        [format!("group-01800001@{}", clock::format(late))]
    );
    assert_eq!(summary.sent, 3);
    let got = sub.wait_for(3, Duration::from_secs(10)).await;
    let GroupRow::SlotWake {
        transmit_at,
        slot_s,
        ..
    } = rows[3]
    else {
        unreachable!()
    };
    // The setups first, each on its meter's topic: the group key for
    // that meter's root key only, and a daily 8 s slot at slot_s.
    for (i, (topic, message)) in got[..2].iter().enumerate() {
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
        assert_eq!(frame.len(), standing::SETUP_LEN);
        let requests = McRequest::decode_all(&frame).unwrap();
        let (McRequest::GroupSetup(setup), McRequest::StandingSession(session)) =
            (&requests[0], &requests[1])
        else {
            panic!("{requests:?}")
        };
        assert_eq!(setup.mc_addr, GROUP);
        let group_key = root(i as u8).decrypt_group_key(&setup.mc_key_encrypted);
        assert_eq!(group_key, keys()[&GROUP].mc_key);
        assert_ne!(
            root(1 - i as u8).decrypt_group_key(&setup.mc_key_encrypted),
            group_key
        );
        let first = DeviceTime {
            gps_seconds: session.first_slot,
            fraction: 0,
        }
        .to_unix()
        .as_secs();
        assert_eq!(first % 86_400, u64::from(slot_s));
        assert_eq!((session.period_s(), session.window_s()), (86_400, 8));
        assert_eq!(session.frequency_hz, 869_525_000);
    }
    // Then the group's WAKE, to its multicast device, at an absolute time
    // inside the slot's window.
    let (topic, message) = &got[2];
    assert_eq!(topic, "v3/meters@acme/devices/mc-01800000/down/push");
    let message: Value = serde_json::from_str(message).unwrap();
    let downlink = &message["downlinks"][0];
    assert_eq!(downlink["f_port"], 200);
    let payload = STANDARD
        .decode(downlink["frm_payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(Wake::decode(&payload).unwrap(), wake());
    let absolute = downlink["class_b_c"]["absolute_time"].as_str().unwrap();
    assert_eq!(absolute, clock::format(transmit_at));
    let into_slot =
        (clock::parse(absolute).unwrap().unix_timestamp() - i64::from(slot_s)).rem_euclid(86_400);
    assert!((0..8).contains(&into_slot), "{into_slot}");
    assert_eq!(
        downlink["class_b_c"]["gateways"][0]["gateway_ids"]["gateway_id"],
        "gw-north"
    );
    // Pushed again: the three are in the progress file, the late one is
    // still late; nothing is sent.
    let again = push_groups(dir.path(), &rows, &config(&broker)).await;
    assert_eq!((again.sent, again.already_sent), (0, 3));
    assert_eq!(again.skipped.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sub.messages.lock().unwrap().len(), 3);
}
