//! The status report a meter posts to `POST /report` at each step of an
//! update.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Version;

/// Longest accepted `device_id`, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 128;
/// Longest accepted `error` text, in bytes.
pub const MAX_ERROR_LEN: usize = 4096;
/// Longest accepted `report_id`, in bytes.
pub const MAX_REPORT_ID_LEN: usize = 64;

/// Where a meter is in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateState {
    /// Fetching files and firmware.
    Downloading,
    /// Everything is in staging.
    Downloaded,
    /// Staged content matches the manifest's hashes.
    Verified,
    /// Installing: files are being swapped and firmware written.
    Updating,
    /// The new version is installed.
    Updated,
    /// The update failed; the meter is still at `from_version`.
    Failed,
}

impl UpdateState {
    /// Every state, in the order an update goes through them.
    pub const ALL: [UpdateState; 6] = [
        UpdateState::Downloading,
        UpdateState::Downloaded,
        UpdateState::Verified,
        UpdateState::Updating,
        UpdateState::Updated,
        UpdateState::Failed,
    ];

    /// The wire name (`DOWNLOADING`, ..., `FAILED`).
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateState::Downloading => "DOWNLOADING",
            UpdateState::Downloaded => "DOWNLOADED",
            UpdateState::Verified => "VERIFIED",
            UpdateState::Updating => "UPDATING",
            UpdateState::Updated => "UPDATED",
            UpdateState::Failed => "FAILED",
        }
    }
}

impl fmt::Display for UpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One status report from a meter.
///
/// Unknown JSON fields are ignored so that newer meters can add fields
/// without older vans rejecting their reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The meter's identifier (DevEUI or serial), 1 to 128 printable bytes.
    pub device_id: String,
    /// The version the meter was at when the update started.
    pub from_version: Version,
    /// The version the update goes to.
    pub to_version: Version,
    /// Where the update is.
    pub state: UpdateState,
    /// Why the update failed (with [`UpdateState::Failed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes downloaded so far for this update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// What the update weighs without firmware deltas (full image and
    /// files), to compare with `bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_bytes: Option<u64>,
    /// The meter's own identity for this report (e.g. its attempt number
    /// and state), the same when it re-sends the report: stores keep one
    /// copy per (`device_id`, `report_id`). Without it a van identifies a
    /// report by its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
}

/// Why a report is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// `device_id` is empty, too long, or holds control characters.
    BadDeviceId,
    /// `error` is longer than [`MAX_ERROR_LEN`].
    ErrorTooLong,
    /// `report_id` is empty, too long, or not printable ASCII.
    BadReportId,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::BadDeviceId => write!(
                f,
                "device_id must be 1 to {MAX_DEVICE_ID_LEN} bytes without control characters"
            ),
            ReportError::ErrorTooLong => write!(f, "error must be at most {MAX_ERROR_LEN} bytes"),
            ReportError::BadReportId => write!(
                f,
                "report_id must be 1 to {MAX_REPORT_ID_LEN} printable ASCII characters"
            ),
        }
    }
}

impl std::error::Error for ReportError {}

/// Checks a device id: 1 to [`MAX_DEVICE_ID_LEN`] bytes without control
/// characters.
pub fn check_device_id(id: &str) -> Result<(), ReportError> {
    if id.is_empty() || id.len() > MAX_DEVICE_ID_LEN || id.chars().any(char::is_control) {
        return Err(ReportError::BadDeviceId);
    }
    Ok(())
}

impl Report {
    /// Checks the constraints the type system does not: identifier and
    /// error text lengths and characters.
    pub fn validate(&self) -> Result<(), ReportError> {
        check_device_id(&self.device_id)?;
        if self.error.as_ref().is_some_and(|e| e.len() > MAX_ERROR_LEN) {
            return Err(ReportError::ErrorTooLong);
        }
        let printable = |c: char| c.is_ascii_graphic();
        if let Some(id) = &self.report_id
            && (id.is_empty() || id.len() > MAX_REPORT_ID_LEN || !id.chars().all(printable))
        {
            return Err(ReportError::BadReportId);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn full_report_round_trips() {
        let json = r#"{"device_id":"70B3D5","from_version":"1.0.0","to_version":"1.1.0","state":"FAILED","error":"hash mismatch","bytes":1024}"#;
        let report = parse(json).unwrap();
        assert_eq!(report.state, UpdateState::Failed);
        assert_eq!(report.validate(), Ok(()));
        assert_eq!(serde_json::to_string(&report).unwrap(), json);
    }

    #[test]
    fn wrong_types_and_unknown_states_are_rejected() {
        assert!(
            parse(
                r#"{"device_id":1,"from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#
            )
            .is_err()
        );
        assert!(
            parse(
                r#"{"device_id":"a","from_version":"1.0.0","to_version":"1.1.0","state":"DONE"}"#
            )
            .is_err()
        );
        assert!(
            parse(
                r#"{"device_id":"a","from_version":"../..","to_version":"1.1.0","state":"UPDATED"}"#
            )
            .is_err()
        );
        assert!(parse(r#"{"device_id":"a","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","bytes":-1}"#).is_err());
        assert!(parse(r#"{"device_id":"a","to_version":"1.1.0","state":"UPDATED"}"#).is_err());
    }

    #[test]
    fn device_id_and_error_limits() {
        let mut report = parse(
            r#"{"device_id":"a","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#,
        )
        .unwrap();
        report.device_id = "x".repeat(MAX_DEVICE_ID_LEN);
        assert_eq!(report.validate(), Ok(()));
        report.device_id.push('x');
        assert_eq!(report.validate(), Err(ReportError::BadDeviceId));
        report.device_id = "a\nb".into();
        assert_eq!(report.validate(), Err(ReportError::BadDeviceId));
        report.device_id = String::new();
        assert_eq!(report.validate(), Err(ReportError::BadDeviceId));
        report.device_id = "a".into();
        report.error = Some("e".repeat(MAX_ERROR_LEN + 1));
        assert_eq!(report.validate(), Err(ReportError::ErrorTooLong));
        report.error = None;
        report.report_id = Some("attempt-3/UPDATED".into());
        assert_eq!(report.validate(), Ok(()));
        for bad in ["", "a b", "<é>", &"r".repeat(MAX_REPORT_ID_LEN + 1)] {
            report.report_id = Some(bad.into());
            assert_eq!(report.validate(), Err(ReportError::BadReportId), "{bad:?}");
        }
    }

    #[test]
    fn state_names_match_serde() {
        for state in UpdateState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }
}
