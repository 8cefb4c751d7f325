//! Multicast groups on the simulated network: one class C frame heard by
//! every listening radio, within the gateway's duty cycle, decodable with
//! the group's keys.

use std::time::Duration;

use lora_modulation::{Bandwidth, BaseBandModulationParams, CodingRate, SpreadingFactor};
use lorawan::keys::AES128;
use lorawan::parser::{DataHeader, DataPayload, FRMPayload, PhyPayload, parse};
use lorawan_device::async_device::radio::{PhyRxTx, RfConfig, RxConfig, RxMode};
use otavan_loranet::{MulticastError, NetworkConfig, NetworkServer, SimRadio};
use otavan_protocol::lora::multicast::GroupSessionKeys;
use otavan_protocol::region::Region;
use tokio::time::Instant;

const MC_KEY: [u8; 16] = *b"street segment 7";
const ADDR: u32 = 0x0170_0007;

fn class_c_config(network: &NetworkServer) -> RxConfig {
    let channel = network.region().rx2();
    assert_eq!(channel.sf, 12);
    RxConfig {
        rf: RfConfig {
            frequency: channel.frequency,
            bb: BaseBandModulationParams::new(
                SpreadingFactor::_12,
                Bandwidth::_125KHz,
                CodingRate::_4_5,
            ),
        },
        mode: RxMode::Continuous,
    }
}

/// Three radios in a class C window hear the one frame the network sends,
/// and it decodes with the group's keys.
#[tokio::test(start_paused = true)]
async fn one_multicast_frame_reaches_every_listener() {
    let network = NetworkServer::new(NetworkConfig::eu868(7));
    network.add_multicast_group(ADDR, &MC_KEY, Region::Eu868.rx2(), 1);
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let mut radio = SimRadio::new(network.clone());
        radio.setup_rx(class_c_config(&network)).await.unwrap();
        listeners.push(tokio::spawn(async move {
            let mut buf = [0u8; 255];
            let (len, _) = radio.rx_continuous(&mut buf).await.unwrap();
            (buf[..len].to_vec(), Instant::now())
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now = Instant::now();
    let sent = network
        .send_multicast(ADDR, 200, b"wake", now, now + Duration::from_secs(60))
        .unwrap();
    assert_eq!((sent.start, sent.fcnt), (now, 1));
    let keys = GroupSessionKeys::derive(&MC_KEY, ADDR);
    for listener in listeners {
        let (frame, heard_at) = listener.await.unwrap();
        // Received whole, at its end (tokio's timer rounds up to a ms).
        let end = sent.start + sent.airtime;
        assert!(heard_at >= end && heard_at <= end + Duration::from_millis(2));
        let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(frame) else {
            panic!("not a data frame")
        };
        assert!(!data.is_uplink() && !data.is_confirmed());
        assert_eq!(data.fhdr().dev_addr().as_ref(), ADDR.to_le_bytes());
        assert!(data.validate_mic(&AES128(keys.nwk_s_key), 1));
        let plain = data
            .decrypt(None, Some(&AES128(keys.app_s_key)), 1)
            .unwrap();
        let FRMPayload::Data(payload) = plain.frm_payload() else {
            panic!("no payload")
        };
        assert_eq!(payload, b"wake");
    }
    let log = network.frame_log();
    let line = log.last().unwrap();
    assert!(line.contains("\"window\":\"class_c\""), "{line}");
    assert!(line.contains(&hex::encode(keys.app_s_key)), "{line}");
    assert_eq!(network.stats().multicast_transmissions, 1);
}

/// RX2's sub-band allows 10 %: the next frame waits its off-time, and one
/// that cannot start before its deadline is not sent.
#[tokio::test(start_paused = true)]
async fn multicast_frames_keep_the_duty_cycle() {
    let network = NetworkServer::new(NetworkConfig::eu868(7));
    network.add_multicast_group(ADDR, &MC_KEY, Region::Eu868.rx2(), 1);
    let now = Instant::now();
    let hour = now + Duration::from_secs(3600);
    let first = network
        .send_multicast(ADDR, 200, b"wake", now, hour)
        .unwrap();
    let second = network
        .send_multicast(ADDR, 200, b"wake", now, hour)
        .unwrap();
    assert_eq!(second.start, first.start + first.airtime * 10);
    assert_eq!(second.fcnt, first.fcnt + 1);
    let soon = now + Duration::from_secs(1);
    assert_eq!(
        network.send_multicast(ADDR, 200, b"wake", now, soon),
        Err(MulticastError::NoSlot)
    );
    assert_eq!(
        network.send_multicast(ADDR + 1, 200, b"wake", now, hour),
        Err(MulticastError::UnknownGroup(ADDR + 1))
    );
    assert_eq!(
        network.send_multicast(ADDR, 0, b"wake", now, hour),
        Err(MulticastError::InvalidFport(0))
    );
}
