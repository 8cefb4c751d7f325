//! Frequencies: channels, the duty-cycle sub-bands, and the receive
//! windows' defaults.
//!
//! What a class A device of LoRaWAN 1.0.x and its network use with default
//! settings (RX1DROffset 0, default RX2): EU868 uplinks on 868.1, 868.3 and
//! 868.5 MHz, RX1 on the uplink channel at the uplink data rate, RX2
//! 869.525 MHz DR0; US915 RX1 on downlink channel `uplink channel mod 8`
//! (923.3 MHz + 600 kHz steps) at DR10-DR13, RX2 923.3 MHz DR8. These
//! match lorawan-device 0.12's channel plans.
//!
//! ```
//! use otavan_protocol::region::{Band, Region};
//! let rx2 = Region::Eu868.rx2();
//! assert_eq!((rx2.frequency, rx2.sf, rx2.bandwidth_hz), (869_525_000, 12, 125_000));
//! let band = Region::Eu868.band(rx2.frequency).and_then(Band::duty_cycle_divisor);
//! assert_eq!(band, Some(10));
//! ```

use super::datarate::Modulation;
use super::{Direction, Region};

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

impl Channel {
    /// The channel's modulation.
    pub fn modulation(self) -> Modulation {
        Modulation::Lora {
            sf: self.sf,
            bandwidth_hz: self.bandwidth_hz,
        }
    }

    /// `frequency` at a LoRa data rate of `region` in `direction`, `None`
    /// when that data rate is not LoRa or not the region's.
    fn at(region: Region, frequency: u32, data_rate: u8, direction: Direction) -> Option<Channel> {
        match region.modulation(data_rate, direction)? {
            Modulation::Lora { sf, bandwidth_hz } => Some(Channel {
                frequency,
                sf,
                bandwidth_hz,
            }),
            Modulation::Fsk50k => None,
        }
    }
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

/// The three EU868 channels every device has from the start, in hertz.
pub const EU868_DEFAULT_CHANNELS: [u32; 3] = [868_100_000, 868_300_000, 868_500_000];

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

impl Band {
    /// The sub-band's duty cycle as a divisor, `None` when unlimited.
    pub fn duty_cycle_divisor(self) -> Option<u32> {
        match self {
            Band::Limited(_, sub) => Some(sub.duty_cycle_divisor),
            Band::Unlimited => None,
        }
    }
}

impl Region {
    /// The sub-band `frequency` falls in, or `None` when the region does
    /// not allow transmitting there.
    pub fn band(self, frequency: u32) -> Option<Band> {
        match self {
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

    /// The duty cycle (as a divisor) a device keeps on its default uplink
    /// channels: EU868's all lie in the 1 % sub-band 868.0-868.6 MHz;
    /// US915 has none.
    pub fn uplink_duty_cycle_divisor(self) -> Option<u32> {
        match self {
            Region::Eu868 => self
                .band(EU868_DEFAULT_CHANNELS[0])
                .and_then(Band::duty_cycle_divisor),
            Region::Us915 => None,
        }
    }

    /// The largest downlink application payload on `channel`, or `None`
    /// when the region has no such downlink data rate.
    pub fn max_downlink_payload(self, channel: Channel) -> Option<usize> {
        let data_rate = self.data_rate(channel.modulation(), Direction::Downlink)?;
        self.max_payload(data_rate, Direction::Downlink)
    }

    /// The RX1 channel answering an uplink on `uplink`, or `None` when the
    /// uplink's channel or data rate is not one of the region's.
    pub fn rx1(self, uplink: Channel) -> Option<Channel> {
        let up_dr = self.data_rate(uplink.modulation(), Direction::Uplink)?;
        match self {
            Region::Eu868 => Some(uplink),
            Region::Us915 => {
                let index = match uplink.bandwidth_hz {
                    125_000 => uplink.frequency.checked_sub(902_300_000)? / 200_000,
                    _ => 64 + uplink.frequency.checked_sub(903_000_000)? / 1_600_000,
                };
                let down_dr = (up_dr + 10).min(13);
                let frequency = 923_300_000 + (index % 8) * 600_000;
                Channel::at(self, frequency, down_dr, Direction::Downlink)
            }
        }
    }

    /// The default RX2 channel.
    pub fn rx2(self) -> Channel {
        let frequency = match self {
            Region::Eu868 => 869_525_000,
            Region::Us915 => 923_300_000,
        };
        Channel::at(self, frequency, self.rx2_data_rate(), Direction::Downlink)
            .expect("the RX2 data rate is a LoRa data rate of the region")
    }

    /// The default RX2 data rate, as a JoinAccept's DLSettings announce it.
    pub fn rx2_data_rate(self) -> u8 {
        match self {
            Region::Eu868 => 0,
            Region::Us915 => 8,
        }
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
        let region = Region::Eu868;
        assert_eq!(region.rx1(up), Some(up));
        assert_eq!(region.rx2().frequency, 869_525_000);
        assert!(matches!(
            region.band(868_100_000),
            Some(Band::Limited(
                2,
                SubBand {
                    duty_cycle_divisor: 100,
                    ..
                }
            ))
        ));
        assert!(matches!(
            region.band(869_525_000),
            Some(Band::Limited(
                4,
                SubBand {
                    duty_cycle_divisor: 10,
                    ..
                }
            ))
        ));
        assert_eq!(region.band(915_000_000), None);
        assert_eq!(region.max_downlink_payload(region.rx2()), Some(51));
        assert_eq!(region.max_downlink_payload(up), Some(115));
        for frequency in EU868_DEFAULT_CHANNELS {
            let divisor = region.band(frequency).and_then(Band::duty_cycle_divisor);
            assert_eq!(divisor, region.uplink_duty_cycle_divisor());
        }
        assert_eq!(region.uplink_duty_cycle_divisor(), Some(100));
    }

    #[test]
    fn us915() {
        let region = Region::Us915;
        // Channel 9 (904.1 MHz) at DR0 answers on downlink channel 1 at DR10.
        let up = Channel {
            frequency: 904_100_000,
            sf: 10,
            bandwidth_hz: 125_000,
        };
        assert_eq!(
            region.rx1(up),
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
            region.rx1(up),
            Some(Channel {
                frequency: 923_900_000,
                sf: 7,
                bandwidth_hz: 500_000
            })
        );
        assert_eq!(
            region.rx2(),
            Channel {
                frequency: 923_300_000,
                sf: 12,
                bandwidth_hz: 500_000
            }
        );
        assert_eq!(region.max_downlink_payload(region.rx2()), Some(53));
        assert_eq!(region.band(923_300_000), Some(Band::Unlimited));
        assert_eq!(region.uplink_duty_cycle_divisor(), None);
    }
}
