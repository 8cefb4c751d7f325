//! One live meter: its own file system and A/B slots in a directory,
//! provisioned at its source version from the release tree, the real
//! client engine, and the real LoRaWAN stack (`LoraTrigger` over
//! lorawan-device and the simulated network). Power cuts go through the
//! fault-injecting storage, armed at a step of the apply drawn from the
//! steps the engine announces; after one the meter reboots and recovers
//! like a real one.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use otavan_client::apply::{ApplyObserver, ApplyStep};
use otavan_client::clock::{Entropy, MeterClock};
use otavan_client::engine::{Engine, EngineConfig};
use otavan_client::fault::FaultStorage;
use otavan_client::lora::multicast::Ignored;
use otavan_client::lora::{
    DEFAULT_MULTICAST_SETUP_FPORT, Decision, Event, Host, LoraTrigger, MulticastConfig,
    TriggerConfig,
};
use otavan_client::meter::Meter;
use otavan_client::slots::{FileSlots, FirmwareSlots};
use otavan_client::storage::{DirStorage, Storage};
use otavan_client::trust::Anchor;
use otavan_client::wifi::{Credentials, VanNetwork};
use otavan_loranet::{DeviceKeys, NetworkServer, SimRadio, SimTimer};
use otavan_protocol::Version;
use otavan_protocol::lora::multicast::McRootKey;
use otavan_protocol::lora::{DEFAULT_FPORT, OtaResult};
use otavan_protocol::region::Region;
use otavan_protocol::report_auth::MeterKey;
use tokio::time::sleep_until;

use super::van::{VanServer, VanTransport};
use super::wifi::VanWifi;
use super::world::LiveWorld;
use crate::random::{Purpose, Stream};
use crate::simulation::Cause;
use otavan_planning::time::{Time, secs};

/// The storage of a live meter.
pub type LiveStorage = FaultStorage<DirStorage>;

/// The wall-clock time of the campaign's t = 0 on the meters' clocks
/// (2026-01-01T00:00:00Z; any fixed instant works).
pub const WALL_EPOCH: Duration = Duration::from_secs(1_767_225_600);

/// What the trigger drives on a live meter.
type LiveHost = Host<VanWifi, LiveStorage, FileSlots<LiveStorage>, VanTransport, fn() -> Vec<u8>>;

/// How long a meter takes to boot again after a power cut.
const REBOOT: Time = secs(30);

/// What a live meter is built from.
#[derive(Clone)]
pub struct MeterSetup {
    /// The meter's number.
    pub m: usize,
    /// Its directory.
    pub root: PathBuf,
    /// Its LoRaWAN identity.
    pub keys: DeviceKeys,
    /// The region.
    pub region: Region,
    /// Its uplink data rate.
    pub data_rate: u8,
    /// Time between its uplinks.
    pub uplink_interval: Duration,
    /// The version it should end at.
    pub target: Version,
    /// Probability that an apply is cut by a power failure.
    pub power_cut: f64,
    /// The campaign's end.
    pub end: Time,
    /// When the meter powers up (spreads the joins).
    pub starts_at: Time,
    /// The run's seed.
    pub seed: u64,
    /// The key it signs its reports with, derived at provisioning from the
    /// run's fleet secret.
    pub report_key: MeterKey,
    /// Its multicast root key, when WAKEs go by multicast.
    pub multicast: Option<McRootKey>,
}

/// The meter's id in reports: its DevEUI.
pub fn device_id(keys: &DeviceKeys) -> String {
    otavan_loranet::keys::eui_hex(&keys.dev_eui)
}

/// Provisions `root` at `version`: the version's files from the release
/// tree (`source`, its folder) and `image` as the booted firmware,
/// trusting `trust` (any van when `None`).
///
/// # Errors
///
/// The I/O error of the file that could not be copied or written.
pub fn provision(
    root: &Path,
    source: &Path,
    version: &Version,
    image: Option<&Path>,
    trust: Option<&Anchor>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    copy_tree(source, root)?;
    let storage = DirStorage::new(root)?;
    let mut file = image.map(std::fs::File::open).transpose()?;
    let reader = file.as_mut().map(|f| f as &mut dyn std::io::Read);
    otavan_client::device::provision(&storage, version, reader, trust)
}

/// Copies the files and folders under `from` into `to`.
///
/// # Errors
///
/// The first I/O error.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs meter `setup.m` until the campaign ends.
pub async fn run(
    setup: MeterSetup,
    world: Rc<LiveWorld>,
    network: NetworkServer,
    server: VanServer,
) {
    let m = setup.m;
    sleep_until(world.instant(setup.starts_at)).await;
    let mut rng = Stream::new(setup.seed, Purpose::Behaviour, m as u64);
    let mut attempts = Stream::new(setup.seed, Purpose::Attempts, m as u64);
    let dir = DirStorage::new(&setup.root).expect("the meter's directory exists");
    let mut boot_seed = setup.seed ^ (m as u64).wrapping_mul(0x9E37_79B9);
    loop {
        let storage = FaultStorage::new(dir.clone(), None);
        let meter = Meter::new(storage.clone(), FileSlots::new(storage.clone()));
        if meter.recover().is_err() {
            world.incident(m, Cause::PowerCut);
            return;
        }
        // The meter's clock: the campaign's virtual time on its calendar.
        let clock = MeterClock::starting_at(WALL_EPOCH + Duration::from_micros(world.now()));
        let transport = VanTransport::new(
            Rc::clone(&world),
            server.clone(),
            m,
            setup.report_key.clone(),
        );
        let config = EngineConfig::new(device_id(&setup.keys));
        let mut engine = Engine::new(meter, transport, config, clock, attempts);
        // A start: a version on trial counts it, and is reverted when its
        // starts ran out, as on a meter.
        if engine.boot().await.is_err() {
            world.incident(m, Cause::PowerCut);
            return;
        }
        if let Ok(state) = engine.meter().state()
            && state.version == setup.target
        {
            let mut log = world.logs[m].borrow_mut();
            log.updated_at.get_or_insert(world.now());
            match state.update {
                // A cut came after the new version had confirmed itself.
                None => return,
                // A cut came after the commit, before the van heard.
                Some(journal) if !journal.seen.van_report => log.updated_unreported = true,
                Some(_) => {}
            }
        }
        if rng.chance(setup.power_cut) {
            engine = engine.observing(PowerCut {
                storage: storage.clone(),
                at: rng.uniform(),
            });
        }
        let host = Host {
            engine,
            wifi: VanWifi::new(Rc::clone(&world), m, rng.clone()),
            sensors: reading as fn() -> Vec<u8>,
        };
        boot_seed = boot_seed.wrapping_add(1);
        let cut = drive(&setup, &world, &network, host, &storage, clock, boot_seed).await;
        if !cut {
            return;
        }
        // Power failed: the meter is off for a while, then boots and
        // recovers from whatever the cut left on its storage.
        world.incident(m, Cause::PowerCut);
        world.logs[m].borrow_mut().power_cuts += 1;
        let back = world.now() + REBOOT;
        if back >= setup.end {
            return;
        }
        sleep_until(world.instant(back)).await;
        rng = Stream::new(setup.seed ^ back, Purpose::Behaviour, m as u64);
        attempts = Stream::new(setup.seed ^ back, Purpose::Attempts, m as u64);
    }
}

/// A live meter's engine names its attempts from its own seeded stream.
impl Entropy for Stream {
    fn next_u64(&mut self) -> u64 {
        Stream::next_u64(self)
    }
}

/// Cuts a meter's power at the start of one step of its next apply: the
/// step a share `at` (0..1) of the way through the apply's steps, from
/// saving the journal to the commit, as the engine announces them. The cut
/// hits the step's first storage operation, so the apply never commits:
/// the meter reboots and recovers to its old version.
struct PowerCut {
    storage: LiveStorage,
    at: f64,
}

impl ApplyObserver for PowerCut {
    fn before(&self, step: &ApplyStep<'_>) {
        if step.index == (self.at * step.total as f64) as usize {
            self.storage.arm(0);
        }
    }
}

/// Steps the trigger until the campaign ends (`false`) or the power fails
/// (`true`).
async fn drive(
    setup: &MeterSetup,
    world: &LiveWorld,
    network: &NetworkServer,
    mut host: LiveHost,
    storage: &LiveStorage,
    clock: MeterClock,
    seed: u64,
) -> bool {
    let m = setup.m;
    let config = trigger_config(setup);
    let trigger = LoraTrigger::new(
        config,
        SimRadio::new(network.clone()),
        SimTimer::new(),
        clock,
        seed,
        storage,
    );
    let Ok(mut trigger) = trigger else {
        return storage.is_cut();
    };
    let end = world.instant(setup.end);
    while clock.instant(trigger.next_action_at()) < end {
        let event = trigger.step(&mut host).await;
        world.steps.set(world.steps.get() + 1);
        if storage.is_cut() {
            return true;
        }
        match event {
            Ok(Event::Uplink {
                downlink: Some(Decision::Scheduled { .. }),
                ..
            }) => world.logs[m].borrow_mut().downlinks += 1,
            Ok(Event::ClassC {
                window,
                decisions,
                ignored,
                ..
            }) => {
                // The receiver was on from the window's opening until now.
                let opened = window.opens_at.saturating_sub(WALL_EPOCH).as_micros() as Time;
                world.spend(m, world.lora_rx_a, world.now().saturating_sub(opened));
                let mut frames = world.class_c.borrow_mut();
                frames.accepted += decisions.len() as u64;
                for reason in &ignored {
                    match reason {
                        Ignored::OtherAddress => frames.other_group += 1,
                        _ => frames.refused += 1,
                    }
                }
                if decisions
                    .iter()
                    .any(|d| matches!(d, Decision::Scheduled { .. }))
                {
                    world.logs[m].borrow_mut().downlinks += 1;
                }
            }
            Ok(Event::Session {
                result: OtaResult::Updated,
                ..
            }) => {
                // Installed: on trial until its self-test passes (the van
                // heard its report, then the status uplink goes out).
                world.logs[m]
                    .borrow_mut()
                    .updated_at
                    .get_or_insert(world.now());
            }
            _ => {}
        }
        if settled_at(host.engine.meter(), &setup.target) {
            // Confirmed: nothing left to do for the campaign.
            return false;
        }
    }
    false
}

/// Whether the meter runs `target`, confirmed (its self-test passed).
fn settled_at<S: Storage, F: FirmwareSlots>(meter: &Meter<S, F>, target: &Version) -> bool {
    meter
        .state()
        .is_ok_and(|s| s.version == *target && s.update.is_none())
}

fn trigger_config(setup: &MeterSetup) -> TriggerConfig {
    let van = VanNetwork {
        ssid: "otavan-van".into(),
        credentials: Credentials::Passphrase("drive-by".into()),
    };
    let mut config = TriggerConfig::new(
        setup.keys.dev_eui,
        setup.keys.app_eui,
        setup.keys.app_key,
        setup.region,
        vec![van],
    );
    config.command_fport = DEFAULT_FPORT;
    config.data_rate = setup.data_rate;
    config.uplink_interval = setup.uplink_interval;
    config.multicast = setup.multicast.map(|root| MulticastConfig {
        root,
        setup_fport: DEFAULT_MULTICAST_SETUP_FPORT,
    });
    config
}

fn reading() -> Vec<u8> {
    vec![0x01, 0x02, 0x03, 0x04]
}
