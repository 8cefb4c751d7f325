//! Which fixes go into the stored trace: one every [`EVERY`] or every
//! [`APART_M`] metres, whichever comes first, so a parked van adds a point
//! every few seconds and a moving one a line smooth enough for the map.

use std::time::Duration;

use otavan_store::VanFix;

/// Longest gap between stored points.
pub const EVERY: Duration = Duration::from_secs(5);

/// Farthest the van moves between stored points.
pub const APART_M: f64 = 10.0;

/// Remembers the last stored point.
#[derive(Debug, Default)]
pub struct Thinner {
    last: Option<VanFix>,
}

impl Thinner {
    /// Whether `fix` should be stored (and, if so, it becomes the last).
    pub fn keep(&mut self, fix: VanFix) -> bool {
        let keep = match &self.last {
            None => true,
            Some(last) => {
                let gap = fix.time.duration_since(last.time).unwrap_or_default();
                gap >= EVERY || last.metres_to(&fix) >= APART_M
            }
        };
        if keep {
            self.last = Some(fix);
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn at(secs: u64, lat: f64) -> VanFix {
        VanFix {
            lat,
            lon: 9.73,
            time: UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_point_every_five_seconds_or_ten_metres() {
        let mut thin = Thinner::default();
        assert!(thin.keep(at(0, 52.37)));
        // One second and about 1 m later: dropped.
        assert!(!thin.keep(at(1, 52.37001)));
        // 11 m from the last kept point: kept, however soon.
        assert!(thin.keep(at(2, 52.3701)));
        assert!(!thin.keep(at(6, 52.3701)));
        // Parked for five seconds: kept.
        assert!(thin.keep(at(7, 52.3701)));
        // A clock that steps back does not keep every fix.
        assert!(!thin.keep(VanFix {
            time: SystemTime::UNIX_EPOCH,
            ..at(0, 52.3701)
        }));
    }
}
