//! Standing multicast sessions: groups set up once, at installation, and
//! woken in any later campaign by multicast alone.
//!
//! A TS005 class C session is one-shot: each campaign needs one unicast
//! `McClassCSessionReq` per member, as long as the WAKE it replaces
//! ([`crate::multicast`]). otavan's StandingSessionReq
//! ([`otavan_protocol::lora::multicast::StandingSession`]) instead gives a
//! group a short class C window every [`PERIOD`] at its own slot of the
//! day. The group's WAKE then goes out as one multicast frame in its slot
//! on the last [`WAKE_REPEATS`] days before the pass, and a campaign costs
//! no unicast downlink at all for a meter that hears one of them.
//!
//! Slots are spread over the day so that no gateway has two groups' frames
//! closer than its RX2 duty cycle allows ([`assign_slots`]).

use std::collections::HashMap;
use std::time::Duration;

use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::multicast::{Key, McRequest, McRootKey, StandingSession};
use otavan_protocol::region::Region;

use crate::multicast::{group_setup, slot};
use crate::time::{Time, as_secs_f64, secs};

/// A standing session's period: one slot a day.
pub const PERIOD: Time = secs(86_400);

/// Each slot's class C window lasts 2^3 = 8 s: the frame's 1.5 s at SF12
/// after the members' clocks, kept by `DeviceTimeReq`, have drifted a few
/// seconds at most.
pub const WINDOW_EXPONENT: u8 = 3;

/// How long a slot's window lasts.
pub const WINDOW: Time = secs(1 << WINDOW_EXPONENT);

/// The frame goes out this long after the slot opens (the members'
/// clocks may be off by as much either way).
pub const FRAME_OFFSET: Time = secs(2);

/// The group's WAKE goes out in its slot on this many days before the
/// pass: a member that misses the first frame (noise, a busy gateway)
/// hears the second.
pub const WAKE_REPEATS: usize = 2;

/// A standing group covers this stretch of a van's drive, shorter than a
/// one-shot group's ([`crate::multicast::GROUP_SPAN`]): with no setups to
/// amortise, a group's cost is its frames, so groups can be small enough
/// that a member's WiFi waits for the van about a minute on average
/// (20 J at 100 mA and 3.3 V, within [`crate::multicast::MAX_EXTRA_J`]).
/// Measured on examples/city.toml: 180 s leaves half the groups over the
/// energy budget; 60 s doubles the groups and their frames for 11 J less
/// per meter and fewer meters updated (docs/benchmarks.md).
pub const GROUP_SPAN: Time = secs(120);

/// A WAKE heard in a slot must leave the meter at least this long before
/// its WiFi window opens.
pub const MIN_LEAD: Time = secs(60);

/// The installation-time setup frame: `McGroupSetupReq` (1 + 29 bytes) and
/// StandingSessionReq (1 + 12 bytes).
pub const SETUP_LEN: usize = 43;

/// The unicast setup frame a member of group `addr` gets once: the group
/// with key `mc_key` in slot 0, the key encrypted under the member's
/// `root`, its counters from [`crate::multicast::FIRST_FCNT`], and a standing session on
/// `region`'s RX2 whose first window opens at Unix time `first_slot_unix`
/// (sent as GPS time) and comes back every [`PERIOD`].
pub fn setup_frame(
    addr: u32,
    mc_key: &Key,
    root: &McRootKey,
    first_slot_unix: Duration,
    region: Region,
) -> Vec<u8> {
    let rx2 = region.rx2();
    McRequest::encode_all(&[
        group_setup(addr, mc_key, root),
        McRequest::StandingSession(StandingSession {
            group: slot(),
            first_slot: DeviceTime::from_unix(first_slot_unix).gps_seconds,
            period_minutes: (PERIOD / secs(60)) as u16,
            timeout_exponent: WINDOW_EXPONENT,
            frequency_hz: rx2.frequency,
            data_rate: region.rx2_data_rate(),
        }),
    ])
    .expect("the setup frame's fields are in range")
}

/// Gives each group a slot: an offset into the [`PERIOD`], a multiple of
/// `spacing` (a frame's airtime times its band's duty-cycle divisor), such
/// that groups sharing a gateway (`gateways[g]`: the gateways group `g`'s
/// members are best heard by) get different slots while a gateway has
/// slots left; past that, the least used. Deterministic: groups are taken
/// in order, each given the first slot that fits.
pub fn assign_slots(gateways: &[Vec<u32>], spacing: Time) -> Vec<Time> {
    let slots = (PERIOD / spacing.max(1)).max(1) as usize;
    let mut used: HashMap<u32, Vec<u16>> = HashMap::new();
    let mut first_free: HashMap<u32, usize> = HashMap::new();
    gateways
        .iter()
        .map(|gws| {
            let start = gws
                .iter()
                .map(|g| first_free.get(g).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            let load = |used: &HashMap<u32, Vec<u16>>, s: usize| {
                gws.iter()
                    .map(|g| used.get(g).map_or(0, |u| u[s]))
                    .max()
                    .unwrap_or(0)
            };
            let slot = (start..slots)
                .find(|&s| load(&used, s) == 0)
                .unwrap_or_else(|| {
                    (0..slots)
                        .min_by_key(|&s| (load(&used, s), s))
                        .expect("at least one slot")
                });
            for &g in gws {
                let u = used.entry(g).or_insert_with(|| vec![0; slots]);
                u[slot] = u[slot].saturating_add(1);
                let free = first_free.entry(g).or_insert(0);
                while *free < slots && u[*free] > 0 {
                    *free += 1;
                }
            }
            spacing * slot as Time
        })
        .collect()
}

/// The slots a group at `offset` is woken in for a WiFi window opening at
/// `open`: its last [`WAKE_REPEATS`] windows that close at least
/// [`MIN_LEAD`] before `open`, none before `earliest`, oldest first.
/// Empty when the pass comes before the group's first slot.
pub fn wake_slots(offset: Time, open: Time, earliest: Time) -> Vec<Time> {
    let Some(latest) = open.checked_sub(MIN_LEAD + WINDOW) else {
        return Vec::new();
    };
    let mut slots: Vec<Time> = (0..WAKE_REPEATS as u64)
        .filter_map(|back| {
            let days = latest.checked_sub(offset)? / PERIOD;
            let slot = (days.checked_sub(back)?) * PERIOD + offset;
            (slot >= earliest).then_some(slot)
        })
        .collect();
    slots.reverse();
    slots
}

/// What listening in its slot every day costs a member, joules per day,
/// at `rx_amps` and `volts`: the whole window, heard or not (est.; a
/// radio that stops at no preamble spends less).
pub fn listen_j_per_day(rx_amps: f64, volts: f64) -> f64 {
    rx_amps * volts * as_secs_f64(WINDOW) * (secs(86_400) / PERIOD) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sharing_a_gateway_never_share_a_slot() {
        let spacing = secs(15);
        let gateways = [vec![1], vec![1, 2], vec![2], vec![3], vec![1]];
        let slots = assign_slots(&gateways, spacing);
        assert_eq!(slots, [0, 15, 0, 0, 30].map(secs));
    }

    #[test]
    fn a_full_gateway_reuses_its_least_used_slot() {
        // A 12 h spacing leaves two slots a day.
        let spacing = secs(43_200);
        let gateways = vec![vec![7]; 5];
        let slots = assign_slots(&gateways, spacing);
        assert_eq!(slots, [0, 43_200, 0, 43_200, 0].map(secs));
    }

    #[test]
    fn the_wake_goes_out_in_the_last_slots_before_the_pass() {
        let day = PERIOD;
        let offset = secs(3_600);
        // A window opening on day 3 at 02:00: slots on days 2 and 3 at
        // 01:00 both close more than a minute before it.
        let open = 3 * day + secs(7_200);
        assert_eq!(
            wake_slots(offset, open, 0),
            [2 * day + offset, 3 * day + offset]
        );
        // At 01:00:30 the day's slot is too late: days 1 and 2.
        let open = 3 * day + offset + secs(30);
        assert_eq!(
            wake_slots(offset, open, 0),
            [day + offset, 2 * day + offset]
        );
        // Only slots after the campaign's start count.
        assert_eq!(wake_slots(offset, open, 2 * day), [2 * day + offset]);
        assert_eq!(wake_slots(offset, secs(600), 0), Vec::<Time>::new());
    }

    #[test]
    fn the_setup_frame_carries_the_group_and_its_daily_slot() {
        let root = McRootKey::from_gen_app_key(&[9; 16]);
        let frame = setup_frame(
            0x0102_0304,
            &[5; 16],
            &root,
            Duration::from_secs(1_800_000_000),
            Region::Eu868,
        );
        assert_eq!(frame.len(), SETUP_LEN);
        let requests = McRequest::decode_all(&frame).unwrap();
        let McRequest::StandingSession(session) = requests[1] else {
            panic!("{requests:?}")
        };
        assert_eq!(session.period_s(), 86_400);
        assert_eq!(session.window_s(), 8);
        assert_eq!(
            DeviceTime {
                gps_seconds: session.first_slot,
                fraction: 0
            }
            .to_unix(),
            Duration::from_secs(1_800_000_000)
        );
    }

    #[test]
    fn a_daily_window_costs_a_third_of_a_joule() {
        // 8 s at 11 mA and 3.6 V.
        assert!((listen_j_per_day(0.011, 3.6) - 0.3168).abs() < 1e-9);
    }
}
