//! Who stored a report, and which report it is.
//!
//! Every report gets a stable key, so a store keeps one copy however often
//! it is sent: a meter re-sending after its WiFi dropped, a van retrying an
//! insert after its uplink to the office cut, `otavan reports sync` run
//! twice. Stores put a UNIQUE constraint on the key and insert with
//! `ON CONFLICT DO NOTHING`.
//!
//! The key is a SHA-256 (hex) over, by priority:
//! - a meter's own `report_id`, with its `device_id`: the same report
//!   whichever van hears it;
//!   the otavan client sends one per attempt and state. A verified
//!   (signed) report's key is apart from an unsigned one's with the same
//!   id, so a forger who sees a meter's report ids cannot store an
//!   unsigned report first and make the meter's signed one a duplicate;
//!   a replayed signed report is a duplicate of itself;
//! - else the van, its session (the server's start) and the report's
//!   content (device, versions, state, error, byte counts): a re-send
//!   reaches the same van process, while the same report in a later drive
//!   is a new row. Within one session two identical reports from a meter
//!   without ids (a Pycom meter retrying) are one row;
//! - for rows stored before keys existed ([`legacy_key`]), the row's own
//!   number and time in its file, which never change.

use std::fmt;

use otavan_protocol::Report;
use sha2::{Digest, Sha256};

use crate::Verification;

/// Longest van id, in bytes.
pub const MAX_VAN_ID_LEN: usize = 64;

/// The name of the van (or office process) that stored a report: 1 to 64
/// ASCII letters, digits, `.`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VanId(String);

/// Why a van id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("van id {0:?} must be 1 to {MAX_VAN_ID_LEN} ASCII letters, digits, '.', '_' or '-'")]
pub struct BadVanId(pub String);

impl VanId {
    /// Checks and wraps a van id.
    pub fn new(id: &str) -> Result<VanId, BadVanId> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_".contains(c);
        if id.is_empty() || id.len() > MAX_VAN_ID_LEN || !id.chars().all(allowed) {
            return Err(BadVanId(id.to_owned()));
        }
        Ok(VanId(id.to_owned()))
    }

    /// This machine's host name (`/proc/sys/kernel/hostname`, else
    /// `$HOSTNAME`), the default van id.
    pub fn from_hostname() -> Result<VanId, BadVanId> {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        VanId::new(name.trim())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for VanId {
    type Err = BadVanId;
    fn from_str(s: &str) -> Result<VanId, BadVanId> {
        VanId::new(s)
    }
}

/// The stable key of `report`, checked as `verification`, as heard by
/// `van` in the session that started at `session` (see the module docs).
pub fn report_key(
    van: &VanId,
    session: &str,
    report: &Report,
    verification: Verification,
) -> String {
    let mut hash = Hasher::new();
    let kind = match verification {
        Verification::Verified => "signed-id",
        _ => "id",
    };
    match &report.report_id {
        Some(id) => hash.field(kind).field(&report.device_id).field(id),
        None => {
            let number = |n: Option<u64>| n.map_or(String::new(), |n| n.to_string());
            hash.field("body")
                .field(van.as_str())
                .field(session)
                .field(&report.device_id)
                .field(report.from_version.as_str())
                .field(report.to_version.as_str())
                .field(report.state.as_str())
                .field(report.error.as_deref().unwrap_or("\u{0}none"))
                .field(&number(report.bytes))
                .field(&number(report.full_bytes))
        }
    };
    hash.finish()
}

/// The key of a row stored without one (by an older otavan, or by a
/// writer that does not key its rows): its number and time in its file and
/// what it says. Stable, since stored rows never change.
pub fn legacy_key(row_id: i64, time: &str, device_id: &str, state: &str) -> String {
    let mut hash = Hasher::new();
    hash.field("legacy")
        .field(&row_id.to_string())
        .field(time)
        .field(device_id)
        .field(state);
    hash.finish()
}

/// SHA-256 over length-prefixed fields, so no two field lists collide.
struct Hasher(Sha256);

impl Hasher {
    fn new() -> Hasher {
        Hasher(Sha256::new_with_prefix(b"otavan-report-key-v1"))
    }

    fn field(&mut self, value: &str) -> &mut Hasher {
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    fn finish(&mut self) -> String {
        hex::encode(std::mem::take(&mut self.0).finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> Report {
        serde_json::from_str(json).unwrap()
    }

    const S: &str = "2026-01-01T00:00:00.000Z";
    const U: Verification = Verification::Unsigned;
    const BASE: &str = r#"{"device_id":"m1","from_version":"1.0.0","to_version":"1.1.0","state":"FAILED","error":"cut","bytes":10}"#;

    #[test]
    fn van_ids_are_checked() {
        assert_eq!(
            VanId::new("van-07.north_1").unwrap().as_str(),
            "van-07.north_1"
        );
        for bad in ["", "van 7", "van/7", "vän", &"v".repeat(65)] {
            assert!(VanId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_same_report_has_the_same_key_and_any_change_changes_it() {
        let van = VanId::new("van-1").unwrap();
        let key = report_key(&van, S, &report(BASE), U);
        assert_eq!(key.len(), 64);
        assert_eq!(key, report_key(&van, S, &report(BASE), U));
        let other_van = VanId::new("van-2").unwrap();
        assert_ne!(key, report_key(&other_van, S, &report(BASE), U));
        let later = "2026-01-02T00:00:00.000Z";
        assert_ne!(
            key,
            report_key(&van, later, &report(BASE), U),
            "another session"
        );
        for changed in [
            BASE.replace("m1", "m2"),
            BASE.replace("1.0.0", "1.0.1"),
            BASE.replace("FAILED", "UPDATED"),
            BASE.replace("\"cut\"", "\"cutx\""),
            BASE.replace(",\"error\":\"cut\"", ""),
            BASE.replace("10", "11"),
            BASE.replace(",\"bytes\":10", ""),
        ] {
            assert_ne!(key, report_key(&van, S, &report(&changed), U), "{changed}");
        }
        // An empty error is not the same as none.
        assert_ne!(
            report_key(&van, S, &report(&BASE.replace("\"cut\"", "\"\"")), U),
            report_key(&van, S, &report(&BASE.replace(",\"error\":\"cut\"", "")), U)
        );
    }

    #[test]
    fn a_meter_supplied_id_identifies_the_report_across_vans() {
        let with_id = BASE.replace("}", r#","report_id":"attempt-4/FAILED"}"#);
        let a = report_key(&VanId::new("van-1").unwrap(), S, &report(&with_id), U);
        let b = report_key(&VanId::new("van-2").unwrap(), S, &report(&with_id), U);
        assert_eq!(a, b);
        let signed = report_key(
            &VanId::new("van-1").unwrap(),
            S,
            &report(&with_id),
            Verification::Verified,
        );
        assert_ne!(
            a, signed,
            "an unsigned report cannot take a signed one's key"
        );
        let other_meter = with_id.replace("m1", "m2");
        assert_ne!(
            a,
            report_key(&VanId::new("van-1").unwrap(), S, &report(&other_meter), U)
        );
    }

    #[test]
    fn legacy_keys_differ_per_row() {
        let a = legacy_key(1, "2026-01-01T00:00:00.000Z", "m1", "UPDATED");
        assert_eq!(
            a,
            legacy_key(1, "2026-01-01T00:00:00.000Z", "m1", "UPDATED")
        );
        assert_ne!(
            a,
            legacy_key(2, "2026-01-01T00:00:00.000Z", "m1", "UPDATED")
        );
    }
}
