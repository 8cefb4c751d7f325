//! The embedded default: the van's SQLite file ([`ReportStore`]) behind
//! [`ReportBackend`], plus the queries the dashboard and `otavan reports
//! sync` need.

use std::sync::Arc;
use std::time::SystemTime;

use otavan_protocol::Report;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::identity::{VanId, legacy_key, report_key};
use super::row::RawReport;
use super::{
    Inserted, ReportBackend, ReportTime, StoreError, StoreFuture, StoredReport, Summary,
    SummaryQuery, VanFix, Verification,
};
use crate::reports::ReportStore;

/// Adds each `(name, definition)` column the reports table lacks, in
/// order.
pub(crate) fn add_missing_columns(
    conn: &Connection,
    wanted: &[(&str, &str)],
) -> Result<(), StoreError> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info('reports')")?;
    let columns: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, definition) in wanted {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE reports ADD COLUMN {definition};"))?;
        }
    }
    Ok(())
}

/// Adds the van id and report key columns to a database from before them
/// (rows already there keep no key: [`ReportStore::rows_after`] derives
/// one), and the indexes the dashboard's queries use.
pub(crate) fn migrate_identity(conn: &Connection) -> Result<(), StoreError> {
    add_missing_columns(
        conn,
        &[("van_id", "van_id TEXT"), ("report_key", "report_key TEXT")],
    )?;
    // UNIQUE lets any number of rows have no key (NULLs are distinct).
    conn.execute_batch(
        "CREATE UNIQUE INDEX IF NOT EXISTS reports_report_key ON reports (report_key);
         CREATE INDEX IF NOT EXISTS reports_device ON reports (device_id, time);
         CREATE INDEX IF NOT EXISTS reports_target ON reports (to_version, device_id, time);",
    )?;
    Ok(())
}

/// The columns a [`StoredReport`] is read from, in [`raw_report`]'s order.
const ROW_COLUMNS: &str = "time, van_id, device_id, from_version, to_version, state, source, \
                           error, bytes, full_bytes, verified";

fn raw_report(row: &Row<'_>) -> rusqlite::Result<RawReport> {
    Ok(RawReport {
        time: row.get(0)?,
        van_id: row.get(1)?,
        device_id: row.get(2)?,
        from_version: row.get(3)?,
        to_version: row.get(4)?,
        state: row.get(5)?,
        source: row.get(6)?,
        error: row.get(7)?,
        bytes: row.get(8)?,
        full_bytes: row.get(9)?,
        verified: row.get(10)?,
    })
}

/// Checks rows as they leave the database.
fn checked(rows: rusqlite::Result<Vec<RawReport>>) -> Result<Vec<StoredReport>, StoreError> {
    let rows = rows?.into_iter().map(RawReport::check);
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stored row with what a copy elsewhere needs to store it exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRow {
    /// The row's number in its file (sync resumes after it).
    pub id: i64,
    /// Its stable key (stored, or derived for rows from before keys).
    pub key: String,
    /// The report.
    pub report: StoredReport,
}

impl ReportStore {
    /// Stores `report` from `van`, checked as `verification`, received at
    /// `time` under `key` (see [`report_key`]), unless a report with that
    /// key is already stored.
    pub fn insert_identified(
        &self,
        van: &VanId,
        key: &str,
        report: &Report,
        verification: Verification,
        time: SystemTime,
        fix: Option<VanFix>,
    ) -> Result<Inserted, StoreError> {
        // SQLite integers are signed; a byte count past i64::MAX is not real.
        let integer = |n: Option<u64>| n.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let changed = self.conn().execute(
            "INSERT INTO reports (time, device_id, from_version, to_version, state, error, bytes,
                                  full_bytes, van_id, report_key, verified, van_lat, van_lon,
                                  van_fix_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (report_key) DO NOTHING",
            params![
                ReportTime::from(time).to_string(),
                report.device_id,
                report.from_version.as_str(),
                report.to_version.as_str(),
                report.state.as_str(),
                report.error,
                integer(report.bytes),
                integer(report.full_bytes),
                van.as_str(),
                key,
                verification.as_str(),
                fix.map(|f| f.lat),
                fix.map(|f| f.lon),
                fix.map(|f| ReportTime::from(f.time).to_string()),
            ],
        )?;
        Ok(if changed == 1 {
            Inserted::New
        } else {
            Inserted::Duplicate
        })
    }

    /// Each meter's latest van-report state toward `target`, as
    /// `(device_id, state)`, by device id.
    pub fn latest_states(&self, target: &str) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT device_id, state FROM (
                 SELECT device_id, state,
                        ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY time DESC, id DESC) AS n
                 FROM reports WHERE to_version = ?1 AND source = 'van')
             WHERE n = 1 ORDER BY device_id",
        )?;
        let rows = statement.query_map(params![target], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds `fix` to `van`'s trace.
    pub fn record_fix(&self, van: &VanId, fix: VanFix) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO trace (van_id, time, lat, lon) VALUES (?1, ?2, ?3, ?4)",
            params![
                van.as_str(),
                ReportTime::from(fix.time).to_string(),
                fix.lat,
                fix.lon
            ],
        )?;
        Ok(())
    }

    /// `van`'s trace from `since` on, oldest first.
    pub fn trace(&self, van: &VanId, since: ReportTime) -> Result<Vec<VanFix>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT time, lat, lon FROM trace WHERE van_id = ?1 AND time >= ?2 ORDER BY time, id",
        )?;
        let rows = statement.query_map(params![van.as_str(), since.to_string()], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
        })?;
        let mut trace = Vec::new();
        for row in rows {
            let (time, lat, lon) = row?;
            let time: ReportTime = time
                .parse()
                .map_err(|_| crate::BadRow::new("trace time", &time, "an RFC 3339 time"))?;
            trace.push(VanFix {
                lat,
                lon,
                time: time.system_time(),
            });
        }
        Ok(trace)
    }

    /// Up to `limit` van reports after row number `after`, in row order,
    /// each with its key (rows without one get [`legacy_key`], over the
    /// columns' stored text). LoRa status rows (`otavan campaign watch`)
    /// stay on the machine that heard them.
    pub fn rows_after(&self, after: i64, limit: u32) -> Result<Vec<KeyedRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS}, id, report_key FROM reports
             WHERE id > ?1 AND source = 'van' ORDER BY id LIMIT ?2"
        ))?;
        let rows = statement.query_map(params![after, limit], |row| {
            let report = raw_report(row)?;
            let id: i64 = row.get(11)?;
            let key: Option<String> = row.get(12)?;
            let key = key
                .unwrap_or_else(|| legacy_key(id, &report.time, &report.device_id, &report.state));
            Ok((id, key, report))
        })?;
        let mut keyed = Vec::new();
        for row in rows {
            let (id, key, report) = row?;
            let report = report.check()?;
            keyed.push(KeyedRow { id, key, report });
        }
        Ok(keyed)
    }

    /// The dashboard's counts (see [`Summary`]).
    pub fn summary(&self, query: &SummaryQuery) -> Result<Summary, StoreError> {
        let conn = self.conn();
        let mut summary = Summary::default();
        // With authenticated_only (?2): verified van rows, and LoRa rows
        // saying the meter runs the target after an update.
        let mut latest = conn.prepare_cached(
            "SELECT state, COUNT(*) FROM (
                 SELECT state, ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY time DESC, id DESC) AS n
                 FROM reports WHERE to_version = ?1
                     AND ((source = 'van' AND (NOT ?2 OR verified = 'verified'))
                          OR (?2 AND source = 'lora' AND state = 'UPDATED')))
             WHERE n = 1 GROUP BY state",
        )?;
        let mut rows = latest.query(params![query.target.as_str(), query.authenticated_only])?;
        while let Some(row) = rows.next()? {
            let state: String = row.get(0)?;
            let n: i64 = row.get(1)?;
            summary.add_state(&state, n as u64);
        }
        let unverified: i64 = conn.query_row(
            "SELECT COUNT(*) FROM reports
             WHERE to_version = ?1 AND source = 'van' AND verified <> 'verified'",
            params![query.target.as_str()],
            |row| row.get(0),
        )?;
        summary.unverified_reports = unverified as u64;
        let (meters, reports): (i64, i64) = conn.query_row(
            "SELECT COUNT(DISTINCT device_id), COUNT(*) FROM reports WHERE van_id = ?1 AND time >= ?2",
            params![query.van.as_str(), query.since.to_string()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        summary.session_meters = meters as u64;
        summary.session_reports = reports as u64;
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM reports", [], |row| row.get(0))?;
        summary.total_reports = total as u64;
        let mut failures = conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS} FROM reports WHERE state = 'FAILED' AND source = 'van'
             ORDER BY time DESC, id DESC LIMIT ?1"
        ))?;
        summary.recent_failures = checked(
            failures
                .query_map(params![query.recent_failures], raw_report)?
                .collect(),
        )?;
        Ok(summary)
    }

    /// A meter's latest `limit` reports, oldest first.
    pub fn device_history(
        &self,
        device_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT * FROM (SELECT {ROW_COLUMNS}, id FROM reports WHERE device_id = ?1
                            ORDER BY time DESC, id DESC LIMIT ?2)
             ORDER BY time, id"
        ))?;
        let rows = statement.query_map(params![device_id, limit], raw_report)?;
        checked(rows.collect())
    }

    /// The highest row number, if any row is stored.
    pub fn last_row_id(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT MAX(id) FROM reports", [], |row| row.get(0))
            .optional()?
            .flatten())
    }
}

/// How [`SqliteBackend`] runs SQLite's blocking calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// On tokio's blocking pool (a real server).
    BlockingPool,
    /// On the calling task (rehearsals in virtual time).
    Inline,
}

/// [`ReportStore`] as a [`ReportBackend`] for one van.
pub struct SqliteBackend {
    store: Arc<ReportStore>,
    van: VanId,
    session: String,
    run: Run,
    label: String,
}

impl SqliteBackend {
    /// Stores `van`'s reports in `store`, running SQLite on the blocking
    /// pool. `label` names the file in logs and on the dashboard.
    pub fn new(store: Arc<ReportStore>, van: VanId, label: String) -> SqliteBackend {
        SqliteBackend {
            store,
            van,
            session: ReportTime::from(SystemTime::now()).to_string(),
            run: Run::BlockingPool,
            label,
        }
    }

    /// Runs SQLite on the calling task, blocking it. Only for in-process
    /// use under virtual time (rehearsals): work on the blocking pool
    /// finishes in real-time order, which would make a rehearsal's event
    /// order depend on the machine.
    pub fn inline(mut self) -> SqliteBackend {
        self.run = Run::Inline;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<ReportStore> {
        &self.store
    }

    fn call<T, F>(&self, work: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&ReportStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match self.run {
            Run::Inline => {
                let result = work(&store);
                Box::pin(async move { result })
            }
            Run::BlockingPool => {
                Box::pin(async move { tokio::task::spawn_blocking(move || work(&store)).await? })
            }
        }
    }
}

impl ReportBackend for SqliteBackend {
    fn insert<'a>(
        &'a self,
        report: &'a Report,
        verification: Verification,
        time: SystemTime,
        fix: Option<VanFix>,
    ) -> StoreFuture<'a, Inserted> {
        let key = report_key(&self.van, &self.session, report, verification);
        let report = report.clone();
        let van = self.van.clone();
        self.call(move |store| {
            store.insert_identified(&van, &key, &report, verification, time, fix)
        })
    }

    fn latest_states<'a>(
        &'a self,
        target: &'a otavan_protocol::Version,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        let target = target.as_str().to_owned();
        self.call(move |store| store.latest_states(&target))
    }

    fn record_fix(&self, fix: VanFix) -> StoreFuture<'_, ()> {
        let van = self.van.clone();
        self.call(move |store| store.record_fix(&van, fix))
    }

    fn trace(&self, since: ReportTime) -> StoreFuture<'_, Vec<VanFix>> {
        let van = self.van.clone();
        self.call(move |store| store.trace(&van, since))
    }

    fn export_csv(&self) -> StoreFuture<'_, Vec<u8>> {
        self.call(|store| {
            let mut out = Vec::new();
            store.export_csv(&mut out).map(|()| out)
        })
    }

    fn summary<'a>(&'a self, query: &'a SummaryQuery) -> StoreFuture<'a, Summary> {
        let query = query.clone();
        self.call(move |store| store.summary(&query))
    }

    fn device_history<'a>(
        &'a self,
        device_id: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredReport>> {
        let device_id = device_id.to_owned();
        self.call(move |store| store.device_history(&device_id, limit))
    }

    fn describe(&self) -> String {
        format!("SQLite {}", self.label)
    }

    fn van(&self) -> &VanId {
        &self.van
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredState;
    use otavan_protocol::UpdateState;
    use std::time::{Duration, UNIX_EPOCH};

    fn report(device: &str, state: &str, error: Option<&str>) -> Report {
        let error = error.map_or(String::new(), |e| format!(r#","error":"{e}""#));
        serde_json::from_str(&format!(
            r#"{{"device_id":"{device}","from_version":"1.0.0","to_version":"1.1.0","state":"{state}"{error}}}"#
        ))
        .unwrap()
    }

    /// Inserts as `van` in session 0, unsigned.
    fn put(store: &ReportStore, van: &VanId, report: &Report, time: SystemTime) -> Inserted {
        put_as(store, van, report, Verification::Unsigned, time)
    }

    fn put_as(
        store: &ReportStore,
        van: &VanId,
        report: &Report,
        verification: Verification,
        time: SystemTime,
    ) -> Inserted {
        let key = report_key(van, "s0", report, verification);
        store
            .insert_identified(van, &key, report, verification, time, None)
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_re_sent_report_is_stored_once() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        let van = VanId::new("van-1").unwrap();
        let r = report("m1", "UPDATED", None);
        assert_eq!(put(&store, &van, &r, at(0)), Inserted::New);
        assert_eq!(put(&store, &van, &r, at(5)), Inserted::Duplicate);
        assert_eq!(store.count().unwrap(), 1);
        // Through another van it is another report (unless the meter names it).
        let other = VanId::new("van-2").unwrap();
        assert_eq!(put(&store, &other, &r, at(6)), Inserted::New);
        assert_eq!(store.count().unwrap(), 2);
    }

    #[test]
    fn a_report_keeps_the_vans_fix_and_the_trace_is_kept_per_van() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("van.db");
        let store = ReportStore::open(&path).unwrap();
        let van = VanId::new("van-1").unwrap();
        let fix = VanFix {
            lat: 52.3701,
            lon: 9.7343,
            time: at(1),
        };
        let with = report("m1", "UPDATED", None);
        let key = report_key(&van, "s0", &with, Verification::Unsigned);
        store
            .insert_identified(&van, &key, &with, Verification::Unsigned, at(2), Some(fix))
            .unwrap();
        put(&store, &van, &report("m2", "FAILED", Some("e")), at(3));
        type Positioned = (String, Option<f64>, Option<f64>, Option<String>);
        let rows: Vec<Positioned> = store
            .conn()
            .prepare("SELECT device_id, van_lat, van_lon, van_fix_time FROM reports ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    "m1".to_owned(),
                    Some(52.3701),
                    Some(9.7343),
                    Some(ReportTime::from(at(1)).to_string())
                ),
                ("m2".to_owned(), None, None, None),
            ]
        );
        let later = VanFix { time: at(9), ..fix };
        store.record_fix(&van, fix).unwrap();
        store.record_fix(&van, later).unwrap();
        store
            .record_fix(&VanId::new("van-2").unwrap(), fix)
            .unwrap();
        assert_eq!(store.trace(&van, at(0).into()).unwrap(), [fix, later]);
        assert_eq!(store.trace(&van, at(5).into()).unwrap(), [later]);
        assert_eq!(
            store.latest_states("1.1.0").unwrap(),
            [
                ("m1".to_owned(), "UPDATED".to_owned()),
                ("m2".to_owned(), "FAILED".to_owned())
            ]
        );
        put(&store, &van, &report("m1", "FAILED", Some("late")), at(4));
        assert_eq!(store.latest_states("1.1.0").unwrap()[0].1, "FAILED");
        assert!(store.latest_states("9.9.9").unwrap().is_empty());
        // Reopening (the migration again) keeps it all.
        drop(store);
        let store = ReportStore::open(&path).unwrap();
        assert_eq!(store.trace(&van, at(0).into()).unwrap().len(), 2);
    }

    /// `otavan campaign watch` stores LoRa status rows in the same table:
    /// they show in a meter's history but never count as its van state,
    /// never list as van failures, and stay out of a fleet sync.
    #[test]
    fn lora_rows_do_not_count_as_van_reports() {
        use otavan_protocol::lora::{OtaResult, StatusUplink, VersionTag};
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        let van = VanId::new("van-1").unwrap();
        put(&store, &van, &report("m1", "UPDATED", None), at(1));
        let status = StatusUplink {
            version_tag: VersionTag::of(&"1.0.0".parse().unwrap()),
            pending_confirm: false,
            last_result: OtaResult::None,
            battery: 200,
            campaign: 7,
        };
        let lora = crate::reports::LoraStatus {
            device_id: "m1",
            version: "1.1.0",
            status: &status,
        };
        store.insert_lora(&lora, at(2)).unwrap();
        let failed_lora = StatusUplink {
            last_result: OtaResult::WifiJoinFailed,
            ..status
        };
        let lora = crate::reports::LoraStatus {
            device_id: "m2",
            version: "1.0.0",
            status: &failed_lora,
        };
        store.insert_lora(&lora, at(3)).unwrap();
        let summary = store
            .summary(&SummaryQuery {
                target: "1.1.0".parse().unwrap(),
                van: van.clone(),
                since: ReportTime::from(at(0)),
                recent_failures: 10,
                authenticated_only: false,
            })
            .unwrap();
        assert_eq!(summary.count(UpdateState::Updated), 1);
        assert_eq!(summary.meters(), 1);
        assert!(summary.recent_failures.is_empty());
        assert_eq!(store.device_history("m1", 10).unwrap().len(), 2);
        let synced = store.rows_after(0, 100).unwrap();
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0].report.device_id, "m1");
    }

    /// `--require-signed-reports`: a forged (unsigned) UPDATED counts
    /// only without it; a verified one and a LoRa uplink saying the meter
    /// runs the target count with it. An unsigned report cannot take the
    /// key of the meter's signed one.
    #[test]
    fn authenticated_only_counts_verified_reports_and_lora_updates() {
        use otavan_protocol::lora::{OtaResult, StatusUplink, VersionTag};
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        let van = VanId::new("van-1").unwrap();
        let with_id = |device: &str, state: &str, id: &str| Report {
            report_id: Some(id.into()),
            ..report(device, state, None)
        };
        let (unsigned, verified) = (Verification::Unsigned, Verification::Verified);
        let forged = with_id("m1", "UPDATED", "a1/UPDATED");
        assert_eq!(
            put_as(&store, &van, &forged, unsigned, at(1)),
            Inserted::New
        );
        // The meter's own signed report with the same id is still stored.
        let genuine = with_id("m1", "UPDATED", "a1/UPDATED");
        assert_eq!(
            put_as(&store, &van, &genuine, verified, at(2)),
            Inserted::New
        );
        assert_eq!(
            put_as(&store, &van, &genuine, verified, at(3)),
            Inserted::Duplicate,
            "a replay"
        );
        put_as(
            &store,
            &van,
            &report("m2", "UPDATED", None),
            unsigned,
            at(4),
        );
        let status = StatusUplink {
            version_tag: VersionTag::of(&"1.1.0".parse().unwrap()),
            pending_confirm: false,
            last_result: OtaResult::Updated,
            battery: 200,
            campaign: 7,
        };
        let lora = crate::reports::LoraStatus {
            device_id: "m3",
            version: "1.1.0",
            status: &status,
        };
        store.insert_lora(&lora, at(5)).unwrap();
        let checked = Verification::Unchecked;
        put_as(&store, &van, &report("m4", "UPDATED", None), checked, at(6));
        let summary = |authenticated_only| {
            store
                .summary(&SummaryQuery {
                    target: "1.1.0".parse().unwrap(),
                    van: van.clone(),
                    since: ReportTime::from(at(0)),
                    recent_failures: 10,
                    authenticated_only,
                })
                .unwrap()
        };
        let all = summary(false);
        assert_eq!((all.count(UpdateState::Updated), all.meters()), (3, 3));
        assert_eq!(all.unverified_reports, 3);
        let authenticated = summary(true);
        assert_eq!(authenticated.count(UpdateState::Updated), 2, "m1 and m3");
        assert_eq!(authenticated.meters(), 2);
        let history = store.device_history("m1", 10).unwrap();
        let marks: Vec<_> = history.iter().map(|r| r.verification).collect();
        assert_eq!(marks, [unsigned, verified]);
        let m3 = store.device_history("m3", 10).unwrap();
        assert_eq!(m3[0].verification, Verification::Network);
    }

    #[test]
    fn summary_counts_each_meter_once_in_its_latest_state() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        let van = VanId::new("van-1").unwrap();
        let other = VanId::new("van-2").unwrap();
        put(&store, &van, &report("m1", "DOWNLOADING", None), at(1));
        put(&store, &van, &report("m1", "UPDATED", None), at(2));
        put(&store, &van, &report("m2", "DOWNLOADING", None), at(3));
        put(&store, &van, &report("m3", "FAILED", Some("cut")), at(4));
        // Before the session, another van.
        put(&store, &other, &report("m4", "UPDATED", None), at(0));
        let summary = store
            .summary(&SummaryQuery {
                target: "1.1.0".parse().unwrap(),
                van: van.clone(),
                since: ReportTime::from(at(1)),
                recent_failures: 10,
                authenticated_only: false,
            })
            .unwrap();
        assert_eq!(summary.count(UpdateState::Updated), 2);
        assert_eq!(summary.count(UpdateState::Downloading), 1);
        assert_eq!(summary.count(UpdateState::Failed), 1);
        assert_eq!(summary.meters(), 4);
        assert_eq!((summary.session_meters, summary.session_reports), (3, 4));
        assert_eq!(summary.total_reports, 5);
        assert_eq!(summary.recent_failures.len(), 1);
        assert_eq!(summary.recent_failures[0].error.as_deref(), Some("cut"));
        let history = store.device_history("m1", 10).unwrap();
        let states: Vec<_> = history.iter().map(|r| r.state.to_string()).collect();
        assert_eq!(states, ["DOWNLOADING", "UPDATED"]);
        assert_eq!(
            store.device_history("m1", 1).unwrap()[0].state,
            StoredState::Van(UpdateState::Updated)
        );
    }

    /// A row otavan never wrote (another tool, a hand edit) is an error
    /// naming the column, where the meter's history is read.
    #[test]
    fn a_row_that_does_not_read_as_a_report_is_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO reports (time, device_id, from_version, to_version, state)
                 VALUES ('2026-01-01T08:00:00.000Z', 'm1', '1.0.0', '1.1.0', 'CONFIRMED');",
            )
            .unwrap();
        let error = store.device_history("m1", 10).unwrap_err();
        assert!(
            matches!(&error, StoreError::BadRow(row) if row.column == "state"),
            "{error}"
        );
        assert!(error.to_string().contains("\"CONFIRMED\""), "{error}");
        assert!(store.rows_after(0, 10).is_err());
    }

    #[test]
    fn rows_without_a_key_get_a_stable_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = ReportStore::open(&dir.path().join("van.db")).unwrap();
        store
            .insert_unkeyed(&report("m1", "UPDATED", None), at(0))
            .unwrap();
        let van = VanId::new("van-1").unwrap();
        put(&store, &van, &report("m2", "UPDATED", None), at(1));
        let first = store.rows_after(0, 10).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].report.van_id, None);
        assert_eq!(
            first[1].key,
            report_key(
                &van,
                "s0",
                &report("m2", "UPDATED", None),
                Verification::Unsigned
            )
        );
        assert_eq!(first, store.rows_after(0, 10).unwrap(), "keys are stable");
        assert_eq!(store.rows_after(first[0].id, 10).unwrap().len(), 1);
        assert_eq!(store.last_row_id().unwrap(), Some(first[1].id));
    }
}
