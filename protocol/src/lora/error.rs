//! Why a message cannot be decoded or a value cannot be encoded.

use std::fmt;
use std::time::Duration;

use super::code;

/// Why bytes are not a valid message, or a value has no encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// No bytes at all.
    Empty,
    /// The header's codec version (high nibble) is not
    /// [`super::CODEC_VERSION`].
    UnsupportedVersion(u8),
    /// The header's command code (low nibble) is not one this direction
    /// knows (a STATUS uplink given to the downlink decoder, for instance).
    UnknownCommand(u8),
    /// The message is not one of its command's lengths.
    BadLength {
        /// The command code.
        command: u8,
        /// The lengths the command may have, in bytes.
        expected: &'static [usize],
        /// The length received.
        got: usize,
    },
    /// A duration is longer than its field can hold (encoding).
    OutOfRange {
        /// `"delay"` or `"window"`.
        field: &'static str,
        /// The duration asked for.
        requested: Duration,
        /// The longest the field holds.
        max: Duration,
    },
    /// A duration is encoded in a coarser unit than it needs (minutes for
    /// a value the finer unit holds exactly); only the canonical encoding is
    /// accepted.
    NonCanonical {
        /// `"delay"` or `"window"`.
        field: &'static str,
    },
    /// Reserved flag bits are set (the value of the whole flags byte).
    ReservedBits(u8),
}

/// The command's name, for messages.
fn command_name(command: u8) -> &'static str {
    match command {
        code::WAKE => "WAKE",
        code::CANCEL => "CANCEL",
        code::STATUS_REQUEST => "STATUS_REQUEST",
        code::STATUS => "STATUS",
        _ => "command",
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => f.write_str("empty message"),
            CodecError::UnsupportedVersion(version) => write!(
                f,
                "unsupported codec version {version} (this codec reads version {})",
                super::CODEC_VERSION
            ),
            CodecError::UnknownCommand(command) => write!(f, "unknown command code {command}"),
            CodecError::BadLength {
                command,
                expected,
                got,
            } => {
                write!(f, "{} (code {command}) must be ", command_name(*command))?;
                for (i, len) in expected.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{len}")?;
                }
                write!(f, " bytes, got {got}")
            }
            CodecError::OutOfRange {
                field,
                requested,
                max,
            } => write!(
                f,
                "{field} of {} s is out of range (at most {} s, {} min)",
                requested.as_secs_f64(),
                max.as_secs(),
                max.as_secs() / 60
            ),
            CodecError::NonCanonical { field } => write!(
                f,
                "{field} is encoded in minutes but the finer unit holds it exactly (non-canonical)"
            ),
            CodecError::ReservedBits(flags) => {
                write!(f, "reserved flag bits are set (flags 0x{flags:02x})")
            }
        }
    }
}

impl std::error::Error for CodecError {}
