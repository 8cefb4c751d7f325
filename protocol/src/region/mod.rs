//! LoRaWAN regional parameters: the one home of the radio facts every
//! crate uses (LoRa Alliance RP002, as in LoRaMac-node's region files).
//!
//! - [`Region`], [`Direction`], and the payload limits ([`max_payload`],
//!   [`check_fits`]) here;
//! - [`datarate`]: each region's data rates, their [`Modulation`] and
//!   payload limit, in one table looked up either way;
//! - [`airtime`]: LoRa and FSK time on air (Semtech formula), also by data
//!   rate ([`Region::time_on_air`]);
//! - [`band`]: [`Channel`]s, the duty-cycle sub-bands ([`Band`]) and the
//!   RX1/RX2 defaults.
//!
//! The payload limits are the regional parameters' *N*, the largest
//! application payload (FRMPayload) a frame may carry at a data rate when
//! it carries no MAC commands in FOpts. A network server that piggybacks
//! MAC commands on a downlink leaves that many bytes less for the
//! application, so a payload that only just fits may still be delayed by
//! the network server. The limits are a column of the data-rate table
//! ([`datarate`]); any other data rate is unknown ([`max_payload`] returns
//! `None`).
//!
//! ```
//! use otavan_protocol::region::{Direction, Region, check_fits, max_payload};
//! let us915: Region = "us915".parse().unwrap();
//! assert_eq!(max_payload(us915, 0, Direction::Uplink), Some(11));
//! assert_eq!(max_payload(us915, 0, Direction::Downlink), None);
//! assert!(check_fits(Region::Eu868, 0, Direction::Downlink, 51).is_ok());
//! assert!(check_fits(Region::Eu868, 0, Direction::Downlink, 52).is_err());
//! ```

pub mod airtime;
pub mod band;
pub mod datarate;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use band::{Band, Channel, EU868_DEFAULT_CHANNELS, EU868_SUB_BANDS, SubBand};
pub use datarate::{DataRate, Modulation};

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
        self.entry(data_rate, direction)
            .map(|entry| entry.max_payload)
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
