//! The server's public types and its per-device records.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use otavan_protocol::region::{Channel, Region};
use tokio::time::Instant;

use crate::gateway::DownlinkKind;
use crate::keys::{AppSKey, DevEui, DeviceKeys, NewSKey, eui_hex};
use crate::log::RxWindow;
use crate::rng::SimRng;

/// JOIN_ACCEPT_DELAY1 of LoRaWAN 1.0.x.
pub(super) const JOIN_ACCEPT_DELAY1: Duration = Duration::from_secs(5);
/// JOIN_ACCEPT_DELAY2 of LoRaWAN 1.0.x.
pub(super) const JOIN_ACCEPT_DELAY2: Duration = Duration::from_secs(6);
/// LoRaWAN 1.0.x MAX_FCNT_GAP.
pub(super) const MAX_FCNT_GAP: u64 = 16_384;
/// The largest application payload any downlink can carry.
pub(super) const MAX_DOWNLINK_PAYLOAD: usize = 242;

/// How the simulated network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Regional parameters (receive windows, data rates, duty cycle).
    pub region: Region,
    /// Seed of every network-side random choice (AppNonce, DevAddr, loss).
    pub seed: u64,
    /// The 24-bit NetID sent in JoinAccepts. DevAddrs carry its 7 low bits
    /// as NwkID (a type 0 NetID); the default 0x000013 gives DevAddrs
    /// 26xxxxxx/27xxxxxx.
    pub net_id: u32,
    /// RX1 delay in seconds (1..=15) announced in JoinAccepts.
    pub rx1_delay_s: u8,
    /// The network's wall clock when it started (Unix time): it answers
    /// `DeviceTimeReq` with it, as GPS time. `None`: like a network server
    /// without the command, it never answers.
    pub time: Option<Duration>,
}

impl NetworkConfig {
    /// EU868 with the given seed.
    pub fn eu868(seed: u64) -> Self {
        NetworkConfig {
            region: Region::Eu868,
            seed,
            net_id: 0x13,
            rx1_delay_s: 1,
            time: None,
        }
    }

    /// US915 with the given seed.
    pub fn us915(seed: u64) -> Self {
        NetworkConfig {
            region: Region::Us915,
            ..NetworkConfig::eu868(seed)
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::eu868(0)
    }
}

/// A frame as the gateway received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// The PHYPayload.
    pub phy: Vec<u8>,
    /// Channel and modulation it was sent on.
    pub channel: Channel,
    /// When its reception ended.
    pub end: Instant,
}

/// What the network did with an uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkOutcome {
    /// The frame never reached the gateway (simulated loss).
    Lost,
    /// A valid JoinRequest; the JoinAccept is scheduled in `window`.
    Joined {
        /// The device.
        dev_eui: DevEui,
        /// Its new DevAddr.
        dev_addr: u32,
        /// The window the JoinAccept goes out in.
        window: RxWindow,
    },
    /// A valid data uplink.
    Data {
        /// The device.
        dev_eui: DevEui,
        /// The full 32-bit FCntUp.
        fcnt: u32,
        /// Whether and how it was answered.
        reply: Reply,
    },
    /// The frame was refused.
    Rejected(RejectReason),
}

/// The answer to a data uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to send.
    None,
    /// A downlink is scheduled.
    Sent {
        /// Its window.
        window: RxWindow,
        /// Its FCntDown.
        fcnt_down: u32,
        /// Queued data, or only an acknowledgement.
        kind: DownlinkKind,
    },
    /// A queued downlink could not be sent in RX1 or RX2 (duty cycle, busy
    /// transmitter, or too long for both windows' data rates); it stays
    /// queued for the next uplink.
    Deferred,
    /// A confirmed uplink could not be acknowledged (no slot).
    AckDropped,
}

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not a parseable LoRaWAN 1.0 frame.
    Malformed,
    /// A downlink type (JoinAccept, data down) received as an uplink.
    NotAnUplink,
    /// JoinRequest from a DevEUI that is not registered.
    UnknownDevEui,
    /// JoinRequest with the wrong AppEUI.
    AppEuiMismatch,
    /// The MIC does not verify.
    InvalidMic,
    /// JoinRequest repeating a DevNonce the device used before.
    DevNonceReused,
    /// Data uplink from a DevAddr without a session.
    UnknownDevAddr,
    /// Data uplink whose FCnt is not above the last accepted one (or jumps
    /// ahead by MAX_FCNT_GAP or more).
    FcntReplay,
    /// A valid JoinRequest whose JoinAccept fits neither receive window.
    NoDownlinkSlot,
}

impl RejectReason {
    /// The snake_case name used in the frame log.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::NotAnUplink => "not_an_uplink",
            RejectReason::UnknownDevEui => "unknown_dev_eui",
            RejectReason::AppEuiMismatch => "app_eui_mismatch",
            RejectReason::InvalidMic => "invalid_mic",
            RejectReason::DevNonceReused => "dev_nonce_reused",
            RejectReason::UnknownDevAddr => "unknown_dev_addr",
            RejectReason::FcntReplay => "fcnt_replay",
            RejectReason::NoDownlinkSlot => "no_downlink_slot",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A data uplink the network accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// End of reception, since the network started.
    pub at: Duration,
    /// The device.
    pub dev_eui: DevEui,
    /// Its DevAddr.
    pub dev_addr: u32,
    /// Full 32-bit FCntUp.
    pub fcnt: u32,
    /// FPort, when the frame has a payload.
    pub fport: Option<u8>,
    /// The decrypted FRMPayload (MAC commands when FPort is 0).
    pub payload: Vec<u8>,
    /// Confirmed data up.
    pub confirmed: bool,
    /// The ACK bit (acknowledges the last confirmed downlink).
    pub ack: bool,
    /// Channel and modulation.
    pub channel: Channel,
    /// The PHYPayload as received.
    pub phy: Vec<u8>,
}

/// A device's current session, as the network sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// DevAddr.
    pub dev_addr: u32,
    /// Network session key.
    pub nwk_s_key: NewSKey,
    /// Application session key.
    pub app_s_key: AppSKey,
    /// The lowest FCntUp the next uplink may carry.
    pub next_fcnt_up: u64,
    /// The FCntDown of the next downlink.
    pub fcnt_down: u32,
}

/// Network counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Data uplinks accepted.
    pub uplinks_received: u64,
    /// Frames refused (any [`RejectReason`]).
    pub uplinks_rejected: u64,
    /// Frames dropped by the simulated loss before reaching the gateway.
    pub uplinks_lost: u64,
    /// JoinAccepts scheduled.
    pub joins_accepted: u64,
    /// Valid JoinRequests left unanswered for lack of a downlink slot.
    pub join_accepts_dropped: u64,
    /// Queued application downlinks sent.
    pub downlinks_sent: u64,
    /// Times a queued downlink could not be sent after an uplink and stayed
    /// queued.
    pub downlinks_deferred: u64,
    /// Empty acknowledgements of confirmed uplinks sent.
    pub acks_sent: u64,
    /// `DeviceTimeReq`s answered (in a frame of their own or beside a
    /// queued downlink).
    pub device_times_sent: u64,
    /// Confirmed uplinks left unacknowledged for lack of a slot.
    pub acks_dropped: u64,
    /// Confirmed downlinks the device acknowledged.
    pub confirmed_downlinks_acked: u64,
    /// Gateway transmissions in RX1.
    pub rx1_transmissions: u64,
    /// Gateway transmissions in RX2.
    pub rx2_transmissions: u64,
    /// Multicast frames sent in class C windows.
    pub multicast_transmissions: u64,
    /// Total gateway time on air.
    pub airtime_used: Duration,
}

/// Why a downlink cannot be queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueError {
    /// The DevEUI is not registered.
    UnknownDevice(DevEui),
    /// FPort must be 1..=223 for application data.
    InvalidFport(u8),
    /// Longer than any downlink can carry (242 bytes).
    PayloadTooLarge(usize),
}

impl fmt::Display for EnqueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnqueueError::UnknownDevice(eui) => write!(f, "unknown device {}", eui_hex(eui)),
            EnqueueError::InvalidFport(p) => write!(f, "FPort {p} is not an application port"),
            EnqueueError::PayloadTooLarge(n) => write!(
                f,
                "a {n}-byte payload exceeds the {MAX_DOWNLINK_PAYLOAD}-byte downlink limit"
            ),
        }
    }
}

impl std::error::Error for EnqueueError {}

/// What a loss filter sees of an uplink before the gateway hears it.
#[derive(Debug, Clone, Copy)]
pub struct UplinkInfo<'a> {
    /// End of the transmission, since the network started.
    pub at: Duration,
    /// The sender, when it can be told from the frame (a JoinRequest's
    /// DevEUI, or a known DevAddr).
    pub dev_eui: Option<DevEui>,
    /// Channel and modulation.
    pub channel: Channel,
    /// The PHYPayload.
    pub phy: &'a [u8],
}

/// A caller's loss decision: `true` when the gateway hears the frame.
pub(super) type UplinkFilter = Box<dyn FnMut(&UplinkInfo<'_>) -> bool + Send>;

/// Injected uplink loss.
pub(super) enum Loss {
    Probability(f64, SimRng),
    Filter(UplinkFilter),
}

/// An application downlink waiting for its device's next uplink.
#[derive(Debug, Clone)]
pub(super) struct QueuedDownlink {
    pub(super) fport: u8,
    pub(super) payload: Vec<u8>,
    pub(super) confirmed: bool,
}

/// The network side of a device's session.
#[derive(Debug, Clone, Copy)]
pub(super) struct Session {
    pub(super) dev_addr: u32,
    pub(super) nwk_s_key: NewSKey,
    pub(super) app_s_key: AppSKey,
    pub(super) next_fcnt_up: u64,
    pub(super) fcnt_down: u32,
    /// The last downlink was confirmed and the device has not uplinked since.
    pub(super) awaiting_ack: bool,
}

/// A registered device: credentials, used DevNonces, session, queue.
pub(super) struct DeviceEntry {
    pub(super) keys: DeviceKeys,
    pub(super) dev_nonces: HashSet<[u8; 2]>,
    pub(super) session: Option<Session>,
    pub(super) queue: VecDeque<QueuedDownlink>,
}

/// A DevEUI's wire bytes, as a map key (the key types are not `Ord`).
pub(super) type EuiKey = [u8; 8];

/// The map key of a DevEUI.
pub(super) fn eui_key(eui: &DevEui) -> EuiKey {
    let mut key = [0u8; 8];
    key.copy_from_slice(eui.as_ref());
    key
}
