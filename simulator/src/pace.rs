//! Each van's pace over its route in a rehearsal: the scenario's
//! `van.pace` knobs and shifts turned into [`otavan_planning::pace`]'s
//! limits and budget.
//!
//! With `pace = "constant"` every route corner-to-corner stretch is driven
//! at `speed_kmh`, as before there were plans. With `pace = "planned"` the
//! planner gets, per pass, `pace_budget_share` of the pass's spare shift
//! time: the shift hours from `first_day` to the campaign's end divided
//! among the passes, less the pass driven at `speed_kmh` (and its
//! `stop_every_m` stops). So the passes still end before the campaign does.
//! Each pass spends it on the meters earlier passes served fewer than
//! `pace_passes_per_meter` times, and a meter needs, on a pass that serves
//! it, the planner's minimum contact or its transfer spread over that many
//! passes.

use otavan_planning::Meters;
use otavan_planning::geometry::Point;
use otavan_planning::limit::Candidate;
use otavan_planning::pace::{self, LegPace, Pace, PaceLimits};
use otavan_planning::time::{DAY, Time, as_secs_f64, from_secs_f64};

use crate::losses::link_model;
use crate::scenario::{PaceKind, Scenario};

/// Each van's pace over its route (`routes[v]`), pass by pass (as the
/// route runs forward; the return passes drive it reversed), for the
/// meters `candidates` (the ones that need the update and can be woken).
pub fn paces(
    scenario: &Scenario,
    meters: &Meters,
    candidates: &[Option<Candidate>],
    routes: &[Vec<Point>],
    horizon: Time,
) -> Vec<Vec<Pace>> {
    let v = &scenario.van;
    let speed = v.speed_kmh / 3.6;
    let passes = v.passes as usize;
    match v.pace {
        PaceKind::Constant => routes
            .iter()
            .map(|r| vec![corners(r, speed); passes])
            .collect(),
        PaceKind::Planned => {
            let link = link_model(scenario);
            let min_contact = from_secs_f64(scenario.campaign.min_contact_s);
            let per_meter = v.pace_passes_per_meter.min(v.passes);
            let needs: Vec<Option<f64>> = candidates
                .iter()
                .map(|c| c.map(|c| pace::need_s(&c, &link, min_contact, per_meter)))
                .collect();
            routes
                .iter()
                .map(|route| {
                    let limits = PaceLimits {
                        max_speed: speed,
                        min_speed: v.min_speed_kmh / 3.6,
                        max_stop_s: v.max_stop_s,
                        budget_s: budget_s(scenario, route, horizon),
                    };
                    Pace::plan_passes(route, meters, &needs, &limits, v.passes, per_meter)
                })
                .collect()
        }
    }
}

/// The time a planned pass of `route` may add to driving it at
/// `speed_kmh`, seconds: `pace_budget_share` of its spare shift time.
pub fn budget_s(scenario: &Scenario, route: &[Point], horizon: Time) -> f64 {
    let v = &scenario.van;
    let length: f64 = route.windows(2).map(|p| p[0].distance(p[1])).sum();
    let stops = if v.stop_every_m > 0.0 {
        (length / v.stop_every_m).floor() * v.stop_s
    } else {
        0.0
    };
    let drive = length / (v.speed_kmh / 3.6) + stops;
    let per_pass = shift_seconds(scenario, horizon) / f64::from(v.passes.max(1));
    v.pace_budget_share * (per_pass - drive).max(0.0)
}

/// Seconds of shift from `first_day` until `horizon`.
fn shift_seconds(scenario: &Scenario, horizon: Time) -> f64 {
    let v = &scenario.van;
    let start = from_secs_f64(v.shift_start_h * 3600.0);
    let length = from_secs_f64(v.shift_hours * 3600.0);
    let mut total = 0;
    let mut day = Time::from(v.first_day);
    while day * DAY + start < horizon {
        let begins = day * DAY + start;
        total += length.min(horizon - begins);
        day += 1;
    }
    as_secs_f64(total)
}

/// `route` corner to corner at `speed`, one leg a stretch.
fn corners(route: &[Point], speed: f64) -> Pace {
    Pace {
        legs: route
            .windows(2)
            .map(|p| LegPace {
                from: p[0],
                to: p[1],
                speed,
                stop: None,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days 1 to 9 of a 10-day campaign, 8 h shifts: 72 h over 4 passes,
    /// 18 h a pass; a 36 km route at 10 km/h takes 3.6 h, 14.4 h spare,
    /// 90 % of it to spend.
    #[test]
    fn the_budget_is_a_share_of_the_spare_shift_time() {
        let mut s = Scenario::default();
        s.campaign.duration_days = 10.0;
        s.van.passes = 4;
        s.van.speed_kmh = 10.0;
        s.van.pace_budget_share = 0.9;
        let route = [Point::new(0.0, 0.0), Point::new(36_000.0, 0.0)];
        let horizon = crate::horizon(&s);
        assert_eq!(shift_seconds(&s, horizon), 72.0 * 3600.0);
        let budget = budget_s(&s, &route, horizon);
        assert!((budget - 0.9 * 14.4 * 3600.0).abs() < 1e-6, "{budget}");
        // A campaign ending mid-shift counts the part of it before the end.
        let cut = horizon - from_secs_f64(12.0 * 3600.0);
        assert_eq!(shift_seconds(&s, cut), 68.0 * 3600.0);
        // No spare time: no budget.
        s.van.passes = 40;
        assert_eq!(budget_s(&s, &route, horizon), 0.0);
    }
}
