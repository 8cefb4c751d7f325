//! REPORTS.csv: the report store's export (the van's `GET /reports.csv`,
//! or the store's own export), read back meter by meter for `campaign
//! replan`.
//!
//! Columns by name: `time`, `device_id`, `to_version` and `state` are
//! needed; `from_version`, `error`, `source` (`van` when absent) and
//! `verified` may be there, as the export has them. Every row is checked
//! and every bad one reported with its line number: a time that is not
//! RFC 3339, an empty device id or version, a source other than `van` and
//! `lora`, a state its source never writes, an unknown `verified`.
//!
//! A device id that is not a DevEUI is a meter reporting under another
//! name (a Pycom meter's own id): it cannot be in a plan, so it is counted,
//! not refused. Several rows for one meter are its history: the latest
//! by `time` (on equal times, the later row) is what the meter last said,
//! and only it counts. The latest `lora` row's time is also when the
//! meter last sent an uplink ([`Reports::last_uplink`]): every status
//! uplink is on the meter's uplink rhythm (it restarts the rhythm after a
//! WiFi session), so it gives the phase of the next ones. A cell the
//! export quoted for spreadsheets (a `'` before `=`, `+`, `-`, `@`) is
//! read without the `'`.
//!
//! [`parse_authenticated`] keeps only the rows known to come from their
//! meter (`verified`: signed by it; `network`: a LoRa uplink the network
//! checked) before it picks each meter's latest, so that an UPDATED
//! anyone on the van's WiFi posted cannot hide the meter's real state.

use std::collections::BTreeMap;
use std::path::Path;

use otavan_store::reports::CSV_HEADER;
use otavan_store::{Source, StoredState, Verification};
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;
use crate::table::{Field, InputError, Problems, Table};

/// The columns a report file must have.
const REQUIRED: [&str; 4] = ["time", "device_id", "to_version", "state"];

/// What one meter said last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterReport {
    /// The line of the file it came from.
    pub line: u64,
    /// When it was stored.
    pub time: OffsetDateTime,
    /// What it says happened, and who heard it.
    pub state: StoredState,
    /// The version the update went to (a van report) or the meter runs (a
    /// status uplink: a name, or `tag:` and its version tag).
    pub to_version: String,
    /// The error the report gives (empty when none).
    pub error: String,
    /// Known to come from the meter: `verified` (signed by it) or
    /// `network` (a LoRa uplink the network checked); without the
    /// `verified` column, a LoRa row is and a van row is not.
    pub authenticated: bool,
}

/// A report file, meter by meter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    latest: BTreeMap<DevEui, MeterReport>,
    last_uplink: BTreeMap<DevEui, OffsetDateTime>,
    /// Rows read.
    pub rows: usize,
    /// Rows whose device id is not a DevEUI.
    pub other_ids: usize,
    /// Rows left out by [`parse_authenticated`]: not known to come from
    /// their meter.
    pub unauthenticated: usize,
}

impl Reports {
    /// The latest report of `dev_eui`, if it has any.
    pub fn latest(&self, dev_eui: &DevEui) -> Option<&MeterReport> {
        self.latest.get(dev_eui)
    }

    /// When the network last heard `dev_eui`: its latest status uplink.
    pub fn last_uplink(&self, dev_eui: &DevEui) -> Option<OffsetDateTime> {
        self.last_uplink.get(dev_eui).copied()
    }

    /// Adds the reports of another file or store: each meter's latest
    /// report of both (on equal times, `other`'s).
    pub fn merge(&mut self, other: Reports) {
        for (dev_eui, report) in other.latest {
            self.keep_latest(dev_eui, report);
        }
        for (dev_eui, time) in other.last_uplink {
            self.heard(dev_eui, time);
        }
        self.rows += other.rows;
        self.other_ids += other.other_ids;
        self.unauthenticated += other.unauthenticated;
    }

    fn keep_latest(&mut self, dev_eui: DevEui, report: MeterReport) {
        let newer = self
            .latest
            .get(&dev_eui)
            .is_none_or(|old| report.time >= old.time);
        if newer {
            self.latest.insert(dev_eui, report);
        }
    }

    fn heard(&mut self, dev_eui: DevEui, time: OffsetDateTime) {
        let heard = self.last_uplink.entry(dev_eui).or_insert(time);
        *heard = (*heard).max(time);
    }

    /// How many DevEUIs have reports.
    pub fn meters(&self) -> usize {
        self.latest.len()
    }
}

/// Reads and checks a report file.
///
/// # Errors
///
/// [`InputError`] listing every bad row (nothing is kept from a file with
/// one).
pub fn read(path: &Path) -> Result<Reports, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError::Read {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    parse(path, &bytes)
}

/// As [`read`], for an export already in memory; `name` is the file or
/// store it came from, for the errors.
///
/// # Errors
///
/// As [`read`].
pub fn parse(name: &Path, bytes: &[u8]) -> Result<Reports, InputError> {
    parse_rows(name, bytes, false)
}

/// As [`parse`], keeping only the rows known to come from their meter
/// (`verified` or `network`; a file without the `verified` column has
/// only its LoRa rows): the others are counted in
/// [`Reports::unauthenticated`] and never become a meter's latest.
///
/// # Errors
///
/// As [`read`].
pub fn parse_authenticated(name: &Path, bytes: &[u8]) -> Result<Reports, InputError> {
    parse_rows(name, bytes, true)
}

fn parse_rows(name: &Path, bytes: &[u8], authenticated_only: bool) -> Result<Reports, InputError> {
    let optional: Vec<&str> = CSV_HEADER
        .iter()
        .copied()
        .filter(|c| !REQUIRED.contains(c))
        .collect();
    let table = Table::parse(name, bytes, &REQUIRED, &optional)?;
    let mut problems = Problems::default();
    let mut reports = Reports::default();
    for (line, field) in table.rows() {
        reports.rows += 1;
        match row(line, field) {
            Ok((_, report)) if authenticated_only && !report.authenticated => {
                reports.unauthenticated += 1;
            }
            Ok((Some(dev_eui), report)) => {
                if report.state.source() == Source::Lora {
                    reports.heard(dev_eui, report.time);
                }
                reports.keep_latest(dev_eui, report);
            }
            Ok((None, _)) => reports.other_ids += 1,
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(name)?;
    Ok(reports)
}

/// One row, with its DevEUI when the device id is one, or every problem
/// with it (separated by `; `).
fn row(line: u64, field: Field<'_>) -> Result<(Option<DevEui>, MeterReport), String> {
    let mut wrong = Vec::new();
    let time = field
        .require("time")
        .and_then(|t| clock::parse(t).map_err(|e| format!("time: {e}")))
        .map_err(|e| wrong.push(e))
        .ok();
    let device_id = field
        .require("device_id")
        .map(unquote)
        .map_err(|e| wrong.push(e))
        .ok();
    let to_version = field
        .require("to_version")
        .map(unquote)
        .map_err(|e| wrong.push(e))
        .ok();
    let source = match field.get("source").map(unquote) {
        None => Some(Source::Van),
        Some(text) => text
            .parse::<Source>()
            .map_err(|_| wrong.push(format!("source {text:?} is not van or lora")))
            .ok(),
    };
    let state = match (source, field.require("state")) {
        (_, Err(e)) => {
            wrong.push(e);
            None
        }
        (None, Ok(_)) => None,
        (Some(source), Ok(text)) => StoredState::parse(source, text)
            .map_err(|_| {
                wrong.push(format!(
                    "state {text:?} is not a state of a {} report",
                    source.as_str()
                ))
            })
            .ok(),
    };
    let verification = match field.get("verified") {
        None => source.map(|s| match s {
            Source::Van => Verification::Unsigned,
            Source::Lora => Verification::Network,
        }),
        Some(text) => text
            .parse::<Verification>()
            .map_err(|_| {
                wrong.push(format!(
                    "verified {text:?} is not verified, unsigned, unchecked or network"
                ))
            })
            .ok(),
    };
    let authenticated = verification.is_some_and(Verification::is_authenticated);
    match (time, device_id, to_version, state) {
        (Some(time), Some(device_id), Some(to_version), Some(state)) if wrong.is_empty() => Ok((
            device_id.parse().ok(),
            MeterReport {
                line,
                time,
                state,
                to_version: to_version.to_owned(),
                error: field
                    .get("error")
                    .map(unquote)
                    .unwrap_or_default()
                    .to_owned(),
                authenticated,
            },
        )),
        _ => Err(wrong.join("; ")),
    }
}

/// `cell` without the `'` the export puts before a formula character.
fn unquote(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otavan_protocol::UpdateState;
    use otavan_protocol::lora::OtaResult;

    const HEADER: &str = "time,device_id,from_version,to_version,state,error,source,verified\n";

    fn parse_text(text: &str) -> Result<Reports, InputError> {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("REPORTS.csv");
        std::fs::write(&path, text).unwrap();
        read(&path)
    }

    fn eui(n: u8) -> DevEui {
        DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, n])
    }

    #[test]
    fn the_latest_row_of_a_meter_wins_whatever_the_file_order() {
        let reports = parse_text(&format!(
            "{HEADER}\
             2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:04:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,DOWNLOADING,,van,verified\n\
             2025-06-03T09:30:00.000Z,70b3d57ed0000002,1.0.0,1.0.0,WIFI_JOIN_FAILED,,lora,network\n\
             2025-06-03T09:40:00.000Z,70B3D57ED0000002,1.1.0,1.1.0,UPDATED,,lora,network\n\
             2025-06-03T09:40:00.000Z,pycom-7a3f,1.0.0,1.1.0,UPDATED,,van,unsigned\n"
        ))
        .unwrap();
        assert_eq!(
            (reports.rows, reports.meters(), reports.other_ids),
            (5, 2, 1)
        );
        let first = reports.latest(&eui(1)).unwrap();
        assert_eq!(
            (first.line, first.state),
            (2, StoredState::Van(UpdateState::Updated))
        );
        let second = reports.latest(&eui(2)).unwrap();
        assert_eq!(
            (second.line, second.state, second.to_version.as_str()),
            (5, StoredState::Lora(OtaResult::Updated), "1.1.0")
        );
        assert!(reports.latest(&eui(3)).is_none());
        // Only status uplinks say when the network heard a meter.
        assert_eq!(reports.last_uplink(&eui(1)), None);
        assert_eq!(
            reports.last_uplink(&eui(2)),
            Some(clock::parse("2025-06-03T09:40:00Z").unwrap())
        );
    }

    #[test]
    fn merged_sources_keep_each_meters_latest_report() {
        let mut van = parse_text(&format!(
            "{HEADER}\
             2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:11:00.000Z,70B3D57ED0000002,1.0.0,1.1.0,UPDATED,,van,verified\n"
        ))
        .unwrap();
        let lora = parse_text(&format!(
            "{HEADER}\
             2025-06-03T09:40:00.000Z,70B3D57ED0000001,1.0.0,1.0.0,REVERTED,,lora,network\n\
             2025-06-03T08:00:00.000Z,70B3D57ED0000002,1.0.0,1.0.0,NONE,,lora,network\n"
        ))
        .unwrap();
        van.merge(lora);
        assert_eq!(
            van.latest(&eui(1)).unwrap().state,
            StoredState::Lora(OtaResult::Reverted)
        );
        assert_eq!(
            van.latest(&eui(2)).unwrap().state,
            StoredState::Van(UpdateState::Updated)
        );
        assert_eq!(
            van.last_uplink(&eui(2)),
            Some(clock::parse("2025-06-03T08:00:00Z").unwrap())
        );
        assert_eq!((van.rows, van.meters()), (4, 2));
    }

    #[test]
    fn an_export_without_the_optional_columns_is_van_reports() {
        let reports = parse_text(
            "time,device_id,to_version,state\n\
             2025-06-03T09:10:00Z,70B3D57ED0000001,1.1.0,FAILED\n",
        )
        .unwrap();
        assert_eq!(
            reports.latest(&eui(1)).unwrap().state,
            StoredState::Van(UpdateState::Failed)
        );
    }

    #[test]
    fn every_bad_row_and_a_missing_column_is_reported_by_line() {
        let error = parse_text("time,device_id,state\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1: the header has no \"to_version\" column"),
            "{error}"
        );
        let error = parse_text(&format!(
            "{HEADER}\
             2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,UPDATED,,van,verified\n\
             yesterday,70B3D57ED0000002,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:10:00.000Z,70B3D57ED0000003,1.0.0,1.1.0,DONE,,van,verified\n\
             2025-06-03T09:10:00.000Z,70B3D57ED0000004,1.0.0,1.1.0,UPDATED,,radio,verified\n\
             2025-06-03T09:10:00.000Z,,1.0.0,,UPDATED,,van,maybe\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("4 problems"), "{error}");
        for expected in [
            "line 3: time: \"yesterday\" is not an RFC 3339 time",
            "line 4: state \"DONE\" is not a state of a van report",
            "line 5: source \"radio\" is not van or lora",
            "line 6: device_id is empty; to_version is empty; verified \"maybe\"",
        ] {
            assert!(error.contains(expected), "{expected}: {error}");
        }
        // Rows of the wrong width are found before the fields are read.
        let error = parse_text(&format!(
            "{HEADER}2025-06-03T09:10:00.000Z,70B3D57ED0000005,1.0.0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("line 2: 3 fields, the header has 8"),
            "{error}"
        );
    }

    #[test]
    fn spreadsheet_quotes_are_taken_off() {
        assert_eq!(unquote("'-1"), "-1");
        assert_eq!(unquote("'=A1"), "=A1");
        assert_eq!(unquote("'plain"), "'plain");
        assert_eq!(unquote("1.1.0"), "1.1.0");
    }

    #[test]
    fn only_authenticated_rows_can_be_a_meters_latest_when_asked() {
        // The meter's signed FAILED, then an UPDATED anyone on the van's
        // WiFi posted for it, later; another meter's only report unsigned.
        let csv = b"time,device_id,from_version,to_version,state,error,source,verified\n\
            2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,FAILED,sha1,van,verified\n\
            2025-06-03T09:11:00.000Z,70B3D57ED0000001,1.0.0,1.1.0,UPDATED,,van,unsigned\n\
            2025-06-03T09:12:00.000Z,70B3D57ED0000002,1.0.0,1.1.0,UPDATED,,van,unchecked\n\
            2025-06-03T09:13:00.000Z,70B3D57ED0000003,1.1.0,1.1.0,UPDATED,,lora,network\n";
        let name = Path::new("REPORTS.csv");
        let one: DevEui = "70B3D57ED0000001".parse().unwrap();
        let two: DevEui = "70B3D57ED0000002".parse().unwrap();
        let three: DevEui = "70B3D57ED0000003".parse().unwrap();
        let all = parse(name, csv).unwrap();
        assert_eq!(all.latest(&one).unwrap().state.to_string(), "UPDATED");
        assert_eq!(all.unauthenticated, 0);
        let signed = parse_authenticated(name, csv).unwrap();
        assert_eq!(signed.latest(&one).unwrap().state.to_string(), "FAILED");
        assert_eq!(signed.latest(&two), None);
        assert_eq!(signed.latest(&three).unwrap().state.to_string(), "UPDATED");
        assert_eq!((signed.rows, signed.unauthenticated), (4, 2));
        // Without the column a van row is not known to be its meter's.
        let old = b"time,device_id,to_version,state\n\
            2025-06-03T09:10:00.000Z,70B3D57ED0000001,1.1.0,UPDATED\n";
        let signed = parse_authenticated(name, old).unwrap();
        assert_eq!((signed.meters(), signed.unauthenticated), (0, 1));
    }
}
