//! Multicast WAKE end to end over the real LoRaWAN stack: the network
//! sets up each meter's group and class C window by unicast (TS005), then
//! one multicast frame wakes the whole group; a meter of another group
//! and one given the wrong group key hear it and do nothing.

use otavan_client::lora::MulticastConfig;
use otavan_client::lora::multicast::Ignored;
use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::multicast::{
    ClassCSession, GroupId, GroupSetup, Key, McAnswer, McRequest, SessionAnswer,
};

use super::*;

const STREET: u32 = 0x0170_0007;
const OTHER_STREET: u32 = 0x0170_0008;
const STREET_KEY: Key = *b"street segment 7";
/// When the class C window opens, after the start.
const SESSION_AT: Duration = Duration::from_secs(2 * 3600);

/// How much earlier than the session time a window may open: the
/// receive delays the meter's idea of the network's time carries.
const EARLY: Duration = Duration::from_secs(8);

/// The unicast setup frame for meter `n`: group 0 at `addr` with
/// `mc_key` (encrypted for the meter), and a 256 s class C window on RX2
/// at `SESSION_AT` in GPS time.
fn setup_frame(n: u64, addr: u32, mc_key: &Key) -> Vec<u8> {
    let group = GroupId::new(0).unwrap();
    let gps = DeviceTime::from_unix(EPOCH + SESSION_AT).gps_seconds;
    let rx2 = Region::Eu868.rx2();
    McRequest::encode_all(&[
        McRequest::GroupSetup(GroupSetup {
            group,
            mc_addr: addr,
            mc_key_encrypted: root(n).encrypt_group_key(mc_key),
            min_fcount: 0,
            max_fcount: 1000,
        }),
        McRequest::ClassCSession(ClassCSession {
            group,
            session_time: gps,
            timeout_exponent: 8,
            frequency_hz: rx2.frequency,
            data_rate: Region::Eu868.rx2_data_rate(),
        }),
    ])
    .unwrap()
}

/// What each meter of the test is.
const MEMBERS: [u64; 3] = [1, 2, 3];
const OUTSIDER: u64 = 4;
const WRONG_KEY: u64 = 5;

#[tokio::test(start_paused = true)]
async fn one_multicast_frame_wakes_the_group_and_only_the_group() {
    let release = Release::sample();
    let network = NetworkServer::new(NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    });
    network.add_multicast_group(STREET, &STREET_KEY, Region::Eu868.rx2(), 1);
    let clock = MeterClock::starting_at(EPOCH);
    let rigs: Vec<Rig> = (1..=5)
        .map(|n| {
            let meter = TestMeter::provisioned(&release, OLD);
            Rig::on(network.clone(), n, &release, meter, clock)
        })
        .collect();
    for (rig, n) in rigs.iter().zip(1u64..) {
        let (addr, key) = match n {
            OUTSIDER => (OTHER_STREET, *b"another street!!"),
            WRONG_KEY => (STREET, *b"not the key ...."),
            _ => (STREET, STREET_KEY),
        };
        network
            .enqueue(
                rig.keys.dev_eui,
                DEFAULT_MULTICAST_SETUP_FPORT,
                &setup_frame(n, addr, &key),
                false,
            )
            .unwrap();
    }
    let mut triggers: Vec<TestTrigger> = rigs
        .iter()
        .zip(1u64..)
        .map(|(rig, n)| {
            let mut config = rig.config();
            config.multicast = Some(MulticastConfig {
                root: root(n),
                setup_fport: DEFAULT_MULTICAST_SETUP_FPORT,
            });
            rig.trigger_with(config, 100 + n)
        })
        .collect();
    let mut hosts: Vec<TestHost> = rigs.iter().map(Rig::host).collect();
    let start = Instant::now();

    // Before the window: every meter joined, took its setup and answered.
    let before = start + SESSION_AT - Duration::from_secs(60);
    let setup_events = run_all(&mut triggers, &mut hosts, before).await;
    for (rig, events) in rigs.iter().zip(setup_events) {
        let taken: Vec<&Vec<McAnswer>> = events
            .iter()
            .filter_map(|e| match e {
                Event::Uplink {
                    multicast_setup, ..
                } if !multicast_setup.is_empty() => Some(multicast_setup),
                _ => None,
            })
            .collect();
        assert_eq!(taken.len(), 1, "{events:?}");
        let (received_after, answers) = setup_answers(rig);
        assert_eq!(&answers, taken[0]);
        let [
            McAnswer::GroupSetup {
                id_error: false, ..
            },
            McAnswer::ClassCSession {
                answer: SessionAnswer::Scheduled { time_to_start },
                ..
            },
        ] = answers[..]
        else {
            panic!("{answers:?}")
        };
        // Counted from the setup's arrival, in the receive windows of the
        // uplink before the answer (RX2 opens 2 s after it; an SF12
        // downlink lasts under 2 s), by the network's time, which the
        // meter carries from its DeviceTimeAns a few seconds early at
        // most: a window opens early rather than late.
        let expected = (start + SESSION_AT - received_after).as_secs_f64();
        assert!(
            (0.0..=EARLY.as_secs_f64()).contains(&(expected - f64::from(time_to_start))),
            "{time_to_start} vs {expected}"
        );
    }

    // In the window: one multicast WAKE for the street.
    let wake = wake(7, Duration::from_secs(600), 0, Some(NEW)).encode();
    let until = start + SESSION_AT + Duration::from_secs(300);
    let sent = network
        .send_multicast(
            STREET,
            DEFAULT_FPORT,
            &wake,
            start + SESSION_AT + Duration::from_secs(30),
            until,
        )
        .unwrap();
    let window_events = run_all(&mut triggers, &mut hosts, until).await;
    assert_eq!(network.stats().multicast_transmissions, 1);
    for (events, n) in window_events.into_iter().zip(1u64..) {
        let class_c: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(e, Event::ClassC { .. }))
            .collect();
        let [
            Event::ClassC {
                window,
                decisions,
                ignored,
                radio_error: None,
            },
        ] = class_c[..]
        else {
            panic!("meter {n}: {events:?}")
        };
        let opens = EPOCH + SESSION_AT;
        assert!(
            // DeviceTimeAns is in 1/256 s: up to 4 ms late.
            window.opens_at <= opens + Duration::from_millis(4) && window.opens_at >= opens - EARLY,
            "meter {n}: {window:?}"
        );
        match n {
            OUTSIDER => {
                assert!(decisions.is_empty(), "{decisions:?}");
                assert_eq!(ignored[..], [Ignored::OtherAddress]);
            }
            WRONG_KEY => {
                assert!(decisions.is_empty(), "{decisions:?}");
                assert_eq!(ignored[..], [Ignored::BadMic]);
            }
            _ => {
                let [Decision::Scheduled { session, .. }] = &decisions[..] else {
                    panic!("meter {n}: {decisions:?}")
                };
                assert_eq!(session.campaign, 7);
                // The WAKE's delay counts from when the frame was heard.
                let heard = sent.start + sent.airtime - start;
                let opens = EPOCH + heard + Duration::from_secs(600);
                assert!(session.opens_at.abs_diff(opens) < Duration::from_secs(1));
                assert!(ignored.is_empty(), "{ignored:?}");
            }
        }
    }

    // Then the van: the group's meters update, the other two stay.
    let after = start + SESSION_AT + Duration::from_secs(2 * 3600);
    run_all(&mut triggers, &mut hosts, after).await;
    for (rig, n) in rigs.iter().zip(1u64..) {
        let expected = if MEMBERS.contains(&n) { NEW } else { OLD };
        assert_eq!(rig.meter.version(), expected, "meter {n}");
        let statuses = rig.statuses();
        let last = statuses.last().unwrap();
        assert_eq!(last.version_tag, tag(expected), "meter {n}");
    }
}

/// A frame of the group after a restart: the groups and the window come
/// back from `.otavan/lora.json`, and a counter already accepted is not
/// accepted again.
#[tokio::test(start_paused = true)]
async fn groups_and_windows_survive_a_restart() {
    let release = Release::sample();
    let network = NetworkServer::new(NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    });
    network.add_multicast_group(STREET, &STREET_KEY, Region::Eu868.rx2(), 1);
    let rig = Rig::on(
        network.clone(),
        1,
        &release,
        TestMeter::provisioned(&release, OLD),
        MeterClock::starting_at(EPOCH),
    );
    network
        .enqueue(
            rig.keys.dev_eui,
            DEFAULT_MULTICAST_SETUP_FPORT,
            &setup_frame(1, STREET, &STREET_KEY),
            false,
        )
        .unwrap();
    let mut config = rig.config();
    config.multicast = Some(MulticastConfig {
        root: root(1),
        setup_fport: DEFAULT_MULTICAST_SETUP_FPORT,
    });
    let start = Instant::now();
    let mut host = rig.host();
    let mut trigger = rig.trigger_with(config.clone(), 1);
    trigger
        .run_until(start + SESSION_AT - Duration::from_secs(60), &mut host)
        .await
        .unwrap();
    drop(trigger);
    // Power comes back just before the window.
    let mut trigger = rig.trigger_with(config, 2);
    let wake = wake(7, Duration::from_secs(600), 0, Some(NEW)).encode();
    network
        .send_multicast(
            STREET,
            DEFAULT_FPORT,
            &wake,
            start + SESSION_AT + Duration::from_secs(10),
            start + SESSION_AT + Duration::from_secs(200),
        )
        .unwrap();
    let events = trigger
        .run_until(start + SESSION_AT + Duration::from_secs(300), &mut host)
        .await
        .unwrap();
    let decisions: Vec<&Decision> = events
        .iter()
        .filter_map(|e| match e {
            Event::ClassC { decisions, .. } => Some(decisions),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        matches!(decisions[..], [Decision::Scheduled { .. }]),
        "{events:?}"
    );
    let saved = std::fs::read_to_string(rig.meter.dir.path().join(".otavan/lora.json")).unwrap();
    assert!(saved.contains("\"next_fcnt\": 2"), "{saved}");
}
