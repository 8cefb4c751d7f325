//! The network side of the regional parameters: receive windows, data
//! rates and the gateway's duty-cycle sub-bands.
//!
//! Only what a class A network server of LoRaWAN 1.0.x needs with default
//! settings (RX1DROffset 0, default RX2): EU868 RX1 on the uplink channel at
//! the uplink data rate, RX2 869.525 MHz DR0; US915 RX1 on downlink channel
//! `uplink channel mod 8` (923.3 MHz + 600 kHz steps) at DR10-DR13, RX2
//! 923.3 MHz DR8. These match lorawan-device 0.12's channel plans.

use otavan_protocol::region::{Direction, Region};

/// A LoRa channel and modulation: frequency, spreading factor, bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel {
    /// Centre frequency in hertz.
    pub frequency: u32,
    /// Spreading factor, 7..=12.
    pub sf: u8,
    /// Bandwidth in hertz.
    pub bandwidth_hz: u32,
}

/// A regulatory sub-band with its duty-cycle limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubBand {
    /// Short name, the frequency range in MHz (`"868.0-868.6"`).
    pub name: &'static str,
    /// Lowest frequency in hertz (inclusive).
    pub low_hz: u32,
    /// Upper frequency limit in hertz (exclusive).
    pub high_hz: u32,
    /// The duty cycle as a divisor: 100 for 1 %, 10 for 10 %, 1000 for
    /// 0.1 %. After a frame of time on air `ToA` the transmitter stays off
    /// in this sub-band for `ToA * (divisor - 1)`, i.e. `ToA/DC - ToA`.
    pub duty_cycle_divisor: u32,
}

/// EU868 sub-bands of ETSI EN 300 220-2 (annex B) as used by LoRaMac-node's
/// `RegionEU868`: 1 % on 868.0-868.6 MHz (the default channels), 10 % on
/// 869.4-869.65 MHz (RX2), and the rest of 863-870 MHz.
pub const EU868_SUB_BANDS: [SubBand; 6] = [
    SubBand {
        name: "863.0-865.0",
        low_hz: 863_000_000,
        high_hz: 865_000_000,
        duty_cycle_divisor: 1000,
    },
    SubBand {
        name: "865.0-868.0",
        low_hz: 865_000_000,
        high_hz: 868_000_000,
        duty_cycle_divisor: 100,
    },
    SubBand {
        name: "868.0-868.6",
        low_hz: 868_000_000,
        high_hz: 868_600_000,
        duty_cycle_divisor: 100,
    },
    SubBand {
        name: "868.7-869.2",
        low_hz: 868_700_000,
        high_hz: 869_200_000,
        duty_cycle_divisor: 1000,
    },
    SubBand {
        name: "869.4-869.65",
        low_hz: 869_400_000,
        high_hz: 869_650_000,
        duty_cycle_divisor: 10,
    },
    SubBand {
        name: "869.7-870.0",
        low_hz: 869_700_000,
        high_hz: 870_000_000,
        duty_cycle_divisor: 100,
    },
];

/// Where a transmitter may send and under which duty cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// A sub-band with a duty-cycle limit (EU868); the index is into
    /// [`EU868_SUB_BANDS`].
    Limited(usize, SubBand),
    /// No duty-cycle limit (US915: dwell time and frequency hopping rules
    /// apply instead, which are not modelled).
    Unlimited,
}

/// The sub-band `frequency` falls in, or `None` when `region` does not
/// allow transmitting there.
pub fn band(region: Region, frequency: u32) -> Option<Band> {
    match region {
        Region::Eu868 => EU868_SUB_BANDS
            .iter()
            .enumerate()
            .find(|(_, b)| (b.low_hz..b.high_hz).contains(&frequency))
            .map(|(i, b)| Band::Limited(i, *b)),
        Region::Us915 => (902_000_000..=928_000_000)
            .contains(&frequency)
            .then_some(Band::Unlimited),
    }
}

/// The data rate of a modulation in `direction`, if the region has one.
pub fn data_rate(region: Region, sf: u8, bandwidth_hz: u32, direction: Direction) -> Option<u8> {
    match (region, direction, bandwidth_hz) {
        (Region::Eu868, _, 125_000) if (7..=12).contains(&sf) => Some(12 - sf),
        (Region::Eu868, _, 250_000) if sf == 7 => Some(6),
        (Region::Us915, Direction::Uplink, 125_000) if (7..=10).contains(&sf) => Some(10 - sf),
        (Region::Us915, Direction::Uplink, 500_000) if sf == 8 => Some(4),
        (Region::Us915, Direction::Downlink, 500_000) if (7..=12).contains(&sf) => Some(20 - sf),
        _ => None,
    }
}

/// The largest downlink application payload on `channel`, or `None` when
/// the region has no such downlink data rate.
pub fn max_downlink_payload(region: Region, channel: Channel) -> Option<usize> {
    let dr = data_rate(
        region,
        channel.sf,
        channel.bandwidth_hz,
        Direction::Downlink,
    )?;
    region.max_payload(dr, Direction::Downlink)
}

/// The RX1 channel answering an uplink on `uplink`, or `None` when the
/// uplink's channel or data rate is not one of the region's.
pub fn rx1(region: Region, uplink: Channel) -> Option<Channel> {
    match region {
        Region::Eu868 => {
            data_rate(region, uplink.sf, uplink.bandwidth_hz, Direction::Uplink)?;
            Some(uplink)
        }
        Region::Us915 => {
            let up_dr = data_rate(region, uplink.sf, uplink.bandwidth_hz, Direction::Uplink)?;
            let index = match uplink.bandwidth_hz {
                125_000 => uplink.frequency.checked_sub(902_300_000)? / 200_000,
                _ => 64 + uplink.frequency.checked_sub(903_000_000)? / 1_600_000,
            };
            let down_dr = (up_dr + 10).min(13);
            Some(Channel {
                frequency: 923_300_000 + (index % 8) * 600_000,
                sf: 20 - down_dr,
                bandwidth_hz: 500_000,
            })
        }
    }
}

/// The default RX2 channel.
pub fn rx2(region: Region) -> Channel {
    match region {
        Region::Eu868 => Channel {
            frequency: 869_525_000,
            sf: 12,
            bandwidth_hz: 125_000,
        },
        Region::Us915 => Channel {
            frequency: 923_300_000,
            sf: 12,
            bandwidth_hz: 500_000,
        },
    }
}

/// The RX2 data rate announced in a JoinAccept's DLSettings.
pub fn rx2_data_rate(region: Region) -> u8 {
    match region {
        Region::Eu868 => 0,
        Region::Us915 => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eu868() {
        let up = Channel {
            frequency: 868_300_000,
            sf: 9,
            bandwidth_hz: 125_000,
        };
        assert_eq!(rx1(Region::Eu868, up), Some(up));
        assert_eq!(rx2(Region::Eu868).frequency, 869_525_000);
        assert!(matches!(
            band(Region::Eu868, 868_100_000),
            Some(Band::Limited(
                2,
                SubBand {
                    duty_cycle_divisor: 100,
                    ..
                }
            ))
        ));
        assert!(matches!(
            band(Region::Eu868, 869_525_000),
            Some(Band::Limited(
                4,
                SubBand {
                    duty_cycle_divisor: 10,
                    ..
                }
            ))
        ));
        assert_eq!(band(Region::Eu868, 915_000_000), None);
        assert_eq!(
            max_downlink_payload(Region::Eu868, rx2(Region::Eu868)),
            Some(51)
        );
        assert_eq!(max_downlink_payload(Region::Eu868, up), Some(115));
    }

    #[test]
    fn us915() {
        // Channel 9 (904.1 MHz) at DR0 answers on downlink channel 1 at DR10.
        let up = Channel {
            frequency: 904_100_000,
            sf: 10,
            bandwidth_hz: 125_000,
        };
        assert_eq!(
            rx1(Region::Us915, up),
            Some(Channel {
                frequency: 923_900_000,
                sf: 10,
                bandwidth_hz: 500_000
            })
        );
        // Channel 65 (904.6 MHz, 500 kHz, DR4) answers on channel 1 at DR13.
        let up = Channel {
            frequency: 904_600_000,
            sf: 8,
            bandwidth_hz: 500_000,
        };
        assert_eq!(
            rx1(Region::Us915, up),
            Some(Channel {
                frequency: 923_900_000,
                sf: 7,
                bandwidth_hz: 500_000
            })
        );
        assert_eq!(
            max_downlink_payload(Region::Us915, rx2(Region::Us915)),
            Some(53)
        );
        assert_eq!(band(Region::Us915, 923_300_000), Some(Band::Unlimited));
    }
}
