//! How many WAKEs a plan sends per hour, against what one gateway can
//! send.
//!
//! A gateway's downlink capacity is taken on the region's RX2 channel at
//! its slowest rate, where every meter can hear it: EU868 869.525 MHz at
//! SF12/125 kHz within the 10 % duty cycle of its sub-band; US915
//! 923.3 MHz at SF12/500 kHz (DR8), no duty cycle, so airtime alone. For
//! a 14-byte PHYPayload at EU868 that is about 312 an hour
//! (field-physics.md). RX1 downlinks share the 1 % uplink sub-bands, so
//! RX2 is the figure to plan with.

use std::collections::BTreeMap;
use std::time::Duration;

use otavan_protocol::region::airtime::lorawan_downlink_airtime;
use otavan_protocol::region::{Band, Region};

/// One gateway's RX2 downlinks per hour for an `app_payload_len`-byte
/// application payload in `region`.
pub fn gateway_downlinks_per_hour(region: Region, app_payload_len: usize) -> u32 {
    let duty = region
        .band(region.rx2().frequency)
        .and_then(Band::duty_cycle_divisor)
        .map_or(1.0, |divisor| 1.0 / f64::from(divisor));
    let airtime = rx2_airtime(region, app_payload_len);
    (3600.0 * duty / airtime.as_secs_f64()).floor() as u32
}

/// Downlinks per clock hour (hours since the Unix epoch, UTC), from
/// delivery intervals: a WAKE that goes out at one instant counts 1 in its
/// hour; one that may go out anywhere in an interval counts in each hour
/// by the share of the interval in it.
#[derive(Debug, Clone, Default)]
pub struct HourlyLoad {
    hours: BTreeMap<i64, f64>,
}

impl HourlyLoad {
    /// Adds a downlink sent between `from` and `to` (Unix seconds).
    pub fn add(&mut self, from: f64, to: f64) {
        if to <= from {
            *self
                .hours
                .entry((from / 3600.0).floor() as i64)
                .or_default() += 1.0;
            return;
        }
        let span = to - from;
        let mut t = from;
        while t < to {
            let hour = (t / 3600.0).floor() as i64;
            let end = (((hour + 1) * 3600) as f64).min(to);
            *self.hours.entry(hour).or_default() += (end - t) / span;
            t = end;
        }
    }

    /// The busiest hour (its start, Unix seconds) and its downlinks,
    /// rounded up; `None` when nothing was added.
    pub fn peak(&self) -> Option<(i64, u32)> {
        // Shares are summed in f64: round off what summing cannot hold.
        self.hours
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(hour, load)| (hour * 3600, (load - 1e-9).ceil() as u32))
    }
}

impl HourlyLoad {
    /// The downlinks in the clock hour holding `unix` (Unix seconds).
    pub fn in_hour(&self, unix: f64) -> f64 {
        let hour = (unix / 3600.0).floor() as i64;
        self.hours.get(&hour).copied().unwrap_or(0.0)
    }
}

/// The airtime one gateway may send on RX2 in an hour (its sub-band's
/// duty cycle; the whole hour without one).
pub fn rx2_hour_budget(region: Region) -> Duration {
    Duration::from_secs(3600) / rx2_duty_divisor(region)
}

/// The RX2 sub-band's duty-cycle divisor (10 for 10 %; 1 without one):
/// after a frame a gateway waits that many times its airtime.
pub fn rx2_duty_divisor(region: Region) -> u32 {
    region
        .band(region.rx2().frequency)
        .and_then(Band::duty_cycle_divisor)
        .unwrap_or(1)
}

/// Gateways needed for `peak` downlinks an hour at `capacity` each.
pub fn gateways_needed(peak: u32, capacity: u32) -> u32 {
    peak.div_ceil(capacity.max(1))
}

/// The time on air of one RX2 WAKE, for the summary.
pub fn rx2_airtime(region: Region, app_payload_len: usize) -> Duration {
    let rx2 = region.rx2();
    lorawan_downlink_airtime(app_payload_len, rx2.sf, rx2.bandwidth_hz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use otavan_protocol::region::airtime::LORAWAN_OVERHEAD;

    #[test]
    fn the_reference_figure_for_a_14_byte_command() {
        // field-physics.md: about 312 an hour for a 14-byte PHYPayload.
        let per_hour = gateway_downlinks_per_hour(Region::Eu868, 14 - LORAWAN_OVERHEAD);
        assert!((310..=313).contains(&per_hour), "{per_hour}");
        // An 11-byte WAKE is a 24-byte PHYPayload: fewer fit.
        assert!(gateway_downlinks_per_hour(Region::Eu868, 11) < per_hour);
        assert!(gateway_downlinks_per_hour(Region::Us915, 11) > 10 * per_hour);
    }

    #[test]
    fn load_is_spread_over_the_hours_of_each_interval() {
        let mut load = HourlyLoad::default();
        load.add(100.0, 100.0);
        load.add(1800.0, 5400.0); // half in hour 0, half in hour 1
        load.add(3600.0, 3600.0);
        load.add(3700.0, 3700.0);
        assert_eq!(load.peak(), Some((3600, 3)));
        assert_eq!(HourlyLoad::default().peak(), None);
        assert!((load.in_hour(3600.5) - 2.5).abs() < 1e-9);
        assert_eq!(load.in_hour(-5.0), 0.0);
        assert_eq!(rx2_hour_budget(Region::Eu868), Duration::from_secs(360));
        assert_eq!(rx2_hour_budget(Region::Us915), Duration::from_secs(3600));
        assert_eq!(gateways_needed(313, 312), 2);
        assert_eq!(gateways_needed(0, 312), 0);
    }
}
