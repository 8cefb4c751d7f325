//! `campaign replan`: the next shift's plan from what the last one missed.
//!
//! A meter of the old plan is done when its latest report
//! ([`crate::reports_csv`]) says it is at the target: a van report
//! `UPDATED` to the target, or a LoRa status uplink `UPDATED` or
//! `ALREADY_CURRENT` running it (by name, or `tag:` and its version tag).
//! Without a target (an old plan whose WAKEs carry no version tag) any
//! `UPDATED` or `ALREADY_CURRENT` counts. A missed meter's latest status uplink, when later
//! than the inventory's `last_uplink`, gives the phase of its uplinks. Every other meter of the old plan is planned again
//! with [`crate::plan::plan`], the planner `campaign plan` uses, on the
//! route moved to the next shift ([`next_shift`]); the new rows are in
//! route order, by expected contact (`campaign push` queues them by
//! `enqueue_at` whatever the order). The split, the order and the tally
//! are [`otavan_planning::replan`]'s, which rehearsals use too.
//!
//! The new plan needs a new campaign number: a meter that heard the old
//! plan's WAKE, or missed its window, ignores that campaign's number as
//! stale.

use std::collections::HashMap;

use otavan_planning::replan::{self, Status, Tally};
use otavan_protocol::lora::{OtaResult, VersionTag};
use otavan_protocol::{UpdateState, Version};
use otavan_store::StoredState;
use time::OffsetDateTime;

use crate::deveui::DevEui;
use crate::inventory::Meter;
use crate::plan::{self, PlanError, Settings, Summary};
use crate::plan_csv::PlanRow;
use crate::reports_csv::{MeterReport, Reports};
use crate::route::Waypoint;

/// Why no next plan can be made. Nothing is written then.
#[derive(Debug, thiserror::Error)]
pub enum ReplanError {
    /// The planner refused (route, speed).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The new campaign number is one the old plan used.
    #[error(
        "--campaign {0} is the old plan's campaign: meters that heard or missed its WAKE \
         ignore that number as stale; give a new one"
    )]
    SameCampaign(u16),
    /// The target does not match the old plan's WAKEs.
    #[error("{0}")]
    Target(String),
    /// Meters of the old plan that the inventory does not have.
    #[error("{} meter(s) of the old plan are not in METERS.csv: {}", .0.len(), list(.0))]
    NotInInventory(Vec<DevEui>),
    /// The next shift cannot be placed in time.
    #[error("{0}")]
    Shift(String),
}

fn list(euis: &[DevEui]) -> String {
    let shown: Vec<String> = euis.iter().take(10).map(DevEui::to_string).collect();
    let more = euis.len().saturating_sub(10);
    match more {
        0 => shown.join(", "),
        n => format!("{} and {n} more", shown.join(", ")),
    }
}

/// The next shift: when WAKEs may be queued from, and the route in its
/// time.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// No WAKE is queued before this.
    pub start: OffsetDateTime,
    /// The route, its times moved to the shift.
    pub waypoints: Vec<Waypoint>,
}

/// The next shift for `waypoints` after the `old` plan.
///
/// - `start` defaults to the end of the old plan's last expected contact
///   (the old shift is over), or to the shift's departure for an empty
///   old plan.
/// - The van leaves at `shift_start`, or by default at the route's own
///   first time moved by whole days to the first day it is not before
///   `start`. Every waypoint time moves by the same amount; a route
///   without times leaves at `shift_start`.
///
/// # Errors
///
/// [`ReplanError::Shift`] when the departure is unknown (a route whose
/// first waypoint has no time, and no `shift_start`) or a route mixes an
/// untimed first waypoint with later times.
pub fn next_shift(
    old: &[PlanRow],
    waypoints: &[Waypoint],
    start: Option<OffsetDateTime>,
    shift_start: Option<OffsetDateTime>,
) -> Result<Shift, ReplanError> {
    let first = waypoints.first().and_then(|w| w.time);
    if first.is_none()
        && let Some(timed) = waypoints.iter().find(|w| w.time.is_some())
    {
        return Err(ReplanError::Shift(format!(
            "ROUTE.csv line {}: the route has times but its first waypoint has none, so it \
             cannot be moved to the next shift (give the first waypoint a time)",
            timed.line
        )));
    }
    let start = start
        .or_else(|| old_shift_end(old))
        .or(shift_start)
        .or(first)
        .ok_or_else(|| ReplanError::Shift("give --start or --shift-start".into()))?;
    let departure = match (shift_start, first) {
        (Some(t), _) => t,
        (None, Some(first)) => {
            const DAY_US: i128 = 86_400_000_000;
            let late = (start - first).whole_microseconds().max(0);
            let days = i64::try_from((late + DAY_US - 1) / DAY_US).unwrap_or(i64::MAX / 86_400);
            first + time::Duration::days(days)
        }
        (None, None) => {
            return Err(ReplanError::Shift(
                "ROUTE.csv's first waypoint has no time: give --shift-start".into(),
            ));
        }
    };
    let moved = waypoints
        .iter()
        .enumerate()
        .map(|(i, w)| Waypoint {
            time: match (first, w.time) {
                (Some(first), Some(t)) => Some(t + (departure - first)),
                (None, _) if i == 0 => Some(departure),
                (_, t) => t,
            },
            ..w.clone()
        })
        .collect();
    Ok(Shift {
        start,
        waypoints: moved,
    })
}

/// When the old plan's last expected contact ends, to the second up.
pub fn old_shift_end(old: &[PlanRow]) -> Option<OffsetDateTime> {
    old.iter()
        .map(|r| {
            let end = r.expected_contact_at
                + time::Duration::seconds_f64(r.expected_contact_s.max(0.0).ceil());
            end.replace_nanosecond(0).unwrap_or(end)
        })
        .max()
}

/// Whether `report` says its meter is at `target` (without one: any
/// `UPDATED` or `ALREADY_CURRENT`).
pub fn is_done(report: &MeterReport, target: Option<&Version>) -> bool {
    let runs_target = || match target {
        None => true,
        Some(t) => {
            report.to_version == t.as_str()
                || report.to_version == format!("tag:{}", VersionTag::of(t))
        }
    };
    match report.state {
        StoredState::Van(UpdateState::Updated)
        | StoredState::Lora(OtaResult::Updated | OtaResult::AlreadyCurrent) => runs_target(),
        _ => false,
    }
}

/// The old plan against the reports, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplanSummary {
    /// Meters in the old plan, done, missed, planned again, not reachable
    /// (the reasons are in the plan's [`Summary`]).
    pub tally: Tally,
    /// Report rows read.
    pub report_rows: usize,
    /// Meters with reports that are not in the old plan.
    pub reported_outside_plan: usize,
}

/// The next shift's plan.
#[derive(Debug, Clone)]
pub struct Replan {
    /// One row per missed meter planned again, in route order.
    pub rows: Vec<PlanRow>,
    /// The old plan against the reports.
    pub summary: ReplanSummary,
    /// The planner's summary for the missed meters (reasons, capacity).
    pub plan: Summary,
}

/// Plans the meters of `old` that `reports` do not show done, with
/// `settings` (whose `start` and `waypoints` are the next shift's:
/// [`next_shift`]).
///
/// # Errors
///
/// [`ReplanError`]: the campaign number is the old plan's, the target
/// disagrees with the old WAKEs' version tag, an old meter is not in
/// `meters`, or the planner refuses the route.
pub fn replan(
    old: &[PlanRow],
    reports: &Reports,
    meters: &[Meter],
    waypoints: &[Waypoint],
    settings: &Settings,
) -> Result<Replan, ReplanError> {
    check_old_wakes(old, settings)?;
    let inventory: HashMap<DevEui, &Meter> = meters.iter().map(|m| (m.dev_eui, m)).collect();
    let unknown: Vec<DevEui> = old
        .iter()
        .map(|r| r.dev_eui)
        .filter(|e| !inventory.contains_key(e))
        .collect();
    if !unknown.is_empty() {
        return Err(ReplanError::NotInInventory(unknown));
    }
    let target = settings.target.as_ref();
    let (missed, mut tally) = replan::missed(old, |row| match reports.latest(&row.dev_eui) {
        Some(report) if is_done(report, target) => Status::Done,
        Some(_) => Status::Missed { heard: true },
        None => Status::Missed { heard: false },
    });
    let missed: Vec<Meter> = missed
        .iter()
        .map(|row| {
            let mut meter = inventory[&row.dev_eui].clone();
            meter.last_uplink = meter.last_uplink.max(reports.last_uplink(&row.dev_eui));
            meter
        })
        .collect();
    let next = plan::plan(&missed, waypoints, settings)?;
    let mut rows = next.rows;
    replan::route_order(&mut rows, |r| (r.expected_contact_at, r.dev_eui));
    tally.planned(next.summary.planned, next.summary.already_at_target);
    let in_old = old
        .iter()
        .filter(|r| reports.latest(&r.dev_eui).is_some())
        .count();
    let summary = ReplanSummary {
        tally,
        report_rows: reports.rows,
        reported_outside_plan: reports.meters() - in_old,
    };
    Ok(Replan {
        rows,
        summary,
        plan: next.summary,
    })
}

/// The new campaign must differ from the old plan's, and the target match
/// its version tag.
fn check_old_wakes(old: &[PlanRow], settings: &Settings) -> Result<(), ReplanError> {
    if old.iter().any(|r| r.wake.campaign == settings.campaign) {
        return Err(ReplanError::SameCampaign(settings.campaign));
    }
    let tag = settings.target.as_ref().map(VersionTag::of);
    for row in old {
        match (row.wake.version_tag, &settings.target) {
            (Some(old_tag), None) => {
                return Err(ReplanError::Target(format!(
                    "the old plan's WAKEs carry version tag {old_tag}: give its --target"
                )));
            }
            (Some(old_tag), Some(target)) if Some(old_tag) != tag => {
                return Err(ReplanError::Target(format!(
                    "--target {target} (tag {}) is not the old plan's target (tag {old_tag}, \
                     WAKE for {})",
                    VersionTag::of(target),
                    row.dev_eui
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
