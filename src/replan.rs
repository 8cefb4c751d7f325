//! `otavan campaign replan`: flags onto `otavan_campaign::replan`, the
//! reports from a file or a store, the next plan onto disk and the
//! summary onto stdout.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use otavan_campaign::plan::Settings;
use otavan_campaign::reports_csv::{self, Reports};
use otavan_campaign::{clock, inventory, plan_csv, replan, route};
use otavan_protocol::Version;
use otavan_protocol::lora::{APP_FPORTS, DEFAULT_FPORT};
use otavan_protocol::region::Region;
use otavan_store::postgres::{PgStore, describe, parse_url};
use otavan_store::{ReportBackend, ReportStore, StoreLocation, VanId};
use time::OffsetDateTime;

use crate::campaign::{parse_range, parse_time, print_capacity, runtime, wifi_ranges};

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// `campaign replan`.
#[derive(clap::Args)]
pub struct ReplanArgs {
    /// The old plan (from `campaign plan` or `replan`); never modified.
    #[arg(long)]
    plan: PathBuf,
    /// What the meters said: REPORTS.csv (the van's /reports.csv), the
    /// van's SQLite database (otavan.db), or postgres://user@host/db;
    /// repeatable (each meter's latest report of them all counts).
    #[arg(
        long,
        required = true,
        value_name = "REPORTS.csv|otavan.db|postgres://..."
    )]
    reports: Vec<String>,
    /// Count only reports known to come from their meter (signed by it,
    /// `verified`, or LoRa status uplinks, `network`): an UPDATED or FAILED
    /// that anyone on the van's WiFi posted is left out (docs/security.md).
    #[arg(long)]
    require_signed_reports: bool,
    /// The inventory: dev_eui,lat,lon,install,uplink_interval_s[,version][,last_uplink].
    #[arg(long)]
    meters: PathBuf,
    /// The next shift's waypoints: lat,lon[,time].
    #[arg(long)]
    route: PathBuf,
    /// The next plan's campaign number (1-65535), not the old plan's.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    campaign: u16,
    /// The campaign's target version (needed when the old WAKEs carry its
    /// tag): a meter is done when its latest report says it runs it.
    #[arg(long)]
    target: Option<Version>,
    /// When the van leaves (RFC 3339); default: the route's own times,
    /// moved by whole days to the first day not before --start.
    #[arg(long, value_parser = parse_time)]
    shift_start: Option<OffsetDateTime>,
    /// No WAKE is queued before this (RFC 3339); default: the end of the
    /// old plan's last expected contact.
    #[arg(long, value_parser = parse_time)]
    start: Option<OffsetDateTime>,
    /// The van's speed between waypoints without times, km/h.
    #[arg(long, default_value_t = 20.0)]
    speed_kmh: f64,
    /// WiFi range of an install kind, e.g. basement=15 (repeatable).
    #[arg(long = "wifi-range", value_name = "KIND=METRES", value_parser = parse_range)]
    wifi_ranges: Vec<(String, f64)>,
    /// The LoRaWAN region, for the gateway capacity (EU868, US915).
    #[arg(long, default_value = "EU868")]
    region: Region,
    /// The van network slot the meters join (0-255).
    #[arg(long, default_value_t = 0)]
    network: u8,
    /// The WAKEs' application port (1-223).
    #[arg(long, default_value_t = DEFAULT_FPORT,
          value_parser = clap::value_parser!(u8).range(i64::from(*APP_FPORTS.start())..=i64::from(*APP_FPORTS.end())))]
    fport: u8,
    /// The next plan to write (atomically; not the old plan).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `campaign replan`: nothing is written unless every input is good.
pub fn run(args: ReplanArgs) -> anyhow::Result<()> {
    let report_files: Vec<PathBuf> = args
        .reports
        .iter()
        .filter_map(|r| match StoreLocation::parse(r) {
            StoreLocation::Sqlite(path) => Some(path),
            StoreLocation::Postgres(_) => None,
        })
        .collect();
    let inputs = [&args.plan, &args.meters, &args.route];
    for input in inputs.into_iter().chain(&report_files) {
        if same_file(input, &args.out) {
            bail!(
                "--out {} is an input ({}): write the next plan to another file",
                args.out.display(),
                input.display()
            );
        }
    }
    let old = plan_csv::read(&args.plan)?;
    let reports = read_reports(&args.reports, args.require_signed_reports)?;
    let ranges = wifi_ranges(&args.wifi_ranges)?;
    let meters = inventory::read(&args.meters, &ranges)?;
    let waypoints = route::read(&args.route)?;
    let shift = replan::next_shift(&old, &waypoints, args.start, args.shift_start)?;
    let settings = Settings {
        speed_kmh: args.speed_kmh,
        campaign: args.campaign,
        network: args.network,
        target: args.target,
        fport: args.fport,
        wifi_ranges: ranges,
        region: args.region,
        ..Settings::new(shift.start)
    };
    let next = replan::replan(&old, &reports, &meters, &shift.waypoints, &settings)?;
    plan_csv::write(&args.out, &next.rows)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let p = &next.plan;
    println!(
        "reports: {} rows, {} under a device id that is not a DevEUI, {} meters not in the old plan",
        next.summary.report_rows, reports.other_ids, next.summary.reported_outside_plan
    );
    if args.require_signed_reports {
        println!(
            "reports not known to come from their meter, left out: {}",
            reports.unauthenticated
        );
    }
    let s = &next.summary.tally;
    println!("meters in the old plan: {}", s.listed);
    println!("done (latest report at the target): {}", s.done);
    println!("missed: {} ({} without any report)", s.missed, s.silent);
    println!(
        "planned again: {} (uplink phase known for {})",
        s.planned_again, p.phase_known
    );
    println!(
        "not reachable on this route: {} (contact too short {}, never in range {}, \
         interval too long {}, too soon {})",
        s.not_reachable, p.contact_too_short, p.never_in_range, p.interval_too_long, p.too_soon
    );
    if s.at_target > 0 {
        println!("at the target by METERS.csv, not planned: {}", s.at_target);
    }
    let departure = shift.waypoints.first().and_then(|w| w.time);
    println!(
        "next shift: WAKEs from {}, van leaves {}",
        clock::format(shift.start),
        departure.map(clock::format).unwrap_or_default()
    );
    print_capacity(p);
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Whether `a` and `b` are one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// The reports of every source (`--reports`), merged: each meter's latest
/// of them all; with `signed_only`, only those known to come from their
/// meter.
pub(crate) fn read_reports(sources: &[String], signed_only: bool) -> anyhow::Result<Reports> {
    let mut reports = Reports::default();
    for source in sources {
        reports.merge(read_source(source, signed_only)?);
    }
    Ok(reports)
}

/// The reports from a CSV export, a SQLite store or PostgreSQL.
fn read_source(source: &str, signed_only: bool) -> anyhow::Result<Reports> {
    let parse = match signed_only {
        true => reports_csv::parse_authenticated,
        false => reports_csv::parse,
    };
    match StoreLocation::parse(source) {
        StoreLocation::Sqlite(path) => {
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if !bytes.starts_with(SQLITE_MAGIC) {
                return Ok(parse(&path, &bytes)?);
            }
            let store = ReportStore::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let mut export = Vec::new();
            store
                .export_csv(&mut export)
                .with_context(|| format!("cannot read the reports of {}", path.display()))?;
            Ok(parse(&path, &export)?)
        }
        StoreLocation::Postgres(url) => {
            let config = parse_url(&url)?;
            let name = describe(&config);
            let export = runtime()?.block_on(async {
                let van = VanId::new("replan").context("a van id")?;
                let store = PgStore::connect(config, van)
                    .await
                    .with_context(|| format!("cannot reach {name}"))?;
                store
                    .export_csv()
                    .await
                    .with_context(|| format!("cannot read the reports of {name}"))
            })?;
            Ok(parse(Path::new(&name), &export)?)
        }
    }
}
