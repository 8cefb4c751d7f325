//! The LoRaWAN messages that trigger an update: downlink commands the
//! operator sends to wake meters' WiFi for a passing van, and the status a
//! meter sends back.
//!
//! Both directions use the same application port, [`DEFAULT_FPORT`] (200)
//! unless the operator configures another. Meters are class A: a downlink
//! waits at the network server until the meter's next uplink.
//!
//! # Wire format (codec version 1)
//!
//! Byte 0 is a header: the high nibble is the codec version
//! ([`CODEC_VERSION`], 1), the low nibble the command code ([`code`]).
//! Integers are big-endian.
//!
//! | message | code | bytes |
//! |---|---|---|
//! | WAKE | 1 | `hdr` `campaign:u16` `delay:u16` `window:u8` `network:u8` [`version_tag:[u8;4]`]: 7 or 11 |
//! | CANCEL | 2 | `hdr` `campaign:u16`: 3 |
//! | STATUS_REQUEST | 3 | `hdr`: 1 |
//! | STATUS (uplink) | 8 | `hdr` `version_tag:[u8;4]` `flags:u8` `last_result:u8` `battery:u8` `campaign:u16`: 10 |
//!
//! - `delay` ([`Delay`]): when the WiFi window opens, relative to the
//!   reception of the WAKE. Top bit 0: the low 15 bits are seconds
//!   (0..=32767 s); top bit 1: minutes (0..=32767 min).
//! - `window` ([`Window`]): how long the WiFi window stays open. Top bit 0:
//!   the low 7 bits count 10 s units (0..=1270 s); top bit 1: minutes
//!   (0..=127 min).
//! - `network`: which provisioned van network slot to join.
//! - `version_tag` ([`VersionTag`]): the first 4 bytes of the SHA-256 of the
//!   target version string; a meter whose own version has that tag ignores
//!   the WAKE ([`Wake::applies_to`]). Absent: every meter wakes.
//! - `flags`: bit 0 set when the meter's last update still awaits
//!   confirmation; the other bits are 0.
//! - `last_result`: an [`OtaResult`] code.
//! - `battery`: the LoRaWAN `DevStatusAns` convention, 0 on external power,
//!   1..=254 the level, 255 unknown.
//! - `campaign` (uplink): the last WAKE campaign the meter saw, 0 for none.
//!
//! A WAKE is at most 11 bytes, so every message fits the smallest payload of
//! any data rate ([`crate::region`]: US915 DR0, 11 bytes).
//!
//! # Canonical form
//!
//! Every value has exactly one encoding, and the decoders accept only that
//! one: durations are in the finest unit that holds them exactly (a delay of
//! 600 s is 600 seconds, never 10 minutes), reserved flag bits are 0, and
//! lengths are exact. So whenever a decode succeeds, encoding the result
//! gives back the same bytes. Decoding never panics, whatever the input.
//!
//! ```
//! use std::time::Duration;
//! use otavan_protocol::lora::{DownlinkCommand, Wake};
//!
//! let wake = Wake::new(7, Duration::from_secs(2 * 3600), Duration::from_secs(900), 1, None)?;
//! let bytes = DownlinkCommand::Wake(wake).encode();
//! assert_eq!(bytes, [0x11, 0x00, 0x07, 0x1c, 0x20, 0x5a, 0x01]);
//! assert_eq!(DownlinkCommand::decode(&bytes)?, DownlinkCommand::Wake(wake));
//! # Ok::<(), otavan_protocol::lora::CodecError>(())
//! ```

mod downlink;
mod duration;
mod error;
pub mod multicast;
mod tag;
mod uplink;

pub use downlink::{DownlinkCommand, Wake};
pub use duration::{Delay, Window};
pub use error::CodecError;
pub use tag::VersionTag;
pub use uplink::{OtaResult, StatusUplink};

/// The application port (FPort) the operator sends commands on, and meters
/// answer on, unless configured otherwise.
pub const DEFAULT_FPORT: u8 = 200;

/// The FPorts an application may use (0 carries MAC commands, 224 is the
/// LoRaWAN test protocol, 225..=255 are reserved).
pub const APP_FPORTS: std::ops::RangeInclusive<u8> = 1..=223;

/// The codec version this module reads and writes (the header's high nibble).
pub const CODEC_VERSION: u8 = 1;

/// Command codes (the header's low nibble).
pub mod code {
    /// WAKE: open the WiFi window at a given time ([`super::Wake`]).
    pub const WAKE: u8 = 1;
    /// CANCEL: forget a campaign's WAKE.
    pub const CANCEL: u8 = 2;
    /// STATUS_REQUEST: send a STATUS uplink.
    pub const STATUS_REQUEST: u8 = 3;
    /// STATUS: the meter's uplink ([`super::StatusUplink`]).
    pub const STATUS: u8 = 8;
}

/// The header byte for `code`.
const fn header(code: u8) -> u8 {
    (CODEC_VERSION << 4) | code
}

/// Checks the header of `bytes` and returns its command code.
fn parse_header(bytes: &[u8]) -> Result<u8, CodecError> {
    let &first = bytes.first().ok_or(CodecError::Empty)?;
    let version = first >> 4;
    if version != CODEC_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    Ok(first & 0x0f)
}

/// Checks that a message with command `code` is one of `expected` lengths.
fn check_len(code: u8, bytes: &[u8], expected: &'static [usize]) -> Result<(), CodecError> {
    if expected.contains(&bytes.len()) {
        Ok(())
    } else {
        Err(CodecError::BadLength {
            command: code,
            expected,
            got: bytes.len(),
        })
    }
}

/// A big-endian `u16` at `at` (the caller has checked the length).
fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}
