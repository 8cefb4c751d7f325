//! The EU868 duty cycle, which lorawan-device leaves to the application.
//!
//! EU868 meters transmit on the default channels (868.1, 868.3 and
//! 868.5 MHz), all in the 868.0-868.6 MHz sub-band with a 1 % duty cycle:
//! after a frame of time on air `T` the meter stays silent for `99 T`, so
//! the next frame starts no earlier than `100 T` after this one started.
//! US915 has no duty cycle (its dwell-time limit is met by every LoRaWAN
//! data rate there). The sub-band and its limit are
//! [`Region::uplink_duty_cycle_divisor`]'s.
//!
//! Time on air is [`Region::time_on_air`]'s (Semtech formula, LoRaWAN
//! framing). Data frames are counted with the largest FOpts (15 bytes), so
//! the silence is never too short whatever MAC answers the stack
//! piggybacks.

use std::time::Duration;

use otavan_protocol::region::Region;
use otavan_protocol::region::airtime::LORAWAN_OVERHEAD;

/// A JoinRequest's PHY payload, in bytes.
pub const JOIN_REQUEST_LEN: usize = 23;

/// What a data uplink adds to its application payload, at most: MHDR 1,
/// FHDR 7, FOpts up to 15, FPort 1, MIC 4.
pub const MAX_DATA_OVERHEAD: usize = LORAWAN_OVERHEAD + 15;

/// When the radio may transmit again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DutyCycle {
    /// The duty cycle as a divisor, `None` without one.
    divisor: Option<u32>,
    free_at: Option<Duration>,
}

impl DutyCycle {
    /// No transmission yet in `region`.
    pub fn new(region: Region) -> DutyCycle {
        DutyCycle {
            divisor: region.uplink_duty_cycle_divisor(),
            free_at: None,
        }
    }

    /// The earliest start of the next frame (`None`: any time).
    pub fn free_at(&self) -> Option<Duration> {
        self.free_at
    }

    /// Records a frame that started at `start` and lasted `airtime`.
    pub fn record(&mut self, start: Duration, airtime: Duration) {
        if let Some(divisor) = self.divisor {
            let free = start + airtime * divisor;
            self.free_at = Some(self.free_at.map_or(free, |f| f.max(free)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(MAX_DATA_OVERHEAD, 28);
    }
}
