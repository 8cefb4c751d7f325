//! The meters of a rehearsal: where they are and how each one behaves.
//!
//! Meters face east-west streets `street_spacing_m` apart, each
//! `street_length_m` long, on either side at a random offset from the
//! middle of the street. Every property is drawn from the meter's own
//! [`Purpose::Placement`] stream, so meter *n* is the same meter whatever
//! the van does.

use otavan_planning::geometry::Point;
use otavan_planning::meters::{MeterSpec, Meters};
use otavan_planning::time::Time;
use otavan_protocol::Version;

use crate::random::{Purpose, Stream};
use crate::scenario::Scenario;

/// What the simulator draws for a meter beyond what the planner sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Index into [`Fleet::installs`].
    pub install: u8,
    /// Index into [`Fleet::versions`]: the version the meter runs.
    pub version: u8,
    /// Flash-bound download speed, bytes per second.
    pub goodput_bps: f64,
}

/// Every meter of a rehearsal, and the names their indices refer to.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The meters as the planner sees them, numbered from 0, in the area
    /// the street grid occupies.
    pub meters: Meters,
    /// Meter `m`'s install kind, version and flash speed.
    pub profiles: Vec<Profile>,
    /// Install kind names.
    pub installs: Vec<String>,
    /// Extra LoRa loss per install kind, dB.
    pub install_loss_db: Vec<f64>,
    /// Source versions.
    pub versions: Vec<Version>,
    /// The y coordinate of each street.
    pub streets_y: Vec<f64>,
}

impl Fleet {
    /// Places the scenario's meters (seeded by `seed`).
    pub fn generate(scenario: &Scenario, seed: u64) -> Fleet {
        let f = &scenario.fleet;
        let installs: Vec<String> = f.install.keys().cloned().collect();
        let install_specs: Vec<_> = f.install.values().cloned().collect();
        let install_weights: Vec<f64> = install_specs.iter().map(|i| i.share).collect();
        let intervals = scenario.uplink_intervals();
        let interval_weights: Vec<f64> = intervals.iter().map(|(_, w)| *w).collect();
        let versions = scenario.versions();
        let version_weights: Vec<f64> = versions.iter().map(|(_, w)| *w).collect();
        let streets_y: Vec<f64> = (0..f.streets)
            .map(|i| f64::from(i) * f.street_spacing_m)
            .collect();
        let wifi = &scenario.wifi;
        let (specs, profiles): (Vec<MeterSpec>, Vec<Profile>) = (0..f.meters)
            .map(|n| {
                let mut rng = Stream::new(seed, Purpose::Placement, u64::from(n));
                let street = (rng.uniform() * f64::from(f.streets)) as usize;
                let x = rng.between(0.0, f.street_length_m);
                let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
                let offset = rng.between(f.offset_min_m, f.offset_max_m);
                let install = rng.pick(&install_weights);
                let spec = &install_specs[install];
                let wifi_range_m = rng.between(spec.wifi_range_min_m, spec.wifi_range_max_m) as f32;
                let (interval, _) = intervals[rng.pick(&interval_weights)];
                let interval = interval.as_micros() as Time;
                let phase = (rng.uniform() * interval as f64) as Time;
                let version = rng.pick(&version_weights) as u8;
                let goodput_bps =
                    1000.0 * rng.between(wifi.goodput_min_kb_s, wifi.goodput_max_kb_s);
                (
                    MeterSpec {
                        pos: Point::new(x, streets_y[street] + side * offset),
                        wifi_range_m,
                        interval,
                        phase,
                    },
                    Profile {
                        install: install as u8,
                        version,
                        goodput_bps,
                    },
                )
            })
            .unzip();
        let last_y = streets_y.last().copied().unwrap_or(0.0);
        Fleet {
            meters: Meters::in_area(
                specs,
                Point::new(0.0, -f.offset_max_m),
                Point::new(f.street_length_m, last_y + f.offset_max_m),
            ),
            profiles,
            installs,
            install_loss_db: install_specs.iter().map(|i| i.lora_loss_db).collect(),
            versions: versions.into_iter().map(|(v, _)| v).collect(),
            streets_y,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_follows_the_scenario() {
        let mut scenario = Scenario::default();
        scenario.fleet.meters = 20_000;
        let fleet = Fleet::generate(&scenario, 5);
        assert_eq!(fleet.meters.len(), 20_000);
        let f = &scenario.fleet;
        for m in &fleet.meters {
            let street_y = (m.pos.y / f.street_spacing_m).round() * f.street_spacing_m;
            let offset = (m.pos.y - street_y).abs();
            assert!(offset >= f.offset_min_m - 1e-9 && offset <= f.offset_max_m + 1e-9);
            assert!((0.0..=f.street_length_m).contains(&m.pos.x));
            assert!(m.phase < m.interval);
        }
        let basement = fleet.installs.iter().position(|n| n == "basement").unwrap();
        let share = fleet
            .profiles
            .iter()
            .filter(|p| usize::from(p.install) == basement)
            .count() as f64
            / 20_000.0;
        assert!((share - 0.3).abs() < 0.02, "{share}");
        // Same seed, same fleet; another seed, another one.
        let again = Fleet::generate(&scenario, 5);
        assert!(
            fleet
                .meters
                .iter()
                .zip(&again.meters)
                .all(|(a, b)| a.pos == b.pos)
        );
        let other = Fleet::generate(&scenario, 6);
        assert!(fleet.meters[0].pos != other.meters[0].pos);
    }
}
