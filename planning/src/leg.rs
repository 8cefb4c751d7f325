//! A van's drive as legs: pieces at constant speed, short enough for the
//! contact search to index.

use serde::Serialize;

use crate::geometry::Point;
use crate::time::Time;

/// Longest leg, metres: bounds the area one leg can reach.
pub const MAX_LEG_M: f64 = 250.0;

/// A piece of a van's drive at constant speed (or parked, `from == to`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Leg {
    /// The van.
    pub van: u16,
    /// The pass over its route, from 0.
    pub pass: u16,
    /// Start time.
    pub t0: Time,
    /// End time.
    pub t1: Time,
    /// Position at `t0`.
    pub from: Point,
    /// Position at `t1`.
    pub to: Point,
}

impl Leg {
    /// Appends van 0's drive (pass 0) from `a` at `t0` to `b` at `t1` to
    /// `legs`, in equal legs of at most [`MAX_LEG_M`] (one parked leg when
    /// `a == b`).
    pub fn split(a: Point, b: Point, t0: Time, t1: Time, legs: &mut Vec<Leg>) {
        let pieces = ((a.distance(b) / MAX_LEG_M).ceil() as u64).max(1);
        for i in 0..pieces {
            let (s0, s1) = (i as f64 / pieces as f64, (i + 1) as f64 / pieces as f64);
            legs.push(Leg {
                van: 0,
                pass: 0,
                t0: t0 + ((t1 - t0) as f64 * s0) as Time,
                t1: t0 + ((t1 - t0) as f64 * s1) as Time,
                from: a.lerp(b, s0),
                to: a.lerp(b, s1),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::secs;

    #[test]
    fn split_into_equal_legs_no_longer_than_the_limit() {
        let mut legs = Vec::new();
        Leg::split(
            Point::new(0.0, 0.0),
            Point::new(1000.0, 0.0),
            secs(10),
            secs(110),
            &mut legs,
        );
        assert_eq!(legs.len(), 4);
        assert!(
            legs.iter()
                .all(|l| (l.from.distance(l.to) - 250.0).abs() < 1e-9)
        );
        assert_eq!((legs[0].t0, legs[3].t1), (secs(10), secs(110)));
        for w in legs.windows(2) {
            assert_eq!((w[0].t1, w[0].to), (w[1].t0, w[1].from));
        }
        // Parked: one leg in place.
        let mut parked = Vec::new();
        let here = Point::new(5.0, 5.0);
        Leg::split(here, here, secs(0), secs(60), &mut parked);
        assert_eq!(parked.len(), 1);
        assert_eq!((parked[0].from, parked[0].to), (here, here));
    }
}
