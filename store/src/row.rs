//! A stored report as the stores hand it out: typed fields, checked where
//! a row leaves its database.

use std::fmt;
use std::str::FromStr;

use otavan_protocol::UpdateState;
use otavan_protocol::lora::OtaResult;

use super::identity::VanId;
use super::time::ReportTime;

/// Who heard a stored row: the `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The van, from a meter's `POST /report` (`van`).
    Van,
    /// The LoRaWAN network, from a meter's status uplink stored by
    /// `otavan campaign watch` (`lora`).
    Lora,
}

impl Source {
    /// The column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Van => "van",
            Source::Lora => "lora",
        }
    }
}

impl FromStr for Source {
    type Err = BadRow;

    fn from_str(text: &str) -> Result<Source, BadRow> {
        [Source::Van, Source::Lora]
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| BadRow::new("source", text, "van or lora"))
    }
}

/// Whether a stored row is known to come from its meter: the `verified`
/// column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verification {
    /// A van report whose signature the van checked against the meter's
    /// key (`verified`).
    Verified,
    /// A van report without a signature, as Pycom meters send them, or
    /// stored before signatures (`unsigned`): anyone on the van's WiFi
    /// could have sent it.
    Unsigned,
    /// A signed van report heard by a van without the fleet's report
    /// secret, so the signature was not checked (`unchecked`).
    Unchecked,
    /// A LoRa status row: the network server checked the uplink's MIC
    /// (`network`).
    Network,
}

impl Verification {
    /// Every value.
    pub const ALL: [Verification; 4] = [
        Verification::Verified,
        Verification::Unsigned,
        Verification::Unchecked,
        Verification::Network,
    ];

    /// The column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::Unsigned => "unsigned",
            Verification::Unchecked => "unchecked",
            Verification::Network => "network",
        }
    }

    /// Whether the row is known to come from its meter (checked by the van
    /// or by the network).
    pub fn is_authenticated(self) -> bool {
        matches!(self, Verification::Verified | Verification::Network)
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verification {
    type Err = BadRow;

    fn from_str(text: &str) -> Result<Verification, BadRow> {
        Verification::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| {
                BadRow::new("verified", text, "verified, unsigned, unchecked or network")
            })
    }
}

/// What a stored row says happened: the `state` column, read by who heard
/// it. Its [`Display`](fmt::Display) is the column's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredState {
    /// A van report: where the meter's update is (`DOWNLOADING` ...
    /// `UPDATED`, `FAILED`).
    Van(UpdateState),
    /// A LoRa status row: how the meter's last update attempt ended, by
    /// its name in upper case (`UPDATED`, `WIFI_JOIN_FAILED`, `NONE` before
    /// any attempt) or, for a code this build does not know, `CODE_n`.
    Lora(OtaResult),
}

impl StoredState {
    /// Who heard it.
    pub fn source(self) -> Source {
        match self {
            StoredState::Van(_) => Source::Van,
            StoredState::Lora(_) => Source::Lora,
        }
    }

    /// Reads the `state` column of a row from `source`.
    ///
    /// # Errors
    ///
    /// [`BadRow`] when the text is not a state of that source as otavan
    /// writes it.
    pub fn parse(source: Source, text: &str) -> Result<StoredState, BadRow> {
        let state = match source {
            Source::Van => UpdateState::ALL
                .into_iter()
                .find(|state| state.as_str() == text)
                .map(StoredState::Van),
            Source::Lora => lora_result(text).map(StoredState::Lora),
        };
        state.ok_or_else(|| match source {
            Source::Van => BadRow::new("state", text, "an update state"),
            Source::Lora => BadRow::new("state", text, "a status uplink's last result"),
        })
    }
}

/// The last result whose column text is `text`.
fn lora_result(text: &str) -> Option<OtaResult> {
    let result = match text.strip_prefix("CODE_") {
        Some(code) => OtaResult::from_code(code.parse().ok()?),
        None => (0..=u8::MAX)
            .map(OtaResult::from_code)
            .find(|result| result.name().is_some_and(|n| n.eq_ignore_ascii_case(text)))?,
    };
    // Only the text otavan writes for it (not `CODE_1`, `updated`, `CODE_07`).
    (StoredState::Lora(result).to_string() == text).then_some(result)
}

impl fmt::Display for StoredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredState::Van(state) => f.write_str(state.as_str()),
            StoredState::Lora(result) => match result.name() {
                Some(name) => f.write_str(&name.to_ascii_uppercase()),
                None => write!(f, "CODE_{}", result.code()),
            },
        }
    }
}

/// One stored report, as the dashboard and `otavan reports sync` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// When the van (or `otavan campaign watch`) received it.
    pub time: ReportTime,
    /// The van that received it (`None` for rows from before van ids, and
    /// for LoRa rows).
    pub van_id: Option<VanId>,
    /// The meter.
    pub device_id: String,
    /// The version the update started from. Text rather than a
    /// [`otavan_protocol::Version`]: a LoRa row holds the version the meter
    /// runs, named by its tag (`tag:0a1b2c3d`) when no release version has
    /// that tag, and a tag is not a version.
    pub from_version: String,
    /// The version the update goes to (text, as `from_version`).
    pub to_version: String,
    /// What happened, and so who heard it.
    pub state: StoredState,
    /// Why it failed.
    pub error: Option<String>,
    /// Bytes downloaded.
    pub bytes: Option<u64>,
    /// Bytes without firmware deltas.
    pub full_bytes: Option<u64>,
    /// Whether it is known to come from the meter.
    pub verification: Verification,
}

/// A stored row that does not read as a report: a column holds what otavan
/// never writes there (a hand edit, another tool).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored report's {column} is {value:?}, not {expected}")]
pub struct BadRow {
    /// The column.
    pub column: &'static str,
    /// What it holds.
    pub value: String,
    /// What it should hold.
    pub expected: &'static str,
}

impl BadRow {
    pub(crate) fn new(column: &'static str, value: &str, expected: &'static str) -> BadRow {
        BadRow {
            column,
            value: value.to_owned(),
            expected,
        }
    }
}

/// A report's columns as a database returns them, before they are checked.
#[derive(Debug, Clone)]
pub(crate) struct RawReport {
    pub(crate) time: String,
    pub(crate) van_id: Option<String>,
    pub(crate) device_id: String,
    pub(crate) from_version: String,
    pub(crate) to_version: String,
    pub(crate) state: String,
    pub(crate) source: String,
    pub(crate) error: Option<String>,
    pub(crate) bytes: Option<i64>,
    pub(crate) full_bytes: Option<i64>,
    pub(crate) verified: String,
}

impl RawReport {
    /// The typed report.
    pub(crate) fn check(self) -> Result<StoredReport, BadRow> {
        let time = self.time.parse().map_err(|_| {
            BadRow::new("time", &self.time, "an RFC 3339 UTC time with milliseconds")
        })?;
        let van_id = match &self.van_id {
            Some(id) => Some(VanId::new(id).map_err(|_| BadRow::new("van_id", id, "a van id"))?),
            None => None,
        };
        let source = self.source.parse()?;
        let count = |column: &'static str, n: Option<i64>| {
            n.map(|n| {
                u64::try_from(n).map_err(|_| BadRow::new(column, &n.to_string(), "a byte count"))
            })
            .transpose()
        };
        Ok(StoredReport {
            time,
            van_id,
            state: StoredState::parse(source, &self.state)?,
            bytes: count("bytes", self.bytes)?,
            full_bytes: count("full_bytes", self.full_bytes)?,
            verification: self.verified.parse()?,
            device_id: self.device_id,
            from_version: self.from_version,
            to_version: self.to_version,
            error: self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(state: &str, source: &str) -> RawReport {
        RawReport {
            time: "2026-01-01T08:00:00.000Z".into(),
            van_id: Some("van-1".into()),
            device_id: "m1".into(),
            from_version: "1.0.0".into(),
            to_version: "tag:deadbeef".into(),
            state: state.into(),
            source: source.into(),
            error: None,
            bytes: Some(7),
            full_bytes: None,
            verified: "verified".into(),
        }
    }

    #[test]
    fn states_read_back_as_the_text_they_were_stored_as() {
        for state in UpdateState::ALL {
            let text = state.as_str();
            assert_eq!(
                StoredState::parse(Source::Van, text),
                Ok(StoredState::Van(state))
            );
        }
        for code in 0..=u8::MAX {
            let state = StoredState::Lora(OtaResult::from_code(code));
            assert_eq!(
                StoredState::parse(Source::Lora, &state.to_string()),
                Ok(state)
            );
        }
        assert_eq!(
            StoredState::Lora(OtaResult::WifiJoinFailed).to_string(),
            "WIFI_JOIN_FAILED"
        );
        assert_eq!(
            StoredState::Lora(OtaResult::Other(42)).to_string(),
            "CODE_42"
        );
        for (source, text) in [
            (Source::Van, "WIFI_JOIN_FAILED"),
            (Source::Van, "updated"),
            (Source::Lora, "CODE_1"),
            (Source::Lora, "CODE_042"),
            (Source::Lora, "CODE_256"),
            (Source::Lora, "updated"),
            (Source::Lora, "DOWNLOADING"),
        ] {
            let error = StoredState::parse(source, text).unwrap_err();
            assert_eq!(error.value, text);
        }
    }

    #[test]
    fn a_row_is_checked_column_by_column() {
        let report = raw("UPDATED", "van").check().unwrap();
        assert_eq!(report.state, StoredState::Van(UpdateState::Updated));
        assert_eq!(report.time.to_string(), "2026-01-01T08:00:00.000Z");
        assert_eq!(report.van_id, Some(VanId::new("van-1").unwrap()));
        assert_eq!((report.bytes, report.full_bytes), (Some(7), None));
        assert_eq!(report.verification, Verification::Verified);
        for verification in Verification::ALL {
            assert_eq!(verification.as_str().parse(), Ok(verification));
        }
        let lora = raw("UPDATED", "lora").check().unwrap();
        assert_eq!(lora.state, StoredState::Lora(OtaResult::Updated));
        assert_eq!(lora.state.source(), Source::Lora);
        let broken = [
            (
                RawReport {
                    time: "t".into(),
                    ..raw("UPDATED", "van")
                },
                "time",
            ),
            (
                RawReport {
                    van_id: Some("a van".into()),
                    ..raw("UPDATED", "van")
                },
                "van_id",
            ),
            (raw("UPDATED", "mqtt"), "source"),
            (raw("NONE", "van"), "state"),
            (
                RawReport {
                    bytes: Some(-1),
                    ..raw("UPDATED", "van")
                },
                "bytes",
            ),
            (
                RawReport {
                    full_bytes: Some(-1),
                    ..raw("UPDATED", "van")
                },
                "full_bytes",
            ),
            (
                RawReport {
                    verified: "yes".into(),
                    ..raw("UPDATED", "van")
                },
                "verified",
            ),
        ];
        for (row, column) in broken {
            let error = row.check().unwrap_err();
            assert_eq!(error.column, column, "{error}");
        }
        let error = raw("NONE", "van").check().unwrap_err().to_string();
        assert_eq!(
            error,
            "a stored report's state is \"NONE\", not an update state"
        );
    }
}
