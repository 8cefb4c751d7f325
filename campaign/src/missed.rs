//! `campaign missed`: the meters of a plan the pass did not update, each
//! with the reason its latest report supports, as MISSED.csv for the next
//! shift.
//!
//! Columns, in order: `dev_eui, wave, expected_contact_at, reason,
//! detail`, in route order. Reasons: `never_reported` (no van report and
//! no status uplink), `failed` (detail: the report's error, or the status
//! uplink's result), `rolled_back`, `woken_never_in_range` (a status
//! uplink after the WAKE saying no attempt or no WiFi join: the meter was
//! awake but the van never came within range), `cancelled`, and
//! `cut_off` (the van heard it last mid-update: detail, the state).

use std::collections::HashMap;

use otavan_protocol::Version;
use otavan_protocol::lora::OtaResult;
use otavan_store::StoredState;

use crate::clock;
use crate::deveui::DevEui;
use crate::gate::{Outcome, outcome};
use crate::plan_csv::PlanRow;
use crate::reports_csv::Reports;
use crate::waves::Assignment;

/// The columns of MISSED.csv, in order.
pub const COLUMNS: [&str; 5] = ["dev_eui", "wave", "expected_contact_at", "reason", "detail"];

/// One missed meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// The meter.
    pub dev_eui: DevEui,
    /// Its wave (0 in a plan without waves).
    pub wave: usize,
    /// When the van was expected in range.
    pub expected_contact_at: String,
    /// Why, as far as the reports say.
    pub reason: &'static str,
    /// The error or state behind it.
    pub detail: String,
}

/// The meters of `rows` whose latest report does not show them at
/// `target`, in route order.
pub fn missed(
    rows: &[PlanRow],
    waves: &[Assignment],
    reports: &Reports,
    target: Option<&Version>,
) -> Vec<Missed> {
    let wave_of: HashMap<DevEui, usize> = waves.iter().map(|a| (a.dev_eui, a.wave)).collect();
    let mut order: Vec<&PlanRow> = rows.iter().collect();
    order.sort_by_key(|r| (r.expected_contact_at, r.dev_eui));
    order
        .into_iter()
        .filter_map(|row| {
            let report = reports.latest(&row.dev_eui);
            let (reason, detail) = match (outcome(report, target), report) {
                (Outcome::Updated, _) => return None,
                (Outcome::NoReport, _) | (_, None) => ("never_reported", String::new()),
                (Outcome::Failed, Some(r)) => match r.state {
                    StoredState::Lora(OtaResult::WifiJoinFailed) => {
                        ("woken_never_in_range", r.state.to_string())
                    }
                    _ if r.error.is_empty() => ("failed", r.state.to_string()),
                    _ => ("failed", r.error.clone()),
                },
                (Outcome::RolledBack, Some(r)) => ("rolled_back", r.state.to_string()),
                (Outcome::InProgress, Some(r)) => match r.state {
                    StoredState::Lora(OtaResult::None) => {
                        ("woken_never_in_range", r.state.to_string())
                    }
                    StoredState::Lora(OtaResult::Cancelled) => ("cancelled", r.state.to_string()),
                    _ => ("cut_off", r.state.to_string()),
                },
            };
            Some(Missed {
                dev_eui: row.dev_eui,
                wave: wave_of.get(&row.dev_eui).copied().unwrap_or(0),
                expected_contact_at: clock::format(row.expected_contact_at),
                reason,
                detail,
            })
        })
        .collect()
}

/// MISSED.csv's text for `missed`.
pub fn to_csv(missed: &[Missed]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for m in missed {
        let _ = writer.write_record([
            m.dev_eui.to_string(),
            m.wave.to_string(),
            m.expected_contact_at.clone(),
            m.reason.to_owned(),
            m.detail.clone(),
        ]);
    }
    writer.into_inner().unwrap_or_default()
}
