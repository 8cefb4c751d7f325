//! [`LoraTrigger`]: a class A LoRaWAN device that joins, sends readings
//! and status, obeys WAKE/CANCEL/STATUS_REQUEST, and opens WiFi update
//! sessions for the van.

use std::fmt;
use std::io;
use std::time::Duration;

use lorawan_device::Prng;
use lorawan_device::async_device::radio::{PhyRxTx, Timer};
use lorawan_device::async_device::{
    self, Device, JoinMode, JoinResponse, SendResponse, Session, Timings,
};
use lorawan_device::default_crypto::DefaultFactory;
use lorawan_device::mac;
use lorawan_device::region::DR;
use otavan_protocol::lora::multicast::{McAnswer, McRequest};
use otavan_protocol::lora::{APP_FPORTS, OtaResult, StatusUplink, VersionTag};
use otavan_protocol::region::{Direction, PayloadTooLarge, Region, check_fits};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::class_c;
use super::config::TriggerConfig;
use super::device_time::TimeRadio;
use super::duty::{DutyCycle, JOIN_REQUEST_LEN, MAX_DATA_OVERHEAD};
use super::host::{Host, Sensors};
use super::multicast::{ClassCWindow, Ignored, MulticastGroups, SetupTime};
use super::outcome::ota_result;
use super::schedule::{Decision, Scheduler, Wakeup, WifiSession};
use super::store::{Saved, lora_file};
use crate::clock::{Clock, Entropy, MeterClock, SplitMix};
use crate::confirm::Confirmation;
use crate::engine::{Engine, EngineError};
use crate::health::Evidence;
use crate::slots::FirmwareSlots;
use crate::state::{DeviceState, Phase};
use crate::storage::Storage;
use crate::transport::Transport;
use crate::trust::Anchor;
use crate::wifi::{Backoff, WifiLink, update_within};

/// The LoRaWAN device the trigger drives: lorawan-device's async device
/// with its software crypto and seeded PRNG, over the meter's radio
/// wrapped to ask the network for the time ([`TimeRadio`]).
pub type LoraDevice<R, T> = Device<TimeRadio<R>, DefaultFactory, T, Prng>;

/// Which kind of uplink was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkKind {
    /// A meter reading, on the reading FPort.
    Reading,
    /// A [`StatusUplink`], on the command FPort.
    Status,
    /// Answers to multicast setup requests, on the setup FPort.
    MulticastSetup,
}

/// What one [`LoraTrigger::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The OTAA join succeeded.
    Joined {
        /// Which attempt of this round succeeded (1 = the first).
        attempt: u32,
    },
    /// A join attempt failed; the next one is scheduled.
    JoinFailed {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// The radio's error, `None` when no join accept came.
        error: Option<String>,
        /// When the next attempt is made ([`MeterClock`] time).
        retry_at: Duration,
    },
    /// An uplink went out.
    Uplink {
        /// What was sent.
        kind: UplinkKind,
        /// Its frame counter.
        fcnt: u32,
        /// What the downlink received after it did, if one came.
        downlink: Option<Decision>,
        /// The network's time (Unix) when the uplink asked for it
        /// (`DeviceTimeReq`) and the downlink after it answered.
        network_time: Option<Duration>,
        /// The answers to multicast setup requests the downlink carried
        /// (sent in the next uplink).
        multicast_setup: Vec<McAnswer>,
    },
    /// An uplink was not sent: it does not fit the data rate.
    UplinkRefused {
        /// What was not sent.
        kind: UplinkKind,
        /// Why.
        error: PayloadTooLarge,
    },
    /// Sending failed (a radio error, or the network ended the session; a
    /// new join follows).
    UplinkFailed {
        /// What was being sent.
        kind: UplinkKind,
        /// Why.
        error: String,
    },
    /// A WiFi session ran.
    Session {
        /// The session.
        session: WifiSession,
        /// How it ended (also the next STATUS uplink's `last_result`).
        result: OtaResult,
    },
    /// A session's window closed before the meter got to it.
    SessionMissed {
        /// The session.
        session: WifiSession,
    },
    /// The meter listened in a multicast group's class C window.
    ClassC {
        /// The window.
        window: ClassCWindow,
        /// What the scheduler made of each frame accepted for the group.
        decisions: Vec<Decision>,
        /// Frames heard and not accepted, with why.
        ignored: Vec<Ignored>,
        /// The radio's error, if it failed.
        radio_error: Option<String>,
    },
}

/// Why the trigger stopped.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The configuration cannot work.
    #[error("trigger configuration: {0}")]
    Config(String),
    /// Reading or writing the trigger's state failed.
    #[error("{file}: {0}", file = lora_file())]
    Storage(#[source] io::Error),
    /// The meter's own state could not be read.
    #[error("reading the meter's state: {0}")]
    Meter(#[source] EngineError),
    /// Every join attempt of a round failed. The next step starts a new
    /// round after the longest backoff.
    #[error("no join accept after {attempts} attempts")]
    JoinFailed {
        /// Attempts made.
        attempts: u32,
    },
}

/// An uplink or join with its receive windows keeps the radio this long
/// at most (EU868 DR0: a 51-byte uplink 2.5 s, the JoinAccept's RX2 opens
/// 6 s after it, a frame there lasts up to 3 s). One due this close before
/// a class C window waits until the window has closed, so that the window
/// is heard from its start.
const LINK_EXCHANGE: Duration = Duration::from_secs(12);

/// The next thing the trigger will do.
#[derive(Debug, Clone, Copy)]
enum Action {
    Join(Duration),
    Uplink(Duration),
    Session(Duration, WifiSession),
    Listen(Duration, ClassCWindow),
}

impl Action {
    fn at(&self) -> Duration {
        match self {
            Action::Join(at)
            | Action::Uplink(at)
            | Action::Session(at, _)
            | Action::Listen(at, _) => *at,
        }
    }
}

/// Drives a LoRaWAN class A device for one meter (see the module
/// documentation of [`super`]).
///
/// Build it with [`LoraTrigger::new`] (which restores the saved session and
/// schedule), then call [`LoraTrigger::step`] in a loop, or
/// [`LoraTrigger::run_until`].
pub struct LoraTrigger<R, T>
where
    R: PhyRxTx + Timings,
    T: Timer,
{
    device: LoraDevice<R, T>,
    config: TriggerConfig,
    clock: MeterClock,
    scheduler: Scheduler,
    joined: bool,
    /// Failed join attempts in the current round.
    join_failures: u32,
    /// When to try joining next (`None`: now).
    next_join: Option<Duration>,
    /// When the next uplink is due (`None`: now).
    next_uplink: Option<Duration>,
    readings_since_status: u32,
    status_due: bool,
    last_result: OtaResult,
    duty: DutyCycle,
    /// Join jitter, seeded from the trigger's seed.
    jitter: SplitMix,
    /// When the network last told the time ([`MeterClock`] time; `None`:
    /// not since the start or the last join).
    time_answered_at: Option<Duration>,
    /// Whether the meter needs the network's time: a signed meter (it
    /// has a trust anchor) judges expiry by it, a multicast one opens its
    /// class C windows at GPS times.
    wants_time: bool,
    /// The multicast groups, when the meter takes part.
    multicast: Option<MulticastGroups>,
    /// Encoded answers to multicast setup requests, for the next uplink.
    multicast_answers: Option<Vec<u8>>,
}

impl<R, T> LoraTrigger<R, T>
where
    R: PhyRxTx + Timings,
    R::PhyError: fmt::Debug,
    T: Timer,
{
    /// A trigger over `radio` and `timer`, continuing from the state saved
    /// in `storage` (the meter's storage, the same the engine uses): a saved
    /// session for this DevEUI is restored, so no new join is needed; the
    /// scheduled session, seen campaigns and last result come back too.
    ///
    /// `clock` is the meter's time ([`MeterClock::system`] on a meter; a
    /// test or rehearsal anchors one at a known time, and passes the same
    /// one to a rebuilt trigger). `seed` seeds the LoRaWAN stack's PRNG
    /// (DevNonces, channels) and the join jitter: on a meter, draw it from
    /// [`crate::clock::SystemEntropy`] at every start, never the same twice.
    ///
    /// # Errors
    ///
    /// [`TriggerError::Config`] for an unusable configuration (FPorts,
    /// data rate, join policy), [`TriggerError::Storage`] when the saved
    /// state cannot be read, [`TriggerError::Meter`] when the meter's
    /// trust anchor cannot.
    pub fn new(
        config: TriggerConfig,
        radio: R,
        timer: T,
        clock: MeterClock,
        seed: u64,
        storage: &dyn Storage,
    ) -> Result<LoraTrigger<R, T>, TriggerError> {
        let data_rate = check_config(&config)?;
        let saved = Saved::load(storage).map_err(TriggerError::Storage)?;
        let signed = Anchor::load(storage)
            .map_err(TriggerError::Meter)?
            .is_some();
        let multicast = config.multicast.as_ref().map(|multicast| {
            MulticastGroups::new(multicast.root, config.region, saved.multicast.clone())
        });
        let last_result = saved.last_result();
        let session = match (saved.dev_eui, saved.session) {
            (Some(dev_eui), Some(session)) if dev_eui == config.dev_eui => Some(session),
            (_, Some(_)) => {
                warn!("the saved LoRaWAN session belongs to another DevEUI; joining again");
                None
            }
            (_, None) => None,
        };
        let joined = session.is_some();
        if let Some(session) = &session {
            info!(fcnt_up = session.fcnt_up, "restored the LoRaWAN session");
        }
        let region = async_device::region::Configuration::new(radio_region(config.region));
        let mut device =
            Device::new_with_seed_and_session(region, TimeRadio::new(radio), timer, seed, session);
        device.set_datarate(data_rate);
        let scheduler =
            Scheduler::restore(config.command_fport, config.networks.len(), saved.scheduler);
        Ok(LoraTrigger {
            device,
            clock,
            scheduler,
            joined,
            join_failures: 0,
            next_join: None,
            next_uplink: None,
            readings_since_status: 0,
            status_due: saved.status_due,
            last_result,
            duty: DutyCycle::new(config.region),
            jitter: SplitMix::new(seed.rotate_left(32) ^ 0x6f74_6176_616e_6a72),
            time_answered_at: None,
            wants_time: signed || multicast.is_some(),
            multicast,
            multicast_answers: None,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &MeterClock {
        &self.clock
    }

    /// The downlink state machine.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Whether a LoRaWAN session is established.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// The LoRaWAN session, when joined.
    pub fn session(&mut self) -> Option<&Session> {
        if self.joined {
            self.device.get_session()
        } else {
            None
        }
    }

    /// How the last update attempt ended.
    pub fn last_result(&self) -> OtaResult {
        self.last_result
    }

    /// Whether the next uplink is a STATUS.
    pub fn status_due(&self) -> bool {
        self.status_due
    }

    /// The LoRaWAN device (for its radio: `get_radio().inner()`).
    pub fn device(&mut self) -> &mut LoraDevice<R, T> {
        &mut self.device
    }

    /// When the next [`LoraTrigger::step`] acts ([`MeterClock`] time).
    pub fn next_action_at(&self) -> Duration {
        self.next_action().at()
    }

    fn next_action(&self) -> Action {
        let now = self.clock.now();
        let link_at = if self.joined {
            self.next_uplink
        } else {
            self.next_join
        }
        .unwrap_or(now)
        .max(now)
        .max(self.duty.free_at().unwrap_or(now));
        let action = match self.scheduler.next_wakeup(now, link_at) {
            Wakeup::Session { at, session } => Action::Session(at, session),
            Wakeup::Uplink(at) if self.joined => Action::Uplink(at),
            Wakeup::Uplink(at) => Action::Join(at),
        };
        let window = self.multicast.as_ref().and_then(|m| m.next_window(now));
        let busy_until = match action {
            Action::Join(at) | Action::Uplink(at) => at + LINK_EXCHANGE,
            _ => action.at(),
        };
        match window {
            Some(window) if window.opens_at.max(now) <= busy_until => {
                Action::Listen(window.opens_at.max(now), window)
            }
            _ => action,
        }
    }

    /// Runs steps until the next one would start after `deadline`, then
    /// sleeps until `deadline`. Returns what happened, in order. (A step
    /// that started before `deadline`, a WiFi session say, may end after
    /// it.)
    ///
    /// # Errors
    ///
    /// The first step's error (see [`LoraTrigger::step`]).
    pub async fn run_until<W, S, F, Tr, M>(
        &mut self,
        deadline: Instant,
        host: &mut Host<W, S, F, Tr, M>,
    ) -> Result<Vec<Event>, TriggerError>
    where
        W: WifiLink,
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
        M: Sensors,
    {
        let mut events = Vec::new();
        while self.clock.instant(self.next_action_at()) <= deadline {
            events.push(self.step(host).await?);
        }
        sleep_until(deadline).await;
        Ok(events)
    }

    /// Sleeps until the next thing is due and does it: a join attempt when
    /// there is no session, the WiFi session when its window opens before
    /// the next uplink, otherwise the uplink (a STATUS when one is owed,
    /// else a reading) and the downlink after it.
    ///
    /// # Errors
    ///
    /// [`TriggerError::JoinFailed`] after the join policy's last attempt;
    /// [`TriggerError::Storage`] when the state cannot be saved;
    /// [`TriggerError::Meter`] when the meter's state cannot be read.
    /// Radio errors are events, not errors.
    pub async fn step<W, S, F, Tr, M>(
        &mut self,
        host: &mut Host<W, S, F, Tr, M>,
    ) -> Result<Event, TriggerError>
    where
        W: WifiLink,
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
        M: Sensors,
    {
        let action = self.next_action();
        sleep_until(self.clock.instant(action.at())).await;
        match action {
            Action::Join(_) => self.join(host.engine.meter().storage()).await,
            Action::Uplink(_) => self.uplink(host).await,
            Action::Session(_, session) => self.wifi_session(host, session).await,
            Action::Listen(_, window) => self.listen(host, window).await,
        }
    }

    async fn join(&mut self, storage: &dyn Storage) -> Result<Event, TriggerError> {
        let mode = JoinMode::OTAA {
            deveui: self.config.dev_eui,
            appeui: self.config.join_eui,
            appkey: self.config.app_key,
        };
        let attempt = self.join_failures + 1;
        let started = self.clock.now();
        let joined = self.device.join(&mode).await;
        let airtime = self.uplink_time_on_air(JOIN_REQUEST_LEN);
        self.on_air(started, airtime);
        let error = match joined {
            Ok(JoinResponse::JoinSuccess) => {
                info!(attempt, "joined");
                self.joined = true;
                self.join_failures = 0;
                self.time_answered_at = None;
                self.next_join = None;
                self.next_uplink = None;
                // Announce the meter's version on the new session.
                self.status_due = true;
                self.save(storage, 0)?;
                return Ok(Event::Joined { attempt });
            }
            Ok(JoinResponse::NoJoinAccept) => None,
            Err(error) => Some(device_error(&error)),
        };
        let now = self.clock.now();
        let policy = self.config.join;
        if attempt >= policy.max_attempts {
            warn!(attempts = attempt, "giving up joining for now");
            self.join_failures = 0;
            self.next_join = Some(now + policy.max_backoff);
            return Err(TriggerError::JoinFailed { attempts: attempt });
        }
        self.join_failures = attempt;
        let backoff = policy.backoff(attempt);
        let retry_at = (now + backoff + self.jitter_up_to(backoff / 4))
            .max(self.duty.free_at().unwrap_or(now));
        debug!(attempt, ?error, ?retry_at, "join failed");
        self.next_join = Some(retry_at);
        Ok(Event::JoinFailed {
            attempt,
            error,
            retry_at,
        })
    }

    /// The data rate the device transmits at.
    fn data_rate(&mut self) -> u8 {
        self.device.get_datarate() as u8
    }

    /// Time on air of an uplink with a `phy_len`-byte PHYPayload at the
    /// current data rate.
    fn uplink_time_on_air(&mut self, phy_len: usize) -> Option<Duration> {
        let data_rate = self.data_rate();
        self.config
            .region
            .time_on_air(data_rate, Direction::Uplink, phy_len)
    }

    /// Records a transmission for the duty cycle (`airtime` is `None` only
    /// for data rates the configuration check refused).
    fn on_air(&mut self, started: Duration, airtime: Option<Duration>) {
        if let Some(airtime) = airtime {
            self.duty.record(started, airtime);
        }
    }

    /// A random duration from zero to `max`, by the millisecond.
    fn jitter_up_to(&mut self, max: Duration) -> Duration {
        let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.jitter.next_u64() % max_ms.saturating_add(1))
    }

    async fn uplink<W, S, F, Tr, M>(
        &mut self,
        host: &mut Host<W, S, F, Tr, M>,
    ) -> Result<Event, TriggerError>
    where
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
        M: Sensors,
    {
        self.next_uplink = Some(self.clock.now() + self.config.uplink_interval);
        let every = self.config.status_every;
        if every > 0 && self.readings_since_status >= every {
            self.status_due = true;
        }
        let state = host.engine.meter().state().map_err(TriggerError::Meter)?;
        if state.reverted.is_some() && self.last_result != OtaResult::Reverted {
            // The meter reverted an update by itself: say so now.
            self.last_result = OtaResult::Reverted;
            self.status_due = true;
        }
        let on_trial = state
            .update
            .as_ref()
            .is_some_and(|journal| journal.phase == Phase::Applied);
        let answers = self
            .multicast_setup_fport()
            .zip(self.multicast_answers.clone());
        let (kind, fport, payload) = if let Some((fport, answers)) = answers {
            (UplinkKind::MulticastSetup, fport, answers)
        } else if self.status_due {
            let status = self.status(&state, host.sensors.battery());
            (
                UplinkKind::Status,
                self.config.command_fport,
                status.encode(),
            )
        } else {
            let reading = host.sensors.reading();
            (UplinkKind::Reading, self.config.reading_fport, reading)
        };
        let storage = host.engine.meter().storage();
        if let Err(error) = check_fits(
            self.config.region,
            self.data_rate(),
            Direction::Uplink,
            payload.len(),
        ) {
            warn!(%error, ?kind, "uplink not sent");
            self.sent(kind);
            return Ok(Event::UplinkRefused { kind, error });
        }
        let fcnt = self.device.get_session().map_or(0, |s| s.fcnt_up);
        self.ask_time_if_due(payload.len());
        // Save the counter this frame leaves behind before it goes out, so
        // a restart during the receive windows never reuses it.
        self.save(storage, 1)?;
        let started = self.clock.now();
        let response = self.device.send(&payload, fport, false).await;
        let received_at = self.clock.now();
        let airtime = self.uplink_time_on_air(payload.len() + MAX_DATA_OVERHEAD);
        self.on_air(started, airtime);
        let event = match response {
            Ok(response) => {
                self.sent(kind);
                if on_trial {
                    self.self_test(&host.engine).await;
                }
                let (downlink, network_time) = match response {
                    SendResponse::DownlinkReceived(fcnt_down) => {
                        let network_time = self.take_time(fcnt_down, host);
                        let network_now = host.engine.network_time().now();
                        let downlink = self.take_downlink(received_at, network_now, &state);
                        (downlink, network_time)
                    }
                    SendResponse::SessionExpired => {
                        warn!("the frame counter is exhausted; joining again");
                        self.joined = false;
                        (None, None)
                    }
                    SendResponse::NoAck | SendResponse::RxComplete => (None, None),
                };
                let (downlink, multicast_setup) = downlink.unwrap_or_default();
                debug!(?kind, fcnt, ?downlink, ?network_time, "uplink sent");
                Event::Uplink {
                    kind,
                    fcnt,
                    downlink,
                    network_time,
                    multicast_setup,
                }
            }
            Err(error) => {
                if matches!(error, async_device::Error::Mac(mac::Error::NotJoined)) {
                    self.joined = false;
                }
                let error = device_error(&error);
                warn!(%error, ?kind, "uplink failed");
                Event::UplinkFailed { kind, error }
            }
        };
        self.save(storage, 0)?;
        Ok(event)
    }

    /// An uplink went out from a version on trial: evidence for its
    /// self-test, which may confirm it or revert it.
    async fn self_test<S, F, Tr>(&mut self, engine: &Engine<S, F, Tr>)
    where
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
    {
        match engine.self_test(Evidence::UPLINK).await {
            Ok(Confirmation::Reverted(revert)) => {
                warn!(reason = %revert.reason, "reverted after the uplink");
                self.last_result = OtaResult::Reverted;
                self.status_due = true;
            }
            Ok(Confirmation::Waiting { missing, .. }) => {
                debug!(%missing, "on trial, waiting");
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "the self-test after the uplink failed"),
        }
    }

    /// Has the next uplink (of `payload_len` bytes) ask the network for
    /// the time, when the meter is signed (it judges expiry at trusted
    /// time) and has had no answer since it started, joined, or in
    /// [`TriggerConfig::time_sync_every`]; and when the extra FOpts byte
    /// still fits the data rate.
    fn ask_time_if_due(&mut self, payload_len: usize) {
        let now = self.clock.now();
        let due = self
            .time_answered_at
            .is_none_or(|at| now.saturating_sub(at) >= self.config.time_sync_every);
        if !due || !self.wants_time {
            return;
        }
        let fits = check_fits(
            self.config.region,
            self.data_rate(),
            Direction::Uplink,
            payload_len + 1,
        )
        .is_ok();
        if let (true, Some(session)) = (fits, self.device.get_session().cloned()) {
            self.device.get_mut_radio().ask_next(&session);
        }
    }

    /// The network's answer to a time request in the downlink with
    /// counter `fcnt_down`: handed to the engine, and kept as the meter's
    /// trusted-time floor.
    fn take_time<W, S, F, Tr, M>(
        &mut self,
        fcnt_down: u32,
        host: &Host<W, S, F, Tr, M>,
    ) -> Option<Duration>
    where
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
    {
        let (unix, at) = self.device.get_mut_radio().answer(fcnt_down)?;
        host.engine.network_time().set(unix, at);
        let now = host.engine.network_time().now()?;
        if let Err(error) = host.engine.meter().raise_trusted_time(now.as_secs()) {
            warn!(%error, "the network's time could not be kept");
        }
        self.time_answered_at = Some(self.clock.now());
        info!(unix = now.as_secs(), "the network told the time");
        Some(now)
    }

    /// Bookkeeping after an uplink of `kind` was sent (or refused for
    /// good).
    fn sent(&mut self, kind: UplinkKind) {
        match kind {
            UplinkKind::Status => {
                self.status_due = false;
                self.readings_since_status = 0;
            }
            UplinkKind::Reading => {
                self.readings_since_status = self.readings_since_status.saturating_add(1)
            }
            UplinkKind::MulticastSetup => self.multicast_answers = None,
        }
    }

    /// Hands the received downlink to the scheduler, or, on the
    /// multicast setup FPort, to the multicast groups (their answers are
    /// given, and go out in the next uplink). `network_now` is the
    /// network's time, when it has told it.
    fn take_downlink(
        &mut self,
        now: Duration,
        network_now: Option<Duration>,
        state: &DeviceState,
    ) -> Option<(Option<Decision>, Vec<McAnswer>)> {
        let mut taken = None;
        while let Some(downlink) = self.device.take_downlink() {
            if Some(downlink.fport) == self.multicast_setup_fport() {
                let answers = self.multicast_setup(now, network_now, &downlink.data);
                taken = Some((None, answers));
                continue;
            }
            let decided =
                self.scheduler
                    .on_downlink(now, downlink.fport, &downlink.data, &state.version);
            self.decided(now, &decided);
            taken = Some((Some(decided), Vec::new()));
        }
        taken
    }

    /// Bookkeeping for what the scheduler decided at `now`.
    fn decided(&mut self, now: Duration, decided: &Decision) {
        match decided {
            Decision::StatusRequested => self.status_due = true,
            Decision::Cancelled { .. } => self.last_result = OtaResult::Cancelled,
            Decision::Scheduled { session, .. } => {
                info!(campaign = session.campaign, opens_in = ?session.opens_at.saturating_sub(now), "WiFi session scheduled");
            }
            Decision::Ignored(reason) => debug!(?reason, "downlink ignored"),
            Decision::Malformed(error) => warn!(%error, "malformed command"),
        }
    }

    /// The multicast setup FPort, when the meter takes part.
    fn multicast_setup_fport(&self) -> Option<u8> {
        self.config.multicast.as_ref().map(|m| m.setup_fport)
    }

    /// Carries out a multicast setup frame received at `now` and queues
    /// its answers for the next uplink, as soon as the duty cycle allows
    /// (the network waits for them). A malformed frame is dropped whole,
    /// unanswered, as TS005 asks.
    fn multicast_setup(
        &mut self,
        now: Duration,
        network_now: Option<Duration>,
        frame: &[u8],
    ) -> Vec<McAnswer> {
        let Some(groups) = self.multicast.as_mut() else {
            return Vec::new();
        };
        let requests = match McRequest::decode_all(frame) {
            Ok(requests) => requests,
            Err(error) => {
                warn!(%error, "malformed multicast setup frame");
                return Vec::new();
            }
        };
        // The network's time when it has answered, else the meter's clock.
        let at = SetupTime {
            unix: network_now.unwrap_or(now),
            meter: now,
        };
        let answers = groups.handle(&requests, at);
        let mut encoded = Vec::new();
        for answer in &answers {
            answer
                .encode_into(&mut encoded)
                .expect("answers the meter builds encode");
        }
        info!(?answers, "multicast setup");
        self.multicast_answers = Some(encoded);
        self.next_uplink = Some(now);
        answers
    }

    /// Listens in a multicast group's class C window; a WAKE or CANCEL
    /// the group's frame carries goes to the scheduler as if it had come
    /// by unicast, and the first one acted on ends the window early.
    async fn listen<W, S, F, Tr, M>(
        &mut self,
        host: &mut Host<W, S, F, Tr, M>,
        window: ClassCWindow,
    ) -> Result<Event, TriggerError>
    where
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
    {
        let state = host.engine.meter().state().map_err(TriggerError::Meter)?;
        let closes = self.clock.instant(window.closes_at);
        let (clock, scheduler) = (self.clock, &mut self.scheduler);
        let mut decisions = Vec::new();
        let groups = self.multicast.as_mut().expect("windows come from groups");
        info!(group = window.group, "class C window opens");
        let heard = class_c::listen(
            self.device.get_mut_radio(),
            self.config.region,
            &window,
            closes,
            groups,
            |frame| {
                let decided =
                    scheduler.on_downlink(clock.now(), frame.fport, &frame.payload, &state.version);
                let acted = matches!(
                    decided,
                    Decision::Scheduled { .. } | Decision::Cancelled { .. }
                );
                decisions.push(decided);
                acted
            },
        )
        .await;
        groups.close_window(&window);
        let now = self.clock.now();
        for decided in &decisions {
            self.decided(now, decided);
        }
        self.save(host.engine.meter().storage(), 0)?;
        Ok(Event::ClassC {
            window,
            decisions,
            ignored: heard.ignored,
            radio_error: heard.radio_error,
        })
    }

    async fn wifi_session<W, S, F, Tr, M>(
        &mut self,
        host: &mut Host<W, S, F, Tr, M>,
        planned: WifiSession,
    ) -> Result<Event, TriggerError>
    where
        W: WifiLink,
        S: Storage,
        F: FirmwareSlots,
        Tr: Transport,
    {
        let Some(session) = self.scheduler.due(self.clock.now()) else {
            warn!(campaign = planned.campaign, "WiFi window missed");
            self.save(host.engine.meter().storage(), 0)?;
            return Ok(Event::SessionMissed { session: planned });
        };
        // At most once: the session is marked seen before it starts, so a
        // crash during the update does not repeat it.
        self.save(host.engine.meter().storage(), 0)?;
        let result = match self.config.networks.get(usize::from(session.network)) {
            None => OtaResult::WifiJoinFailed,
            Some(network) => {
                info!(campaign = session.campaign, ssid = %network.ssid, "WiFi session opens");
                let closes = self.clock.instant(session.closes_at);
                let outcome = update_within(
                    &mut host.wifi,
                    network,
                    closes,
                    Backoff::default(),
                    Some(self.config.session_overrun),
                    &host.engine,
                )
                .await;
                match &outcome {
                    Ok(outcome) => info!(?outcome, "WiFi session done"),
                    Err(error) => warn!(%error, "WiFi session failed"),
                }
                ota_result(&outcome)
            }
        };
        self.last_result = result;
        // Report at once, then continue the uplink rhythm from here.
        self.status_due = true;
        self.next_uplink = Some(self.clock.now());
        self.save(host.engine.meter().storage(), 0)?;
        Ok(Event::Session { session, result })
    }

    /// The STATUS uplink for a meter in `state`.
    fn status(&self, state: &DeviceState, battery: u8) -> StatusUplink {
        StatusUplink {
            version_tag: VersionTag::of(&state.version),
            pending_confirm: state
                .update
                .as_ref()
                .is_some_and(|journal| journal.phase == Phase::Applied),
            last_result: self.last_result,
            battery,
            campaign: self.scheduler.last_campaign(),
        }
    }

    /// Saves the session (its uplink counter advanced by `fcnt_ahead`),
    /// the schedule and the last result.
    fn save(&mut self, storage: &dyn Storage, fcnt_ahead: u32) -> Result<(), TriggerError> {
        let mut session = if self.joined {
            self.device.get_session().cloned()
        } else {
            None
        };
        if let Some(session) = &mut session {
            session.fcnt_up = session.fcnt_up.saturating_add(fcnt_ahead);
        }
        Saved {
            dev_eui: Some(self.config.dev_eui),
            session,
            scheduler: self.scheduler.state().clone(),
            last_result: self.last_result.code(),
            status_due: self.status_due,
            multicast: self
                .multicast
                .as_ref()
                .map(|m| m.state().clone())
                .unwrap_or_default(),
        }
        .save(storage)
        .map_err(TriggerError::Storage)
    }
}

/// Checks `config` and returns its data rate.
fn check_config(config: &TriggerConfig) -> Result<DR, TriggerError> {
    let error = |message: String| Err(TriggerError::Config(message));
    for (name, fport) in [
        ("command", config.command_fport),
        ("reading", config.reading_fport),
    ] {
        if !APP_FPORTS.contains(&fport) {
            return error(format!(
                "the {name} FPort {fport} is not an application port (1-223)"
            ));
        }
    }
    if config.command_fport == config.reading_fport {
        return error(format!(
            "readings and commands share FPort {}",
            config.command_fport
        ));
    }
    if let Some(multicast) = &config.multicast {
        let fport = multicast.setup_fport;
        if !APP_FPORTS.contains(&fport) {
            return error(format!(
                "the multicast setup FPort {fport} is not an application port (1-223)"
            ));
        }
        if fport == config.command_fport || fport == config.reading_fport {
            return error(format!(
                "multicast setup shares FPort {fport} with commands or readings"
            ));
        }
    }
    if config.join.max_attempts == 0 {
        return error("the join policy allows no attempt".to_owned());
    }
    if config.uplink_interval.is_zero() {
        return error("the uplink interval is zero".to_owned());
    }
    let rate = config.data_rate;
    if config.region.max_payload(rate, Direction::Uplink).is_none() {
        return error(format!("{} has no uplink DR{rate}", config.region));
    }
    data_rate(rate).ok_or_else(|| TriggerError::Config(format!("no data rate DR{rate}")))
}

/// lorawan-device's region for ours.
fn radio_region(region: Region) -> lorawan_device::Region {
    match region {
        Region::Eu868 => lorawan_device::Region::EU868,
        Region::Us915 => lorawan_device::Region::US915,
    }
}

/// lorawan-device's data rate for a number.
fn data_rate(rate: u8) -> Option<DR> {
    Some(match rate {
        0 => DR::_0,
        1 => DR::_1,
        2 => DR::_2,
        3 => DR::_3,
        4 => DR::_4,
        5 => DR::_5,
        6 => DR::_6,
        7 => DR::_7,
        8 => DR::_8,
        9 => DR::_9,
        10 => DR::_10,
        11 => DR::_11,
        12 => DR::_12,
        13 => DR::_13,
        14 => DR::_14,
        15 => DR::_15,
        _ => return None,
    })
}

/// A device error as text (radio errors only promise `Debug`).
fn device_error<E: fmt::Debug>(error: &async_device::Error<E>) -> String {
    match error {
        async_device::Error::Radio(error) => format!("radio: {error:?}"),
        async_device::Error::Mac(error) => format!("LoRaWAN MAC: {error:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_rate_number_maps_to_itself() {
        for rate in 0..=15u8 {
            assert_eq!(data_rate(rate).map(|dr| dr as u8), Some(rate));
        }
        assert!(data_rate(16).is_none());
    }
}
