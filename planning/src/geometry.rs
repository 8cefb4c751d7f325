//! Plane geometry in metres: where a moving van is within a meter's range.

use serde::Serialize;

/// A point in metres (x east, y north).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Point {
    /// Metres east of the origin.
    pub x: f64,
    /// Metres north of the origin.
    pub y: f64,
}

impl Point {
    /// The point (x, y).
    pub const fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    /// Distance to `other`.
    pub fn distance(self, other: Point) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }

    /// The point a fraction `s` of the way to `other`.
    pub fn lerp(self, other: Point, s: f64) -> Point {
        Point::new(
            self.x + (other.x - self.x) * s,
            self.y + (other.y - self.y) * s,
        )
    }
}

/// The part of the segment from `a` to `b` within `range` of `m`, as
/// fractions `(s0, s1)` of the way from `a` (0 <= s0 <= s1 <= 1), or `None`
/// when the segment never comes that close. A zero-length segment (a parked
/// van) is either wholly in range or not at all.
pub fn in_range(a: Point, b: Point, m: Point, range: f64) -> Option<(f64, f64)> {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let (fx, fy) = (a.x - m.x, a.y - m.y);
    let qa = dx * dx + dy * dy;
    let c = fx * fx + fy * fy - range * range;
    if qa == 0.0 {
        return (c <= 0.0).then_some((0.0, 1.0));
    }
    let qb = 2.0 * (dx * fx + dy * fy);
    let disc = qb * qb - 4.0 * qa * c;
    if disc < 0.0 {
        return None;
    }
    let root = disc.sqrt();
    let s0 = ((-qb - root) / (2.0 * qa)).max(0.0);
    let s1 = ((-qb + root) / (2.0 * qa)).min(1.0);
    (s0 <= s1).then_some((s0, s1))
}

/// The closed form of field-physics.md: how long a van at `speed` (m/s) on
/// a straight road stays within `range` of a meter `distance` from the
/// road, `2 * sqrt(R^2 - d^2) / v` (zero when out of range).
pub fn contact_time_closed_form(range: f64, distance: f64, speed: f64) -> f64 {
    if distance >= range {
        0.0
    } else {
        2.0 * (range * range - distance * distance).sqrt() / speed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_circles() {
        let m = Point::new(50.0, 30.0);
        let (s0, s1) = in_range(Point::new(0.0, 0.0), Point::new(100.0, 0.0), m, 50.0).unwrap();
        // sqrt(50^2 - 30^2) = 40: from x = 10 to x = 90.
        assert!((s0 - 0.1).abs() < 1e-12 && (s1 - 0.9).abs() < 1e-12);
        assert!(in_range(Point::new(0.0, 0.0), Point::new(100.0, 0.0), m, 29.0).is_none());
        // Clipped at the segment's ends.
        let (s0, s1) = in_range(Point::new(40.0, 0.0), Point::new(60.0, 0.0), m, 50.0).unwrap();
        assert_eq!((s0, s1), (0.0, 1.0));
        // Past the end: no contact.
        assert!(in_range(Point::new(200.0, 0.0), Point::new(300.0, 0.0), m, 50.0).is_none());
        // Parked.
        assert!(in_range(Point::new(50.0, 0.0), Point::new(50.0, 0.0), m, 31.0).is_some());
        assert!(in_range(Point::new(50.0, 0.0), Point::new(50.0, 0.0), m, 29.0).is_none());
    }

    #[test]
    fn field_physics_contact_times() {
        let kmh = |v: f64| v / 3.6;
        for (speed, expected) in [(10.0, 53.0), (30.0, 18.0), (50.0, 11.0)] {
            let t = contact_time_closed_form(80.0, 30.0, kmh(speed));
            assert!((t - expected).abs() < 0.5, "{speed} km/h: {t}");
        }
        assert_eq!(contact_time_closed_form(80.0, 80.0, 5.0), 0.0);
    }
}
