//! The LoRa trigger's saved state, `.otavan/lora.json`: the LoRaWAN
//! session (lorawan-device's own serde form: an upgrade of that crate can
//! change it), the schedule, the last result and the multicast groups
//! (standing sessions included).

use std::collections::VecDeque;
use std::time::Duration;

use lorawan_device::async_device::Session;
use lorawan_device::{AppSKey, DevAddr, DevEui, NewSKey};
use otavan_client::lora::multicast::{GroupsState, MulticastGroups, SetupTime};
use otavan_client::lora::{Saved, SchedulerState, WifiSession};
use otavan_client::storage::Storage;
use otavan_protocol::lora::OtaResult;
use otavan_protocol::lora::multicast::{
    ClassCSession, GroupId, GroupSetup, McRequest, McRootKey, StandingSession,
};
use otavan_protocol::region::Region;

use super::{assert_writes, empty_meter, meter_with, path};

fn dev_eui() -> DevEui {
    DevEui::from([0x70, 0xB3, 0xD5, 0x7E, 0xD0, 0x00, 0x12, 0x34])
}

/// The setup of multicast group 2 for a meter, and the time it came.
fn group_setup(root: &McRootKey) -> (GroupId, McRequest, SetupTime) {
    let group = GroupId::new(2).unwrap();
    let setup = McRequest::GroupSetup(GroupSetup {
        group,
        mc_addr: 0x0170_0007,
        mc_key_encrypted: root.encrypt_group_key(b"street segment 7"),
        min_fcount: 0,
        max_fcount: 1000,
    });
    let at = SetupTime {
        unix: Duration::from_secs(1_767_225_600),
        meter: Duration::from_secs(1_767_225_600),
    };
    (group, setup, at)
}

/// A meter in multicast group 2 with a class C window scheduled.
fn multicast() -> GroupsState {
    let root = McRootKey::from_gen_app_key(&[0x33; 16]);
    let mut groups = MulticastGroups::new(root, Region::Eu868, GroupsState::default());
    let (group, setup, at) = group_setup(&root);
    let session = McRequest::ClassCSession(ClassCSession {
        group,
        // 2026-01-01T00:10:00Z in GPS time.
        session_time: 1_451_260_818 + 600,
        timeout_exponent: 6,
        frequency_hz: 869_525_000,
        data_rate: 0,
    });
    groups.handle(&[setup, session], at);
    groups.state().clone()
}

/// A meter in multicast group 2 with a standing session: a daily 8 s
/// window, the next one's time kept.
fn standing() -> GroupsState {
    let root = McRootKey::from_gen_app_key(&[0x33; 16]);
    let mut groups = MulticastGroups::new(root, Region::Eu868, GroupsState::default());
    let (group, setup, at) = group_setup(&root);
    let session = McRequest::StandingSession(StandingSession {
        group,
        // 2026-01-01T03:00:00Z in GPS time.
        first_slot: 1_451_260_818 + 3 * 3600,
        period_minutes: 24 * 60,
        timeout_exponent: 3,
        frequency_hz: 869_525_000,
        data_rate: 0,
    });
    groups.handle(&[setup, session], at);
    groups.state().clone()
}

/// Every golden trigger state and what it holds; all load, forever.
fn saved() -> Vec<(&'static str, Saved)> {
    let mut session = Session::new(
        NewSKey::from([0x11; 16]),
        AppSKey::from([0x22; 16]),
        DevAddr::new([0x26, 0x01, 0x1B, 0x2C]).unwrap(),
    );
    session.fcnt_up = 4_117;
    session.fcnt_down = 38;
    let opens_at = Duration::from_secs(1_767_232_800);
    vec![
        (
            "lora/joining.json",
            Saved {
                dev_eui: Some(dev_eui()),
                ..Saved::default()
            },
        ),
        (
            "lora/scheduled.json",
            Saved {
                dev_eui: Some(dev_eui()),
                session: Some(session),
                scheduler: SchedulerState {
                    scheduled: Some(WifiSession {
                        campaign: 7,
                        opens_at,
                        closes_at: opens_at + Duration::from_secs(900),
                        network: 1,
                    }),
                    seen: VecDeque::from([3, 5]),
                    last_campaign: 7,
                },
                last_result: OtaResult::Updated.code(),
                status_due: true,
                multicast: GroupsState::default(),
            },
        ),
        (
            "lora/multicast.json",
            Saved {
                dev_eui: Some(dev_eui()),
                multicast: multicast(),
                ..Saved::default()
            },
        ),
        (
            "lora/standing.json",
            Saved {
                dev_eui: Some(dev_eui()),
                multicast: standing(),
                ..Saved::default()
            },
        ),
    ]
}

/// The golden trigger states today's code writes.
const WRITTEN: &[&str] = &[
    "lora/joining.json",
    "lora/scheduled.json",
    "lora/multicast.json",
    "lora/standing.json",
];

#[test]
fn golden_trigger_states_load_and_are_written_byte_for_byte() {
    for name in WRITTEN {
        let (_, state) = saved().into_iter().find(|(n, _)| n == name).unwrap();
        let (_dir, storage) = empty_meter();
        state.save(&storage).unwrap();
        assert_writes(name, &storage.read(&path(".otavan/lora.json")).unwrap());
    }
    for (name, expected) in saved() {
        let (_dir, storage) = meter_with(name, ".otavan/lora.json");
        let loaded = Saved::load(&storage).unwrap();
        assert_eq!(loaded.dev_eui, expected.dev_eui, "{name}");
        assert_eq!(loaded.scheduler, expected.scheduler, "{name}");
        assert_eq!(loaded.last_result(), expected.last_result(), "{name}");
        assert_eq!(loaded.status_due, expected.status_due, "{name}");
        assert_eq!(loaded.multicast, expected.multicast, "{name}");
        let keys = |s: &Session| (s.newskey, s.appskey, s.devaddr, s.fcnt_up, s.fcnt_down);
        let (loaded_session, expected_session) =
            (loaded.session.as_ref(), expected.session.as_ref());
        assert_eq!(
            loaded_session.map(keys),
            expected_session.map(keys),
            "{name}"
        );
        // Everything else in the session, uplink state included.
        assert_eq!(format!("{loaded:?}"), format!("{expected:?}"), "{name}");
    }
}
