//! `campaign plan --wake multicast`: which meters one multicast WAKE
//! serves, and whether that beats their unicast WAKEs.
//!
//! After the unicast plan, the planned meters with a multicast root key
//! (`gen_app_key` in METERS.csv) are grouped by street segment
//! ([`segment_groups`]: one group per van and [`GROUP_SPAN`] of its
//! drive). For each group [`Costs::choose`] weighs the unicast WAKEs
//! (their airtime, and the plan's WAKEs in the busiest hour they fall
//! in on one gateway, against its RX2 duty cycle) against multicast (a
//! TS005 setup per member plus one multicast frame, and what it costs
//! every member more: its class C window and its WiFi's longer wait). A group served by multicast
//! gets, per member, a setup (McGroupSetupReq with the group key
//! encrypted under the member's root key, and McClassCSessionReq for a
//! class C window at the session time), their queue times spread evenly
//! from the plan's start to one uplink interval before the session, and
//! one multicast WAKE sent at the session time. The members' unicast
//! WAKEs leave PLAN.csv.
//!
//! One gateway is assumed to serve the route (the capacity figure of the
//! summary assumes the same).

use std::time::Duration;

use otavan_planning::contacts::Contacts;
use otavan_planning::multicast;
pub use otavan_planning::multicast::{CLASS_C_EXPONENT, FIRST_FCNT, GROUP_SPAN, WAKE_LEAD};
/// What serving a group costs either way, and the choice.
pub use otavan_planning::multicast::{Costs, Delivery};
use otavan_planning::multicast::{
    FRAME_OFFSET, GroupConfig, MAX_EXTRA_J, SETUP_LEN, mean_wait, segment_groups,
};
use otavan_planning::time::{Time, secs};
use otavan_protocol::lora::multicast::{Key, McRootKey, OTAVAN_SETUP_FPORT};
use otavan_protocol::lora::{Wake, Window};
use otavan_protocol::region::Region;
use time::OffsetDateTime;

use crate::capacity::{self, HourlyLoad};
use crate::clock::Clock;
use crate::deveui::DevEui;
use crate::groups_csv::GroupRow;

/// A multicast frame lasts under 3 s at any data rate: the WAKE's delay
/// counts from its end.
const FRAME_END: Time = secs(3);

/// A meter's receive current, amperes (SX1276, field-physics.md).
pub const RX_AMPS: f64 = 0.012;

/// A meter's WiFi current while it waits for the van, amperes (an ESP32
/// listening, about 100 mA; the rehearsal's `wifi.wait_ma`).
pub const WAIT_AMPS: f64 = 0.1;

/// A meter's supply, volts (a lithium thionyl chloride cell).
pub const VOLTS: f64 = 3.6;

/// A setup must be queued this long, plus one uplink interval, its
/// jitter and receive delay, before the session.
const SETUP_MARGIN: Time = secs(60);

/// Multicast addresses: this plus the campaign number times 4096 plus
/// the group's index.
pub const MC_ADDR_BASE: u32 = 0x0170_0000;

/// One group of the plan.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its multicast address (DevAddr).
    pub addr: u32,
    /// Its group key (McKey); never printed.
    pub key: Key,
    /// The van.
    pub van: u16,
    /// Its members, in route order.
    pub members: Vec<DevEui>,
    /// When the class C window opens.
    pub session_at: OffsetDateTime,
    /// What either way costs.
    pub costs: Costs,
    /// What was chosen.
    pub delivery: Delivery,
}

/// What multicast did to a plan.
#[derive(Debug, Clone, Default)]
pub struct MulticastPlan {
    /// Every group, by van then time, whichever way it is served.
    pub groups: Vec<Group>,
    /// The setups and group WAKEs of the groups served by multicast.
    pub rows: Vec<GroupRow>,
    /// Planned meters without `gen_app_key`: unicast.
    pub without_root_key: usize,
    /// Members whose setup could not reach them before the session:
    /// unicast.
    pub setup_too_late: usize,
}

/// One inventory meter as grouping sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The meter.
    pub dev_eui: DevEui,
    /// Its multicast root key, if known.
    pub root_key: Option<McRootKey>,
    /// Its uplink interval, seconds.
    pub interval_s: u64,
    /// Whether and when (Unix seconds, earliest and latest) its unicast
    /// WAKE goes out.
    pub delivery: Option<(f64, f64)>,
}

/// What grouping needs from the unicast plan.
pub struct Inputs<'a> {
    /// Every inventory meter, in order.
    pub meters: Vec<Candidate>,
    /// The contacts.
    pub contacts: &'a Contacts,
    /// The plan's clock.
    pub clock: &'a Clock,
    /// The unicast WAKEs per hour.
    pub load: &'a HourlyLoad,
    /// The WAKE's application payload, bytes.
    pub wake_bytes: usize,
    /// Contacts shorter than this are not planned.
    pub min_contact: Time,
    /// The WiFi window opens this long before a contact.
    pub lead: Time,
    /// And closes this long after.
    pub slack: Time,
    /// Uplink jitter plus the receive delay.
    pub uplink_spread: Time,
    /// The region.
    pub region: Region,
    /// The campaign number, network slot and version tag the WAKEs carry.
    pub wake: Wake,
}

/// Groups the meters of a unicast plan; `key` draws each group's key.
/// Returns the plan and, per inventory meter, whether multicast serves it.
pub fn plan(inputs: &Inputs<'_>, key: &mut dyn FnMut() -> Key) -> (MulticastPlan, Vec<bool>) {
    let mut out = MulticastPlan::default();
    let mut served = vec![false; inputs.meters.len()];
    let candidates: Vec<usize> = (0..inputs.meters.len())
        .filter(|&m| inputs.meters[m].delivery.is_some())
        .filter(|&m| {
            let has_key = inputs.meters[m].root_key.is_some();
            out.without_root_key += usize::from(!has_key);
            has_key
        })
        .collect();
    let shortest_interval = candidates
        .iter()
        .map(|&m| inputs.meters[m].interval_s)
        .min()
        .unwrap_or(0);
    let config = GroupConfig {
        span: GROUP_SPAN,
        earliest_session: secs(shortest_interval) + inputs.uplink_spread + SETUP_MARGIN,
        wake_lead: WAKE_LEAD,
        min_contact: inputs.min_contact,
        lead: inputs.lead,
        slack: inputs.slack,
        max_window: secs(u64::from(Window::MAX.secs())),
    };
    let segments = segment_groups(
        candidates.iter().map(|&m| (m, inputs.contacts.of(m))),
        &config,
    );
    let wake_air = capacity::rx2_airtime(inputs.region, inputs.wake_bytes);
    let setup_air = capacity::rx2_airtime(inputs.region, SETUP_LEN);
    let budget = capacity::rx2_hour_budget(inputs.region);
    let campaign_base = MC_ADDR_BASE + u32::from(inputs.wake.campaign) * 4096;
    for (g, segment) in segments.into_iter().enumerate() {
        // A member whose setup cannot ride an uplink before the session
        // stays unicast.
        let (members, late): (Vec<usize>, Vec<usize>) = segment.members.iter().partition(|&&m| {
            secs(inputs.meters[m].interval_s) + inputs.uplink_spread + SETUP_MARGIN
                <= segment.session_at
        });
        out.setup_too_late += late.len();
        if members.is_empty() {
            continue;
        }
        let n = members.len() as u32;
        let busiest = members
            .iter()
            .filter_map(|&m| inputs.meters[m].delivery)
            .map(|(from, to)| inputs.load.in_hour(from).max(inputs.load.in_hour(to)))
            .fold(0.0, f64::max);
        let micros = |d: Duration| d.as_micros() as Time;
        let costs = Costs {
            unicast: micros(wake_air * n),
            multicast: micros(setup_air * n + wake_air),
            unicast_peak_hour: micros(wake_air.mul_f64(busiest)),
            hour_budget: micros(budget),
            class_c_listen: FRAME_OFFSET + FRAME_END,
            wifi_wait: mean_wait(&segment, inputs.contacts),
            rx_amps: RX_AMPS,
            wait_amps: WAIT_AMPS,
            volts: VOLTS,
            max_extra_j: MAX_EXTRA_J,
        };
        let delivery = costs.choose();
        let group = Group {
            addr: campaign_base + g as u32,
            key: key(),
            van: segment.van,
            members: members.iter().map(|&m| inputs.meters[m].dev_eui).collect(),
            session_at: whole_second(inputs.clock.at(segment.session_at)),
            costs,
            delivery,
        };
        if delivery == Delivery::Multicast {
            let session = inputs.clock.offset_of(group.session_at).max(0) as Time;
            let transmit = session + FRAME_OFFSET;
            let heard = transmit + FRAME_END;
            let wake = Wake::new(
                inputs.wake.campaign,
                Duration::from_micros(segment.open.saturating_sub(heard)),
                Duration::from_micros(segment.close - segment.open),
                inputs.wake.network,
                inputs.wake.version_tag,
            );
            // The window fits by construction (max_window).
            if let Ok(wake) = wake {
                let start = inputs.clock.at(0);
                let mut latest_send_by = start;
                for (j, &m) in members.iter().enumerate() {
                    let Candidate {
                        dev_eui,
                        root_key: Some(root),
                        interval_s: interval,
                        ..
                    } = inputs.meters[m]
                    else {
                        continue;
                    };
                    let send_by = inputs
                        .clock
                        .at(session - secs(interval) - inputs.uplink_spread - SETUP_MARGIN);
                    latest_send_by = latest_send_by.max(send_by);
                    // Spread over the time there is, not all in the
                    // first hour's duty cycle.
                    let share = (send_by - start) * (j as f64 / members.len() as f64);
                    out.rows.push(GroupRow::Setup {
                        mc_addr: group.addr,
                        dev_eui,
                        enqueue_at: whole_second(start + share),
                        send_by: whole_second(send_by),
                        fport: OTAVAN_SETUP_FPORT,
                        frame: setup_frame(&group, &root, inputs.region),
                    });
                    served[m] = true;
                }
                let transmit_at = inputs.clock.at(transmit);
                out.rows.push(GroupRow::Wake {
                    mc_addr: group.addr,
                    enqueue_at: whole_second(latest_send_by),
                    send_by: transmit_at - time::Duration::seconds(30),
                    transmit_at,
                    fport: otavan_protocol::lora::DEFAULT_FPORT,
                    wake,
                });
            }
        }
        out.groups.push(group);
    }
    (out, served)
}

/// The unicast setup frame for a member of `group` with root key `root`
/// ([`otavan_planning::multicast::setup_frame`] at the group's session).
pub fn setup_frame(group: &Group, root: &McRootKey, region: Region) -> Vec<u8> {
    let unix = Duration::from_secs(u64::try_from(group.session_at.unix_timestamp()).unwrap_or(0));
    multicast::setup_frame(group.addr, &group.key, root, unix, region)
}

/// `t` to the whole second below (session times are whole GPS seconds).
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}
