//! The physical limit of a rehearsal and where the meters below it were
//! lost: `physical_limit`, `planning_efficiency` and `losses` in
//! `report.json`, the `loss` column of `meters.csv`.
//!
//! The limit itself is [`otavan_planning::limit`]'s (shared with
//! `otavan campaign plan`): here the fleet, the network and the scenario's
//! access point become its inputs, and each meter not updated gets exactly
//! one [`Loss`], so `updated` plus the losses is every meter that needed
//! the update.

use serde::Serialize;

use crate::fleet::Fleet;
use crate::radio::Radio;
use crate::scenario::Scenario;
use crate::simulation::{Cause, MeterResult, Outcome};
use otavan_planning::Contacts;
use otavan_planning::limit::{self, Candidate, LinkModel, Reach};
use otavan_planning::time::from_secs_f64;

/// Why a meter that needed the update did not get it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// No van comes within its WiFi range, or no gateway hears it (it
    /// cannot be woken): no plan could have reached it.
    NotReachable,
    /// Vans pass, but its contacts at the planned speed (all passes
    /// together, each paying association again) are too short for its
    /// transfer at its best share of the access point.
    TooShortAtPlannedSpeed,
    /// Updatable, but its last WAKE never reached it (expired in the
    /// queue behind the gateways' duty cycle or lost uplinks, or lost on
    /// the air).
    WakeNotDelivered,
    /// Updatable, but a fault hit last: the WiFi link dropped or power
    /// failed during the apply.
    Faults,
    /// Updatable, woken or plannable, and missed all the same: the
    /// planner's minimum contact, a window without the van, a full access
    /// point, a share below the best, or the campaign's end.
    MissedByPlan,
}

impl Loss {
    /// Its name in `report.json`'s `losses` and `meters.csv`'s `loss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Loss::NotReachable => "not_reachable",
            Loss::TooShortAtPlannedSpeed => "too_short_at_planned_speed",
            Loss::WakeNotDelivered => "wake_not_delivered",
            Loss::Faults => "faults",
            Loss::MissedByPlan => "missed_by_plan",
        }
    }

    /// The loss of a meter with `reach` that ended at `outcome` (`None`:
    /// updated or already current).
    pub fn of(reach: Reach, outcome: Outcome) -> Option<Loss> {
        let Outcome::Failed(cause) = outcome else {
            return None;
        };
        Some(match (reach, cause) {
            (_, Cause::NoLoraCoverage) => Loss::NotReachable,
            (Reach::NotCandidate | Reach::NeverInRange, _) => Loss::NotReachable,
            (Reach::TooShort, _) => Loss::TooShortAtPlannedSpeed,
            (Reach::Updatable, Cause::WakeNotDelivered | Cause::WakeLost) => Loss::WakeNotDelivered,
            (Reach::Updatable, Cause::LinkDrop | Cause::PowerCut) => Loss::Faults,
            (Reach::Updatable, _) => Loss::MissedByPlan,
        })
    }
}

/// The losses of a run, meter by meter (`report.json`'s `losses`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Losses {
    /// [`Loss::NotReachable`].
    pub not_reachable: u64,
    /// [`Loss::TooShortAtPlannedSpeed`].
    pub too_short_at_planned_speed: u64,
    /// [`Loss::WakeNotDelivered`].
    pub wake_not_delivered: u64,
    /// [`Loss::Faults`].
    pub faults: u64,
    /// [`Loss::MissedByPlan`].
    pub missed_by_plan: u64,
}

impl Losses {
    /// Counts `losses`.
    pub fn count(losses: &[Option<Loss>]) -> Losses {
        let mut sum = Losses::default();
        for loss in losses.iter().flatten() {
            *match loss {
                Loss::NotReachable => &mut sum.not_reachable,
                Loss::TooShortAtPlannedSpeed => &mut sum.too_short_at_planned_speed,
                Loss::WakeNotDelivered => &mut sum.wake_not_delivered,
                Loss::Faults => &mut sum.faults,
                Loss::MissedByPlan => &mut sum.missed_by_plan,
            } += 1;
        }
        sum
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.not_reachable
            + self.too_short_at_planned_speed
            + self.wake_not_delivered
            + self.faults
            + self.missed_by_plan
    }
}

/// The access point and link setup of `scenario`, as the limit sees them.
pub fn link_model(scenario: &Scenario) -> LinkModel {
    LinkModel {
        capacity_bps: scenario.van.ap_capacity_mbps * 1e6 / 8.0,
        max_clients: scenario.van.ap_max_clients,
        setup: from_secs_f64(scenario.wifi.assoc_median_s + scenario.wifi.session_overhead_s),
    }
}

/// The meters that need the update and that a gateway hears (only they
/// can be woken, so only they share the access point), in meter order.
pub fn candidates(fleet: &Fleet, radio: &Radio, needs: &[Option<u64>]) -> Vec<Option<Candidate>> {
    fleet
        .profiles
        .iter()
        .enumerate()
        .map(|(m, profile)| {
            let bytes = needs[usize::from(profile.version)]?;
            radio.sf(m)?;
            Some(Candidate {
                bytes: bytes as f64,
                goodput_bps: profile.goodput_bps,
            })
        })
        .collect()
}

/// Each meter's reach on this route, for its [`candidates`].
pub fn reach(
    scenario: &Scenario,
    fleet: &Fleet,
    radio: &Radio,
    needs: &[Option<u64>],
    contacts: &Contacts,
) -> Vec<Reach> {
    let candidates = candidates(fleet, radio, needs);
    limit::reach(contacts, &candidates, &link_model(scenario))
}

/// Each meter's loss, in meter order.
pub fn of_run(reach: &[Reach], meters: &[MeterResult]) -> Vec<Option<Loss>> {
    reach
        .iter()
        .zip(meters)
        .map(|(r, m)| Loss::of(*r, m.outcome))
        .collect()
}
