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
        "70B3D57ED0000001,52.37,9.73,indoor,3600,1.0.0,,\nnot-an-eui,52.37,9.73,garage,3600,,,\n",
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
        "{rows} downlinks, 0 already sent (dry run: nothing published)"
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

fn plan_multicast(meters: &Path, out: &Path) -> std::process::Output {
    otavan()
        .args(["campaign", "plan", "--meters"])
        .arg(meters)
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(["--start", "2025-06-03T06:00:00Z", "--campaign", "7"])
        .args(["--target", "1.1.0", "--wake", "multicast", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// The sample's street is three segments whose 13 WAKEs fit the
/// gateway's hour: they stay unicast, PLAN.csv is the unicast one, and the
/// summary says why with the figures.
#[test]
fn campaign_plan_wake_multicast_keeps_unicast_where_it_costs_less() {
    let dir = tempfile::TempDir::new().unwrap();
    let unicast = dir.path().join("UNICAST.csv");
    assert!(plan(&unicast, &example("METERS.csv")).status.success());
    let out = dir.path().join("PLAN.csv");
    let output = plan_multicast(Path::new(&example("METERS.csv")), &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&unicast).unwrap()
    );
    assert!(
        stdout.contains("multicast: 3 group(s), 0 by multicast (0 meters); 4 planned meter(s) without gen_app_key"),
        "{stdout}"
    );
    let group = stdout.lines().find(|l| l.starts_with("group ")).unwrap();
    assert!(
        group.contains(
            ": 3 meters, unicast (airtime unicast 4.4 s, multicast 8.9 s; unicast peak hour"
        ),
        "{group}"
    );
    assert!(
        group.contains("of 360 s; 23.3 J more per meter (class C and WiFi wait), at most 30.0 J)"),
        "{group}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("GROUPS.csv")).unwrap(),
        "kind,mc_addr,dev_eui,enqueue_at,send_by,transmit_at,fport,payload_hex\n"
    );
}

/// 300 half-hourly meters with phases and (but the first) root keys along
/// the route's first street.
fn dense_inventory(dir: &Path) -> std::path::PathBuf {
    let meters = dir.join("METERS.csv");
    let mut text =
        String::from("dev_eui,lat,lon,install,uplink_interval_s,last_uplink,gen_app_key\n");
    for i in 0..300u32 {
        let key = if i == 0 {
            String::new()
        } else {
            format!("{:032x}", u128::from(i) * 0x1234_5678_9abc_def1)
        };
        text.push_str(&format!(
            "70B3D57ED001{i:04X},52.37018,{:.6},outdoor,1800,2025-06-03T05:{:02}:{:02}Z,{key}\n",
            9.7305 + f64::from(i) * 0.000035,
            (i * 6) / 60 % 30,
            (i * 6) % 60,
        ));
    }
    std::fs::write(&meters, text).unwrap();
    meters
}

/// 300 half-hourly meters along the route's first street: their unicast
/// WAKEs would need 444 s of the gateway's 360 s in the hour before the
/// van, so the street goes multicast.
#[test]
fn campaign_plan_wake_multicast_writes_setups_a_group_wake_and_0600_keys() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let meters = dense_inventory(dir.path());
    let out = dir.path().join("PLAN.csv");
    let output = plan_multicast(&meters, &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 planned meter(s) without gen_app_key"),
        "{stdout}"
    );
    let groups: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(", multicast (airtime"))
        .collect();
    assert!(!groups.is_empty(), "{stdout}");
    let rows = std::fs::read_to_string(dir.path().join("GROUPS.csv")).unwrap();
    let setups = rows.lines().filter(|l| l.starts_with("setup,")).count();
    let wakes: Vec<&str> = rows.lines().filter(|l| l.starts_with("wake,")).collect();
    assert_eq!(wakes.len(), groups.len(), "{rows}");
    let plan = std::fs::read_to_string(&out).unwrap();
    // Each served meter has a setup and no unicast WAKE.
    assert_eq!(setups + plan.lines().count() - 1, 299 + 1, "{stdout}");
    assert!(
        rows.lines()
            .filter(|l| l.starts_with("setup,"))
            .all(|l| l.contains(",201,"))
    );
    assert!(wakes.iter().all(|l| l.contains(",200,110007")), "{wakes:?}");
    let keys_path = dir.path().join("GROUPKEYS.csv");
    let mode = std::fs::metadata(&keys_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let keys = std::fs::read_to_string(&keys_path).unwrap();
    assert_eq!(keys.lines().count(), groups.len() + 1);
    for line in keys.lines().skip(1) {
        for key in line.split(',').skip(1) {
            assert!(
                !stdout.contains(key) && !rows.contains(key),
                "a key was printed"
            );
        }
    }
}

/// `push --dry-run` of a multicast plan lists the setups and the group
/// WAKE (The Things Stack); bad key files and ChirpStack are refused.
#[test]
fn push_of_a_multicast_plan_checks_its_keys_and_lists_setups_then_the_group() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let out = dir.path().join("PLAN.csv");
    assert!(
        plan_multicast(&dense_inventory(dir.path()), &out)
            .status
            .success()
    );
    let push = |extra: &[&str]| {
        otavan()
            .args(["campaign", "push"])
            .arg(&out)
            .args(["--tts-app", "meters@acme", "--dry-run", "--groups"])
            .arg(dir.path().join("GROUPS.csv"))
            .args(extra)
            .output()
            .unwrap()
    };
    // Without --groups only PLAN.csv's one WAKE, and a warning.
    let plain = otavan()
        .args(["campaign", "push"])
        .arg(&out)
        .args(["--tts-app", "meters@acme", "--dry-run"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&plain.stdout).contains("1 downlinks, 0 already sent"));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("GROUPS.csv is not pushed"));
    let output = push(&["--gateway", "gw-north"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let todo: Vec<&str> = stdout.lines().filter(|l| l.starts_with("todo ")).collect();
    assert_eq!(todo.len(), 300 + 1, "{stdout}");
    let group = todo
        .iter()
        .position(|l| l.contains("/devices/mc-01707000/down/push"))
        .unwrap();
    assert_eq!(group, todo.len() - 1, "the group WAKE goes last");
    assert!(
        todo[group].contains(r#""class_b_c":{"absolute_time":"2025-06-03T08:54:05Z","gateways":[{"gateway_ids":{"gateway_id":"gw-north"}}]}"#),
        "{}",
        todo[group]
    );
    assert_eq!(
        todo.iter()
            .filter(|l| l.contains(r#""f_port":201"#))
            .count(),
        299
    );
    // Without a gateway, with ChirpStack, or with a key file others may
    // read or none: refused, naming why.
    let stderr = |o: std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    assert!(stderr(push(&[])).contains("--gateway"));
    let cs = otavan()
        .args(["campaign", "push"])
        .arg(&out)
        .args(["--chirpstack-app", "app", "--dry-run", "--groups"])
        .arg(dir.path().join("GROUPS.csv"))
        .output()
        .unwrap();
    assert!(!cs.status.success());
    assert!(stderr(cs).contains("--chirpstack-api URL"));
    // With the API: the group WAKE is a gRPC call at transmit_at.
    let cs = otavan()
        .args(["campaign", "push"])
        .arg(&out)
        .args(["--chirpstack-app", "app", "--dry-run", "--groups"])
        .arg(dir.path().join("GROUPS.csv"))
        .args([
            "--chirpstack-api",
            "http://127.0.0.1:1",
            "--gateway",
            "0016c001f153a14c",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&cs.stdout);
    assert!(
        cs.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&cs.stderr)
    );
    let last = listing.lines().rfind(|l| l.starts_with("todo ")).unwrap();
    assert!(
        last.starts_with("todo 2025-06-03T08:54:05Z grpc:api.MulticastGroupService/"),
        "{last}"
    );
    assert!(
        last.contains(r#""multicastGroup":"otavan-01707000""#),
        "{last}"
    );
    let keys = dir.path().join("GROUPKEYS.csv");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o640)).unwrap();
    let error = stderr(push(&["--gateway", "gw"]));
    assert!(
        error.contains(
            "GROUPKEYS.csv: holds group keys but is readable by others (mode 640): chmod 600"
        ),
        "{error}"
    );
    std::fs::remove_file(&keys).unwrap();
    let error = stderr(push(&["--gateway", "gw"]));
    assert!(
        error.contains("cannot read") && error.contains("GROUPKEYS.csv"),
        "{error}"
    );
}
