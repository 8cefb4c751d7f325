//! Multicast WAKE in a live rehearsal (`[campaign] wake = "multicast"`):
//! the operator's side of LoRaWAN Remote Multicast Setup (TS005).
//!
//! The meters are grouped by the van pass that first gives them enough
//! contact (`otavan_planning::multicast::segment_groups`): one group per
//! van and [`crate::multicast::GROUP_SPAN`] of its drive (a street
//! segment). Once a member's first uplink is seen, its group (address and
//! key, the key encrypted for the meter) and a class C window at the
//! group's session time are sent to it by unicast on the setup FPort;
//! at the session time one multicast WAKE for the whole group goes out,
//! its WiFi window covering every member's contact. A meter whose setup
//! has not got through by then is planned by unicast instead, and so is
//! every meter the group's pass missed, for the passes after it.

use std::rc::Rc;
use std::time::Duration;

use otavan_client::lora::DEFAULT_MULTICAST_SETUP_FPORT;
use otavan_loranet::rng::SimRng;
use otavan_loranet::{DevEui, NetworkServer};
use otavan_protocol::lora::multicast::{Key, McRootKey};
use otavan_protocol::lora::{DEFAULT_FPORT, Wake};
use tokio::time::sleep_until;

use super::meter::WALL_EPOCH;
use super::plan::{self, LastUplinks, PlannedMeter};
use super::world::LiveWorld;
use crate::multicast::{CLASS_C_EXPONENT, FRAME_OFFSET, SETUP_AHEAD, group_config};
use crate::simulation::Cause;
use otavan_planning::multicast::{FIRST_FCNT, segment_groups, setup_frame};
use otavan_planning::time::{Time, as_secs_f64, secs};
use otavan_planning::wake::PlanConfig;

/// One multicast group: the meters one van pass serves together.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its multicast address.
    pub addr: u32,
    /// Its group key (McKey).
    pub key: Key,
    /// When the class C window opens.
    pub session_at: Time,
    /// The WiFi window the WAKE opens.
    pub open: Time,
    /// And closes.
    pub close: Time,
    /// Its meters.
    pub members: Vec<usize>,
}

/// Groups the `meters` (indices into the world's contacts) with
/// [`segment_groups`]: one group per van and
/// [`crate::multicast::GROUP_SPAN`] of its drive, from the first pass
/// after [`crate::multicast::EARLIEST_SESSION`] with at least
/// `config.min_contact`; meters without one get no group (they are
/// planned by unicast). Each group gets an address and a key drawn from
/// `seed`.
pub fn groups(world: &LiveWorld, meters: &[usize], config: &PlanConfig, seed: u64) -> Vec<Group> {
    let grouping = group_config(config, crate::scenario::WakeDelivery::Multicast);
    let mut keys = SimRng::new(seed ^ 0x6d63_6173_746b_6579);
    segment_groups(meters.iter().map(|&m| (m, world.contacts_of(m))), &grouping)
        .into_iter()
        .enumerate()
        .map(|(g, segment)| {
            let mut key = [0; 16];
            keys.fill(&mut key);
            Group {
                addr: 0x0170_0000 + g as u32,
                key,
                session_at: segment.session_at,
                open: segment.open,
                close: segment.close,
                members: segment.members,
            }
        })
        .collect()
}

/// The meter's multicast root key: in a rehearsal its GenAppKey is its
/// AppKey.
pub fn root_key(keys: &otavan_loranet::DeviceKeys) -> McRootKey {
    McRootKey::from_gen_app_key(&keys.app_key.inner().0)
}

/// What the operator knows of one member.
pub struct Member {
    /// The meter as the unicast planner knows it.
    pub planned: PlannedMeter,
    /// Its multicast root key.
    pub root: McRootKey,
}

/// Sets up meter `member`'s group once its first uplink is seen, from
/// [`SETUP_AHEAD`] before the session (on the setup FPort otavan
/// provisions); when the
/// setup has not got through shortly before the session, or the pass
/// missed the meter, plans it by unicast from then on. Returns the
/// downlinks queued for it (setup and unicast WAKEs).
pub async fn serve_member(
    member: Member,
    group: Rc<Group>,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    last: LastUplinks,
    config: PlanConfig,
    end: Time,
) -> u64 {
    let m = member.planned.m;
    let deadline = group.session_at.saturating_sub(secs(60));
    let from = group.session_at.saturating_sub(SETUP_AHEAD);
    sleep_until(world.instant(from.max(world.now()))).await;
    while last.borrow()[m].is_none() && world.now() < deadline {
        sleep_until(world.instant((world.now() + secs(300)).min(deadline))).await;
    }
    let session_unix = WALL_EPOCH + Duration::from_micros(group.session_at);
    let region = network.region();
    let frame = setup_frame(group.addr, &group.key, &member.root, session_unix, region);
    let delivered = if last.borrow()[m].is_some() {
        deliver_setup(&member.planned, &frame, deadline, &world, &network).await
    } else {
        Delivered::NotQueued
    };
    let setups = u64::from(delivered != Delivered::NotQueued);
    if group_served(m, &group, delivered, &world, end).await {
        return setups;
    }
    // Later passes by unicast, under the next campaign number: the meter
    // has seen the group's.
    setups + plan::plan_meter(member.planned, world, network, last, config, end, 1).await
}

/// What became of a member's setup frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// It went out in a receive window of one of the meter's uplinks.
    Yes,
    /// It was queued and still waited at the deadline (flushed).
    No,
    /// It was not queued (no uplink seen yet, or the network refused it).
    NotQueued,
}

/// Queues meter `p`'s setup `frame` now on the setup FPort and waits
/// until `deadline`: whether it got through by then (a frame still
/// queued is flushed).
pub async fn deliver_setup(
    p: &PlannedMeter,
    frame: &[u8],
    deadline: Time,
    world: &LiveWorld,
    network: &NetworkServer,
) -> Delivered {
    let dev_eui: DevEui = p.dev_eui;
    if network
        .enqueue(dev_eui, DEFAULT_MULTICAST_SETUP_FPORT, frame, false)
        .is_err()
    {
        return Delivered::NotQueued;
    }
    sleep_until(world.instant(deadline.max(world.now()))).await;
    match network.flush_queue(dev_eui) {
        0 => Delivered::Yes,
        _ => Delivered::No,
    }
}

/// Whether `group`'s pass served meter `m`: its setup got through and it
/// updated (or the campaign ended first). Waits until just after the
/// pass to tell; a meter whose setup did not get through is an incident.
pub async fn group_served(
    m: usize,
    group: &Group,
    delivered: Delivered,
    world: &LiveWorld,
    end: Time,
) -> bool {
    if delivered != Delivered::Yes {
        world.incident(m, Cause::WakeNotDelivered);
        return false;
    }
    sleep_until(world.instant(group.close + secs(600))).await;
    world.logs[m].borrow().updated_at.is_some() || world.now() >= end
}

/// Sends `group`'s WAKE at its session time: one multicast frame, the WAKE's
/// delay counted from when it ends. Returns whether it went out.
pub async fn send_wake(
    group: Rc<Group>,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    config: PlanConfig,
) -> bool {
    let not_before = group.session_at + FRAME_OFFSET;
    let window_end = group.session_at + secs(1 << CLASS_C_EXPONENT);
    send_wake_between(
        &group,
        not_before,
        window_end - secs(5),
        &world,
        &network,
        &config,
    )
    .await
}

/// Sends `group`'s WAKE as one multicast frame at the first start from
/// `not_before` to `last_start` the gateway's duty cycle allows, the
/// WAKE's delay counted from when it ends. Returns whether it went out.
pub async fn send_wake_between(
    group: &Group,
    not_before: Time,
    last_start: Time,
    world: &LiveWorld,
    network: &NetworkServer,
    config: &PlanConfig,
) -> bool {
    sleep_until(world.instant(not_before)).await;
    // The frame lasts under 3 s at any data rate; the delay is counted
    // from the frame's end, so an earlier start only opens WiFi earlier.
    let heard = world.now() + secs(3);
    let Ok(wake) = Wake::new(
        config.campaign,
        Duration::from_secs_f64(as_secs_f64(group.open.saturating_sub(heard))),
        Duration::from_secs_f64(as_secs_f64(group.close - group.open)),
        config.network,
        config.version_tag,
    ) else {
        return false;
    };
    network
        .send_multicast(
            group.addr,
            DEFAULT_FPORT,
            &wake.encode(),
            world.instant(not_before),
            world.instant(last_start),
        )
        .is_ok()
}

/// Registers every group with the network server.
pub fn register(network: &NetworkServer, groups: &[Rc<Group>]) {
    let channel = network.region().rx2();
    for group in groups {
        network.add_multicast_group(group.addr, &group.key, channel, FIRST_FCNT);
    }
}
