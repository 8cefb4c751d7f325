//! The missed meters near the van: failed or not reached, within
//! [`RADIUS_M`] of its fix, nearest first, at most [`LISTED`].

use otavan_store::VanFix;

use super::{CrewView, MeterState, PlannedMeter};

/// How far from the van a missed meter is listed, metres.
pub const RADIUS_M: f64 = 300.0;

/// Most meters listed.
pub const LISTED: usize = 20;

/// A missed meter near the van.
#[derive(Debug, Clone, PartialEq)]
pub struct Near<'a> {
    /// The meter.
    pub meter: &'a PlannedMeter,
    /// Failed or not reached.
    pub state: MeterState,
    /// Metres from the van.
    pub metres: f64,
}

/// The missed meters within [`RADIUS_M`] of `van`, nearest first.
pub fn missed_near<'a>(view: &CrewView<'a>, van: &VanFix) -> Vec<Near<'a>> {
    let mut near: Vec<Near<'a>> = view
        .plan
        .meters
        .iter()
        .zip(&view.states)
        .filter(|(_, state)| state.missed())
        .map(|(meter, state)| Near {
            meter,
            state: *state,
            metres: van.metres_to(&VanFix {
                lat: meter.lat,
                lon: meter.lon,
                time: van.time,
            }),
        })
        .filter(|n| n.metres <= RADIUS_M)
        .collect();
    near.sort_by(|a, b| a.metres.total_cmp(&b.metres));
    near.truncate(LISTED);
    near
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crew_map::CrewPlan;
    use std::time::SystemTime;

    #[test]
    fn only_missed_meters_in_range_nearest_first() {
        let meter = |id: &str, lat: f64| PlannedMeter {
            device_id: id.into(),
            lat,
            lon: 9.73,
        };
        // 0.001° of latitude is 111 m.
        let plan = CrewPlan {
            meters: vec![
                meter("far", 52.374),
                meter("second", 52.3715),
                meter("done", 52.3701),
                meter("first", 52.3699),
            ],
            route: vec![],
        };
        let latest = [
            ("second".to_owned(), "FAILED".to_owned()),
            ("done".to_owned(), "UPDATED".to_owned()),
        ];
        let view = CrewView::new(&plan, &latest, &[], None);
        let van = VanFix {
            lat: 52.370,
            lon: 9.73,
            time: SystemTime::UNIX_EPOCH,
        };
        let near = missed_near(&view, &van);
        let listed: Vec<(&str, MeterState, i64)> = near
            .iter()
            .map(|n| (n.meter.device_id.as_str(), n.state, n.metres.round() as i64))
            .collect();
        assert_eq!(
            listed,
            [
                ("first", MeterState::NotReached, 11),
                ("second", MeterState::Failed, 167)
            ]
        );
    }
}
