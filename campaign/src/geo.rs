//! Latitude and longitude to local metres.
//!
//! An equirectangular projection around a reference point: x east and y
//! north in metres, `x = R * dlon * cos(lat0)`, `y = R * dlat`. Within a
//! town (tens of kilometres) its distance error is far below a WiFi
//! range; it does not handle routes across the ±180° meridian.

use otavan_planning::geometry::Point;

/// The Earth's mean radius, metres (IUGG).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A projection around one reference point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    lat0: f64,
    lon0: f64,
    cos_lat0: f64,
}

impl Projection {
    /// A projection around (`lat0`, `lon0`), degrees.
    pub fn new(lat0: f64, lon0: f64) -> Projection {
        Projection {
            lat0,
            lon0,
            cos_lat0: lat0.to_radians().cos(),
        }
    }

    /// A projection around the centroid of `points` (lat, lon), or (0, 0)
    /// when there are none.
    pub fn around(points: impl IntoIterator<Item = (f64, f64)>) -> Projection {
        let (mut lat, mut lon, mut n) = (0.0, 0.0, 0.0);
        for (a, b) in points {
            lat += a;
            lon += b;
            n += 1.0;
        }
        if n == 0.0 {
            Projection::new(0.0, 0.0)
        } else {
            Projection::new(lat / n, lon / n)
        }
    }

    /// `(lat, lon)` in local metres.
    pub fn point(&self, lat: f64, lon: f64) -> Point {
        Point::new(
            EARTH_RADIUS_M * (lon - self.lon0).to_radians() * self.cos_lat0,
            EARTH_RADIUS_M * (lat - self.lat0).to_radians(),
        )
    }

    /// Local metres back to `(lat, lon)`, degrees.
    pub fn lat_lon(&self, p: Point) -> (f64, f64) {
        (
            self.lat0 + (p.y / EARTH_RADIUS_M).to_degrees(),
            self.lon0 + (p.x / (EARTH_RADIUS_M * self.cos_lat0)).to_degrees(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_the_great_circle_at_town_scale() {
        // Berlin: 0.01 degrees of latitude is 1111.95 m; 0.01 degrees of
        // longitude at 52.52 N is 676.9 m (haversine).
        let p = Projection::new(52.52, 13.40);
        assert_eq!(p.point(52.52, 13.40), Point::new(0.0, 0.0));
        let north = p.point(52.53, 13.40);
        assert!(
            (north.y - 1111.95).abs() < 0.1 && north.x.abs() < 1e-9,
            "{north:?}"
        );
        let east = p.point(52.52, 13.41);
        assert!((east.x - 676.9).abs() < 0.5, "{east:?}");
        let (lat, lon) = p.lat_lon(east);
        assert!((lat - 52.52).abs() < 1e-12 && (lon - 13.41).abs() < 1e-12);
        let centre = Projection::around([(1.0, 2.0), (3.0, 4.0)]);
        assert_eq!(centre, Projection::new(2.0, 3.0));
    }
}
