//! `campaign plan --pace-budget-s`: the van's speed on each leg and its
//! stops, planned for the inventory's meters by [`otavan_planning::pace`]
//! (as in a rehearsal), and the drive they make.
//!
//! Every meter not at the target needs, on the drive, the planner's
//! minimum contact, or with `--update-bytes` the link setup plus the
//! update at the fastest goodput or its share of a full access point when
//! that is longer ([`pace::need_s`]). The plan slows legs and stops where
//! that buys the most meters per second of the budget. A paced drive has a
//! time on its first waypoint at most: the plan sets the rest.

use otavan_planning::Meters;
use otavan_planning::defaults;
use otavan_planning::geometry::Point;
use otavan_planning::leg::Leg;
use otavan_planning::limit::Candidate;
use otavan_planning::pace::{self, Pace, PaceLimits};
use otavan_planning::time::Time;

use crate::limit::link_model;

/// The planner's slowest leg (km/h) and longest stop (seconds), the
/// defaults of `--min-speed-kmh` and `--max-stop-s`.
pub use otavan_planning::defaults::{MAX_STOP_S, MIN_SPEED_KMH};

/// How a paced drive is planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceSettings {
    /// Seconds the drive may take beyond the route at `--speed-kmh`.
    pub budget_s: f64,
    /// The slowest leg, km/h.
    pub min_speed_kmh: f64,
    /// The longest stop, seconds.
    pub max_stop_s: f64,
}

impl PaceSettings {
    /// A budget of `budget_s` with the planner's slowest speed and
    /// longest stop ([`MIN_SPEED_KMH`], [`MAX_STOP_S`]).
    pub fn new(budget_s: f64) -> PaceSettings {
        PaceSettings {
            budget_s,
            min_speed_kmh: MIN_SPEED_KMH,
            max_stop_s: MAX_STOP_S,
        }
    }

    /// Why these settings cannot be used at `speed_kmh`, if they cannot.
    pub fn check(&self, speed_kmh: f64) -> Result<(), String> {
        if !(self.budget_s.is_finite() && self.budget_s >= 0.0) {
            return Err(format!(
                "--pace-budget-s must be zero or more, not {}",
                self.budget_s
            ));
        }
        if !(self.min_speed_kmh.is_finite() && self.min_speed_kmh > 0.0) {
            return Err(format!(
                "--min-speed-kmh must be positive, not {}",
                self.min_speed_kmh
            ));
        }
        if self.min_speed_kmh > speed_kmh {
            return Err(format!(
                "--min-speed-kmh ({}) must not be above --speed-kmh ({speed_kmh})",
                self.min_speed_kmh
            ));
        }
        if !(self.max_stop_s.is_finite() && self.max_stop_s >= 0.0) {
            return Err(format!(
                "--max-stop-s must be zero or more, not {}",
                self.max_stop_s
            ));
        }
        Ok(())
    }
}

/// The pace of `route` (local metres) at up to `speed_kmh` for `fleet`,
/// where `wanted[m]` says whether meter `m` needs the update.
pub fn plan(
    route: &[Point],
    fleet: &Meters,
    wanted: &[bool],
    settings: &PaceSettings,
    speed_kmh: f64,
    min_contact: Time,
    update_bytes: Option<u64>,
) -> Pace {
    let link = link_model();
    let candidate = Candidate {
        bytes: update_bytes.unwrap_or(0) as f64,
        goodput_bps: defaults::GOODPUT_MAX_KB_S * 1000.0,
    };
    let need = pace::need_s(&candidate, &link, min_contact, 1);
    let needs: Vec<Option<f64>> = wanted.iter().map(|w| w.then_some(need)).collect();
    let limits = PaceLimits {
        max_speed: speed_kmh / 3.6,
        min_speed: settings.min_speed_kmh / 3.6,
        max_stop_s: settings.max_stop_s,
        budget_s: settings.budget_s,
    };
    Pace::plan(route, fleet, &needs, &limits)
}

/// The paced drive from `t0` as timed legs, and when each pace leg starts.
pub fn drive(pace: &Pace, t0: Time) -> (Vec<Leg>, Vec<Time>) {
    let mut legs = Vec::new();
    let mut starts = Vec::with_capacity(pace.legs.len());
    let mut now = t0;
    for leg in &pace.legs {
        starts.push(now);
        let one = Pace { legs: vec![*leg] };
        now = one.timed(0, 0, now, &mut legs);
    }
    (legs, starts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otavan_planning::meters::MeterSpec;
    use otavan_planning::time::secs;

    #[test]
    fn bad_settings_are_named() {
        assert!(PaceSettings::new(600.0).check(20.0).is_ok());
        let err = |s: PaceSettings| s.check(20.0).unwrap_err();
        assert!(err(PaceSettings::new(-1.0)).contains("--pace-budget-s"));
        let slow = PaceSettings {
            min_speed_kmh: 30.0,
            ..PaceSettings::new(60.0)
        };
        assert!(err(slow).contains("--min-speed-kmh (30)"));
        let stop = PaceSettings {
            max_stop_s: f64::NAN,
            ..PaceSettings::new(60.0)
        };
        assert!(err(stop).contains("--max-stop-s"));
    }

    /// A basement meter 5 m off a 500 m street (12 m of range: 21.8 m of
    /// chord, 3.9 s at 20 km/h) needs the 10 s minimum: a stop of 6.1 s
    /// beside it, or nothing when it is at the target.
    #[test]
    fn the_drive_stops_for_a_meter_that_needs_it() {
        let fleet = Meters::from_meters(vec![MeterSpec {
            pos: Point::new(300.0, 5.0),
            wifi_range_m: 12.0,
            interval: secs(3600),
            phase: 0,
        }]);
        let route = [Point::new(0.0, 0.0), Point::new(500.0, 0.0)];
        let settings = PaceSettings::new(60.0);
        let pace = plan(&route, &fleet, &[true], &settings, 20.0, secs(10), None);
        assert_eq!(pace.stops(), 1);
        let chord = 2.0 * (144.0f64 - 25.0).sqrt();
        assert!((pace.extra_s(20.0 / 3.6) - (10.0 - chord / (20.0 / 3.6))).abs() < 1e-9);
        let (legs, starts) = drive(&pace, secs(100));
        assert_eq!(starts.len(), pace.legs.len());
        assert_eq!(starts[0], secs(100));
        assert_eq!(legs.iter().filter(|l| l.from == l.to).count(), 1);
        let current = plan(&route, &fleet, &[false], &settings, 20.0, secs(10), None);
        assert_eq!(current.stops() + current.extra_s(20.0 / 3.6) as usize, 0);
    }
}
