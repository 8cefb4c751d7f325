//! A minimal LoRaWAN 1.0.x network server for one simulated gateway.
//!
//! [`NetworkServer`] is a cheap, cloneable handle; every clone sees the
//! same network. It keeps a device registry (DevEUI, AppEUI, AppKey),
//! handles OTAA joins (JoinRequest MIC and DevNonce checks, an encrypted
//! JoinAccept with a fresh DevAddr and AppNonce from the seeded generator,
//! NwkSKey/AppSKey derivation), accepts data uplinks (DevAddr lookup, MIC,
//! 32-bit FCntUp reconstruction with replay rejection, FRMPayload
//! decryption) and answers class A devices from a per-device downlink
//! queue in RX1 or RX2 within the gateway's duty cycle (see
//! [`crate::gateway`]). Confirmed uplinks are acknowledged (with the next
//! queued downlink, or an empty frame).
//!
//! Simplifications: a JoinAccept replaces the device's session at once
//! (a real server keeps the old one until the first uplink of the new);
//! confirmed downlinks are not retransmitted when the device does not
//! acknowledge them (the count of acknowledged ones is kept); the one MAC
//! command interpreted is `DeviceTimeReq` (in FOpts or an FPort 0
//! payload), answered with `DeviceTimeAns` in the FOpts of the next
//! downlink when the network has a clock ([`NetworkConfig::time`]): the
//! GPS time at the end of the asking uplink; other uplink MAC commands
//! are ignored, FPort 0 payloads are decrypted and recorded; no ADR; no
//! CFList.

mod data;
mod join;
mod multicast;
mod state;
mod types;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use otavan_protocol::region::{Channel, Region};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::gateway::{AirFrame, Gateway, GatewayTx};
use crate::keys::{DevEui, DeviceKeys};
use crate::log::FrameLog;
use crate::rng::SimRng;

pub use multicast::{MulticastError, MulticastSent};
use state::State;
use types::{DeviceEntry, Loss, MAX_DOWNLINK_PAYLOAD, QueuedDownlink, eui_key};
pub use types::{
    EnqueueError, NetworkConfig, NetworkStats, ReceivedFrame, RejectReason, Reply, SessionInfo,
    Uplink, UplinkInfo, UplinkOutcome,
};

/// The simulated network server and its gateway; clone it freely.
#[derive(Clone)]
pub struct NetworkServer {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for NetworkServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("NetworkServer")
            .field("config", &state.config)
            .field("devices", &state.devices.len())
            .field("stats", &state.stats)
            .finish()
    }
}

impl NetworkServer {
    /// A network with no devices, started now (tokio time).
    pub fn new(config: NetworkConfig) -> Self {
        let start = Instant::now();
        let (uplink_events, _) = broadcast::channel(1024);
        let state = State {
            rng: SimRng::new(config.seed),
            gateway: Gateway::new(config.region, start),
            config,
            start,
            devices: BTreeMap::new(),
            by_addr: HashMap::new(),
            uplinks: Vec::new(),
            log: FrameLog::default(),
            stats: NetworkStats::default(),
            loss: None,
            uplink_events,
            groups: HashMap::new(),
        };
        NetworkServer {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> NetworkConfig {
        self.lock().config.clone()
    }

    /// The region.
    pub fn region(&self) -> Region {
        self.lock().config.region
    }

    /// When the network started (the zero of every time it reports).
    pub fn started_at(&self) -> Instant {
        self.lock().start
    }

    /// Time since the network started.
    pub fn elapsed(&self) -> Duration {
        self.lock().start.elapsed()
    }

    /// Registers a device (or replaces its credentials, keeping its queue
    /// and ending its session).
    pub fn register(&self, keys: DeviceKeys) {
        let mut state = self.lock();
        let state = &mut *state;
        let key = eui_key(&keys.dev_eui);
        let entry = state.devices.entry(key).or_insert_with(|| DeviceEntry {
            keys,
            dev_nonces: HashSet::new(),
            session: None,
            queue: VecDeque::new(),
        });
        entry.keys = keys;
        if let Some(old) = entry.session.take() {
            state.by_addr.remove(&old.dev_addr);
        }
    }

    /// Queues an application downlink for the device's next uplink.
    /// Returns the queue length.
    pub fn enqueue(
        &self,
        dev_eui: DevEui,
        fport: u8,
        payload: &[u8],
        confirmed: bool,
    ) -> Result<usize, EnqueueError> {
        if !(1..=223).contains(&fport) {
            return Err(EnqueueError::InvalidFport(fport));
        }
        if payload.len() > MAX_DOWNLINK_PAYLOAD {
            return Err(EnqueueError::PayloadTooLarge(payload.len()));
        }
        let mut state = self.lock();
        let entry = state
            .devices
            .get_mut(&eui_key(&dev_eui))
            .ok_or(EnqueueError::UnknownDevice(dev_eui))?;
        entry.queue.push_back(QueuedDownlink {
            fport,
            payload: payload.to_vec(),
            confirmed,
        });
        Ok(entry.queue.len())
    }

    /// Drops every downlink waiting for the device, as an operator does
    /// when a command is no longer useful (ChirpStack's "flush queue").
    /// Returns how many were dropped.
    pub fn flush_queue(&self, dev_eui: DevEui) -> usize {
        self.lock()
            .devices
            .get_mut(&eui_key(&dev_eui))
            .map_or(0, |e| std::mem::take(&mut e.queue).len())
    }

    /// How many downlinks wait for the device (0 for unknown devices).
    pub fn queued(&self, dev_eui: DevEui) -> usize {
        self.lock()
            .devices
            .get(&eui_key(&dev_eui))
            .map_or(0, |e| e.queue.len())
    }

    /// The device's session, once it has joined.
    pub fn session(&self, dev_eui: DevEui) -> Option<SessionInfo> {
        let state = self.lock();
        let s = state.devices.get(&eui_key(&dev_eui))?.session?;
        Some(SessionInfo {
            dev_addr: s.dev_addr,
            nwk_s_key: s.nwk_s_key,
            app_s_key: s.app_s_key,
            next_fcnt_up: s.next_fcnt_up,
            fcnt_down: s.fcnt_down,
        })
    }

    /// Every accepted data uplink so far, in arrival order.
    pub fn uplinks(&self) -> Vec<Uplink> {
        self.lock().uplinks.clone()
    }

    /// The accepted data uplinks of one device.
    pub fn uplinks_of(&self, dev_eui: DevEui) -> Vec<Uplink> {
        self.lock()
            .uplinks
            .iter()
            .filter(|u| u.dev_eui == dev_eui)
            .cloned()
            .collect()
    }

    /// A receiver of every data uplink accepted from now on.
    pub fn subscribe_uplinks(&self) -> broadcast::Receiver<Uplink> {
        self.lock().uplink_events.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> NetworkStats {
        self.lock().stats.clone()
    }

    /// Every gateway transmission so far, in the order they were decided.
    pub fn gateway_transmissions(&self) -> Vec<GatewayTx> {
        self.lock().gateway.history().to_vec()
    }

    /// The frame log, one JSON line ([`crate::log::FrameRecord`]) per frame.
    pub fn frame_log(&self) -> Vec<String> {
        self.lock().log.lines().to_vec()
    }

    /// Also writes every new frame-log line (with a newline) to `writer`.
    /// A write error detaches the writer ([`Self::frame_log_write_failed`]).
    pub fn set_frame_log_writer(&self, writer: impl Write + Send + 'static) {
        self.lock().log.set_writer(Some(Box::new(writer)));
    }

    /// Stops copying the frame log to a writer.
    pub fn clear_frame_log_writer(&self) {
        self.lock().log.set_writer(None);
    }

    /// Whether writing to the frame-log writer failed.
    pub fn frame_log_write_failed(&self) -> bool {
        self.lock().log.write_failed()
    }

    /// Loses each uplink with `probability`, drawn from a generator seeded
    /// with `seed`.
    pub fn set_uplink_loss(&self, probability: f64, seed: u64) {
        self.lock().loss = Some(Loss::Probability(
            probability.clamp(0.0, 1.0),
            SimRng::new(seed),
        ));
    }

    /// Decides per uplink whether the gateway hears it (`true`) or not.
    pub fn set_uplink_filter(&self, filter: impl FnMut(&UplinkInfo<'_>) -> bool + Send + 'static) {
        self.lock().loss = Some(Loss::Filter(Box::new(filter)));
    }

    /// Every uplink reaches the gateway again.
    pub fn clear_uplink_loss(&self) {
        self.lock().loss = None;
    }

    /// Hands the network a frame the gateway received; radios call this at
    /// the end of each uplink.
    pub fn receive(&self, frame: ReceivedFrame) -> UplinkOutcome {
        self.lock().receive(frame)
    }

    /// The earliest gateway frame on `channel` starting between `from` and
    /// `until`; radios call this to listen in a receive window.
    pub fn downlink_on_air(
        &self,
        channel: Channel,
        from: Instant,
        until: Instant,
    ) -> Option<AirFrame> {
        self.lock().gateway.on_air(channel, from, until)
    }
}
