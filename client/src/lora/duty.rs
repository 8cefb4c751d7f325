//! The EU868 duty cycle, which lorawan-device leaves to the application.
//!
//! EU868 meters transmit on the default channels (868.1, 868.3 and
//! 868.5 MHz), all in the 868.0-868.6 MHz sub-band with a 1 % duty cycle:
//! after a frame of time on air `T` the meter stays silent for `99 T`, so
//! the next frame starts no earlier than `100 T` after this one started.
//! US915 has no duty cycle (its dwell-time limit is met by every LoRaWAN
//! data rate there).
//!
//! Time on air follows the LoRa modem formula (Semtech AN1200.13) for
//! LoRaWAN's framing: 8-symbol preamble, explicit header, coding rate 4/5,
//! payload CRC on uplinks, low data rate optimisation from 16 ms symbols.
//! Data frames are counted with the largest FOpts (15 bytes), so the silence
//! is never too short whatever MAC answers the stack piggybacks.

use std::time::Duration;

use otavan_protocol::region::Region;

/// A JoinRequest's PHY payload, in bytes.
pub const JOIN_REQUEST_LEN: usize = 23;

/// What a data uplink adds to its application payload, at most: MHDR 1,
/// FHDR 7, FOpts up to 15, FPort 1, MIC 4.
pub const MAX_DATA_OVERHEAD: usize = 28;

/// The EU868 duty cycle as a divisor (1 %).
const EU868_DIVISOR: u32 = 100;

/// How a data rate modulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modulation {
    /// LoRa with spreading factor and bandwidth in hertz.
    Lora { sf: u32, bandwidth: u32 },
    /// FSK at 50 kbit/s (EU868 DR7).
    Fsk50k,
}

fn modulation(region: Region, data_rate: u8) -> Option<Modulation> {
    let lora = |sf, bandwidth| Some(Modulation::Lora { sf, bandwidth });
    match (region, data_rate) {
        (Region::Eu868, 0..=5) => lora(12 - u32::from(data_rate), 125_000),
        (Region::Eu868, 6) => lora(7, 250_000),
        (Region::Eu868, 7) => Some(Modulation::Fsk50k),
        (Region::Us915, 0..=3) => lora(10 - u32::from(data_rate), 125_000),
        (Region::Us915, 4) => lora(8, 500_000),
        _ => None,
    }
}

/// Time on air of an uplink frame with a `phy_len`-byte PHY payload at
/// `data_rate`; `None` for a data rate the region has no uplink at.
pub fn time_on_air(region: Region, data_rate: u8, phy_len: usize) -> Option<Duration> {
    let bytes = u64::try_from(phy_len).ok()?;
    Some(match modulation(region, data_rate)? {
        Modulation::Fsk50k => {
            // Preamble 5, sync word 3, length 1, payload, CRC 2; 20 us a bit.
            Duration::from_micros((5 + 3 + 1 + bytes + 2) * 8 * 20)
        }
        Modulation::Lora { sf, bandwidth } => {
            let symbol_ns = (1u64 << sf) * 1_000_000_000 / u64::from(bandwidth);
            let optimise = u64::from(symbol_ns >= 16_000_000);
            let sf = u64::from(sf);
            // 8 * PL - 4 * SF + 28 + 16 (CRC) - 0 (explicit header).
            let bits = (8 * bytes + 28 + 16).saturating_sub(4 * sf);
            let per_block = 4 * (sf - 2 * optimise);
            let blocks = bits.div_ceil(per_block);
            let payload_symbols = 8 + blocks * 5;
            // (8 + 4.25) preamble symbols, in quarter symbols.
            let quarters = 49 + 4 * payload_symbols;
            Duration::from_nanos(quarters * symbol_ns / 4)
        }
    })
}

/// Time on air of a data uplink with an `app_len`-byte application
/// payload, counting the largest FOpts.
pub fn data_time_on_air(region: Region, data_rate: u8, app_len: usize) -> Option<Duration> {
    time_on_air(region, data_rate, app_len + MAX_DATA_OVERHEAD)
}

/// When the radio may transmit again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    region: Region,
    free_at: Option<Duration>,
}

impl DutyCycle {
    /// No transmission yet in `region`.
    pub fn new(region: Region) -> DutyCycle {
        DutyCycle {
            region,
            free_at: None,
        }
    }

    /// The earliest start of the next frame (`None`: any time).
    pub fn free_at(&self) -> Option<Duration> {
        self.free_at
    }

    /// Records a frame that started at `start` and lasted `airtime`.
    pub fn record(&mut self, start: Duration, airtime: Duration) {
        if self.region == Region::Eu868 {
            let free = start + airtime * EU868_DIVISOR;
            self.free_at = Some(self.free_at.map_or(free, |f| f.max(free)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Option<Duration>) -> f64 {
        d.unwrap().as_secs_f64() * 1000.0
    }

    #[test]
    fn lora_time_on_air_matches_the_datasheet_formula() {
        // A JoinRequest at SF12/125 kHz: 12.25 + 33 symbols of 32.768 ms.
        assert_eq!(
            time_on_air(Region::Eu868, 0, JOIN_REQUEST_LEN),
            Some(Duration::from_nanos(1_482_752_000))
        );
        // SF7/125 kHz, 23 bytes: 12.25 + 48 symbols of 1.024 ms.
        assert!((ms(time_on_air(Region::Eu868, 5, 23)) - 61.696).abs() < 1e-9);
        // SF7/250 kHz halves it.
        assert!((ms(time_on_air(Region::Eu868, 6, 23)) - 30.848).abs() < 1e-9);
        // US915 DR0 is SF10/125 kHz: 12.25 + 33 symbols of 8.192 ms.
        assert!((ms(time_on_air(Region::Us915, 0, 23)) - 370.688).abs() < 1e-9);
        // FSK: 36 bytes at 50 kbit/s.
        assert_eq!(
            time_on_air(Region::Eu868, 7, 25),
            Some(Duration::from_micros(5760))
        );
        assert_eq!(time_on_air(Region::Us915, 5, 10), None);
        // Longer payloads never take less time.
        for dr in 0..=7 {
            let mut last = Duration::ZERO;
            for len in 0..=255 {
                let t = time_on_air(Region::Eu868, dr, len).unwrap();
                assert!(t >= last, "DR{dr} {len} bytes");
                last = t;
            }
        }
    }

    #[test]
    fn eu868_waits_a_hundred_times_the_airtime_us915_never() {
        let mut eu = DutyCycle::new(Region::Eu868);
        assert_eq!(eu.free_at(), None);
        eu.record(Duration::from_secs(10), Duration::from_millis(1500));
        assert_eq!(eu.free_at(), Some(Duration::from_secs(160)));
        // A shorter frame started earlier does not shorten the silence.
        eu.record(Duration::from_secs(0), Duration::from_millis(100));
        assert_eq!(eu.free_at(), Some(Duration::from_secs(160)));
        let mut us = DutyCycle::new(Region::Us915);
        us.record(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(us.free_at(), None);
        assert!(
            data_time_on_air(Region::Eu868, 0, 10).unwrap()
                > time_on_air(Region::Eu868, 0, 23).unwrap()
        );
    }
}
