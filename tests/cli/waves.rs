//! `otavan campaign plan --waves`, `campaign status` and the wave gates
//! of `campaign push`: reports posted through real `otavan serve`
//! instances into a real PostgreSQL, and the example report file.

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

/// `campaign plan` of the example (campaign 7, target 1.1.0) into `out`
/// with `flags`.
fn plan(out: &Path, flags: &[&str]) -> Output {
    otavan()
        .args(["campaign", "plan", "--meters"])
        .arg(example("METERS.csv"))
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(["--start", "2025-06-03T06:00:00Z", "--campaign", "7"])
        .args(["--target", "1.1.0", "--out"])
        .arg(out)
        .args(flags)
        .output()
        .unwrap()
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

/// WAVES.csv's (dev_eui, wave) rows.
fn waves(path: &Path) -> Vec<(String, usize)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[1].parse().unwrap())
        })
        .collect()
}

/// `campaign status --plan PLAN --json` with `flags`, parsed.
fn status(plan: &Path, flags: &[&str]) -> serde_json::Value {
    let output = otavan()
        .args([
            "campaign", "status", "--json", "--target", "1.1.0", "--plan",
        ])
        .arg(plan)
        .args(flags)
        .output()
        .unwrap();
    serde_json::from_str(&stdout_of(&output)).unwrap()
}

/// The gate of wave `n` (from 1).
fn gate(status: &serde_json::Value, n: usize) -> (String, String) {
    let wave = &status["waves"][n - 1];
    (
        wave["gate"].as_str().unwrap().to_owned(),
        wave["reason"].as_str().unwrap().to_owned(),
    )
}

/// The DevEUIs `campaign push --dry-run` would send a WAKE to.
fn would_push(plan: &Path, flags: &[&str]) -> Vec<String> {
    let output = otavan()
        .args(["campaign", "push", "--tts-app", "meters@acme", "--dry-run"])
        .args(["--target", "1.1.0"])
        .arg(plan)
        .args(flags)
        .output()
        .unwrap();
    stdout_of(&output)
        .lines()
        .filter_map(|l| l.strip_prefix("todo "))
        .map(|l| {
            let topic = l.split(' ').nth(1).unwrap();
            let device = topic.split('/').nth(3).unwrap();
            device.trim_start_matches("eui-").to_uppercase()
        })
        .collect()
}

#[test]
fn plan_splits_the_meters_into_waves_along_the_route() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    let stdout = stdout_of(&plan(&out, &["--waves", "canary=20%,50%,100%"]));
    assert!(stdout.contains("wave 1 canary: 4 meters"), "{stdout}");
    assert!(stdout.contains("wave 2 wave2: 5 meters"), "{stdout}");
    assert!(stdout.contains("wave 3 wave3: 8 meters"), "{stdout}");
    let assigned = waves(&dir.path().join("WAVES.csv"));
    assert_eq!(assigned.len(), 17);
    // In route order: the waves' numbers never go down by expected contact.
    let contact: std::collections::HashMap<String, String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[4].to_owned())
        })
        .collect();
    let mut by_contact: Vec<(String, usize)> = assigned
        .iter()
        .map(|(eui, wave)| (contact[eui].clone(), *wave))
        .collect();
    by_contact.sort();
    assert!(by_contact.windows(2).all(|p| p[0].1 <= p[1].1));
    // The same from a waves file.
    let file = dir.path().join("waves.txt");
    std::fs::write(&file, "# canary first\ncanary=20%\nwave2=50%\nwave3=100%\n").unwrap();
    let again = dir.path().join("again/PLAN.csv");
    std::fs::create_dir(again.parent().unwrap()).unwrap();
    stdout_of(&plan(&again, &["--waves-file", file.to_str().unwrap()]));
    assert_eq!(waves(&again.with_file_name("WAVES.csv")), assigned);
}

#[test]
fn a_waves_spec_that_does_not_add_up_is_refused_and_the_old_plan_stays() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    stdout_of(&plan(&out, &["--waves", "canary=20%,100%"]));
    let before = (
        std::fs::read(&out).unwrap(),
        std::fs::read(dir.path().join("WAVES.csv")).unwrap(),
    );
    for (spec, says) in [
        ("canary=1%,25%,90%", "must add up to 100 % of the meters"),
        ("canary=30%,20%,100%", "must increase"),
        ("canary=1,100%", "is not a cumulative share"),
    ] {
        let output = plan(&out, &["--waves", spec]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{spec}: {stderr}");
    }
    let file = dir.path().join("waves.txt");
    std::fs::write(&file, "canary=5%\n\nrest=all\n").unwrap();
    let output = plan(&out, &["--waves-file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("waves.txt line 3: wave rest"), "{stderr}");
    assert_eq!(
        before,
        (
            std::fs::read(&out).unwrap(),
            std::fs::read(dir.path().join("WAVES.csv")).unwrap()
        )
    );
}

#[test]
fn status_of_the_example_reports_judges_each_gate() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    stdout_of(&plan(&out, &["--waves", "canary=20%,50%,100%"]));
    let reports = example("REPORTS.csv");
    let reports = reports.to_str().unwrap();
    // The example's canary: 2 updated, 1 failed, 1 still downloading.
    let tripped = status(&out, &["--reports", reports, "--min-samples", "3"]);
    let canary = &tripped["waves"][0];
    assert_eq!(
        (
            canary["planned"].as_u64(),
            canary["updated"].as_u64(),
            canary["failed"].as_u64()
        ),
        (Some(4), Some(2), Some(1))
    );
    assert_eq!(canary["in_progress"], 1);
    let (state, reason) = gate(&tripped, 2);
    assert_eq!(state, "tripped");
    assert!(
        reason.contains("failure rate 33.3 % (1 of 3) above --max-failure-rate 5 %"),
        "{reason}"
    );
    assert_eq!(gate(&tripped, 3).0, "tripped");
    let open = status(
        &out,
        &[
            "--reports",
            reports,
            "--min-samples",
            "3",
            "--max-failure-rate",
            "40%",
            "--min-updated",
            "50",
        ],
    );
    assert_eq!(gate(&open, 2).0, "open", "{}", gate(&open, 2).1);
    // Too few samples: neither opens nor trips.
    let waiting = status(&out, &["--reports", reports, "--min-samples", "4"]);
    let (state, reason) = gate(&waiting, 2);
    assert_eq!(state, "waiting");
    assert!(reason.contains("3 final report(s) of 4 meters"), "{reason}");
    assert_eq!(gate(&waiting, 3).0, "waiting");
    // No data at all: the gate waits, and the table says so.
    let output = otavan()
        .args(["campaign", "status", "--target", "1.1.0", "--plan"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("waiting: wave 1 (canary): 0 final report(s)"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("no --reports given"));
    // A plan without waves, or WAKEs with a tag and no --target.
    let plain = dir.path().join("plain/PLAN.csv");
    std::fs::create_dir(plain.parent().unwrap()).unwrap();
    stdout_of(&plan(&plain, &[]));
    let output = otavan()
        .args(["campaign", "status", "--target", "1.1.0", "--plan"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no waves"));
    let output = otavan()
        .args(["campaign", "status", "--plan"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("give its --target"));
}

/// Posts each (meter, state) to a running van.
fn post(van: &Served, reports: &[(&str, &str)]) {
    for (meter, state) in reports {
        let error = (*state == "FAILED").then_some("flash full");
        assert_eq!(
            van.post("/report", &report_json(meter, state, error)),
            204,
            "{meter} {state}"
        );
    }
}

fn van(pg: &PgCluster, dir: &Path, id: &str) -> Served {
    let cache = dir.join(format!("patches-{id}"));
    Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            OsStr::new(&pg.url()),
            OsStr::new("--van-id"),
            OsStr::new(id),
            OsStr::new("--patch-cache"),
            cache.as_os_str(),
        ],
    )
}

#[test]
fn gates_from_the_fleet_postgres_wait_open_and_trip_and_push_obeys_them() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    stdout_of(&plan(&out, &["--waves", "canary=20%,50%,100%"]));
    let assigned = waves(&dir.path().join("WAVES.csv"));
    let in_wave = |n: usize| -> Vec<String> {
        let mut euis: Vec<String> = assigned
            .iter()
            .filter(|(_, w)| *w == n)
            .map(|(e, _)| e.clone())
            .collect();
        euis.sort();
        euis
    };
    let canary = in_wave(1);
    let url = pg.url();
    let flags = [
        "--reports",
        url.as_str(),
        "--min-samples",
        "4",
        "--max-failure-rate",
        "30",
        "--min-updated",
        "75",
    ];
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // Nothing reported yet: only the canary goes out.
    assert_eq!(sorted(would_push(&out, &flags)), canary);
    // Van 1: one updated, one failed. A 50 % failure rate from two
    // samples does not trip the gate.
    let van1 = van(&pg, dir.path(), "van-1");
    post(
        &van1,
        &[
            (&canary[0], "DOWNLOADING"),
            (&canary[0], "UPDATED"),
            (&canary[1], "FAILED"),
        ],
    );
    let judged = status(&out, &flags);
    assert_eq!(gate(&judged, 2).0, "waiting", "{}", gate(&judged, 2).1);
    assert_eq!(sorted(would_push(&out, &flags)), canary);
    // Van 2 hears the other two updated: 3 of 4 updated, 25 % failed.
    let van2 = van(&pg, dir.path(), "van-2");
    post(&van2, &[(&canary[2], "UPDATED"), (&canary[3], "UPDATED")]);
    drop((van1, van2));
    assert_eq!(pg.count("SELECT COUNT(*) FROM reports"), 5);
    let judged = status(&out, &flags);
    assert_eq!(gate(&judged, 2).0, "open", "{}", gate(&judged, 2).1);
    assert_eq!(gate(&judged, 3).0, "waiting");
    let mut open = canary.clone();
    open.extend(in_wave(2));
    assert_eq!(sorted(would_push(&out, &flags)), sorted(open));
    // Stricter thresholds on the same reports: the canary fails its gate,
    // and no later wave is pushed.
    let strict = [
        "--reports",
        url.as_str(),
        "--min-samples",
        "4",
        "--max-failure-rate",
        "10",
    ];
    let judged = status(&out, &strict);
    let (state, reason) = gate(&judged, 2);
    assert_eq!(state, "tripped");
    assert!(
        reason.contains("failure rate 25.0 % (1 of 4) above --max-failure-rate 10 %"),
        "{reason}"
    );
    assert_eq!(gate(&judged, 3).0, "tripped");
    assert_eq!(sorted(would_push(&out, &strict)), canary);
    // Every push logged each gate's decision with its figures.
    let log = std::fs::read_to_string(dir.path().join("PLAN.csv.decisions")).unwrap();
    let decisions: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Four pushes of three gates, and the last one's halt.
    assert_eq!(decisions.len(), 4 * 3 + 1);
    assert_eq!(decisions[12]["decision"], "halt");
    assert_eq!(decisions[12]["dry_run"], true);
    let last = &decisions[decisions.len() - 3];
    assert_eq!(last["decision"], "gate tripped");
    assert_eq!(last["wave"]["wave"], 2);
    assert!(
        last["wave"]["reason"]
            .as_str()
            .unwrap()
            .contains("(1 of 4)"),
        "{last}"
    );
    assert_eq!(last["thresholds"]["max_failure_percent"], 10.0);
}

#[test]
fn missed_lists_each_missed_meter_with_the_reason_its_reports_support() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    stdout_of(&plan(&out, &["--waves", "canary=20%,50%,100%"]));
    let missed = |reports: &Path, flags: &[&str]| {
        otavan()
            .args(["campaign", "missed", "--target", "1.1.0", "--plan"])
            .arg(&out)
            .arg("--reports")
            .arg(reports)
            .args(flags)
            .output()
            .unwrap()
    };
    let csv = stdout_of(&missed(&example("REPORTS.csv"), &[]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "dev_eui,wave,expected_contact_at,reason,detail");
    let reason = |eui: &str| {
        let line = lines.iter().find(|l| l.starts_with(eui)).unwrap();
        let f: Vec<&str> = line.splitn(5, ',').collect();
        (f[3].to_owned(), f[4].to_owned())
    };
    // The same seven meters replan plans again, each with its reason.
    assert_eq!(lines.len(), 8, "{csv}");
    assert_eq!(
        reason("70B3D57ED0000033"),
        (
            "failed".into(),
            "sha256 mismatch: /flash/lib/meter.py".into()
        )
    );
    assert_eq!(
        reason("70B3D57ED000003A"),
        ("woken_never_in_range".into(), "WIFI_JOIN_FAILED".into())
    );
    assert_eq!(reason("70B3D57ED0000038").0, "never_reported");
    assert_eq!(reason("70B3D57ED0000020").0, "rolled_back");
    assert_eq!(
        reason("70B3D57ED000000C"),
        ("cut_off".into(), "DOWNLOADING".into())
    );
    // Into a file, and a bad report file refused by line with nothing
    // written.
    let file = dir.path().join("MISSED.csv");
    let output = missed(&example("REPORTS.csv"), &["--out", file.to_str().unwrap()]);
    assert!(output.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), csv);
    let bad = dir.path().join("BAD.csv");
    std::fs::write(
        &bad,
        "time,device_id,to_version,state\nyesterday,70B3D57ED0000033,1.1.0,UPDATED\n",
    )
    .unwrap();
    let again = dir.path().join("AGAIN.csv");
    let output = missed(&bad, &["--out", again.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("line 2: time: \"yesterday\" is not an RFC 3339 time"),
        "{output:?}"
    );
    assert!(!again.exists());
}

#[test]
fn forged_reports_cannot_open_a_gate_with_require_signed_reports() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    stdout_of(&plan(&out, &["--waves", "canary=20%,50%,100%"]));
    // The example's reports, and then an unsigned UPDATED for every meter
    // in them, as anyone on the van's WiFi could post.
    let genuine = std::fs::read_to_string(example("REPORTS.csv")).unwrap();
    let mut meters: Vec<&str> = genuine
        .lines()
        .skip(1)
        .filter(|l| l.contains(",van,"))
        .filter_map(|l| l.split(',').nth(1))
        .collect();
    meters.sort_unstable();
    meters.dedup();
    let forged: String = meters
        .iter()
        .map(|m| format!("2025-06-03T12:00:00.000Z,{m},1.0.0,1.1.0,UPDATED,,van,unsigned\n"))
        .collect();
    let reports = dir.path().join("REPORTS.csv");
    std::fs::write(&reports, format!("{genuine}{forged}")).unwrap();
    let reports = reports.to_str().unwrap();
    let fooled = status(&out, &["--reports", reports, "--min-samples", "3"]);
    assert_eq!(fooled["waves"][0]["updated"], 4);
    assert_eq!(gate(&fooled, 2).0, "open", "{}", gate(&fooled, 2).1);
    let signed = status(
        &out,
        &[
            "--reports",
            reports,
            "--min-samples",
            "3",
            "--require-signed-reports",
        ],
    );
    let canary = &signed["waves"][0];
    assert_eq!(
        (canary["updated"].as_u64(), canary["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let (state, reason) = gate(&signed, 2);
    assert_eq!(state, "tripped");
    assert!(reason.contains("failure rate 33.3 % (1 of 3)"), "{reason}");
}
