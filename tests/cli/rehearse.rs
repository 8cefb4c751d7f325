//! `otavan rehearse` on the example scenarios.

use std::path::{Path, PathBuf};

use crate::common::otavan;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs the town example, shrunk, into `out`; returns stdout.
fn rehearse_town(out: &Path, seed: &str, extra: &[&str]) -> String {
    let output = otavan()
        .arg("rehearse")
        .arg(example("town.toml"))
        .args([
            "--seed",
            seed,
            "--set",
            "fleet.meters=400",
            "--set",
            "van.passes=2",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg("--patch-cache")
        .arg(out.join("patches"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("events/s"), "{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn writes_the_report_table_and_plots_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let stdout = rehearse_town(&a, "9", &[]);
    assert!(stdout.contains("% of 400 meters at 1.1.0"), "{stdout}");
    rehearse_town(&b, "9", &[]);
    rehearse_town(&c, "10", &[]);
    let read = |dir: &Path, name: &str| std::fs::read(dir.join(name)).unwrap();
    for name in [
        "report.json",
        "meters.csv",
        "progress.svg",
        "progress.png",
        "map.svg",
        "map.png",
    ] {
        assert_eq!(
            read(&a, name),
            read(&b, name),
            "{name} differs between runs"
        );
    }
    assert_ne!(read(&a, "report.json"), read(&c, "report.json"));
    assert!(read(&a, "progress.png").starts_with(b"\x89PNG\r\n\x1a\n"));

    let report: serde_json::Value = serde_json::from_slice(&read(&a, "report.json")).unwrap();
    for field in [
        "meters",
        "updated",
        "updated_fraction",
        "time_to_50_s",
        "time_to_90_s",
        "time_to_99_s",
        "van_passes",
        "van_km",
        "downlinks_sent",
        "bytes_transferred",
        "energy_per_meter_j",
        "failures",
        "fuota_baseline",
    ] {
        assert!(report.get(field).is_some(), "report.json has no {field}");
    }
    assert_eq!(report["meters"], 400);
    assert_eq!(report["van_passes"], 2);
    // The sample release: 1.0.0 and 1.0.1 update to 1.1.0.
    assert_eq!(report["release"]["target"], "1.1.0");

    let csv = String::from_utf8(read(&a, "meters.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("meter,x_m,y_m,install,"));
    assert_eq!(lines.count(), 400);
    let updated = csv.lines().filter(|l| l.contains(",updated,")).count();
    assert_eq!(report["updated"], updated);
    // The effective scenario records the overrides.
    let scenario = String::from_utf8(read(&a, "scenario.toml")).unwrap();
    assert!(scenario.contains("meters = 400"), "{scenario}");
}

#[test]
fn overrides_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    rehearse_town(&dir.path().join("slow"), "1", &["--set", "van.speed_kmh=5"]);
    rehearse_town(
        &dir.path().join("fast"),
        "1",
        &["--set", "van.speed_kmh=60"],
    );
    let updated = |name: &str| {
        let text = std::fs::read(dir.path().join(name).join("report.json")).unwrap();
        let report: serde_json::Value = serde_json::from_slice(&text).unwrap();
        report["updated"].as_u64().unwrap()
    };
    assert!(updated("slow") > updated("fast"));
}

#[test]
fn after_pass_replanning_reports_each_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let replan = ["--set", "campaign.replan=\"after-pass\""];
    rehearse_town(&a, "3", &replan);
    rehearse_town(&b, "3", &replan);
    let text = std::fs::read(a.join("report.json")).unwrap();
    assert_eq!(text, std::fs::read(b.join("report.json")).unwrap());
    let report: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let passes = report["per_pass"].as_array().unwrap();
    assert_eq!(passes.len(), 2, "{passes:?}");
    let n = |p: &serde_json::Value, key: &str| p[key].as_u64().unwrap();
    assert_eq!(n(&passes[1], "listed"), n(&passes[0], "missed"));
    assert_eq!(
        n(&passes[0], "updated") + n(&passes[1], "updated"),
        report["updated"].as_u64().unwrap()
    );
    let scenario = std::fs::read_to_string(a.join("scenario.toml")).unwrap();
    assert!(scenario.contains("replan = \"after-pass\""), "{scenario}");
    // The default has no per-pass figures; an unknown mode is named.
    let c = dir.path().join("c");
    rehearse_town(&c, "3", &[]);
    let text = std::fs::read_to_string(c.join("report.json")).unwrap();
    assert!(!text.contains("per_pass"), "{text}");
    let output = otavan()
        .arg("rehearse")
        .arg(example("town.toml"))
        .args(["--set", "campaign.replan=\"weekly\"", "--out"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("replan"), "{stderr}");
}

#[test]
fn bad_scenarios_and_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = otavan()
            .arg("rehearse")
            .args(args)
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let town = example("town.toml");
    let town = town.to_str().unwrap();
    let err = run(&[town, "--set", "van.sped_kmh=3"]);
    assert!(err.contains("sped_kmh"), "{err}");
    let err = run(&[town, "--set", "van.speed_kmh=-3"]);
    assert!(err.contains("van.speed_kmh"), "{err}");
    let err = run(&[town, "--set", "van.pace_budget_share=2"]);
    assert!(err.contains("van.pace_budget_share"), "{err}");
    let err = run(&[town, "--set", "van.pace=\"fast\""]);
    assert!(err.contains("pace") && err.contains("fast"), "{err}");
    let err = run(&[town, "--set", "nonsense"]);
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = run(&["/nonexistent/scenario.toml"]);
    assert!(
        err.contains("cannot read /nonexistent/scenario.toml"),
        "{err}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[fleet]\nmeters = \"many\"\n").unwrap();
    let err = run(&[bad.to_str().unwrap()]);
    assert!(err.contains("bad.toml") && err.contains("meters"), "{err}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn live_mode_runs_the_real_code_and_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live");
    let frames = dir.path().join("frames.jsonl");
    let output = otavan()
        .arg("rehearse")
        .arg(example("town.toml"))
        .args(["--live", "--meters", "20", "--compare"])
        .arg("--lora-log")
        .arg(&frames)
        .arg("--out")
        .arg(&out)
        .arg("--patch-cache")
        .arg(dir.path().join("patches"))
        .arg("--meters-dir")
        .arg(dir.path().join("meters"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("live: 20 meters ran the real client"),
        "{stdout}"
    );
    assert!(stdout.contains("analytic on the same scenario"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["live"]["checks"]["mismatched"],
        serde_json::json!([])
    );
    assert_eq!(report["live"]["meters"], 20);
    assert!(report["analytic"]["updated_fraction"].is_number());
    // The van's real report store, and every frame for a decoder.
    assert!(out.join("van.db").exists());
    assert!(std::fs::read_to_string(&frames).unwrap().lines().count() > 40);

    // --meters without --live is refused.
    let refused = otavan()
        .arg("rehearse")
        .arg(example("town.toml"))
        .args(["--meters", "20"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// A planned pace through the binary: byte-identical outputs from run to
/// run, the same kilometres as at one speed, more meters at the target,
/// and the plan in report.json.
#[test]
fn a_planned_pace_is_reproducible_and_drives_the_same_km() {
    let dir = tempfile::tempdir().unwrap();
    let planned = ["--set", "van.pace=\"planned\""];
    let (a, b, one) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("one"),
    );
    rehearse_town(&a, "4", &planned);
    rehearse_town(&b, "4", &planned);
    rehearse_town(&one, "4", &[]);
    let read = |dir: &Path, name: &str| std::fs::read(dir.join(name)).unwrap();
    for name in ["report.json", "meters.csv", "map.svg", "progress.svg"] {
        assert_eq!(
            read(&a, name),
            read(&b, name),
            "{name} differs between runs"
        );
    }
    let report = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&read(dir, "report.json")).unwrap()
    };
    let (paced, constant) = (report(&a), report(&one));
    assert_eq!(paced["van_km"], constant["van_km"]);
    assert!(paced["van_hours"].as_f64() > constant["van_hours"].as_f64());
    assert!(
        paced["pace"]["stops"].as_u64().unwrap() + paced["pace"]["slowed_legs"].as_u64().unwrap()
            > 0
    );
    assert_eq!(constant["pace"]["extra_s"], 0.0);
    assert!(
        paced["updated"].as_u64() >= constant["updated"].as_u64(),
        "{} vs {}",
        paced["updated"],
        constant["updated"]
    );
}
