//! LoRaWAN regional payload limits: the largest application payload
//! (FRMPayload) a frame may carry at a given data rate.
//!
//! The numbers are the regional parameters' *N* (LoRa Alliance RP002, as in
//! LoRaMac-node's region files), that is the limit when the frame carries no
//! MAC commands in FOpts. A network server that piggybacks MAC commands on a
//! downlink leaves that many bytes less for the application, so a payload
//! that only just fits may still be delayed by the network server.
//!
//! | region | direction | data rates and limits (bytes) |
//! |---|---|---|
//! | EU868 | both | DR0-DR2: 51, DR3: 115, DR4-DR7: 242 |
//! | US915 | uplink | DR0: 11, DR1: 53, DR2: 125, DR3: 242, DR4: 242 |
//! | US915 | downlink | DR8: 53, DR9: 129, DR10-DR13: 242 |
//!
//! Any other data rate is unknown ([`max_payload`] returns `None`).
//!
//! ```
//! use otavan_protocol::region::{Direction, Region, check_fits, max_payload};
//! let us915: Region = "us915".parse().unwrap();
//! assert_eq!(max_payload(us915, 0, Direction::Uplink), Some(11));
//! assert_eq!(max_payload(us915, 0, Direction::Downlink), None);
//! assert!(check_fits(Region::Eu868, 0, Direction::Downlink, 51).is_ok());
//! assert!(check_fits(Region::Eu868, 0, Direction::Downlink, 52).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A LoRaWAN regional parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Region {
    /// Europe, 863-870 MHz.
    #[serde(rename = "EU868")]
    Eu868,
    /// United States, 902-928 MHz.
    #[serde(rename = "US915")]
    Us915,
}

impl Region {
    /// Every supported region.
    pub const ALL: [Region; 2] = [Region::Eu868, Region::Us915];

    /// The usual name, `EU868` or `US915`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Eu868 => "EU868",
            Region::Us915 => "US915",
        }
    }

    /// The largest application payload at `data_rate` in `direction`, or
    /// `None` when the region has no such data rate in that direction.
    pub fn max_payload(self, data_rate: u8, direction: Direction) -> Option<usize> {
        match (self, direction, data_rate) {
            (Region::Eu868, _, 0..=2) => Some(51),
            (Region::Eu868, _, 3) => Some(115),
            (Region::Eu868, _, 4..=7) => Some(242),
            (Region::Us915, Direction::Uplink, 0) => Some(11),
            (Region::Us915, Direction::Uplink, 1) => Some(53),
            (Region::Us915, Direction::Uplink, 2) => Some(125),
            (Region::Us915, Direction::Uplink, 3..=4) => Some(242),
            (Region::Us915, Direction::Downlink, 8) => Some(53),
            (Region::Us915, Direction::Downlink, 9) => Some(129),
            (Region::Us915, Direction::Downlink, 10..=13) => Some(242),
            _ => None,
        }
    }

    /// `Ok` when a `payload_len`-byte application payload fits a frame at
    /// `data_rate` in `direction`.
    pub fn check_fits(
        self,
        data_rate: u8,
        direction: Direction,
        payload_len: usize,
    ) -> Result<(), PayloadTooLarge> {
        let max = self.max_payload(data_rate, direction);
        match max {
            Some(max) if payload_len <= max => Ok(()),
            _ => Err(PayloadTooLarge {
                region: self,
                data_rate,
                direction,
                payload_len,
                max,
            }),
        }
    }
}

/// The largest application payload `region` allows at `data_rate` in
/// `direction` (see [`Region::max_payload`]).
pub fn max_payload(region: Region, data_rate: u8, direction: Direction) -> Option<usize> {
    region.max_payload(data_rate, direction)
}

/// Whether a `payload_len`-byte application payload fits (see
/// [`Region::check_fits`]).
pub fn check_fits(
    region: Region,
    data_rate: u8,
    direction: Direction,
    payload_len: usize,
) -> Result<(), PayloadTooLarge> {
    region.check_fits(data_rate, direction, payload_len)
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;

    /// Parses a region name, ignoring ASCII case (`EU868`, `us915`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Region::ALL
            .into_iter()
            .find(|region| region.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRegion(s.to_owned()))
    }
}

/// A region name that is not one of [`Region::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRegion(pub String);

impl fmt::Display for UnknownRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown region {:?} (expected ", self.0)?;
        for (i, region) in Region::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            f.write_str(region.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownRegion {}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Meter to network.
    Uplink,
    /// Network to meter.
    Downlink,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Uplink => "uplink",
            Direction::Downlink => "downlink",
        })
    }
}

/// A payload that does not fit a data rate, or a data rate the region does
/// not have in that direction (`max` is then `None`: nothing fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadTooLarge {
    /// The region checked.
    pub region: Region,
    /// The data rate checked.
    pub data_rate: u8,
    /// The direction checked.
    pub direction: Direction,
    /// The payload's length in bytes.
    pub payload_len: usize,
    /// The limit, or `None` for an unknown data rate.
    pub max: Option<usize>,
}

impl fmt::Display for PayloadTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PayloadTooLarge {
            region,
            data_rate,
            direction,
            payload_len,
            max,
        } = self;
        match max {
            Some(max) => write!(
                f,
                "a {payload_len}-byte payload does not fit {region} {direction} DR{data_rate} \
                 (at most {max} bytes)"
            ),
            None => write!(f, "{region} has no {direction} data rate DR{data_rate}"),
        }
    }
}

impl std::error::Error for PayloadTooLarge {}
