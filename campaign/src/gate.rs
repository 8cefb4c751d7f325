//! Wave gates: whether a wave's WAKEs may go out, judged from the reports
//! of the wave before it.
//!
//! Each planned meter's latest report ([`crate::reports_csv`]) gives its
//! [`Outcome`]: updated (at the target, as `campaign replan` counts done:
//! a van report `UPDATED` to it or a LoRa status uplink running it),
//! failed (a van `FAILED`, or a status uplink's failed attempt), rolled
//! back (a status uplink `REVERTED`), in progress (any other report) or
//! no report. The first wave's gate is always open. The gate of wave n+1,
//! with wave n's gate open:
//!
//! 1. waits while fewer than `min_samples` of wave n's meters have a
//!    final report (updated, failed or rolled back): a rate from too few
//!    samples neither opens nor trips it;
//! 2. trips when failed or rolled back meters are more than
//!    `max_failure_percent` or `max_rollback_percent` of those samples;
//! 3. opens when at least `min_updated_percent` of wave n's planned meters
//!    are updated, and waits otherwise.
//!
//! A gate after a waiting one waits; after a tripped one it is tripped
//! too (the campaign is halted). A tripped gate the operator resumed
//! (`campaign resume`) is open.

use std::collections::{BTreeMap, BTreeSet};

use otavan_protocol::lora::OtaResult;
use otavan_protocol::{UpdateState, Version};
use otavan_store::StoredState;
use serde::Serialize;

use crate::deveui::DevEui;
use crate::replan::is_done;
use crate::reports_csv::{MeterReport, Reports};
use crate::waves::Assignment;

/// The thresholds of every gate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GateSettings {
    /// Per cent of a wave's planned meters that must be updated.
    pub min_updated_percent: f64,
    /// The highest failure rate, per cent of final reports.
    pub max_failure_percent: f64,
    /// The highest rollback rate, per cent of final reports.
    pub max_rollback_percent: f64,
    /// Final reports needed before a rate is judged.
    pub min_samples: usize,
}

/// What a meter's latest report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At the target.
    Updated,
    /// Its update failed.
    Failed,
    /// It went back to its old version.
    RolledBack,
    /// Heard, with no final outcome yet.
    InProgress,
    /// Never heard.
    NoReport,
}

/// The outcome of a meter whose latest report is `report`.
pub fn outcome(report: Option<&MeterReport>, target: Option<&Version>) -> Outcome {
    let Some(report) = report else {
        return Outcome::NoReport;
    };
    if is_done(report, target) {
        return Outcome::Updated;
    }
    match report.state {
        StoredState::Van(UpdateState::Failed)
        | StoredState::Lora(
            OtaResult::Refused
            | OtaResult::DownloadFailed
            | OtaResult::VerificationFailed
            | OtaResult::NoSpace
            | OtaResult::Interrupted
            | OtaResult::WifiJoinFailed,
        ) => Outcome::Failed,
        StoredState::Lora(OtaResult::Reverted) => Outcome::RolledBack,
        _ => Outcome::InProgress,
    }
}

/// A gate's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// The wave's WAKEs may go out.
    Open,
    /// Not yet: too few reports, or too few updated.
    Waiting,
    /// The wave before failed its thresholds: the campaign halts.
    Tripped,
}

impl GateState {
    /// Its name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Open => "open",
            GateState::Waiting => "waiting",
            GateState::Tripped => "tripped",
        }
    }
}

/// One wave: its counts and its gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaveStatus {
    /// Its number, from 1.
    pub wave: usize,
    /// Its name.
    pub name: String,
    /// Planned meters.
    pub planned: usize,
    /// Updated to the target.
    pub updated: usize,
    /// Failed.
    pub failed: usize,
    /// Rolled back.
    pub rolled_back: usize,
    /// Heard, not final yet.
    pub in_progress: usize,
    /// Never heard.
    pub no_report: usize,
    /// Whether its WAKEs may go out.
    pub gate: GateState,
    /// Why, with the figures.
    pub reason: String,
}

impl WaveStatus {
    /// Final reports: updated, failed or rolled back.
    pub fn samples(&self) -> usize {
        self.updated + self.failed + self.rolled_back
    }
}

/// Each wave's counts and gate, in wave order. A gate in `resumed` (wave
/// numbers the operator resumed) that would trip is open instead, its
/// reason saying so.
pub fn evaluate(
    waves: &[Assignment],
    reports: &Reports,
    target: Option<&Version>,
    settings: &GateSettings,
    resumed: &BTreeSet<usize>,
) -> Vec<WaveStatus> {
    let mut by_wave: BTreeMap<usize, WaveStatus> = BTreeMap::new();
    for a in waves {
        let w = by_wave.entry(a.wave).or_insert_with(|| WaveStatus {
            wave: a.wave,
            name: a.name.clone(),
            planned: 0,
            updated: 0,
            failed: 0,
            rolled_back: 0,
            in_progress: 0,
            no_report: 0,
            gate: GateState::Open,
            reason: String::new(),
        });
        w.planned += 1;
        match outcome(reports.latest(&a.dev_eui), target) {
            Outcome::Updated => w.updated += 1,
            Outcome::Failed => w.failed += 1,
            Outcome::RolledBack => w.rolled_back += 1,
            Outcome::InProgress => w.in_progress += 1,
            Outcome::NoReport => w.no_report += 1,
        }
    }
    let mut out: Vec<WaveStatus> = by_wave.into_values().collect();
    for i in 0..out.len() {
        let (gate, reason) = match i.checked_sub(1).map(|p| &out[p]) {
            None => (GateState::Open, "the first wave".to_owned()),
            Some(before) => match before.gate {
                GateState::Open => match judge(before, settings) {
                    (GateState::Tripped, why) if resumed.contains(&out[i].wave) => (
                        GateState::Open,
                        format!("resumed by the operator after: {why}"),
                    ),
                    judged => judged,
                },
                GateState::Waiting => (
                    GateState::Waiting,
                    format!("wave {} ({}) is not open yet", before.wave, before.name),
                ),
                GateState::Tripped => (
                    GateState::Tripped,
                    format!("halted at wave {} ({})", before.wave, before.name),
                ),
            },
        };
        out[i].gate = gate;
        out[i].reason = reason;
    }
    out
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The gate after `wave`, from its counts.
fn judge(wave: &WaveStatus, s: &GateSettings) -> (GateState, String) {
    let name = format!("wave {} ({})", wave.wave, wave.name);
    if wave.planned == 0 {
        return (GateState::Open, format!("{name} has no meters"));
    }
    let samples = wave.samples();
    if samples < s.min_samples {
        return (
            GateState::Waiting,
            format!(
                "{name}: {samples} final report(s) of {} meters, rates are judged from \
                 --min-samples {}",
                wave.planned, s.min_samples
            ),
        );
    }
    let failure = percent(wave.failed, samples);
    let rollback = percent(wave.rolled_back, samples);
    if failure > s.max_failure_percent {
        return (
            GateState::Tripped,
            format!(
                "{name}: failure rate {failure:.1} % ({} of {samples}) above \
                 --max-failure-rate {} %",
                wave.failed, s.max_failure_percent
            ),
        );
    }
    if rollback > s.max_rollback_percent {
        return (
            GateState::Tripped,
            format!(
                "{name}: rollback rate {rollback:.1} % ({} of {samples}) above \
                 --max-rollback-rate {} %",
                wave.rolled_back, s.max_rollback_percent
            ),
        );
    }
    let updated = percent(wave.updated, wave.planned);
    let figures = format!(
        "{name}: {updated:.1} % updated ({} of {}), failure rate {failure:.1} %, rollback \
         rate {rollback:.1} %",
        wave.updated, wave.planned
    );
    if updated >= s.min_updated_percent {
        (GateState::Open, figures)
    } else {
        (
            GateState::Waiting,
            format!("{figures}; --min-updated is {} %", s.min_updated_percent),
        )
    }
}

/// The meters of open waves, the only ones whose WAKEs may go out.
pub fn open_meters(waves: &[Assignment], status: &[WaveStatus]) -> Vec<DevEui> {
    waves
        .iter()
        .filter(|a| {
            status
                .iter()
                .any(|s| s.wave == a.wave && s.gate == GateState::Open)
        })
        .map(|a| a.dev_eui)
        .collect()
}

#[cfg(test)]
mod tests;
