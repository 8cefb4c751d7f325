//! Standing multicast sessions end to end over the real LoRaWAN stack:
//! each meter gets its group once, at installation (otavan's
//! StandingSessionReq on the setup FPort), and from then on one multicast
//! WAKE in the group's daily slot wakes the whole group, campaign after
//! campaign, with no unicast downlink per campaign; a restart keeps the
//! session, and a frame replayed in a later slot is refused.

use otavan_client::lora::MulticastConfig;
use otavan_client::lora::multicast::Ignored;
use otavan_loranet::DownlinkKind;
use otavan_planning::multicast::FIRST_FCNT;
use otavan_planning::standing::{self, FRAME_OFFSET, WINDOW};
use otavan_protocol::lora::multicast::{
    GroupId, GroupSetup, McRequest, SessionAnswer, StandingSession,
};

use super::*;

const STREET: u32 = 0x0170_0007;
const OTHER_STREET: u32 = 0x0170_0008;
const STREET_KEY: [u8; 16] = *b"street segment 7";
const OTHER_KEY: [u8; 16] = *b"another street!!";
const DAY: Duration = Duration::from_secs(86_400);
/// The groups' slot: 03:00 after the start, every day.
const SLOT: Duration = Duration::from_secs(3 * 3600);
const MEMBERS: [u64; 3] = [1, 2, 3];
const OUTSIDER: u64 = 4;

/// Meter `n`'s trigger configuration, taking part in multicast.
fn multicast_config(rig: &Rig, n: u64) -> TriggerConfig {
    let mut config = rig.config();
    config.multicast = Some(MulticastConfig {
        root: root(n),
        setup_fport: DEFAULT_MULTICAST_SETUP_FPORT,
    });
    config
}

/// The group's slot `day` days after the start, as a tokio instant.
fn slot(start: Instant, day: u32) -> Instant {
    start + SLOT + DAY * day
}

/// Sends `payload` to group `addr` in the slot opening `at`, at the frame
/// offset the operator uses; gives the frame's bytes and when it ended.
fn send_in_slot(
    network: &NetworkServer,
    addr: u32,
    payload: &[u8],
    at: Instant,
) -> (Vec<u8>, Instant) {
    let offset = Duration::from_micros(FRAME_OFFSET);
    let sent = network
        .send_multicast(
            addr,
            DEFAULT_FPORT,
            payload,
            at + offset,
            at + Duration::from_micros(WINDOW) - Duration::from_secs(3),
        )
        .unwrap();
    let at = sent.start - network.started_at();
    let phy = (network.gateway_transmissions().into_iter())
        .find(|tx| tx.at == at && tx.kind == DownlinkKind::Multicast)
        .unwrap()
        .phy;
    (phy, sent.start + sent.airtime)
}

/// What each meter made of the class C windows in `events`: the decisions
/// and the frames ignored, window by window.
fn windows(events: &[Event]) -> Vec<(Vec<Decision>, Vec<Ignored>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ClassC {
                decisions,
                ignored,
                radio_error: None,
                ..
            } => Some((decisions.clone(), ignored.clone())),
            _ => None,
        })
        .collect()
}

/// The campaigns of the WAKEs scheduled in `windows`.
fn woken(windows: &[(Vec<Decision>, Vec<Ignored>)]) -> Vec<u16> {
    windows
        .iter()
        .flat_map(|(decisions, _)| decisions)
        .filter_map(|d| match d {
            Decision::Scheduled { session, .. } => Some(session.campaign),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_frame_in_the_daily_slot_wakes_the_group_campaign_after_campaign() {
    let release = Release::sample();
    let network = NetworkServer::new(NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    });
    let rx2 = Region::Eu868.rx2();
    network.add_multicast_group(STREET, &STREET_KEY, rx2, FIRST_FCNT);
    network.add_multicast_group(OTHER_STREET, &OTHER_KEY, rx2, FIRST_FCNT);
    let clock = MeterClock::starting_at(EPOCH);
    let rigs: Vec<Rig> = (1..=4)
        .map(|n| {
            let meter = TestMeter::provisioned(&release, OLD);
            Rig::on(network.clone(), n, &release, meter, clock)
        })
        .collect();
    // Installation: the group and its daily slot, once, by unicast.
    for (rig, n) in rigs.iter().zip(1u64..) {
        let (addr, key) = match n {
            OUTSIDER => (OTHER_STREET, OTHER_KEY),
            _ => (STREET, STREET_KEY),
        };
        let frame = standing::setup_frame(addr, &key, &root(n), EPOCH + SLOT, Region::Eu868);
        network
            .enqueue(
                rig.keys.dev_eui,
                DEFAULT_MULTICAST_SETUP_FPORT,
                &frame,
                false,
            )
            .unwrap();
    }
    let mut triggers: Vec<TestTrigger> = (rigs.iter().zip(1u64..))
        .map(|(rig, n)| rig.trigger_with(multicast_config(rig, n), 100 + n))
        .collect();
    let mut hosts: Vec<TestHost> = rigs.iter().map(Rig::host).collect();
    let start = Instant::now();

    // Day 0: every meter took its setup and answered in its next uplink;
    // the day's slot came and went with nothing sent.
    let day0 = run_all(&mut triggers, &mut hosts, slot(start, 1) - HOUR).await;
    for ((rig, events), n) in rigs.iter().zip(&day0).zip(1u64..) {
        let (received, answers) = setup_answers(rig);
        let [
            McAnswer::GroupSetup {
                id_error: false, ..
            },
            McAnswer::StandingSession {
                answer: SessionAnswer::Scheduled { time_to_start },
                ..
            },
        ] = answers[..]
        else {
            panic!("meter {n}: {answers:?}")
        };
        let expected = (slot(start, 0) - received).as_secs();
        assert!(
            expected.abs_diff(u64::from(time_to_start)) <= 8,
            "meter {n}"
        );
        assert_eq!(windows(events), [(vec![], vec![])], "meter {n}");
    }

    // Day 1: one multicast WAKE in the slot wakes the street's three.
    let campaign_7 = wake(7, Duration::from_secs(600), 0, Some(NEW)).encode();
    let (first, _) = send_in_slot(&network, STREET, &campaign_7, slot(start, 1));
    let day1 = run_all(&mut triggers, &mut hosts, slot(start, 1) + 2 * HOUR).await;
    for (events, n) in day1.iter().zip(1u64..) {
        let windows = windows(events);
        match n {
            OUTSIDER => assert_eq!(windows, [(vec![], vec![Ignored::OtherAddress])]),
            _ => assert_eq!(woken(&windows), [7], "meter {n}: {events:?}"),
        }
    }
    for (rig, n) in rigs.iter().zip(1u64..) {
        let expected = if MEMBERS.contains(&n) { NEW } else { OLD };
        assert_eq!(rig.meter.version(), expected, "meter {n}");
    }

    // Power cut: every trigger starts again from lora.json, two hours
    // after the slot, so its hourly uplinks fall due right at the next
    // slots.
    drop(triggers);
    let saved = std::fs::read_to_string(rigs[0].meter.dir.path().join(".otavan/lora.json"));
    assert!(saved.unwrap().contains("\"period_s\": 86400"));
    let mut triggers: Vec<TestTrigger> = (rigs.iter().zip(1u64..))
        .map(|(rig, n)| rig.trigger_with(multicast_config(rig, n), 200 + n))
        .collect();

    // Day 2: a second campaign, again one frame, at the next counter.
    let campaign_8 = wake(8, Duration::from_secs(600), 0, None).encode();
    let (_, heard) = send_in_slot(&network, STREET, &campaign_8, slot(start, 2));
    let day2 = run_all(&mut triggers, &mut hosts, slot(start, 2) + 2 * HOUR).await;
    // The uplink due at the slot waited for the window (a member's ends
    // early, at the frame), so the frame was heard from its start.
    for (rig, n) in rigs.iter().zip(1u64..) {
        let near: Vec<Instant> = (rig.uplinks().into_iter())
            .map(|(end, _, _)| end)
            .filter(|end| abs_diff(*end, slot(start, 2)) < Duration::from_secs(60))
            .collect();
        let [end] = near[..] else {
            panic!("meter {n}: {near:?}")
        };
        let after = if n == OUTSIDER {
            slot(start, 2) + Duration::from_micros(WINDOW)
        } else {
            heard
        };
        assert!(
            end > after && end < after + Duration::from_secs(15),
            "meter {n}"
        );
    }
    for (events, n) in day2.iter().zip(1u64..) {
        let windows = windows(events);
        match n {
            OUTSIDER => assert_eq!(windows, [(vec![], vec![Ignored::OtherAddress])]),
            _ => assert_eq!(
                woken(&windows),
                [8],
                "meter {n}: {:?}",
                events
                    .iter()
                    .filter(|e| matches!(e, Event::ClassC { .. } | Event::Session { .. }))
                    .collect::<Vec<_>>()
            ),
        }
    }

    // Day 3: campaign 7's frame again, byte for byte: refused.
    network.add_multicast_group(STREET, &STREET_KEY, rx2, FIRST_FCNT);
    let (replayed, _) = send_in_slot(&network, STREET, &campaign_7, slot(start, 3));
    assert_eq!(replayed, first);
    let day3 = run_all(&mut triggers, &mut hosts, slot(start, 3) + HOUR).await;
    for (events, n) in day3.iter().zip(1u64..) {
        let windows = windows(events);
        let [(decisions, ignored)] = &windows[..] else {
            panic!("meter {n}: {events:?}")
        };
        assert!(decisions.is_empty(), "meter {n}: {decisions:?}");
        match n {
            OUTSIDER => assert_eq!(ignored[..], [Ignored::OtherAddress]),
            _ => assert!(matches!(ignored[..], [Ignored::Counter(_)]), "{ignored:?}"),
        }
    }

    // Three multicast frames reached the street; the only unicast
    // downlink any meter got was its setup.
    assert_eq!(network.stats().multicast_transmissions, 3);
    for (rig, n) in rigs.iter().zip(1u64..) {
        let unicast = network
            .gateway_transmissions()
            .into_iter()
            .filter(|tx| tx.dev_eui == Some(rig.keys.dev_eui) && tx.kind == DownlinkKind::Data)
            .count();
        assert_eq!(unicast, 1);
        let saved = std::fs::read_to_string(rig.meter.dir.path().join(".otavan/lora.json"));
        let next = if n == OUTSIDER {
            FIRST_FCNT
        } else {
            FIRST_FCNT + 2
        };
        assert!(saved.unwrap().contains(&format!("\"next_fcnt\": {next},")));
    }
}

/// A standing session on a channel the region has not is refused in the
/// answer, and the meter never listens for it.
#[tokio::test(start_paused = true)]
async fn a_standing_session_off_the_regions_channels_is_refused() {
    let release = Release::sample();
    let network = NetworkServer::new(NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    });
    let rig = Rig::on(
        network.clone(),
        1,
        &release,
        TestMeter::provisioned(&release, OLD),
        MeterClock::starting_at(EPOCH),
    );
    let group = GroupId::new(0).unwrap();
    let standing = |frequency_hz, data_rate| {
        McRequest::StandingSession(StandingSession {
            group,
            first_slot: otavan_protocol::device_time::DeviceTime::from_unix(EPOCH + SLOT)
                .gps_seconds,
            period_minutes: 24 * 60,
            timeout_exponent: 3,
            frequency_hz,
            data_rate,
        })
    };
    // 915 MHz is not EU868; DR7 is FSK. (Two frames: DR0 carries 51
    // bytes.)
    let frames = [
        vec![
            McRequest::GroupSetup(GroupSetup {
                group,
                mc_addr: STREET,
                mc_key_encrypted: root(1).encrypt_group_key(&STREET_KEY),
                min_fcount: FIRST_FCNT,
                max_fcount: 1000,
            }),
            standing(915_000_000, 0),
        ],
        vec![standing(869_525_000, 7)],
    ];
    for requests in frames {
        let frame = McRequest::encode_all(&requests).unwrap();
        network
            .enqueue(
                rig.keys.dev_eui,
                DEFAULT_MULTICAST_SETUP_FPORT,
                &frame,
                false,
            )
            .unwrap();
    }
    let mut trigger = rig.trigger_with(multicast_config(&rig, 1), 1);
    let mut host = rig.host();
    let start = Instant::now();
    let events = trigger
        .run_until(slot(start, 1) + HOUR, &mut host)
        .await
        .unwrap();
    let refusals: Vec<(bool, bool, bool)> = (setup_answers(&rig).1.into_iter())
        .filter_map(|a| match a {
            McAnswer::StandingSession {
                answer:
                    SessionAnswer::Refused {
                        group_undefined,
                        freq_error,
                        dr_error,
                    },
                ..
            } => Some((group_undefined, freq_error, dr_error)),
            _ => None,
        })
        .collect();
    assert_eq!(refusals, [(false, true, false), (false, false, true)]);
    assert_eq!(windows(&events), []);
}
