//! Where the van was: a GPS fix stored with each report and in the van's
//! trace (`otavan serve --gpsd`).

use std::time::SystemTime;

/// One position of the van, as gpsd reported it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VanFix {
    /// Latitude, degrees (WGS 84).
    pub lat: f64,
    /// Longitude, degrees (WGS 84).
    pub lon: f64,
    /// When the receiver took the fix (its own clock, from the satellites).
    pub time: SystemTime,
}

impl VanFix {
    /// Metres from `self` to `other` along the ground (equirectangular:
    /// plenty for the few hundred metres between trace points).
    pub fn metres_to(&self, other: &VanFix) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_000.0;
        let mean_lat = ((self.lat + other.lat) / 2.0).to_radians();
        let dx = (other.lon - self.lon).to_radians() * mean_lat.cos();
        let dy = (other.lat - self.lat).to_radians();
        EARTH_RADIUS_M * dx.hypot(dy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousandth_of_a_degree_of_latitude_is_about_111_m() {
        let at = |lat, lon| VanFix {
            lat,
            lon,
            time: SystemTime::UNIX_EPOCH,
        };
        let d = at(52.370, 9.734).metres_to(&at(52.371, 9.734));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        // East-west shrinks with the cosine of the latitude.
        let d = at(52.370, 9.734).metres_to(&at(52.370, 9.735));
        assert!((d - 67.9).abs() < 0.5, "{d}");
    }
}
