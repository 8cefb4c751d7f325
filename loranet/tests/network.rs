//! The real device stack (`lorawan_device`'s async `Device`) against the
//! simulated network, in virtual time.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lorawan::parser::{DataHeader, DataPayload, FRMPayload, PhyPayload, parse};
use lorawan_device::Prng;
use lorawan_device::async_device::{DR, Device, JoinResponse, SendResponse};
use lorawan_device::default_crypto::DefaultFactory;
use lorawan_device::region::{Configuration, Region as DeviceRegion};
use otavan_loranet::gateway::DownlinkKind;
use otavan_loranet::keys::eui_hex;
use otavan_loranet::{
    DeviceKeys, FrameDirection, FrameKind, FrameRecord, NetworkConfig, NetworkServer,
    ReceivedFrame, RejectReason, Reply, RxWindow, SimRadio, SimTimer, UplinkOutcome,
};
use serde_json::Value;
use tokio::time::{Instant, sleep};

type SimDevice = Device<SimRadio, DefaultFactory, SimTimer, Prng>;

fn device(network: &NetworkServer, seed: u64) -> SimDevice {
    device_in(network, DeviceRegion::EU868, seed)
}

fn device_in(network: &NetworkServer, region: DeviceRegion, seed: u64) -> SimDevice {
    Device::new_with_seed(
        Configuration::new(region),
        SimRadio::new(network.clone()),
        SimTimer::new(),
        seed,
    )
}

/// Joins, retrying every `retry` until the JoinAccept arrives.
async fn join(device: &mut SimDevice, keys: &DeviceKeys, retry: Duration) {
    for _ in 0..20 {
        match device.join(&keys.join_mode()).await {
            Ok(JoinResponse::JoinSuccess) => return,
            Ok(JoinResponse::NoJoinAccept) => sleep(retry).await,
            Err(e) => panic!("join failed: {e:?}"),
        }
    }
    panic!("no JoinAccept after 20 attempts");
}

fn records(network: &NetworkServer) -> Vec<FrameRecord> {
    network
        .frame_log()
        .iter()
        .map(|line| serde_json::from_str(line).expect("a FrameRecord line"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn otaa_join_derives_the_same_session() {
    let network = NetworkServer::new(NetworkConfig::eu868(1));
    let keys = DeviceKeys::simulated(1);
    network.register(keys);
    let mut dev = device(&network, 11);

    let t0 = Instant::now();
    let joined = dev.join(&keys.join_mode()).await.unwrap();
    assert!(matches!(joined, JoinResponse::JoinSuccess));
    // Join request at SF12 (about 1.5 s), accept in RX1 5 s later (SF12,
    // about 1.3 s): the join takes under 8 s of virtual time.
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());

    let device_session = dev.get_session().unwrap().clone();
    let ns = network.session(keys.dev_eui).unwrap();
    assert_eq!(ns.nwk_s_key, device_session.newskey);
    assert_eq!(ns.app_s_key, device_session.appskey);
    assert_eq!(ns.dev_addr.to_le_bytes(), device_session.devaddr.as_ref());
    // NetID 0x13: DevAddr 26xxxxxx or 27xxxxxx.
    assert_eq!(ns.dev_addr >> 25, 0x13);

    // The network decrypts the device's uplinks to the bytes it sent.
    let reply = dev
        .send(&[0xde, 0xad, 0xbe, 0xef], 42, false)
        .await
        .unwrap();
    assert!(matches!(reply, SendResponse::RxComplete));
    dev.send(b"second", 43, false).await.unwrap();
    let uplinks = network.uplinks_of(keys.dev_eui);
    assert_eq!(uplinks.len(), 2);
    assert_eq!(uplinks[0].payload, [0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(uplinks[0].fport, Some(42));
    assert_eq!(uplinks[0].fcnt, 0);
    assert_eq!(uplinks[1].payload, b"second");
    assert_eq!(uplinks[1].fcnt, 1);
    assert!(uplinks[1].at > uplinks[0].at);
    assert!(!uplinks[0].confirmed);
    assert_eq!(network.session(keys.dev_eui).unwrap().next_fcnt_up, 2);

    // The JoinAccept went out exactly JOIN_ACCEPT_DELAY1 after the request.
    let log = records(&network);
    let request = log
        .iter()
        .find(|r| r.kind == FrameKind::JoinRequest)
        .unwrap();
    let accept = log
        .iter()
        .find(|r| r.kind == FrameKind::JoinAccept)
        .unwrap();
    assert_eq!(accept.window, Some(RxWindow::Rx1));
    assert!((accept.time_s - request.time_s - 5.0).abs() < 1e-9);
    assert_eq!(accept.frequency_hz, request.frequency_hz);
    let stats = network.stats();
    assert_eq!(stats.joins_accepted, 1);
    assert_eq!(stats.uplinks_received, 2);
    assert_eq!(stats.rx1_transmissions, 1);
    assert_eq!(dev.get_radio().stats().uplinks, 3);
    assert_eq!(dev.get_radio().stats().frames_received, 1);
}

#[tokio::test(start_paused = true)]
async fn replays_and_forgeries_are_rejected() {
    let network = NetworkServer::new(NetworkConfig::eu868(2));
    let keys = DeviceKeys::simulated(2);
    network.register(keys);
    let mut dev = device(&network, 12);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    dev.send(b"one", 1, false).await.unwrap();

    let first = network.uplinks()[0].clone();
    let replay = ReceivedFrame {
        phy: first.phy.clone(),
        channel: first.channel,
        end: Instant::now(),
    };
    assert_eq!(
        network.receive(replay.clone()),
        UplinkOutcome::Rejected(RejectReason::FcntReplay)
    );
    // A flipped payload bit breaks the MIC.
    let mut forged = replay.clone();
    forged.phy[9] ^= 0x01;
    forged.phy[6] = 1; // FCnt 1: not a replay
    assert_eq!(
        network.receive(forged),
        UplinkOutcome::Rejected(RejectReason::InvalidMic)
    );
    // Garbage and downlink types.
    let garbage = ReceivedFrame {
        phy: vec![0x40, 1, 2],
        ..replay.clone()
    };
    assert_eq!(
        network.receive(garbage),
        UplinkOutcome::Rejected(RejectReason::Malformed)
    );
    let accept = network.gateway_transmissions()[0].phy.clone();
    let not_up = ReceivedFrame {
        phy: accept,
        ..replay.clone()
    };
    assert_eq!(
        network.receive(not_up),
        UplinkOutcome::Rejected(RejectReason::NotAnUplink)
    );

    // The device carries on: its next frame (FCnt 1) is accepted.
    dev.send(b"two", 1, false).await.unwrap();
    let uplinks = network.uplinks();
    assert_eq!(uplinks.len(), 2);
    assert_eq!((uplinks[1].fcnt, &uplinks[1].payload[..]), (1, &b"two"[..]));
    assert_eq!(network.stats().uplinks_rejected, 4);

    // A replayed JoinRequest (same DevNonce) is refused too.
    let join_request = records(&network)
        .into_iter()
        .find(|r| r.kind == FrameKind::JoinRequest)
        .unwrap();
    let again = ReceivedFrame {
        phy: hex::decode(join_request.phy_payload).unwrap(),
        ..replay.clone()
    };
    assert_eq!(
        network.receive(again),
        UplinkOutcome::Rejected(RejectReason::DevNonceReused)
    );
    // So is a device the network does not know.
    let stranger = DeviceKeys::simulated(99);
    let mut other = device(&network, 13);
    let refused = other.join(&stranger.join_mode()).await.unwrap();
    assert!(matches!(refused, JoinResponse::NoJoinAccept));
    let last = records(&network).pop().unwrap();
    assert_eq!(last.status, "unknown_dev_eui");
    assert_eq!(
        last.dev_eui.as_deref(),
        Some(&eui_hex(&stranger.dev_eui)[..])
    );
}

#[tokio::test(start_paused = true)]
async fn queued_downlink_arrives_after_the_next_uplink() {
    let network = NetworkServer::new(NetworkConfig::eu868(3));
    let keys = DeviceKeys::simulated(3);
    network.register(keys);
    let mut dev = device(&network, 14);
    join(&mut dev, &keys, Duration::from_secs(10)).await;

    // Queued while the device sleeps: nothing happens until it uplinks.
    assert_eq!(
        network.enqueue(keys.dev_eui, 10, &[0x01, 0x02, 0x03], false),
        Ok(1)
    );
    assert_eq!(network.enqueue(keys.dev_eui, 11, b"second", true), Ok(2));
    sleep(Duration::from_secs(600)).await;
    assert_eq!(network.queued(keys.dev_eui), 2);

    let reply = dev.send(b"status", 2, false).await.unwrap();
    assert!(matches!(reply, SendResponse::DownlinkReceived(0)));
    assert_eq!(
        dev.get_radio().last_outcome(),
        Some(&UplinkOutcome::Data {
            dev_eui: keys.dev_eui,
            fcnt: 0,
            reply: Reply::Sent {
                window: RxWindow::Rx1,
                fcnt_down: 0,
                kind: DownlinkKind::Data
            }
        })
    );
    let down = dev.take_downlink().unwrap();
    assert_eq!(down.fport, 10);
    assert_eq!(&down.data[..], &[0x01, 0x02, 0x03]);
    assert_eq!(network.queued(keys.dev_eui), 1);
    // FPending told the device there is more.
    let log = records(&network);
    let first_down = log
        .iter()
        .find(|r| r.kind == FrameKind::UnconfirmedDataDown)
        .unwrap();
    let phy = hex::decode(&first_down.phy_payload).unwrap();
    assert_eq!(phy[5] & 0x10, 0x10);

    sleep(Duration::from_secs(200)).await;
    let reply = dev.send(b"status", 2, false).await.unwrap();
    assert!(matches!(reply, SendResponse::DownlinkReceived(1)));
    let down = dev.take_downlink().unwrap();
    assert_eq!((down.fport, &down.data[..]), (11, &b"second"[..]));
    assert_eq!(network.queued(keys.dev_eui), 0);

    // The confirmed downlink is acknowledged by the next uplink.
    sleep(Duration::from_secs(200)).await;
    let reply = dev.send(b"status", 2, false).await.unwrap();
    assert!(matches!(reply, SendResponse::RxComplete));
    assert!(network.uplinks().last().unwrap().ack);
    let stats = network.stats();
    assert_eq!(stats.downlinks_sent, 2);
    assert_eq!(stats.confirmed_downlinks_acked, 1);
    assert_eq!(stats.downlinks_deferred, 0);
    assert!(
        network
            .gateway_transmissions()
            .iter()
            .all(|tx| tx.dev_eui == Some(keys.dev_eui))
    );

    // A confirmed uplink with nothing queued gets a bare ACK.
    sleep(Duration::from_secs(200)).await;
    let reply = dev.send(b"daily", 3, true).await.unwrap();
    assert!(matches!(reply, SendResponse::DownlinkReceived(2)));
    assert!(dev.take_downlink().is_none());
    assert_eq!(network.stats().acks_sent, 1);
    assert_eq!(
        network.gateway_transmissions().last().unwrap().kind,
        DownlinkKind::Ack
    );
    assert_eq!(dev.get_radio().stats().duty_cycle_violations, 0);
}

#[tokio::test(start_paused = true)]
async fn downlink_for_a_silent_device_stays_queued() {
    let network = NetworkServer::new(NetworkConfig::eu868(4));
    let silent = DeviceKeys::simulated(40);
    let chatty = DeviceKeys::simulated(41);
    let never_joined = DeviceKeys::simulated(42);
    for keys in [silent, chatty, never_joined] {
        network.register(keys);
    }
    let mut silent_dev = device(&network, 15);
    join(&mut silent_dev, &silent, Duration::from_secs(10)).await;
    sleep(Duration::from_secs(200)).await;
    let mut chatty_dev = device(&network, 16);
    join(&mut chatty_dev, &chatty, Duration::from_secs(10)).await;

    network.enqueue(silent.dev_eui, 5, b"wake", false).unwrap();
    network
        .enqueue(never_joined.dev_eui, 5, b"wake", false)
        .unwrap();
    for _ in 0..5 {
        sleep(Duration::from_secs(300)).await;
        let reply = chatty_dev.send(b"tick", 1, false).await.unwrap();
        assert!(matches!(reply, SendResponse::RxComplete));
        assert!(chatty_dev.take_downlink().is_none());
    }
    assert_eq!(network.queued(silent.dev_eui), 1);
    assert_eq!(network.queued(never_joined.dev_eui), 1);
    let stats = network.stats();
    assert_eq!(stats.downlinks_sent, 0);
    assert_eq!(stats.downlinks_deferred, 0);
    assert!(
        network
            .gateway_transmissions()
            .iter()
            .all(|tx| tx.kind == DownlinkKind::JoinAccept)
    );

    // Enqueue errors.
    let unknown = DeviceKeys::simulated(43).dev_eui;
    assert!(network.enqueue(unknown, 5, b"x", false).is_err());
    assert!(network.enqueue(silent.dev_eui, 0, b"x", false).is_err());
    assert!(network.enqueue(silent.dev_eui, 224, b"x", false).is_err());
    assert!(
        network
            .enqueue(silent.dev_eui, 5, &[0; 243], false)
            .is_err()
    );

    // Once the silent device speaks, it gets its command.
    silent_dev.send(b"hello", 1, false).await.unwrap();
    let down = silent_dev.take_downlink().unwrap();
    assert_eq!((down.fport, &down.data[..]), (5, &b"wake"[..]));
}

/// Checks that no sub-band's transmissions break its duty cycle: each
/// starts at least ToA/DC after the previous one in the same sub-band, and
/// no two transmissions overlap.
fn assert_duty_cycle_kept(network: &NetworkServer) {
    let mut txs = network.gateway_transmissions();
    txs.sort_by_key(|tx| tx.at);
    for pair in txs.windows(2) {
        assert!(
            pair[0].at + pair[0].airtime <= pair[1].at,
            "overlap: {pair:?}"
        );
    }
    let bands: std::collections::BTreeMap<_, _> = txs
        .iter()
        .filter_map(|tx| tx.sub_band)
        .map(|b| (b.name, b.duty_cycle_divisor))
        .collect();
    for (name, divisor) in bands {
        let in_band: Vec<_> = txs
            .iter()
            .filter(|tx| tx.sub_band.is_some_and(|b| b.name == name))
            .collect();
        for pair in in_band.windows(2) {
            assert!(
                pair[1].at >= pair[0].at + pair[0].airtime * divisor,
                "{name}: {:?} then {:?}",
                pair[0].at,
                pair[1].at
            );
        }
        // Over any hour, airtime stays within the limit (plus one frame).
        for (i, first) in in_band.iter().enumerate() {
            let hour_end = first.at + Duration::from_secs(3600);
            let used: Duration = in_band[i..]
                .iter()
                .take_while(|tx| tx.at < hour_end)
                .map(|tx| tx.airtime)
                .sum();
            assert!(
                used <= Duration::from_secs(3600) / divisor + first.airtime,
                "{name}: {used:?} in an hour"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn gateway_duty_cycle_defers_downlinks() {
    const DEVICES: u64 = 10;
    const PER_DEVICE: usize = 3;
    let network = NetworkServer::new(NetworkConfig::eu868(5));
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let keys = DeviceKeys::simulated(100 + i);
        network.register(keys);
        let mut dev = device(&network, 1000 + i);
        // Join fast (SF7), retrying while the gateway is in its off-time.
        dev.set_datarate(DR::_5);
        join(&mut dev, &keys, Duration::from_secs(20)).await;
        dev.set_datarate(DR::_0);
        devices.push((keys, dev));
    }
    for (keys, _) in &devices {
        for n in 0..PER_DEVICE {
            network
                .enqueue(
                    keys.dev_eui,
                    20,
                    &[0xA0, n as u8, 0, 0, 0, 0, 0, 0, 0],
                    false,
                )
                .unwrap();
        }
    }

    // Every device reports at SF12 every 150 s, all within a few seconds
    // of each other: far more answers are due than the gateway may send.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, (keys, mut dev)) in devices.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut received = Vec::new();
            let mut round = 0u32;
            while received.len() < PER_DEVICE && round < 60 {
                tokio::time::sleep_until(
                    start + Duration::from_secs(150) * round + Duration::from_secs(2) * i as u32,
                )
                .await;
                dev.send(&[1, 2, 3, 4], 1, false).await.unwrap();
                while let Some(down) = dev.take_downlink() {
                    received.push((down.fport, down.data.to_vec()));
                }
                round += 1;
            }
            (keys, received, dev.get_radio().stats())
        }));
    }
    for task in tasks {
        let (keys, received, radio) = task.await.unwrap();
        assert_eq!(received.len(), PER_DEVICE, "{}", eui_hex(&keys.dev_eui));
        for (n, (fport, data)) in received.iter().enumerate() {
            assert_eq!(*fport, 20);
            assert_eq!(data[1], n as u8, "in queue order");
        }
        assert_eq!(radio.duty_cycle_violations, 0);
        assert_eq!(network.queued(keys.dev_eui), 0);
    }

    let stats = network.stats();
    println!("{stats:?}, done after {:?}", start.elapsed());
    assert_eq!(stats.downlinks_sent, DEVICES * PER_DEVICE as u64);
    assert!(stats.downlinks_deferred > 0, "{stats:?}");
    assert!(
        stats.rx1_transmissions > 0 && stats.rx2_transmissions > 0,
        "{stats:?}"
    );
    let total: Duration = network
        .gateway_transmissions()
        .iter()
        .map(|tx| tx.airtime)
        .sum();
    assert_eq!(stats.airtime_used, total);
    assert_duty_cycle_kept(&network);
    // Every data downlink went out at SF12 (RX1 at the uplink's DR0, or RX2).
    assert!(
        network
            .gateway_transmissions()
            .iter()
            .filter(|tx| tx.kind == DownlinkKind::Data)
            .all(|tx| tx.channel.sf == 12)
    );
}

/// A `Write` that tests can read back.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn frame_log_lines_are_json_a_decoder_can_check() {
    let network = NetworkServer::new(NetworkConfig::eu868(6));
    let sink = SharedBuf::default();
    network.set_frame_log_writer(sink.clone());
    let keys = DeviceKeys::simulated(6);
    network.register(keys);
    let mut dev = device(&network, 17);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    // Past the JoinAccept's off-time in 868.0-868.6, so RX1 is free.
    sleep(Duration::from_millis(200_123)).await;
    network.enqueue(keys.dev_eui, 7, b"down", false).unwrap();
    dev.send(b"up!", 3, false).await.unwrap();

    let lines = network.frame_log();
    let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert_eq!(written.lines().collect::<Vec<_>>(), lines);
    assert!(!network.frame_log_write_failed());
    assert_eq!(lines.len(), 4, "{lines:#?}");

    let mut kinds = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let t = v["time_s"].as_f64().unwrap();
        assert!(
            ((t * 1000.0).round() - t * 1000.0).abs() < 1e-6,
            "3 decimals: {t}"
        );
        assert_eq!(v["dev_eui"], eui_hex(&keys.dev_eui));
        let direction = v["direction"].as_str().unwrap();
        assert!(direction == "up" || direction == "down");
        assert!(hex::decode(v["phy_payload"].as_str().unwrap()).is_ok());
        assert_eq!(v["status"], "ok");
        kinds.push(v["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kinds,
        [
            "join_request",
            "join_accept",
            "unconfirmed_data_up",
            "unconfirmed_data_down"
        ]
    );

    // With the logged keys, an independent decoder recovers both payloads.
    for record in records(&network) {
        let (FrameKind::UnconfirmedDataUp | FrameKind::UnconfirmedDataDown) = record.kind else {
            assert!(record.app_key.is_some(), "join frames carry the AppKey");
            continue;
        };
        let key = |hex_key: &Option<String>| {
            let bytes: [u8; 16] = hex::decode(hex_key.as_ref().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            lorawan::keys::AES128(bytes)
        };
        let (nwk, app) = (key(&record.nwk_s_key), key(&record.app_s_key));
        let fcnt = record.fcnt.unwrap();
        let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) =
            parse(hex::decode(&record.phy_payload).unwrap())
        else {
            panic!("not a data frame");
        };
        assert!(data.validate_mic(&nwk, fcnt));
        assert_eq!(data.is_uplink(), record.direction == FrameDirection::Up);
        let decrypted = data.decrypt(Some(&nwk), Some(&app), fcnt).unwrap();
        let FRMPayload::Data(payload) = decrypted.frm_payload() else {
            panic!("no payload");
        };
        match record.direction {
            FrameDirection::Up => assert_eq!((payload, record.fport), (&b"up!"[..], Some(3))),
            FrameDirection::Down => {
                assert_eq!((payload, record.fport), (&b"down"[..], Some(7)));
                assert_eq!(record.window, Some(RxWindow::Rx1));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn injected_uplink_loss_is_seeded_or_chosen() {
    let network = NetworkServer::new(NetworkConfig::eu868(7));
    let keys = DeviceKeys::simulated(7);
    network.register(keys);
    let mut dev = device(&network, 18);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    network.enqueue(keys.dev_eui, 9, b"cmd", false).unwrap();

    // Lose this device's next uplink only.
    let mut lose = 1;
    let target = keys.dev_eui;
    network.set_uplink_filter(move |info| {
        if info.dev_eui == Some(target) && lose > 0 {
            lose -= 1;
            return false;
        }
        true
    });
    let reply = dev.send(b"lost", 1, false).await.unwrap();
    assert!(matches!(reply, SendResponse::RxComplete));
    assert_eq!(dev.get_radio().last_outcome(), Some(&UplinkOutcome::Lost));
    assert!(network.uplinks().is_empty());
    assert_eq!(network.queued(keys.dev_eui), 1);
    sleep(Duration::from_secs(200)).await;
    let reply = dev.send(b"heard", 1, false).await.unwrap();
    assert!(matches!(reply, SendResponse::DownlinkReceived(_)));
    assert_eq!(network.uplinks()[0].fcnt, 1, "the lost frame used FCnt 0");

    // Probability loss is a function of the seed.
    let lost_pattern = |seed| {
        let net = NetworkServer::new(NetworkConfig::eu868(0));
        net.set_uplink_loss(0.5, seed);
        (0..32)
            .map(|_| {
                net.receive(ReceivedFrame {
                    phy: vec![0; 23],
                    channel: otavan_protocol::region::Channel {
                        frequency: 868_100_000,
                        sf: 7,
                        bandwidth_hz: 125_000,
                    },
                    end: Instant::now(),
                }) == UplinkOutcome::Lost
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(lost_pattern(9), lost_pattern(9));
    assert_ne!(lost_pattern(9), lost_pattern(10));
    assert!(lost_pattern(9).iter().any(|&l| l) && lost_pattern(9).iter().any(|&l| !l));
    assert_eq!(network.stats().uplinks_lost, 1);
}

#[tokio::test(start_paused = true)]
async fn us915_device_joins_and_receives() {
    let network = NetworkServer::new(NetworkConfig::us915(8));
    let keys = DeviceKeys::simulated(8);
    network.register(keys);
    let mut dev = device_in(&network, DeviceRegion::US915, 19);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    network.enqueue(keys.dev_eui, 4, b"us", false).unwrap();
    let reply = dev.send(b"hello", 1, false).await.unwrap();
    assert!(matches!(reply, SendResponse::DownlinkReceived(_)));
    let down = dev.take_downlink().unwrap();
    assert_eq!((down.fport, &down.data[..]), (4, &b"us"[..]));
    let txs = network.gateway_transmissions();
    assert!(txs.iter().all(|tx| tx.channel.bandwidth_hz == 500_000));
    assert!(txs.iter().all(|tx| tx.sub_band.is_none()));
    assert!(matches!(
        network.uplinks()[0].channel.frequency,
        902_300_000..=914_900_000
    ));
}

#[tokio::test(start_paused = true)]
async fn rx2_answers_when_rx1_is_blocked() {
    let network = NetworkServer::new(NetworkConfig::eu868(9));
    let a = DeviceKeys::simulated(90);
    let b = DeviceKeys::simulated(91);
    network.register(a);
    network.register(b);
    let mut dev_a = device(&network, 20);
    let mut dev_b = device(&network, 21);
    // Join A at SF12: its RX1 JoinAccept closes 868.0-868.6 for ~2 min.
    join(&mut dev_a, &a, Duration::from_secs(10)).await;
    // B joins right after: RX1 is in the off-time, RX2 answers.
    let joined = dev_b.join(&b.join_mode()).await.unwrap();
    assert!(matches!(joined, JoinResponse::JoinSuccess));
    let accepts: Vec<_> = network
        .gateway_transmissions()
        .into_iter()
        .filter(|tx| tx.kind == DownlinkKind::JoinAccept)
        .collect();
    assert_eq!(accepts.len(), 2);
    assert_eq!(accepts[0].window, RxWindow::Rx1);
    assert_eq!(accepts[1].window, RxWindow::Rx2);
    assert_eq!(accepts[1].channel.frequency, 869_525_000);

    // A data downlink right after finds both windows closed (RX2 is off
    // for ~12 s after B's JoinAccept): deferred, then sent later.
    network.enqueue(b.dev_eui, 1, b"x", false).unwrap();
    let outcome_before = network.stats().downlinks_deferred;
    dev_b.send(b"now", 1, false).await.unwrap();
    assert!(dev_b.take_downlink().is_none());
    assert!(matches!(
        dev_b.get_radio().last_outcome(),
        Some(UplinkOutcome::Data {
            reply: Reply::Deferred,
            ..
        })
    ));
    assert_eq!(network.stats().downlinks_deferred, outcome_before + 1);
    let last_up = network.uplinks().last().unwrap().clone();
    assert_eq!(last_up.fcnt, 0);
    sleep(Duration::from_secs(30)).await;
    dev_b.send(b"later", 1, false).await.unwrap();
    let down = dev_b.take_downlink().unwrap();
    assert_eq!(&down.data[..], b"x");
    let last = network.gateway_transmissions().pop().unwrap();
    assert_eq!(last.window, RxWindow::Rx2);
    assert_duty_cycle_kept(&network);

    // The server's own view of the outcome, for a frame handed in directly.
    let replay = ReceivedFrame {
        phy: last_up.phy,
        channel: last_up.channel,
        end: Instant::now(),
    };
    assert!(matches!(
        network.receive(replay),
        UplinkOutcome::Rejected(RejectReason::FcntReplay)
    ));
}

/// A data uplink from the device's session asking the time: in FOpts, or
/// (FPort 0) as the encrypted payload.
fn time_request(network: &NetworkServer, keys: &DeviceKeys, in_fopts: bool) -> Vec<u8> {
    use lorawan::creator::DataPayloadCreator;
    use lorawan::maccommandcreator::DeviceTimeReqCreator;
    use lorawan::maccommands::SerializableMacCommand;
    let session = network.session(keys.dev_eui).unwrap();
    let mut creator = DataPayloadCreator::new();
    creator
        .set_uplink(true)
        .set_dev_addr(&session.dev_addr.to_le_bytes())
        .set_fcnt(session.next_fcnt_up as u32);
    let request = DeviceTimeReqCreator::new();
    let commands: [&dyn SerializableMacCommand; 1] = [&request];
    let payload: &[u8] = if in_fopts {
        creator.set_f_port(7);
        b"reading"
    } else {
        creator.set_f_port(0);
        &[]
    };
    creator
        .build(payload, &commands, &session.nwk_s_key, &session.app_s_key)
        .unwrap()
        .to_vec()
}

/// The DeviceTimeAns in the FOpts of downlink `phy`, decoded by
/// otavan-protocol.
fn device_time_answer(
    network: &NetworkServer,
    keys: &DeviceKeys,
    phy: &[u8],
) -> Option<otavan_protocol::device_time::DeviceTime> {
    use lorawan::maccommands::{DownlinkMacCommand, MacCommandIterator};
    let session = network.session(keys.dev_eui).unwrap();
    let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(phy.to_vec()) else {
        panic!("not a data downlink");
    };
    let fcnt = u32::from(data.fhdr().fcnt());
    assert!(data.validate_mic(session.nwk_s_key.inner(), fcnt));
    let fopts = data.fhdr().data().to_vec();
    MacCommandIterator::<DownlinkMacCommand>::new(&fopts).find_map(|command| match command {
        DownlinkMacCommand::DeviceTimeAns(answer) => {
            otavan_protocol::device_time::DeviceTime::decode(answer.bytes())
        }
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn device_time_requests_are_answered_with_gps_time() {
    // The network's clock reads 2026-01-01T00:00:00Z when it starts.
    let start = Duration::from_secs(1_767_225_600);
    let network = NetworkServer::new(NetworkConfig {
        time: Some(start),
        ..NetworkConfig::eu868(31)
    });
    let keys = DeviceKeys::simulated(31);
    network.register(keys);
    let mut dev = device(&network, 31);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    dev.send(b"x", 1, false).await.unwrap();
    let channel = network.uplinks_of(keys.dev_eui)[0].channel;
    for in_fopts in [true, false] {
        sleep(Duration::from_secs(600)).await;
        let phy = time_request(&network, &keys, in_fopts);
        let end = Instant::now();
        let outcome = network.receive(ReceivedFrame { phy, channel, end });
        let UplinkOutcome::Data {
            reply: Reply::Sent { kind, .. },
            ..
        } = outcome
        else {
            panic!("no answer: {outcome:?}");
        };
        assert_eq!(kind, DownlinkKind::Mac);
        let answer = network.gateway_transmissions().pop().unwrap();
        let time = device_time_answer(&network, &keys, &answer.phy).expect("a DeviceTimeAns");
        // The end of the asking uplink, in GPS time (18 leap seconds ahead).
        let expected = start + (end - network.started_at());
        // To the answer's resolution, 1/256 s.
        let expected_time = otavan_protocol::device_time::DeviceTime::from_unix(expected);
        assert_eq!(time, expected_time, "in FOpts: {in_fopts}");
        assert!(expected - time.to_unix() < Duration::from_micros(3_907));
        assert_eq!(
            u64::from(time.gps_seconds),
            expected.as_secs() - 315_964_800 + 18
        );
    }
    assert_eq!(network.stats().device_times_sent, 2);
}

#[tokio::test(start_paused = true)]
async fn a_network_without_a_clock_leaves_device_time_requests_unanswered() {
    let network = NetworkServer::new(NetworkConfig::eu868(32));
    let keys = DeviceKeys::simulated(32);
    network.register(keys);
    let mut dev = device(&network, 32);
    join(&mut dev, &keys, Duration::from_secs(10)).await;
    dev.send(b"x", 1, false).await.unwrap();
    let channel = network.uplinks_of(keys.dev_eui)[0].channel;
    sleep(Duration::from_secs(600)).await;
    let phy = time_request(&network, &keys, true);
    let outcome = network.receive(ReceivedFrame {
        phy,
        channel,
        end: Instant::now(),
    });
    assert!(
        matches!(
            outcome,
            UplinkOutcome::Data {
                reply: Reply::None,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(network.stats().device_times_sent, 0);
}

/// lorawan 0.9 writes `DeviceTimeAns` seconds little-endian, as LoRaWAN
/// says, but reads them big-endian; this is why the meter decodes the
/// answer with otavan-protocol instead. (If this fails, the crate was
/// fixed and its reader can be used.)
#[test]
fn lorawan_0_9_reads_device_time_seconds_in_the_wrong_byte_order() {
    use lorawan::maccommandcreator::DeviceTimeAnsCreator;
    use lorawan::maccommands::{DownlinkMacCommand, MacCommandIterator};
    let mut creator = DeviceTimeAnsCreator::new();
    creator.set_seconds(0x1234_5678);
    let bytes = creator.build().to_vec();
    let command = MacCommandIterator::<DownlinkMacCommand>::new(&bytes)
        .next()
        .unwrap();
    let DownlinkMacCommand::DeviceTimeAns(answer) = command else {
        panic!("{command:?}");
    };
    assert_eq!(answer.seconds(), 0x7856_3412);
    let ours = otavan_protocol::device_time::DeviceTime::decode(answer.bytes()).unwrap();
    assert_eq!(ours.gps_seconds, 0x1234_5678);
}
