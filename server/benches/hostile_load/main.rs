//! Hostile-load driver (issue 14): well-behaved meters downloading the
//! firmware while idle and slow-reading connections, a cache filler and
//! junk reporters press on a separately started `otavan serve`.
//!
//! ```text
//! cargo bench -p otavan-server --bench hostile_load -- --server 127.0.0.1:PORT [--duration 60]
//!     [--meters 1000] [--hostile 500] [--filler 10000] [--junk 200] [--seed 1]
//!     [--ramp 10] [--json OUT.json]
//! ```
//!
//! Every client connects from its own 127.0.0.0/8 address (the server caps
//! connections per address): meters from 127.1.x.y, hostile connections
//! 127.2.x.y, the filler 127.3.0.x, junk reporters 127.4.x.y, the probe
//! 127.5.0.1. Meters start no new update after `--duration` seconds; the
//! others stop when the last meter is done. Figures go to stdout as JSON
//! (and to `--json`); `bench/hostile-load.sh` turns them into a table.

mod filler;
mod hostile;
mod http;
mod junk;
mod meters;
mod probe;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Error, anyhow, bail};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::Endpoint;
use crate::meters::{Meter, MeterStats};

/// The driver's settings, from the command line.
#[derive(Debug, Clone)]
struct Args {
    server: SocketAddr,
    duration: Duration,
    ramp: Duration,
    meters: usize,
    hostile: usize,
    filler: usize,
    junk: usize,
    seed: u64,
    json: Option<String>,
}

/// Parses `--name value` pairs.
fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut args = Args {
        server: "127.0.0.1:8080".parse()?,
        duration: Duration::from_secs(60),
        ramp: Duration::from_secs(10),
        meters: 1000,
        hostile: 500,
        filler: 10_000,
        junk: 200,
        seed: 1,
        json: None,
    };
    let mut server_given = false;
    while let Some(flag) = argv.next() {
        if flag == "--bench" {
            continue; // cargo bench passes it to harness = false targets
        }
        let Some(value) = argv.next() else {
            bail!("{flag} needs a value");
        };
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| anyhow!("{flag}: {value:?} is not a whole number"))
        };
        match flag.as_str() {
            "--server" => {
                args.server = value
                    .parse()
                    .map_err(|_| anyhow!("--server: bad address {value:?}"))?;
                server_given = true;
            }
            "--duration" => args.duration = Duration::from_secs(number()?),
            "--ramp" => args.ramp = Duration::from_secs(number()?),
            "--meters" => args.meters = number()? as usize,
            "--hostile" => args.hostile = number()? as usize,
            "--filler" => args.filler = number()? as usize,
            "--junk" => args.junk = number()? as usize,
            "--seed" => args.seed = number()?,
            "--json" => args.json = Some(value),
            _ => bail!("unknown flag {flag}"),
        }
    }
    if !server_given {
        bail!("--server 127.0.0.1:PORT is required");
    }
    match args.server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {}
        other => bail!("--server must be in 127.0.0.0/8, not {other}"),
    }
    Ok(args)
}

/// Source address number `i` of `block`: 127.block.(i / 250).(i % 250 + 1).
fn source(block: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, block, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The signal that ends the hostile roles once the meters are done.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the run is over.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the run is over.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone: the run is over too.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Raises the soft open-files limit to the hard one: every client holds a
/// descriptor.
fn raise_fd_limit(needed: u64) -> Result<(), Error> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    limit.current = Some(hard.min(1 << 20));
    setrlimit(Resource::Nofile, limit)?;
    if hard < needed {
        bail!("open-files hard limit {hard} is below the {needed} this run needs (ulimit -Hn)");
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    let args = parse_args(std::env::args().skip(1))?;
    let needed = (args.meters * 2 + args.hostile + args.junk + 64) as u64;
    raise_fd_limit(needed)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let figures = runtime.block_on(drive(&args))?;
    let json = serde_json::to_string_pretty(&figures)?;
    if let Some(path) = &args.json {
        std::fs::write(path, &json).map_err(|e| anyhow!("writing {path}: {e}"))?;
    }
    println!("{json}");
    Ok(())
}

/// Runs every role at once and gathers the figures.
async fn drive(args: &Args) -> Result<serde_json::Value, Error> {
    let server = args.server;
    let endpoint = |block, i| Endpoint {
        server,
        source: source(block, i),
    };
    let manifest = meters::fetch_manifest(endpoint(6, 0))
        .await
        .map_err(|(_, e)| anyhow!("first manifest from {server}: {e}"))?;
    let firmware_path = manifest
        .firmware
        .as_ref()
        .and_then(|f| http::url_path(&f.url))
        .ok_or_else(|| anyhow!("the manifest for 1.0.0 names no firmware"))?
        .to_owned();

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = Stop(stop_rx);
    let started = Instant::now();
    let last_start = started + args.duration;

    let probe = tokio::spawn(probe::run(endpoint(5, 0), stop.clone()));
    let filler_endpoints = (0..4).map(|i| endpoint(3, i)).collect();
    let filler = tokio::spawn(filler::run(filler_endpoints, args.filler, stop.clone()));
    let hostile: Vec<_> = (0..args.hostile)
        .map(|i| {
            let behaviour = match i % 4 {
                0 | 1 => hostile::Behaviour::Idle,
                2 => hostile::Behaviour::Trickle,
                _ => hostile::Behaviour::Deaf,
            };
            tokio::spawn(hostile::run(
                endpoint(2, i),
                behaviour,
                firmware_path.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let junk: Vec<_> = (0..args.junk)
        .map(|i| tokio::spawn(junk::run(endpoint(4, i), i, stop.clone())))
        .collect();
    let meter_tasks: Vec<_> = (0..args.meters)
        .map(|i| {
            let offset = args.ramp.mul_f64(i as f64 / args.meters.max(1) as f64);
            tokio::spawn(meters::run(Meter {
                index: i,
                endpoint: endpoint(1, i),
                rate: meters::rate_for(args.seed, i),
                start: started + offset,
                last_start,
            }))
        })
        .collect();

    let mut meter_stats = MeterStats::default();
    for task in meter_tasks {
        meter_stats.merge(task.await?);
    }
    let meters_seconds = started.elapsed().as_secs_f64();
    stop_tx.send(true)?;

    let probe = probe.await?;
    let filler = filler.await?;
    let mut hostile_stats = hostile::HostileStats::default();
    for task in hostile {
        hostile_stats.merge(task.await?);
    }
    let mut junk_stats = junk::JunkStats::default();
    for task in junk {
        junk_stats.merge(task.await?);
    }
    for example in &meter_stats.examples {
        eprintln!("hostile_load: {example}");
    }
    Ok(serde_json::json!({
        "meters": args.meters,
        "meters_seconds": meters_seconds,
        "meter_updates_ok": meter_stats.cycles_ok,
        "meter_updates_failed": meter_stats.failed(),
        "meter_failures_by_stage": meter_stats.failures,
        "meter_reports_accepted": meter_stats.reports_accepted,
        "meter_firmware_bytes": meter_stats.bytes,
        "probe_count": probe.latencies_ms.len(),
        "probe_failures": probe.failures,
        "probe_p50_ms": probe.quantile(0.50),
        "probe_p99_ms": probe.quantile(0.99),
        "probe_max_ms": probe.quantile(1.0),
        "hostile": args.hostile,
        "hostile_connections": hostile_stats.connections,
        "hostile_connect_errors": hostile_stats.connect_errors,
        "filler_sent": filler.sent,
        "filler_statuses": filler.statuses,
        "filler_seconds": filler.seconds,
        "junk": args.junk,
        "junk_sent": junk_stats.sent,
        "junk_statuses": junk_stats.statuses,
        "junk_not_refused": junk_stats.not_refused(),
    }))
}
