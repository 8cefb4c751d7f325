//! PLAN.csv: one WAKE per meter the van will pass, what `campaign push`
//! sends.
//!
//! Columns, in order: `dev_eui, enqueue_at, wake_delay_s, window_s,
//! expected_contact_at, expected_contact_s, fport, payload_hex`. Times are
//! RFC 3339 UTC; `payload_hex` is the WAKE's FRMPayload, whose delay and
//! window are the two columns before (a reader checks they agree, so a
//! hand-edited plan cannot say one thing and send another).

use std::collections::HashMap;
use std::path::Path;

use otavan_protocol::lora::{APP_FPORTS, Wake};
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;
use crate::table::{Field, InputError, Problems, Table};

/// The columns of PLAN.csv, in order.
pub const COLUMNS: [&str; 8] = [
    "dev_eui",
    "enqueue_at",
    "wake_delay_s",
    "window_s",
    "expected_contact_at",
    "expected_contact_s",
    "fport",
    "payload_hex",
];

/// One row of PLAN.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRow {
    /// The meter.
    pub dev_eui: DevEui,
    /// When to queue the WAKE on the network server.
    pub enqueue_at: OffsetDateTime,
    /// The command.
    pub wake: Wake,
    /// When the van is predicted to come within WiFi range.
    pub expected_contact_at: OffsetDateTime,
    /// How long it is predicted to stay, seconds.
    pub expected_contact_s: f64,
    /// The application port.
    pub fport: u8,
}

impl PlanRow {
    /// The FRMPayload.
    pub fn payload(&self) -> Vec<u8> {
        self.wake.encode()
    }

    fn record(&self) -> [String; 8] {
        [
            self.dev_eui.to_string(),
            clock::format(self.enqueue_at),
            self.wake.delay.secs().to_string(),
            self.wake.window.secs().to_string(),
            clock::format(self.expected_contact_at),
            format!("{:.1}", self.expected_contact_s),
            self.fport.to_string(),
            hex::encode(self.payload()),
        ]
    }
}

/// PLAN.csv's text for `rows`.
pub fn to_csv(rows: &[PlanRow]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for row in rows {
        let _ = writer.write_record(row.record());
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes PLAN.csv atomically and durably ([`otavan_durable::write_atomic`]):
/// a failure or a power cut leaves the old file or none, never half of
/// one, and once this returns the plan is on disk.
///
/// # Errors
///
/// The I/O error.
pub fn write(path: &Path, rows: &[PlanRow]) -> std::io::Result<()> {
    otavan_durable::write_atomic(path, &to_csv(rows))
}

/// Reads and checks PLAN.csv.
///
/// # Errors
///
/// [`InputError`] listing every bad row, including a payload that is not a
/// WAKE or disagrees with its delay and window columns, and a DevEUI
/// planned twice.
pub fn read(path: &Path) -> Result<Vec<PlanRow>, InputError> {
    let table = Table::read(path, &COLUMNS, &[])?;
    let mut problems = Problems::default();
    let mut rows = Vec::with_capacity(table.len());
    let mut seen: HashMap<DevEui, u64> = HashMap::new();
    for (line, field) in table.rows() {
        match row(field) {
            Ok(row) => {
                if let Some(first) = seen.insert(row.dev_eui, line) {
                    problems.add(
                        line,
                        format!("DevEUI {} is already on line {first}", row.dev_eui),
                    );
                }
                rows.push(row);
            }
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(path)?;
    Ok(rows)
}

fn row(field: Field<'_>) -> Result<PlanRow, String> {
    let dev_eui: DevEui = field.require("dev_eui")?.parse()?;
    let time = |name: &str| {
        field
            .require(name)
            .and_then(|t| clock::parse(t).map_err(|e| format!("{name}: {e}")))
    };
    let enqueue_at = time("enqueue_at")?;
    let expected_contact_at = time("expected_contact_at")?;
    let expected_contact_s = field.number("expected_contact_s")?;
    let fport = field.require("fport")?;
    let fport = match fport.parse::<u8>() {
        Ok(p) if APP_FPORTS.contains(&p) => p,
        _ => {
            return Err(format!(
                "fport {fport:?} is not an application port (1-223)"
            ));
        }
    };
    let payload = field.require("payload_hex")?;
    let bytes = hex::decode(payload).map_err(|_| format!("payload_hex {payload:?} is not hex"))?;
    let wake = Wake::decode(&bytes).map_err(|e| format!("payload_hex is not a WAKE: {e}"))?;
    for (name, value) in [
        ("wake_delay_s", wake.delay.secs()),
        ("window_s", wake.window.secs()),
    ] {
        let given = field.require(name)?;
        if given.parse::<u32>() != Ok(value) {
            return Err(format!(
                "{name} {given:?} disagrees with payload_hex ({value})"
            ));
        }
    }
    Ok(PlanRow {
        dev_eui,
        enqueue_at,
        wake,
        expected_contact_at,
        expected_contact_s,
        fport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample() -> PlanRow {
        PlanRow {
            dev_eui: "70b3d57ed0001234".parse().unwrap(),
            enqueue_at: clock::parse("2025-06-02T08:00:00Z").unwrap(),
            wake: Wake::new(
                7,
                Duration::from_secs(7200),
                Duration::from_secs(900),
                1,
                None,
            )
            .unwrap(),
            expected_contact_at: clock::parse("2025-06-02T10:01:00Z").unwrap(),
            expected_contact_s: 42.25,
            fport: 200,
        }
    }

    #[test]
    fn rows_round_trip() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("PLAN.csv");
        write(&path, &[sample()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "dev_eui,enqueue_at,wake_delay_s,window_s,expected_contact_at,expected_contact_s,fport,payload_hex\n\
             70B3D57ED0001234,2025-06-02T08:00:00Z,7200,900,2025-06-02T10:01:00Z,42.2,200,1100071c205a01\n"
        );
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].wake, sample().wake);
        assert_eq!(back[0].enqueue_at, sample().enqueue_at);
    }

    #[test]
    fn a_payload_disagreeing_with_its_columns_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("PLAN.csv");
        let text = String::from_utf8(to_csv(&[sample()])).unwrap();
        let edited = text.replace(",7200,900,", ",7200,600,")
            + "70B3D57ED0001234,2025-06-02T08:00:00Z,7200,900,2025-06-02T10:01:00Z,1,200,1300\n";
        std::fs::write(&path, edited).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 2: window_s \"600\" disagrees with payload_hex (900)"),
            "{error}"
        );
        assert!(
            error.contains("line 3: payload_hex is not a WAKE"),
            "{error}"
        );
    }
}
