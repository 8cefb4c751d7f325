//! Multicast WAKE (`campaign.wake = "multicast"`): the groups both
//! rehearsal modes form, and, for the analytic model, each group's choice
//! of unicast or multicast by airtime, duty cycle and class C energy
//! ([`otavan_planning::multicast::Costs::choose`]).
//!
//! A group served by multicast costs each member one unicast setup
//! (TS005 `McGroupSetupReq` and `McClassCSessionReq` in one frame,
//! [`SETUP_LEN`] bytes, at any of its uplinks before the session) and the
//! group one multicast frame per gateway its members are best heard by,
//! in RX2. A group served by unicast is planned as in the unicast mode.
//!
//! With standing sessions (`campaign.wake = "standing"`) the members were
//! set up once, at installation (their setups are reported, not sent in
//! the campaign), and each group has a daily slot
//! ([`otavan_planning::standing`]): its WAKE costs one frame per gateway
//! in each of its wake slots, and no unicast downlink.

use std::collections::{BTreeMap, BTreeSet};

use otavan_planning::contacts::Contacts;
pub use otavan_planning::multicast::{
    CLASS_C_EXPONENT, CLASS_C_WINDOW, FRAME_OFFSET, GROUP_SPAN, MAX_EXTRA_J, SETUP_LEN, WAKE_LEAD,
};
use otavan_planning::multicast::{
    Costs, Delivery, GroupConfig, HOUR, SegmentGroup, mean_wait, segment_groups,
};
use otavan_planning::standing;
use otavan_planning::time::{Time, secs};
use otavan_planning::wake::PlanConfig;
use otavan_protocol::lora::Window;
use otavan_protocol::region::{Band, EU868_DEFAULT_CHANNELS, Region};

use serde::Serialize;

use crate::radio::Radio;
use crate::scenario::{Scenario, WakeDelivery};

/// The earliest session: every meter has powered up and sent uplinks by
/// then, so its setup can reach it first.
pub const EARLIEST_SESSION: Time = secs(8 * 3600);

/// A member's setup goes out from this long before its session: a day
/// gives it two dozen hourly uplinks to get through, and keeps the
/// setups of passes weeks away from crowding the gateways' duty cycle
/// today.
pub const SETUP_AHEAD: Time = secs(86_400);

/// How groups are formed from the plan's margins (standing groups need no
/// session set up during the campaign: any contact can be grouped).
pub fn group_config(plan: &PlanConfig, wake: WakeDelivery) -> GroupConfig {
    let standing = wake == WakeDelivery::Standing;
    GroupConfig {
        span: if standing {
            standing::GROUP_SPAN
        } else {
            GROUP_SPAN
        },
        earliest_session: if standing { 0 } else { EARLIEST_SESSION },
        wake_lead: if standing { 0 } else { WAKE_LEAD },
        min_contact: plan.min_contact,
        lead: plan.lead,
        slack: plan.slack,
        max_window: secs(u64::from(Window::MAX.secs())),
    }
}

/// One group and how it is served.
#[derive(Debug, Clone)]
pub struct PlannedGroup {
    /// The group.
    pub segment: SegmentGroup,
    /// What serving it costs either way.
    pub costs: Costs,
    /// The choice.
    pub delivery: Delivery,
    /// A standing group's daily slot, an offset into the day; `None` for
    /// TS005 one-shot groups.
    pub offset: Option<Time>,
    /// A standing group's wake slots (when its frames go out), oldest
    /// first; empty for TS005 one-shot groups.
    pub slots: Vec<Time>,
}

/// The groups of a campaign.
#[derive(Debug, Clone, Default)]
pub struct MulticastPlan {
    /// Every group, in `segment_groups`' order.
    pub groups: Vec<PlannedGroup>,
    /// Per meter, its group when that group is served by multicast.
    pub group_of: Vec<Option<u32>>,
    /// Standing sessions' figures, for `campaign.wake = "standing"`.
    pub standing: Option<StandingFigures>,
}

/// The plan's figures in `report.json` (`multicast`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MulticastFigures {
    /// Groups formed (street segments of one van pass).
    pub groups: u64,
    /// Of those, groups woken by multicast (the others by unicast).
    pub multicast_groups: u64,
    /// Meters in the groups woken by multicast.
    pub multicast_meters: u64,
    /// Meters in the groups woken by unicast.
    pub unicast_meters: u64,
    /// Standing sessions only (`campaign.wake = "standing"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standing: Option<StandingFigures>,
}

/// What standing sessions cost besides the campaign's own downlinks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StandingFigures {
    /// Unicast setups at installation, once (one per member of a group
    /// woken by multicast; not in the campaign's downlink figures).
    pub setup_frames: u64,
    /// Their gateway airtime, seconds.
    pub setup_airtime_s: f64,
    /// What listening in its daily slot costs each member, joules a day.
    pub listen_j_per_day: f64,
    /// Members a pass missed that their group's frame woke again for a
    /// later pass (instead of a unicast WAKE).
    pub woken_again: u64,
}

impl MulticastPlan {
    /// Its figures.
    pub fn figures(&self) -> MulticastFigures {
        let members = |delivery| {
            self.groups
                .iter()
                .filter(|g| g.delivery == delivery)
                .map(|g| g.segment.members.len() as u64)
                .sum()
        };
        MulticastFigures {
            groups: self.groups.len() as u64,
            multicast_groups: self
                .groups
                .iter()
                .filter(|g| g.delivery == Delivery::Multicast)
                .count() as u64,
            multicast_meters: members(Delivery::Multicast),
            unicast_meters: members(Delivery::Unicast),
            standing: self.standing,
        }
    }
}

/// Plans the groups of the `meters` (those needing the update and in
/// LoRa coverage, of a fleet of `fleet_size`) and chooses for each, with
/// WAKEs of `wake_len` bytes, one-shot TS005 sessions or, for
/// `campaign.wake = "standing"`, standing ones.
pub fn plan(
    scenario: &Scenario,
    plan: &PlanConfig,
    contacts: &Contacts,
    radio: &Radio,
    meters: &[usize],
    fleet_size: usize,
    wake_len: usize,
) -> MulticastPlan {
    let wake = scenario.campaign.wake;
    let groups = segment_groups(
        meters.iter().map(|&m| (m, contacts.of(m))),
        &group_config(plan, wake),
    );
    // Every member's unicast WAKE would go out in the hour before its
    // pass, through its best gateway: the load per gateway and hour.
    let mut load: BTreeMap<(u32, Time), Time> = BTreeMap::new();
    for group in &groups {
        for &m in &group.members {
            if let Some(g) = radio.best_gateway(m) {
                *load.entry((g, group.open / HOUR)).or_default() += radio.rx1_airtime(m, wake_len);
            }
        }
    }
    let region = scenario.region();
    let budget = hour_budget(region);
    let frame = radio.rx2_airtime(wake_len);
    let gateways: Vec<Vec<u32>> = groups
        .iter()
        .map(|segment| {
            let set: BTreeSet<u32> = segment
                .members
                .iter()
                .filter_map(|&m| radio.best_gateway(m))
                .collect();
            set.into_iter().collect()
        })
        .collect();
    let offsets = match wake {
        WakeDelivery::Standing => standing::assign_slots(&gateways, frame * rx2_divisor(region)),
        WakeDelivery::Unicast | WakeDelivery::Multicast => Vec::new(),
    };
    let wifi = &scenario.wifi;
    let mut group_of = vec![None; fleet_size];
    let planned: Vec<PlannedGroup> = groups
        .into_iter()
        .zip(gateways)
        .enumerate()
        .map(|(i, (segment, gateways))| {
            let offset = offsets.get(i).copied();
            let slots = offset
                .map(|offset| standing::wake_slots(offset, segment.open, 0))
                .unwrap_or_default();
            let unicast_peak_hour = gateways
                .iter()
                .map(|&g| load[&(g, segment.open / HOUR)])
                .max()
                .unwrap_or(0);
            let setups: Time = match wake {
                WakeDelivery::Standing => 0,
                _ => segment
                    .members
                    .iter()
                    .map(|&m| radio.rx1_airtime(m, SETUP_LEN))
                    .sum(),
            };
            let (frames, class_c_listen) = match wake {
                WakeDelivery::Standing => {
                    (slots.len() as Time, standing::WINDOW * slots.len() as Time)
                }
                _ => (1, FRAME_OFFSET + frame),
            };
            let costs = Costs {
                unicast: segment
                    .members
                    .iter()
                    .map(|&m| radio.rx1_airtime(m, wake_len))
                    .sum(),
                multicast: setups + frame * frames * gateways.len() as Time,
                unicast_peak_hour,
                hour_budget: budget,
                class_c_listen,
                wifi_wait: mean_wait(&segment, contacts),
                rx_amps: wifi.lora_rx_ma / 1000.0,
                wait_amps: wifi.wait_ma / 1000.0,
                volts: wifi.supply_v,
                max_extra_j: MAX_EXTRA_J,
            };
            let delivery = match wake == WakeDelivery::Standing && slots.is_empty() {
                true => Delivery::Unicast,
                false => costs.choose(),
            };
            if delivery == Delivery::Multicast {
                for &m in &segment.members {
                    group_of[m] = Some(i as u32);
                }
            }
            PlannedGroup {
                segment,
                costs,
                delivery,
                offset,
                slots,
            }
        })
        .collect();
    let standing = (wake == WakeDelivery::Standing).then(|| {
        let members = planned
            .iter()
            .filter(|g| g.delivery == Delivery::Multicast)
            .flat_map(|g| &g.segment.members);
        let (frames, airtime) = members.fold((0, 0), |(n, t), &m| {
            (n + 1, t + radio.rx1_airtime(m, standing::SETUP_LEN))
        });
        StandingFigures {
            setup_frames: frames,
            setup_airtime_s: otavan_planning::time::as_secs_f64(airtime),
            listen_j_per_day: standing::listen_j_per_day(wifi.lora_rx_ma / 1000.0, wifi.supply_v),
            woken_again: 0,
        }
    });
    MulticastPlan {
        groups: planned,
        group_of,
        standing,
    }
}

/// The RX2 channel's duty-cycle divisor (1 where there is none): a
/// gateway that sends a frame there must stay silent that many times its
/// airtime, less one.
fn rx2_divisor(region: Region) -> Time {
    match region.band(region.rx2().frequency) {
        Some(Band::Limited(_, sub)) => Time::from(sub.duty_cycle_divisor),
        Some(Band::Unlimited) | None => 1,
    }
}

/// The downlink airtime a gateway may spend in an hour on a WAKE's two
/// receive windows: RX1 on the default uplink channels' sub-band and
/// RX2, each under its duty cycle (a whole hour each where there is none).
fn hour_budget(region: Region) -> Time {
    let rx1 = match region {
        Region::Eu868 => EU868_DEFAULT_CHANNELS[0],
        Region::Us915 => region.rx2().frequency,
    };
    [rx1, region.rx2().frequency]
        .into_iter()
        .map(|frequency| match region.band(frequency) {
            Some(Band::Limited(_, sub)) => HOUR / Time::from(sub.duty_cycle_divisor),
            Some(Band::Unlimited) | None => HOUR,
        })
        .sum()
}
