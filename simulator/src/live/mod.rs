//! Live rehearsals (`otavan rehearse --live`): the simulator drives the
//! code that ships.
//!
//! The analytic mode's world (meters, vans, contacts, link budgets) stays;
//! what runs on it is real:
//! - every meter is the real client ([`otavan_client::Engine`] over its
//!   own directory with A/B slots, behind the fault-injecting storage)
//!   provisioned at its source version from the scenario's release tree,
//!   and the real LoRaWAN stack (`LoraTrigger`, lorawan-device) joining and
//!   sending uplinks through the simulated network server
//!   ([`otavan_loranet::NetworkServer`], real frames, keys and MICs);
//! - the operator's planner ([`plan`]) queues each WAKE on that network
//!   server, from the uplinks it has seen;
//! - the van is the real otavan server's request handling and SQLite
//!   report store, called in-process ([`van`]); a meter can reach it only
//!   while the simulator says a van is in range ([`wifi`]), at its share of
//!   the access point, until the van leaves or the link drops.
//!
//! Everything runs on one thread in tokio's paused time, so days of
//! campaign take minutes. At the end [`check`] verifies every meter's
//! files and firmware and the report store.
//!
//! How one meter's data flows from WAKE to UPDATED: the planner queues the
//! WAKE -> the meter's next uplink (lorawan-device, SimRadio) reaches the
//! network server, which answers in RX1/RX2 with the WAKE -> the trigger's
//! scheduler opens a WiFi session at the WAKE's delay -> [`wifi::VanWifi`]
//! joins when a van is in range -> the engine fetches the manifest and
//! files through [`van::VanTransport`] from the server's `handle` ->
//! verifies, applies (maybe cut by a power failure), reports UPDATED to
//! the server's store -> the meter confirms its new image.

pub mod check;
pub mod meter;
pub mod multicast;
pub mod plan;
pub mod standing;
pub mod van;
pub mod wifi;
pub mod world;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use otavan_client::trust::Anchor;
use otavan_loranet::{DeviceKeys, NetworkConfig, NetworkServer};
use otavan_protocol::descriptor::KeyPair;
use otavan_protocol::region::{Direction, Modulation, Region};
use otavan_protocol::report_auth::FleetSecret;
use otavan_server::authenticity::ReportAuth;
use otavan_server::certify::Terms;
use otavan_server::sign::Signing;
use otavan_server::state::{IndexSettings, Release, Shared};
use otavan_store::reports::ReportStore;
use otavan_store::{SqliteBackend, VanId};
use serde::Serialize;

use crate::scenario::{Scenario, ScenarioError, WakeDelivery};
use crate::simulation::{MeterResult, Outcome, RunResult, Totals};
use crate::{Options, Rehearsal, plan_config, rehearse};
use otavan_planning::contacts::Contacts;
use otavan_planning::time::{Time, secs};

pub use check::Checks;

/// How to run a live rehearsal (beyond the scenario).
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// The analytic options (seed, patch cache).
    pub base: Options,
    /// Live meters (default: the scenario's `fleet.meters`).
    pub meters: Option<u32>,
    /// Where the meters' directories go (default: a fresh folder under
    /// `/dev/shm` when it exists, else the system's temporary folder);
    /// removed at the end.
    pub meters_dir: Option<PathBuf>,
    /// Where the van's report database goes (`van.db`).
    pub out_dir: PathBuf,
    /// Write every LoRaWAN frame here (JSON lines with session keys).
    pub lora_log: Option<PathBuf>,
    /// Also run the analytic mode on the same scenario and put both in the
    /// report.
    pub compare: bool,
}

/// Why a live rehearsal could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The scenario is not usable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// Live meters need a real release tree.
    #[error(
        "a live rehearsal needs [release] release_dir: meters are provisioned from its version folders"
    )]
    NoReleaseTree,
    /// A meter's source version has no folder in the release tree.
    #[error("fleet version {0} has no folder in the release tree")]
    UnknownSource(String),
    /// Setting up files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The van server could not start.
    #[error("the van server: {0}")]
    Server(String),
}

/// The live part of `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSummary {
    /// Meters that ran the real code.
    pub meters: u64,
    /// Trigger steps (joins, uplinks, WiFi sessions), all meters.
    pub trigger_steps: u64,
    /// LoRaWAN uplinks the network server accepted.
    pub uplinks: u64,
    /// Joins it accepted.
    pub joins: u64,
    /// Power cuts the meters went through.
    pub power_cuts: u64,
    /// The end-of-run checks.
    pub checks: Checks,
    /// Multicast WAKE, when the campaign used it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicast: Option<MulticastSummary>,
    /// Standing multicast sessions, when the campaign used them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standing: Option<standing::StandingSummary>,
}

/// How multicast WAKE went in a live rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct MulticastSummary {
    /// Groups (street segments of one van's pass).
    pub groups: u64,
    /// Meters given a group.
    pub grouped_meters: u64,
    /// Multicast WAKEs the gateways sent (one per group at most).
    pub wakes_sent: u64,
    /// What the meters heard in their class C windows.
    pub frames: world::ClassCFrames,
}

/// The analytic mode's figures on the same scenario, for comparison.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticSummary {
    /// Its `updated_fraction`.
    pub updated_fraction: f64,
    /// Its `time_to_90_s`.
    pub time_to_90_s: Option<f64>,
    /// Its `failures`.
    pub failures: BTreeMap<String, u64>,
    /// Its `physical_limit` (the same route and radio model: equal to the
    /// live run's).
    pub physical_limit: u64,
}

/// Runs `scenario` live; the report has the analytic mode's shape plus a
/// `live` section (and `analytic`, when asked).
///
/// # Errors
///
/// [`LiveError`] when the scenario, release tree or file system is not
/// usable. What goes wrong during the run is in the report.
pub fn rehearse_live(
    scenario: &Scenario,
    name: &str,
    options: &LiveOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<Rehearsal, LiveError> {
    if scenario.campaign.replan != crate::scenario::Replan::PerMeter {
        return Err(LiveError::Scenario(ScenarioError::Invalid {
            field: "campaign.replan".into(),
            message: "a live rehearsal plans each meter again after its miss (\"per-meter\"); \
                      \"after-pass\" is for the analytic mode"
                .into(),
        }));
    }
    let mut scenario = scenario.clone();
    if let Some(meters) = options.meters {
        scenario.fleet.meters = meters;
    }
    let Some(release_dir) = scenario.release.release_dir.clone() else {
        return Err(LiveError::NoReleaseTree);
    };
    let meters_dir =
        Workspace::new(options.meters_dir.clone()).map_err(|source| LiveError::Io {
            path: options
                .meters_dir
                .clone()
                .unwrap_or_else(|| "meters".into()),
            source,
        })?;
    let given = scenario.base_dir.join(release_dir);
    let given = std::fs::canonicalize(&given).map_err(|source| LiveError::Io {
        path: given.clone(),
        source,
    })?;
    let horizon = crate::horizon(&scenario);
    let (release_root, trust) = match &scenario.release.signing_key {
        None => (given, None),
        Some(key) => signed_copy(
            &given,
            &scenario.base_dir.join(key),
            &meters_dir.path.join("release"),
            signed_until(horizon),
        )?,
    };
    scenario.release.release_dir = Some(release_root.clone());
    let seed = options.base.seed;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LiveError::Io { path, source }
    };
    std::fs::create_dir_all(&options.out_dir).map_err(io(&options.out_dir))?;
    let db = options.out_dir.join("van.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    // The van's release, indexed once: it serves the meters and sizes the
    // report's updates.
    let settings = IndexSettings {
        root: release_root.clone(),
        target: None,
        exclude: vec![db.clone()],
        // Everything in memory: no file reads on the blocking pool.
        preload_bytes: u64::MAX,
        manifest_cache_bytes: otavan_server::manifest_cache::DEFAULT_BUDGET,
        patch_cache: options
            .base
            .patch_cache
            .clone()
            .filter(|_| scenario.release.deltas),
    };
    let release = Release::load(&settings).map_err(|e| LiveError::Server(e.to_string()))?;
    let sizes = crate::release::sizes_from_index(&release.index, &scenario);
    let crate::World {
        sizes,
        fleet,
        needs,
        radio,
        drives,
        contacts,
    } = crate::World::prepare_with(&scenario, seed, sizes)?;
    // The limit of the same route and radio model as the analytic mode's.
    let reach = crate::losses::reach(&scenario, &fleet, &radio, &needs, &contacts);
    let store = ReportStore::open(&db).map_err(|e| LiveError::Server(e.to_string()))?;
    let store = Arc::new(store);
    let van = VanId::new("rehearsal-van").expect("a valid van id");
    let label = db.display().to_string();
    let backend = SqliteBackend::new(Arc::clone(&store), van, label).inline();
    // Meters sign their reports and the van counts only verified ones, as
    // a fleet with `--require-signed-reports` runs.
    let report_secret = FleetSecret::from_bytes(LIVE_REPORT_SECRET);
    let auth = ReportAuth {
        secret: Some(report_secret.clone()),
        require_signed: true,
    };
    let shared = Arc::new(Shared::new(release, Arc::new(backend), settings).with_report_auth(auth));

    let mut setups = Vec::new();
    for (m, (spec, profile)) in fleet.meters.iter().zip(&fleet.profiles).enumerate() {
        let version = &fleet.versions[usize::from(profile.version)];
        if needs[usize::from(profile.version)].is_none() {
            continue;
        }
        let source = release_root.join(version.as_str());
        if !source.is_dir() {
            return Err(LiveError::UnknownSource(version.to_string()));
        }
        let root = meters_dir.path.join(format!("meter-{m:07}"));
        let image = shared
            .release
            .load()
            .index
            .firmware_for(version)
            .map(|(_, f)| f.disk_path.clone());
        meter::provision(&root, &source, version, image.as_deref(), trust.as_ref())
            .map_err(io(&root))?;
        let keys = DeviceKeys::simulated(m as u64 + 1);
        setups.push(meter::MeterSetup {
            m,
            root,
            keys,
            region: scenario.region(),
            data_rate: data_rate(scenario.region(), radio.sf(m)),
            uplink_interval: Duration::from_micros(spec.interval),
            target: sizes.target.clone(),
            power_cut: scenario.faults.power_cut_per_apply,
            end: horizon,
            starts_at: secs(m as u64 * 7 % 21_600),
            seed,
            report_key: report_secret.meter_key(&meter::device_id(&keys)),
            multicast: (scenario.campaign.wake != WakeDelivery::Unicast)
                .then(|| multicast::root_key(&keys)),
        });
    }

    let plan = plan_config(&scenario, &sizes);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(io(Path::new("tokio runtime")))?;
    let local = tokio::task::LocalSet::new();
    let (world, network_stats, wakes_planned, summaries) = local.block_on(&runtime, async {
        // Created inside the runtime: t = 0 is the paused clock's start, so
        // every deadline falls on the same timer tick in every run.
        let world = Rc::new(world::LiveWorld::new(
            &scenario,
            fleet.clone(),
            contacts,
            scenario.van.vans as usize,
        ));
        let network = NetworkServer::new(NetworkConfig {
            // The network's clock is the campaign's, like the meters':
            // signed meters ask it for the time (DeviceTimeReq).
            time: Some(meter::WALL_EPOCH),
            ..match scenario.region() {
                Region::Eu868 => NetworkConfig::eu868(seed),
                Region::Us915 => NetworkConfig::us915(seed),
            }
        });
        if let Some(path) = &options.lora_log
            && let Ok(file) = std::fs::File::create(path)
        {
            network.set_frame_log_writer(std::io::BufWriter::new(file));
        }
        // Uplinks reach the network as often as the link budget says.
        let success: HashMap<[u8; 8], f64> = setups
            .iter()
            .map(|s| (plan::eui_key(&s.keys.dev_eui), radio.uplink_success(s.m)))
            .collect();
        let mut draws = otavan_loranet::rng::SimRng::new(seed ^ 0x6c6f_7373);
        network.set_uplink_filter(move |info| match &info.dev_eui {
            Some(eui) => {
                draws.next_f64() < success.get(&plan::eui_key(eui)).copied().unwrap_or(1.0)
            }
            None => true,
        });
        let last: plan::LastUplinks = Rc::new(RefCell::new(vec![None; fleet.meters.len()]));
        let mut index = HashMap::new();
        for setup in &setups {
            network.register(setup.keys);
            index.insert(plan::eui_key(&setup.keys.dev_eui), setup.m);
        }
        tokio::task::spawn_local(plan::record_uplinks(
            Rc::clone(&world),
            network.clone(),
            Rc::clone(&last),
            index,
        ));
        let server = van::VanServer::new(Arc::clone(&shared));
        let members: Vec<usize> = setups.iter().map(|s| s.m).collect();
        let (groups, standing_groups) = match scenario.campaign.wake {
            WakeDelivery::Unicast => (Vec::new(), Vec::new()),
            WakeDelivery::Multicast => {
                let groups = multicast::groups(&world, &members, &plan, seed);
                (groups.into_iter().map(Rc::new).collect(), Vec::new())
            }
            WakeDelivery::Standing => {
                let groups = multicast::groups(&world, &members, &plan, seed);
                let standing = standing::plan(groups, &radio, scenario.region(), &plan);
                let groups: Vec<Rc<multicast::Group>> =
                    standing.iter().map(|g| Rc::new(g.group.clone())).collect();
                (groups, standing.into_iter().map(Rc::new).collect())
            }
        };
        multicast::register(&network, &groups);
        let mut group_of = HashMap::new();
        for group in &groups {
            for &m in &group.members {
                group_of.insert(m, Rc::clone(group));
            }
        }
        let mut standing_of: HashMap<usize, Rc<standing::StandingGroup>> = HashMap::new();
        for group in &standing_groups {
            for &m in &group.group.members {
                standing_of.insert(m, Rc::clone(group));
            }
        }
        let senders: Vec<_> = match scenario.campaign.wake {
            WakeDelivery::Standing => standing_groups
                .iter()
                .map(|group| {
                    tokio::task::spawn_local(standing::send_wakes(
                        Rc::clone(group),
                        Rc::clone(&world),
                        network.clone(),
                        plan,
                    ))
                })
                .collect(),
            _ => groups
                .iter()
                .map(|group| {
                    let sent = multicast::send_wake(
                        Rc::clone(group),
                        Rc::clone(&world),
                        network.clone(),
                        plan,
                    );
                    tokio::task::spawn_local(async move { u64::from(sent.await) })
                })
                .collect(),
        };
        let mut meters = Vec::new();
        let mut planners = Vec::new();
        for setup in setups.iter() {
            let interval = setup.uplink_interval.as_micros() as Time;
            let rx_delay = radio.uplink_airtime(setup.m) + secs(1);
            let planned = plan::PlannedMeter {
                m: setup.m,
                dev_eui: setup.keys.dev_eui,
                interval,
                rx_delay,
            };
            let (w, n, l) = (Rc::clone(&world), network.clone(), Rc::clone(&last));
            let m = setup.m;
            planners.push(
                match (standing_of.get(&m), group_of.get(&m), setup.multicast) {
                    (Some(group), _, Some(root)) => {
                        tokio::task::spawn_local(standing::serve_member(
                            multicast::Member { planned, root },
                            Rc::clone(group),
                            w,
                            n,
                            l,
                            plan,
                            horizon,
                        ))
                    }
                    (None, Some(group), Some(root)) => {
                        tokio::task::spawn_local(multicast::serve_member(
                            multicast::Member { planned, root },
                            Rc::clone(group),
                            w,
                            n,
                            l,
                            plan,
                            horizon,
                        ))
                    }
                    _ => tokio::task::spawn_local(plan::plan_meter(
                        planned, w, n, l, plan, horizon, 0,
                    )),
                },
            );
            meters.push(tokio::task::spawn_local(meter::run(
                setup.clone(),
                Rc::clone(&world),
                network.clone(),
                server.clone(),
            )));
        }
        let mut at = 0;
        while at < horizon {
            at = (at + secs(3600)).min(horizon);
            tokio::time::sleep_until(world.instant(at)).await;
            progress(
                otavan_planning::time::as_secs_f64(at)
                    / otavan_planning::time::as_secs_f64(horizon),
            );
        }
        for handle in meters {
            let _ = handle.await;
        }
        let mut wakes = 0;
        for handle in planners {
            wakes += handle.await.unwrap_or(0);
        }
        let mut frames = 0;
        for handle in senders {
            frames += handle.await.unwrap_or(0);
        }
        network.clear_frame_log_writer();
        let standing = (scenario.campaign.wake == WakeDelivery::Standing).then(|| {
            let (setup_frames, setup_airtime) =
                standing::setups_sent(&network.gateway_transmissions());
            standing::StandingSummary {
                groups: standing_groups.len() as u64,
                grouped_meters: standing_of.len() as u64,
                setup_frames,
                setup_airtime_s: setup_airtime.as_secs_f64(),
                wakes_sent: frames,
                frames: *world.class_c.borrow(),
            }
        });
        let multicast = (standing.is_none() && !groups.is_empty()).then(|| MulticastSummary {
            groups: groups.len() as u64,
            grouped_meters: group_of.len() as u64,
            wakes_sent: frames,
            frames: *world.class_c.borrow(),
        });
        (world, network.stats(), wakes, (multicast, standing))
    });
    let (multicast, standing) = summaries;
    drop(local);
    drop(runtime);

    let world = Rc::try_unwrap(world).unwrap_or_else(|_| panic!("every meter task has ended"));
    let checked: Vec<check::Checked<'_>> = setups
        .iter()
        .map(|s| check::Checked {
            root: &s.root,
            device_id: meter::device_id(&s.keys),
            source: &fleet.versions[usize::from(fleet.profiles[s.m].version)],
            updated_unreported: world.logs[s.m].borrow().updated_unreported,
        })
        .collect();
    let checks = check::check(&shared.release.load().index, &store, &checked);
    let meters: Vec<MeterResult> = fleet
        .profiles
        .iter()
        .enumerate()
        .map(|(m, profile)| {
            let log = world.logs[m].borrow();
            let outcome = if needs[usize::from(profile.version)].is_none() {
                Outcome::AlreadyCurrent
            } else if let Some(t) = log.updated_at {
                Outcome::Updated(t)
            } else if radio.sf(m).is_none() {
                Outcome::Failed(crate::simulation::Cause::NoLoraCoverage)
            } else {
                Outcome::Failed(log.cause.unwrap_or(crate::simulation::Cause::CampaignEnded))
            };
            MeterResult {
                outcome,
                bytes: log.bytes,
                sessions: log.sessions,
                downlinks: log.downlinks,
                energy_j: log.energy_j,
            }
        })
        .collect();
    let run = RunResult {
        meters,
        totals: Totals {
            events: world.steps.get(),
            wakes_planned,
            // A standing session's setups are the meters' installation,
            // not the campaign's.
            downlinks_sent: network_stats.downlinks_sent
                - standing.as_ref().map_or(0, |s| s.setup_frames),
            downlink_airtime: 0,
            incidents: world.incidents.borrow().clone(),
            woken_again: 0,
        },
        passes: Vec::new(),
    };
    let mut rehearsal = crate::World {
        sizes,
        fleet,
        needs,
        radio,
        drives,
        contacts: Contacts::default(),
    }
    .finish(&scenario, name, seed, reach, run);
    let report = &mut rehearsal.report;
    report.live = Some(LiveSummary {
        meters: setups.len() as u64,
        trigger_steps: world.steps.get(),
        uplinks: network_stats.uplinks_received,
        joins: network_stats.joins_accepted,
        power_cuts: world
            .logs
            .iter()
            .map(|l| u64::from(l.borrow().power_cuts))
            .sum(),
        checks,
        multicast,
        standing,
    });
    if options.compare {
        // The analytic model plans unicast WAKEs.
        let mut unicast = scenario.clone();
        unicast.campaign.wake = WakeDelivery::Unicast;
        let analytic = rehearse(&unicast, name, &options.base, &mut |_| {})?;
        report.analytic = Some(AnalyticSummary {
            updated_fraction: analytic.report.updated_fraction,
            time_to_90_s: analytic.report.time_to_90_s,
            failures: analytic.report.failures,
            physical_limit: analytic.report.physical_limit,
        });
    }
    Ok(rehearsal)
}

/// How long after the campaign's end its signed release stays valid. The
/// meters' clocks read the campaign's virtual time
/// ([`meter::WALL_EPOCH`] at t = 0), so the signature must cover the whole
/// campaign: a session opened just before the end still finishes (a WiFi
/// window lasts minutes), and a real meter's clock drifts (20 ppm is 12 s
/// a week). A day covers both with room to spare, as a release manager
/// would sign for a campaign, and is still short: a meter reading any
/// other clock than the campaign's would be caught refusing it.
const SIGNED_MARGIN: Duration = Duration::from_secs(86_400);

/// The expiry (Unix seconds) of the release signed for a campaign ending at
/// `horizon`.
fn signed_until(horizon: Time) -> u64 {
    (meter::WALL_EPOCH + Duration::from_micros(horizon) + SIGNED_MARGIN).as_secs()
}

/// The root key of a live rehearsal's signed release: it exists only
/// inside the run (a fixed seed, so the run stays a function of its
/// scenario), certifying the scenario's release key.
const LIVE_ROOT_SEED: [u8; 32] = *b"otavan live rehearsal root key..";

/// The fleet report secret of a live rehearsal: like its root key, it
/// exists only inside the run.
const LIVE_REPORT_SECRET: [u8; 32] = *b"otavan live rehearsal reports...";

/// Signs a copy of the release tree at `release` into `copy` as a release
/// manager would: the run's root key certifies the key in `key_file`
/// (`root.json`), which signs every version and the timestamp, all valid
/// until `expires` (Unix seconds). Returns the copy and the anchor meters
/// trust: the root key, so live meters verify the whole chain.
fn signed_copy(
    release: &Path,
    key_file: &Path,
    copy: &Path,
    expires: u64,
) -> Result<(PathBuf, Option<Anchor>), LiveError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LiveError::Io { path, source }
    };
    let text = std::fs::read_to_string(key_file).map_err(io(key_file))?;
    let keys = KeyPair::from_text(&text).map_err(|e| LiveError::Io {
        path: key_file.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })?;
    std::fs::create_dir_all(copy).map_err(io(copy))?;
    meter::copy_tree(release, copy).map_err(io(copy))?;
    let root = KeyPair::from_seed(LIVE_ROOT_SEED);
    let terms = Terms {
        keys: vec![keys.public()],
        expires,
        ..Terms::default()
    };
    otavan_server::certify::certify(copy, &root, &terms)
        .map_err(|e| LiveError::Server(format!("certifying the release key: {e}")))?;
    let signing = Signing {
        keys: &[&keys],
        now: meter::WALL_EPOCH.as_secs(),
        expires,
        timestamp_expires: expires,
    };
    otavan_server::sign::sign_release(copy, &signing)
        .map_err(|e| LiveError::Server(format!("signing the release: {e}")))?;
    Ok((copy.to_path_buf(), Some(Anchor::Root(root.public()))))
}

/// The uplink data rate for spreading factor `sf` at 125 kHz (DR0 without
/// coverage, or for a spreading factor the region has no uplink at).
fn data_rate(region: Region, sf: Option<u8>) -> u8 {
    sf.and_then(|sf| {
        let modulation = Modulation::Lora {
            sf,
            bandwidth_hz: 125_000,
        };
        region.data_rate(modulation, Direction::Uplink)
    })
    .unwrap_or(0)
}

/// The folder the meters live in, removed on drop.
struct Workspace {
    path: PathBuf,
}

impl Workspace {
    fn new(given: Option<PathBuf>) -> std::io::Result<Workspace> {
        let base = given.unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        });
        std::fs::create_dir_all(&base)?;
        let path = tempfile::Builder::new()
            .prefix("otavan-live-")
            .tempdir_in(&base)?
            .keep();
        Ok(Workspace { path })
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
