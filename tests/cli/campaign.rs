//! `otavan campaign plan` and `push --dry-run` from the example inventory.

use std::path::Path;

use crate::common::otavan;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/campaign")
        .join(name)
        .display()
        .to_string()
}

fn plan(out: &Path, meters: &str) -> std::process::Output {
    otavan()
        .args(["campaign", "plan", "--meters", meters, "--route"])
        .arg(example("ROUTE.csv"))
        .args([
            "--start",
            "2025-06-03T06:00:00Z",
            "--campaign",
            "7",
            "--target",
            "1.1.0",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn campaign_plan_writes_a_row_per_covered_meter_and_a_summary() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    let output = plan(&out, &example("METERS.csv"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let covered: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("meters covered: "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(covered > 0, "{stdout}");
    for line in [
        "contact too short",
        "never within WiFi range",
        "downlinks per hour: peak",
        "gateway(s) needed",
        "physical limit: give --update-bytes",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let plan = std::fs::read_to_string(&out).unwrap();
    let mut lines = plan.lines();
    assert_eq!(
        lines.next(),
        Some(
            "dev_eui,enqueue_at,wake_delay_s,window_s,expected_contact_at,expected_contact_s,fport,payload_hex"
        )
    );
    assert_eq!(lines.count(), covered);
    // Every WAKE carries 1.1.0's tag and campaign 7, on port 200.
    assert!(
        plan.lines()
            .skip(1)
            .all(|l| l.contains(",200,110007") && l.ends_with("7fbd210e")),
        "{plan}"
    );
}

/// With the update's size the summary has the limit, and its split adds
/// up to every meter not at the target.
#[test]
fn campaign_plan_splits_the_meters_by_the_physical_limit() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    let number = |stdout: &str, prefix: &str| -> usize {
        let at = stdout
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix}: {stdout}"));
        stdout[at + prefix.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut limits = Vec::new();
    for bytes in ["50000", "2000000"] {
        let output = otavan()
            .args(["campaign", "plan", "--meters"])
            .arg(example("METERS.csv"))
            .arg("--route")
            .arg(example("ROUTE.csv"))
            .args(["--start", "2025-06-03T06:00:00Z", "--target", "1.1.0"])
            .args(["--update-bytes", bytes, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}");
        let limit = number(&stdout, "physical limit: ");
        let total = number(&stdout, "of ");
        let split =
            number(&stdout, "not_reachable ") + number(&stdout, "too_short_at_planned_speed ");
        let current = number(&stdout, "already at the target: ");
        assert_eq!(limit + split + current, total, "{stdout}");
        assert!(number(&stdout, "missed_by_plan ") <= limit, "{stdout}");
        limits.push(limit);
    }
    // A bigger update needs longer contacts: fewer meters are updatable.
    assert!(limits[0] > limits[1], "{limits:?}");
}

#[test]
fn bad_inventory_rows_are_reported_by_line_and_the_old_plan_stays() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    std::fs::write(&out, "the previous plan\n").unwrap();
    let meters = dir.path().join("METERS.csv");
    let mut text = std::fs::read_to_string(example("METERS.csv")).unwrap();
    text.push_str(
        "70B3D57ED0000001,52.37,9.73,indoor,3600,1.0.0,\nnot-an-eui,52.37,9.73,garage,3600,,\n",
    );
    std::fs::write(&meters, text).unwrap();
    let output = plan(&out, meters.to_str().unwrap());
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(
        stderr.contains("line 62: DevEUI 70B3D57ED0000001 is already on line 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 63: \"not-an-eui\" is not a DevEUI"),
        "{stderr}"
    );
    assert!(stderr.contains("install \"garage\""), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "the previous plan\n"
    );
}

#[test]
fn push_dry_run_prints_every_message_and_sends_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    assert!(plan(&out, &example("METERS.csv")).status.success());
    let rows = std::fs::read_to_string(&out).unwrap().lines().count() - 1;
    let output = otavan()
        .args(["campaign", "push"])
        .arg(&out)
        .args(["--tts-app", "meters@acme", "--dry-run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let todo: Vec<&str> = stdout.lines().filter(|l| l.starts_with("todo ")).collect();
    assert_eq!(todo.len(), rows);
    assert!(
        todo[0].contains(" v3/meters@acme/devices/eui-70b3d57ed"),
        "{}",
        todo[0]
    );
    assert!(
        todo[0].contains(r#"{"downlinks":[{"f_port":200,"frm_payload":"EQAH"#),
        "{}",
        todo[0]
    );
    assert!(stdout.contains(&format!(
        "{rows} WAKEs, 0 already sent (dry run: nothing published)"
    )));
    assert!(!dir.path().join("PLAN.csv.progress").exists());
    // One network server, not both.
    let both = otavan()
        .args(["campaign", "push"])
        .arg(&out)
        .args(["--tts-app", "a@b", "--chirpstack-app", "c", "--dry-run"])
        .output()
        .unwrap();
    assert!(!both.status.success());
}

/// With a pace budget the van slows down and stops where the example's
/// basement meters need it: more meters covered than at one speed, the
/// drive in LEGS.csv within the budget and the bounds, PLAN.csv's columns
/// unchanged; a timed waypoint after the first is refused.
#[test]
fn campaign_plan_paces_the_drive_within_its_budget() {
    let dir = tempfile::TempDir::new().unwrap();
    let covered = |stdout: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("meters covered: "))
            .and_then(|l| l.split(' ').next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let run = |extra: &[&str], route: &str| {
        otavan()
            .args(["campaign", "plan", "--meters"])
            .arg(example("METERS.csv"))
            .arg("--route")
            .arg(route)
            .args(["--start", "2025-06-03T06:00:00Z", "--target", "1.1.0"])
            .args(extra)
            .arg("--out")
            .arg(dir.path().join("PLAN.csv"))
            .output()
            .unwrap()
    };
    let plain = run(&[], &example("ROUTE.csv"));
    assert!(plain.status.success());
    let plain = String::from_utf8_lossy(&plain.stdout).to_string();
    let legs_out = dir.path().join("LEGS.csv");
    let legs_arg = legs_out.display().to_string();
    let paced = run(
        &[
            "--pace-budget-s",
            "300",
            "--max-stop-s",
            "30",
            "--legs-out",
            &legs_arg,
        ],
        &example("ROUTE.csv"),
    );
    let stdout = String::from_utf8_lossy(&paced.stdout).to_string();
    assert!(
        paced.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&paced.stderr)
    );
    assert!(covered(&stdout) > covered(&plain), "{plain}\n{stdout}");
    let pace = stdout.lines().find(|l| l.starts_with("pace: ")).unwrap();
    assert!(pace.ends_with("(budget 300 s)"), "{pace}");
    let plan = std::fs::read_to_string(dir.path().join("PLAN.csv")).unwrap();
    assert!(plan.starts_with("dev_eui,enqueue_at,wake_delay_s,window_s,"));

    let legs = std::fs::read_to_string(&legs_out).unwrap();
    let mut lines = legs.lines();
    assert_eq!(
        lines.next(),
        Some("leg,from_lat,from_lon,to_lat,to_lon,speed_kmh,stop_lat,stop_lon,stop_s,starts_at")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.len() > 3);
    assert_eq!(rows[0][9], "2025-06-03T09:00:00Z");
    let mut stop_s = 0.0;
    for row in &rows {
        let speed: f64 = row[5].parse().unwrap();
        assert!((5.0..=20.0).contains(&speed), "{row:?}");
        if !row[8].is_empty() {
            let s: f64 = row[8].parse().unwrap();
            assert!(s > 0.0 && s <= 30.0, "{row:?}");
            stop_s += s;
        }
    }
    assert!(
        stop_s > 0.0 || rows.iter().any(|r| r[5] != "20.00"),
        "{legs}"
    );

    // Times after the first waypoint are the plan's to set.
    let timed = dir.path().join("ROUTE.csv");
    std::fs::write(
        &timed,
        "lat,lon,time\n52.37,9.73,2025-06-03T09:00:00Z\n52.37,9.74,2025-06-03T09:05:00Z\n",
    )
    .unwrap();
    let refused = run(&["--pace-budget-s", "60"], &timed.display().to_string());
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("line 3 has one"), "{err}");
}
