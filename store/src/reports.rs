//! The van's report store: meters' status reports in an embedded SQLite
//! database, exported as CSV for the office.
//!
//! One table, `reports`, holds what the van heard (`source` `van`: the
//! meters' `POST /report`) and what the LoRaWAN network server heard
//! (`source` `lora`: status uplinks stored by `otavan campaign watch`), so
//! one query shows a campaign's progress from both sides.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

#[cfg(test)]
use otavan_protocol::Report;
use otavan_protocol::lora::StatusUplink;
use rusqlite::{Connection, params};

use crate::spreadsheet::neutralise;
use crate::{ReportTime, Source, StoredState, Verification};

/// Columns of `GET /reports.csv`, in order (`verified` is
/// [`crate::Verification`]'s text; `van_lat`, `van_lon` and
/// `van_fix_time` are where the van was, by its GPS, when it stored the
/// report, empty without a fix).
pub const CSV_HEADER: [&str; 11] = [
    "time",
    "device_id",
    "from_version",
    "to_version",
    "state",
    "error",
    "source",
    "verified",
    "van_lat",
    "van_lon",
    "van_fix_time",
];

/// A coordinate as `/reports.csv` writes it: degrees to 7 decimals (about
/// a centimetre), empty when there is none.
pub fn csv_degrees(degrees: Option<f64>) -> String {
    degrees.map_or_else(String::new, |d| format!("{d:.7}"))
}

/// A meter's status as its LoRaWAN STATUS uplink tells it.
#[derive(Debug, Clone, Copy)]
pub struct LoraStatus<'a> {
    /// The meter (its DevEUI, upper-case hex).
    pub device_id: &'a str,
    /// The version it runs: a name when its tag is known, else the tag.
    pub version: &'a str,
    /// The decoded uplink.
    pub status: &'a StatusUplink,
}

impl LoraStatus<'_> {
    /// The row's `state`: the last result's name in upper case
    /// (`UPDATED`, `WIFI_JOIN_FAILED`, `NONE` before any attempt, `CODE_n`
    /// for a code this build does not know; see [`StoredState::Lora`]).
    pub fn state(&self) -> String {
        StoredState::Lora(self.status.last_result).to_string()
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("report database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing the CSV export failed.
    #[error("report export: {0}")]
    Csv(#[from] csv::Error),
    /// PostgreSQL refused an operation or could not be reached.
    #[error("fleet database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The fleet database did not answer in time.
    #[error("fleet database: no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A store task on the blocking pool failed.
    #[error("report store task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A stored row does not read as a report.
    #[error(transparent)]
    BadRow(#[from] crate::BadRow),
}

/// Adds the columns that came after the first schema, in order, where
/// they are missing: a new database gets all of them, one made by an older
/// otavan those it lacks (the one home of their definitions).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    crate::sqlite::add_missing_columns(
        conn,
        &[
            ("full_bytes", "full_bytes INTEGER"),
            ("source", "source TEXT NOT NULL DEFAULT 'van'"),
            ("campaign", "campaign INTEGER"),
            ("battery", "battery INTEGER"),
            ("pending_confirm", "pending_confirm INTEGER"),
            // Rows from before signatures were not checked by anyone.
            ("verified", "verified TEXT NOT NULL DEFAULT 'unsigned'"),
            // Where the van was (`otavan serve --gpsd`); NULL without a fix.
            ("van_lat", "van_lat REAL"),
            ("van_lon", "van_lon REAL"),
            ("van_fix_time", "van_fix_time TEXT"),
        ],
    )?;
    // The van's own positions, thinned (see `otavan_server::gpsd`).
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS trace (
            id INTEGER PRIMARY KEY,
            van_id TEXT NOT NULL,
            time TEXT NOT NULL,
            lat REAL NOT NULL,
            lon REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS trace_van ON trace (van_id, time);",
    )?;
    Ok(())
}

/// Reports received by this van, in arrival order.
///
/// SQLite calls block, so async callers run them on the blocking pool; one
/// connection behind a mutex is plenty for the report rate of a van.
pub struct ReportStore {
    conn: Mutex<Connection>,
}

impl ReportStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<ReportStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS reports (
                id INTEGER PRIMARY KEY,
                time TEXT NOT NULL,
                device_id TEXT NOT NULL,
                from_version TEXT NOT NULL,
                to_version TEXT NOT NULL,
                state TEXT NOT NULL,
                error TEXT,
                bytes INTEGER
            );",
        )?;
        // The later columns, for a new database as for an old one.
        migrate(&conn)?;
        crate::sqlite::migrate_identity(&conn)?;
        Ok(ReportStore {
            conn: Mutex::new(conn),
        })
    }

    /// Stores one report received at `time` without a van id or report
    /// key, as a van wrote it before reports had keys (tests of migration
    /// and sync use it; servers store through `store::ReportBackend`).
    #[cfg(test)]
    pub(crate) fn insert_unkeyed(
        &self,
        report: &Report,
        time: SystemTime,
    ) -> Result<(), StoreError> {
        let time = ReportTime::from(time).to_string();
        // SQLite integers are signed; a byte count past i64::MAX is not real.
        let integer = |n: Option<u64>| n.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        self.conn().execute(
            "INSERT INTO reports (time, device_id, from_version, to_version, state, error, bytes, full_bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                time,
                report.device_id,
                report.from_version.as_str(),
                report.to_version.as_str(),
                report.state.as_str(),
                report.error,
                integer(report.bytes),
                integer(report.full_bytes)
            ],
        )?;
        Ok(())
    }

    /// Stores a meter's status uplink received at `time` (source `lora`,
    /// verified `network`): `from_version` and `to_version` are both the
    /// version it runs, `state` is [`LoraStatus::state`], and the campaign,
    /// battery and pending-confirmation flag get their own columns.
    pub fn insert_lora(&self, row: &LoraStatus<'_>, time: SystemTime) -> Result<(), StoreError> {
        let time = ReportTime::from(time).to_string();
        self.conn().execute(
            "INSERT INTO reports (time, device_id, from_version, to_version, state, source,
                                  campaign, battery, pending_confirm, verified)
             VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                time,
                row.device_id,
                row.version,
                row.state(),
                Source::Lora.as_str(),
                row.status.campaign,
                row.status.battery,
                row.status.pending_confirm,
                Verification::Network.as_str()
            ],
        )?;
        Ok(())
    }

    /// Number of stored reports.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM reports", [], |row| row.get(0))?;
        Ok(n.try_into().unwrap_or(0))
    }

    /// Writes every report as CSV with the [`CSV_HEADER`] columns, formula
    /// cells neutralised for spreadsheets.
    pub fn export_csv<W: Write>(&self, out: W) -> Result<(), StoreError> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(CSV_HEADER)?;
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT time, device_id, from_version, to_version, state, COALESCE(error, ''), source,
                    verified, van_lat, van_lon, COALESCE(van_fix_time, '')
             FROM reports ORDER BY id",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let fields: [String; 11] = [
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                csv_degrees(row.get(8)?),
                csv_degrees(row.get(9)?),
                row.get(10)?,
            ];
            writer.write_record(fields.iter().map(|cell| neutralise(cell).into_owned()))?;
        }
        writer.flush().map_err(csv::Error::from)?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_before_full_bytes_is_migrated() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE reports (id INTEGER PRIMARY KEY, time TEXT NOT NULL, device_id TEXT NOT NULL,
                 from_version TEXT NOT NULL, to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT, bytes INTEGER);
                 INSERT INTO reports (time, device_id, from_version, to_version, state) VALUES ('t', 'old', '1.0', '1.1', 'UPDATED');",
            )
            .unwrap();
        let store = ReportStore::open(&path).unwrap();
        let report: Report = serde_json::from_str(
            r#"{"device_id":"new","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","bytes":1,"full_bytes":9}"#,
        )
        .unwrap();
        store.insert_unkeyed(&report, SystemTime::now()).unwrap();
        assert_eq!(store.count().unwrap(), 2);
        // The van's position columns came with the migration.
        let van = crate::VanId::new("van-1").unwrap();
        let fix = crate::VanFix {
            lat: 52.37,
            lon: 9.73,
            time: SystemTime::UNIX_EPOCH,
        };
        store
            .insert_identified(
                &van,
                "k",
                &report,
                Verification::Unsigned,
                SystemTime::now(),
                Some(fix),
            )
            .unwrap();
        let (lat, old_lat): (f64, Option<f64>) = store
            .conn()
            .query_row(
                "SELECT (SELECT van_lat FROM reports WHERE report_key = 'k'),
                        (SELECT van_lat FROM reports WHERE device_id = 'old')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((lat, old_lat), (52.37, None));
        // Opening again is a no-op.
        ReportStore::open(&path).unwrap();
        let mut csv = Vec::new();
        store.export_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert!(rows[0].ends_with(",van,unsigned,,,"), "{csv}");
        // The report stored with the van's fix exports it.
        assert!(
            rows.last()
                .unwrap()
                .ends_with(",van,unsigned,52.3700000,9.7300000,1970-01-01T00:00:00.000Z"),
            "{csv}"
        );
    }

    #[test]
    fn lora_status_rows_sit_beside_van_reports() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        let report: Report = serde_json::from_str(
            r#"{"device_id":"70B3D57ED0001234","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#,
        )
        .unwrap();
        store
            .insert_unkeyed(&report, SystemTime::UNIX_EPOCH)
            .unwrap();
        let status = StatusUplink::decode(&hex::decode("18deadbeef0108c80007").unwrap()).unwrap();
        let row = LoraStatus {
            device_id: "70B3D57ED0001234",
            version: "1.0.0",
            status: &status,
        };
        store.insert_lora(&row, SystemTime::UNIX_EPOCH).unwrap();
        let mut unknown = status;
        unknown.last_result = otavan_protocol::lora::OtaResult::Other(42);
        assert_eq!(
            LoraStatus {
                status: &unknown,
                ..row
            }
            .state(),
            "CODE_42"
        );
        let mut csv = Vec::new();
        store.export_csv(&mut csv).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "time,device_id,from_version,to_version,state,error,source,verified,van_lat,van_lon,van_fix_time\n\
             1970-01-01T00:00:00.000Z,70B3D57ED0001234,1.0.0,1.1.0,UPDATED,,van,unsigned,,,\n\
             1970-01-01T00:00:00.000Z,70B3D57ED0001234,1.0.0,1.0.0,WIFI_JOIN_FAILED,,lora,network,,,\n"
        );
        let conn = store.conn();
        let (campaign, battery, pending): (i64, i64, bool) = conn
            .query_row(
                "SELECT campaign, battery, pending_confirm FROM reports WHERE source = 'lora'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((campaign, battery, pending), (7, 200, true));
    }
}
