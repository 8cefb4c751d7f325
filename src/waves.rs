//! `otavan campaign status` and the wave gates `campaign push` obeys:
//! flags onto `otavan_campaign::gate`, WAVES.csv and the reports, each
//! wave's counts and gate onto stdout, every gate decision into the
//! decisions log (PLAN.csv.decisions, one JSON object a line).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use otavan_campaign::gate::{self, GateSettings, WaveStatus};
use otavan_campaign::plan_csv::{self, PlanRow};
use otavan_campaign::reports_csv::Reports;
use otavan_campaign::waves::Assignment;
use otavan_campaign::{clock, waves_csv};
use otavan_protocol::Version;
use otavan_protocol::lora::VersionTag;
use time::OffsetDateTime;

use crate::campaign::beside;
use crate::replan::read_reports;

/// The gates' inputs and thresholds (`campaign status` and `push`).
#[derive(clap::Args, Clone)]
pub struct GateArgs {
    /// WAVES.csv of `campaign plan --waves` (default: WAVES.csv beside the
    /// plan, when there is one).
    #[arg(long, value_name = "WAVES.csv")]
    waves: Option<PathBuf>,
    /// What the meters said: REPORTS.csv, the van's otavan.db or
    /// postgres://user@host/db; repeatable (each meter's latest report of
    /// them all counts).
    #[arg(long, value_name = "REPORTS.csv|otavan.db|postgres://...")]
    reports: Vec<String>,
    /// Count only reports known to come from their meter (signed by it,
    /// `verified`, or LoRa status uplinks, `network`): an UPDATED or FAILED
    /// that anyone on the van's WiFi posted is left out (docs/security.md).
    #[arg(long)]
    require_signed_reports: bool,
    /// The campaign's target version (needed when the WAKEs carry its
    /// tag): a meter is updated when its latest report says it runs it.
    #[arg(long)]
    target: Option<Version>,
    /// Per cent of a wave's meters that must be updated before the next
    /// wave's gate opens.
    #[arg(long, default_value_t = 90.0, value_parser = parse_percent)]
    min_updated: f64,
    /// The highest failure rate a wave may have (per cent of its final
    /// reports) before the campaign halts.
    #[arg(long, default_value_t = 5.0, value_parser = parse_percent)]
    max_failure_rate: f64,
    /// The highest rollback rate a wave may have (per cent of its final
    /// reports) before the campaign halts.
    #[arg(long, default_value_t = 2.0, value_parser = parse_percent)]
    max_rollback_rate: f64,
    /// Final reports (updated, failed, rolled back) a wave needs before
    /// its rates are judged; with fewer the next gate waits.
    #[arg(long, default_value_t = 5)]
    min_samples: usize,
}

/// A per-cent flag: `5`, `5%` or `2.5 %`, from 0 to 100.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a per cent from 0 to 100")),
    }
}

impl GateArgs {
    /// `--target`.
    pub fn target(&self) -> Option<&Version> {
        self.target.as_ref()
    }

    /// The `--reports` that are the fleet database (postgres://).
    pub fn fleet_reports(&self) -> impl Iterator<Item = &str> {
        self.reports.iter().map(String::as_str).filter(|r| {
            matches!(
                otavan_store::StoreLocation::parse(r),
                otavan_store::StoreLocation::Postgres(_)
            )
        })
    }

    fn settings(&self) -> GateSettings {
        GateSettings {
            min_updated_percent: self.min_updated,
            max_failure_percent: self.max_failure_rate,
            max_rollback_percent: self.max_rollback_rate,
            min_samples: self.min_samples,
        }
    }

    /// The waves file of `plan`, if it has one.
    fn waves_path(&self, plan: &Path) -> Option<PathBuf> {
        self.waves
            .clone()
            .or_else(|| Some(beside(plan, "WAVES.csv")).filter(|p| p.exists()))
    }
}

/// A plan's waves judged from its reports.
pub struct Judged {
    /// WAVES.csv's rows.
    pub waves: Vec<Assignment>,
    /// The reports read.
    pub reports: Reports,
    /// Each wave's counts and gate.
    pub status: Vec<WaveStatus>,
    /// The thresholds.
    pub settings: GateSettings,
    /// The target, when given.
    pub target: Option<Version>,
}

/// Judges the waves of the plan `rows` (read from `plan`), or `None` when
/// the plan has no waves file.
///
/// # Errors
///
/// A bad waves file or report source, a waves file that does not cover
/// the plan, or WAKEs with a version tag and no `--target`.
pub fn judge(plan: &Path, rows: &[PlanRow], args: &GateArgs) -> anyhow::Result<Option<Judged>> {
    let Some(path) = args.waves_path(plan) else {
        return Ok(None);
    };
    let waves = waves_csv::read(&path)?;
    check_covers(&path, plan, rows, &waves)?;
    check_target(rows, args.target.as_ref())?;
    let reports = read_reports(&args.reports, args.require_signed_reports)?;
    let settings = args.settings();
    let resumed = resumed(plan)?;
    let status = gate::evaluate(&waves, &reports, args.target.as_ref(), &settings, &resumed);
    Ok(Some(Judged {
        waves,
        reports,
        status,
        settings,
        target: args.target.clone(),
    }))
}

/// The waves `campaign resume` reopened, from the decisions log.
fn resumed(plan: &Path) -> anyhow::Result<BTreeSet<usize>> {
    let path = decisions_path(plan);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A line cut short by a crash (no newline) was never a decision.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut waves = BTreeSet::new();
    for (n, line) in complete.lines().enumerate() {
        let entry: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a decision", path.display(), n + 1))?;
        if entry["decision"] == "resume"
            && let Some(wave) = entry["wave"].as_u64()
        {
            waves.insert(usize::try_from(wave).unwrap_or(usize::MAX));
        }
    }
    Ok(waves)
}

/// Every planned meter is in one wave, and every wave's meter planned.
fn check_covers(
    path: &Path,
    plan: &Path,
    rows: &[PlanRow],
    waves: &[Assignment],
) -> anyhow::Result<()> {
    let planned: std::collections::HashSet<_> = rows.iter().map(|r| r.dev_eui).collect();
    let waved: std::collections::HashSet<_> = waves.iter().map(|a| a.dev_eui).collect();
    if let Some(missing) = rows.iter().find(|r| !waved.contains(&r.dev_eui)) {
        bail!(
            "{}: {} of {} is in no wave (write the plan and its waves again)",
            path.display(),
            missing.dev_eui,
            plan.display()
        );
    }
    if let Some(extra) = waves.iter().find(|a| !planned.contains(&a.dev_eui)) {
        bail!(
            "{}: {} is not in {}: these waves are another plan's",
            path.display(),
            extra.dev_eui,
            plan.display()
        );
    }
    Ok(())
}

/// WAKEs that carry a version tag need `--target`, and the same one.
fn check_target(rows: &[PlanRow], target: Option<&Version>) -> anyhow::Result<()> {
    let Some(tag) = rows.iter().find_map(|r| r.wake.version_tag) else {
        return Ok(());
    };
    match target {
        None => bail!("the plan's WAKEs carry version tag {tag}: give its --target"),
        Some(t) if VersionTag::of(t) != tag => bail!(
            "--target {t} (tag {}) is not the plan's target (tag {tag})",
            VersionTag::of(t)
        ),
        Some(_) => Ok(()),
    }
}

/// Appends each gate's decision to the decisions log of `plan`
/// (PLAN.csv.decisions): time, wave, gate, reason, counts, thresholds, and
/// whether it was a dry run (nothing sent).
///
/// # Errors
///
/// The I/O error.
pub fn log_decisions(
    plan: &Path,
    judged: &Judged,
    now: OffsetDateTime,
    dry_run: bool,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for wave in &judged.status {
        let entry = serde_json::json!({
            "time": clock::format(now),
            "decision": format!("gate {}", wave.gate.as_str()),
            "wave": wave,
            "thresholds": judged.settings,
            "target": judged.target.as_ref().map(Version::as_str),
            "dry_run": dry_run,
        });
        text += &entry.to_string();
        text.push('\n');
    }
    append(plan, &text)
}

impl Judged {
    /// The tripped gate that halts the campaign, if one has.
    pub fn tripped(&self) -> Option<&WaveStatus> {
        self.status
            .iter()
            .find(|w| w.gate == gate::GateState::Tripped)
    }

    /// Whether `dev_eui`'s latest report shows it updated.
    pub fn updated(&self, dev_eui: &otavan_campaign::deveui::DevEui) -> bool {
        gate::outcome(self.reports.latest(dev_eui), self.target.as_ref()) == gate::Outcome::Updated
    }
}

/// Appends one decision (`halt`, `resume`, `cancel`) to the decisions log
/// of `plan`, with its figures.
///
/// # Errors
///
/// The I/O error.
pub fn log_decision(plan: &Path, entry: serde_json::Value) -> anyhow::Result<()> {
    append(plan, &format!("{entry}\n"))
}

fn append(plan: &Path, text: &str) -> anyhow::Result<()> {
    let path = decisions_path(plan);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The decisions log of `plan`.
pub fn decisions_path(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".decisions");
    PathBuf::from(name)
}

/// `campaign status`.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The plan (from `campaign plan --waves`).
    #[arg(long)]
    plan: PathBuf,
    #[command(flatten)]
    gate: GateArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `campaign status`: each wave's counts and its gate.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let rows = plan_csv::read(&args.plan)?;
    let judged = judge(&args.plan, &rows, &args.gate)?.with_context(|| {
        format!(
            "{} has no waves: plan with --waves, or give --waves WAVES.csv",
            args.plan.display()
        )
    })?;
    if args.gate.reports.is_empty() {
        eprintln!("otavan: no --reports given: every meter counts as never heard");
    }
    if args.json {
        let json = serde_json::json!({
            "plan": args.plan.display().to_string(),
            "target": judged.target.as_ref().map(Version::as_str),
            "thresholds": judged.settings,
            "waves": judged.status,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "wave  name        planned  updated  failed  rolled_back  in_progress  no_report  gate"
    );
    for w in &judged.status {
        println!(
            "{:<5} {:<11} {:>7}  {:>7}  {:>6}  {:>11}  {:>11}  {:>9}  {}: {}",
            w.wave,
            w.name,
            w.planned,
            w.updated,
            w.failed,
            w.rolled_back,
            w.in_progress,
            w.no_report,
            w.gate.as_str(),
            w.reason
        );
    }
    Ok(())
}

/// `campaign missed`.
#[derive(clap::Args)]
pub struct MissedArgs {
    /// The plan of the pass.
    #[arg(long)]
    plan: PathBuf,
    /// What the meters said: REPORTS.csv, the van's otavan.db or
    /// postgres://user@host/db; repeatable.
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
    /// The campaign's target version (needed when the WAKEs carry its tag).
    #[arg(long)]
    target: Option<Version>,
    /// Write MISSED.csv here (atomically) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `campaign missed`: the meters the pass missed, with the reason
/// the reports support, as CSV.
pub fn missed(args: MissedArgs) -> anyhow::Result<()> {
    let rows = plan_csv::read(&args.plan)?;
    check_target(&rows, args.target.as_ref())?;
    let waves_path = beside(&args.plan, "WAVES.csv");
    let waves = match waves_path.exists() {
        true => waves_csv::read(&waves_path)?,
        false => Vec::new(),
    };
    let reports = read_reports(&args.reports, args.require_signed_reports)?;
    let missed = otavan_campaign::missed::missed(&rows, &waves, &reports, args.target.as_ref());
    let text = otavan_campaign::missed::to_csv(&missed);
    match &args.out {
        Some(out) => {
            otavan_durable::write_atomic(out, &text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "otavan: {} of {} meters missed; wrote {}",
                missed.len(),
                rows.len(),
                out.display()
            );
        }
        None => std::io::stdout().write_all(&text)?,
    }
    Ok(())
}
