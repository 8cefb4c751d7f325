//! What request handlers share: the current release, the report store and
//! the counters.

use otavan_protocol::halt::Halt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use otavan_protocol::Version;
use tracing::{error, info, warn};

use crate::authenticity::ReportAuth;
use crate::crew_map::CrewPlan;
use crate::gpsd::Position;
use crate::halt_file::HaltFile;
use crate::index::{IndexError, ReleaseIndex};
use crate::manifest_cache::ManifestCache;
use crate::metrics::Metrics;
use crate::patches::build_patches;
use crate::preload::preload;
use otavan_store::ReportBackend;

/// How to (re)build the release index.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// The release root.
    pub root: PathBuf,
    /// Fixed target version; `None` means the highest version folder.
    pub target: Option<Version>,
    /// Files never to index or serve (the report database and its journals).
    pub exclude: Vec<PathBuf>,
    /// Bytes of release content to keep in memory.
    pub preload_bytes: u64,
    /// Where firmware patches are cached; `None` turns deltas off.
    pub patch_cache: Option<PathBuf>,
    /// Bytes of rendered manifests kept (see [`crate::manifest_cache`]).
    pub manifest_cache_bytes: usize,
}

/// One indexed release and everything derived from it. Replaced as a whole
/// on reload, so a request sees one consistent generation.
#[derive(Debug)]
pub struct Release {
    /// The files and their hashes.
    pub index: ReleaseIndex,
    /// Manifests rendered for this index.
    pub manifests: ManifestCache,
}

impl Release {
    /// Indexes the release root and preloads its hot files (blocking).
    pub fn load(settings: &IndexSettings) -> Result<Release, IndexError> {
        let started = std::time::Instant::now();
        let mut index =
            ReleaseIndex::build(&settings.root, settings.target.as_ref(), &settings.exclude)?;
        if let Some(cache) = &settings.patch_cache {
            let patches = build_patches(&index, cache)?;
            index.attach_patches(patches);
        }
        let preloaded = preload(&index, settings.preload_bytes);
        info!(
            root = %index.root().display(),
            target = %index.target(),
            versions = index.versions().count(),
            firmware_images = index.firmware().len(),
            files = index.file_count(),
            preloaded_bytes = preloaded,
            ms = started.elapsed().as_millis() as u64,
            "release indexed"
        );
        Ok(Release {
            index,
            manifests: ManifestCache::new(settings.manifest_cache_bytes),
        })
    }
}

/// State shared by every connection.
pub struct Shared {
    /// The release being served; swapped atomically on reload.
    pub release: ArcSwap<Release>,
    /// Where reports go (the van's SQLite file or the fleet's PostgreSQL).
    pub reports: Arc<dyn ReportBackend>,
    /// How report signatures are checked and counted.
    pub report_auth: ReportAuth,
    /// The halt from the halt file, as last read: its target is not
    /// offered.
    pub halt: ArcSwap<Option<Halt>>,
    /// The halt file to read again on SIGHUP ([`Shared::reread_halt`]).
    pub halt_file: Option<HaltFile>,
    /// Halted campaigns from the fleet database's `halts` table, as last
    /// read ([`Shared::refresh_halts`]).
    pub fleet_halts: ArcSwap<Vec<Halt>>,
    /// How to rebuild the release.
    pub settings: IndexSettings,
    /// Serialises reloads so two SIGHUPs do not index twice at once.
    reload_lock: tokio::sync::Mutex<()>,
    /// Requests, bytes, downloads, reports and reloads counted so far.
    pub metrics: Metrics,
    /// When this server started: its session, on the dashboard.
    pub started: SystemTime,
    /// The same instant, for uptime.
    pub started_instant: Instant,
    /// The van's latest fix (`--gpsd`; never set without it).
    pub position: Arc<Position>,
    /// The campaign the crew map draws (`--plan`).
    pub crew_plan: Option<Arc<CrewPlan>>,
}

impl Shared {
    /// State serving `release`, storing reports in `reports`.
    pub fn new(
        release: Release,
        reports: Arc<dyn ReportBackend>,
        settings: IndexSettings,
    ) -> Shared {
        Shared {
            release: ArcSwap::from_pointee(release),
            reports,
            report_auth: ReportAuth::default(),
            halt: ArcSwap::from_pointee(None),
            halt_file: None,
            fleet_halts: ArcSwap::from_pointee(Vec::new()),
            settings,
            reload_lock: tokio::sync::Mutex::new(()),
            metrics: Metrics::default(),
            started: SystemTime::now(),
            started_instant: Instant::now(),
            position: Arc::default(),
            crew_plan: None,
        }
    }

    /// This state checking report signatures as `auth` says (by default
    /// none are checked: signed reports are stored `unchecked`).
    pub fn with_report_auth(mut self, auth: ReportAuth) -> Shared {
        self.report_auth = auth;
        self
    }

    /// With the halt file `file` and `halt`, read from it: its target is
    /// not offered; `file` is read again on SIGHUP.
    pub fn with_halt_file(mut self, file: HaltFile, halt: Halt) -> Shared {
        self.halt_file = Some(file);
        self.take_halt(halt);
        self
    }

    /// Puts `halt`, from the halt file, in force.
    fn take_halt(&self, halt: Halt) {
        warn!(campaign = halt.campaign, target = %halt.target, reason = %halt.reason, "halted by the halt file: the target is not offered");
        self.halt.store(Arc::new(Some(halt)));
    }

    /// The halt of `target`, if a campaign for it is halted (by a halt
    /// file or the fleet database).
    pub fn halt_of(&self, target: &Version) -> Option<Halt> {
        let of = |h: &&Halt| h.target == target.as_str();
        if let Some(halt) = self.halt.load().as_ref().as_ref().filter(of) {
            return Some(halt.clone());
        }
        self.fleet_halts.load().iter().find(of).cloned()
    }

    /// Reads the halt file again, if there is one: a halt it verifies
    /// replaces the one read before; a refused or missing file changes
    /// nothing (logged), so a tampered file cannot lift a halt.
    pub fn reread_halt(&self) {
        let Some(file) = &self.halt_file else {
            return;
        };
        match file.read() {
            Ok(halt) => self.take_halt(halt),
            Err(e) => error!(error = %e, "halt file not taken; the halt read before stays"),
        }
    }

    /// Reads the fleet database's halts not resumed; on a failure the
    /// last ones read stay.
    pub async fn refresh_halts(&self) {
        match self.reports.active_halts().await {
            Ok(records) => {
                let halts: Vec<Halt> = records
                    .iter()
                    .map(|r| Halt::new(r.campaign, &r.target, &r.reason, 0))
                    .collect();
                if halts != **self.fleet_halts.load() {
                    for h in &halts {
                        tracing::warn!(campaign = h.campaign, target = %h.target, reason = %h.reason, "halted by the fleet database: the target is not offered");
                    }
                    self.fleet_halts.store(Arc::new(halts));
                }
            }
            Err(e) => error!(error = %e, "cannot read the fleet database's halts"),
        }
    }

    /// Re-indexes on the blocking pool and swaps the new release in. On
    /// failure the old release stays in service.
    pub async fn reload(self: &Arc<Self>) -> Result<(), IndexError> {
        let _guard = self.reload_lock.lock().await;
        let settings = self.settings.clone();
        let loaded = tokio::task::spawn_blocking(move || Release::load(&settings))
            .await
            .expect("index task does not panic");
        match loaded {
            Ok(release) => {
                self.release.store(Arc::new(release));
                self.metrics.reloads.inc();
                Ok(())
            }
            Err(e) => {
                self.metrics.reload_failures.inc();
                error!(error = %e, "reload failed; still serving the previous release");
                Err(e)
            }
        }
    }
}
