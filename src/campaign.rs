//! `otavan campaign plan|push|watch|replan|status`: flags onto the
//! otavan-campaign crate, and its results onto stdout (`replan`'s in
//! `crate::replan`, `status`'s and the wave gates' in `crate::waves`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use otavan_campaign::chirpstack::ApiConfig as ChirpStackApi;
use otavan_campaign::deveui::DevEui;
use otavan_campaign::gate;
use otavan_campaign::groups_csv::{self, GroupKeys};
use otavan_campaign::inventory;
use otavan_campaign::mqtt::{Broker, DeviceIds, NetworkServer};
use otavan_campaign::multicast::{Delivery, MulticastPlan};
use otavan_campaign::pace::{self as pace_plan, PaceSettings};
use otavan_campaign::plan::{self, Settings, Summary, WakeMode, WifiRanges};
use otavan_campaign::push::{self, PushConfig, PushEvent};
use otavan_campaign::standing::{self, StandingPlan};
use otavan_campaign::watch::{self, WatchConfig, WatchEvent};
use otavan_campaign::waves;
use otavan_campaign::{capacity, clock, legs_csv, plan_csv, progress, route, waves_csv};
use otavan_protocol::Version;
use otavan_protocol::lora::{APP_FPORTS, DEFAULT_FPORT, DownlinkCommand};
use otavan_protocol::region::Region;
use otavan_store::halts::HaltRecord;
use otavan_store::reports::ReportStore;
use time::OffsetDateTime;

/// The environment variable a broker password may come from.
const PASSWORD_ENV: &str = "OTAVAN_MQTT_PASSWORD";

/// `otavan campaign ...` subcommands.
#[derive(clap::Subcommand)]
pub enum CampaignCommand {
    /// Plan a WAKE for every meter the van will pass (writes PLAN.csv).
    Plan(PlanArgs),
    /// Queue the plan's WAKEs on the network server over MQTT, each at its
    /// enqueue_at.
    Push(PushArgs),
    /// Store the meters' status uplinks in the van's report database.
    Watch(WatchArgs),
    /// Plan the next shift for the meters a plan missed, from the reports
    /// and status uplinks (writes a new plan; the old one is kept).
    Replan(crate::replan::ReplanArgs),
    /// Each wave's counts and gate (open, waiting, tripped) from the
    /// reports.
    Status(crate::waves::StatusArgs),
    /// The meters a pass missed, with the reason the reports support
    /// (CSV).
    Missed(crate::waves::MissedArgs),
    /// Halt the campaign: a signed HALT.json for the vans, logged.
    Halt(crate::halt::HaltArgs),
    /// Resume a halted campaign: open a tripped wave's gate, logged.
    Resume(crate::halt::ResumeArgs),
}

/// `campaign plan`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// The inventory: dev_eui,lat,lon,install,uplink_interval_s[,version][,last_uplink].
    #[arg(long)]
    meters: PathBuf,
    /// The van's waypoints: lat,lon[,time].
    #[arg(long)]
    route: PathBuf,
    /// When the campaign starts (RFC 3339): no WAKE is queued earlier, and
    /// a route whose first waypoint has no time leaves then.
    #[arg(long, value_parser = parse_time)]
    start: OffsetDateTime,
    /// The van's speed between waypoints without times, km/h.
    #[arg(long, default_value_t = 20.0)]
    speed_kmh: f64,
    /// Campaign number the WAKEs carry (1-65535).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    campaign: u16,
    /// The plan to write (atomically).
    #[arg(long)]
    out: PathBuf,
    /// The van network slot the meters join (0-255).
    #[arg(long, default_value_t = 0)]
    network: u8,
    /// The campaign's target version: WAKEs carry its tag, and meters the
    /// inventory lists at it are not woken.
    #[arg(long)]
    target: Option<Version>,
    /// The WAKEs' application port (1-223).
    #[arg(long, default_value_t = DEFAULT_FPORT,
          value_parser = clap::value_parser!(u8).range(i64::from(*APP_FPORTS.start())..=i64::from(*APP_FPORTS.end())))]
    fport: u8,
    /// WiFi range of an install kind, e.g. basement=15 (repeatable;
    /// defaults: outdoor 80, indoor 30, basement 10 metres).
    #[arg(long = "wifi-range", value_name = "KIND=METRES", value_parser = parse_range)]
    wifi_ranges: Vec<(String, f64)>,
    /// The LoRaWAN region, for the gateway capacity (EU868, US915).
    #[arg(long, default_value = "EU868")]
    region: Region,
    /// The update's size in bytes: the summary then says how many meters
    /// the route could update at best, and why the others cannot be.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    update_bytes: Option<u64>,
    /// Plan the van's speed on each leg and its stops, for the meters'
    /// contacts, taking at most this many seconds longer than the route at
    /// --speed-kmh (ROUTE.csv then has a time on its first waypoint only).
    #[arg(long, value_name = "SECONDS")]
    pace_budget_s: Option<f64>,
    /// The slowest a paced leg is driven, km/h.
    #[arg(long, default_value_t = pace_plan::MIN_SPEED_KMH, requires = "pace_budget_s")]
    min_speed_kmh: f64,
    /// The longest stop of a paced drive, seconds.
    #[arg(long, default_value_t = pace_plan::MAX_STOP_S, requires = "pace_budget_s")]
    max_stop_s: f64,
    /// Write the paced drive, one row a leg, to this file (LEGS.csv).
    #[arg(long, value_name = "LEGS.csv", requires = "pace_budget_s")]
    legs_out: Option<PathBuf>,
    /// How meters are woken: unicast (a WAKE each), multicast (per
    /// street segment, TS005 multicast where it costs less) or standing
    /// (standing multicast groups woken in their daily slot); multicast
    /// and standing need the inventory's gen_app_key.
    #[arg(long, default_value = "unicast", value_parser = parse_wake)]
    wake: WakeMode,
    /// With --wake multicast or standing: the setups and group WAKEs to
    /// write (default: GROUPS.csv beside --out).
    #[arg(long)]
    groups: Option<PathBuf>,
    /// With --wake multicast or standing: the group keys to write, mode
    /// 0600 (default: GROUPKEYS.csv beside --out).
    #[arg(long)]
    group_keys: Option<PathBuf>,
    /// With --wake standing: an earlier standing plan's GROUPS.csv, whose
    /// meters keep their group, key and slot (no new setup).
    #[arg(long, value_name = "GROUPS.csv")]
    standing_groups: Option<PathBuf>,
    /// Its keys, mode 0600 (default: GROUPKEYS.csv beside
    /// --standing-groups).
    #[arg(long, value_name = "GROUPKEYS.csv", requires = "standing_groups")]
    standing_keys: Option<PathBuf>,
    /// Split the planned meters along the route into waves, by cumulative
    /// share, e.g. canary=1%,25%,100% (writes WAVES.csv beside --out).
    #[arg(long, value_name = "SPEC")]
    waves: Option<String>,
    /// As --waves, one wave a line (canary=1%) in a file.
    #[arg(long, value_name = "FILE", conflicts_with = "waves")]
    waves_file: Option<PathBuf>,
}

/// A `--wake` flag.
fn parse_wake(text: &str) -> Result<WakeMode, String> {
    match text {
        "unicast" => Ok(WakeMode::Unicast),
        "multicast" => Ok(WakeMode::Multicast),
        "standing" => Ok(WakeMode::Standing),
        _ => Err(format!("{text:?} is not unicast, multicast or standing")),
    }
}

/// `name` in the directory of `path`.
pub(crate) fn beside(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

/// Which network server, and how to reach its MQTT integration.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// The broker: mqtt://[user[:password]@]host[:port]. A password may
    /// instead come from $OTAVAN_MQTT_PASSWORD.
    #[arg(long = "mqtt", value_name = "URL")]
    mqtt: Option<Broker>,
    /// ChirpStack v4 application ID.
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "tts_app",
        required_unless_present = "tts_app"
    )]
    chirpstack_app: Option<String>,
    /// The Things Stack application, ID@TENANT (ttn on The Things Network).
    #[arg(long, value_name = "ID@TENANT")]
    tts_app: Option<String>,
    /// The Things Stack device ID of a meter, from its DevEUI: {dev_eui}
    /// (lower case) or {DEV_EUI} (upper case).
    #[arg(long, value_name = "PATTERN", default_value = "eui-{dev_eui}")]
    tts_device_id: DeviceIds,
    /// MQTT client ID (default: otavan-push-PID or otavan-watch-APP).
    #[arg(long)]
    client_id: Option<String>,
}

impl ServerArgs {
    fn server(&self) -> anyhow::Result<NetworkServer> {
        let server = match (&self.chirpstack_app, &self.tts_app) {
            (Some(id), None) => NetworkServer::chirpstack(id),
            (None, Some(app)) => NetworkServer::tts(app, self.tts_device_id.clone()),
            _ => bail!("give one of --chirpstack-app and --tts-app"),
        };
        server.map_err(anyhow::Error::msg)
    }

    fn broker(&self) -> anyhow::Result<Broker> {
        let mut broker = self.mqtt.clone().context("--mqtt URL is needed")?;
        if broker.username.is_some() && broker.password.is_none() {
            broker.password = std::env::var(PASSWORD_ENV).ok();
        }
        Ok(broker)
    }
}

/// `campaign push`.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The plan (from `campaign plan`); progress is kept in PLAN.csv.progress.
    plan: PathBuf,
    #[command(flatten)]
    server: ServerArgs,
    /// Print what would be published (and what was already sent), send
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Skip a WAKE that cannot be queued this long after its enqueue_at.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    max_late: Duration,
    /// The multicast setups and group WAKEs to push too (GROUPS.csv of
    /// `campaign plan --wake multicast`).
    #[arg(long)]
    groups: Option<PathBuf>,
    /// The group keys, mode 0600 (default: GROUPKEYS.csv beside GROUPS.csv).
    #[arg(long)]
    group_keys: Option<PathBuf>,
    /// A gateway that transmits the multicast WAKEs (repeatable; a
    /// multicast group has no uplinks, so no known downlink path).
    #[arg(long = "gateway", value_name = "ID")]
    gateways: Vec<String>,
    /// ChirpStack's gRPC API URL (e.g. http://chirpstack:8080), for group
    /// WAKEs on ChirpStack; its API key comes from
    /// $OTAVAN_CHIRPSTACK_API_KEY.
    #[arg(long, value_name = "URL")]
    chirpstack_api: Option<String>,
    /// The LoRaWAN region of the multicast groups (EU868, US915).
    #[arg(long, default_value = "EU868")]
    region: Region,
    /// A plan with waves (WAVES.csv) pushes only the WAKEs of waves whose
    /// gate is open, judged from these reports and thresholds.
    #[command(flatten)]
    gate: crate::waves::GateArgs,
}

/// The environment variable ChirpStack's API key comes from.
const API_KEY_ENV: &str = "OTAVAN_CHIRPSTACK_API_KEY";

/// `campaign watch`.
#[derive(clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The report database (the one `otavan serve --db` uses).
    #[arg(long, default_value = "otavan.db")]
    db: PathBuf,
    /// A version the meters may run, to name it from its tag (repeatable).
    #[arg(long = "version")]
    versions: Vec<Version>,
    /// The status uplinks' application port.
    #[arg(long, default_value_t = DEFAULT_FPORT)]
    fport: u8,
    /// Stop after this long (default: run until interrupted).
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    run_for: Option<Duration>,
}

/// An RFC 3339 flag.
pub(crate) fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    clock::parse(text)
}

/// A `--wifi-range KIND=METRES` flag.
pub(crate) fn parse_range(text: &str) -> Result<(String, f64), String> {
    let (kind, metres) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KIND=METRES"))?;
    let metres: f64 = metres
        .parse()
        .map_err(|_| format!("{metres:?} is not a number of metres"))?;
    Ok((kind.to_owned(), metres))
}

/// Runs a campaign subcommand.
pub fn run(command: CampaignCommand) -> anyhow::Result<()> {
    match command {
        CampaignCommand::Plan(args) => plan(args),
        CampaignCommand::Push(args) => {
            // The gates read their reports (PostgreSQL too) before the
            // push's own runtime starts.
            let server = args.server.server()?;
            let (rows, digest) = downlinks(&args, &server)?;
            runtime()?.block_on(push(args, server, rows, digest))
        }
        CampaignCommand::Watch(args) => runtime()?.block_on(watch(args)),
        CampaignCommand::Replan(args) => crate::replan::run(args),
        CampaignCommand::Status(args) => crate::waves::status(args),
        CampaignCommand::Missed(args) => crate::waves::missed(args),
        CampaignCommand::Halt(args) => crate::halt::halt(args),
        CampaignCommand::Resume(args) => crate::halt::resume(args),
    }
}

/// A current-thread runtime for one command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The default WiFi ranges with the `--wifi-range` flags applied.
pub(crate) fn wifi_ranges(flags: &[(String, f64)]) -> anyhow::Result<WifiRanges> {
    let mut ranges = WifiRanges::default();
    for (kind, metres) in flags {
        ranges.set(kind, *metres).map_err(anyhow::Error::msg)?;
    }
    Ok(ranges)
}

fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let waves = match (&args.waves, &args.waves_file) {
        (Some(spec), _) => Some(waves::parse(spec).map_err(anyhow::Error::msg)?),
        (None, Some(path)) => Some(waves::read_file(path).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    if waves.is_some() && args.wake != WakeMode::Unicast {
        bail!("--waves goes with --wake unicast: a group's WAKE wakes meters of any wave");
    }
    let ranges = wifi_ranges(&args.wifi_ranges)?;
    let meters = inventory::read(&args.meters, &ranges)?;
    let waypoints = route::read(&args.route)?;
    let standing_groups = match &args.standing_groups {
        Some(_) if args.wake != WakeMode::Standing => {
            bail!("--standing-groups goes with --wake standing")
        }
        Some(path) => {
            let keys = args
                .standing_keys
                .clone()
                .unwrap_or_else(|| beside(path, "GROUPKEYS.csv"));
            standing::read_registry(path, &keys)?
        }
        None => standing::Registry::default(),
    };
    let settings = Settings {
        speed_kmh: args.speed_kmh,
        campaign: args.campaign,
        network: args.network,
        target: args.target,
        fport: args.fport,
        wifi_ranges: ranges,
        region: args.region,
        update_bytes: args.update_bytes,
        pace: args.pace_budget_s.map(|budget_s| PaceSettings {
            budget_s,
            min_speed_kmh: args.min_speed_kmh,
            max_stop_s: args.max_stop_s,
        }),
        wake: args.wake,
        standing: standing_groups,
        ..Settings::new(args.start)
    };
    let plan = plan::plan(&meters, &waypoints, &settings)?;
    let rows_path = args
        .groups
        .clone()
        .unwrap_or_else(|| beside(&args.out, "GROUPS.csv"));
    let keys_path = args
        .group_keys
        .clone()
        .unwrap_or_else(|| beside(&args.out, "GROUPKEYS.csv"));
    let groups = match (&plan.multicast, &plan.standing) {
        (Some(groups), _) => {
            print_groups(groups);
            let keys: Vec<GroupKeys> = groups
                .groups
                .iter()
                .filter(|g| g.delivery == Delivery::Multicast)
                .map(|g| GroupKeys::new(g.addr, g.key))
                .collect();
            Some((keys, &groups.rows))
        }
        (None, Some(groups)) => {
            print_standing(groups, settings.region);
            Some((groups.keys.clone(), &groups.rows))
        }
        (None, None) => None,
    };
    if let Some((keys, rows)) = groups {
        groups_csv::write_keys(&keys_path, &keys)
            .with_context(|| format!("cannot write {}", keys_path.display()))?;
        groups_csv::write(&rows_path, rows)
            .with_context(|| format!("cannot write {}", rows_path.display()))?;
        println!(
            "wrote {} and {} (0600)",
            rows_path.display(),
            keys_path.display()
        );
    }
    plan_csv::write(&args.out, &plan.rows)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(waves) = &waves {
        let path = beside(&args.out, "WAVES.csv");
        let assigned = waves::split(&plan.rows, waves);
        waves_csv::write(&path, &assigned)
            .with_context(|| format!("cannot write {}", path.display()))?;
        for (n, wave) in waves.iter().enumerate() {
            let count = assigned.iter().filter(|a| a.wave == n + 1).count();
            println!(
                "wave {} {}: {count} meters (to {} % cumulative)",
                n + 1,
                wave.name,
                wave.cumulative_percent
            );
        }
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.legs_out {
        legs_csv::write(path, &plan.legs)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    print_summary(&plan.summary, &args.out);
    Ok(())
}

/// Each group's choice with its figures (never its key).
fn print_groups(plan: &MulticastPlan) {
    let multicast = plan
        .groups
        .iter()
        .filter(|g| g.delivery == Delivery::Multicast);
    println!(
        "multicast: {} group(s), {} by multicast ({} meters); {} planned meter(s) without \
         gen_app_key and {} whose setup cannot reach them before the session stay unicast",
        plan.groups.len(),
        multicast.clone().count(),
        multicast.map(|g| g.members.len()).sum::<usize>(),
        plan.without_root_key,
        plan.setup_too_late
    );
    let secs = |t: u64| t as f64 / 1e6;
    for g in &plan.groups {
        let c = &g.costs;
        println!(
            "group {:08X} van {} session {}: {} meters, {} (airtime unicast {:.1} s, multicast \
             {:.1} s; unicast peak hour {:.1} s of {:.0} s; {:.1} J more per meter (class C and \
             WiFi wait), at most {:.1} J)",
            g.addr,
            g.van,
            clock::format(g.session_at),
            g.members.len(),
            match g.delivery {
                Delivery::Unicast => "unicast",
                Delivery::Multicast => "multicast",
            },
            secs(c.unicast),
            secs(c.multicast),
            secs(c.unicast_peak_hour),
            secs(c.hour_budget),
            c.extra_j(),
            c.max_extra_j,
        );
    }
}

/// The standing groups' figures (never a key).
fn print_standing(plan: &StandingPlan, region: Region) {
    println!(
        "standing: {} group(s), {} meter(s) set up now, {} already standing; {} planned \
         meter(s) without gen_app_key and {} whose pass their group's slots cannot reach stay \
         unicast",
        plan.groups.len(),
        plan.set_up_now,
        plan.already_standing,
        plan.without_root_key,
        plan.unicast_members
    );
    println!(
        "standing airtime: setups {:.1} s once ({} of {} B, {region} RX2), this campaign's WAKEs \
         {:.1} s ({} frame(s)); each member listens {:.2} J a day ({} s window at 12 mA)",
        plan.setup_airtime.as_secs_f64(),
        plan.set_up_now,
        standing::SETUP_LEN,
        plan.wake_airtime.as_secs_f64(),
        plan.wake_frames,
        plan.listen_j_per_day,
        standing::WINDOW_S,
    );
    for g in &plan.groups {
        let wakes: Vec<String> = g.wakes.iter().map(|t| clock::format(*t)).collect();
        println!(
            "group {:08X} slot {:02}:{:02}:{:02} UTC (slot_s {}): {} set up now, {} woken; WAKEs {}",
            g.addr,
            g.slot_s / 3600,
            g.slot_s / 60 % 60,
            g.slot_s % 60,
            g.slot_s,
            g.new_members,
            g.woken,
            if wakes.is_empty() {
                "none (the pass comes before its slot)".to_owned()
            } else {
                wakes.join(", ")
            }
        );
    }
}

fn print_summary(s: &Summary, out: &Path) {
    let phase = if s.planned > 0 {
        format!(
            " (uplink phase known for {}; longest window {})",
            s.phase_known,
            humantime::format_duration(Duration::from_secs(s.longest_window_s.into()))
        )
    } else {
        String::new()
    };
    println!("meters covered: {} of {}{phase}", s.planned, s.meters);
    println!(
        "contact too short (under the 10 s minimum): {}",
        s.contact_too_short
    );
    println!("never within WiFi range of the route: {}", s.never_in_range);
    println!(
        "uplink interval too long for one window, phase unknown (add last_uplink): {}",
        s.interval_too_long
    );
    println!(
        "no uplink left to carry the WAKE before the van passes: {}",
        s.too_soon
    );
    println!("already at the target: {}", s.already_at_target);
    match &s.limit {
        Some(l) => {
            println!(
                "physical limit: {} meters updatable at best on this route",
                l.physical_limit
            );
            println!(
                "losses: not_reachable {}, too_short_at_planned_speed {}, missed_by_plan {} \
                 (wake_not_delivered and faults: after the drive)",
                l.not_reachable, l.too_short_at_planned_speed, l.missed_by_plan
            );
        }
        None => println!("physical limit: give --update-bytes"),
    }
    if let Some(p) = &s.pace {
        println!(
            "pace: {} of {} legs slowed, {} stops, {:.0} s longer than at one speed (budget {:.0} s)",
            p.slowed, p.legs, p.stops, p.extra_s, p.budget_s
        );
    }
    print_capacity(s);
    println!("wrote {}", out.display());
}

/// The peak hour's downlinks against one gateway's RX2 capacity.
pub(crate) fn print_capacity(s: &Summary) {
    let airtime = capacity::rx2_airtime(s.region, s.wake_bytes);
    let channel = match s.region {
        Region::Eu868 => "RX2 SF12/125 kHz, 10 % duty cycle",
        Region::Us915 => "RX2 DR8 SF12/500 kHz",
    };
    match s.peak_hour {
        Some((hour, count)) => {
            let hour = OffsetDateTime::from_unix_timestamp(hour)
                .map(clock::format)
                .unwrap_or_default();
            println!(
                "downlinks per hour: peak {count} in the hour from {hour}; one gateway sends {} \
                 {}-byte WAKEs an hour ({} {channel}, {:.2} s on air): {} gateway(s) needed",
                s.gateway_capacity_per_hour,
                s.wake_bytes,
                s.region,
                airtime.as_secs_f64(),
                s.gateways_needed
            );
        }
        None => println!("downlinks per hour: none planned"),
    }
}

/// PLAN.csv's WAKEs and GROUPS.csv's downlinks, and the digest of both
/// files for the progress file.
fn downlinks(
    args: &PushArgs,
    server: &NetworkServer,
) -> anyhow::Result<(Vec<push::Downlink>, String)> {
    let mut bytes = std::fs::read(&args.plan)
        .with_context(|| format!("cannot read {}", args.plan.display()))?;
    let rows = plan_csv::read(&args.plan)?;
    let rows = match crate::waves::judge(&args.plan, &rows, &args.gate)? {
        None => rows,
        Some(judged) => {
            if args.groups.is_some() {
                bail!("a plan with waves is unicast: --groups does not go with it");
            }
            crate::waves::log_decisions(
                &args.plan,
                &judged,
                OffsetDateTime::now_utc(),
                args.dry_run,
            )?;
            let open: HashSet<DevEui> = gate::open_meters(&judged.waves, &judged.status)
                .into_iter()
                .collect();
            for w in &judged.status {
                eprintln!(
                    "otavan: wave {} {} ({} meters): gate {}: {}",
                    w.wave,
                    w.name,
                    w.planned,
                    w.gate.as_str(),
                    w.reason
                );
            }
            let cancels = match judged.tripped() {
                None => Vec::new(),
                Some(tripped) => cancels(args, server, &rows, &judged, &bytes, tripped)?,
            };
            let mut downlinks: Vec<push::Downlink> = rows
                .iter()
                .filter(|r| open.contains(&r.dev_eui))
                .map(|r| push::Downlink::wake(r, server, args.max_late))
                .collect();
            downlinks.extend(cancels);
            return Ok((downlinks, progress::digest(&bytes)));
        }
    };
    let mut downlinks: Vec<push::Downlink> = rows
        .iter()
        .map(|r| push::Downlink::wake(r, server, args.max_late))
        .collect();
    let unnamed = beside(&args.plan, "GROUPS.csv");
    if args.groups.is_none() && unnamed.exists() {
        eprintln!(
            "otavan: {} is not pushed (a multicast plan's setups and group WAKEs): \
             give --groups to push it",
            unnamed.display()
        );
    }
    if let Some(groups) = &args.groups {
        bytes.extend(
            std::fs::read(groups).with_context(|| format!("cannot read {}", groups.display()))?,
        );
        let rows = groups_csv::read(groups)?;
        let keys_path = args
            .group_keys
            .clone()
            .unwrap_or_else(|| beside(groups, "GROUPKEYS.csv"));
        // Setting meters up for a group whose keys are lost would leave
        // them listening for a frame nobody can send.
        let keys = groups_csv::read_keys(&keys_path)?;
        if let Some(row) = rows.iter().find(|r| !keys.contains_key(&r.mc_addr())) {
            bail!(
                "{} has no keys for group {:08X} of {}",
                keys_path.display(),
                row.mc_addr(),
                groups.display()
            );
        }
        let group_downlinks =
            push::Downlink::group_rows(&rows, server, &args.gateways, &keys, args.region)
                .map_err(anyhow::Error::msg)?;
        if group_downlinks.iter().any(|d| d.grpc.is_some()) {
            if args.chirpstack_api.is_none() {
                bail!(
                    "ChirpStack takes multicast WAKEs only through its gRPC API: give \
                     --chirpstack-api URL (its API key in ${API_KEY_ENV})"
                );
            }
            if args.gateways.is_empty() {
                bail!("a multicast WAKE needs the gateways that send it: give --gateway ID");
            }
        }
        downlinks.extend(group_downlinks);
    }
    Ok((downlinks, progress::digest(&bytes)))
}

/// A halted campaign's CANCELs: one to each meter whose WAKE went out
/// (acknowledged in the progress file) and that has not reported
/// UPDATED; the halt is logged with them.
fn cancels(
    args: &PushArgs,
    server: &NetworkServer,
    rows: &[plan_csv::PlanRow],
    judged: &crate::waves::Judged,
    bytes: &[u8],
    tripped: &gate::WaveStatus,
) -> anyhow::Result<Vec<push::Downlink>> {
    let acked = progress::read(&progress::path_for(&args.plan), &progress::digest(bytes))?;
    let now = OffsetDateTime::now_utc();
    let cancel: Vec<push::Downlink> = rows
        .iter()
        .filter(|r| acked.contains(r.dev_eui) && !judged.updated(&r.dev_eui))
        .map(|r| {
            let payload = DownlinkCommand::Cancel {
                campaign: r.wake.campaign,
            }
            .encode();
            push::Downlink {
                id: format!("cancel-{}", r.dev_eui),
                enqueue_at: now,
                deadline: now + args.max_late,
                last: false,
                topic: server.downlink_topic(r.dev_eui),
                message: server.downlink_message(r.dev_eui, r.fport, &payload),
                grpc: None,
            }
        })
        .collect();
    eprintln!(
        "otavan: campaign halted ({}): later waves get no WAKE, {} woken meter(s) without \
         UPDATED get a CANCEL",
        tripped.reason,
        cancel.len()
    );
    // The halt reaches every van on a fleet database the gates read.
    let mut fleet_dbs = Vec::new();
    if let (false, Some(target)) = (args.dry_run, &judged.target) {
        let figures = serde_json::json!({ "wave": tripped, "thresholds": judged.settings });
        for url in args.gate.fleet_reports() {
            let record = HaltRecord {
                campaign: rows.first().map_or(0, |r| r.wake.campaign),
                target: target.to_string(),
                reason: tripped.reason.clone(),
                figures: figures.to_string(),
                halted_at: clock::format(now),
                resumed_at: None,
            };
            let (new, name) = crate::halt::record_halt(url, &record)?;
            if new {
                eprintln!("otavan: halt stored in the halts table of {name}");
            }
            fleet_dbs.push(name);
        }
    }
    crate::waves::log_decision(
        &args.plan,
        serde_json::json!({
            "fleet_dbs": fleet_dbs,
            "time": clock::format(now),
            "decision": "halt",
            "wave": tripped,
            "thresholds": judged.settings,
            "target": judged.target.as_ref().map(Version::as_str),
            "cancels": cancel.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            "dry_run": args.dry_run,
        }),
    )?;
    Ok(cancel)
}

async fn push(
    args: PushArgs,
    server: NetworkServer,
    rows: Vec<push::Downlink>,
    digest: String,
) -> anyhow::Result<()> {
    let progress_path = progress::path_for(&args.plan);
    if args.dry_run {
        let acked = progress::read(&progress_path, &digest)?;
        for line in push::dry_run(&rows, &acked) {
            println!("{line}");
        }
        println!(
            "{} downlinks, {} already sent (dry run: nothing published)",
            rows.len(),
            acked.len()
        );
        return Ok(());
    }
    let config = PushConfig {
        broker: args.server.broker()?,
        server,
        client_id: args
            .server
            .client_id
            .clone()
            .unwrap_or_else(|| format!("otavan-push-{}", std::process::id())),
        max_late: args.max_late,
        ack_timeout: Duration::from_secs(10),
        chirpstack_api: match &args.chirpstack_api {
            Some(url) => Some(ChirpStackApi {
                url: url.clone(),
                token: std::env::var(API_KEY_ENV)
                    .with_context(|| format!("--chirpstack-api needs ${API_KEY_ENV}"))?,
                application_id: args.server.chirpstack_app.clone().unwrap_or_default(),
                gateways: args.gateways.clone(),
            }),
            None => None,
        },
    };
    let mut progress = progress::Progress::open(&progress_path, &digest)?;
    let summary = push::push_downlinks(&rows, &mut progress, &config, &mut |event| match event {
        PushEvent::Connected => eprintln!("otavan: connected to {}", config.broker),
        PushEvent::Disconnected { error, retry_in } => {
            eprintln!("otavan: connection lost ({error}); retrying in {retry_in:?}");
        }
        PushEvent::Waiting { until, left } => {
            eprintln!(
                "otavan: {left} WAKE(s) to send; next at {}",
                clock::format(until)
            );
        }
        PushEvent::Sent { id, topic, late } => {
            println!("sent {id} {topic} (late {:.1} s)", late.as_secs_f64());
        }
        PushEvent::Skipped { id, late } => println!(
            "skipped {id}: {} past its enqueue_at",
            humantime::format_duration(Duration::from_secs(late.as_secs()))
        ),
    })
    .await?;
    println!(
        "{} sent, {} already sent before, {} skipped",
        summary.sent,
        summary.already_sent,
        summary.skipped.len()
    );
    if !summary.skipped.is_empty() {
        bail!(
            "{} downlink(s) were too late to send (past --max-late {} or send_by): plan them again",
            summary.skipped.len(),
            humantime::format_duration(args.max_late)
        );
    }
    Ok(())
}

async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let server = args.server.server()?;
    let client_id = args
        .server
        .client_id
        .clone()
        .unwrap_or_else(|| match &server {
            NetworkServer::ChirpStack { application } => format!("otavan-watch-{application}"),
            NetworkServer::Tts {
                application,
                tenant,
                ..
            } => format!("otavan-watch-{application}-{tenant}"),
        });
    let config = WatchConfig {
        broker: args.server.broker()?,
        server,
        client_id,
        fport: args.fport,
        versions: args.versions,
    };
    let store = ReportStore::open(&args.db)
        .with_context(|| format!("cannot open {}", args.db.display()))?;
    let shutdown = async {
        match args.run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let summary = watch::watch(&config, &store, shutdown, &mut |event| match event {
        WatchEvent::Subscribed(filter) => eprintln!("otavan: subscribed to {filter}"),
        WatchEvent::Disconnected { error, retry_in } => {
            eprintln!("otavan: connection lost ({error}); retrying in {retry_in:?}");
        }
        WatchEvent::Stored {
            dev_eui,
            status,
            version,
        } => println!(
            "{dev_eui} {version} {} campaign {} battery {}",
            status.last_result, status.campaign, status.battery
        ),
        WatchEvent::Malformed { topic, error } => eprintln!("otavan: skipped {topic}: {error}"),
        WatchEvent::OtherPort { .. } => {}
    })
    .await?;
    println!(
        "{} status uplinks stored, {} uplinks on other ports, {} unreadable",
        summary.stored, summary.other_port, summary.malformed
    );
    Ok(())
}
