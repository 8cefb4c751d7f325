//! The planner's defaults, one home for both rehearsals and operations.
//!
//! Sources (`docs/rehearsal.md` has the full table, `field-physics.md` the
//! references): WiFi ranges per install kind are field-physics.md's
//! estimates for an ESP32-class meter and a van's access point; the
//! margins are estimates sized against the uplink jitter and the WAKE
//! codec's rounding; the speed is a town drive.

use std::collections::BTreeMap;

/// An install kind and its WiFi range to a passing van.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstallKind {
    /// Its name in scenarios and inventories.
    pub name: &'static str,
    /// Shortest range, metres.
    pub wifi_range_min_m: f64,
    /// Longest range, metres.
    pub wifi_range_max_m: f64,
}

/// The install kinds and their WiFi ranges (field-physics.md, estimates):
/// an outdoor cabinet 80-150 m, indoors 30-80 m, a basement 10-40 m.
pub const INSTALL_KINDS: [InstallKind; 3] = [
    InstallKind {
        name: "outdoor",
        wifi_range_min_m: 80.0,
        wifi_range_max_m: 150.0,
    },
    InstallKind {
        name: "indoor",
        wifi_range_min_m: 30.0,
        wifi_range_max_m: 80.0,
    },
    InstallKind {
        name: "basement",
        wifi_range_min_m: 10.0,
        wifi_range_max_m: 40.0,
    },
];

/// The van's speed when nothing says otherwise, km/h (a town drive).
pub const SPEED_KMH: f64 = 20.0;

/// The slowest a pace plan drives a leg, km/h: a crawl a van can keep
/// in town traffic without blocking it (estimate; walking pace).
pub const MIN_SPEED_KMH: f64 = 5.0;

/// The longest stop a pace plan makes, seconds: a stop short enough to
/// make at the kerb without parking (estimate).
pub const MAX_STOP_S: f64 = 60.0;

/// The share of a pass's spare shift time (the shifts until the
/// campaign's end, divided among the passes, less the drive at full speed)
/// a pace plan may spend: a tenth is kept back for traffic and the
/// stretches a plan cannot foresee (estimate).
pub const PACE_BUDGET_SHARE: f64 = 0.9;

/// Passes a pace plan gives each meter the contact it needs: more than
/// one, as a WAKE that does not arrive loses the pass (on the city
/// example, with 12 passes: 2 update 759,422 meters, 4 776,084, 6 777,976,
/// every pass 778,346; 6 spends less budget per meter for the same
/// result; measured).
pub const PACE_PASSES_PER_METER: u32 = 6;

/// The van's access point: aggregate goodput, Mbit/s (estimate for an
/// 802.11n van access point serving ESP32-class meters).
pub const AP_CAPACITY_MBPS: f64 = 30.0;

/// Stations the van's access point serves at once (estimate).
pub const AP_MAX_CLIENTS: u32 = 32;

/// Median ESP32 wake + WiFi association with DHCP, seconds
/// (field-physics.md: 1.63 s measured).
pub const ASSOC_MEDIAN_S: f64 = 1.63;

/// Per-session overhead after association that needs the van, seconds:
/// the manifest, the first reports and TCP's start and retransmissions
/// under the loss at the edge of range, where a contact begins. Measured:
/// the median, 1.88 s, over 229 sessions of 250 town meters driven past
/// over a real network stack (bench/driveby.sh, 2026-12-04, each link
/// paced at its meter's own goodput), of the time from the DHCP lease to
/// the van's receipt of DOWNLOADED less the transfer at that goodput
/// (docs/benchmarks.md, "Drive-bys"). It was 0.5, an estimate, which put
/// the model's median session 60 % below the real one, then 2.7 from a
/// first run that also counted the apply's reports, which need no link.
pub const SESSION_OVERHEAD_S: f64 = 1.9;

/// The fastest flash-bound OTA goodput of a meter, kB/s
/// (field-physics.md: 40-130 kB/s).
pub const GOODPUT_MAX_KB_S: f64 = 130.0;

/// The planner's timing margins, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Margins {
    /// The window opens this long before the predicted contact: at least
    /// the uplink jitter plus the delay's rounding (30 s above 9 h).
    pub lead_s: f64,
    /// It closes this long after the predicted contact (estimate).
    pub slack_s: f64,
    /// Contacts shorter than this are not planned: association (1.6 s
    /// median), the manifest and a small transfer (estimate).
    pub min_contact_s: f64,
    /// Uplinks fall up to this long either side of their nominal time
    /// (estimate).
    pub jitter_s: f64,
}

impl Default for Margins {
    fn default() -> Margins {
        Margins {
            lead_s: 60.0,
            slack_s: 120.0,
            min_contact_s: 10.0,
            jitter_s: 30.0,
        }
    }
}

/// The WiFi range to the van assumed for each install kind, metres.
///
/// The defaults are [`INSTALL_KINDS`] at the *low* end of their range:
/// the predicted contact is then inside the real one, so a window that
/// covers the prediction covers the van.
#[derive(Debug, Clone, PartialEq)]
pub struct WifiRanges(pub BTreeMap<String, f64>);

impl Default for WifiRanges {
    fn default() -> WifiRanges {
        WifiRanges(
            INSTALL_KINDS
                .iter()
                .map(|kind| (kind.name.to_owned(), kind.wifi_range_min_m))
                .collect(),
        )
    }
}

impl WifiRanges {
    /// Sets (or adds) the range of install kind `name`.
    ///
    /// # Errors
    ///
    /// When `metres` is not a positive number.
    pub fn set(&mut self, name: &str, metres: f64) -> Result<(), String> {
        if !(metres.is_finite() && metres > 0.0) {
            return Err(format!(
                "the WiFi range of {name:?} must be positive, not {metres}"
            ));
        }
        self.0.insert(name.to_owned(), metres);
        Ok(())
    }

    /// The range of install kind `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    /// The install kinds, in name order.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// The install kind called `name`, if it is one of [`INSTALL_KINDS`].
pub fn install_kind(name: &str) -> Option<&'static InstallKind> {
    INSTALL_KINDS.iter().find(|kind| kind.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ranges_are_the_low_end_of_each_kind() {
        let ranges = WifiRanges::default();
        assert_eq!(ranges.names(), ["basement", "indoor", "outdoor"]);
        for kind in INSTALL_KINDS {
            assert_eq!(ranges.get(kind.name), Some(kind.wifi_range_min_m));
            assert!(kind.wifi_range_min_m <= kind.wifi_range_max_m);
            assert_eq!(install_kind(kind.name), Some(&kind));
        }
        assert_eq!(install_kind("attic"), None);
    }

    #[test]
    fn ranges_must_be_positive() {
        let mut ranges = WifiRanges::default();
        assert!(ranges.set("indoor", 0.0).is_err());
        assert!(ranges.set("indoor", f64::NAN).is_err());
        ranges.set("attic", 25.0).unwrap();
        assert_eq!(ranges.get("attic"), Some(25.0));
    }
}
