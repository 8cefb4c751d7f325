//! The `otavan` command: parses flags and dispatches to the crates.

mod campaign;
mod crew_plan;
mod device;
mod halt;
mod log;
mod lora;
mod rehearse;
mod release;
mod replan;
mod reports;
mod waves;

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use otavan_protocol::Version;
use otavan_protocol::keys::PublicKey;
use otavan_protocol::report_auth::FleetSecret;
use otavan_server::authenticity::ReportAuth;
use otavan_server::halt_file::HaltFile;
use otavan_server::pace::Pace;
use otavan_server::{Server, ServerConfig};
use otavan_store::{StoreLocation, VanId};

/// Over-the-air updates for smart meters, delivered by a passing van.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a release tree to meters (the server in the van).
    Serve(ServeArgs),
    /// Act as a meter: provision, update, confirm, roll back.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Create an Ed25519 key pair (PREFIX.key, PREFIX.pub): a release
    /// signing key, or with --role root the offline root key.
    Keygen {
        /// Path prefix of the two key files.
        #[arg(long)]
        out: PathBuf,
        /// What the key is for: release (signs descriptors and timestamps)
        /// or root (certifies release keys; keep it offline).
        #[arg(long, value_enum, default_value = "release")]
        role: release::Role,
    },
    /// Release manager tools.
    #[command(subcommand)]
    Release(release::ReleaseCommand),
    /// LoRaWAN payloads: encode the commands that wake meters, decode what
    /// meters send back.
    #[command(subcommand)]
    Lora(lora::LoraCommand),
    /// Rehearse a campaign: simulate meters, LoRaWAN wake-ups and vans.
    Rehearse(rehearse::RehearseArgs),
    /// Run a campaign: plan WAKEs from an inventory and a route, push them
    /// to the network server, watch the meters' status uplinks.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Report store tools: upload a van's reports to the fleet database.
    #[command(subcommand)]
    Reports(reports::ReportsCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Release root: one folder per version plus firmware_VERSION.bin images.
    #[arg(long)]
    root: PathBuf,
    /// TCP port.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Version to update meters to (default: the highest version folder).
    #[arg(long)]
    target: Option<Version>,
    /// Where device reports go: a SQLite file, or postgres://user@host:port/dbname
    /// for a fleet database shared by many vans (from $OTAVAN_DB when not
    /// given, so a password need not appear in the process list).
    #[arg(
        long,
        env = "OTAVAN_DB",
        default_value = "otavan.db",
        hide_env_values = true
    )]
    db: StoreLocation,
    /// This van's name, stored with every report (default: the host name).
    #[arg(long)]
    van_id: Option<VanId>,
    /// Most simultaneous connections.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Seconds a client may take to send request headers.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Most simultaneous connections from one client address (0: no cap).
    #[arg(long, default_value_t = otavan_server::slots::DEFAULT_PER_IP)]
    max_connections_per_ip: usize,
    /// Seconds a response may wait without the client taking a byte; also
    /// the window the minimum rate is averaged over.
    #[arg(long, default_value_t = 20)]
    stall_timeout: u64,
    /// Fewest KiB per second a client must take a response at (0: no floor).
    #[arg(long, default_value_t = 4)]
    min_rate_kib: u64,
    /// MiB of rendered manifests kept in memory.
    #[arg(long, default_value_t = 32)]
    manifest_cache_mib: usize,
    /// MiB of release content kept in memory (target files and firmware).
    #[arg(long, default_value_t = 32)]
    preload_mib: u64,
    /// Directory where firmware patches are cached between runs.
    #[arg(long, default_value = "otavan-patches")]
    patch_cache: PathBuf,
    /// Serve full firmware images only (no bsdiff patches).
    #[arg(long)]
    no_deltas: bool,
    /// The fleet's report secret (`otavan reports keygen`): signed reports
    /// are checked against their meter's key, stored `verified` when they
    /// match and refused when they do not.
    #[arg(long)]
    report_key: Option<PathBuf>,
    /// Count only verified reports (and LoRa status uplinks) as UPDATED on
    /// the dashboard; unsigned reports are still stored, marked.
    #[arg(long, requires = "report_key")]
    require_signed_reports: bool,
    /// gpsd's HOST:PORT (usually 127.0.0.1:2947): each report is stored
    /// with the van's position and fix time, and the van's trace is kept.
    #[arg(long, value_name = "HOST:PORT")]
    gpsd: Option<String>,
    /// The campaign's PLAN.csv (`otavan campaign plan`): the dashboard
    /// shows the crew map, each planned meter done / in progress / failed /
    /// not reached, with the route and the van's trace.
    #[arg(long, requires_all = ["meters", "route"])]
    plan: Option<PathBuf>,
    /// The inventory the plan was made from (where its meters are).
    #[arg(long, requires = "plan")]
    meters: Option<PathBuf>,
    /// The route the plan was made for.
    #[arg(long, requires = "plan")]
    route: Option<PathBuf>,
    /// A signed halt (`otavan campaign halt`): its target is not offered
    /// (manifests answer null) and the dashboard says halted. Refused,
    /// and the server does not start, unless --halt-key signed it.
    #[arg(long, value_name = "HALT.json", requires = "halt_key")]
    halt_file: Option<PathBuf>,
    /// The release public key halt files must be signed with.
    #[arg(long, value_name = "PUBKEY", requires = "halt_file")]
    halt_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A rehearsal's meters and servers log like real ones; thousands of
    // them would drown its own output, so it shows warnings only.
    let default_filter = match cli.command {
        Command::Rehearse(_) => "warn,otavan_client=error,otavan_server=error",
        _ => "info",
    };
    let (writer, _flush_on_exit) = log::batched_stderr();
    use tracing_subscriber::prelude::*;
    let request = |m: &tracing::Metadata<'_>| m.target() == log::REQUEST_TARGET;
    let general = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_timer(log::CachedUtc)
        .with_writer(writer.clone())
        .with_filter(tracing_subscriber::filter::filter_fn(move |m| !request(m)));
    let requests =
        log::RequestLines::new(writer).with_filter(tracing_subscriber::filter::filter_fn(request));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with(general)
        .with(requests)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Device(command) => device::run(command),
        Command::Keygen { out, role } => release::keygen(&out, role),
        Command::Release(command) => release::run(command),
        Command::Lora(command) => lora::run(command),
        Command::Rehearse(args) => rehearse::run(args),
        Command::Campaign(command) => campaign::run(command),
        Command::Reports(command) => reports::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("otavan: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The release public key halt files must be signed with (`--halt-key`).
fn read_halt_key(key: &Path) -> anyhow::Result<PublicKey> {
    let key_text =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    PublicKey::from_text(&key_text)
        .with_context(|| format!("{} is not a release public key", key.display()))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let van_id = match args.van_id {
        Some(van_id) => van_id,
        None => {
            VanId::from_hostname().context("the host name is not a valid van id; pass --van-id")?
        }
    };
    let crew_plan = match (&args.plan, &args.meters, &args.route) {
        (Some(plan), Some(meters), Some(route)) => {
            Some(std::sync::Arc::new(crew_plan::read(plan, meters, route)?))
        }
        _ => None,
    };
    let config = ServerConfig {
        addr: SocketAddr::new(args.bind, args.port),
        target: args.target,
        store: args.db,
        van_id,
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.header_timeout),
        max_connections_per_ip: args.max_connections_per_ip,
        pace: Pace {
            stall_timeout: Duration::from_secs(args.stall_timeout.max(1)),
            min_rate: args.min_rate_kib * 1024,
        },
        manifest_cache_bytes: args.manifest_cache_mib * 1024 * 1024,
        preload_bytes: args.preload_mib * 1024 * 1024,
        patch_cache: (!args.no_deltas).then_some(args.patch_cache),
        report_auth: ReportAuth {
            secret: args
                .report_key
                .as_deref()
                .map(|path| reports::read_key(path, FleetSecret::from_hex))
                .transpose()?,
            require_signed: args.require_signed_reports,
        },
        gpsd: args.gpsd,
        crew_plan,
        halt_file: match (args.halt_file, &args.halt_key) {
            (Some(path), Some(key)) => Some(HaltFile {
                path,
                keys: vec![read_halt_key(key)?],
            }),
            _ => None,
        },
        ..ServerConfig::new(args.root)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        otavan_server::signals::serve_until_signalled(server)
            .await
            .context("cannot install signal handlers")
    })
}
