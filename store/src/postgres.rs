//! The fleet store: one PostgreSQL table shared by every van and the
//! office (`otavan serve --db postgres://...`).
//!
//! One connection per process, opened at start and again after it breaks:
//! a van's report rate is a handful a second. A call that fails because
//! the connection broke is retried once on a new connection; since every
//! row has a unique key and inserts are `ON CONFLICT DO NOTHING`, a retry
//! after an insert that did reach the database stores nothing twice.
//! Connections are unencrypted (no TLS): reach the database over a VPN or
//! an SSH tunnel (docs/operations.md).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use otavan_protocol::Report;
use tokio_postgres::{Client, Config, NoTls, Row};
use tracing::warn;

use super::identity::{VanId, report_key};
use super::row::RawReport;
use super::sqlite::KeyedRow;
use super::{
    Inserted, ReportBackend, ReportTime, Source, StoreError, StoreFuture, StoredReport, Summary,
    SummaryQuery, VanFix, Verification,
};
use crate::reports::{CSV_HEADER, csv_degrees};
use crate::spreadsheet::neutralise;

/// How long one database call may take, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The fleet table and its indexes. `time` is RFC 3339 text like the
/// SQLite store's (`time::timestamptz` converts it).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reports (
    id BIGSERIAL PRIMARY KEY,
    report_key TEXT NOT NULL UNIQUE,
    van_id TEXT NOT NULL,
    time TEXT NOT NULL,
    device_id TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    bytes BIGINT,
    full_bytes BIGINT,
    stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Added with signatures (here for new tables and old ones alike): rows
-- from before were not checked by anyone.
ALTER TABLE reports ADD COLUMN IF NOT EXISTS verified TEXT NOT NULL DEFAULT 'unsigned';
-- Where the van was (otavan serve --gpsd); NULL without a fix.
ALTER TABLE reports ADD COLUMN IF NOT EXISTS van_lat DOUBLE PRECISION;
ALTER TABLE reports ADD COLUMN IF NOT EXISTS van_lon DOUBLE PRECISION;
ALTER TABLE reports ADD COLUMN IF NOT EXISTS van_fix_time TEXT;
CREATE TABLE IF NOT EXISTS trace (
    id BIGSERIAL PRIMARY KEY,
    van_id TEXT NOT NULL,
    time TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS trace_van ON trace (van_id, time);
CREATE INDEX IF NOT EXISTS reports_device ON reports (device_id, time);
CREATE INDEX IF NOT EXISTS reports_target ON reports (to_version, device_id, time);
CREATE INDEX IF NOT EXISTS reports_van ON reports (van_id, time);
";

/// Any number of otavans may create the schema at once: concurrent
/// `CREATE TABLE IF NOT EXISTS` can still collide, so they queue on this
/// advisory lock (an arbitrary constant: "otavan" in ASCII).
const SCHEMA_LOCK: i64 = 0x6f74_6176_616e;

const COLUMNS: &str =
    "time, van_id, device_id, from_version, to_version, state, error, bytes, full_bytes, verified";

/// Why a `postgres://` address was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(String);

/// Parses a `postgres://user@host:port/dbname` address.
pub fn parse_url(url: &str) -> Result<Config, BadUrl> {
    let mut config: Config = url
        .parse()
        .map_err(|e| BadUrl(format!("not a PostgreSQL address ({e}): {}", redact(url))))?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(BadUrl(
            "sslmode=require is not supported: otavan speaks to PostgreSQL without TLS; \
             use a VPN or an SSH tunnel"
                .into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("otavan");
    }
    Ok(config)
}

/// `config` without its password, for logs: `postgres://user@host:port/db`.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let user = config.get_user().map_or(String::new(), |u| format!("{u}@"));
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

/// An address with any password hidden, for error messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The fleet table, for one van.
pub struct PgStore {
    config: Config,
    van: VanId,
    session: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl PgStore {
    /// Connects, creates the table if needed, and stores as `van`.
    pub async fn connect(config: Config, van: VanId) -> Result<PgStore, StoreError> {
        let store = PgStore {
            config,
            van,
            session: ReportTime::from(SystemTime::now()).to_string(),
            client: tokio::sync::Mutex::new(None),
        };
        store.client().await?;
        Ok(store)
    }

    /// The connection, opened (and the schema checked) if there is none or
    /// it broke.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let (mut client, connection) = self.config.connect(NoTls).await?;
        let target = describe(&self.config);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                warn!(%error, db = %target, "fleet database connection lost");
            }
        });
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        transaction.batch_execute(SCHEMA).await?;
        transaction.batch_execute(crate::halts::SCHEMA).await?;
        transaction.commit().await?;
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Runs `call` with a connection, within [`CALL_TIMEOUT`]; once more on
    /// a new connection if the first one had broken.
    pub(crate) async fn with_client<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let attempt = async {
            let client = self.client().await?;
            match call(Arc::clone(&client)).await {
                Err(error) if client.is_closed() || error.is_closed() => {
                    warn!(%error, "fleet database call failed on a broken connection; retrying");
                    Ok(call(self.client().await?).await?)
                }
                other => Ok(other?),
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, attempt)
            .await
            .unwrap_or(Err(StoreError::Timeout(CALL_TIMEOUT)))
    }

    /// Copies `rows` (from a van's SQLite file) in one statement; rows
    /// whose key is already there are skipped. Returns how many were new.
    /// `van` stands in for rows stored before van ids.
    pub async fn insert_rows(&self, rows: &[KeyedRow], van: &VanId) -> Result<u64, StoreError> {
        let column = |f: fn(&KeyedRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
        let keys = column(|r| Some(r.key.clone()));
        let vans: Vec<Option<String>> = rows
            .iter()
            .map(|r| Some(r.report.van_id.as_ref().unwrap_or(van).to_string()))
            .collect();
        let times = column(|r| Some(r.report.time.to_string()));
        let devices = column(|r| Some(r.report.device_id.clone()));
        let froms = column(|r| Some(r.report.from_version.clone()));
        let tos = column(|r| Some(r.report.to_version.clone()));
        let states = column(|r| Some(r.report.state.to_string()));
        let errors = column(|r| r.report.error.clone());
        let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let bytes: Vec<Option<i64>> = rows.iter().map(|r| count(r.report.bytes)).collect();
        let full: Vec<Option<i64>> = rows.iter().map(|r| count(r.report.full_bytes)).collect();
        let verified = column(|r| Some(r.report.verification.as_str().to_owned()));
        self.with_client(|client| {
            let (keys, vans, times, devices) = (&keys, &vans, &times, &devices);
            let (froms, tos, states, errors, bytes, full, verified) =
                (&froms, &tos, &states, &errors, &bytes, &full, &verified);
            async move {
                client
                    .execute(
                        "INSERT INTO reports (report_key, van_id, time, device_id, from_version,
                                              to_version, state, error, bytes, full_bytes,
                                              verified)
                         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                                              $5::text[], $6::text[], $7::text[], $8::text[],
                                              $9::int8[], $10::int8[], $11::text[])
                         ON CONFLICT (report_key) DO NOTHING",
                        &[
                            keys, vans, times, devices, froms, tos, states, errors, bytes, full,
                            verified,
                        ],
                    )
                    .await
            }
        })
        .await
    }

    /// Number of stored reports (all vans).
    pub async fn count(&self) -> Result<u64, StoreError> {
        let row = self
            .with_client(|client| async move {
                client.query_one("SELECT COUNT(*) FROM reports", &[]).await
            })
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

/// A row of [`COLUMNS`], checked: the fleet table holds van reports only.
fn stored_report(row: &Row) -> Result<StoredReport, StoreError> {
    let raw = RawReport {
        time: row.get(0),
        van_id: row.get(1),
        device_id: row.get(2),
        from_version: row.get(3),
        to_version: row.get(4),
        state: row.get(5),
        source: Source::Van.as_str().to_owned(),
        error: row.get(6),
        bytes: row.get(7),
        full_bytes: row.get(8),
        verified: row.get(9),
    };
    Ok(raw.check()?)
}

impl ReportBackend for PgStore {
    fn active_halts(&self) -> StoreFuture<'_, Vec<crate::halts::HaltRecord>> {
        Box::pin(PgStore::active_halts(self))
    }

    fn insert<'a>(
        &'a self,
        report: &'a Report,
        verification: Verification,
        time: SystemTime,
        fix: Option<VanFix>,
    ) -> StoreFuture<'a, Inserted> {
        Box::pin(async move {
            let (lat, lon) = (fix.map(|f| f.lat), fix.map(|f| f.lon));
            let fix_time = fix.map(|f| ReportTime::from(f.time).to_string());
            let key = report_key(&self.van, &self.session, report, verification);
            let time = ReportTime::from(time).to_string();
            let integer = |n: Option<u64>| n.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
            let (bytes, full) = (integer(report.bytes), integer(report.full_bytes));
            let changed = self
                .with_client(|client| {
                    let (key, time, fix_time) = (&key, &time, &fix_time);
                    async move {
                        client
                            .execute(
                                "INSERT INTO reports (report_key, van_id, time, device_id,
                                     from_version, to_version, state, error, bytes, full_bytes,
                                     verified, van_lat, van_lon, van_fix_time)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                         $13, $14)
                                 ON CONFLICT (report_key) DO NOTHING",
                                &[
                                    key,
                                    &self.van.as_str(),
                                    time,
                                    &report.device_id,
                                    &report.from_version.as_str(),
                                    &report.to_version.as_str(),
                                    &report.state.as_str(),
                                    &report.error,
                                    &bytes,
                                    &full,
                                    &verification.as_str(),
                                    &lat,
                                    &lon,
                                    fix_time,
                                ],
                            )
                            .await
                    }
                })
                .await?;
            Ok(if changed == 1 {
                Inserted::New
            } else {
                Inserted::Duplicate
            })
        })
    }

    fn latest_states<'a>(
        &'a self,
        target: &'a otavan_protocol::Version,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let rows = self
                .with_client(|client| async move {
                    client
                        .query(
                            "SELECT DISTINCT ON (device_id) device_id, state FROM reports
                             WHERE to_version = $1
                             ORDER BY device_id, time DESC, id DESC",
                            &[&target.as_str()],
                        )
                        .await
                })
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn record_fix(&self, fix: VanFix) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let time = ReportTime::from(fix.time).to_string();
            self.with_client(|client| {
                let time = &time;
                async move {
                    client
                        .execute(
                            "INSERT INTO trace (van_id, time, lat, lon) VALUES ($1, $2, $3, $4)",
                            &[&self.van.as_str(), time, &fix.lat, &fix.lon],
                        )
                        .await
                }
            })
            .await?;
            Ok(())
        })
    }

    fn trace(&self, since: ReportTime) -> StoreFuture<'_, Vec<VanFix>> {
        Box::pin(async move {
            let since = since.to_string();
            let rows = self
                .with_client(|client| {
                    let since = &since;
                    async move {
                        client
                            .query(
                                "SELECT time, lat, lon FROM trace
                                 WHERE van_id = $1 AND time >= $2 ORDER BY time, id",
                                &[&self.van.as_str(), since],
                            )
                            .await
                    }
                })
                .await?;
            let mut trace = Vec::with_capacity(rows.len());
            for row in rows {
                let time: String = row.get(0);
                let parsed: ReportTime = time
                    .parse()
                    .map_err(|_| crate::BadRow::new("trace time", &time, "an RFC 3339 time"))?;
                trace.push(VanFix {
                    lat: row.get(1),
                    lon: row.get(2),
                    time: parsed.system_time(),
                });
            }
            Ok(trace)
        })
    }

    fn export_csv(&self) -> StoreFuture<'_, Vec<u8>> {
        Box::pin(async move {
            let rows = self
                .with_client(|client| async move {
                    client
                        .query(
                            "SELECT time, device_id, from_version, to_version, state,
                                    COALESCE(error, ''), verified, van_lat, van_lon,
                                    COALESCE(van_fix_time, '') FROM reports ORDER BY id",
                            &[],
                        )
                        .await
                })
                .await?;
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(CSV_HEADER)?;
            for row in rows {
                // By name, so the export follows CSV_HEADER; a column the
                // fleet table does not have is empty.
                let fields = CSV_HEADER.iter().map(|name| match *name {
                    "time" => row.get::<_, String>(0),
                    "device_id" => row.get(1),
                    "from_version" => row.get(2),
                    "to_version" => row.get(3),
                    "state" => row.get(4),
                    "error" => row.get(5),
                    // The fleet table holds what vans heard.
                    "source" => Source::Van.as_str().to_owned(),
                    "verified" => row.get(6),
                    "van_lat" => csv_degrees(row.get(7)),
                    "van_lon" => csv_degrees(row.get(8)),
                    "van_fix_time" => row.get(9),
                    _ => String::new(),
                });
                writer.write_record(fields.map(|cell| neutralise(&cell).into_owned()))?;
            }
            writer
                .into_inner()
                .map_err(|e| StoreError::Csv(csv::Error::from(e.into_error())))
        })
    }

    fn summary<'a>(&'a self, query: &'a SummaryQuery) -> StoreFuture<'a, Summary> {
        Box::pin(async move {
            let mut summary = Summary::default();
            let latest = self
                .with_client(|client| async move {
                    client
                        .query(
                            "SELECT state, COUNT(*) FROM (
                                 SELECT DISTINCT ON (device_id) state FROM reports
                                 WHERE to_version = $1 AND (NOT $2 OR verified = 'verified')
                                 ORDER BY device_id, time DESC, id DESC) AS l
                             GROUP BY state",
                            &[&query.target.as_str(), &query.authenticated_only],
                        )
                        .await
                })
                .await?;
            for row in latest {
                summary.add_state(row.get(0), row.get::<_, i64>(1) as u64);
            }
            let session = self
                .with_client(|client| async move {
                    client
                        .query_one(
                            "SELECT COUNT(DISTINCT device_id), COUNT(*),
                                    (SELECT COUNT(*) FROM reports),
                                    (SELECT COUNT(*) FROM reports
                                     WHERE to_version = $3 AND verified <> 'verified')
                             FROM reports WHERE van_id = $1 AND time >= $2",
                            &[
                                &query.van.as_str(),
                                &query.since.to_string(),
                                &query.target.as_str(),
                            ],
                        )
                        .await
                })
                .await?;
            summary.session_meters = session.get::<_, i64>(0) as u64;
            summary.session_reports = session.get::<_, i64>(1) as u64;
            summary.total_reports = session.get::<_, i64>(2) as u64;
            summary.unverified_reports = session.get::<_, i64>(3) as u64;
            let limit = i64::from(query.recent_failures);
            let failures = self
                .with_client(|client| async move {
                    client
                        .query(
                            &format!(
                                "SELECT {COLUMNS} FROM reports WHERE state = 'FAILED'
                                 ORDER BY time DESC, id DESC LIMIT $1"
                            ),
                            &[&limit],
                        )
                        .await
                })
                .await?;
            summary.recent_failures = failures
                .iter()
                .map(stored_report)
                .collect::<Result<_, _>>()?;
            Ok(summary)
        })
    }

    fn device_history<'a>(
        &'a self,
        device_id: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<StoredReport>> {
        Box::pin(async move {
            let limit = i64::from(limit);
            let rows = self
                .with_client(|client| async move {
                    client
                        .query(
                            &format!(
                                "SELECT * FROM (SELECT {COLUMNS}, id FROM reports
                                     WHERE device_id = $1 ORDER BY time DESC, id DESC LIMIT $2) AS h
                                 ORDER BY time, id"
                            ),
                            &[&device_id, &limit],
                        )
                        .await
                })
                .await?;
            rows.iter().map(stored_report).collect()
        })
    }

    fn describe(&self) -> String {
        format!("PostgreSQL {}", describe(&self.config))
    }

    fn van(&self) -> &VanId {
        &self.van
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_passwords_never_shown() {
        let config = parse_url("postgres://otavan:secret@db.example:5433/fleet").unwrap();
        assert_eq!(describe(&config), "postgres://otavan@db.example:5433/fleet");
        let error = parse_url("postgres://otavan:secret@db.example:notaport/fleet").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(error.to_string().contains("otavan:***@"), "{error}");
        let tls = parse_url("postgres://u@h/db?sslmode=require").unwrap_err();
        assert!(tls.to_string().contains("TLS"), "{tls}");
    }
}
