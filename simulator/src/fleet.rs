//! The meters of a rehearsal: where they are and how each one behaves.
//!
//! Meters face east-west streets `street_spacing_m` apart, each
//! `street_length_m` long, on either side at a random offset from the
//! middle of the street. Every property is drawn from the meter's own
//! [`Purpose::Placement`] stream, so meter *n* is the same meter whatever
//! the van does.

use otavan_protocol::Version;

use crate::geometry::Point;
use crate::random::{Purpose, Stream};
use crate::scenario::Scenario;
use crate::time::Time;

/// One meter's fixed properties.
#[derive(Debug, Clone)]
pub struct MeterSpec {
    /// Position, metres.
    pub pos: Point,
    /// Index into [`Fleet::installs`].
    pub install: u8,
    /// WiFi range to the van, metres.
    pub wifi_range_m: f32,
    /// Index into [`Fleet::versions`]: the version the meter runs.
    pub version: u8,
    /// Uplink period.
    pub interval: Time,
    /// Time of the meter's first uplink (its phase, in `[0, interval)`).
    pub phase: Time,
    /// Flash-bound download speed, bytes per second.
    pub goodput_bps: f64,
}

/// Every meter, and the names their indices refer to.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The meters, numbered from 0.
    pub meters: Vec<MeterSpec>,
    /// Install kind names.
    pub installs: Vec<String>,
    /// Extra LoRa loss per install kind, dB.
    pub install_loss_db: Vec<f64>,
    /// Source versions.
    pub versions: Vec<Version>,
    /// The y coordinate of each street.
    pub streets_y: Vec<f64>,
    /// Lower-left corner of the area the meters occupy.
    pub min: Point,
    /// Upper-right corner.
    pub max: Point,
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
        let meters = (0..f.meters)
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
                MeterSpec {
                    pos: Point::new(x, streets_y[street] + side * offset),
                    install: install as u8,
                    wifi_range_m,
                    version,
                    interval,
                    phase,
                    goodput_bps,
                }
            })
            .collect();
        let last_y = streets_y.last().copied().unwrap_or(0.0);
        Fleet {
            meters,
            installs,
            install_loss_db: install_specs.iter().map(|i| i.lora_loss_db).collect(),
            versions: versions.into_iter().map(|(v, _)| v).collect(),
            streets_y,
            min: Point::new(0.0, -f.offset_max_m),
            max: Point::new(f.street_length_m, last_y + f.offset_max_m),
        }
    }

    /// A fleet of meters given one by one (campaign operations plan from a
    /// real inventory rather than a generated town). `installs` names the
    /// kinds the meters' `install` indices refer to and `versions` the
    /// versions their `version` indices do; there is no street grid, and
    /// the area is the meters' bounding box.
    pub fn from_meters(
        meters: Vec<MeterSpec>,
        installs: Vec<String>,
        versions: Vec<Version>,
    ) -> Fleet {
        let (mut min, mut max) = match meters.first() {
            Some(m) => (m.pos, m.pos),
            None => (Point::default(), Point::default()),
        };
        for m in &meters {
            min = Point::new(min.x.min(m.pos.x), min.y.min(m.pos.y));
            max = Point::new(max.x.max(m.pos.x), max.y.max(m.pos.y));
        }
        Fleet {
            meters,
            install_loss_db: vec![0.0; installs.len()],
            installs,
            versions,
            streets_y: Vec::new(),
            min,
            max,
        }
    }

    /// The longest WiFi range of any meter (the spatial index's cell size).
    pub fn max_wifi_range(&self) -> f64 {
        self.meters
            .iter()
            .map(|m| f64::from(m.wifi_range_m))
            .fold(1.0, f64::max)
    }
}

/// A meter's uplinks fall at `phase + k * interval` (nominally: each one
/// is shifted by up to the scenario's jitter).
impl MeterSpec {
    /// The nominal time of uplink `k`.
    pub fn nominal_uplink(&self, k: u64) -> Time {
        self.phase + k * self.interval
    }

    /// The first uplink index whose nominal time is at or after `t`.
    pub fn first_uplink_at_or_after(&self, t: Time) -> u64 {
        if t <= self.phase {
            0
        } else {
            (t - self.phase).div_ceil(self.interval)
        }
    }

    /// The WiFi range as f64 metres.
    pub fn range(&self) -> f64 {
        f64::from(self.wifi_range_m)
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
            .meters
            .iter()
            .filter(|m| usize::from(m.install) == basement)
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

    #[test]
    fn a_fleet_from_given_meters_spans_their_bounding_box() {
        let meter = |x, y| MeterSpec {
            pos: Point::new(x, y),
            install: 0,
            wifi_range_m: 30.0,
            version: 0,
            interval: 100,
            phase: 0,
            goodput_bps: 1.0,
        };
        let fleet = Fleet::from_meters(
            vec![meter(-5.0, 20.0), meter(40.0, -3.0), meter(10.0, 7.0)],
            vec!["indoor".into()],
            Vec::new(),
        );
        assert_eq!(fleet.meters.len(), 3);
        assert_eq!(
            (fleet.min, fleet.max),
            (Point::new(-5.0, -3.0), Point::new(40.0, 20.0))
        );
        assert_eq!(fleet.install_loss_db, [0.0]);
        let empty = Fleet::from_meters(Vec::new(), Vec::new(), Vec::new());
        assert_eq!((empty.min, empty.max), (Point::default(), Point::default()));
    }

    #[test]
    fn uplink_indices() {
        let m = MeterSpec {
            pos: Point::default(),
            install: 0,
            wifi_range_m: 50.0,
            version: 0,
            interval: 100,
            phase: 30,
            goodput_bps: 1.0,
        };
        assert_eq!(m.first_uplink_at_or_after(0), 0);
        assert_eq!(m.first_uplink_at_or_after(30), 0);
        assert_eq!(m.first_uplink_at_or_after(31), 1);
        assert_eq!(m.first_uplink_at_or_after(130), 1);
        assert_eq!(m.nominal_uplink(2), 230);
    }
}
