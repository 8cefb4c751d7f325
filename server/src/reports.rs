//! The van's report store: meters' status reports in an embedded SQLite
//! database, exported as CSV for the office.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use otavan_protocol::Report;
use rusqlite::{Connection, params};

/// Columns of `GET /reports.csv`, in order.
pub const CSV_HEADER: [&str; 6] = [
    "time",
    "device_id",
    "from_version",
    "to_version",
    "state",
    "error",
];

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
}

/// Brings a database made by an older otavan up to the current columns.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info('reports')")?;
    let columns: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if !columns.iter().any(|c| c == "full_bytes") {
        conn.execute_batch("ALTER TABLE reports ADD COLUMN full_bytes INTEGER;")?;
    }
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
                bytes INTEGER,
                full_bytes INTEGER
            );",
        )?;
        migrate(&conn)?;
        crate::store::sqlite::migrate_identity(&conn)?;
        Ok(ReportStore {
            conn: Mutex::new(conn),
        })
    }

    /// Stores one report received at `time`.
    pub fn insert(&self, report: &Report, time: SystemTime) -> Result<(), StoreError> {
        let time = humantime::format_rfc3339_millis(time).to_string();
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

    /// Number of stored reports.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM reports", [], |row| row.get(0))?;
        Ok(n.try_into().unwrap_or(0))
    }

    /// Writes every report as CSV with the [`CSV_HEADER`] columns.
    pub fn export_csv<W: Write>(&self, out: W) -> Result<(), StoreError> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(CSV_HEADER)?;
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT time, device_id, from_version, to_version, state, COALESCE(error, '')
             FROM reports ORDER BY id",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let fields: [String; 6] = [
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ];
            writer.write_record(&fields)?;
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
        store.insert(&report, SystemTime::now()).unwrap();
        assert_eq!(store.count().unwrap(), 2);
        // Opening again is a no-op.
        ReportStore::open(&path).unwrap();
    }
}
