//! The data-rate tables: how each region's data rates modulate, and the
//! largest application payload each carries.
//!
//! One table per region and direction (RP002, LoRaMac-node's region
//! files); every lookup goes through it, whichever way:
//!
//! | region | direction | DR | modulation | max payload (bytes) |
//! |---|---|---|---|---|
//! | EU868 | both | 0-5 | SF12-SF7, 125 kHz | 51, 51, 51, 115, 242, 242 |
//! | EU868 | both | 6 | SF7, 250 kHz | 242 |
//! | EU868 | both | 7 | FSK 50 kbit/s | 242 |
//! | US915 | uplink | 0-3 | SF10-SF7, 125 kHz | 11, 53, 125, 242 |
//! | US915 | uplink | 4 | SF8, 500 kHz | 242 |
//! | US915 | downlink | 8-13 | SF12-SF7, 500 kHz | 53, 129, 242, 242, 242, 242 |
//!
//! ```
//! use otavan_protocol::region::{Direction, Modulation, Region};
//! let sf9 = Modulation::Lora { sf: 9, bandwidth_hz: 125_000 };
//! assert_eq!(Region::Eu868.modulation(3, Direction::Uplink), Some(sf9));
//! assert_eq!(Region::Eu868.data_rate(sf9, Direction::Downlink), Some(3));
//! assert_eq!(Region::Us915.data_rate(sf9, Direction::Uplink), Some(1));
//! assert_eq!(Region::Us915.data_rate(sf9, Direction::Downlink), None);
//! ```

use std::time::Duration;

use super::airtime::{fsk_time_on_air, lorawan_phy_airtime};
use super::{Direction, Region};

/// How a data rate modulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modulation {
    /// LoRa.
    Lora {
        /// Spreading factor, 7..=12.
        sf: u8,
        /// Bandwidth in hertz.
        bandwidth_hz: u32,
    },
    /// FSK at 50 kbit/s (EU868 DR7).
    Fsk50k,
}

impl Modulation {
    /// Time on air of a LoRaWAN frame with a `phy_len`-byte PHYPayload in
    /// `direction` (LoRa uplinks carry a payload CRC, downlinks do not; FSK
    /// frames always carry one).
    pub fn time_on_air(self, phy_len: usize, direction: Direction) -> Duration {
        match self {
            Modulation::Lora { sf, bandwidth_hz } => {
                lorawan_phy_airtime(phy_len, sf, bandwidth_hz, direction == Direction::Uplink)
            }
            Modulation::Fsk50k => fsk_time_on_air(phy_len),
        }
    }
}

/// One row of a region's data-rate table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRate {
    /// The data rate's number (DR0 is 0).
    pub index: u8,
    /// How it modulates.
    pub modulation: Modulation,
    /// The largest application payload (FRMPayload) without FOpts: the
    /// regional parameters' *N*.
    pub max_payload: usize,
}

const fn lora(index: u8, sf: u8, bandwidth_hz: u32, max_payload: usize) -> DataRate {
    DataRate {
        index,
        modulation: Modulation::Lora { sf, bandwidth_hz },
        max_payload,
    }
}

/// EU868, the same both ways.
const EU868: [DataRate; 8] = [
    lora(0, 12, 125_000, 51),
    lora(1, 11, 125_000, 51),
    lora(2, 10, 125_000, 51),
    lora(3, 9, 125_000, 115),
    lora(4, 8, 125_000, 242),
    lora(5, 7, 125_000, 242),
    lora(6, 7, 250_000, 242),
    DataRate {
        index: 7,
        modulation: Modulation::Fsk50k,
        max_payload: 242,
    },
];

/// US915 uplinks (DR0 is 11 bytes: the 400 ms dwell limit).
const US915_UPLINK: [DataRate; 5] = [
    lora(0, 10, 125_000, 11),
    lora(1, 9, 125_000, 53),
    lora(2, 8, 125_000, 125),
    lora(3, 7, 125_000, 242),
    lora(4, 8, 500_000, 242),
];

/// US915 downlinks.
const US915_DOWNLINK: [DataRate; 6] = [
    lora(8, 12, 500_000, 53),
    lora(9, 11, 500_000, 129),
    lora(10, 10, 500_000, 242),
    lora(11, 9, 500_000, 242),
    lora(12, 8, 500_000, 242),
    lora(13, 7, 500_000, 242),
];

impl Region {
    /// Every data rate the region has in `direction`, by number.
    pub fn data_rates(self, direction: Direction) -> &'static [DataRate] {
        match (self, direction) {
            (Region::Eu868, _) => &EU868,
            (Region::Us915, Direction::Uplink) => &US915_UPLINK,
            (Region::Us915, Direction::Downlink) => &US915_DOWNLINK,
        }
    }

    /// Data rate `data_rate` in `direction`, or `None` when the region has
    /// no such data rate that way.
    pub(super) fn entry(self, data_rate: u8, direction: Direction) -> Option<DataRate> {
        self.data_rates(direction)
            .iter()
            .find(|entry| entry.index == data_rate)
            .copied()
    }

    /// How `data_rate` modulates in `direction`.
    pub fn modulation(self, data_rate: u8, direction: Direction) -> Option<Modulation> {
        self.entry(data_rate, direction)
            .map(|entry| entry.modulation)
    }

    /// The data rate that modulates as `modulation` in `direction`, if the
    /// region has one.
    pub fn data_rate(self, modulation: Modulation, direction: Direction) -> Option<u8> {
        self.data_rates(direction)
            .iter()
            .find(|entry| entry.modulation == modulation)
            .map(|entry| entry.index)
    }

    /// Time on air of a frame with a `phy_len`-byte PHYPayload at
    /// `data_rate` in `direction`; `None` for a data rate the region has no
    /// such frames at.
    pub fn time_on_air(
        self,
        data_rate: u8,
        direction: Direction,
        phy_len: usize,
    ) -> Option<Duration> {
        self.modulation(data_rate, direction)
            .map(|modulation| modulation.time_on_air(phy_len, direction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Option<Duration>) -> f64 {
        d.unwrap().as_secs_f64() * 1000.0
    }

    fn uplink(region: Region, data_rate: u8, phy_len: usize) -> Option<Duration> {
        region.time_on_air(data_rate, Direction::Uplink, phy_len)
    }

    #[test]
    fn every_data_rate_maps_both_ways() {
        for region in Region::ALL {
            for direction in [Direction::Uplink, Direction::Downlink] {
                for entry in region.data_rates(direction) {
                    let found = region.modulation(entry.index, direction);
                    assert_eq!(found, Some(entry.modulation));
                    assert_eq!(
                        region.data_rate(entry.modulation, direction),
                        Some(entry.index)
                    );
                }
            }
        }
        assert_eq!(Region::Us915.modulation(5, Direction::Uplink), None);
        assert_eq!(Region::Us915.modulation(0, Direction::Downlink), None);
        let sf12_wide = Modulation::Lora {
            sf: 12,
            bandwidth_hz: 500_000,
        };
        assert_eq!(
            Region::Eu868.data_rate(sf12_wide, Direction::Downlink),
            None
        );
        assert_eq!(
            Region::Us915.data_rate(sf12_wide, Direction::Downlink),
            Some(8)
        );
    }

    /// The client's check values for uplinks by data rate.
    #[test]
    fn uplink_time_on_air_matches_the_datasheet_formula() {
        // A JoinRequest at SF12/125 kHz: 12.25 + 33 symbols of 32.768 ms.
        assert_eq!(
            uplink(Region::Eu868, 0, 23),
            Some(Duration::from_nanos(1_482_752_000))
        );
        // SF7/125 kHz, 23 bytes: 12.25 + 48 symbols of 1.024 ms.
        assert!((ms(uplink(Region::Eu868, 5, 23)) - 61.696).abs() < 1e-9);
        // SF7/250 kHz halves it.
        assert!((ms(uplink(Region::Eu868, 6, 23)) - 30.848).abs() < 1e-9);
        // US915 DR0 is SF10/125 kHz: 12.25 + 33 symbols of 8.192 ms.
        assert!((ms(uplink(Region::Us915, 0, 23)) - 370.688).abs() < 1e-9);
        // FSK: 36 bytes at 50 kbit/s.
        assert_eq!(
            uplink(Region::Eu868, 7, 25),
            Some(Duration::from_micros(5760))
        );
        assert_eq!(uplink(Region::Us915, 5, 10), None);
        // Longer payloads never take less time.
        for dr in 0..=7 {
            let mut last = Duration::ZERO;
            for len in 0..=255 {
                let t = uplink(Region::Eu868, dr, len).unwrap();
                assert!(t >= last, "DR{dr} {len} bytes");
                last = t;
            }
        }
    }

    /// The client's former time on air, kept verbatim as the reference:
    /// its own data-rate table and the formula in integer nanoseconds per
    /// symbol, low data rate optimisation from 16 ms symbols.
    fn former_client_time_on_air(
        region: Region,
        data_rate: u8,
        phy_len: usize,
    ) -> Option<Duration> {
        let (sf, bandwidth) = match (region, data_rate) {
            (Region::Eu868, 0..=5) => (12 - u32::from(data_rate), 125_000u32),
            (Region::Eu868, 6) => (7, 250_000),
            (Region::Eu868, 7) => {
                let bytes = phy_len as u64;
                return Some(Duration::from_micros((5 + 3 + 1 + bytes + 2) * 8 * 20));
            }
            (Region::Us915, 0..=3) => (10 - u32::from(data_rate), 125_000),
            (Region::Us915, 4) => (8, 500_000),
            _ => return None,
        };
        let bytes = phy_len as u64;
        let symbol_ns = (1u64 << sf) * 1_000_000_000 / u64::from(bandwidth);
        let optimise = u64::from(symbol_ns >= 16_000_000);
        let sf = u64::from(sf);
        let bits = (8 * bytes + 28 + 16).saturating_sub(4 * sf);
        let blocks = bits.div_ceil(4 * (sf - 2 * optimise));
        let quarters = 49 + 4 * (8 + blocks * 5);
        Some(Duration::from_nanos(quarters * symbol_ns / 4))
    }

    /// The client's and the network simulator's formulas, one now, agree
    /// to the nanosecond on every uplink data rate and length.
    #[test]
    fn the_two_former_formulas_agree() {
        for region in Region::ALL {
            for data_rate in 0..=15 {
                for len in 0..=255 {
                    assert_eq!(
                        uplink(region, data_rate, len),
                        former_client_time_on_air(region, data_rate, len),
                        "{region} DR{data_rate} {len} bytes"
                    );
                }
            }
        }
    }
}
