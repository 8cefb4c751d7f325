//! Latitude and longitude onto the map's SVG units: equirectangular
//! around the middle of what is drawn (the plan's meters and route), as
//! the rehearsal's map does; at a city's scale the distortion is nil.

/// Width of the map in SVG units; the height follows the area's shape.
pub const WIDTH: f64 = 1000.0;

/// Room left around the drawn area, SVG units.
const MARGIN: f64 = 20.0;

/// Metres per degree of latitude.
const METRES_PER_DEGREE: f64 = 111_195.0;

/// Maps (lat, lon) to (x, y) on the map, y down.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    lat0: f64,
    lon0: f64,
    cos_lat0: f64,
    /// SVG units per metre.
    scale: f64,
    /// Lower-left corner of the area, metres from the centre.
    min_x: f64,
    max_y: f64,
    height: f64,
}

impl Projection {
    /// The projection fitting `points` (lat, lon) into [`WIDTH`]; `None`
    /// without points.
    pub fn fitting(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<Projection> {
        let (mut lat_min, mut lat_max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut lon_min, mut lon_max) = (f64::INFINITY, f64::NEG_INFINITY);
        for (lat, lon) in points {
            lat_min = lat_min.min(lat);
            lat_max = lat_max.max(lat);
            lon_min = lon_min.min(lon);
            lon_max = lon_max.max(lon);
        }
        if !lat_min.is_finite() {
            return None;
        }
        let (lat0, lon0) = ((lat_min + lat_max) / 2.0, (lon_min + lon_max) / 2.0);
        let cos_lat0 = lat0.to_radians().cos();
        let half_w = ((lon_max - lon0) * cos_lat0 * METRES_PER_DEGREE).max(50.0);
        let half_h = ((lat_max - lat0) * METRES_PER_DEGREE).max(50.0);
        let scale = (WIDTH - 2.0 * MARGIN) / (2.0 * half_w);
        Some(Projection {
            lat0,
            lon0,
            cos_lat0,
            scale,
            min_x: -half_w,
            max_y: half_h,
            height: 2.0 * half_h * scale + 2.0 * MARGIN,
        })
    }

    /// The map's height in SVG units.
    pub fn height(&self) -> f64 {
        self.height
    }

    /// Where (lat, lon) lands, whole SVG units (a metre or so at city
    /// scale: enough, and short to send).
    pub fn xy(&self, lat: f64, lon: f64) -> (i64, i64) {
        let x = (lon - self.lon0) * self.cos_lat0 * METRES_PER_DEGREE;
        let y = (lat - self.lat0) * METRES_PER_DEGREE;
        (
            ((x - self.min_x) * self.scale + MARGIN).round() as i64,
            ((self.max_y - y) * self.scale + MARGIN).round() as i64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_area_fills_the_width_north_up() {
        let points = [(52.370, 9.730), (52.372, 9.740)];
        let p = Projection::fitting(points.iter().copied()).unwrap();
        assert_eq!(p.xy(52.370, 9.730), (20, p.height().round() as i64 - 20));
        assert_eq!(p.xy(52.372, 9.740).0, 980);
        assert_eq!(p.xy(52.372, 9.740).1, 20);
        // 0.01° of longitude at 52.37° is 680 m, 0.002° of latitude 222 m.
        let ratio = (p.height() - 40.0) / 960.0;
        assert!((ratio - 222.4 / 679.7).abs() < 0.01, "{ratio}");
        assert!(Projection::fitting(std::iter::empty()).is_none());
    }
}
