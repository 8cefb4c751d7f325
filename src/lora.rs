//! `otavan lora encode ...` and `otavan lora decode`: the payloads an
//! operator pastes into the network server (ChirpStack, The Things Stack)
//! to wake meters, and the meters' answers read back as JSON.

use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use otavan_protocol::Version;
use otavan_protocol::lora::{
    APP_FPORTS, CodecError, DEFAULT_FPORT, Delay, DownlinkCommand, StatusUplink, VersionTag, Wake,
    Window, code,
};
use otavan_protocol::region::{Direction, Region};

/// `otavan lora ...` subcommands.
#[derive(clap::Subcommand)]
pub enum LoraCommand {
    /// Print a downlink command's FPort and payload (hex and base64).
    #[command(subcommand)]
    Encode(EncodeCommand),
    /// Print a payload as JSON: a downlink command, or with --uplink a
    /// meter's STATUS.
    Decode {
        /// The payload. Read as hex when it is an even number of hex digits,
        /// otherwise as base64 (standard alphabet, padding optional); padded
        /// base64, as network servers show it, is never mistaken for hex.
        payload: String,
        /// Decode a meter's STATUS uplink instead of a downlink command.
        #[arg(long)]
        uplink: bool,
    },
}

/// `otavan lora encode ...`: one subcommand per downlink command.
#[derive(clap::Subcommand)]
pub enum EncodeCommand {
    /// WAKE: open the meters' WiFi window for the van.
    Wake {
        /// Campaign number (1-65535), echoed in the meters' STATUS.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        campaign: u16,
        /// When the window opens after the meter receives the WAKE, e.g.
        /// 2h, 90m. Exact up to 32767 s, then rounded to the nearest minute
        /// (at most 32767 min).
        #[arg(long = "in", value_name = "DURATION", value_parser = humantime::parse_duration)]
        delay: Duration,
        /// How long the window stays open, e.g. 15m. Rounded to 10 s up to
        /// 1270 s, to the nearest minute above (at most 127 min).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        window: Duration,
        /// Which provisioned van network slot to join (0-255).
        #[arg(long, value_name = "SLOT")]
        network: u8,
        /// The campaign's target version: meters already at it ignore the
        /// WAKE (sent as a 4-byte tag).
        #[arg(long)]
        version: Option<Version>,
        #[command(flatten)]
        target: Target,
    },
    /// CANCEL: forget a campaign's WAKE.
    Cancel {
        /// Campaign number of the WAKE to cancel (1-65535).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        campaign: u16,
        #[command(flatten)]
        target: Target,
    },
    /// STATUS_REQUEST: ask meters for a STATUS uplink.
    StatusRequest {
        #[command(flatten)]
        target: Target,
    },
}

/// Where the payload goes: the port, and the data rate it must fit.
#[derive(clap::Args)]
pub struct Target {
    /// Application port (FPort, 1-223) the meters listen on.
    #[arg(long, default_value_t = DEFAULT_FPORT,
          value_parser = clap::value_parser!(u8).range(i64::from(*APP_FPORTS.start())..=i64::from(*APP_FPORTS.end())))]
    fport: u8,
    /// Refuse a payload too large for data rate --dr of this region
    /// (EU868, US915).
    #[arg(long, requires = "dr")]
    region: Option<Region>,
    /// Data rate to check against, with --region. A downlink data rate of
    /// the region, or an uplink one (US915 DR0-DR4), whose limit is then
    /// applied as the stricter bound: US915 DR0 allows 11 bytes.
    #[arg(long, requires = "region")]
    dr: Option<u8>,
}

/// Runs a LoRa subcommand.
pub fn run(command: LoraCommand) -> anyhow::Result<()> {
    match command {
        LoraCommand::Encode(command) => encode(command),
        LoraCommand::Decode { payload, uplink } => {
            println!("{}", decode(&payload, uplink)?);
            Ok(())
        }
    }
}

fn encode(command: EncodeCommand) -> anyhow::Result<()> {
    let (command, target) = match command {
        EncodeCommand::Wake {
            campaign,
            delay,
            window,
            network,
            version,
            target,
        } => {
            let wake = Wake {
                campaign,
                delay: Delay::from_duration(delay).with_context(|| flag("--in", delay))?,
                window: Window::from_duration(window).with_context(|| flag("--window", window))?,
                network,
                version_tag: version.as_ref().map(VersionTag::of),
            };
            note_rounding("--in", delay, wake.delay.as_duration());
            note_rounding("--window", window, wake.window.as_duration());
            (DownlinkCommand::Wake(wake), target)
        }
        EncodeCommand::Cancel { campaign, target } => {
            (DownlinkCommand::Cancel { campaign }, target)
        }
        EncodeCommand::StatusRequest { target } => (DownlinkCommand::StatusRequest, target),
    };
    let bytes = command.encode();
    if let (Some(region), Some(dr)) = (target.region, target.dr) {
        check_payload(region, dr, bytes.len())?;
    }
    println!("fport: {}", target.fport);
    println!("hex: {}", to_hex(&bytes));
    println!("base64: {}", STANDARD.encode(&bytes));
    Ok(())
}

/// A duration flag as the operator gave it, for error messages.
fn flag(name: &str, value: Duration) -> String {
    format!("{name} {}", humantime::format_duration(value))
}

/// Tells the operator when a duration was rounded to what the field holds.
fn note_rounding(name: &str, requested: Duration, encoded: Duration) {
    if requested != encoded {
        eprintln!(
            "otavan: note: {} is sent as {}",
            flag(name, requested),
            humantime::format_duration(encoded)
        );
    }
}

/// Refuses a payload of `len` bytes that does not fit data rate `dr`:
/// `dr` as a downlink data rate of `region`, or else as an uplink one.
fn check_payload(region: Region, dr: u8, len: usize) -> anyhow::Result<()> {
    let direction = if region.max_payload(dr, Direction::Downlink).is_some() {
        Direction::Downlink
    } else if region.max_payload(dr, Direction::Uplink).is_some() {
        Direction::Uplink
    } else {
        bail!("{region} has no data rate DR{dr}");
    };
    region
        .check_fits(dr, direction, len)
        .context("refusing to encode the payload")
}

/// Decodes `input` (hex or base64) as a downlink command or, with `uplink`,
/// a STATUS uplink, into one line of JSON.
fn decode(input: &str, uplink: bool) -> anyhow::Result<String> {
    let bytes = parse_payload(input)?;
    let json = if uplink {
        let status = StatusUplink::decode(&bytes).map_err(|e| hint(e, true))?;
        serde_json::to_string(&status)?
    } else {
        let command = DownlinkCommand::decode(&bytes).map_err(|e| hint(e, false))?;
        serde_json::to_string(&command)?
    };
    Ok(json)
}

/// A decoding error, with a hint when the payload is of the other direction.
fn hint(error: CodecError, uplink: bool) -> anyhow::Error {
    let other_direction = match error {
        CodecError::UnknownCommand(code::STATUS) if !uplink => {
            Some("it is a STATUS uplink: add --uplink")
        }
        CodecError::UnknownCommand(code::WAKE | code::CANCEL | code::STATUS_REQUEST) if uplink => {
            Some("it is a downlink command: drop --uplink")
        }
        _ => None,
    };
    anyhow::Error::new(error).context(match other_direction {
        Some(hint) => format!("cannot decode the payload ({hint})"),
        None => "cannot decode the payload".to_owned(),
    })
}

/// The payload's bytes: hex when `input` is an even number of hex digits,
/// otherwise standard base64 with or without padding. Surrounding
/// whitespace is ignored.
fn parse_payload(input: &str) -> anyhow::Result<Vec<u8>> {
    let input = input.trim();
    if input.is_empty() {
        bail!("the payload is empty");
    }
    if input.len().is_multiple_of(2) && input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(input
            .as_bytes()
            .chunks(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect());
    }
    STANDARD_PAD_INDIFFERENT.decode(input).map_err(|error| {
        anyhow::anyhow!(
            "{input:?} is neither hex (an even number of hex digits) nor base64 ({error})"
        )
    })
}

/// The value of an ASCII hex digit (the caller has checked it is one).
fn hex_value(digit: u8) -> u8 {
    char::from(digit).to_digit(16).unwrap_or(0) as u8
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_as_hex_first_then_base64() {
        assert_eq!(parse_payload("11000A").unwrap(), [0x11, 0x00, 0x0a]);
        assert_eq!(parse_payload(" 13 ").unwrap(), [0x13]);
        assert_eq!(parse_payload("Ew==").unwrap(), [0x13]);
        assert_eq!(parse_payload("Ew").unwrap(), [0x13]);
        // Odd length: not hex, so base64.
        assert_eq!(parse_payload("EgAH").unwrap(), [0x12, 0x00, 0x07]);
        assert!(parse_payload("zz!").is_err());
        assert!(parse_payload("").is_err());
    }

    #[test]
    fn a_payload_larger_than_the_data_rate_allows_is_refused() {
        // No message of the codec exceeds 11 bytes, so check the limit itself.
        assert!(check_payload(Region::Us915, 0, 11).is_ok());
        let error = check_payload(Region::Us915, 0, 12).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "refusing to encode the payload: a 12-byte payload does not fit US915 uplink DR0 \
             (at most 11 bytes)"
        );
        assert!(check_payload(Region::Us915, 8, 53).is_ok());
        assert!(check_payload(Region::Us915, 8, 54).is_err());
        assert!(check_payload(Region::Eu868, 0, 52).is_err());
        let error = check_payload(Region::Us915, 6, 1).unwrap_err();
        assert_eq!(error.to_string(), "US915 has no data rate DR6");
    }

    #[test]
    fn decoding_hints_at_the_other_direction() {
        let status = "18deadbeef0001c80007";
        let error = decode(status, false).unwrap_err();
        assert!(format!("{error:#}").contains("add --uplink"), "{error:#}");
        let error = decode("13", true).unwrap_err();
        assert!(format!("{error:#}").contains("drop --uplink"), "{error:#}");
    }
}
