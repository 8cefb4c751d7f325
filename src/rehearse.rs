//! `otavan rehearse`: run a fleet rehearsal and write its results.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use otavan_sim::live::{LiveOptions, rehearse_live};
use otavan_sim::{Options, Override, Scenario, output, rehearse};

/// Arguments of `otavan rehearse`.
#[derive(clap::Args)]
pub struct RehearseArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Seed of every random draw: the same scenario, options and seed give
    /// the same report.json, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write report.json, meters.csv, scenario.toml and the plots
    /// (default: rehearsal-NAME, NAME the scenario's file name).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Override a scenario value, e.g. --set van.speed_kmh=30 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<Override>,
    /// Where firmware deltas of a release_dir are cached.
    #[arg(long, default_value = "otavan-patches")]
    patch_cache: PathBuf,
    /// Run the real client, LoRaWAN stack and server request handling for
    /// every meter, in virtual time (needs [release] release_dir).
    #[arg(long)]
    live: bool,
    /// Live meters (default: the scenario's fleet.meters).
    #[arg(long, value_name = "N", requires = "live")]
    meters: Option<u32>,
    /// Write every LoRaWAN frame as JSON lines (PHYPayload hex and the
    /// session keys) for standard decoders.
    #[arg(long, value_name = "FILE", requires = "live")]
    lora_log: Option<PathBuf>,
    /// Where the live meters' directories go (default: under /dev/shm or
    /// the temporary folder; removed at the end).
    #[arg(long, value_name = "DIR", requires = "live")]
    meters_dir: Option<PathBuf>,
    /// Also run the analytic mode and put both in report.json.
    #[arg(long, requires = "live")]
    compare: bool,
}

/// Runs the rehearsal.
pub fn run(args: RehearseArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let scenario = Scenario::load(&args.scenario, &args.set)?;
    let name = args
        .scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".into());
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("rehearsal-{name}")));
    let options = Options {
        seed: args.seed,
        patch_cache: Some(args.patch_cache),
        record_frames: false,
    };
    let bar = LateBar::new(started);
    let rehearsal = if args.live {
        let live = LiveOptions {
            base: options,
            meters: args.meters,
            meters_dir: args.meters_dir,
            out_dir: out.clone(),
            lora_log: args.lora_log,
            compare: args.compare,
        };
        rehearse_live(&scenario, &name, &live, &mut |share| bar.set(share))?
    } else {
        rehearse(&scenario, &name, &options, &mut |share| bar.set(share))?
    };
    bar.finish();
    let files = output::write(&out, &scenario, &rehearsal)
        .with_context(|| format!("writing the results into {}", out.display()))?;
    let elapsed = started.elapsed();
    let r = &rehearsal.report;
    let events_per_s = r.events as f64 / elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "rehearsed {} meters in {:.2} s wall ({} events, {:.0} events/s)",
        r.meters,
        elapsed.as_secs_f64(),
        r.events,
        events_per_s
    );
    let hours = |t: Option<f64>| t.map_or("never".to_string(), |s| format!("{:.1} h", s / 3600.0));
    println!(
        "{}: {:.1} % of {} meters at {} (updated {}), 90 % after {}, 99 % after {}; FUOTA baseline: {:.1} %, 99 % after {}",
        r.scenario,
        100.0 * r.updated_fraction,
        r.meters,
        r.release.target,
        r.updated,
        hours(r.time_to_90_s),
        hours(r.time_to_99_s),
        100.0 * r.fuota_baseline.updated_fraction,
        hours(r.fuota_baseline.time_to_99_s),
    );
    if let Some(live) = &r.live {
        let c = &live.checks;
        println!(
            "live: {} meters ran the real client; {} exactly at the target, {} exactly at their source, {} in neither; report store agrees for {} of {}",
            live.meters,
            c.exactly_target,
            c.exactly_source,
            c.mismatched.len(),
            c.store_agrees,
            c.meters_checked
        );
        if let Some(a) = &r.analytic {
            println!(
                "analytic on the same scenario: {:.1} % at the target (live {:.1} %)",
                100.0 * a.updated_fraction,
                100.0 * r.updated_fraction
            );
        }
    }
    for file in files {
        println!("wrote {}", file.display());
    }
    if let Some(live) = &r.live
        && !live.checks.passed()
    {
        anyhow::bail!(
            "live checks failed: {:?} {:?}",
            live.checks.mismatched.iter().take(5).collect::<Vec<_>>(),
            live.checks
                .store_disagrees
                .iter()
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// A progress bar on stderr that only appears once a run has taken more
/// than a second.
struct LateBar {
    started: Instant,
    bar: ProgressBar,
}

impl LateBar {
    fn new(started: Instant) -> LateBar {
        let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} rehearsing [{bar:40}] {percent:>3}% of campaign time, {elapsed} wall",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        LateBar { started, bar }
    }

    fn set(&self, share: f64) {
        if self.bar.is_hidden() && self.started.elapsed() > Duration::from_secs(1) {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar
            .set_position((share.clamp(0.0, 1.0) * 1000.0) as u64);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
