//! LoRaWAN's `DeviceTimeAns`: the network's time, as GPS time.
//!
//! A device asks with the MAC command `DeviceTimeReq` (CID 0x0D, no
//! payload); the network server answers `DeviceTimeAns` (CID 0x0D) in the
//! downlink after that uplink: five bytes, the seconds since the GPS epoch
//! (1980-01-06T00:00:00Z) as a little-endian 32-bit number and the
//! fraction of a second in 1/256 s, for the instant the uplink's
//! transmission ended (LoRaWAN 1.0.3, section 5.9). Both travel inside
//! frames whose MIC the network session key checks, so a device can take
//! the answer as authenticated time.
//!
//! GPS time does not count leap seconds: it runs
//! [`GPS_UTC_LEAP_SECONDS`] (18, since 2017-01-01) ahead of UTC. Unix time
//! is UTC without leap seconds, so the conversion is a fixed offset while
//! no new leap second is announced (IERS Bulletin C).
//!
//! ```
//! use std::time::Duration;
//! use otavan_protocol::device_time::DeviceTime;
//! // 2026-01-01T00:00:00Z
//! let at = DeviceTime::from_unix(Duration::from_secs(1_767_225_600));
//! assert_eq!(at.gps_seconds, 1_451_260_818);
//! assert_eq!(DeviceTime::decode(&at.encode()).unwrap().to_unix(), Duration::from_secs(1_767_225_600));
//! ```

use std::time::Duration;

/// The command identifier of `DeviceTimeReq` and `DeviceTimeAns`.
pub const DEVICE_TIME_CID: u8 = 0x0D;

/// The GPS epoch, 1980-01-06T00:00:00Z, in Unix seconds.
pub const GPS_EPOCH_UNIX: u64 = 315_964_800;

/// GPS time minus UTC, in seconds, since 2017-01-01T00:00:00Z.
pub const GPS_UTC_LEAP_SECONDS: u64 = 18;

/// The length of `DeviceTimeAns`'s payload.
pub const DEVICE_TIME_ANS_LEN: usize = 5;

/// A `DeviceTimeAns` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceTime {
    /// Seconds since the GPS epoch.
    pub gps_seconds: u32,
    /// Fraction of a second, in 1/256 s.
    pub fraction: u8,
}

impl DeviceTime {
    /// The GPS time of Unix time `unix` (truncated to 1/256 s; times
    /// before the GPS epoch are its second 0).
    pub fn from_unix(unix: Duration) -> DeviceTime {
        let gps = (unix + Duration::from_secs(GPS_UTC_LEAP_SECONDS))
            .saturating_sub(Duration::from_secs(GPS_EPOCH_UNIX));
        DeviceTime {
            gps_seconds: u32::try_from(gps.as_secs()).unwrap_or(u32::MAX),
            fraction: (u64::from(gps.subsec_nanos()) * 256 / 1_000_000_000) as u8,
        }
    }

    /// The Unix time this GPS time is.
    pub fn to_unix(&self) -> Duration {
        Duration::from_secs(u64::from(self.gps_seconds) + GPS_EPOCH_UNIX - GPS_UTC_LEAP_SECONDS)
            + Duration::from_nanos(u64::from(self.fraction) * 1_000_000_000 / 256)
    }

    /// The five payload bytes.
    pub fn encode(&self) -> [u8; DEVICE_TIME_ANS_LEN] {
        let s = self.gps_seconds.to_le_bytes();
        [s[0], s[1], s[2], s[3], self.fraction]
    }

    /// Reads a payload; `None` unless it is exactly five bytes.
    pub fn decode(payload: &[u8]) -> Option<DeviceTime> {
        let bytes: [u8; DEVICE_TIME_ANS_LEN] = payload.try_into().ok()?;
        Some(DeviceTime {
            gps_seconds: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            fraction: bytes[4],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gps_time_is_utc_plus_the_leap_seconds_since_1980() {
        // The day the 18th leap second took effect, 2017-01-01T00:00:00Z,
        // is GPS second 1 167 264 018 (GPS week 1930).
        let at = DeviceTime::from_unix(Duration::from_secs(1_483_228_800));
        assert_eq!(at.gps_seconds, 1_167_264_018);
        assert_eq!(at.gps_seconds / 604_800, 1930);
        assert_eq!(at.to_unix(), Duration::from_secs(1_483_228_800));
    }

    #[test]
    fn fractions_are_in_256ths_of_a_second() {
        let at = DeviceTime::from_unix(Duration::from_millis(1_767_225_600_500));
        assert_eq!(at.fraction, 128);
        assert_eq!(at.to_unix(), Duration::from_millis(1_767_225_600_500));
        // 1/256 s is the resolution: 3.9 ms truncate to zero.
        let at = DeviceTime::from_unix(Duration::from_micros(1_767_225_600_003_900));
        assert_eq!(at.fraction, 0);
    }

    #[test]
    fn the_payload_is_little_endian_seconds_then_the_fraction() {
        let at = DeviceTime {
            gps_seconds: 0x5680_1234,
            fraction: 0x40,
        };
        assert_eq!(at.encode(), [0x34, 0x12, 0x80, 0x56, 0x40]);
        assert_eq!(DeviceTime::decode(&at.encode()), Some(at));
        assert_eq!(DeviceTime::decode(&[1, 2, 3, 4]), None);
        assert_eq!(DeviceTime::decode(&[1, 2, 3, 4, 5, 6]), None);
    }

    #[test]
    fn times_before_the_gps_epoch_are_its_second_zero() {
        assert_eq!(DeviceTime::from_unix(Duration::ZERO).gps_seconds, 0);
    }
}
