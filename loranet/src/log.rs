//! The frame log: one JSON line per frame the network heard or sent.
//!
//! Every line is a [`FrameRecord`]: the virtual time in seconds since the
//! network started (millisecond precision), the DevEUI, direction, message
//! type, the PHYPayload as hex and the radio parameters. Because this is a
//! simulation, lines also carry the keys a standard LoRaWAN decoder needs
//! to check them: the AppKey on join frames, the session keys (NwkSKey,
//! AppSKey) on data frames and on the JoinAccept that created them. A real
//! network server must never log keys.
//!
//! Uplinks are logged when their reception ends, with that time; downlinks
//! are logged when the network schedules them (at the end of the uplink
//! they answer), with the time their transmission starts, so a downlink
//! line can precede the next uplink's line while its time is later.

use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which way a frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameDirection {
    /// Device to gateway.
    Up,
    /// Gateway to device.
    Down,
}

/// The LoRaWAN message type (MHDR MType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// JoinRequest.
    JoinRequest,
    /// JoinAccept.
    JoinAccept,
    /// Unconfirmed data up.
    UnconfirmedDataUp,
    /// Confirmed data up.
    ConfirmedDataUp,
    /// Unconfirmed data down.
    UnconfirmedDataDown,
    /// Confirmed data down.
    ConfirmedDataDown,
    /// Anything else (proprietary, malformed).
    Other,
}

/// The receive window a downlink was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RxWindow {
    /// First window (RECEIVE_DELAY1 or JOIN_ACCEPT_DELAY1 after the uplink).
    Rx1,
    /// Second window, one second after the first.
    Rx2,
    /// A class C window opened for a multicast group.
    #[serde(rename = "class_c")]
    ClassC,
}

/// One line of the frame log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Seconds since the network started, rounded to the millisecond:
    /// end of reception for uplinks, start of transmission for downlinks.
    pub time_s: f64,
    /// The device's EUI (MSB-first hex), when the network knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_eui: Option<String>,
    /// Up or down.
    pub direction: FrameDirection,
    /// The message type.
    pub kind: FrameKind,
    /// The whole PHYPayload (MHDR to MIC) as hex.
    pub phy_payload: String,
    /// Frequency in hertz.
    pub frequency_hz: u32,
    /// Spreading factor.
    pub spreading_factor: u8,
    /// Bandwidth in hertz.
    pub bandwidth_hz: u32,
    /// Time on air in milliseconds.
    pub airtime_ms: f64,
    /// Receive window, downlinks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<RxWindow>,
    /// DevAddr (MSB-first hex) of data frames and JoinAccepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_addr: Option<String>,
    /// Full 32-bit frame counter of data frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcnt: Option<u32>,
    /// FPort of data frames that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fport: Option<u8>,
    /// `"ok"`, or why the network rejected the frame.
    pub status: String,
    /// Simulation only: the AppKey, on join frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// Simulation only: the NwkSKey of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nwk_s_key: Option<String>,
    /// Simulation only: the AppSKey of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_s_key: Option<String>,
}

/// Seconds with millisecond precision, for [`FrameRecord::time_s`].
pub(crate) fn seconds_3(d: Duration) -> f64 {
    let millis = (d.as_nanos() + 500_000) / 1_000_000;
    millis as f64 / 1000.0
}

/// The lines kept in memory and the optional writer they are copied to.
#[derive(Default)]
pub(crate) struct FrameLog {
    lines: Vec<String>,
    writer: Option<Box<dyn Write + Send>>,
    write_failed: bool,
}

impl FrameLog {
    pub(crate) fn push(&mut self, record: &FrameRecord) {
        let line = serde_json::to_string(record).expect("a FrameRecord always serialises");
        if let Some(writer) = self.writer.as_mut() {
            let written = writer
                .write_all(line.as_bytes())
                .and_then(|()| writer.write_all(b"\n"))
                .and_then(|()| writer.flush());
            if written.is_err() {
                // Keep the simulation going; the in-memory log stays complete.
                self.write_failed = true;
                self.writer = None;
            }
        }
        self.lines.push(line);
    }

    pub(crate) fn set_writer(&mut self, writer: Option<Box<dyn Write + Send>>) {
        self.writer = writer;
        self.write_failed = false;
    }

    pub(crate) fn lines(&self) -> &[String] {
        &self.lines
    }

    pub(crate) fn write_failed(&self) -> bool {
        self.write_failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(seconds_3(Duration::from_micros(12_345_499)), 12.345);
        assert_eq!(seconds_3(Duration::from_micros(12_345_500)), 12.346);
        assert_eq!(seconds_3(Duration::ZERO), 0.0);
    }
}
