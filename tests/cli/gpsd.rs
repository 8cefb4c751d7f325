//! `otavan serve --gpsd`: reports carry the van's position from a real
//! gpsd, fed a recorded drive by gpsfake (Debian's gpsd and gpsd-clients,
//! installed by .ci/setup).

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Served, report_json, run, sample, wait_for};

/// The recorded drive: 144 fixes along the first three legs of
/// examples/campaign/ROUTE.csv.
fn track() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/drive.nmea"
    ))
}

/// gpsfake and the gpsd it starts, in their own process group.
pub struct Gpsfake(Child);

impl Gpsfake {
    /// gpsfake looping the track on `port`, five fixes a second.
    pub fn start(port: u16) -> Gpsfake {
        let child = Command::new("gpsfake")
            .args(["-q", "-c", "0.1", "-P", &port.to_string()])
            .arg(track())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run gpsfake ({e}): run .ci/setup (installs Debian's gpsd and gpsd-clients)")
            });
        Gpsfake(child)
    }

    /// Stops gpsfake and its gpsd (the whole group).
    pub fn stop(mut self) {
        self.kill_group();
    }

    fn kill_group(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Gpsfake {
    fn drop(&mut self) {
        self.kill_group();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Each report's device and the van's position stored with it.
type Positioned = (String, Option<f64>, Option<f64>, Option<String>);

fn positions(db: &Path) -> Vec<Positioned> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare("SELECT device_id, van_lat, van_lon, van_fix_time FROM reports ORDER BY id")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The stored trace: van, fix time, lat, lon.
fn trace(db: &Path) -> Vec<(String, String, f64, f64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.prepare("SELECT van_id, time, lat, lon FROM trace ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Whether (lat, lon) lies on the recorded drive's bounding box.
fn on_track(lat: f64, lon: f64) -> bool {
    (52.36999..=52.37109).contains(&lat) && (9.72999..=9.74179).contains(&lon)
}

#[test]
fn reports_get_the_vans_position_and_survive_gpsd_going_away() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("van.db");
    let port = free_port();
    let gps = Gpsfake::start(port);
    let gpsd = format!("127.0.0.1:{port}");
    let served = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--no-deltas"),
            OsStr::new("--van-id"),
            OsStr::new("van-gps"),
            OsStr::new("--gpsd"),
            OsStr::new(&gpsd),
        ],
    );
    wait_for(&served.log, "gpsd fix");
    assert_eq!(
        served.post("/report", &report_json("m1", "UPDATED", None)),
        204
    );
    // Let the van drive on for a few trace points.
    let deadline = Instant::now() + Duration::from_secs(30);
    while trace(&db).len() < 4 {
        assert!(Instant::now() < deadline, "no trace: {:?}", trace(&db));
        std::thread::sleep(Duration::from_millis(100));
    }

    // gpsd goes away mid-drive: the server keeps serving and storing.
    gps.stop();
    wait_for(&served.log, "reports are stored without position");
    assert_eq!(
        served.post("/report", &report_json("m2", "FAILED", Some("e"))),
        204
    );
    assert_eq!(served.fetch("/").0, 200);

    // gpsd comes back on the same port: so does the fix.
    let _gps = Gpsfake::start(port);
    wait_for(&served.log, "gpsd fix");
    assert_eq!(
        served.post("/report", &report_json("m3", "UPDATED", None)),
        204
    );

    let rows = positions(&db);
    let devices: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(devices, ["m1", "m2", "m3"]);
    for (device, lat, lon, time) in [&rows[0], &rows[2]] {
        let (lat, lon) = (lat.unwrap(), lon.unwrap());
        assert!(on_track(lat, lon), "{device} at {lat},{lon}");
        // The fix time is the receiver's (the recording's), not the van's clock.
        let time = time.as_deref().unwrap();
        assert!(time.starts_with("2025-06-03T09:0"), "{device}: {time}");
    }
    assert_eq!(rows[1], ("m2".to_owned(), None, None, None));
    // /reports.csv carries the same positions, empty where there was none.
    let (status, csv) = served.fetch("/reports.csv");
    assert_eq!(status, 200);
    let mut exported = csv::Reader::from_reader(csv.as_bytes());
    let header = exported.headers().unwrap().clone();
    let column = |name| header.iter().position(|h| h == name).unwrap();
    let (lat_at, lon_at, fix_at) = (column("van_lat"), column("van_lon"), column("van_fix_time"));
    for (record, (device, lat, lon, time)) in exported.records().zip(&rows) {
        let record = record.unwrap();
        assert_eq!(&record[column("device_id")], device);
        let degrees = |d: &Option<f64>| d.map_or_else(String::new, |d| format!("{d:.7}"));
        assert_eq!(record[lat_at], degrees(lat), "{device}");
        assert_eq!(record[lon_at], degrees(lon), "{device}");
        assert_eq!(&record[fix_at], time.as_deref().unwrap_or(""), "{device}");
    }

    // The trace: points on the drive, thinned to 5 s or 10 m apart.
    let trace = trace(&db);
    for pair in trace.windows(2) {
        let ((_, _, lat0, lon0), (van, _, lat1, lon1)) = (&pair[0], &pair[1]);
        assert_eq!(van, "van-gps");
        assert!(on_track(*lat1, *lon1));
        let dx = (lon1 - lon0).to_radians() * lat0.to_radians().cos() * 6_371_000.0;
        let dy = (lat1 - lat0).to_radians() * 6_371_000.0;
        // Each fix is about 10 m on from the last: none is stored twice
        // for a metre of road.
        assert!(dx.hypot(dy) >= 9.0 || pair[0].1 != pair[1].1, "{pair:?}");
    }
}

#[test]
fn a_gpsd_address_that_does_not_resolve_is_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("van.db");
    for (addr, says) in [
        ("no-such-gpsd.invalid:2947", "does not resolve"),
        ("127.0.0.1", "does not resolve"),
    ] {
        let output = run(&[
            OsStr::new("serve"),
            OsStr::new("--root"),
            sample().as_os_str(),
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--port"),
            OsStr::new("0"),
            OsStr::new("--no-deltas"),
            OsStr::new("--gpsd"),
            OsStr::new(addr),
        ]);
        assert!(!output.status.success(), "{addr}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--gpsd {addr}: {says}")) && stderr.contains("HOST:PORT"),
            "{addr}: {stderr}"
        );
    }
}
