//! `campaign plan`'s physical limit: how many meters the route could update
//! at best, and where the others are lost before the van leaves, with the
//! rehearsal's model ([`otavan_planning::limit`]).
//!
//! The inventory does not know a meter's flash speed, so every meter is
//! given the fastest goodput ([`defaults::GOODPUT_MAX_KB_S`]): the limit
//! stays an upper bound. The access point and the link setup are the
//! planning defaults a rehearsal starts from. What the plan cannot know
//! (WAKEs the gateways fail to deliver, faults on the drive) is left to the
//! rehearsal and `campaign watch`; the peak hour's gateway count is the
//! downlink side here.

use otavan_planning::Contacts;
use otavan_planning::defaults;
use otavan_planning::limit::{self, Candidate, LinkModel, Reach};
use otavan_planning::time::from_secs_f64;

use crate::plan::Outcome;

/// The limit and the split of the meters the plan cannot update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSplit {
    /// Meters not at the target that the route's contacts could update at
    /// best.
    pub physical_limit: usize,
    /// Meters not at the target no van comes within range of.
    pub not_reachable: usize,
    /// Meters not at the target whose contacts are too short at the
    /// planned speed for the update.
    pub too_short_at_planned_speed: usize,
    /// Updatable meters the plan gives no WAKE (the planner's minimum
    /// contact, an unknown phase with a long interval, no uplink in time).
    pub missed_by_plan: usize,
}

/// The access point and link setup the plan assumes (planning defaults).
pub fn link_model() -> LinkModel {
    LinkModel {
        capacity_bps: defaults::AP_CAPACITY_MBPS * 1e6 / 8.0,
        max_clients: defaults::AP_MAX_CLIENTS,
        setup: from_secs_f64(defaults::ASSOC_MEDIAN_S + defaults::SESSION_OVERHEAD_S),
    }
}

/// The split of `outcomes` (in meter order, as `contacts`) for an update
/// of `update_bytes`.
pub fn split(contacts: &Contacts, outcomes: &[Outcome], update_bytes: u64) -> LimitSplit {
    let candidates: Vec<Option<Candidate>> = outcomes
        .iter()
        .map(|o| {
            (*o != Outcome::AlreadyAtTarget).then_some(Candidate {
                bytes: update_bytes as f64,
                goodput_bps: defaults::GOODPUT_MAX_KB_S * 1000.0,
            })
        })
        .collect();
    let reach = limit::reach(contacts, &candidates, &link_model());
    let count = |r: Reach| reach.iter().filter(|x| **x == r).count();
    LimitSplit {
        physical_limit: count(Reach::Updatable),
        not_reachable: count(Reach::NeverInRange),
        too_short_at_planned_speed: count(Reach::TooShort),
        missed_by_plan: reach
            .iter()
            .zip(outcomes)
            .filter(|(r, o)| **r == Reach::Updatable && **o != Outcome::Planned)
            .count(),
    }
}
