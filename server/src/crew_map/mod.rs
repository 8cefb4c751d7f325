//! The crew map on the dashboard (`otavan serve --plan`): the planned
//! route, the van's trace so far and its position, each planned meter as
//! done / in progress / failed / not reached, and the missed meters near
//! the van, nearest first. Drawn here as inline SVG ([`svg`]) in projected
//! coordinates ([`projection`]): no tiles, no script, nothing from the
//! internet.

pub mod nearby;
pub mod projection;
pub mod svg;

use std::collections::HashMap;

use otavan_store::VanFix;

/// A meter the plan sends the van to.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedMeter {
    /// Its id as meters report it (the DevEUI, upper-case hex).
    pub device_id: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// What the crew map draws from the campaign: the planned meters and the
/// route's waypoints (lat, lon), in driving order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrewPlan {
    /// The meters PLAN.csv wakes, placed from the inventory.
    pub meters: Vec<PlannedMeter>,
    /// The route.
    pub route: Vec<(f64, f64)>,
}

/// A planned meter's state on the map, from its latest van report toward
/// the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeterState {
    /// UPDATED.
    Done,
    /// Downloading, downloaded, verified or updating.
    InProgress,
    /// FAILED.
    Failed,
    /// No report toward the target yet.
    NotReached,
}

impl MeterState {
    /// All states, in the legend's order.
    pub const ALL: [MeterState; 4] = [
        MeterState::Done,
        MeterState::InProgress,
        MeterState::Failed,
        MeterState::NotReached,
    ];

    /// The state of a meter whose latest report says `state` (`None`: no
    /// report).
    pub fn of(state: Option<&str>) -> MeterState {
        match state {
            None => MeterState::NotReached,
            Some("UPDATED") => MeterState::Done,
            Some("FAILED") => MeterState::Failed,
            Some(_) => MeterState::InProgress,
        }
    }

    /// The SVG class (and legend text).
    pub fn class(self) -> &'static str {
        match self {
            MeterState::Done => "done",
            MeterState::InProgress => "in-progress",
            MeterState::Failed => "failed",
            MeterState::NotReached => "not-reached",
        }
    }

    /// Whether the crew should still go for it.
    pub fn missed(self) -> bool {
        matches!(self, MeterState::Failed | MeterState::NotReached)
    }
}

/// Everything the map shows at one moment.
#[derive(Debug)]
pub struct CrewView<'a> {
    /// The campaign.
    pub plan: &'a CrewPlan,
    /// Each planned meter's state, in `plan.meters` order.
    pub states: Vec<MeterState>,
    /// The van's stored trace this session, oldest first.
    pub trace: &'a [VanFix],
    /// The van's latest fix, if gpsd has one.
    pub van: Option<VanFix>,
}

impl<'a> CrewView<'a> {
    /// The view of `plan` given each meter's latest reported state
    /// (`(device_id, state)`, as the store gives them).
    pub fn new(
        plan: &'a CrewPlan,
        latest: &[(String, String)],
        trace: &'a [VanFix],
        van: Option<VanFix>,
    ) -> CrewView<'a> {
        let by_id: HashMap<String, &str> = latest
            .iter()
            .map(|(id, state)| (id.to_ascii_uppercase(), state.as_str()))
            .collect();
        let states = plan
            .meters
            .iter()
            .map(|m| MeterState::of(by_id.get(&m.device_id.to_ascii_uppercase()).copied()))
            .collect();
        CrewView {
            plan,
            states,
            trace,
            van,
        }
    }

    /// How many planned meters are in `state`.
    pub fn count(&self, state: MeterState) -> usize {
        self.states.iter().filter(|s| **s == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_come_from_the_latest_report_and_ids_match_in_any_case() {
        let meter = |id: &str| PlannedMeter {
            device_id: id.into(),
            lat: 52.37,
            lon: 9.73,
        };
        let plan = CrewPlan {
            meters: ["A1", "B2", "C3", "D4"].map(meter).to_vec(),
            route: vec![],
        };
        let latest = [
            ("a1".to_owned(), "UPDATED".to_owned()),
            ("B2".to_owned(), "DOWNLOADING".to_owned()),
            ("C3".to_owned(), "FAILED".to_owned()),
            ("Z9".to_owned(), "UPDATED".to_owned()),
        ];
        let view = CrewView::new(&plan, &latest, &[], None);
        assert_eq!(
            view.states,
            [
                MeterState::Done,
                MeterState::InProgress,
                MeterState::Failed,
                MeterState::NotReached
            ]
        );
        assert_eq!(view.count(MeterState::Done), 1);
        assert!(MeterState::Failed.missed() && !MeterState::InProgress.missed());
    }
}
