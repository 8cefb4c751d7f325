//! A meter on the local file system: what `otavan device ...` runs.
//!
//! Device state lives in `ROOT/.otavan/`; everything else under `ROOT` is
//! the meter's file system. One process at a time: opening a device takes
//! an exclusive lock on `ROOT/.otavan/lock`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use otavan_protocol::keys::{KeyRole, PublicKey};
use otavan_protocol::report_auth::MeterKey;
use otavan_protocol::{Manifest, Report, Version};

use crate::apply::ApplyStep;
use crate::clock::{Clock, SystemClock, SystemEntropy};
use crate::confirm::Confirmation;
use crate::engine::{Engine, EngineConfig, EngineError, Outcome};
use crate::health::{DefaultCheck, Evidence};
use crate::meter::{Meter, Recovery, Status};
use crate::path::{MeterPath, STATE_DIR};
use crate::slots::FileSlots;
use crate::state::DeviceState;
use crate::storage::{DirStorage, Storage};
use crate::transport::{
    Fetched, HttpTransport, HttpTransportConfig, Sink, Transport, TransportError,
};
use crate::trust::Anchor;
use crate::wifi::{Backoff, Credentials, HostWifi, SessionError, VanNetwork, update_within};

/// How long [`Device::update`] with a window may run past its close (a
/// download the engine resumes in the same cycle, a report) before it is
/// abandoned: the van has gone, the radio must go off.
pub const WINDOW_OVERRUN: Duration = Duration::from_secs(10);

/// Why a device command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The engine refused or failed; the meter is unchanged.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Joining the network or the update cycle failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The server URL is unusable.
    #[error("server: {0}")]
    Server(TransportError),
    /// The meter is already provisioned.
    #[error("{0} is already provisioned (remove its {STATE_DIR}/ to start over)")]
    AlreadyProvisioned(PathBuf),
    /// Both a release key and a root key were given.
    #[error("a meter trusts either a root key or a single release key, not both")]
    TwoAnchors,
    /// Another `otavan device` command holds the lock.
    #[error("another otavan process is using {0}")]
    Busy(PathBuf),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

/// Records `version` as installed and `image` (empty when `None`) as the
/// booted, confirmed firmware in slot A, trusting `anchor` (any server
/// when `None`). Works on any storage, so tests provision
/// fault-injecting ones the same way.
pub fn provision<S: Storage + Clone>(
    storage: &S,
    version: &Version,
    image: Option<&mut dyn Read>,
    anchor: Option<&Anchor>,
) -> io::Result<()> {
    let state_dir = MeterPath::parse(STATE_DIR).expect("valid");
    if !storage.exists(&state_dir)? {
        storage.create_dir(&state_dir)?;
    }
    let mut empty: &[u8] = &[];
    FileSlots::new(storage.clone()).provision(image.unwrap_or(&mut empty))?;
    if let Some(anchor) = anchor {
        anchor.save(storage)?;
    }
    DeviceState {
        version: version.clone(),
        update: None,
        highest_counter: 0,
        reverted: None,
        trusted_time: 0,
    }
    .save(storage)
}

/// What `otavan device init` records.
#[derive(Debug, Clone, Default)]
pub struct InitOptions<'a> {
    /// The image the meter runs now (an empty slot without one).
    pub firmware: Option<&'a Path>,
    /// The release-signing public key (single-key mode).
    pub public_key: Option<&'a Path>,
    /// The root public key (root mode: the meter trusts the release keys
    /// the root certifies). Without this or `public_key` the meter trusts
    /// any server (Pycom mode).
    pub root_key: Option<&'a Path>,
}

/// `otavan device init`: provisions the meter at `root`.
pub fn init(root: &Path, version: &Version, options: &InitOptions<'_>) -> Result<(), DeviceError> {
    let storage = DirStorage::new(root).map_err(|source| io_error(root, source))?;
    if root.join(STATE_DIR).join("state.json").exists() {
        return Err(DeviceError::AlreadyProvisioned(root.to_path_buf()));
    }
    let read_key = |path: &Path, role| {
        let text = std::fs::read_to_string(path).map_err(|source| io_error(path, source))?;
        PublicKey::from_text_as(&text, role)
            .map_err(|e| io_error(path, io::Error::new(io::ErrorKind::InvalidData, e)))
    };
    let anchor = match (options.public_key, options.root_key) {
        (Some(_), Some(_)) => return Err(DeviceError::TwoAnchors),
        (Some(path), None) => Some(Anchor::Key(read_key(path, KeyRole::Release)?)),
        (None, Some(path)) => Some(Anchor::Root(read_key(path, KeyRole::Root)?)),
        (None, None) => None,
    };
    let mut image = match options.firmware {
        Some(path) => Some(File::open(path).map_err(|source| io_error(path, source))?),
        None => None,
    };
    let image = image.as_mut().map(|f| f as &mut dyn Read);
    provision(&storage, version, image, anchor.as_ref())
        .map_err(|source| io_error(&root.join(STATE_DIR), source))?;
    if anchor.is_some() {
        // Provisioning is trusted, like the key it installs: the meter
        // will never take the time to be earlier than now.
        let meter = Meter::new(storage.clone(), FileSlots::new(storage));
        meter.raise_trusted_time(SystemClock.now().as_secs())?;
    }
    Ok(())
}

/// A provisioned meter, locked for this process.
pub struct Device {
    storage: DirStorage,
    _lock: File,
    report_key: Option<MeterKey>,
    apply_time: Duration,
}

impl Device {
    /// Opens and locks the meter at `root`, then recovers any update a
    /// power cut interrupted.
    pub fn open(root: &Path) -> Result<(Device, Recovery), DeviceError> {
        let storage = DirStorage::new(root).map_err(|source| io_error(root, source))?;
        let state_dir = root.join(STATE_DIR);
        if !state_dir.join("state.json").exists() {
            return Err(EngineError::NotProvisioned.into());
        }
        let lock_path = state_dir.join("lock");
        let lock = File::create(&lock_path).map_err(|source| io_error(&lock_path, source))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DeviceError::Busy(root.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io_error(&lock_path, source)),
        }
        let device = Device {
            storage,
            _lock: lock,
            report_key: None,
            apply_time: Duration::ZERO,
        };
        let recovery = device.meter().recover()?;
        Ok((device, recovery))
    }

    /// Signs this meter's reports with `key` (its report key, derived at
    /// provisioning for the device id it reports as).
    pub fn with_report_key(mut self, key: MeterKey) -> Device {
        self.report_key = Some(key);
        self
    }

    /// Spreads each apply's file steps over `time`, as a meter's flash
    /// writes take (the rehearsal's `wifi.apply_s`): the steps are the
    /// same, only slower, so a power cut can land between them the way it
    /// does on a meter (the drive-by's cuts, bench/driveby.sh).
    pub fn with_apply_time(mut self, time: Duration) -> Device {
        self.apply_time = time;
        self
    }

    /// The transport to the van at `server`, signing with the report key.
    fn transport(&self, server: &str) -> Result<HttpTransport, DeviceError> {
        let mut config = HttpTransportConfig::new(server);
        config.report_key = self.report_key.clone();
        HttpTransport::new(config).map_err(DeviceError::Server)
    }

    /// An update against the otavan (or Pycom) server at `server`: one
    /// cycle, and more while `window` lasts when a cut link failed one
    /// ([`update_within`]), abandoned [`WINDOW_OVERRUN`] after the window
    /// closes; a zero window makes one attempt, however long it takes.
    pub async fn update(
        &self,
        server: &str,
        config: EngineConfig,
        window: Duration,
    ) -> Result<Outcome, DeviceError> {
        let transport = self.transport(server)?;
        let mut engine = Engine::new(self.meter(), transport, config, SystemClock, SystemEntropy);
        if !self.apply_time.is_zero() {
            let time = self.apply_time;
            engine = engine.observing(move |step: &ApplyStep<'_>| {
                std::thread::sleep(time / step.total.max(1) as u32);
            });
        }
        // A Linux meter is already on its network: joining is immediate.
        let network = VanNetwork {
            ssid: "host".into(),
            credentials: Credentials::Open,
        };
        let closes = Instant::now() + window;
        let overrun = (!window.is_zero()).then_some(WINDOW_OVERRUN);
        Ok(update_within(
            &mut HostWifi,
            &network,
            closes,
            Backoff::default(),
            overrun,
            &engine,
        )
        .await?)
    }

    /// The meter's status.
    pub fn status(&self) -> Result<Status, DeviceError> {
        Ok(self.meter().status()?)
    }

    /// A start of the meter ([`Engine::boot`]): counts it while an update
    /// is on trial, reverts the update when its starts ran out, else runs
    /// the self-test and confirms when it passes.
    pub async fn boot(&self, trial: &Trial<'_>) -> Result<Confirmation, DeviceError> {
        Ok(self.trial_engine(trial)?.boot().await?)
    }

    /// Runs the self-test of an update on trial now
    /// ([`Engine::self_test`]): confirms when it passes, reverts when it
    /// fails.
    pub async fn check(&self, trial: &Trial<'_>) -> Result<Confirmation, DeviceError> {
        Ok(self
            .trial_engine(trial)?
            .self_test(Evidence::default())
            .await?)
    }

    fn trial_engine(
        &self,
        trial: &Trial<'_>,
    ) -> Result<Engine<DirStorage, FileSlots<DirStorage>, Van>, DeviceError> {
        let van = match trial.server {
            Some(server) => Van::Server(self.transport(server)?),
            None => Van::Absent,
        };
        let mut config = EngineConfig::new(trial.device_id);
        config.max_boots = trial.max_boots;
        let engine = Engine::new(self.meter(), van, config, SystemClock, SystemEntropy);
        Ok(engine.checking(trial.check.clone()))
    }

    /// Confirms the pending update.
    pub fn confirm(&self) -> Result<Version, DeviceError> {
        Ok(self.meter().confirm()?)
    }

    /// Rolls the pending update back.
    pub fn rollback(&self) -> Result<Version, DeviceError> {
        Ok(self.meter().rollback()?)
    }

    fn meter(&self) -> Meter<DirStorage, FileSlots<DirStorage>> {
        Meter::new(self.storage.clone(), FileSlots::new(self.storage.clone()))
    }
}

/// How `otavan device boot` and `check` judge an update on trial.
#[derive(Debug, Clone)]
pub struct Trial<'a> {
    /// The van to tell of a revert (none: the next `update` tells it).
    pub server: Option<&'a str>,
    /// The identifier in reports.
    pub device_id: &'a str,
    /// The self-test. A Linux meter has no LoRaWAN radio here, so the
    /// CLI's needs no uplink.
    pub check: DefaultCheck,
    /// Starts an update may take unconfirmed.
    pub max_boots: u32,
}

/// The van a trial reports to, if any.
enum Van {
    Server(HttpTransport),
    Absent,
}

impl Van {
    fn absent(what: &str) -> TransportError {
        TransportError::Connection(format!("{what}: no server given (--server)"))
    }
}

impl Transport for Van {
    async fn fetch_manifest(&self, current: &Version) -> Result<Option<Manifest>, TransportError> {
        match self {
            Van::Server(http) => http.fetch_manifest(current).await,
            Van::Absent => Err(Van::absent("GET /manifest.json")),
        }
    }

    async fn fetch(
        &self,
        url: &str,
        from: u64,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, TransportError> {
        match self {
            Van::Server(http) => http.fetch(url, from, sink).await,
            Van::Absent => Err(Van::absent(url)),
        }
    }

    async fn send_report(&self, report: &Report) -> Result<(), TransportError> {
        match self {
            Van::Server(http) => http.send_report(report).await,
            Van::Absent => Err(Van::absent("POST /report")),
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> DeviceError {
    DeviceError::Io {
        path: path.to_path_buf(),
        source,
    }
}
