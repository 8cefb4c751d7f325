//! `otavan campaign replan`: the next shift's plan from a report file, the
//! van's SQLite store and the fleet's PostgreSQL.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{Served, otavan, report_json, sample};
use crate::pg::PgCluster;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/campaign")
        .join(name)
}

/// The README's first plan (campaign 7, target 1.1.0) in `dir`.
fn first_plan(dir: &Path) -> PathBuf {
    let out = dir.join("PLAN.csv");
    let output = otavan()
        .args(["campaign", "plan", "--meters"])
        .arg(example("METERS.csv"))
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(["--start", "2025-06-03T06:00:00Z", "--campaign", "7"])
        .args(["--target", "1.1.0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    out
}

/// `campaign replan` of `plan` with `reports` into `out`, with `flags`.
fn replan_with(plan: &Path, reports: &OsStr, out: &Path, flags: &[&str]) -> Output {
    otavan()
        .args(["campaign", "replan", "--plan"])
        .arg(plan)
        .arg("--reports")
        .arg(reports)
        .arg("--meters")
        .arg(example("METERS.csv"))
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(flags)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// [`replan_with`] campaign 8 for 1.1.0.
fn replan(plan: &Path, reports: &OsStr, out: &Path) -> Output {
    replan_with(
        plan,
        reports,
        out,
        &["--campaign", "8", "--target", "1.1.0"],
    )
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// PLAN.csv's rows: (dev_eui, expected_contact_at, payload_hex).
fn rows(plan: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(plan)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (f[0].to_owned(), f[4].to_owned(), f[7].to_owned())
        })
        .collect()
}

fn euis(plan: &Path) -> Vec<String> {
    let mut euis: Vec<String> = rows(plan).into_iter().map(|r| r.0).collect();
    euis.sort();
    euis
}

#[test]
fn replan_from_the_sample_reports_plans_the_missed_meters_for_the_next_day() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = first_plan(dir.path());
    let before = std::fs::read(&plan).unwrap();
    let next = dir.path().join("NEXT.csv");
    let stdout = stdout_of(&replan(&plan, example("REPORTS.csv").as_os_str(), &next));
    for line in [
        "reports: 20 rows, 1 under a device id that is not a DevEUI, 0 meters not in the old plan",
        "meters in the old plan: 17",
        "done (latest report at the target): 10",
        "missed: 7 (2 without any report)",
        "planned again: 7 (uplink phase known for 5)",
        "not reachable on this route: 0",
        "next shift: WAKEs from 2025-06-03T09:07:30Z, van leaves 2025-06-04T09:00:00Z",
        "gateway(s) needed",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // Failed (26, 33), cut off while downloading (0C), no WiFi (3A),
    // reverted after its UPDATED (20), never heard (03, 38).
    assert_eq!(
        euis(&next),
        [
            "70B3D57ED0000003",
            "70B3D57ED000000C",
            "70B3D57ED0000020",
            "70B3D57ED0000026",
            "70B3D57ED0000033",
            "70B3D57ED0000038",
            "70B3D57ED000003A",
        ]
    );
    let next_rows = rows(&next);
    // In route order, the next day, campaign 8 with 1.1.0's tag.
    assert!(
        next_rows.windows(2).all(|w| w[0].1 <= w[1].1),
        "{next_rows:?}"
    );
    assert!(
        next_rows.iter().all(|r| r.1.starts_with("2025-06-04T09:")
            && r.2.starts_with("110008")
            && r.2.ends_with("7fbd210e")),
        "{next_rows:?}"
    );
    // 3A's status uplink gives its phase: a short window, where the old
    // plan's (phase unknown) covered its two-hour interval.
    let window = |plan: &Path| {
        let text = std::fs::read_to_string(plan).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("70B3D57ED000003A,"))
            .unwrap();
        line.split(',').nth(3).unwrap().parse::<u32>().unwrap()
    };
    assert_eq!(window(&plan), 7440);
    assert!(window(&next) < 600, "{}", window(&next));
    assert_eq!(std::fs::read(&plan).unwrap(), before);
    // The next plan is a plan: replanned again with no reports, all of
    // its meters are missed.
    let third = dir.path().join("THIRD.csv");
    let empty = dir.path().join("EMPTY.csv");
    std::fs::write(&empty, "time,device_id,to_version,state\n").unwrap();
    let output = replan_with(
        &next,
        empty.as_os_str(),
        &third,
        &["--campaign", "9", "--target", "1.1.0"],
    );
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("missed: 7 (7 without any report)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("van leaves 2025-06-05T09:00:00Z"),
        "{stdout}"
    );
    assert_eq!(euis(&third), euis(&next));
}

#[test]
fn replan_reports_missing_duplicate_and_malformed_rows_and_never_touches_the_old_plan() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = first_plan(dir.path());
    let before = std::fs::read(&plan).unwrap();
    let next = dir.path().join("NEXT.csv");
    let reports = dir.path().join("REPORTS.csv");
    let header = "time,device_id,from_version,to_version,state,error,source,verified\n";
    // Duplicates: 29 updated (an earlier DOWNLOADING after it in the file),
    // 31 updated and then failed again; every other meter is missing.
    std::fs::write(
        &reports,
        format!(
            "{header}\
             2025-06-03T09:00:29.113Z,70B3D57ED0000029,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:00:21.480Z,70B3D57ED0000029,1.0.0,1.1.0,DOWNLOADING,,van,verified\n\
             2025-06-03T09:00:29.113Z,70B3D57ED0000029,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:02:35.200Z,70B3D57ED0000031,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:40:00.000Z,70B3D57ED0000031,1.1.0,1.1.0,REVERTED,,lora,network\n"
        ),
    )
    .unwrap();
    let stdout = stdout_of(&replan(&plan, reports.as_os_str(), &next));
    assert!(
        stdout.contains("done (latest report at the target): 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missed: 16 (15 without any report)"),
        "{stdout}"
    );
    let planned = euis(&next);
    assert!(!planned.contains(&"70B3D57ED0000029".to_owned()));
    assert!(planned.contains(&"70B3D57ED0000031".to_owned()));
    std::fs::remove_file(&next).unwrap();

    // Malformed rows: each named by its line, nothing written.
    std::fs::write(
        &reports,
        format!(
            "{header}\
             2025-06-03T09:00:29.113Z,70B3D57ED0000029,1.0.0,1.1.0,UPDATED,,van,verified\n\
             \n\
             # a note\n\
             09:02,70B3D57ED0000031,1.0.0,1.1.0,UPDATED,,van,verified\n\
             2025-06-03T09:03:00.000Z,70B3D57ED0000024,1.0.0,1.1.0,FINISHED,,van,verified\n\
             2025-06-03T09:04:00.000Z,70B3D57ED0000014,1.0.0,1.1.0,UPDATED,,satellite,verified\n\
             2025-06-03T09:05:00.000Z,,1.0.0,1.1.0,UPDATED,,van,verified\n"
        ),
    )
    .unwrap();
    let failed = |output: Output| {
        assert!(!output.status.success(), "{output:?}");
        assert!(!next.exists(), "NEXT.csv written on an error");
        assert_eq!(std::fs::read(&plan).unwrap(), before);
        String::from_utf8(output.stderr).unwrap()
    };
    let stderr = failed(replan(&plan, reports.as_os_str(), &next));
    assert!(stderr.contains("REPORTS.csv: 4 problems"), "{stderr}");
    for expected in [
        "line 5: time: \"09:02\" is not an RFC 3339 time",
        "line 6: state \"FINISHED\" is not a state of a van report",
        "line 7: source \"satellite\" is not van or lora",
        "line 8: device_id is empty",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    // A row of the wrong width, and a header without a needed column.
    std::fs::write(
        &reports,
        format!("{header}2025-06-03T09:00:29.113Z,70B3D57ED0000029\n"),
    )
    .unwrap();
    let stderr = failed(replan(&plan, reports.as_os_str(), &next));
    assert!(
        stderr.contains("line 2: 2 fields, the header has 8"),
        "{stderr}"
    );
    std::fs::write(&reports, "time,device_id,to_version\n").unwrap();
    let stderr = failed(replan(&plan, reports.as_os_str(), &next));
    assert!(
        stderr.contains("line 1: the header has no \"state\" column"),
        "{stderr}"
    );
    // The old plan is never the output, and its campaign is not reused.
    std::fs::write(&reports, header).unwrap();
    let stderr = failed(replan(&plan, reports.as_os_str(), &plan));
    assert!(stderr.contains("is an input"), "{stderr}");
    let stderr = failed(replan_with(
        &plan,
        reports.as_os_str(),
        &next,
        &["--campaign", "7", "--target", "1.1.0"],
    ));
    assert!(
        stderr.contains("--campaign 7 is the old plan's"),
        "{stderr}"
    );
    let stderr = failed(replan_with(
        &plan,
        reports.as_os_str(),
        &next,
        &["--campaign", "8", "--target", "1.2.0"],
    ));
    assert!(
        stderr.contains("--target 1.2.0") && stderr.contains("is not the old plan's target"),
        "{stderr}"
    );
}

/// Posts each (meter, state) to a running van.
fn post_reports(van: &Served, reports: &[(&str, &str)]) {
    for (meter, state) in reports {
        let error = (*state == "FAILED").then_some("flash full");
        assert_eq!(
            van.post("/report", &report_json(meter, state, error)),
            204,
            "{meter} {state}"
        );
    }
}

/// The first plan's meters 0..5 updated, meter 5 failed, through `van`.
fn drive(van: &Served, plan: &Path) -> Vec<String> {
    let old: Vec<String> = rows(plan).into_iter().map(|r| r.0).collect();
    let mut reports: Vec<(&str, &str)> = Vec::new();
    for meter in &old[..5] {
        reports.push((meter, "DOWNLOADING"));
        reports.push((meter, "UPDATED"));
    }
    reports.push((&old[5], "FAILED"));
    post_reports(van, &reports);
    let mut missed = old[5..].to_vec();
    missed.sort();
    missed
}

#[test]
fn replan_reads_the_van_sqlite_store() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = first_plan(dir.path());
    let db = dir.path().join("otavan.db");
    let van = Served::start(sample(), &db);
    let missed = drive(&van, &plan);
    drop(van);
    let next = dir.path().join("NEXT.csv");
    let stdout = stdout_of(&replan(&plan, db.as_os_str(), &next));
    assert!(stdout.contains("reports: 11 rows"), "{stdout}");
    assert!(
        stdout.contains("done (latest report at the target): 5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missed: 12 (11 without any report)"),
        "{stdout}"
    );
    assert_eq!(euis(&next), missed);
    // With the office's LoRa rows too: a later status uplink says the first
    // updated meter reverted.
    let reverted = rows(&plan)[0].0.clone();
    let lora = dir.path().join("LORA.csv");
    std::fs::write(
        &lora,
        format!(
            "time,device_id,from_version,to_version,state,error,source,verified\n\
             2099-01-01T00:00:00.000Z,{reverted},1.0.0,1.0.0,REVERTED,,lora,network\n"
        ),
    )
    .unwrap();
    std::fs::remove_file(&next).unwrap();
    let output = replan_with(
        &plan,
        db.as_os_str(),
        &next,
        &[
            "--reports",
            lora.to_str().unwrap(),
            "--campaign",
            "8",
            "--target",
            "1.1.0",
        ],
    );
    let stdout = stdout_of(&output);
    assert!(stdout.contains("reports: 12 rows"), "{stdout}");
    assert!(
        stdout.contains("missed: 13 (11 without any report)"),
        "{stdout}"
    );
    assert!(euis(&next).contains(&reverted));
}

#[test]
fn replan_reads_the_fleet_postgres_store() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let plan = first_plan(dir.path());
    let url = pg.url();
    let cache = dir.path().join("patches");
    let van = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            OsStr::new(&url),
            OsStr::new("--van-id"),
            OsStr::new("van-1"),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
        ],
    );
    let missed = drive(&van, &plan);
    drop(van);
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports"), 11);
    let next = dir.path().join("NEXT.csv");
    let stdout = stdout_of(&replan(&plan, OsStr::new(&url), &next));
    assert!(
        stdout.contains("done (latest report at the target): 5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missed: 12 (11 without any report)"),
        "{stdout}"
    );
    assert_eq!(euis(&next), missed);
}

#[test]
fn forged_updated_reports_cannot_take_meters_off_the_next_plan_with_require_signed_reports() {
    let dir = tempfile::TempDir::new().unwrap();
    let plan = first_plan(dir.path());
    let db = dir.path().join("van.db");
    let cache = dir.path().join("patches");
    let van = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
        ],
    );
    // Anyone on the van's WiFi posts UPDATED for two planned meters that
    // never updated (Pycom-style unsigned reports, which the van stores).
    let forged = ["70B3D57ED0000029", "70B3D57ED0000031"];
    for meter in forged {
        assert_eq!(
            van.post("/report", &report_json(meter, "UPDATED", None)),
            204
        );
    }
    drop(van);
    let trusting = dir.path().join("TRUSTING.csv");
    let stdout = stdout_of(&replan(&plan, db.as_os_str(), &trusting));
    assert!(
        stdout.contains("done (latest report at the target): 2"),
        "{stdout}"
    );
    assert!(
        forged
            .iter()
            .all(|m| !euis(&trusting).contains(&m.to_string()))
    );
    // Counting only reports their meters signed, both are planned again.
    let signed = dir.path().join("SIGNED.csv");
    let stdout = stdout_of(&replan_with(
        &plan,
        db.as_os_str(),
        &signed,
        &[
            "--campaign",
            "8",
            "--target",
            "1.1.0",
            "--require-signed-reports",
        ],
    ));
    assert!(
        stdout.contains("done (latest report at the target): 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("reports not known to come from their meter, left out: 2"),
        "{stdout}"
    );
    assert!(
        forged
            .iter()
            .all(|m| euis(&signed).contains(&m.to_string()))
    );
    assert_eq!(euis(&signed), euis(&plan));
}
