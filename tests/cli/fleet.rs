//! Many vans, one PostgreSQL: real `otavan serve` processes storing into a
//! real cluster at once, re-sends after cuts, and `otavan reports sync`.

use std::ffi::OsStr;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Served, http, otavan, report_json};
use crate::pg::PgCluster;

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/releases")
}

fn van(pg: &PgCluster, id: &str, dir: &Path) -> Served {
    let url = pg.url();
    let cache = dir.join(format!("{id}.patches"));
    Served::start_with(
        &sample(),
        &[
            OsStr::new("--db"),
            OsStr::new(&url),
            OsStr::new("--van-id"),
            OsStr::new(id),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
        ],
    )
}

/// Sends a report and hangs up before the answer: a meter whose WiFi
/// dropped mid-request. Whether the van stored it is not known.
fn post_and_cut(addr: SocketAddr, body: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /report HTTP/1.1\r\nHost: van\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    drop(stream);
}

/// The van's count of re-sent reports it did not store again.
fn duplicates(van: &Served) -> u64 {
    let metrics = van.fetch("/metrics").1;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("otavan_reports_total{state=\"duplicate\"} "))
        .map_or(0, |n| n.parse().expect("a count"))
}

const STATES: [&str; 4] = ["DOWNLOADING", "DOWNLOADED", "VERIFIED", "UPDATED"];

#[test]
fn concurrent_vans_store_every_report_exactly_once() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let vans: Vec<Served> = (0..3)
        .map(|v| van(&pg, &format!("van-{v}"), dir.path()))
        .collect();
    const METERS: usize = 15;
    // Every van's meters report at once; every fifth report is first sent
    // and cut, then sent again.
    std::thread::scope(|scope| {
        for (v, served) in vans.iter().enumerate() {
            let addr = served.addr;
            for half in 0..2 {
                scope.spawn(move || {
                    for m in (half..METERS).step_by(2) {
                        for (s, state) in STATES.iter().enumerate() {
                            let device = format!("meter-{v}-{m:02}");
                            let error = (m == 0 && *state == "UPDATED").then_some("flash full");
                            let state = if error.is_some() { "FAILED" } else { state };
                            let body = report_json(&device, state, error);
                            if (m + s) % 5 == 0 {
                                post_and_cut(addr, &body);
                            }
                            let (status, _) = http(addr, "POST", "/report", &body);
                            assert_eq!(status, 204, "{body}");
                        }
                    }
                });
            }
        }
    });
    let expected = 3 * METERS * STATES.len();
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports") as usize, expected);
    assert_eq!(
        pg.count("SELECT COUNT(DISTINCT report_key) FROM reports") as usize,
        expected
    );
    for v in 0..3 {
        let sql = format!("SELECT COUNT(*) FROM reports WHERE van_id = 'van-{v}'");
        assert_eq!(pg.count(&sql) as usize, METERS * STATES.len());
        // Each van's meters went only through that van.
        let sql = format!(
            "SELECT COUNT(*) FROM reports WHERE van_id = 'van-{v}' AND device_id NOT LIKE 'meter-{v}-%'"
        );
        assert_eq!(pg.count(&sql), 0);
    }

    // A meter naming its reports is stored once whichever van hears it.
    // (The cut reports above may already count as duplicates on a van,
    // when it stored one before noticing the hang-up: count from here.)
    let roaming =
        report_json("roamer", "UPDATED", None).replace('}', r#","report_id":"4f2a9c-UPDATED"}"#);
    let duplicates_before = duplicates(&vans[1]);
    assert_eq!(vans[0].post("/report", &roaming), 204);
    assert_eq!(vans[1].post("/report", &roaming), 204);
    assert_eq!(
        pg.query("SELECT string_agg(van_id, ',') FROM reports WHERE device_id = 'roamer'"),
        "van-0"
    );
    assert_eq!(duplicates(&vans[1]), duplicates_before + 1);

    // The database restarts under the vans (the van's uplink cut): the
    // next report goes through on a new connection, once.
    pg.restart();
    let after_cut = report_json("meter-2-99", "DOWNLOADING", None);
    assert_eq!(vans[2].post("/report", &after_cut), 204);
    assert_eq!(vans[2].post("/report", &after_cut), 204);
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM reports WHERE device_id = 'meter-2-99'"),
        1
    );
    // While the database is down a report is refused (the meter may
    // re-send it later), not lost silently.
    pg.stop();
    let (status, body) = http(
        vans[0].addr,
        "POST",
        "/report",
        &report_json("meter-0-98", "DOWNLOADING", None),
    );
    assert_eq!(status, 500, "{body}");
    pg.restart();

    // Every van's dashboard and CSV show the whole fleet.
    let total = expected + 2;
    let csv = vans[0].fetch("/reports.csv").1;
    assert_eq!(csv.lines().count(), 1 + total, "{csv}");
    let page = vans[2].fetch("/").1;
    let updated = 3 * (METERS - 1) + 1;
    for (id, n) in [
        ("count-UPDATED", updated),
        ("count-FAILED", 3),
        ("meters", 3 * METERS + 2),
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\">{n}<")),
            "{id} {n}: {page}"
        );
    }
    assert!(
        page.contains("PostgreSQL postgres://postgres@127.0.0.1:"),
        "{page}"
    );
    assert_eq!(page.matches("<td class=\"err\">flash full</td>").count(), 3);
}

/// A van's SQLite file made by the server, plus rows from before report
/// keys (an old otavan's file, migrated in place when opened).
fn van_file(dir: &Path) -> (std::path::PathBuf, usize) {
    let db = dir.join("van.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE reports (id INTEGER PRIMARY KEY, time TEXT NOT NULL, device_id TEXT NOT NULL,
             from_version TEXT NOT NULL, to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
             bytes INTEGER, full_bytes INTEGER);
             INSERT INTO reports (time, device_id, from_version, to_version, state)
             VALUES ('2026-01-01T08:00:00.000Z', 'old-1', '1.0.0', '1.1.0', 'UPDATED'),
                    ('2026-01-01T08:00:00.000Z', 'old-1', '1.0.0', '1.1.0', 'UPDATED');",
        )
        .unwrap();
    }
    let served = Served::start_with(
        &sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--van-id"),
            OsStr::new("van-7"),
            OsStr::new("--patch-cache"),
            dir.join("patches").as_os_str(),
        ],
    );
    for m in 0..10 {
        for state in STATES {
            let body = report_json(&format!("meter-{m}"), state, None);
            assert_eq!(served.post("/report", &body), 204);
            assert_eq!(served.post("/report", &body), 204, "re-sent");
        }
    }
    (db, 2 + 10 * STATES.len())
}

fn sync(db: &Path, pg: &PgCluster, extra: &[&str]) -> String {
    let output = otavan()
        .args(["reports", "sync", "--from"])
        .arg(db)
        .args(["--to", &pg.url(), "--van-id", "old-van"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn sync_uploads_a_van_file_exactly_once() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let (db, rows) = van_file(dir.path());
    let first = sync(&db, &pg, &["--batch", "7"]);
    assert!(
        first.contains(&format!("{rows} reports, {rows} new, 0 already there")),
        "{first}"
    );
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports") as usize, rows);
    // Both rows from before keys arrive, under the van id given.
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM reports WHERE device_id = 'old-1' AND van_id = 'old-van'"),
        2
    );
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM reports WHERE van_id = 'van-7'") as usize,
        rows - 2
    );
    let again = sync(&db, &pg, &[]);
    assert!(
        again.contains(&format!("{rows} reports, 0 new, {rows} already there")),
        "{again}"
    );
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports") as usize, rows);
}

#[test]
fn an_interrupted_sync_completes_exactly_once_when_run_again() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("big.db");
    const ROWS: usize = 20_000;
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE reports (id INTEGER PRIMARY KEY, time TEXT NOT NULL, device_id TEXT NOT NULL,
             from_version TEXT NOT NULL, to_version TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
             bytes INTEGER, full_bytes INTEGER);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..ROWS {
            tx.execute(
                "INSERT INTO reports (time, device_id, from_version, to_version, state)
                 VALUES ('2026-01-01T08:00:00.000Z', ?1, '1.0.0', '1.1.0', 'UPDATED')",
                [format!("meter-{i}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    // One row per statement, killed once some have arrived.
    let mut child = otavan()
        .args([
            "reports", "sync", "--batch", "1", "--van-id", "van-9", "--from",
        ])
        .arg(&db)
        .args(["--to", &pg.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let table = "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'reports'";
    loop {
        assert!(Instant::now() < deadline, "sync never got going");
        if pg.count(table) == 1 && pg.count("SELECT COUNT(*) FROM reports") > 100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = pg.count("SELECT COUNT(*) FROM reports") as usize;
    assert!(partial > 100 && partial < ROWS, "{partial} rows at the cut");

    let rest = sync(&db, &pg, &[]);
    let new = ROWS - partial;
    assert!(
        rest.contains(&format!(
            "{ROWS} reports, {new} new, {partial} already there"
        )),
        "{rest}"
    );
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports") as usize, ROWS);
    assert_eq!(
        pg.count("SELECT COUNT(DISTINCT device_id) FROM reports") as usize,
        ROWS
    );
}

#[test]
fn bad_fleet_addresses_are_clear_errors() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("van.db");
    std::fs::write(&db, b"").unwrap();
    for (args, message) in [
        (
            vec![
                "reports",
                "sync",
                "--from",
                "missing.db",
                "--to",
                "postgres://u@127.0.0.1:1/x",
            ],
            "missing.db: no such report file",
        ),
        (
            vec![
                "reports",
                "sync",
                "--from",
                db.to_str().unwrap(),
                "--to",
                "mysql://x",
            ],
            "--to must be a postgres:// address",
        ),
        (
            vec![
                "reports",
                "sync",
                "--van-id",
                "v",
                "--from",
                db.to_str().unwrap(),
                "--to",
                "postgres://u:hunter2@127.0.0.1:1/x",
            ],
            "cannot reach postgres://u@127.0.0.1:1/x",
        ),
    ] {
        let output = otavan().args(&args).output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let output = otavan()
        .args(["serve", "--port", "0", "--root"])
        .arg(sample())
        .args([
            "--no-deltas",
            "--db",
            "postgres://otavan:hunter2@127.0.0.1:1/fleet",
        ])
        .args(["--van-id", "v"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot use the fleet database postgres://otavan@127.0.0.1:1/fleet"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let output = otavan()
        .args(["serve", "--root", ".", "--van-id", "van 7"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--van-id"));
}

/// The verified mark in the fleet database: a table from before it is
/// migrated (old rows `unsigned`), a van with `--report-key
/// --require-signed-reports` stores and counts like a SQLite van, and
/// `otavan reports sync` carries a van file's marks.
#[test]
fn the_fleet_table_keeps_whether_each_report_was_verified() {
    use otavan_protocol::report_auth::FleetSecret;
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    pg.query(
        "CREATE TABLE reports (id BIGSERIAL PRIMARY KEY, report_key TEXT NOT NULL UNIQUE,
             van_id TEXT NOT NULL, time TEXT NOT NULL, device_id TEXT NOT NULL,
             from_version TEXT NOT NULL, to_version TEXT NOT NULL, state TEXT NOT NULL,
             error TEXT, bytes BIGINT, full_bytes BIGINT,
             stored_at TIMESTAMPTZ NOT NULL DEFAULT now());
         INSERT INTO reports (report_key, van_id, time, device_id, from_version, to_version, state)
         VALUES ('old', 'van-0', '2026-01-01T00:00:00.000Z', 'old-meter', '1.0.0', '1.1.0', 'UPDATED');",
    );
    let secret = "7e".repeat(32);
    let key_file = dir.path().join("fleet-report.key");
    std::fs::write(&key_file, format!("{secret}\n")).unwrap();
    let fleet = FleetSecret::from_hex(&secret).unwrap();
    let url = pg.url();
    let cache = dir.path().join("patches");
    let served = Served::start_with(
        &sample(),
        &[
            OsStr::new("--db"),
            OsStr::new(&url),
            OsStr::new("--van-id"),
            OsStr::new("van-s"),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
            OsStr::new("--report-key"),
            key_file.as_os_str(),
            OsStr::new("--require-signed-reports"),
        ],
    );
    assert_eq!(
        pg.query("SELECT verified FROM reports WHERE device_id = 'old-meter'"),
        "unsigned"
    );
    let forged = report_json("meter-f", "UPDATED", None);
    assert_eq!(served.post("/report", &forged), 204);
    let genuine =
        report_json("meter-s", "UPDATED", None).replace('}', r#","report_id":"9c1e-UPDATED"}"#);
    let signature = fleet.meter_key("meter-s").sign(genuine.as_bytes());
    let signed_post = |body: &str| {
        let mut stream = TcpStream::connect(served.addr).unwrap();
        write!(
            stream,
            "POST /report HTTP/1.0\r\nX-Otavan-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
        response.split(' ').nth(1).unwrap().to_owned()
    };
    assert_eq!(signed_post(&genuine), "204");
    assert_eq!(signed_post(&genuine.replace("meter-s", "meter-x")), "403");
    assert_eq!(
        pg.query("SELECT string_agg(device_id || '=' || verified, ',' ORDER BY id) FROM reports"),
        "old-meter=unsigned,meter-f=unsigned,meter-s=verified"
    );
    let page = served.get("/");
    let count = page
        .split("id=\"count-UPDATED\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap();
    assert_eq!(count, "1", "only meter-s is verified");
    let csv = served.get("/reports.csv");
    assert!(
        csv.starts_with(
            "time,device_id,from_version,to_version,state,error,source,verified,van_lat,van_lon,van_fix_time\n"
        )
    );
    assert!(
        csv.lines()
            .any(|l| l.contains(",meter-s,") && l.ends_with(",van,verified,,,")),
        "{csv}"
    );

    // A van's SQLite file with a verified row, synced.
    let db = dir.path().join("van.db");
    let file_van = Served::start_with(
        &sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
            OsStr::new("--report-key"),
            key_file.as_os_str(),
        ],
    );
    let offline =
        report_json("meter-o", "UPDATED", None).replace('}', r#","report_id":"5d-UPDATED"}"#);
    let signature = fleet.meter_key("meter-o").sign(offline.as_bytes());
    let mut stream = TcpStream::connect(file_van.addr).unwrap();
    write!(
        stream,
        "POST /report HTTP/1.0\r\nX-Otavan-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{offline}",
        offline.len()
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    assert!(response.starts_with("HTTP/1.0 204"), "{response}");
    sync(&db, &pg, &[]);
    assert_eq!(
        pg.query("SELECT verified FROM reports WHERE device_id = 'meter-o'"),
        "verified"
    );
}
