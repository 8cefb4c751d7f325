//! A simulated LoRa radio and timer for `lorawan_device`'s async
//! [`Device`](lorawan_device::async_device::Device), on tokio time.
//!
//! [`SimRadio`] is linked to a [`NetworkServer`] only through the air: it
//! hands every transmitted PHYPayload to the server (which tells devices
//! apart by the frame's content) and, in a receive window, picks up the
//! gateway frame that starts on its channel (frequency, spreading factor,
//! bandwidth) while it listens. Every frame arrives: there is no path
//! loss, collision or capture model (uplink loss can be injected with
//! [`NetworkServer::set_uplink_loss`]). Class C (`rx_continuous`) hears
//! the first frame that starts on its channel after it began listening
//! (multicast frames: [`NetworkServer::send_multicast`]).
//!
//! Timing follows the radio contract the Device relies on: `tx` returns
//! when the frame has been sent, and returns 0, because the Device adds
//! the returned milliseconds to its receive delays, which it counts from
//! the moment `tx` returns (as lora-phy's radios do). The airtime is
//! available from [`SimRadio::stats`].

use std::fmt;
use std::time::Duration;

use lorawan_device::async_device::Timings;
use lorawan_device::async_device::radio::{
    PhyRxTx, RfConfig, RxConfig, RxMode, RxQuality, RxStatus, Timer, TxConfig,
};
use otavan_protocol::region::airtime::{LORAWAN_PREAMBLE, symbol_time, time_on_air};
use otavan_protocol::region::{Band, Channel, EU868_SUB_BANDS, Region};
use tokio::time::{Instant, sleep, sleep_until};

use crate::server::{NetworkServer, ReceivedFrame, UplinkOutcome};

/// How far ahead a class C receiver looks for a frame, and how often it
/// looks again: shorter than any frame's time on air at the class C data
/// rates (SF12 to SF7 frames of a WAKE last 40 ms to 1.2 s; a frame found
/// late is still received whole, as it stays on the air log).
const CLASS_C_LOOK: Duration = Duration::from_millis(20);

/// Why the simulated radio failed an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRadioError {
    /// `rx_single` without a preceding `setup_rx`.
    NoRxConfig,
    /// A spreading factor, bandwidth or coding rate the formula does not
    /// cover.
    UnsupportedModulation,
    /// The received frame is longer than the receive buffer.
    BufferTooSmall,
}

impl fmt::Display for SimRadioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimRadioError::NoRxConfig => "receive without a receive configuration",
            SimRadioError::UnsupportedModulation => "unsupported modulation",
            SimRadioError::BufferTooSmall => "receive buffer too small for the frame",
        })
    }
}

impl std::error::Error for SimRadioError {}

/// What one simulated radio did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RadioStats {
    /// Frames transmitted.
    pub uplinks: u64,
    /// Total time on air of the transmitted frames.
    pub airtime: Duration,
    /// Time on air of the last transmitted frame.
    pub last_airtime: Duration,
    /// Transmissions that started inside the device's own duty-cycle
    /// off-time for that sub-band (EU868; lorawan-device does not enforce
    /// it, so a meter application must).
    pub duty_cycle_violations: u64,
    /// Frames received in receive windows.
    pub frames_received: u64,
    /// Receive windows that closed empty.
    pub rx_timeouts: u64,
}

/// A simulated LoRa transceiver attached to a [`NetworkServer`].
#[derive(Debug)]
pub struct SimRadio {
    server: NetworkServer,
    region: Region,
    rx_config: Option<RxConfig>,
    lead_time_ms: u32,
    band_free_at: [Option<Instant>; EU868_SUB_BANDS.len()],
    stats: RadioStats,
    last_outcome: Option<UplinkOutcome>,
}

impl SimRadio {
    /// The default receive-window lead time: the Device wakes the radio
    /// this long before each window.
    pub const DEFAULT_LEAD_TIME_MS: u32 = 20;

    /// A radio on `server`'s network.
    pub fn new(server: NetworkServer) -> Self {
        SimRadio {
            region: server.region(),
            server,
            rx_config: None,
            lead_time_ms: Self::DEFAULT_LEAD_TIME_MS,
            band_free_at: [None; EU868_SUB_BANDS.len()],
            stats: RadioStats::default(),
            last_outcome: None,
        }
    }

    /// Sets the receive-window lead time.
    pub fn with_lead_time_ms(mut self, lead_time_ms: u32) -> Self {
        self.lead_time_ms = lead_time_ms;
        self
    }

    /// The network this radio talks to.
    pub fn server(&self) -> &NetworkServer {
        &self.server
    }

    /// The counters.
    pub fn stats(&self) -> RadioStats {
        self.stats.clone()
    }

    /// What the network did with this radio's last transmitted frame
    /// (simulation only: a real device never learns this).
    pub fn last_outcome(&self) -> Option<&UplinkOutcome> {
        self.last_outcome.as_ref()
    }

    fn track_duty_cycle(&mut self, start: Instant, channel: Channel, airtime: Duration) {
        if let Some(Band::Limited(index, sub)) = self.region.band(channel.frequency) {
            let slot = &mut self.band_free_at[index];
            if slot.is_some_and(|free| start < free) {
                self.stats.duty_cycle_violations += 1;
            }
            *slot = Some(start + airtime * sub.duty_cycle_divisor);
        }
    }
}

/// The channel and coding rate (`CR` of the airtime formula) of a radio
/// configuration.
fn modulation(rf: &RfConfig) -> Result<(Channel, u8), SimRadioError> {
    let sf = u8::try_from(rf.bb.sf.factor()).map_err(|_| SimRadioError::UnsupportedModulation)?;
    let cr = u8::try_from(rf.bb.cr.denom().saturating_sub(4))
        .map_err(|_| SimRadioError::UnsupportedModulation)?;
    if !(5..=12).contains(&sf) || !(1..=4).contains(&cr) {
        return Err(SimRadioError::UnsupportedModulation);
    }
    Ok((
        Channel {
            frequency: rf.frequency,
            sf,
            bandwidth_hz: rf.bb.bw.hz(),
        },
        cr,
    ))
}

impl PhyRxTx for SimRadio {
    type PhyError = SimRadioError;

    const MAX_RADIO_POWER: u8 = 22;

    /// Transmits for the frame's time on air, then hands it to the network.
    async fn tx(&mut self, config: TxConfig, buf: &[u8]) -> Result<u32, SimRadioError> {
        let (channel, cr) = modulation(&config.rf)?;
        let airtime = time_on_air(
            buf.len(),
            channel.sf,
            channel.bandwidth_hz,
            cr,
            true,
            true,
            LORAWAN_PREAMBLE,
        );
        let start = Instant::now();
        self.track_duty_cycle(start, channel, airtime);
        self.stats.uplinks += 1;
        self.stats.airtime += airtime;
        self.stats.last_airtime = airtime;
        sleep_until(start + airtime).await;
        let outcome = self.server.receive(ReceivedFrame {
            phy: buf.to_vec(),
            channel,
            end: Instant::now(),
        });
        self.last_outcome = Some(outcome);
        Ok(0)
    }

    async fn setup_rx(&mut self, config: RxConfig) -> Result<(), SimRadioError> {
        modulation(&config.rf)?;
        self.rx_config = Some(config);
        Ok(())
    }

    /// Listens on the configured channel from now until a gateway frame
    /// starts on it (a class C window; the caller bounds it with a
    /// timeout), and receives it whole.
    async fn rx_continuous(
        &mut self,
        rx_buf: &mut [u8],
    ) -> Result<(usize, RxQuality), SimRadioError> {
        let config = self.rx_config.ok_or(SimRadioError::NoRxConfig)?;
        let (channel, _) = modulation(&config.rf)?;
        let from = Instant::now();
        let frame = loop {
            // Frames are scheduled ahead of their start, so looking ahead
            // finds one at once; one scheduled later is found at the next
            // look, before it ends.
            let ahead = Instant::now() + CLASS_C_LOOK;
            if let Some(frame) = self.server.downlink_on_air(channel, from, ahead) {
                break frame;
            }
            sleep(CLASS_C_LOOK).await;
        };
        sleep_until(frame.end).await;
        let target = rx_buf
            .get_mut(..frame.phy.len())
            .ok_or(SimRadioError::BufferTooSmall)?;
        target.copy_from_slice(&frame.phy);
        self.stats.frames_received += 1;
        Ok((frame.phy.len(), RxQuality::new(-80, 7)))
    }

    /// Listens from now for the lead time, the configured window buffer
    /// and eight symbols; a gateway frame on this channel starting in that
    /// span (or up to four symbols before it) is received whole, otherwise
    /// the window times out at its end.
    async fn rx_single(&mut self, buf: &mut [u8]) -> Result<RxStatus, SimRadioError> {
        let config = self.rx_config.ok_or(SimRadioError::NoRxConfig)?;
        let (channel, _) = modulation(&config.rf)?;
        let symbol = symbol_time(channel.sf, channel.bandwidth_hz);
        let buffer_ms = match config.mode {
            RxMode::Single { ms } => ms,
            RxMode::Continuous => 0,
        };
        let now = Instant::now();
        let from = now.checked_sub(symbol * 4).unwrap_or(now);
        let until = now
            + Duration::from_millis(u64::from(self.lead_time_ms) + u64::from(buffer_ms))
            + symbol * 8;
        let mut frame = self.server.downlink_on_air(channel, from, until);
        if frame.is_none() {
            sleep_until(until).await;
            // A frame scheduled while we listened.
            frame = self.server.downlink_on_air(channel, from, until);
        }
        let Some(frame) = frame else {
            self.stats.rx_timeouts += 1;
            return Ok(RxStatus::RxTimeout);
        };
        sleep_until(frame.end).await;
        let target = buf
            .get_mut(..frame.phy.len())
            .ok_or(SimRadioError::BufferTooSmall)?;
        target.copy_from_slice(&frame.phy);
        self.stats.frames_received += 1;
        Ok(RxStatus::Rx(frame.phy.len(), RxQuality::new(-80, 7)))
    }
}

impl Timings for SimRadio {
    fn get_rx_window_lead_time_ms(&self) -> u32 {
        self.lead_time_ms
    }
}

/// A [`Timer`] on tokio time: `at(ms)` waits until `ms` after the last
/// `reset`.
#[derive(Debug, Clone, Copy)]
pub struct SimTimer {
    reset_at: Instant,
}

impl SimTimer {
    /// A timer reset now.
    pub fn new() -> Self {
        SimTimer {
            reset_at: Instant::now(),
        }
    }
}

impl Default for SimTimer {
    fn default() -> Self {
        SimTimer::new()
    }
}

impl Timer for SimTimer {
    fn reset(&mut self) {
        self.reset_at = Instant::now();
    }

    async fn at(&mut self, millis: u64) {
        sleep_until(self.reset_at + Duration::from_millis(millis)).await;
    }

    async fn delay_ms(&mut self, millis: u64) {
        sleep(Duration::from_millis(millis)).await;
    }
}
