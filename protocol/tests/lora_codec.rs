//! The LoRaWAN codec: golden bytes both ways, every error, duration units,
//! regional limits, and properties over arbitrary values and bytes.

use std::time::Duration;

use otavan_protocol::Version;
use otavan_protocol::lora::{
    CodecError, Delay, DownlinkCommand, OtaResult, StatusUplink, VersionTag, Wake, Window,
};
use otavan_protocol::region::{Direction, PayloadTooLarge, Region, check_fits, max_payload};
use proptest::prelude::*;
use serde_json::json;

fn wake(campaign: u16, delay_s: u64, window_s: u64, network: u8, tag: Option<[u8; 4]>) -> Wake {
    Wake {
        campaign,
        delay: Delay::from_secs(delay_s).unwrap(),
        window: Window::from_secs(window_s).unwrap(),
        network,
        version_tag: tag.map(VersionTag),
    }
}

/// Asserts both directions: `command` encodes to `bytes` and back.
fn golden_downlink(command: DownlinkCommand, bytes: &[u8]) {
    assert_eq!(command.encode(), bytes, "encoding {command:?}");
    assert_eq!(command.buffer_len(), bytes.len());
    assert_eq!(
        DownlinkCommand::decode(bytes),
        Ok(command),
        "decoding {bytes:02x?}"
    );
    let mut buf = [0xee; 16];
    command.emit(&mut buf);
    assert_eq!(&buf[..bytes.len()], bytes);
    assert!(
        buf[bytes.len()..].iter().all(|&b| b == 0xee),
        "emit wrote past its length"
    );
}

fn golden_uplink(status: StatusUplink, bytes: &[u8]) {
    assert_eq!(status.encode(), bytes, "encoding {status:?}");
    assert_eq!(status.buffer_len(), bytes.len());
    assert_eq!(
        StatusUplink::decode(bytes),
        Ok(status),
        "decoding {bytes:02x?}"
    );
}

// ---------------------------------------------------------------------------
// Golden bytes

#[test]
fn wake_without_tag() {
    // 1 h delay in seconds (0x0e10), 15 min window in 10 s units (90).
    golden_downlink(
        DownlinkCommand::Wake(wake(7, 3600, 900, 1, None)),
        &[0x11, 0x00, 0x07, 0x0e, 0x10, 0x5a, 0x01],
    );
}

#[test]
fn wake_with_tag_and_minutes() {
    // 24 h = 1440 min (0x8000 | 0x05a0), 60 min window (0x80 | 60).
    golden_downlink(
        DownlinkCommand::Wake(wake(
            0x1234,
            86_400,
            3600,
            3,
            Some([0xa1, 0xb2, 0xc3, 0xd4]),
        )),
        &[
            0x11, 0x12, 0x34, 0x85, 0xa0, 0xbc, 0x03, 0xa1, 0xb2, 0xc3, 0xd4,
        ],
    );
}

#[test]
fn wake_extremes() {
    golden_downlink(
        DownlinkCommand::Wake(Wake {
            campaign: u16::MAX,
            delay: Delay::MAX,
            window: Window::MAX,
            network: 255,
            version_tag: None,
        }),
        &[0x11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    );
    golden_downlink(
        DownlinkCommand::Wake(wake(0, 0, 0, 0, Some([0; 4]))),
        &[0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
}

#[test]
fn cancel_and_status_request() {
    golden_downlink(
        DownlinkCommand::Cancel { campaign: 0xbeef },
        &[0x12, 0xbe, 0xef],
    );
    golden_downlink(DownlinkCommand::StatusRequest, &[0x13]);
}

#[test]
fn status_uplink() {
    golden_uplink(
        StatusUplink {
            version_tag: VersionTag([0xde, 0xad, 0xbe, 0xef]),
            pending_confirm: true,
            last_result: OtaResult::Updated,
            battery: 200,
            campaign: 7,
        },
        &[0x18, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x01, 0xc8, 0x00, 0x07],
    );
    golden_uplink(
        StatusUplink {
            version_tag: VersionTag([1, 2, 3, 4]),
            pending_confirm: false,
            last_result: OtaResult::Other(42),
            battery: StatusUplink::BATTERY_UNKNOWN,
            campaign: 0,
        },
        &[0x18, 1, 2, 3, 4, 0x00, 42, 0xff, 0x00, 0x00],
    );
}

#[test]
fn every_result_code() {
    let named = [
        (0, OtaResult::None, "none"),
        (1, OtaResult::Updated, "updated"),
        (2, OtaResult::AlreadyCurrent, "already_current"),
        (3, OtaResult::Refused, "refused"),
        (4, OtaResult::DownloadFailed, "download_failed"),
        (5, OtaResult::VerificationFailed, "verification_failed"),
        (6, OtaResult::NoSpace, "no_space"),
        (7, OtaResult::Interrupted, "interrupted"),
        (8, OtaResult::WifiJoinFailed, "wifi_join_failed"),
        (9, OtaResult::Cancelled, "cancelled"),
        (10, OtaResult::Reverted, "reverted"),
    ];
    for (code, result, name) in named {
        assert_eq!(OtaResult::from_code(code), result);
        assert_eq!(result.code(), code);
        assert_eq!(serde_json::to_value(result).unwrap(), json!(name));
    }
    for code in 11..=255 {
        assert_eq!(OtaResult::from_code(code), OtaResult::Other(code));
        assert_eq!(
            serde_json::to_value(OtaResult::Other(code)).unwrap(),
            json!(code)
        );
    }
}

#[test]
fn version_tag_is_the_start_of_the_sha256_of_the_version_string() {
    let tag = |s: &str| VersionTag::of(&s.parse::<Version>().unwrap());
    assert_eq!(tag("1.1.0"), VersionTag([0x7f, 0xbd, 0x21, 0x0e]));
    assert_eq!(tag("1.0.0").to_string(), "92521fc3");
    assert_eq!("7fbd210e".parse::<VersionTag>().unwrap(), tag("1.1.0"));
    assert!("7fbd21".parse::<VersionTag>().is_err());
    assert!("7fbd210e00".parse::<VersionTag>().is_err());
    assert!("7fbd210g".parse::<VersionTag>().is_err());
}

#[test]
fn a_tagged_wake_skips_meters_already_at_the_target() {
    let target: Version = "1.1.0".parse().unwrap();
    let old: Version = "1.0.0".parse().unwrap();
    let mut w = wake(1, 60, 600, 0, None);
    assert!(w.applies_to(&target) && w.applies_to(&old));
    w.version_tag = Some(VersionTag::of(&target));
    assert!(!w.applies_to(&target));
    assert!(w.applies_to(&old));
}

// ---------------------------------------------------------------------------
// JSON

#[test]
fn downlink_json() {
    let tagged = DownlinkCommand::Wake(wake(7, 3600, 900, 1, Some([0xa1, 0xb2, 0xc3, 0xd4])));
    assert_eq!(
        serde_json::to_value(tagged).unwrap(),
        json!({"command": "wake", "campaign": 7, "delay_s": 3600, "window_s": 900,
               "network": 1, "version_tag": "a1b2c3d4"})
    );
    let untagged = DownlinkCommand::Wake(wake(7, 3600, 900, 1, None));
    assert_eq!(
        serde_json::to_value(untagged).unwrap()["version_tag"],
        json!(null)
    );
    assert_eq!(
        serde_json::to_value(DownlinkCommand::Cancel { campaign: 9 }).unwrap(),
        json!({"command": "cancel", "campaign": 9})
    );
    assert_eq!(
        serde_json::to_value(DownlinkCommand::StatusRequest).unwrap(),
        json!({"command": "status_request"})
    );
}

#[test]
fn uplink_json() {
    let status = StatusUplink {
        version_tag: VersionTag([0xa1, 0xb2, 0xc3, 0xd4]),
        pending_confirm: false,
        last_result: OtaResult::Updated,
        battery: 200,
        campaign: 7,
    };
    assert_eq!(
        serde_json::to_value(status).unwrap(),
        json!({"message": "status", "version_tag": "a1b2c3d4", "pending_confirm": false,
               "last_result": "updated", "battery": 200, "campaign": 7})
    );
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn empty_input() {
    assert_eq!(DownlinkCommand::decode(&[]), Err(CodecError::Empty));
    assert_eq!(StatusUplink::decode(&[]), Err(CodecError::Empty));
    assert_eq!(Wake::decode(&[]), Err(CodecError::Empty));
}

#[test]
fn unsupported_versions() {
    for version in (0..16u8).filter(|&v| v != 1) {
        // The version is checked before the command and the length.
        for bytes in [vec![version << 4 | 1], vec![version << 4 | 8; 10]] {
            let expected = CodecError::UnsupportedVersion(version);
            assert_eq!(DownlinkCommand::decode(&bytes), Err(expected.clone()));
            assert_eq!(StatusUplink::decode(&bytes), Err(expected));
        }
    }
}

#[test]
fn unknown_commands() {
    for code in 0..16u8 {
        let bytes = [0x10 | code; 12];
        if ![1, 2, 3].contains(&code) {
            assert_eq!(
                DownlinkCommand::decode(&bytes),
                Err(CodecError::UnknownCommand(code)),
                "downlink code {code}"
            );
        }
        if code != 8 {
            assert_eq!(
                StatusUplink::decode(&bytes),
                Err(CodecError::UnknownCommand(code)),
                "uplink code {code}"
            );
        }
    }
    // A valid command of another kind is not a WAKE.
    assert_eq!(Wake::decode(&[0x13]), Err(CodecError::UnknownCommand(3)));
}

#[test]
fn every_wrong_length() {
    let cases: [(u8, &[usize]); 4] = [(1, &[7, 11]), (2, &[3]), (3, &[1]), (8, &[10])];
    for (code, expected) in cases {
        for len in 1..=64 {
            let mut bytes = vec![0u8; len];
            bytes[0] = 0x10 | code;
            let result = if code == 8 {
                StatusUplink::decode(&bytes).map(|_| ())
            } else {
                DownlinkCommand::decode(&bytes).map(|_| ())
            };
            if expected.contains(&len) {
                assert_eq!(result, Ok(()), "code {code}, {len} bytes");
            } else {
                assert_eq!(
                    result,
                    Err(CodecError::BadLength {
                        command: code,
                        expected,
                        got: len
                    }),
                    "code {code}, {len} bytes"
                );
            }
        }
    }
}

#[test]
fn error_messages_say_what_is_wrong() {
    let message = DownlinkCommand::decode(&[0x11, 0, 1])
        .unwrap_err()
        .to_string();
    assert_eq!(message, "WAKE (code 1) must be 7 or 11 bytes, got 3");
    let message = DownlinkCommand::decode(&[0x21]).unwrap_err().to_string();
    assert!(message.contains("unsupported codec version 2"), "{message}");
    let message = Delay::from_secs(2_000_000).unwrap_err().to_string();
    assert!(
        message.contains("delay") && message.contains("1966020"),
        "{message}"
    );
}

#[test]
fn non_canonical_durations_are_refused() {
    let wake_bytes = |delay: u16, window: u8| {
        let [hi, lo] = delay.to_be_bytes();
        [0x11, 0, 1, hi, lo, window, 0]
    };
    let delay = Err(CodecError::NonCanonical { field: "delay" });
    let window = Err(CodecError::NonCanonical { field: "window" });
    // 10 min is 600 s; 546 min is 32760 s: both must be in seconds.
    assert_eq!(DownlinkCommand::decode(&wake_bytes(0x800a, 1)), delay);
    assert_eq!(DownlinkCommand::decode(&wake_bytes(0x8000 | 546, 1)), delay);
    assert!(DownlinkCommand::decode(&wake_bytes(0x8000 | 547, 1)).is_ok());
    // 0 min and 21 min (1260 s) fit 10 s units; 22 min does not.
    assert_eq!(DownlinkCommand::decode(&wake_bytes(1, 0x80)), window);
    assert_eq!(DownlinkCommand::decode(&wake_bytes(1, 0x80 | 21)), window);
    assert!(DownlinkCommand::decode(&wake_bytes(1, 0x80 | 22)).is_ok());
}

#[test]
fn reserved_flag_bits_are_refused() {
    for flags in 2..=255u8 {
        let bytes = [0x18, 0, 0, 0, 0, flags, 0, 0, 0, 0];
        assert_eq!(
            StatusUplink::decode(&bytes),
            Err(CodecError::ReservedBits(flags))
        );
    }
}

// ---------------------------------------------------------------------------
// Duration units

#[test]
fn delay_unit_selection() {
    let bits = |secs| Delay::from_secs(secs).unwrap().to_wire();
    assert_eq!(bits(0), 0);
    assert_eq!(bits(1), 1);
    assert_eq!(bits(7200), 7200);
    assert_eq!(bits(32_767), 0x7fff);
    // Whole minutes above 32767 s.
    assert_eq!(bits(547 * 60), 0x8000 | 547);
    assert_eq!(bits(36_000), 0x8000 | 600);
    assert_eq!(bits(32_767 * 60), 0xffff);
    // Not exact: the nearest representable value (ties: the larger).
    assert_eq!(bits(32_768), 0x7fff);
    assert_eq!(bits(36_029), 0x8000 | 600);
    assert_eq!(bits(36_030), 0x8000 | 601);
    assert_eq!(Delay::from_secs(36_030).unwrap().secs(), 36_060);
    // Beyond 32767 min.
    assert_eq!(
        Delay::from_secs(32_767 * 60 + 1),
        Err(CodecError::OutOfRange {
            field: "delay",
            requested: Duration::from_secs(32_767 * 60 + 1),
            max: Duration::from_secs(32_767 * 60),
        })
    );
    assert!(Delay::from_duration(Duration::MAX).is_err());
}

#[test]
fn window_unit_selection() {
    let bits = |secs| Window::from_secs(secs).unwrap().to_wire();
    assert_eq!(bits(0), 0);
    assert_eq!(bits(10), 1);
    assert_eq!(bits(60), 6);
    assert_eq!(bits(900), 90);
    assert_eq!(bits(1270), 0x7f);
    assert_eq!(bits(1320), 0x80 | 22);
    assert_eq!(bits(3600), 0x80 | 60);
    assert_eq!(bits(127 * 60), 0xff);
    // Rounded to 10 s below 1270 s, to minutes above.
    assert_eq!(Window::from_secs(14).unwrap().secs(), 10);
    assert_eq!(Window::from_secs(15).unwrap().secs(), 20);
    assert_eq!(Window::from_secs(1275).unwrap().secs(), 1270);
    assert_eq!(Window::from_secs(1500).unwrap().secs(), 1500);
    assert_eq!(Window::from_secs(1510).unwrap().secs(), 1500);
    assert_eq!(Window::from_secs(1530).unwrap().secs(), 1560);
    assert_eq!(
        Window::from_secs(127 * 60 + 1),
        Err(CodecError::OutOfRange {
            field: "window",
            requested: Duration::from_secs(127 * 60 + 1),
            max: Duration::from_secs(127 * 60),
        })
    );
}

#[test]
fn durations_through_the_duration_api() {
    let w = Wake::new(
        7,
        Duration::from_secs(2 * 3600),
        Duration::from_secs(15 * 60),
        1,
        None,
    )
    .unwrap();
    assert_eq!(w.delay.as_duration(), Duration::from_secs(7200));
    assert_eq!(Duration::from(w.window), Duration::from_secs(900));
    assert_eq!(
        Window::try_from(Duration::from_millis(4_999))
            .unwrap()
            .secs(),
        0
    );
    assert_eq!(
        Window::try_from(Duration::from_millis(5_000))
            .unwrap()
            .secs(),
        10
    );
    assert!(
        Wake::new(
            1,
            Duration::from_secs(3 * 365 * 86_400),
            Duration::ZERO,
            0,
            None
        )
        .is_err()
    );
    assert!(Wake::new(1, Duration::ZERO, Duration::from_secs(3 * 3600), 0, None).is_err());
}

#[test]
fn window_rounding_is_to_the_nearest_representable_value() {
    let representable: Vec<u32> = (0..=255u8)
        .filter_map(|bits| Window::from_wire(bits).ok())
        .map(Window::secs)
        .collect();
    for secs in 0..=127 * 60 {
        let got = Window::from_secs(secs.into()).unwrap().secs();
        let best = representable
            .iter()
            .map(|r| r.abs_diff(secs))
            .min()
            .unwrap();
        assert_eq!(got.abs_diff(secs), best, "{secs} s became {got} s");
    }
}

#[test]
fn every_field_value_is_canonical_or_refused() {
    for bits in 0..=u16::MAX {
        match Delay::from_wire(bits) {
            Ok(delay) => {
                assert_eq!(delay.to_wire(), bits);
                assert_eq!(Delay::from_secs(delay.secs().into()), Ok(delay));
            }
            Err(e) => {
                assert_eq!(e, CodecError::NonCanonical { field: "delay" });
                assert!(bits & 0x8000 != 0 && u32::from(bits & 0x7fff) * 60 <= 32_767);
            }
        }
    }
    for bits in 0..=u8::MAX {
        match Window::from_wire(bits) {
            Ok(window) => assert_eq!(window.to_wire(), bits),
            Err(_) => assert!(bits & 0x80 != 0 && u32::from(bits & 0x7f) * 60 <= 1270),
        }
    }
}

// ---------------------------------------------------------------------------
// Regions

#[test]
fn regional_limits() {
    use Direction::{Downlink, Uplink};
    for dir in [Uplink, Downlink] {
        let eu: Vec<_> = (0..=8)
            .map(|dr| max_payload(Region::Eu868, dr, dir))
            .collect();
        let expected = [51, 51, 51, 115, 242, 242, 242, 242].map(Some);
        assert_eq!(eu[..8], expected);
        assert_eq!(eu[8], None);
    }
    let us_up: Vec<_> = (0..=5)
        .map(|dr| Region::Us915.max_payload(dr, Uplink))
        .collect();
    assert_eq!(
        us_up,
        [Some(11), Some(53), Some(125), Some(242), Some(242), None]
    );
    let us_down: Vec<_> = (7..=14)
        .map(|dr| Region::Us915.max_payload(dr, Downlink))
        .collect();
    assert_eq!(
        us_down,
        [
            None,
            Some(53),
            Some(129),
            Some(242),
            Some(242),
            Some(242),
            Some(242),
            None
        ]
    );
    assert_eq!(Region::Us915.max_payload(0, Downlink), None);
}

#[test]
fn region_names() {
    for (name, region) in [
        ("EU868", Region::Eu868),
        ("eu868", Region::Eu868),
        ("Us915", Region::Us915),
        ("US915", Region::Us915),
    ] {
        assert_eq!(name.parse::<Region>(), Ok(region));
    }
    assert_eq!(Region::Us915.to_string(), "US915");
    let err = "AS923".parse::<Region>().unwrap_err().to_string();
    assert!(err.contains("AS923") && err.contains("EU868"), "{err}");
    assert!("".parse::<Region>().is_err());
}

#[test]
fn fitting_payloads() {
    assert_eq!(check_fits(Region::Us915, 0, Direction::Uplink, 11), Ok(()));
    assert_eq!(
        check_fits(Region::Us915, 0, Direction::Uplink, 12),
        Err(PayloadTooLarge {
            region: Region::Us915,
            data_rate: 0,
            direction: Direction::Uplink,
            payload_len: 12,
            max: Some(11),
        })
    );
    let err = check_fits(Region::Us915, 0, Direction::Downlink, 1).unwrap_err();
    assert_eq!(err.max, None);
    assert_eq!(err.to_string(), "US915 has no downlink data rate DR0");
    let err = check_fits(Region::Eu868, 2, Direction::Downlink, 52).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a 52-byte payload does not fit EU868 downlink DR2 (at most 51 bytes)"
    );
}

#[test]
fn the_largest_messages_fit_every_data_rate() {
    let largest_wake = DownlinkCommand::Wake(Wake {
        campaign: 1,
        delay: Delay::MAX,
        window: Window::MAX,
        network: 1,
        version_tag: Some(VersionTag([1; 4])),
    });
    let status = StatusUplink {
        version_tag: VersionTag([1; 4]),
        pending_confirm: true,
        last_result: OtaResult::Updated,
        battery: 1,
        campaign: 1,
    };
    for len in [largest_wake.encode().len(), status.encode().len()] {
        for region in Region::ALL {
            for dir in [Direction::Uplink, Direction::Downlink] {
                for dr in (0..16).filter(|&dr| region.max_payload(dr, dir).is_some()) {
                    assert_eq!(check_fits(region, dr, dir, len), Ok(()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Properties

/// Durations each field holds exactly, in seconds.
fn exact_delay() -> impl Strategy<Value = u64> {
    prop_oneof![0..=32_767u64, (547..=32_767u64).prop_map(|m| m * 60)]
}

fn exact_window() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0..=127u64).prop_map(|k| k * 10),
        (22..=127u64).prop_map(|m| m * 60)
    ]
}

fn any_tag() -> impl Strategy<Value = Option<VersionTag>> {
    proptest::option::of(any::<[u8; 4]>().prop_map(VersionTag))
}

fn any_command() -> impl Strategy<Value = DownlinkCommand> {
    prop_oneof![
        (
            any::<u16>(),
            exact_delay(),
            exact_window(),
            any::<u8>(),
            any_tag()
        )
            .prop_map(|(campaign, delay, window, network, tag)| {
                let w = Wake::new(
                    campaign,
                    Duration::from_secs(delay),
                    Duration::from_secs(window),
                    network,
                    tag,
                )
                .unwrap();
                assert_eq!(u64::from(w.delay.secs()), delay, "exact delay kept");
                assert_eq!(u64::from(w.window.secs()), window, "exact window kept");
                DownlinkCommand::Wake(w)
            }),
        any::<u16>().prop_map(|campaign| DownlinkCommand::Cancel { campaign }),
        Just(DownlinkCommand::StatusRequest),
    ]
}

fn any_status() -> impl Strategy<Value = StatusUplink> {
    (
        any::<[u8; 4]>(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(
            |(tag, pending_confirm, result, battery, campaign)| StatusUplink {
                version_tag: VersionTag(tag),
                pending_confirm,
                last_result: OtaResult::from_code(result),
                battery,
                campaign,
            },
        )
}

/// Bytes that often start with a valid header, to reach the field checks.
fn plausible_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        (
            prop::sample::select(vec![0x11u8, 0x12, 0x13, 0x18]),
            proptest::collection::vec(any::<u8>(), 0..12)
        )
            .prop_map(|(header, mut tail)| {
                tail.insert(0, header);
                tail
            }),
    ]
}

/// The most a duration may move when encoded: half the unit used.
fn allowed_error(secs: f64, fine_limit: f64, fine_half_unit: f64) -> f64 {
    if secs <= fine_limit {
        fine_half_unit
    } else {
        30.0
    }
}

proptest! {
    #[test]
    fn downlink_round_trip(command in any_command()) {
        let bytes = command.encode();
        prop_assert!(bytes.len() <= 11);
        prop_assert_eq!(bytes.len(), command.buffer_len());
        prop_assert_eq!(DownlinkCommand::decode(&bytes), Ok(command));
    }

    #[test]
    fn uplink_round_trip(status in any_status()) {
        let bytes = status.encode();
        prop_assert_eq!(bytes.len(), 10);
        prop_assert_eq!(StatusUplink::decode(&bytes), Ok(status));
    }

    #[test]
    fn durations_round_within_the_documented_error(
        delay_ms in 0..=32_767u64 * 60_000,
        window_ms in 0..=127u64 * 60_000,
        tag in any_tag(),
    ) {
        let (delay, window) = (Duration::from_millis(delay_ms), Duration::from_millis(window_ms));
        let w = Wake::new(1, delay, window, 0, tag).unwrap();
        let bytes = w.encode();
        prop_assert!(bytes.len() <= 11);
        let decoded = Wake::decode(&bytes).unwrap();
        prop_assert_eq!(decoded, w);
        let (d, win) = (delay.as_secs_f64(), window.as_secs_f64());
        let d_err = (decoded.delay.as_duration().as_secs_f64() - d).abs();
        let w_err = (decoded.window.as_duration().as_secs_f64() - win).abs();
        prop_assert!(d_err <= allowed_error(d, 32_767.0, 0.5), "delay {d} s off by {d_err}");
        prop_assert!(w_err <= allowed_error(win, 1270.0, 5.0), "window {win} s off by {w_err}");
    }

    #[test]
    fn durations_above_the_maximum_are_refused(
        delay_extra in 1..u64::MAX / 2,
        window_extra in 1..u64::MAX / 2,
    ) {
        let over = |max_s: u64, extra_ms: u64| {
            Duration::from_secs(max_s) + Duration::from_millis(extra_ms)
        };
        let delay_out = Delay::from_duration(over(32_767 * 60, delay_extra));
        let window_out = Window::from_duration(over(127 * 60, window_extra));
        prop_assert!(
            matches!(delay_out, Err(CodecError::OutOfRange { field: "delay", .. })),
            "{:?}", delay_out
        );
        prop_assert!(
            matches!(window_out, Err(CodecError::OutOfRange { field: "window", .. })),
            "{:?}", window_out
        );
    }

    /// The property `fuzz/fuzz_targets/downlink.rs` and `uplink.rs` check
    /// on millions of inputs (bench/fuzz.sh).
    #[test]
    fn decoding_any_bytes_never_panics_and_is_canonical(bytes in plausible_bytes()) {
        if let Ok(command) = DownlinkCommand::decode(&bytes) {
            prop_assert_eq!(command.encode(), bytes.clone());
        }
        if let Ok(status) = StatusUplink::decode(&bytes) {
            prop_assert_eq!(status.encode(), bytes.clone());
        }
        if let Ok(wake) = Wake::decode(&bytes) {
            prop_assert_eq!(wake.encode(), bytes);
        }
    }
}
