//! What a rehearsal tells the team: `report.json` and `meters.csv`.
//!
//! Everything here is a function of the run, never of the wall clock, so
//! the same scenario and seed give the same bytes.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::fleet::Fleet;
use crate::fuota::FuotaBaseline;
use crate::losses::{Loss, Losses};
use crate::radio::Radio;
use crate::release::UpdateSizes;
use crate::route::Drives;
use crate::scenario::{Replan, Scenario};
use crate::simulation::{MeterResult, Outcome, PassFigures, RunResult};
use otavan_planning::time::as_secs_f64;

/// Summary statistics of a quantity over meters.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        if values.is_empty() {
            return Spread {
                mean: 0.0,
                p50: 0.0,
                p95: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Spread {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            p50: at(0.5),
            p95: at(0.95),
            max: values[values.len() - 1],
        }
    }
}

/// The LoRaWAN side of the campaign.
#[derive(Debug, Clone, Serialize)]
pub struct LoraSummary {
    /// The region.
    pub region: String,
    /// Gateways.
    pub gateways: usize,
    /// Meters per spreading factor (`"SF7"`...), and without coverage.
    pub spreading_factors: BTreeMap<String, u64>,
    /// WAKEs queued on the network server (one per planned pass).
    pub wakes_planned: u64,
    /// Gateway airtime spent on WAKEs, seconds.
    pub downlink_airtime_s: f64,
}

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RehearsalReport {
    /// The scenario's name (its file name without extension).
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Meters in the fleet.
    pub meters: u64,
    /// Meters already at (or above) the target before the campaign.
    pub already_current: u64,
    /// Meters updated during the campaign.
    pub updated: u64,
    /// Meters at the target at the end (already current or updated), as a
    /// share of all meters.
    pub updated_fraction: f64,
    /// Meters that need the update and that the contacts of this route
    /// could have updated at best (`otavan_planning::limit`).
    pub physical_limit: u64,
    /// `updated / physical_limit` (null when nothing is updatable).
    pub planning_efficiency: Option<f64>,
    /// Every meter that needed the update and did not get it, by one loss
    /// each: `updated` plus these is every meter not already current.
    pub losses: Losses,
    /// Seconds from t = 0 until half the meters are at the target (null:
    /// never).
    pub time_to_50_s: Option<f64>,
    /// Until 90 %.
    pub time_to_90_s: Option<f64>,
    /// Until 99 %.
    pub time_to_99_s: Option<f64>,
    /// Complete passes over their routes, all vans together.
    pub van_passes: u32,
    /// Kilometres driven, all vans together.
    pub van_km: f64,
    /// Hours the vans drove or stopped (shift time used), all together.
    pub van_hours: f64,
    /// The vans' pace plans, all vans and passes together.
    pub pace: PaceSummary,
    /// WAKE downlinks the gateways transmitted.
    pub downlinks_sent: u64,
    /// Bytes the meters downloaded, unfinished attempts included.
    pub bytes_transferred: u64,
    /// Mean campaign energy of a meter that needed the update, joules.
    pub energy_per_meter_j: f64,
    /// The spread of that energy.
    pub energy_j: Spread,
    /// Mean energy as a share of a full battery.
    pub battery_share_per_meter: f64,
    /// Meters not at the target at the end, by the last thing that went
    /// wrong for them.
    pub failures: BTreeMap<String, u64>,
    /// Everything that went wrong, as often as it did (a meter can count
    /// several times).
    pub incidents: BTreeMap<String, u64>,
    /// The target version and the bytes each source version needs.
    pub release: ReleaseSummary,
    /// The LoRaWAN side.
    pub lora: LoraSummary,
    /// The same update by LoRaWAN FUOTA.
    pub fuota_baseline: FuotaBaseline,
    /// Simulation events processed (live: trigger steps).
    pub events: u64,
    /// Each pass's plan and outcome, with `campaign.replan =
    /// "after-pass"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_pass: Option<Vec<PassFigures>>,
    /// Multicast WAKE groups (`campaign.wake = "multicast"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicast: Option<crate::multicast::MulticastFigures>,
    /// A live rehearsal's own figures and end-of-run checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::live::LiveSummary>,
    /// The analytic mode on the same scenario (live runs with `--compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytic: Option<crate::live::AnalyticSummary>,
}

/// The release as the campaign saw it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    /// The target version.
    pub target: String,
    /// Bytes per source version.
    pub bytes: BTreeMap<String, u64>,
}

/// Everything [`RehearsalReport::build`] reads.
pub struct ReportInputs<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Its name.
    pub name: &'a str,
    /// The seed.
    pub seed: u64,
    /// The meters.
    pub fleet: &'a Fleet,
    /// The network.
    pub radio: &'a Radio,
    /// The vans' drives.
    pub drives: &'a Drives,
    /// The run.
    pub run: &'a RunResult,
    /// The release.
    pub sizes: &'a UpdateSizes,
    /// The baseline.
    pub fuota: &'a FuotaBaseline,
    /// Meters the route could have updated at best.
    pub physical_limit: u64,
    /// Each meter's loss.
    pub losses: &'a [Option<Loss>],
}

impl RehearsalReport {
    /// Sums up a run.
    pub fn build(i: &ReportInputs<'_>) -> RehearsalReport {
        let meters = i.run.meters.len() as u64;
        let already_current = count(&i.run.meters, |o| matches!(o, Outcome::AlreadyCurrent));
        let updated = count(&i.run.meters, |o| matches!(o, Outcome::Updated(_)));
        let curve = progress_curve(&i.run.meters);
        let reach = |share: f64| {
            curve
                .iter()
                .find(|(_, f)| *f >= share - 1e-12)
                .map(|(t, _)| *t)
        };
        let mut failures = BTreeMap::new();
        for r in &i.run.meters {
            if let Outcome::Failed(cause) = r.outcome {
                *failures.entry(cause.as_str().to_string()).or_insert(0) += 1;
            }
        }
        let needing: Vec<f64> = i
            .run
            .meters
            .iter()
            .filter(|r| r.outcome != Outcome::AlreadyCurrent)
            .map(|r| r.energy_j)
            .collect();
        let energy = Spread::of(needing);
        let battery_j = i.scenario.fleet.battery_mah / 1000.0 * 3600.0 * i.scenario.fleet.battery_v;
        let mut spreading_factors = BTreeMap::new();
        for m in 0..i.fleet.meters.len() {
            let key = i
                .radio
                .sf(m)
                .map_or("none".to_string(), |sf| format!("SF{sf}"));
            *spreading_factors.entry(key).or_insert(0) += 1;
        }
        RehearsalReport {
            scenario: i.name.to_string(),
            seed: i.seed,
            meters,
            already_current,
            updated,
            updated_fraction: (already_current + updated) as f64 / meters as f64,
            physical_limit: i.physical_limit,
            planning_efficiency: (i.physical_limit > 0)
                .then(|| updated as f64 / i.physical_limit as f64),
            losses: Losses::count(i.losses),
            time_to_50_s: reach(0.5),
            time_to_90_s: reach(0.9),
            time_to_99_s: reach(0.99),
            van_passes: i.drives.passes_completed,
            van_km: round3(i.drives.km),
            van_hours: round3(
                i.drives
                    .legs
                    .iter()
                    .map(|l| as_secs_f64(l.t1 - l.t0))
                    .sum::<f64>()
                    / 3600.0,
            ),
            pace: PaceSummary::of(i.scenario, i.drives),
            downlinks_sent: i.run.totals.downlinks_sent,
            bytes_transferred: i.run.meters.iter().map(|r| r.bytes).sum::<f64>().round() as u64,
            energy_per_meter_j: round3(energy.mean),
            battery_share_per_meter: energy.mean / battery_j,
            energy_j: energy,
            failures,
            incidents: i
                .run
                .totals
                .incidents
                .iter()
                .map(|(c, n)| (c.as_str().to_string(), *n))
                .collect(),
            release: ReleaseSummary {
                target: i.sizes.target.to_string(),
                bytes: i
                    .sizes
                    .bytes
                    .iter()
                    .map(|(v, b)| (v.to_string(), *b))
                    .collect(),
            },
            lora: LoraSummary {
                region: i.scenario.region().as_str().to_string(),
                gateways: i.radio.gateways.len(),
                spreading_factors,
                wakes_planned: i.run.totals.wakes_planned,
                downlink_airtime_s: as_secs_f64(i.run.totals.downlink_airtime),
            },
            fuota_baseline: i.fuota.clone(),
            events: i.run.totals.events,
            per_pass: (i.scenario.campaign.replan == Replan::AfterPass)
                .then(|| i.run.passes.clone()),
            multicast: None,
            live: None,
            analytic: None,
        }
    }
}

/// `report.json`'s `pace`: what the pace plans do, all vans and passes
/// together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaceSummary {
    /// Route legs, all vans.
    pub legs: u64,
    /// Legs slower than `van.speed_kmh`.
    pub slowed_legs: u64,
    /// Stops.
    pub stops: u64,
    /// Seconds of stops.
    pub stop_s: f64,
    /// Seconds the passes take beyond driving them at `van.speed_kmh`.
    pub extra_s: f64,
}

impl PaceSummary {
    fn of(scenario: &Scenario, drives: &Drives) -> PaceSummary {
        let speed = scenario.van.speed_kmh / 3.6;
        let paces = drives.paces.iter().flatten();
        let legs = paces.clone().flat_map(|p| &p.legs);
        PaceSummary {
            legs: legs.clone().count() as u64,
            slowed_legs: legs.clone().filter(|l| l.speed < speed).count() as u64,
            stops: legs.clone().filter(|l| l.stop.is_some()).count() as u64,
            // A fold from +0.0: an empty f64 sum is -0.0.
            stop_s: round3(
                legs.filter_map(|l| l.stop)
                    .fold(0.0, |sum, s| sum + s.seconds),
            ),
            extra_s: round3(paces.fold(0.0, |sum, p| sum + p.extra_s(speed))),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn count(meters: &[MeterResult], f: impl Fn(&Outcome) -> bool) -> u64 {
    meters.iter().filter(|r| f(&r.outcome)).count() as u64
}

/// The share of meters at the target over time, one point per update:
/// `(seconds, share)`, starting at t = 0 with the already-current ones.
pub fn progress_curve(meters: &[MeterResult]) -> Vec<(f64, f64)> {
    let total = meters.len() as f64;
    let mut at_target = meters
        .iter()
        .filter(|r| r.outcome == Outcome::AlreadyCurrent)
        .count() as f64;
    let mut times: Vec<u64> = meters
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Updated(t) => Some(t),
            _ => None,
        })
        .collect();
    times.sort_unstable();
    let mut curve = vec![(0.0, at_target / total)];
    for t in times {
        at_target += 1.0;
        curve.push((as_secs_f64(t), at_target / total));
    }
    curve
}

/// The outcome's name in `meters.csv` and on the map.
pub fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::AlreadyCurrent => "already_current",
        Outcome::Updated(_) => "updated",
        Outcome::Failed(cause) => cause.as_str(),
    }
}

/// Writes `meters.csv`: one row per meter; `loss` is empty for meters
/// updated or already current; `goodput_kb_s` is the meter's own
/// flash-bound goodput (drawn per meter, the most it takes from a van).
///
/// # Errors
///
/// The writer's I/O errors.
pub fn write_meters_csv(
    out: impl Write,
    fleet: &Fleet,
    radio: &Radio,
    run: &RunResult,
    losses: &[Option<Loss>],
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "meter",
        "x_m",
        "y_m",
        "install",
        "uplink_interval_s",
        "version",
        "sf",
        "wifi_range_m",
        "outcome",
        "loss",
        "updated_at_s",
        "bytes",
        "passes",
        "downlinks",
        "energy_j",
        "goodput_kb_s",
    ])?;
    let meters = fleet.meters.iter().zip(&fleet.profiles);
    for (m, (((spec, profile), r), loss)) in meters.zip(&run.meters).zip(losses).enumerate() {
        let updated_at = match r.outcome {
            Outcome::Updated(t) => format!("{:.3}", as_secs_f64(t)),
            _ => String::new(),
        };
        w.write_record([
            m.to_string(),
            format!("{:.1}", spec.pos.x),
            format!("{:.1}", spec.pos.y),
            fleet.installs[usize::from(profile.install)].clone(),
            (spec.interval / 1_000_000).to_string(),
            fleet.versions[usize::from(profile.version)].to_string(),
            radio.sf(m).map_or(String::new(), |sf| sf.to_string()),
            format!("{:.1}", spec.wifi_range_m),
            outcome_name(&r.outcome).to_string(),
            loss.map_or("", Loss::as_str).to_string(),
            updated_at,
            format!("{:.0}", r.bytes),
            r.sessions.to_string(),
            r.downlinks.to_string(),
            format!("{:.3}", r.energy_j),
            format!("{:.1}", profile.goodput_bps / 1000.0),
        ])?;
    }
    w.flush()
}
