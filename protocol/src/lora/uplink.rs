//! The meter's STATUS uplink.

use std::fmt;

use serde::{Serialize, Serializer};

use super::{CodecError, VersionTag, be16, check_len, code, header, parse_header};

/// STATUS, in bytes.
const STATUS_LEN: usize = 10;
/// The flags bit for [`StatusUplink::pending_confirm`].
const FLAG_PENDING_CONFIRM: u8 = 0x01;

/// How the meter's last update attempt ended.
///
/// Serializes as its snake_case name (`"updated"`, `"wifi_join_failed"`),
/// and [`OtaResult::Other`] as its bare code number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtaResult {
    /// 0: no attempt yet.
    None,
    /// 1: the new version is installed.
    Updated,
    /// 2: the meter was already at the target.
    AlreadyCurrent,
    /// 3: the release was refused (unsigned, untrusted, expired, rolled back).
    Refused,
    /// 4: downloading failed.
    DownloadFailed,
    /// 5: a downloaded file or image did not match its hash.
    VerificationFailed,
    /// 6: not enough space for the update.
    NoSpace,
    /// 7: the update was interrupted and undone.
    Interrupted,
    /// 8: the meter could not join the van's WiFi.
    WifiJoinFailed,
    /// 9: the campaign was cancelled.
    Cancelled,
    /// 10: the installed version was rolled back by the meter itself: it
    /// failed its self-test, was not confirmed within its boots, or the
    /// bootloader fell back to the old image.
    Reverted,
    /// A code this codec does not know (from a newer meter). Never holds a
    /// known code when decoded; encoding `Other(1)` writes 1, which decodes
    /// as [`OtaResult::Updated`].
    Other(u8),
}

impl OtaResult {
    /// The result for `code`: a named variant for 0..=10, `Other` otherwise.
    pub fn from_code(code: u8) -> OtaResult {
        match code {
            0 => OtaResult::None,
            1 => OtaResult::Updated,
            2 => OtaResult::AlreadyCurrent,
            3 => OtaResult::Refused,
            4 => OtaResult::DownloadFailed,
            5 => OtaResult::VerificationFailed,
            6 => OtaResult::NoSpace,
            7 => OtaResult::Interrupted,
            8 => OtaResult::WifiJoinFailed,
            9 => OtaResult::Cancelled,
            10 => OtaResult::Reverted,
            other => OtaResult::Other(other),
        }
    }

    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            OtaResult::None => 0,
            OtaResult::Updated => 1,
            OtaResult::AlreadyCurrent => 2,
            OtaResult::Refused => 3,
            OtaResult::DownloadFailed => 4,
            OtaResult::VerificationFailed => 5,
            OtaResult::NoSpace => 6,
            OtaResult::Interrupted => 7,
            OtaResult::WifiJoinFailed => 8,
            OtaResult::Cancelled => 9,
            OtaResult::Reverted => 10,
            OtaResult::Other(code) => code,
        }
    }

    /// The snake_case name, `None` for [`OtaResult::Other`].
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            OtaResult::None => "none",
            OtaResult::Updated => "updated",
            OtaResult::AlreadyCurrent => "already_current",
            OtaResult::Refused => "refused",
            OtaResult::DownloadFailed => "download_failed",
            OtaResult::VerificationFailed => "verification_failed",
            OtaResult::NoSpace => "no_space",
            OtaResult::Interrupted => "interrupted",
            OtaResult::WifiJoinFailed => "wifi_join_failed",
            OtaResult::Cancelled => "cancelled",
            OtaResult::Reverted => "reverted",
            OtaResult::Other(_) => return None,
        })
    }
}

impl fmt::Display for OtaResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "code {}", self.code()),
        }
    }
}

impl Serialize for OtaResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => serializer.serialize_str(name),
            None => serializer.serialize_u8(self.code()),
        }
    }
}

/// The meter's status, sent after a STATUS_REQUEST or an update attempt.
///
/// Layout: `hdr(0x18)` `version_tag:[u8;4]` `flags:u8` `last_result:u8`
/// `battery:u8` `campaign:u16`, 10 bytes. Serializes as
/// `{"message":"status","version_tag":"a1b2c3d4","pending_confirm":false,
/// "last_result":"updated","battery":200,"campaign":7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "message", rename = "status")]
pub struct StatusUplink {
    /// The tag of the version the meter runs.
    pub version_tag: VersionTag,
    /// The last update is installed but not yet confirmed (flags bit 0).
    pub pending_confirm: bool,
    /// How the last update attempt ended.
    pub last_result: OtaResult,
    /// [`StatusUplink::BATTERY_EXTERNAL`], 1..=254 (empty to full), or
    /// [`StatusUplink::BATTERY_UNKNOWN`], as in LoRaWAN's `DevStatusAns`.
    pub battery: u8,
    /// The last WAKE campaign the meter saw, 0 for none.
    pub campaign: u16,
}

impl StatusUplink {
    /// `battery`: the meter runs on external power.
    pub const BATTERY_EXTERNAL: u8 = 0;
    /// `battery`: the meter cannot measure its battery.
    pub const BATTERY_UNKNOWN: u8 = 255;

    /// The encoded length: 10 bytes.
    pub fn buffer_len(&self) -> usize {
        STATUS_LEN
    }

    /// Writes the status at the start of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = header(code::STATUS);
        buf[1..5].copy_from_slice(self.version_tag.as_bytes());
        buf[5] = if self.pending_confirm {
            FLAG_PENDING_CONFIRM
        } else {
            0
        };
        buf[6] = self.last_result.code();
        buf[7] = self.battery;
        buf[8..10].copy_from_slice(&self.campaign.to_be_bytes());
    }

    /// The status's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }

    /// Reads a STATUS uplink. Never panics; unknown result codes become
    /// [`OtaResult::Other`].
    ///
    /// # Errors
    ///
    /// [`CodecError::Empty`], [`CodecError::UnsupportedVersion`],
    /// [`CodecError::UnknownCommand`] (including downlink codes),
    /// [`CodecError::BadLength`], [`CodecError::ReservedBits`].
    pub fn decode(bytes: &[u8]) -> Result<StatusUplink, CodecError> {
        let command = parse_header(bytes)?;
        if command != code::STATUS {
            return Err(CodecError::UnknownCommand(command));
        }
        check_len(code::STATUS, bytes, &[STATUS_LEN])?;
        let flags = bytes[5];
        if flags & !FLAG_PENDING_CONFIRM != 0 {
            return Err(CodecError::ReservedBits(flags));
        }
        Ok(StatusUplink {
            version_tag: VersionTag([bytes[1], bytes[2], bytes[3], bytes[4]]),
            pending_confirm: flags & FLAG_PENDING_CONFIRM != 0,
            last_result: OtaResult::from_code(bytes[6]),
            battery: bytes[7],
            campaign: be16(bytes, 8),
        })
    }
}
