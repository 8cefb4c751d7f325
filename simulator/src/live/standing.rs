//! Standing multicast sessions in a live rehearsal (`[campaign] wake =
//! "standing"`): each member gets its group and a daily class C slot
//! once, at installation, and the group's WAKE goes out as one multicast
//! frame in its slot on the last days before its pass.
//!
//! The groups are the multicast mode's ([`super::multicast::groups`]:
//! street segments of the pass that first serves them, only those with a
//! slot before their pass). Each group gets an offset into the day from
//! [`standing::assign_slots`], spaced by the WAKE frame's RX2 airtime
//! times the RX2 band's duty-cycle divisor; every frame of the live
//! network goes out from loranet's one gateway, so all groups share it
//! and no two share a slot while the day has slots left.
//!
//! Installation: each member's setup ([`standing::setup_frame`], unicast
//! on the setup FPort) is queued at the start and rides its first
//! uplinks (a meter's first uplink also asks the time, and DR0 cannot
//! carry both answers, so a daily meter's setup may wait for its second);
//! one still queued a minute before the group's last WAKE slot is flushed
//! and the meter planned by unicast. The setups are one-off,
//! counted apart from the campaign's downlinks (`live.standing`). The
//! WAKE goes out in each of the group's [`standing::wake_slots`],
//! [`standing::FRAME_OFFSET`] into the slot; a member the pass did not
//! update is planned by unicast for the later passes, as in multicast
//! mode.

use std::rc::Rc;
use std::time::Duration;

use otavan_client::lora::DEFAULT_MULTICAST_SETUP_FPORT;
use otavan_loranet::{DownlinkKind, GatewayTx, NetworkServer};
use otavan_planning::standing::{self, FRAME_OFFSET, WINDOW};
use otavan_planning::time::{Time, secs};
use otavan_planning::wake::PlanConfig;
use otavan_protocol::lora::Wake;
use otavan_protocol::region::{Band, Region};
use serde::Serialize;

use super::meter::WALL_EPOCH;
use super::multicast::{Delivered, Group, Member, deliver_setup, group_served, send_wake_between};
use super::plan::{self, LastUplinks};
use super::world::{ClassCFrames, LiveWorld};
use crate::radio::Radio;

/// Every meter has powered up and had its first uplinks by then (meters
/// start within the first 6 h): WAKE slots before it would find members
/// without their setup. The day's slots start then too (t = 0 is
/// midnight), so a pass on the first morning still gets its
/// [`standing::WAKE_REPEATS`] slots, on day 0 and day 1: one frame
/// crowded out by the gateway's other traffic is not the group's only
/// chance.
pub const INSTALLED_BY: Time = secs(8 * 3600);

/// One group with its standing session.
#[derive(Debug, Clone)]
pub struct StandingGroup {
    /// The group (address, key, WiFi window of its pass, members).
    pub group: Group,
    /// Its slot: the offset into each day its window opens at.
    pub offset: Time,
    /// The slots its WAKE goes out in, oldest first (never empty).
    pub slots: Vec<Time>,
}

/// How standing sessions went in a live rehearsal (`live.standing`).
#[derive(Debug, Clone, Serialize)]
pub struct StandingSummary {
    /// Groups with a standing session.
    pub groups: u64,
    /// Meters given one.
    pub grouped_meters: u64,
    /// Setup frames sent (installation, one-off: not the campaign's).
    pub setup_frames: u64,
    /// Their time on air, seconds.
    pub setup_airtime_s: f64,
    /// Multicast WAKEs the gateway sent (one per group and slot at most).
    pub wakes_sent: u64,
    /// What the meters heard in their class C windows.
    pub frames: ClassCFrames,
}

/// Gives each of `groups` its slot of the day and the slots its WAKE
/// (`config`'s) goes out in for its pass; groups whose pass comes before
/// any slot after [`INSTALLED_BY`] are left out (their meters are planned
/// by unicast).
pub fn plan(
    groups: Vec<Group>,
    radio: &Radio,
    region: Region,
    config: &PlanConfig,
) -> Vec<StandingGroup> {
    let divisor = region
        .band(region.rx2().frequency)
        .and_then(Band::duty_cycle_divisor)
        .unwrap_or(1);
    let spacing = radio.rx2_airtime(wake_len(config)) * Time::from(divisor);
    // The live network is one gateway: every group is heard through it.
    let offsets = standing::assign_slots(&vec![vec![0]; groups.len()], spacing);
    groups
        .into_iter()
        .zip(offsets)
        .filter_map(|(group, slot)| {
            let offset = (INSTALLED_BY + slot) % standing::PERIOD;
            let slots = standing::wake_slots(offset, group.open, INSTALLED_BY);
            (!slots.is_empty()).then_some(StandingGroup {
                group,
                offset,
                slots,
            })
        })
        .collect()
}

/// The length of `config`'s WAKE (with or without its version tag).
fn wake_len(config: &PlanConfig) -> usize {
    Wake::new(
        config.campaign,
        Duration::ZERO,
        Duration::ZERO,
        config.network,
        config.version_tag,
    )
    .expect("a WAKE with no delay and no window encodes")
    .encode()
    .len()
}

/// Installs meter `member`'s standing session (its setup queued now,
/// through by a minute before the group's last WAKE slot or flushed),
/// then plans it by unicast if the group's pass did not serve it.
/// Returns the unicast WAKEs queued for it.
pub async fn serve_member(
    member: Member,
    group: Rc<StandingGroup>,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    last: LastUplinks,
    config: PlanConfig,
    end: Time,
) -> u64 {
    let m = member.planned.m;
    let first_slot = WALL_EPOCH + Duration::from_micros(group.offset);
    let g = &group.group;
    let frame = standing::setup_frame(g.addr, &g.key, &member.root, first_slot, network.region());
    // A setup that comes after the first slot still hears the last.
    let deadline = group.slots[group.slots.len() - 1].saturating_sub(secs(60));
    let delivered = deliver_setup(&member.planned, &frame, deadline, &world, &network).await;
    if delivered == Delivered::NotQueued {
        return plan::plan_meter(member.planned, world, network, last, config, end, 0).await;
    }
    if group_served(m, g, delivered, &world, end).await {
        return 0;
    }
    plan::plan_meter(member.planned, world, network, last, config, end, 1).await
}

/// Sends `group`'s WAKE in each of its slots, [`FRAME_OFFSET`] in, ending
/// inside the slot's window. Returns how many went out.
pub async fn send_wakes(
    group: Rc<StandingGroup>,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    config: PlanConfig,
) -> u64 {
    let mut sent = 0;
    for &slot in &group.slots {
        // The frame lasts under 3 s at any data rate.
        let last_start = slot + WINDOW - secs(3);
        let not_before = slot + FRAME_OFFSET;
        let ok = send_wake_between(
            &group.group,
            not_before,
            last_start,
            &world,
            &network,
            &config,
        )
        .await;
        sent += u64::from(ok);
    }
    sent
}

/// The setup frames the gateway sent (unicast data downlinks on the setup
/// FPort), and their time on air.
pub fn setups_sent(transmissions: &[GatewayTx]) -> (u64, Duration) {
    transmissions
        .iter()
        .filter(|tx| {
            tx.kind == DownlinkKind::Data && fport(&tx.phy) == Some(DEFAULT_MULTICAST_SETUP_FPORT)
        })
        .fold((0, Duration::ZERO), |(n, airtime), tx| {
            (n + 1, airtime + tx.airtime)
        })
}

/// A data frame's FPort: after MHDR (1), DevAddr (4), FCtrl (1, its low
/// nibble the FOpts length), FCnt (2) and FOpts.
fn fport(phy: &[u8]) -> Option<u8> {
    let fopts = usize::from(phy.get(5)? & 0x0f);
    phy.get(8 + fopts).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fport_follows_the_frame_options() {
        // MHDR, DevAddr, FCtrl with 2 bytes of FOpts, FCnt, FOpts, FPort.
        let phy = [0x60, 1, 2, 3, 4, 0x02, 7, 0, 0xaa, 0xbb, 201, 9, 9];
        assert_eq!(fport(&phy), Some(201));
        assert_eq!(fport(&[0x60, 1, 2, 3, 4, 0x00, 7, 0]), None);
    }
}
