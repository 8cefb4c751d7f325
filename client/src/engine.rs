//! The update engine: one update cycle over a transport.

use std::io;
use std::sync::{Mutex, PoisonError};

use otavan_protocol::{Manifest, Report, UpdateState, Version};
use tracing::{debug, info, warn};

use crate::apply::ApplyObserver;
use crate::clock::{Clock, Entropy, NetworkTime, trusted_now};
use crate::download::{DownloadError, stage};
use crate::health::{DefaultCheck, Evidence, HealthCheck};
use crate::meter::Meter;
use crate::plan::{Limits, PlanError, plan};
use crate::slots::{FirmwareSlots, Slot};
use crate::state::DeviceState;
use crate::storage::Storage;
use crate::transport::{Transport, TransportError};
use crate::trust::{Anchor, Checks, MeterView, verify, vouch};

/// How the engine behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The identifier in reports (DevEUI or serial).
    pub device_id: String,
    /// Bounds on what a manifest may ask for.
    pub limits: Limits,
    /// How often a cut download is resumed within one cycle.
    pub retries: u32,
    /// Starts an applied update may take unconfirmed before the meter
    /// reverts it ([`Engine::boot`]).
    pub max_boots: u32,
    /// Whether an unsigned meter may go to a version below the one it
    /// runs (its operator's choice). A signed meter never does.
    pub allow_downgrade: bool,
}

impl EngineConfig {
    /// Defaults for a meter called `device_id`.
    pub fn new(device_id: impl Into<String>) -> EngineConfig {
        EngineConfig {
            device_id: device_id.into(),
            limits: Limits::default(),
            retries: 2,
            max_boots: 3,
            allow_downgrade: false,
        }
    }
}

/// What an update cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server has nothing newer.
    UpToDate {
        /// The meter's version.
        version: Version,
    },
    /// The new version is installed, pending confirmation.
    Updated {
        /// The version before.
        from: Version,
        /// The version now.
        to: Version,
        /// Bytes downloaded in this cycle.
        bytes: u64,
    },
}

/// Why an operation failed. The meter is unchanged whenever one is returned.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The meter has no state yet.
    #[error("the meter is not provisioned (run `otavan device init`)")]
    NotProvisioned,
    /// An update awaits confirm or rollback.
    #[error("version {0} is installed and awaits confirm or rollback")]
    PendingConfirm(Version),
    /// Nothing to confirm or roll back.
    #[error("no update is pending")]
    NothingPending,
    /// The manifest could not be fetched.
    #[error("fetching the manifest: {0}")]
    Manifest(TransportError),
    /// The manifest asks for something unsafe or malformed.
    #[error("refused manifest: {0}")]
    Plan(#[from] PlanError),
    /// Downloads failed or did not verify.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The booted image is not the pending version's: the bootloader fell
    /// back to the old one.
    #[error(
        "refusing to confirm {version}: the meter booted slot {}, not {version}'s image",
        booted.name()
    )]
    BootMismatch {
        /// The pending version.
        version: Version,
        /// The slot the meter booted.
        booted: Slot,
    },
    /// Not enough free space for the update.
    #[error("not enough space: the update needs {needed} bytes, {available} are free")]
    NoSpace {
        /// Bytes needed (with the reserve).
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The update is not what the release manager signed.
    #[error("refused: {0}")]
    Untrusted(String),
    /// The target is not above the installed version.
    #[error("refused: version {to} is not above the installed {from} (downgrade refused{})", downgrade_hint(*.signed))]
    Downgrade {
        /// The installed version.
        from: Version,
        /// The version offered.
        to: Version,
        /// Whether the meter is signed (then no setting permits it).
        signed: bool,
    },
    /// The file system failed.
    #[error("storage: {0}")]
    Storage(#[from] io::Error),
}

impl EngineError {
    /// Whether another attempt may succeed as it is: the link failed (no
    /// connection, a cut, a server too busy), not the release or the meter.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Manifest(error)
            | EngineError::Download(DownloadError::Transport { source: error, .. }) => {
                error.is_transient()
            }
            _ => false,
        }
    }
}

/// What may still permit a refused downgrade.
fn downgrade_hint(signed: bool) -> &'static str {
    if signed {
        ""
    } else {
        "; --allow-downgrade permits it on an unsigned meter"
    }
}

/// Bytes moved by an update, for reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transferred {
    /// Downloaded so far.
    bytes: u64,
    /// The declared size of everything, with the full firmware image.
    full_bytes: u64,
}

/// A meter plus the link to the van: runs update cycles.
///
/// The time (for the expiry of signed releases) and the random numbers
/// (each attempt's name in reports) are inputs, never read from the
/// system behind the caller's back: a meter passes
/// [`SystemClock`](crate::clock::SystemClock) and
/// [`SystemEntropy`](crate::clock::SystemEntropy), a rehearsal its virtual
/// time and a seeded stream, a test whatever instant it checks. Expiry is
/// judged at [`trusted_now`]: the meter's clock counts only as far as it
/// makes the meter stricter; the network's time ([`Engine::network_time`],
/// set by the LoRa trigger) and the floor kept in the device state are
/// what the meter trusts.
pub struct Engine<S, F, T> {
    meter: Meter<S, F>,
    transport: T,
    config: EngineConfig,
    clock: Box<dyn Clock + Send + Sync>,
    entropy: Mutex<Box<dyn Entropy + Send>>,
    observer: Option<Box<dyn ApplyObserver + Send + Sync>>,
    health: Box<dyn HealthCheck + Send + Sync>,
    network_time: NetworkTime,
}

impl<S: Storage, F: FirmwareSlots, T: Transport> Engine<S, F, T> {
    /// An engine over `meter` that reads the time from `clock` and draws
    /// attempt names from `entropy`. Recover the meter before the first
    /// cycle.
    pub fn new(
        meter: Meter<S, F>,
        transport: T,
        config: EngineConfig,
        clock: impl Clock + Send + Sync + 'static,
        entropy: impl Entropy + Send + 'static,
    ) -> Engine<S, F, T> {
        Engine {
            meter,
            transport,
            config,
            clock: Box::new(clock),
            entropy: Mutex::new(Box::new(entropy)),
            observer: None,
            health: Box::new(DefaultCheck::default()),
            network_time: NetworkTime::new(),
        }
    }

    /// This engine, judging a new version on trial with `health` instead
    /// of [`DefaultCheck`] (see [`crate::confirm`]).
    pub fn checking(mut self, health: impl HealthCheck + Send + Sync + 'static) -> Engine<S, F, T> {
        self.health = Box::new(health);
        self
    }

    /// The health check judging a new version on trial.
    pub(crate) fn health(&self) -> &dyn HealthCheck {
        self.health.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The network's time this engine trusts: whoever hears the network
    /// (the LoRa trigger) sets it.
    pub fn network_time(&self) -> &NetworkTime {
        &self.network_time
    }

    /// This engine, telling `observer` of every apply step before it runs
    /// (see [`Meter::apply`]).
    pub fn observing(
        mut self,
        observer: impl ApplyObserver + Send + Sync + 'static,
    ) -> Engine<S, F, T> {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The meter, for local operations (status, confirm, rollback).
    pub fn meter(&self) -> &Meter<S, F> {
        &self.meter
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// One update cycle: manifest, plan, stage, verify, apply. Reports each
    /// state to the server; on failure reports FAILED with the reason and
    /// leaves the meter as it was (staged downloads are kept for resume).
    pub async fn update(&self) -> Result<Outcome, EngineError> {
        // A van in reach hears of a revert, or of a version on trial it
        // never heard, before anything else.
        self.report_revert().await?;
        self.retell_trial().await?;
        let state = self.meter.state()?;
        if let Some(journal) = &state.update {
            return Err(EngineError::PendingConfirm(journal.to.clone()));
        }
        let current = state.version.clone();
        let manifest = self
            .transport
            .fetch_manifest(&current)
            .await
            .map_err(EngineError::Manifest)?;
        let Some(manifest) = manifest else {
            return Ok(Outcome::UpToDate { version: current });
        };
        let attempt = Attempt(self.draw());
        let result = self.update_to(&state, &manifest, &attempt).await;
        if let Err(error) = &result {
            match Version::parse(&manifest.version) {
                Ok(to) => {
                    self.report(
                        &attempt,
                        &current,
                        &to,
                        UpdateState::Failed,
                        Some(error.to_string()),
                        None,
                    )
                    .await;
                }
                Err(_) => {
                    warn!(%error, "update failed; the manifest names no valid target to report")
                }
            }
        }
        result
    }

    async fn update_to(
        &self,
        state: &DeviceState,
        manifest: &Manifest,
        attempt: &Attempt,
    ) -> Result<Outcome, EngineError> {
        let current = &state.version;
        let Some(mut plan) = plan(manifest, current, &self.config.limits)? else {
            return Ok(Outcome::UpToDate {
                version: current.clone(),
            });
        };
        let anchor = Anchor::load(self.meter.storage())?;
        if plan.to < plan.from && (anchor.is_some() || !self.config.allow_downgrade) {
            return Err(EngineError::Downgrade {
                from: plan.from.clone(),
                to: plan.to.clone(),
                signed: anchor.is_some(),
            });
        }
        let verified = match &anchor {
            Some(anchor) => {
                let checks = Checks {
                    storage: self.meter.storage(),
                    version: current,
                    highest_counter: state.highest_counter,
                    now: self.trusted_now(state)?,
                };
                let verified = verify(&self.transport, manifest, anchor, &checks).await?;
                let view = MeterView {
                    storage: self.meter.storage(),
                    booted_sha256: self.meter.booted_sha256()?,
                };
                vouch(&mut plan, &verified, &view)?;
                Some(verified)
            }
            None => None,
        };
        self.meter.check_plan(&plan)?;
        let (from, to) = (&plan.from, &plan.to);
        info!(%from, %to, files = plan.files.len(), deletes = plan.deletes.len(), firmware = plan.firmware.is_some(), "updating");
        self.check_space(plan.space_needed())?;
        // What the report says was moved, beside what it would have cost
        // without firmware deltas.
        let full_bytes = plan.declared_bytes();
        let moved = |bytes| Transferred { bytes, full_bytes };
        self.report(
            attempt,
            from,
            to,
            UpdateState::Downloading,
            None,
            Some(moved(0)),
        )
        .await;
        let patch_source = match plan.usable_patch() {
            Some(patch) => self
                .meter
                .booted_image_matching(&patch.source_sha256, self.config.limits.max_patch_source)?,
            None => None,
        };
        let staged = stage(
            self.meter.storage(),
            self.meter.slots(),
            &self.transport,
            &plan,
            patch_source.as_deref(),
            self.config.retries,
        )
        .await?;
        let bytes = staged.received();
        // Verified while staged; files move by rename and the image is
        // already in its slot, so the install needs no new space.
        for state in [
            UpdateState::Downloaded,
            UpdateState::Verified,
            UpdateState::Updating,
        ] {
            self.report(attempt, from, to, state, None, Some(moved(bytes)))
                .await;
        }
        if let Some(verified) = &verified {
            verified.keep(self.meter.storage(), from)?;
        }
        let observer = self.observer.as_deref().map(|o| o as &dyn ApplyObserver);
        self.meter.apply(&staged, observer)?;
        debug!("installed and committed");
        let heard = self
            .report(
                attempt,
                from,
                to,
                UpdateState::Updated,
                None,
                Some(moved(bytes)),
            )
            .await;
        if heard {
            // The new version reached the van: evidence for its self-test.
            self.meter.record(Evidence::VAN_REPORT)?;
        }
        Ok(Outcome::Updated {
            from: from.clone(),
            to: to.clone(),
            bytes,
        })
    }

    /// The trusted time in Unix seconds; the network's time, when there is
    /// one, is first kept as the meter's floor.
    fn trusted_now(&self, state: &DeviceState) -> Result<u64, EngineError> {
        let network = self.network_time.now();
        if let Some(network) = network {
            self.meter.raise_trusted_time(network.as_secs())?;
        }
        let floor = std::time::Duration::from_secs(state.trusted_time);
        Ok(trusted_now(floor, network, self.clock.now()).as_secs())
    }

    /// A new random number from the engine's entropy.
    pub(crate) fn draw(&self) -> u64 {
        let mut entropy = self.entropy.lock().unwrap_or_else(PoisonError::into_inner);
        entropy.next_u64()
    }

    fn check_space(&self, needed: u64) -> Result<(), EngineError> {
        let needed = needed + self.config.limits.reserve;
        let available = self.meter.storage().free_space()?;
        if available < needed {
            return Err(EngineError::NoSpace { needed, available });
        }
        Ok(())
    }

    /// Posts a report; a van out of reach must not fail the update.
    /// Returns whether the van accepted it.
    pub(crate) async fn report(
        &self,
        attempt: &Attempt,
        from: &Version,
        to: &Version,
        state: UpdateState,
        error: Option<String>,
        transferred: Option<Transferred>,
    ) -> bool {
        let report = Report {
            device_id: self.config.device_id.clone(),
            from_version: from.clone(),
            to_version: to.clone(),
            state,
            error,
            bytes: transferred.map(|t| t.bytes),
            full_bytes: transferred.map(|t| t.full_bytes),
            report_id: Some(attempt.report_id(state)),
        };
        match self.transport.send_report(&report).await {
            Ok(()) => true,
            Err(error) => {
                warn!(%error, state = %state, "report not delivered");
                false
            }
        }
    }
}

/// One run of [`Engine::update`], named by 64 random bits, so the
/// server can tell a report re-sent from the same state reached again in
/// a later attempt (reports carry `report_id` = attempt + state).
pub(crate) struct Attempt(pub(crate) u64);

impl Attempt {
    fn report_id(&self, state: UpdateState) -> String {
        format!("{:016x}-{}", self.0, state.as_str())
    }
}
