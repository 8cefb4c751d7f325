//! The operator's side of a live rehearsal: for each meter, the same
//! planner as the analytic mode picks a pass from the uplinks the network
//! server has seen, and queues the WAKE on the network server in time.

use std::cell::RefCell;
use std::rc::Rc;

use otavan_loranet::{DevEui, NetworkServer};
use otavan_protocol::lora::DEFAULT_FPORT;
use tokio::time::sleep_until;

use super::world::LiveWorld;
use crate::simulation::Cause;
use otavan_planning::time::{Time, secs};
use otavan_planning::wake::{self, PlanConfig, Uplinks};

/// How long the operator waits after a pass before deciding the meter
/// missed it (the report of an update in progress arrives meanwhile).
const AFTER_PASS: Time = secs(600);

/// When the operator looks again for a meter's first uplink.
const POLL: Time = secs(900);

/// Each meter's last uplink the network server received (virtual time).
pub type LastUplinks = Rc<RefCell<Vec<Option<Time>>>>;

/// What the planner knows of one meter.
pub struct PlannedMeter {
    /// The meter.
    pub m: usize,
    /// Its DevEUI.
    pub dev_eui: DevEui,
    /// Its uplink interval.
    pub interval: Time,
    /// From an uplink's start to the end of the WAKE answering it.
    pub rx_delay: Time,
}

/// Plans and queues meter `p.m`'s WAKEs until it is updated or no pass is
/// left. A meter that missed a pass gets the next campaign number (a meter
/// ignores a WAKE of a campaign it has already run or missed); the first
/// WAKE carries the campaign number plus `first_attempt` (1 after a
/// multicast WAKE the meter has seen). Returns how many WAKEs were queued.
pub async fn plan_meter(
    p: PlannedMeter,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    last: LastUplinks,
    config: PlanConfig,
    end: Time,
    first_attempt: u16,
) -> u64 {
    let contacts = world.contacts_of(p.m);
    let mut cursor = contacts.partition_point(|c| c.start < world.now());
    let mut attempt: u16 = first_attempt;
    let mut queued = 0;
    loop {
        if world.logs[p.m].borrow().updated_at.is_some() {
            return queued;
        }
        let now = world.now();
        let Some(phase) = last.borrow()[p.m] else {
            if now + POLL >= end {
                return queued;
            }
            sleep_until(world.instant(now + POLL)).await;
            continue;
        };
        let uplinks = Uplinks {
            phase,
            interval: p.interval,
            rx_delay: p.rx_delay,
        };
        let mut campaign = config;
        campaign.campaign = config.campaign.wrapping_add(attempt);
        let Some(plan) = wake::plan(contacts, cursor, now, &uplinks, &campaign) else {
            if contacts.is_empty() {
                world.incident(p.m, Cause::NeverInRange);
            } else if contacts.iter().all(|c| c.duration() < config.min_contact) {
                world.incident(p.m, Cause::ContactTooShort);
            }
            return queued;
        };
        if plan.enqueue_at > now {
            // Plan again then, from the uplinks seen by that time.
            sleep_until(world.instant(plan.enqueue_at)).await;
            continue;
        }
        if network
            .enqueue(p.dev_eui, DEFAULT_FPORT, &plan.wake.encode(), false)
            .is_ok()
        {
            queued += 1;
        }
        // Still queued when it can no longer give enough contact (uplinks
        // lost, gateway busy): the operator flushes it and plans again.
        sleep_until(world.instant(plan.expires_at.max(world.now()) + secs(10))).await;
        if network.flush_queue(p.dev_eui) > 0 {
            world.incident(p.m, Cause::WakeNotDelivered);
            cursor = plan.contact + 1;
            attempt = attempt.wrapping_add(1);
            continue;
        }
        let contact = contacts[plan.contact];
        let settled = plan.closes_at.max(contact.end) + AFTER_PASS;
        if settled >= end {
            return queued;
        }
        sleep_until(world.instant(settled)).await;
        if world.logs[p.m].borrow().updated_at.is_some() {
            return queued;
        }
        let now = world.now();
        cursor = contacts.partition_point(|c| c.start < now);
        attempt = attempt.wrapping_add(1);
    }
}

/// A DevEUI as a map key.
pub fn eui_key(eui: &DevEui) -> [u8; 8] {
    let mut key = [0; 8];
    key.copy_from_slice(eui.as_ref());
    key
}

/// Records every uplink's time per meter; `index` maps a DevEUI
/// ([`eui_key`]) to its meter.
pub async fn record_uplinks(
    world: Rc<LiveWorld>,
    network: NetworkServer,
    last: LastUplinks,
    index: std::collections::HashMap<[u8; 8], usize>,
) {
    let mut uplinks = network.subscribe_uplinks();
    let started = network.started_at();
    loop {
        match uplinks.recv().await {
            Ok(uplink) => {
                if let Some(&m) = index.get(&eui_key(&uplink.dev_eui)) {
                    last.borrow_mut()[m] = Some(world.time_of(started + uplink.at));
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
