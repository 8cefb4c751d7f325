//! The meters as the planner sees them: where each one is, how far its
//! WiFi reaches, and when it sends its uplinks (a class A meter hears a
//! WAKE only right after one of them).

use std::ops::Index;

use crate::geometry::Point;
use crate::time::Time;

/// One meter, as far as planning goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterSpec {
    /// Position, metres.
    pub pos: Point,
    /// WiFi range to the van, metres.
    pub wifi_range_m: f32,
    /// Uplink period.
    pub interval: Time,
    /// Time of the meter's first uplink (its phase, in `[0, interval)`).
    pub phase: Time,
}

impl MeterSpec {
    /// The nominal time of uplink `k` (each real one may be shifted by
    /// the jitter).
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

/// Every meter of a campaign, numbered from 0, and the area they occupy.
#[derive(Debug, Clone, Default)]
pub struct Meters {
    specs: Vec<MeterSpec>,
    /// Lower-left corner of the area.
    pub min: Point,
    /// Upper-right corner.
    pub max: Point,
}

impl Meters {
    /// The meters `specs`; the area is their bounding box (a point at the
    /// origin when there are none).
    pub fn from_meters(specs: Vec<MeterSpec>) -> Meters {
        let (mut min, mut max) = match specs.first() {
            Some(m) => (m.pos, m.pos),
            None => (Point::default(), Point::default()),
        };
        for m in &specs {
            min = Point::new(min.x.min(m.pos.x), min.y.min(m.pos.y));
            max = Point::new(max.x.max(m.pos.x), max.y.max(m.pos.y));
        }
        Meters { specs, min, max }
    }

    /// The meters `specs` in the area from `min` to `max` (a generated
    /// town knows its streets' extent; the area must contain every meter).
    pub fn in_area(specs: Vec<MeterSpec>, min: Point, max: Point) -> Meters {
        Meters { specs, min, max }
    }

    /// How many meters there are.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// The meters in number order.
    pub fn iter(&self) -> std::slice::Iter<'_, MeterSpec> {
        self.specs.iter()
    }

    /// The longest WiFi range of any meter (at least 1 m).
    pub fn max_wifi_range(&self) -> f64 {
        self.specs.iter().map(MeterSpec::range).fold(1.0, f64::max)
    }
}

impl Index<usize> for Meters {
    type Output = MeterSpec;

    fn index(&self, m: usize) -> &MeterSpec {
        &self.specs[m]
    }
}

impl<'a> IntoIterator for &'a Meters {
    type Item = &'a MeterSpec;
    type IntoIter = std::slice::Iter<'a, MeterSpec>;

    fn into_iter(self) -> Self::IntoIter {
        self.specs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(x: f64, y: f64) -> MeterSpec {
        MeterSpec {
            pos: Point::new(x, y),
            wifi_range_m: 30.0,
            interval: 100,
            phase: 30,
        }
    }

    #[test]
    fn given_meters_span_their_bounding_box() {
        let meters =
            Meters::from_meters(vec![meter(-5.0, 20.0), meter(40.0, -3.0), meter(10.0, 7.0)]);
        assert_eq!(meters.len(), 3);
        assert_eq!(
            (meters.min, meters.max),
            (Point::new(-5.0, -3.0), Point::new(40.0, 20.0))
        );
        assert_eq!(meters[1].pos, Point::new(40.0, -3.0));
        let empty = Meters::from_meters(Vec::new());
        assert!(empty.is_empty());
        assert_eq!((empty.min, empty.max), (Point::default(), Point::default()));
        assert_eq!(empty.max_wifi_range(), 1.0);
    }

    #[test]
    fn uplink_indices() {
        let m = meter(0.0, 0.0);
        assert_eq!(m.first_uplink_at_or_after(0), 0);
        assert_eq!(m.first_uplink_at_or_after(30), 0);
        assert_eq!(m.first_uplink_at_or_after(31), 1);
        assert_eq!(m.first_uplink_at_or_after(130), 1);
        assert_eq!(m.nominal_uplink(2), 230);
    }
}
