//! The dashboard's crew map (`otavan serve --gpsd --plan`), in headless
//! Chromium: a real gpsd fed the recorded drive by gpsfake, reports posted
//! through the real server, the planned meters' states read from the SVG.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::common::{Served, ok, report_json, run, sample, wait_for};
use crate::dashboard::{chromium, chromium_dom};
use crate::gpsd::{Gpsfake, free_port};

fn campaign() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/campaign")
}

/// `otavan campaign plan` on the example inventory and route, into `dir`.
fn plan(dir: &Path) -> PathBuf {
    let out = dir.join("PLAN.csv");
    let c = campaign();
    ok(&[
        OsStr::new("campaign"),
        OsStr::new("plan"),
        OsStr::new("--meters"),
        c.join("METERS.csv").as_os_str(),
        OsStr::new("--route"),
        c.join("ROUTE.csv").as_os_str(),
        OsStr::new("--start"),
        OsStr::new("2025-06-03T06:00:00Z"),
        OsStr::new("--campaign"),
        OsStr::new("7"),
        OsStr::new("--target"),
        OsStr::new("1.1.0"),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    out
}

/// The planned meters' ids, in PLAN.csv order.
fn planned(plan: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(plan).unwrap();
    let rows = text.lines().skip(1);
    rows.map(|l| l.split(',').next().unwrap().to_owned())
        .collect()
}

/// The class of the element with `id` in a DOM dump.
fn class_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\" class=\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} with a class in the page:\n{dom}"))
        + marker.len();
    &dom[start..start + dom[start..].find('"').unwrap()]
}

#[test]
fn the_crew_map_shows_each_planned_meter_in_its_state_in_chromium() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = plan(dir.path());
    let meters = planned(&plan);
    assert!(meters.len() > 5, "{meters:?}");
    let port = free_port();
    let _gps = Gpsfake::start(port);
    let gpsd = format!("127.0.0.1:{port}");
    let db = dir.path().join("van.db");
    let c = campaign();
    let served = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--no-deltas"),
            OsStr::new("--van-id"),
            OsStr::new("van-map"),
            OsStr::new("--gpsd"),
            OsStr::new(&gpsd),
            OsStr::new("--plan"),
            plan.as_os_str(),
            OsStr::new("--meters"),
            c.join("METERS.csv").as_os_str(),
            OsStr::new("--route"),
            c.join("ROUTE.csv").as_os_str(),
        ],
    );
    wait_for(&served.log, "gpsd fix");
    let states = [
        (&meters[0], "UPDATED", "done"),
        (&meters[1], "FAILED", "failed"),
        (&meters[2], "DOWNLOADING", "in-progress"),
    ];
    for (meter, state, _) in states {
        let error = (state == "FAILED").then_some("flash write failed");
        assert_eq!(
            served.post("/report", &report_json(meter, state, error)),
            204
        );
    }
    // An earlier state does not win over a later one.
    assert_eq!(
        served.post("/report", &report_json(&meters[3], "DOWNLOADING", None)),
        204
    );
    assert_eq!(
        served.post("/report", &report_json(&meters[3], "UPDATED", None)),
        204
    );

    let url = format!("http://{}/", served.addr);
    let dom = chromium_dom(&url);
    for (meter, _, class) in states {
        assert_eq!(class_of(&dom, &format!("m{meter}")), class, "{meter}");
    }
    assert_eq!(class_of(&dom, &format!("m{}", meters[3])), "done");
    for meter in &meters[4..] {
        assert_eq!(
            class_of(&dom, &format!("m{meter}")),
            "not-reached",
            "{meter}"
        );
    }
    assert_eq!(dom.matches("<circle id=\"m").count(), meters.len());
    let count = |id: &str| -> usize {
        let marker = format!("id=\"{id}\">");
        let start = dom.find(&marker).unwrap() + marker.len();
        dom[start..start + dom[start..].find('<').unwrap()]
            .parse()
            .unwrap()
    };
    assert_eq!(count("map-done"), 2);
    assert_eq!(count("map-failed"), 1);
    assert_eq!(count("map-in-progress"), 1);
    assert_eq!(count("map-not-reached"), meters.len() - 4);
    // The van is on the map, with its trace and the route.
    assert!(dom.contains("<circle id=\"van\""), "{dom}");
    assert!(dom.contains("<polyline id=\"route\" points=\""), "{dom}");
    // Missed meters near the van, nearest first.
    let table = &dom[dom
        .find("id=\"missed-near\"")
        .expect("missed meters near the van")..];
    let table = &table[..table.find("</table>").unwrap()];
    let distances: Vec<f64> = table
        .split("<td class=\"num\">")
        .skip(1)
        .map(|cell| cell.split(" m<").next().unwrap().parse().unwrap())
        .collect();
    assert!(!distances.is_empty());
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances.iter().all(|d| *d <= 300.0), "{distances:?}");
    assert!(
        !table.contains(meters[0].as_str()),
        "a done meter is not missed"
    );

    // A screenshot as the crew sees it.
    let profile = tempfile::TempDir::new().unwrap();
    let png = dir.path().join("crew-map.png");
    let shot = chromium(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1100,1500")
        .arg("--hide-scrollbars")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n") && image.len() > 10_000);
    if let Some(keep) = std::env::var_os("OTAVAN_CREW_MAP_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
}

#[test]
fn a_bad_plan_row_is_named_by_file_and_line_and_the_server_does_not_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = plan(dir.path());
    let text = std::fs::read_to_string(&plan).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen(",2025-", ",yesterday,2025-", 1);
    let bad = dir.path().join("BAD.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let c = campaign();
    let output = run(&[
        OsStr::new("serve"),
        OsStr::new("--root"),
        sample().as_os_str(),
        OsStr::new("--db"),
        dir.path().join("van.db").as_os_str(),
        OsStr::new("--port"),
        OsStr::new("0"),
        OsStr::new("--plan"),
        bad.as_os_str(),
        OsStr::new("--meters"),
        c.join("METERS.csv").as_os_str(),
        OsStr::new("--route"),
        c.join("ROUTE.csv").as_os_str(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BAD.csv") && stderr.contains("line 3"),
        "{stderr}"
    );
    // The plan without its inventory is refused before anything starts.
    let output = run(&[
        OsStr::new("serve"),
        OsStr::new("--root"),
        sample().as_os_str(),
        OsStr::new("--plan"),
        plan.as_os_str(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--meters"));
}

#[test]
fn the_fleet_database_keeps_positions_the_trace_and_the_maps_states() {
    let pg = crate::pg::PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let plan = plan(dir.path());
    let meters = planned(&plan);
    let port = free_port();
    let _gps = Gpsfake::start(port);
    let gpsd = format!("127.0.0.1:{port}");
    let url = pg.url();
    let c = campaign();
    let served = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            OsStr::new(&url),
            OsStr::new("--no-deltas"),
            OsStr::new("--van-id"),
            OsStr::new("van-fleet"),
            OsStr::new("--gpsd"),
            OsStr::new(&gpsd),
            OsStr::new("--plan"),
            plan.as_os_str(),
            OsStr::new("--meters"),
            c.join("METERS.csv").as_os_str(),
            OsStr::new("--route"),
            c.join("ROUTE.csv").as_os_str(),
        ],
    );
    wait_for(&served.log, "gpsd fix");
    assert_eq!(
        served.post("/report", &report_json(&meters[0], "UPDATED", None)),
        204
    );
    assert_eq!(
        served.post("/report", &report_json(&meters[1], "FAILED", Some("e"))),
        204
    );
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM reports WHERE van_lat IS NOT NULL AND van_fix_time LIKE '2025-06-03T09:%'"),
        2
    );
    // The fleet's /reports.csv exports them: degrees on the recorded
    // drive (Hannover, 52.37 N 9.73 E) and the receiver's fix time.
    let (status, csv) = served.fetch("/reports.csv");
    assert_eq!(status, 200);
    let positioned: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",52.37") && l.contains(",9.7") && l.ends_with('Z'))
        .collect();
    assert_eq!(positioned.len(), 2, "{csv}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pg.count("SELECT COUNT(*) FROM trace WHERE van_id = 'van-fleet'") < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no trace in the fleet database"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, page) = served.fetch("/");
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("id=\"m{}\" class=\"done\"", meters[0])),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"m{}\" class=\"failed\"", meters[1])),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"m{}\" class=\"not-reached\"", meters[2])),
        "{page}"
    );
    // The trace drawn is the one stored in PostgreSQL.
    let trace = page
        .split("<polyline id=\"trace\" points=\"")
        .nth(1)
        .unwrap();
    let points = trace[..trace.find('"').unwrap()].split(' ').count();
    assert!(points >= 3, "{trace}");
}
