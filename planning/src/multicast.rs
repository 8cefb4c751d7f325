//! Multicast WAKE planning: which meters one multicast WAKE serves
//! together, and whether a group is better served by multicast or by
//! unicast WAKEs.
//!
//! A group is a street segment of one van pass: the meters whose first
//! usable contact is with the same van within the same
//! [`GroupConfig::span`] of its drive. Every member is given the group and
//! a class C window at the group's session time by unicast (LoRaWAN Remote
//! Multicast Setup, TS005); at the session time one multicast frame
//! carries the group's WAKE, its WiFi window covering every member's
//! contact.
//!
//! What that buys is not airtime per se. TS005 sets up each class C
//! session by a unicast `McClassCSessionReq` (11 bytes, the size of a
//! tagged WAKE), so a group costs one unicast downlink per member plus
//! its multicast frame, against one unicast WAKE per member. The setups,
//! though, can go out at any of a member's uplinks before the session
//! (its time is absolute), while a unicast WAKE must ride the member's
//! last uplink before the window, when every meter of the street needs
//! its own in the same hour of the same gateway's duty cycle.
//! [`Costs::choose`] weighs both: the airtime, the unicast WAKEs' load on
//! the duty cycle in the hour before the pass, and what a member pays
//! more: its class C window's receive current, and its WiFi waiting from
//! the group's window opening to its own contact.

use std::collections::BTreeMap;
use std::time::Duration;

use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::multicast::{
    ClassCSession, GroupId, GroupSetup, Key, McRequest, McRootKey,
};
use otavan_protocol::region::Region;

use crate::contacts::{Contact, Contacts};
use crate::time::{Time, as_secs_f64, secs};

/// The stretch of one van's drive a group covers: a street segment. The
/// group's WiFi window opens for its first member, so the last one's
/// WiFi waits up to this much longer than under its own WAKE: three
/// minutes keeps that under 60 J at 100 mA (est).
pub const GROUP_SPAN: Time = secs(180);

/// The class C window opens this long before the group's WiFi window,
/// leaving the WAKE's frame time to go out within the duty cycle.
pub const WAKE_LEAD: Time = secs(300);

/// The class C window lasts 2^7 = 128 s: long enough for a gateway to
/// find a slot in RX2's 10 % duty cycle for several groups at once.
pub const CLASS_C_EXPONENT: u8 = 7;

/// How long the class C window lasts.
pub const CLASS_C_WINDOW: Time = secs(1 << CLASS_C_EXPONENT);

/// The multicast WAKE goes out this long after the class C window opens,
/// at the earliest (the members' clocks may be off by a few seconds).
pub const FRAME_OFFSET: Time = secs(5);

/// A setup frame: `McGroupSetupReq` (1 + 29 bytes) and
/// `McClassCSessionReq` (1 + 10 bytes).
pub const SETUP_LEN: usize = 41;

/// The most a meter may spend on a multicast WAKE beyond a unicast one,
/// joules: about what a whole unicast campaign costs a city meter in a
/// rehearsal (29 J), 0.03 % of a 7.7 Ah, 3.6 V battery (est).
pub const MAX_EXTRA_J: f64 = 30.0;

/// A group's frame counters start here.
pub const FIRST_FCNT: u32 = 1;

/// How many frames a group may carry before it must be set up again.
pub const GROUP_FRAMES: u32 = 1000;

/// The meter's group slot otavan's setups use.
pub(crate) fn slot() -> GroupId {
    GroupId::new(0).expect("slot 0 exists")
}

/// `McGroupSetupReq` for a member of group `addr`: the group with key
/// `mc_key` in [`slot`], the key encrypted under the member's `root`, its
/// counters from [`FIRST_FCNT`] for [`GROUP_FRAMES`] frames.
pub(crate) fn group_setup(addr: u32, mc_key: &Key, root: &McRootKey) -> McRequest {
    McRequest::GroupSetup(GroupSetup {
        group: slot(),
        mc_addr: addr,
        mc_key_encrypted: root.encrypt_group_key(mc_key),
        min_fcount: FIRST_FCNT,
        max_fcount: FIRST_FCNT + GROUP_FRAMES,
    })
}

/// The unicast setup frame (TS005) a member of group `addr` gets: the
/// group with key `mc_key` in slot 0, the key encrypted under the
/// member's `root`, its counters from [`FIRST_FCNT`], and a class C
/// window of 2^[`CLASS_C_EXPONENT`] s on `region`'s RX2 at Unix time
/// `session_unix` (sent as GPS time).
pub fn setup_frame(
    addr: u32,
    mc_key: &Key,
    root: &McRootKey,
    session_unix: Duration,
    region: Region,
) -> Vec<u8> {
    let rx2 = region.rx2();
    McRequest::encode_all(&[
        group_setup(addr, mc_key, root),
        McRequest::ClassCSession(ClassCSession {
            group: slot(),
            session_time: DeviceTime::from_unix(session_unix).gps_seconds,
            timeout_exponent: CLASS_C_EXPONENT,
            frequency_hz: rx2.frequency,
            data_rate: region.rx2_data_rate(),
        }),
    ])
    .expect("the setup frame's fields are in range")
}

/// How much longer, on average, a member's WiFi waits in `segment`'s
/// window than in its own: from the group's first contact to its own.
pub fn mean_wait(segment: &SegmentGroup, contacts: &Contacts) -> Time {
    let starts: Vec<Time> = segment
        .members
        .iter()
        .zip(&segment.contacts)
        .map(|(&m, &c)| contacts.of(m)[c].start)
        .collect();
    let first = starts.iter().copied().min().unwrap_or(0);
    starts.iter().map(|s| s - first).sum::<Time>() / starts.len().max(1) as Time
}

/// How groups are formed.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// The stretch of one van's drive a group covers.
    pub span: Time,
    /// No session before this (every member must have been heard, so its
    /// setup can reach it first).
    pub earliest_session: Time,
    /// The class C window opens this long before the group's WiFi window.
    pub wake_lead: Time,
    /// Contacts shorter than this are not planned.
    pub min_contact: Time,
    /// The WiFi window opens this long before the first member's contact.
    pub lead: Time,
    /// And closes this long after the last one's.
    pub slack: Time,
    /// The longest WiFi window a WAKE carries.
    pub max_window: Time,
}

/// One group: the meters a van pass serves together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentGroup {
    /// The van.
    pub van: u16,
    /// Its meters, by the start of their contact.
    pub members: Vec<usize>,
    /// Each member's contact the group is for (an index into the meter's
    /// contacts).
    pub contacts: Vec<usize>,
    /// When the class C window opens.
    pub session_at: Time,
    /// When the WiFi window the WAKE opens opens.
    pub open: Time,
    /// And closes.
    pub close: Time,
}

/// A meter, the index of its contact and the contact.
type Candidate = (usize, usize, Contact);

/// Groups meters by the first contact with at least `min_contact` whose
/// window can open after the earliest session: one group per van and
/// `span` of its drive (a group whose WiFi window would be longer than
/// `max_window` is cut into groups that fit). Meters without such a
/// contact get no group. `meters` gives each meter's contacts in time
/// order; groups come out by van, then time.
pub fn segment_groups<'a>(
    meters: impl IntoIterator<Item = (usize, &'a [Contact])>,
    config: &GroupConfig,
) -> Vec<SegmentGroup> {
    let earliest = config.earliest_session + config.wake_lead + config.lead;
    let mut by_segment: BTreeMap<(u16, Time), Vec<Candidate>> = BTreeMap::new();
    for (m, contacts) in meters {
        let first = contacts
            .iter()
            .enumerate()
            .find(|(_, c)| c.start >= earliest && c.duration() >= config.min_contact);
        if let Some((i, c)) = first {
            by_segment
                .entry((c.van, c.start / config.span.max(1)))
                .or_default()
                .push((m, i, *c));
        }
    }
    let mut groups = Vec::new();
    for ((van, _), mut members) in by_segment {
        members.sort_by_key(|(m, _, c)| (c.start, *m));
        let mut current: Option<SegmentGroup> = None;
        for (m, i, c) in members {
            let close = c.end + config.slack;
            match &mut current {
                Some(g) if close - g.open <= config.max_window => {
                    g.members.push(m);
                    g.contacts.push(i);
                    g.close = g.close.max(close);
                }
                _ => {
                    let open = c.start - config.lead;
                    groups.extend(current.take());
                    current = Some(SegmentGroup {
                        van,
                        members: vec![m],
                        contacts: vec![i],
                        session_at: open - config.wake_lead,
                        open,
                        close,
                    });
                }
            }
        }
        groups.extend(current);
    }
    groups
}

/// What serving one group costs either way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Gateway airtime of a unicast WAKE per member, summed.
    pub unicast: Time,
    /// Gateway airtime of the members' setups, summed, plus the
    /// multicast frame.
    pub multicast: Time,
    /// Of the unicast WAKEs, the airtime the busiest gateway would have to
    /// send in the hour before the pass.
    pub unicast_peak_hour: Time,
    /// The airtime that gateway may send in an hour (its duty cycle).
    pub hour_budget: Time,
    /// How long each member listens in its class C window, expected.
    pub class_c_listen: Time,
    /// How much longer a member's WiFi waits for the van, on average,
    /// than under its own WAKE: the group's window opens for its first
    /// member's contact.
    pub wifi_wait: Time,
    /// The members' LoRa receive current, amperes.
    pub rx_amps: f64,
    /// Their WiFi current while waiting for the van, amperes.
    pub wait_amps: f64,
    /// Supply voltage.
    pub volts: f64,
    /// The most a member may spend on a multicast WAKE beyond a unicast
    /// one, joules.
    pub max_extra_j: f64,
}

/// How a group's meters are woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Each meter its own WAKE.
    Unicast,
    /// One multicast WAKE after each meter's setup.
    Multicast,
}

impl Costs {
    /// What a multicast WAKE costs a member beyond a unicast one, joules:
    /// its class C window and its WiFi's longer wait.
    pub fn extra_j(&self) -> f64 {
        self.volts
            * (self.rx_amps * as_secs_f64(self.class_c_listen)
                + self.wait_amps * as_secs_f64(self.wifi_wait))
    }

    /// Multicast when the unicast WAKEs would not fit the busiest
    /// gateway's duty cycle in the hour before the pass, or cost more
    /// airtime; never when it costs a member more than its budget.
    pub fn choose(&self) -> Delivery {
        if self.extra_j() > self.max_extra_j {
            return Delivery::Unicast;
        }
        if self.unicast_peak_hour > self.hour_budget || self.multicast < self.unicast {
            Delivery::Multicast
        } else {
            Delivery::Unicast
        }
    }
}

/// An hour, for duty-cycle budgets.
pub const HOUR: Time = secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(van: u16, start_s: u64, len_s: u64) -> Contact {
        Contact {
            start: secs(start_s),
            end: secs(start_s + len_s),
            van,
            pass: 0,
        }
    }

    fn config() -> GroupConfig {
        GroupConfig {
            span: secs(600),
            earliest_session: secs(1000),
            wake_lead: secs(300),
            min_contact: secs(10),
            lead: secs(60),
            slack: secs(120),
            max_window: secs(127 * 60),
        }
    }

    #[test]
    fn meters_of_one_pass_segment_share_a_group() {
        let contacts = [
            vec![contact(0, 3000, 30)],
            vec![contact(0, 3100, 20)],
            // Same van, the next segment.
            vec![contact(0, 3700, 30)],
            // Another van at the same time.
            vec![contact(1, 3050, 30)],
            // Too short, then a usable pass later.
            vec![contact(0, 3010, 5), contact(0, 9000, 40)],
            // Before the earliest session: no group.
            vec![contact(0, 1200, 60)],
        ];
        let groups = segment_groups(
            contacts.iter().enumerate().map(|(m, c)| (m, c.as_slice())),
            &config(),
        );
        let members: Vec<(u16, Vec<usize>)> =
            groups.iter().map(|g| (g.van, g.members.clone())).collect();
        assert_eq!(
            members,
            [(0, vec![0, 1]), (0, vec![2]), (0, vec![4]), (1, vec![3])]
        );
        // Meter 4's group is for its second contact.
        assert_eq!(groups[2].contacts, [1]);
        let g = &groups[0];
        assert_eq!(g.open, secs(3000 - 60));
        assert_eq!(g.close, secs(3120 + 120));
        assert_eq!(g.session_at, secs(3000 - 60 - 300));
    }

    #[test]
    fn a_window_longer_than_a_wake_carries_is_cut() {
        let mut c = config();
        c.max_window = secs(400);
        let contacts = [
            vec![contact(0, 3000, 30)],
            vec![contact(0, 3100, 30)],
            vec![contact(0, 3400, 30)],
        ];
        let groups = segment_groups(
            contacts.iter().enumerate().map(|(m, c)| (m, c.as_slice())),
            &c,
        );
        let members: Vec<Vec<usize>> = groups.iter().map(|g| g.members.clone()).collect();
        assert_eq!(members, [vec![0, 1], vec![2]]);
        assert!(groups.iter().all(|g| g.close - g.open <= secs(400)));
    }

    fn costs() -> Costs {
        Costs {
            unicast: secs(10),
            multicast: secs(12),
            unicast_peak_hour: secs(10),
            hour_budget: secs(36),
            class_c_listen: secs(10),
            wifi_wait: secs(5),
            rx_amps: 0.012,
            wait_amps: 0.1,
            volts: 3.6,
            max_extra_j: 3.0,
        }
    }

    #[test]
    fn unicast_when_it_fits_the_duty_cycle_and_costs_less() {
        assert_eq!(costs().choose(), Delivery::Unicast);
    }

    #[test]
    fn multicast_when_the_unicast_wakes_overflow_the_hour_or_cost_more() {
        let busy = Costs {
            unicast_peak_hour: secs(40),
            ..costs()
        };
        assert_eq!(busy.choose(), Delivery::Multicast);
        let cheaper = Costs {
            multicast: secs(9),
            ..costs()
        };
        assert_eq!(cheaper.choose(), Delivery::Multicast);
    }

    #[test]
    fn never_multicast_when_it_costs_a_meter_too_much() {
        // 10 s at 12 mA and 5 s at 100 mA, at 3.6 V: 2.2 J, in budget.
        let busy = Costs {
            unicast_peak_hour: secs(40),
            ..costs()
        };
        assert!((busy.extra_j() - 2.232).abs() < 1e-9);
        assert_eq!(busy.choose(), Delivery::Multicast);
        // A whole 128 s window: 5.5 J more.
        let long_window = Costs {
            class_c_listen: secs(128),
            ..busy
        };
        assert_eq!(long_window.choose(), Delivery::Unicast);
        // Or a WiFi that waits 10 s longer: 3.6 J more.
        let long_wait = Costs {
            wifi_wait: secs(10),
            ..busy
        };
        assert_eq!(long_wait.choose(), Delivery::Unicast);
    }
}
