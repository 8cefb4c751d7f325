//! The LoRaWAN trigger end to end, in virtual time: the real lorawan-device
//! stack over otavan-loranet's simulated radio and network server, a real
//! meter in a temp dir, and the van's release served from memory.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use otavan_client::clock::{Clock, MeterClock, SystemEntropy};
use otavan_client::device::provision;
use otavan_client::lora::{
    DEFAULT_MULTICAST_SETUP_FPORT, Decision, Event, Host, IgnoreReason, LoraTrigger, TriggerConfig,
    UplinkKind,
};
use otavan_client::slots::FileSlots;
use otavan_client::storage::DirStorage;
use otavan_client::transport::MemoryTransport;
use otavan_client::trust::Anchor;
use otavan_client::wifi::{Credentials, VanNetwork, WifiError, WifiLink};
use otavan_client::{Engine, EngineConfig, Meter};
use otavan_loranet::{DeviceKeys, NetworkConfig, NetworkServer, SimRadio, SimTimer};
use otavan_protocol::Version;
use otavan_protocol::descriptor::KeyPair;
use otavan_protocol::lora::multicast::{McAnswer, McRootKey};
use otavan_protocol::lora::{
    DEFAULT_FPORT, DownlinkCommand, OtaResult, StatusUplink, VersionTag, Wake,
};
use otavan_protocol::region::{Direction, Region};
use otavan_server::index::ReleaseIndex;
use tempfile::TempDir;
use tokio::time::Instant;

const OLD: &str = "1.0.0";
const NEW: &str = "1.1.0";
const HOUR: Duration = Duration::from_secs(3600);
/// Slack after the uplink a test waits for: the join and the first uplink
/// take a few minutes of duty-cycle silence at DR0.
const MARGIN: Duration = Duration::from_secs(10 * 60);
/// The meter's wall clock at the start of every test.
const EPOCH: Duration = Duration::from_secs(1_750_000_000);

/// A version's files: path and content.
type Files = Vec<(&'static str, Vec<u8>)>;

/// Two versions of a small meter tree and their firmware images, indexed by
/// the server's own code.
struct Release {
    _root: TempDir,
    index: ReleaseIndex,
    root: PathBuf,
}

fn content(tag: &str, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(29) ^ tag.as_bytes()[i % tag.len()])
        .collect()
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

impl Release {
    fn sample() -> Release {
        let dir = TempDir::new().unwrap();
        let root = dir.path().to_path_buf();
        for (version, files) in Release::files() {
            for (path, bytes) in files {
                write(&root.join(version), path, &bytes);
            }
        }
        for version in [OLD, NEW] {
            let image = content(&format!("firmware {version}"), 8_000);
            std::fs::write(root.join(format!("firmware_{version}.bin")), image).unwrap();
        }
        let index = ReleaseIndex::build(&root, None, &[]).unwrap();
        Release {
            _root: dir,
            index,
            root,
        }
    }

    fn files() -> [(&'static str, Files); 2] {
        [
            (
                OLD,
                vec![
                    ("flash/main.py", content("main 1.0.0", 1200)),
                    ("flash/lib/meter.py", content("meter 1.0.0", 2000)),
                ],
            ),
            (
                NEW,
                vec![
                    ("flash/main.py", content("main 1.1.0", 1300)),
                    ("flash/lib/meter.py", content("meter 1.1.0", 2100)),
                    ("flash/lib/tariff.py", content("tariff", 700)),
                ],
            ),
        ]
    }

    /// Signs every version with `keys` until `expires` (as `otavan release
    /// sign`) and indexes the release again.
    fn sign(&mut self, keys: &KeyPair, expires: u64) {
        let signing = otavan_server::sign::Signing {
            keys: &[keys],
            now: EPOCH.as_secs(),
            expires,
            timestamp_expires: expires,
        };
        otavan_server::sign::sign_release(&self.root, &signing).unwrap();
        self.index = ReleaseIndex::build(&self.root, None, &[]).unwrap();
    }

    /// The van's server, in memory: manifests for meters at OLD, every file.
    fn transport(&self) -> MemoryTransport {
        let old: Version = OLD.parse().unwrap();
        let manifest = otavan_server::manifest::build(&self.index, Some(&old), "van.local");
        let transport =
            MemoryTransport::new().with_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
        for (version, files) in Release::files() {
            for (path, bytes) in files {
                transport.set_file(&format!("/{version}/{path}"), bytes);
            }
            let image = std::fs::read(self.root.join(format!("firmware_{version}.bin"))).unwrap();
            transport.set_file(&format!("/firmware_{version}.bin"), image);
            let descriptor = format!("target_{version}.json");
            if let Ok(signed) = std::fs::read(self.root.join(&descriptor)) {
                transport.set_file(&format!("/{descriptor}"), signed);
            }
        }
        transport
    }

    fn image(&self, version: &str) -> Vec<u8> {
        std::fs::read(self.root.join(format!("firmware_{version}.bin"))).unwrap()
    }
}

/// A meter provisioned at `version` in a temp dir.
struct TestMeter {
    dir: TempDir,
}

impl TestMeter {
    fn provisioned(release: &Release, version: &str) -> TestMeter {
        TestMeter::provisioned_trusting(release, version, None)
    }

    fn provisioned_trusting(
        release: &Release,
        version: &str,
        anchor: Option<&Anchor>,
    ) -> TestMeter {
        let dir = TempDir::new().unwrap();
        let (_, files) = Release::files()
            .into_iter()
            .find(|(v, _)| *v == version)
            .unwrap();
        for (path, bytes) in files {
            write(dir.path(), path, &bytes);
        }
        let image = release.image(version);
        let storage = DirStorage::new(dir.path()).unwrap();
        provision(
            &storage,
            &version.parse().unwrap(),
            Some(&mut image.as_slice()),
            anchor,
        )
        .unwrap();
        TestMeter { dir }
    }

    fn storage(&self) -> DirStorage {
        DirStorage::new(self.dir.path()).unwrap()
    }

    fn meter(&self) -> Meter<DirStorage, FileSlots<DirStorage>> {
        Meter::new(self.storage(), FileSlots::new(self.storage()))
    }

    fn version(&self) -> String {
        self.meter().status().unwrap().version.to_string()
    }
}

/// When the WiFi radio joined and left, in tokio time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WifiCall {
    Join { ssid: String, at: Instant },
    Leave { at: Instant },
}

/// A WiFi radio that joins at once (or refuses, or hangs) and records its
/// calls.
#[derive(Clone, Default)]
struct RecordingWifi {
    calls: Rc<RefCell<Vec<WifiCall>>>,
    refuse: bool,
    /// Never finishes joining (a driver that ignores its deadline).
    hang: bool,
}

impl RecordingWifi {
    fn calls(&self) -> Vec<WifiCall> {
        self.calls.borrow().clone()
    }

    fn joins(&self) -> Vec<(String, Instant)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                WifiCall::Join { ssid, at } => Some((ssid, at)),
                WifiCall::Leave { .. } => None,
            })
            .collect()
    }
}

impl WifiLink for RecordingWifi {
    async fn join(
        &mut self,
        ssid: &str,
        _credentials: &Credentials,
        _deadline: Instant,
    ) -> Result<(), WifiError> {
        self.calls.borrow_mut().push(WifiCall::Join {
            ssid: ssid.to_owned(),
            at: Instant::now(),
        });
        if self.hang {
            std::future::pending::<()>().await;
        }
        if self.refuse {
            return Err(WifiError::Timeout {
                ssid: ssid.to_owned(),
            });
        }
        Ok(())
    }

    async fn leave(&mut self) {
        self.calls
            .borrow_mut()
            .push(WifiCall::Leave { at: Instant::now() });
    }
}

/// The meter's hourly reading.
fn reading() -> Vec<u8> {
    b"kWh=004217.5".to_vec()
}

type TestHost =
    Host<RecordingWifi, DirStorage, FileSlots<DirStorage>, MemoryTransport, fn() -> Vec<u8>>;
type TestTrigger = LoraTrigger<SimRadio, SimTimer>;

/// A network, one registered meter at OLD, and the van's release.
struct Rig {
    network: NetworkServer,
    keys: DeviceKeys,
    meter: TestMeter,
    transport: MemoryTransport,
    wifi: RecordingWifi,
    clock: MeterClock,
}

impl Rig {
    fn new() -> Rig {
        let release = Release::sample();
        let meter = TestMeter::provisioned(&release, OLD);
        Rig::with(
            NetworkConfig::eu868(5),
            &release,
            meter,
            MeterClock::starting_at(EPOCH),
        )
    }

    /// A rig on `network` for `meter`, serving `release`, the meter's
    /// clock `clock`.
    fn with(network: NetworkConfig, release: &Release, meter: TestMeter, clock: MeterClock) -> Rig {
        Rig::on(NetworkServer::new(network), 1, release, meter, clock)
    }

    /// Meter `n` of several on `network` (registered with
    /// [`DeviceKeys::simulated`]`(n)`).
    fn on(
        network: NetworkServer,
        n: u64,
        release: &Release,
        meter: TestMeter,
        clock: MeterClock,
    ) -> Rig {
        let keys = DeviceKeys::simulated(n);
        network.register(keys);
        Rig {
            network,
            keys,
            meter,
            transport: release.transport(),
            wifi: RecordingWifi::default(),
            clock,
        }
    }

    fn config(&self) -> TriggerConfig {
        let van = |ssid: &str| VanNetwork {
            ssid: ssid.to_owned(),
            credentials: Credentials::Passphrase("drive-by".to_owned()),
        };
        TriggerConfig::new(
            self.keys.dev_eui,
            self.keys.app_eui,
            self.keys.app_key,
            Region::Eu868,
            vec![van("van-0"), van("van-1")],
        )
    }

    /// A trigger (re)built from the meter's storage.
    fn trigger_with(&self, config: TriggerConfig, seed: u64) -> TestTrigger {
        LoraTrigger::new(
            config,
            SimRadio::new(self.network.clone()),
            SimTimer::new(),
            self.clock,
            seed,
            &self.meter.storage(),
        )
        .unwrap()
    }

    fn trigger(&self, seed: u64) -> TestTrigger {
        self.trigger_with(self.config(), seed)
    }

    fn host(&self) -> TestHost {
        Host {
            engine: Engine::new(
                self.meter.meter(),
                self.transport.clone(),
                EngineConfig::new("meter-1"),
                self.clock,
                SystemEntropy,
            ),
            wifi: self.wifi.clone(),
            sensors: reading as fn() -> Vec<u8>,
        }
    }

    fn enqueue(&self, command: DownlinkCommand) {
        self.network
            .enqueue(self.keys.dev_eui, DEFAULT_FPORT, &command.encode(), false)
            .unwrap();
    }

    /// The meter's uplinks the network accepted, with their end instants.
    fn uplinks(&self) -> Vec<(Instant, Option<u8>, Vec<u8>)> {
        let start = self.network.started_at();
        self.network
            .uplinks_of(self.keys.dev_eui)
            .into_iter()
            .map(|u| (start + u.at, u.fport, u.payload))
            .collect()
    }

    /// The STATUS uplinks the network accepted.
    fn statuses(&self) -> Vec<StatusUplink> {
        self.uplinks()
            .into_iter()
            .filter(|(_, fport, _)| *fport == Some(DEFAULT_FPORT))
            .map(|(_, _, payload)| StatusUplink::decode(&payload).unwrap())
            .collect()
    }
}

fn wake(campaign: u16, delay: Duration, network: u8, version: Option<&str>) -> DownlinkCommand {
    let tag = version.map(|v| VersionTag::of(&v.parse().unwrap()));
    DownlinkCommand::Wake(
        Wake::new(campaign, delay, Duration::from_secs(15 * 60), network, tag).unwrap(),
    )
}

fn tag(version: &str) -> VersionTag {
    VersionTag::of(&version.parse().unwrap())
}

/// The decisions of the downlinks in `events`.
fn decisions(events: &[Event]) -> Vec<Decision> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Uplink {
                downlink: Some(d), ..
            } => Some(d.clone()),
            _ => None,
        })
        .collect()
}

fn uplink_kinds(events: &[Event]) -> Vec<UplinkKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Uplink { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

/// Each meter's multicast root key (from its own GenAppKey).
fn root(n: u64) -> McRootKey {
    McRootKey::from_gen_app_key(&[n as u8; 16])
}

/// The multicast setup answers the meter sent on the setup FPort, and when
/// the uplink before them ended (the setup came in its receive windows).
fn setup_answers(rig: &Rig) -> (Instant, Vec<McAnswer>) {
    let uplinks = rig.uplinks();
    let first = uplinks
        .iter()
        .position(|(_, fport, _)| *fport == Some(DEFAULT_MULTICAST_SETUP_FPORT))
        .expect("the meter answered a setup");
    let answers = uplinks
        .iter()
        .filter(|(_, fport, _)| *fport == Some(DEFAULT_MULTICAST_SETUP_FPORT))
        .flat_map(|(_, _, payload)| McAnswer::decode_all(payload).unwrap())
        .collect();
    (uplinks[first - 1].0, answers)
}

/// Runs every meter's trigger until `deadline`, together; each meter's
/// events.
async fn run_all(
    triggers: &mut [TestTrigger],
    hosts: &mut [TestHost],
    deadline: Instant,
) -> Vec<Vec<Event>> {
    let runs = (triggers.iter_mut().zip(hosts.iter_mut()))
        .map(|(trigger, host)| trigger.run_until(deadline, host));
    (futures::future::join_all(runs).await.into_iter())
        .map(|events| events.unwrap())
        .collect()
}

fn abs_diff(a: Instant, b: Instant) -> Duration {
    if a > b { a - b } else { b - a }
}

#[tokio::test(start_paused = true)]
async fn a_wake_opens_wifi_at_the_window_and_the_next_status_reports_the_update() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(11);
    let mut host = rig.host();
    let start = Instant::now();

    // Join, announce the version, then a reading every hour.
    let events = trigger
        .run_until(start + 3 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    assert_eq!(events[0], Event::Joined { attempt: 1 });
    use UplinkKind::{Reading, Status};
    assert_eq!(uplink_kinds(&events), [Status, Reading, Reading, Reading]);
    let uplinks = rig.uplinks();
    assert_eq!(uplinks.len(), 4);
    // Right after the join, as soon as the duty cycle allows.
    assert!(
        uplinks[0].0 - start < Duration::from_secs(200),
        "{:?}",
        uplinks[0].0 - start
    );
    for pair in uplinks.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            abs_diff(start + gap, start + HOUR) < Duration::from_secs(5),
            "{gap:?}"
        );
    }
    for (_, fport, payload) in &uplinks[1..] {
        assert_eq!((*fport, payload.clone()), (Some(1), reading()));
    }
    let first = rig.statuses()[0];
    assert_eq!(first.version_tag, tag(OLD));
    assert_eq!(first.last_result, OtaResult::None);
    assert!(!first.pending_confirm);
    assert_eq!(first.campaign, 0);
    assert!(rig.wifi.calls().is_empty());

    // The operator enqueues a WAKE: the window opens two hours after the
    // meter hears it, after its next uplink.
    rig.enqueue(wake(7, 2 * HOUR, 1, Some(NEW)));
    let events = trigger
        .run_until(start + 4 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    let [Decision::Scheduled { session, replaced }] = decisions(&events)[..] else {
        panic!("{events:?}");
    };
    assert_eq!((session.campaign, session.network, replaced), (7, 1, None));
    assert_eq!(
        session.closes_at - session.opens_at,
        Duration::from_secs(900)
    );
    let (heard_after, _, _) = *rig.uplinks().last().unwrap();
    let opens = trigger.clock().instant(session.opens_at);
    // Relative to reception: the WAKE arrives in a receive window 1-2 s
    // after the uplink ends.
    assert!(
        abs_diff(opens, heard_after + 2 * HOUR) <= Duration::from_secs(3),
        "opens {:?} after the uplink",
        opens - heard_after
    );
    assert_eq!(rig.network.queued(rig.keys.dev_eui), 0);

    // Hourly uplinks go on until the window, then the session runs.
    let events = trigger
        .run_until(start + 7 * HOUR, &mut host)
        .await
        .unwrap();
    let sessions: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Session { session, result } => Some((*session, *result)),
            _ => None,
        })
        .collect();
    assert_eq!(sessions, [(session, OtaResult::Updated)]);
    let joins = rig.wifi.joins();
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0].0, "van-1");
    assert!(
        abs_diff(joins[0].1, opens) < Duration::from_secs(1),
        "joined {:?} off the window",
        abs_diff(joins[0].1, opens)
    );
    assert!(matches!(
        rig.wifi.calls().last(),
        Some(WifiCall::Leave { .. })
    ));
    assert_eq!(rig.meter.version(), NEW);
    // The van heard the new version's report and the status uplink went
    // out: the meter confirmed itself (the status still said pending).
    assert!(!rig.meter.meter().status().unwrap().pending_confirm);
    let reports = rig.transport.reports();
    assert_eq!(
        reports.last().unwrap().state,
        otavan_protocol::UpdateState::Updated
    );

    // The uplink right after the session is a STATUS with the result.
    let after: Vec<_> = events
        .iter()
        .skip_while(|e| !matches!(e, Event::Session { .. }))
        .collect();
    assert!(
        matches!(after[1], Event::Uplink { kind: Status, .. }),
        "{after:?}"
    );
    let status = *rig.statuses().last().unwrap();
    assert_eq!(
        status,
        StatusUplink {
            version_tag: tag(NEW),
            pending_confirm: true,
            last_result: OtaResult::Updated,
            battery: StatusUplink::BATTERY_UNKNOWN,
            campaign: 7,
        }
    );
    let status_at = rig
        .uplinks()
        .into_iter()
        .rfind(|(_, fport, _)| *fport == Some(DEFAULT_FPORT))
        .unwrap()
        .0;
    assert!(
        status_at - opens < Duration::from_secs(200),
        "reported as soon as the duty cycle allows"
    );
    assert_eq!(trigger.last_result(), OtaResult::Updated);
    // Then readings again, hourly from the report.
    let events = trigger
        .run_until(start + 9 * HOUR, &mut host)
        .await
        .unwrap();
    assert_eq!(uplink_kinds(&events), [Reading, Reading]);
    let next = rig.uplinks()[rig.uplinks().len() - 2].0;
    assert!(abs_diff(next, status_at + HOUR) < Duration::from_secs(5));
    assert_eq!(rig.network.stats().uplinks_rejected, 0);
    assert_eq!(
        trigger
            .device()
            .get_radio()
            .inner()
            .stats()
            .duty_cycle_violations,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_and_stale_wakes_are_ignored() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(12);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();

    // The operator sends the same WAKE twice: one per uplink.
    rig.enqueue(wake(7, 3 * HOUR, 0, Some(NEW)));
    rig.enqueue(wake(7, 3 * HOUR, 0, Some(NEW)));
    let events = trigger
        .run_until(start + 2 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    let d = decisions(&events);
    assert_eq!(d.len(), 2, "{events:?}");
    let Decision::Scheduled { session, .. } = d[0] else {
        panic!("{d:?}");
    };
    assert_eq!(
        d[1],
        Decision::Ignored(IgnoreReason::Duplicate { campaign: 7 })
    );
    // The duplicate did not move the window.
    assert_eq!(trigger.scheduler().scheduled(), Some(&session));

    let events = trigger
        .run_until(start + 5 * HOUR, &mut host)
        .await
        .unwrap();
    assert_eq!(rig.wifi.joins().len(), 1, "{events:?}");
    assert_eq!(rig.meter.version(), NEW);

    // After the session, the same WAKE is stale.
    rig.enqueue(wake(7, HOUR, 0, Some(NEW)));
    let events = trigger
        .run_until(start + 8 * HOUR, &mut host)
        .await
        .unwrap();
    assert_eq!(
        decisions(&events),
        [Decision::Ignored(IgnoreReason::Stale { campaign: 7 })]
    );
    assert_eq!(rig.wifi.joins().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancel_before_the_window_means_no_session() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(13);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();
    rig.enqueue(wake(9, 3 * HOUR, 0, None));
    trigger
        .run_until(start + HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    assert_eq!(trigger.scheduler().scheduled().unwrap().campaign, 9);

    rig.enqueue(DownlinkCommand::Cancel { campaign: 9 });
    let events = trigger
        .run_until(start + 2 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    assert_eq!(decisions(&events), [Decision::Cancelled { campaign: 9 }]);
    assert!(trigger.scheduler().scheduled().is_none());

    // Past the window: no WiFi, no update; asked, the meter says cancelled.
    rig.enqueue(DownlinkCommand::StatusRequest);
    let events = trigger
        .run_until(start + 6 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    assert!(rig.wifi.calls().is_empty(), "{events:?}");
    assert_eq!(rig.meter.version(), OLD);
    assert_eq!(rig.transport.stats().manifests, 0);
    assert_eq!(decisions(&events)[0], Decision::StatusRequested);
    let status = *rig.statuses().last().unwrap();
    assert_eq!(
        (status.version_tag, status.last_result, status.campaign),
        (tag(OLD), OtaResult::Cancelled, 9)
    );
}

#[tokio::test(start_paused = true)]
async fn a_wake_for_the_version_the_meter_has_is_ignored() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(14);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();
    rig.enqueue(wake(3, HOUR, 0, Some(OLD)));
    let events = trigger
        .run_until(start + 4 * HOUR, &mut host)
        .await
        .unwrap();
    assert_eq!(
        decisions(&events),
        [Decision::Ignored(IgnoreReason::AlreadyAtVersion {
            campaign: 3
        })]
    );
    assert!(trigger.scheduler().scheduled().is_none());
    assert!(rig.wifi.calls().is_empty());
    assert_eq!(rig.transport.stats().manifests, 0);
}

#[tokio::test(start_paused = true)]
async fn session_keys_and_the_schedule_survive_a_restart() {
    let rig = Rig::new();
    let start = Instant::now();
    {
        let mut trigger = rig.trigger(21);
        let mut host = rig.host();
        trigger
            .run_until(start + HOUR + MARGIN, &mut host)
            .await
            .unwrap();
        rig.enqueue(wake(5, 2 * HOUR, 0, Some(NEW)));
        let events = trigger
            .run_until(start + 2 * HOUR + MARGIN, &mut host)
            .await
            .unwrap();
        assert!(matches!(
            decisions(&events)[..],
            [Decision::Scheduled { .. }]
        ));
        // Power cut: the trigger is gone.
    }
    assert_eq!(rig.network.stats().joins_accepted, 1);
    let fcnt_before = rig.uplinks().len();
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(rig.meter.dir.path().join(".otavan/lora.json")).unwrap(),
    )
    .unwrap();
    assert!(saved["session"].is_object(), "{saved}");
    assert_eq!(saved["scheduler"]["scheduled"]["campaign"], 5);

    // A new trigger from storage (a new seed, as after every boot).
    let mut trigger = rig.trigger(22);
    assert!(trigger.is_joined());
    assert_eq!(trigger.scheduler().scheduled().unwrap().campaign, 5);
    let mut host = rig.host();
    let events = trigger
        .run_until(start + 6 * HOUR, &mut host)
        .await
        .unwrap();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Joined { .. })),
        "{events:?}"
    );
    assert_eq!(rig.network.stats().joins_accepted, 1, "no new join");
    assert_eq!(
        rig.network.stats().uplinks_rejected,
        0,
        "no frame counter reused"
    );
    assert!(rig.uplinks().len() > fcnt_before);
    // The WAKE heard before the restart still opened its window.
    assert_eq!(rig.wifi.joins().len(), 1);
    assert_eq!(rig.meter.version(), NEW);
    assert_eq!(
        rig.statuses().last().unwrap().last_result,
        OtaResult::Updated
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_request_makes_the_next_uplink_a_status() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(31);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();
    rig.enqueue(DownlinkCommand::StatusRequest);
    let events = trigger
        .run_until(start + 3 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    use UplinkKind::{Reading, Status};
    assert_eq!(uplink_kinds(&events), [Reading, Status, Reading]);
    assert_eq!(decisions(&events), [Decision::StatusRequested]);
    assert_eq!(rig.statuses().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_wifi_join_is_reported() {
    let mut rig = Rig::new();
    rig.wifi.refuse = true;
    let mut trigger = rig.trigger(41);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();
    rig.enqueue(wake(2, 30 * 60 * Duration::from_secs(1), 0, None));
    let events = trigger
        .run_until(start + 3 * HOUR, &mut host)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Session {
                result: OtaResult::WifiJoinFailed,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(rig.meter.version(), OLD);
    assert_eq!(
        rig.statuses().last().unwrap().last_result,
        OtaResult::WifiJoinFailed
    );
}

#[tokio::test(start_paused = true)]
async fn joins_retry_with_growing_backoff() {
    let rig = Rig::new();
    // The gateway misses the first three JoinRequests.
    let mut lost = 0;
    rig.network.set_uplink_filter(move |_| {
        lost += 1;
        lost > 3
    });
    let mut trigger = rig.trigger(51);
    let mut host = rig.host();
    let mut failures = Vec::new();
    loop {
        let event = trigger.step(&mut host).await.unwrap();
        let failed_at = trigger.clock().now();
        match event {
            Event::JoinFailed {
                attempt, retry_at, ..
            } => failures.push((attempt, retry_at - failed_at)),
            Event::Joined { attempt } => {
                assert_eq!(attempt, 4);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let policy = rig.config().join;
    assert_eq!(failures.len(), 3);
    for (attempt, wait) in failures {
        let backoff = policy.backoff(attempt);
        assert!(wait >= backoff, "attempt {attempt}: {wait:?} < {backoff:?}");
        // Jitter adds up to a quarter; the duty cycle may hold it longer.
        let silence = 100 * Region::Eu868.time_on_air(0, Direction::Uplink, 23).unwrap();
        assert!(
            wait <= (backoff + backoff / 4).max(silence),
            "attempt {attempt}: {wait:?}"
        );
    }
    assert_eq!(rig.network.stats().joins_accepted, 1);
    assert_eq!(
        trigger
            .device()
            .get_radio()
            .inner()
            .stats()
            .duty_cycle_violations,
        0
    );
}

#[tokio::test(start_paused = true)]
async fn joining_gives_up_after_the_last_attempt() {
    let rig = Rig::new();
    rig.network.set_uplink_filter(|_| false);
    let mut config = rig.config();
    config.join.max_attempts = 3;
    let mut trigger = rig.trigger_with(config.clone(), 52);
    let mut host = rig.host();
    let error = trigger
        .run_until(Instant::now() + 24 * HOUR, &mut host)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            otavan_client::lora::TriggerError::JoinFailed { attempts: 3 }
        ),
        "{error}"
    );
    // The next round waits the longest backoff first.
    let wait = trigger.next_action_at() - trigger.clock().now();
    assert!(
        wait >= config.join.max_backoff - Duration::from_secs(1),
        "{wait:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn payloads_over_the_region_limit_are_not_sent() {
    let rig = Rig::new();
    let mut trigger = rig.trigger(61);
    let mut host = rig.host();
    // EU868 DR0 carries at most 51 bytes.
    fn big_reading() -> Vec<u8> {
        vec![7; 52]
    }
    host.sensors = big_reading;
    let start = Instant::now();
    let events = trigger
        .run_until(start + 2 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::UplinkRefused { kind, error } => Some((*kind, error.max, error.payload_len)),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [
            (UplinkKind::Reading, Some(51), 52),
            (UplinkKind::Reading, Some(51), 52)
        ]
    );
    // Only the status after the join went out.
    assert_eq!(rig.uplinks().len(), 1);
    assert_eq!(rig.uplinks()[0].1, Some(DEFAULT_FPORT));

    // 51 bytes fit.
    fn fitting_reading() -> Vec<u8> {
        vec![7; 51]
    }
    host.sensors = fitting_reading;
    trigger
        .run_until(start + 3 * HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    assert_eq!(rig.uplinks().last().unwrap().2, vec![7; 51]);
}

#[tokio::test(start_paused = true)]
async fn an_update_that_overruns_its_window_is_abandoned() {
    let mut rig = Rig::new();
    rig.wifi.hang = true;
    let mut trigger = rig.trigger(71);
    let mut host = rig.host();
    let start = Instant::now();
    trigger.run_until(start + MARGIN, &mut host).await.unwrap();
    rig.enqueue(wake(4, 30 * 60 * Duration::from_secs(1), 0, None));
    let events = trigger
        .run_until(start + 3 * HOUR, &mut host)
        .await
        .unwrap();
    let Some((session, ended)) = events.iter().find_map(|e| match e {
        Event::Session { session, result } => Some((*session, *result)),
        _ => None,
    }) else {
        panic!("{events:?}");
    };
    assert_eq!(ended, OtaResult::Interrupted);
    // Abandoned at the window's close plus the allowed overrun, and the
    // radio was switched off.
    let calls = rig.wifi.calls();
    let (WifiCall::Join { at: joined, .. }, WifiCall::Leave { at: left }) = (&calls[0], &calls[1])
    else {
        panic!("{calls:?}");
    };
    let overrun = rig.config().session_overrun;
    assert_eq!(
        *left - *joined,
        session.closes_at - session.opens_at + overrun
    );
    assert_eq!(
        rig.statuses().last().unwrap().last_result,
        OtaResult::Interrupted
    );
}

#[tokio::test(start_paused = true)]
async fn a_window_that_closed_while_the_meter_was_off_is_dropped() {
    let rig = Rig::new();
    let start = Instant::now();
    {
        let mut trigger = rig.trigger(81);
        let mut host = rig.host();
        trigger.run_until(start + MARGIN, &mut host).await.unwrap();
        rig.enqueue(wake(6, HOUR, 0, None));
        trigger
            .run_until(start + HOUR + MARGIN, &mut host)
            .await
            .unwrap();
        assert_eq!(trigger.scheduler().scheduled().unwrap().campaign, 6);
    }
    // Off for five hours.
    tokio::time::sleep_until(start + 6 * HOUR).await;
    let mut trigger = rig.trigger(82);
    let mut host = rig.host();
    let event = trigger.step(&mut host).await.unwrap();
    let Event::SessionMissed { session } = event else {
        panic!("{event:?}");
    };
    assert_eq!(session.campaign, 6);
    assert!(trigger.scheduler().scheduled().is_none());
    assert!(trigger.scheduler().has_seen(6));
    // Then business as usual, without WiFi.
    let events = trigger
        .run_until(start + 8 * HOUR, &mut host)
        .await
        .unwrap();
    assert!(!events.is_empty());
    assert!(rig.wifi.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_session_saved_for_another_dev_eui_is_not_restored() {
    let rig = Rig::new();
    let start = Instant::now();
    {
        let mut trigger = rig.trigger(91);
        trigger
            .run_until(start + MARGIN, &mut rig.host())
            .await
            .unwrap();
        assert!(trigger.is_joined());
    }
    // The meter is re-provisioned with other credentials.
    let other = DeviceKeys::simulated(2);
    rig.network.register(other);
    let mut config = rig.config();
    (config.dev_eui, config.join_eui, config.app_key) =
        (other.dev_eui, other.app_eui, other.app_key);
    let mut trigger = rig.trigger_with(config, 92);
    assert!(!trigger.is_joined());
    // A new session for the new DevEUI.
    let event = trigger.step(&mut rig.host()).await.unwrap();
    assert_eq!(event, Event::Joined { attempt: 1 });
    assert!(rig.network.session(other.dev_eui).is_some());
}

/// The van's real server, in this runtime, serving the release's tree.
async fn van_server(release: &Release) -> (std::net::SocketAddr, TempDir) {
    let dir = TempDir::new().unwrap();
    let mut config = otavan_server::ServerConfig::new(&release.root);
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.store = otavan_store::StoreLocation::Sqlite(dir.path().join("van.db"));
    config.patch_cache = Some(dir.path().join("patches"));
    let server = otavan_server::Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    (addr, dir)
}

#[tokio::test(start_paused = true)]
async fn a_wake_updates_the_meter_from_the_real_van_server() {
    use otavan_client::transport::{HttpTransport, HttpTransportConfig};
    let rig = Rig::new();
    let release = Release::sample();
    let (addr, van_dir) = van_server(&release).await;
    let http = HttpTransport::new(HttpTransportConfig::new(format!("http://{addr}"))).unwrap();
    let mut host = Host {
        engine: Engine::new(
            rig.meter.meter(),
            http,
            EngineConfig::new("meter-1"),
            rig.clock,
            SystemEntropy,
        ),
        wifi: rig.wifi.clone(),
        sensors: reading as fn() -> Vec<u8>,
    };
    let mut trigger = rig.trigger(21);
    let start = Instant::now();

    // Virtual time: join, status, the first hourly reading.
    trigger
        .run_until(start + HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    // A WAKE whose window opens five seconds after the meter hears it.
    rig.enqueue(wake(9, Duration::from_secs(5), 0, Some(NEW)));
    let scheduled = loop {
        let event = trigger.step(&mut host).await.unwrap();
        if let [Decision::Scheduled { session, .. }] = decisions(std::slice::from_ref(&event))[..] {
            break session;
        }
    };
    // Real time for the WiFi session: the HTTP exchange with the real
    // server must not race virtual timers.
    tokio::time::resume();
    let event = trigger.step(&mut host).await.unwrap();
    let Event::Session { session, result } = event else {
        panic!("{event:?}");
    };
    assert_eq!((session, result), (scheduled, OtaResult::Updated));
    let opens = trigger.clock().instant(session.opens_at);
    let joined = rig.wifi.joins()[0].1;
    assert!(
        abs_diff(joined, opens) < Duration::from_secs(1),
        "{:?}",
        abs_diff(joined, opens)
    );
    assert_eq!(rig.meter.version(), NEW);
    let booted = rig.meter.meter().status().unwrap().firmware_sha1.unwrap();
    use sha1::Digest;
    assert_eq!(booted, hex::encode(sha1::Sha1::digest(release.image(NEW))));

    // Virtual time again: the status uplink after the session.
    tokio::time::pause();
    loop {
        if let Event::Uplink {
            kind: UplinkKind::Status,
            ..
        } = trigger.step(&mut host).await.unwrap()
        {
            break;
        }
    }
    let status = *rig.statuses().last().unwrap();
    assert_eq!(
        (status.version_tag, status.last_result, status.campaign),
        (tag(NEW), OtaResult::Updated, 9)
    );

    // The van's report store saw the update.
    let store = otavan_store::reports::ReportStore::open(&van_dir.path().join("van.db")).unwrap();
    let mut csv = Vec::new();
    store.export_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains("meter-1") && l.contains(",UPDATED,")),
        "{csv}"
    );
}

/// Steps the trigger until it has sent a STATUS uplink.
async fn until_status(trigger: &mut TestTrigger, host: &mut TestHost) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let event = trigger.step(host).await.unwrap();
        let status = matches!(
            event,
            Event::Uplink {
                kind: UplinkKind::Status,
                ..
            }
        );
        events.push(event);
        if status {
            return events;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_version_that_cannot_prove_itself_is_reverted_and_the_status_uplink_says_so() {
    use otavan_client::confirm::Confirmation;
    let rig = Rig::new();
    // The van never hears the new version: its self-test cannot pass.
    rig.transport.fail_reports(true);
    let start = Instant::now();
    let mut trigger = rig.trigger(41);
    let mut host = rig.host();
    trigger
        .run_until(start + HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    rig.enqueue(wake(6, Duration::from_secs(60), 0, Some(NEW)));
    // The next uplink hears the WAKE, the window opens a minute later,
    // and the status uplink follows the session.
    let events = until_status(&mut trigger, &mut host).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Session {
                result: OtaResult::Updated,
                ..
            }
        )),
        "{events:?}"
    );
    // The uplink after the session went out, but the van never answered.
    assert_eq!(rig.meter.version(), NEW);
    assert!(rig.meter.meter().status().unwrap().pending_confirm);

    // Three starts on trial (each a power cycle: a new engine and a new
    // trigger from storage), and the fourth reverts.
    for boot in 1..=4 {
        let host = rig.host();
        let result = host.engine.boot().await.unwrap();
        if boot < 4 {
            assert!(matches!(result, Confirmation::Waiting { .. }), "{result:?}");
        } else {
            assert!(matches!(result, Confirmation::Reverted(_)), "{result:?}");
        }
    }
    assert_eq!(rig.meter.version(), OLD);
    assert!(!rig.meter.meter().status().unwrap().pending_confirm);
    let mut trigger = rig.trigger(42);
    let mut host = rig.host();
    until_status(&mut trigger, &mut host).await;
    let status = *rig.statuses().last().unwrap();
    assert_eq!(
        (
            status.version_tag,
            status.pending_confirm,
            status.last_result
        ),
        (tag(OLD), false, OtaResult::Reverted)
    );
    // The van heard nothing yet; it will, first thing, at the next session.
    assert!(rig.meter.meter().status().unwrap().reverted.is_some());
}

/// The network's time from `events`' uplinks that carried an answer.
fn network_times(events: &[Event]) -> Vec<Duration> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Uplink {
                network_time: Some(t),
                ..
            } => Some(*t),
            _ => None,
        })
        .collect()
}

/// Trusted time over LoRaWAN, end to end: a signed meter whose clock
/// reset to 1970 asks the network for the time (`DeviceTimeReq` in the
/// FOpts of its first uplink), keeps the authenticated answer, and judges
/// the release's expiry by it: an expired release is refused (it would
/// install by the meter's clock), a valid one installs.
#[tokio::test(start_paused = true)]
async fn a_signed_meter_judges_expiry_by_the_networks_time_not_its_clock() {
    let keys = KeyPair::from_seed([42; 32]);
    let mut release = Release::sample();
    // Expired a day before the network's "now"; decades ahead of 1970.
    release.sign(&keys, EPOCH.as_secs() - 86_400);
    let anchor = Anchor::Key(keys.public());
    let meter = TestMeter::provisioned_trusting(&release, OLD, Some(&anchor));
    let network = NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    };
    let rig = Rig::with(
        network,
        &release,
        meter,
        MeterClock::starting_at(Duration::ZERO),
    );
    let mut trigger = rig.trigger(11);
    let mut host = rig.host();
    let start = Instant::now();
    let events = trigger
        .run_until(start + HOUR + MARGIN, &mut host)
        .await
        .unwrap();
    // The first uplink asked and got the network's time; no other did.
    let times = network_times(&events);
    assert_eq!(times.len(), 1, "{events:?}");
    assert!(times[0] > EPOCH && times[0] < EPOCH + Duration::from_secs(600));
    assert_eq!(rig.network.stats().device_times_sent, 1);
    // It is the meter's floor now, kept in its state.
    let floor = rig.meter.meter().state().unwrap().trusted_time;
    assert!(floor >= EPOCH.as_secs(), "{floor}");
    assert_eq!(
        trigger.clock().now().as_secs() / 86_400,
        0,
        "the RTC is in 1970"
    );

    rig.enqueue(wake(7, HOUR, 0, Some(NEW)));
    let events = trigger
        .run_until(start + 4 * HOUR, &mut host)
        .await
        .unwrap();
    let results: Vec<OtaResult> = events
        .iter()
        .filter_map(|e| match e {
            Event::Session { result, .. } => Some(*result),
            _ => None,
        })
        .collect();
    assert_eq!(results, [OtaResult::Refused]);
    assert_eq!(rig.meter.version(), OLD);
    let failed = rig.transport.reports().into_iter().last().unwrap();
    assert_eq!(failed.state, otavan_protocol::UpdateState::Failed);
    assert!(
        failed.error.as_deref().unwrap().contains("expired"),
        "{failed:?}"
    );

    // Re-signed for a month, the same meter installs it.
    let mut release = release;
    release.sign(&keys, EPOCH.as_secs() + 30 * 86_400);
    let transport = release.transport();
    let mut host = Host {
        engine: Engine::new(
            rig.meter.meter(),
            transport,
            EngineConfig::new("meter-1"),
            rig.clock,
            SystemEntropy,
        ),
        ..host
    };
    rig.enqueue(wake(8, HOUR, 0, Some(NEW)));
    let events = trigger
        .run_until(start + 8 * HOUR, &mut host)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Session {
                result: OtaResult::Updated,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(rig.meter.version(), NEW);
}

#[tokio::test(start_paused = true)]
async fn an_unsigned_meter_never_asks_the_time() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let network = NetworkConfig {
        time: Some(EPOCH),
        ..NetworkConfig::eu868(5)
    };
    let rig = Rig::with(network, &release, meter, MeterClock::starting_at(EPOCH));
    let mut trigger = rig.trigger(11);
    let mut host = rig.host();
    let events = trigger
        .run_until(Instant::now() + 3 * HOUR, &mut host)
        .await
        .unwrap();
    assert!(uplink_kinds(&events).len() >= 3);
    assert!(network_times(&events).is_empty());
    assert_eq!(rig.network.stats().device_times_sent, 0);
}

mod multicast;
mod standing;
