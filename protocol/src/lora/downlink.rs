//! The operator's commands: WAKE, CANCEL, STATUS_REQUEST.

use std::time::Duration;

use serde::Serialize;

use super::{CodecError, Delay, VersionTag, Window, be16, check_len, code, header, parse_header};
use crate::Version;

/// WAKE without a version tag, in bytes.
const WAKE_LEN: usize = 7;
/// WAKE with a version tag, in bytes.
const WAKE_TAGGED_LEN: usize = 11;
/// CANCEL, in bytes.
const CANCEL_LEN: usize = 3;
/// STATUS_REQUEST, in bytes.
const STATUS_REQUEST_LEN: usize = 1;

/// Open the WiFi window for the van: join `network` after `delay`, for
/// `window`.
///
/// Layout: `hdr(0x11)` `campaign:u16` `delay:u16` `window:u8` `network:u8`
/// [`version_tag:[u8;4]`], 7 or 11 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Wake {
    /// The operator's campaign number, echoed in the meter's STATUS and
    /// named by CANCEL.
    pub campaign: u16,
    /// When the window opens, after the meter receives the WAKE.
    #[serde(rename = "delay_s")]
    pub delay: Delay,
    /// How long the window stays open.
    #[serde(rename = "window_s")]
    pub window: Window,
    /// Which provisioned van network slot to join.
    pub network: u8,
    /// The campaign's target version: meters already at a version with this
    /// tag ignore the WAKE. `None`: every meter wakes.
    pub version_tag: Option<VersionTag>,
}

impl Wake {
    /// A WAKE from durations, rounded as [`super::Delay`] and
    /// [`super::Window`] describe.
    ///
    /// # Errors
    ///
    /// [`CodecError::OutOfRange`] when `delay` or `window` is too long.
    pub fn new(
        campaign: u16,
        delay: Duration,
        window: Duration,
        network: u8,
        version_tag: Option<VersionTag>,
    ) -> Result<Wake, CodecError> {
        Ok(Wake {
            campaign,
            delay: Delay::from_duration(delay)?,
            window: Window::from_duration(window)?,
            network,
            version_tag,
        })
    }

    /// Whether a meter at `own` acts on this WAKE: always without a tag,
    /// otherwise when its version's tag differs from the target's.
    pub fn applies_to(&self, own: &Version) -> bool {
        self.version_tag != Some(VersionTag::of(own))
    }

    /// The encoded length: 7 bytes, 11 with a version tag.
    pub fn buffer_len(&self) -> usize {
        if self.version_tag.is_some() {
            WAKE_TAGGED_LEN
        } else {
            WAKE_LEN
        }
    }

    /// Writes the WAKE at the start of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = header(code::WAKE);
        buf[1..3].copy_from_slice(&self.campaign.to_be_bytes());
        buf[3..5].copy_from_slice(&self.delay.to_wire().to_be_bytes());
        buf[5] = self.window.to_wire();
        buf[6] = self.network;
        if let Some(tag) = self.version_tag {
            buf[7..11].copy_from_slice(tag.as_bytes());
        }
    }

    /// The WAKE's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }

    /// Reads a WAKE (and nothing else).
    ///
    /// # Errors
    ///
    /// The header's errors, [`CodecError::UnknownCommand`] for another
    /// command, [`CodecError::BadLength`], and
    /// [`CodecError::NonCanonical`] for a duration in the wrong unit.
    pub fn decode(bytes: &[u8]) -> Result<Wake, CodecError> {
        match DownlinkCommand::decode(bytes)? {
            DownlinkCommand::Wake(wake) => Ok(wake),
            other => Err(CodecError::UnknownCommand(other.code())),
        }
    }

    /// Reads the body of a WAKE whose header has been checked.
    fn parse(bytes: &[u8]) -> Result<Wake, CodecError> {
        check_len(code::WAKE, bytes, &[WAKE_LEN, WAKE_TAGGED_LEN])?;
        Ok(Wake {
            campaign: be16(bytes, 1),
            delay: Delay::from_wire(be16(bytes, 3))?,
            window: Window::from_wire(bytes[5])?,
            network: bytes[6],
            version_tag: (bytes.len() == WAKE_TAGGED_LEN)
                .then(|| VersionTag([bytes[7], bytes[8], bytes[9], bytes[10]])),
        })
    }
}

/// A command from the operator to meters (a downlink).
///
/// Serializes with a `command` field: `{"command":"wake","campaign":7,
/// "delay_s":3600,"window_s":900,"network":1,"version_tag":"a1b2c3d4"}`
/// (`version_tag` is `null` when absent), `{"command":"cancel",
/// "campaign":7}`, `{"command":"status_request"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum DownlinkCommand {
    /// Open the WiFi window (code 1, 7 or 11 bytes).
    Wake(Wake),
    /// Forget `campaign`'s WAKE if its window has not opened yet (code 2,
    /// `hdr(0x12)` `campaign:u16`, 3 bytes).
    Cancel {
        /// The campaign of the WAKE to cancel.
        campaign: u16,
    },
    /// Answer with a STATUS uplink (code 3, `hdr(0x13)` only, 1 byte).
    StatusRequest,
}

impl DownlinkCommand {
    /// The command code (the header's low nibble).
    pub fn code(&self) -> u8 {
        match self {
            DownlinkCommand::Wake(_) => code::WAKE,
            DownlinkCommand::Cancel { .. } => code::CANCEL,
            DownlinkCommand::StatusRequest => code::STATUS_REQUEST,
        }
    }

    /// The encoded length in bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            DownlinkCommand::Wake(wake) => wake.buffer_len(),
            DownlinkCommand::Cancel { .. } => CANCEL_LEN,
            DownlinkCommand::StatusRequest => STATUS_REQUEST_LEN,
        }
    }

    /// Writes the command at the start of `buf`.
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            DownlinkCommand::Wake(wake) => wake.emit(buf),
            DownlinkCommand::Cancel { campaign } => {
                buf[0] = header(code::CANCEL);
                buf[1..3].copy_from_slice(&campaign.to_be_bytes());
            }
            DownlinkCommand::StatusRequest => buf[0] = header(code::STATUS_REQUEST),
        }
    }

    /// The command's bytes, the FRMPayload to send.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }

    /// Reads a command. Never panics; accepts only canonical encodings.
    ///
    /// # Errors
    ///
    /// [`CodecError::Empty`], [`CodecError::UnsupportedVersion`],
    /// [`CodecError::UnknownCommand`] (including the uplink's STATUS code),
    /// [`CodecError::BadLength`], [`CodecError::NonCanonical`].
    pub fn decode(bytes: &[u8]) -> Result<DownlinkCommand, CodecError> {
        match parse_header(bytes)? {
            code::WAKE => Wake::parse(bytes).map(DownlinkCommand::Wake),
            code::CANCEL => {
                check_len(code::CANCEL, bytes, &[CANCEL_LEN])?;
                Ok(DownlinkCommand::Cancel {
                    campaign: be16(bytes, 1),
                })
            }
            code::STATUS_REQUEST => {
                check_len(code::STATUS_REQUEST, bytes, &[STATUS_REQUEST_LEN])?;
                Ok(DownlinkCommand::StatusRequest)
            }
            other => Err(CodecError::UnknownCommand(other)),
        }
    }
}

impl From<Wake> for DownlinkCommand {
    fn from(wake: Wake) -> DownlinkCommand {
        DownlinkCommand::Wake(wake)
    }
}
