//! `otavan device ...` against a real `otavan serve`: what a Linux meter
//! (or an operator testing one) runs.

use std::path::Path;

use crate::common::{Served, copy_tree, ok, otavan, run, sample};

/// Files under `root` except the client's state and editor files.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name == ".otavan" || name == "pymakr.conf" {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().display().to_string();
                files.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn status(root: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&["device", "status", "--root", root, "--json"])).unwrap()
}

fn sha1_file(path: &Path) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_meter_updates_rolls_back_and_confirms_against_the_real_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let served = Served::start(sample(), &dir.path().join("van.db"));
    let server = format!("http://{}", served.addr);
    let meter = dir.path().join("meter");
    std::fs::create_dir(&meter).unwrap();
    copy_tree(&sample().join("1.0.0"), &meter);
    let root = meter.to_str().unwrap();
    let old_image = sample().join("firmware_1.0.0.bin");
    ok(&[
        "device",
        "init",
        "--root",
        root,
        "--version",
        "1.0.0",
        "--firmware",
        old_image.to_str().unwrap(),
    ]);

    let before = status(root);
    assert_eq!(before["version"], "1.0.0");
    assert_eq!(before["pending_confirm"], false);
    assert_eq!(before["boot_slot"], "a");
    assert_eq!(before["firmware_sha1"], sha1_file(&old_image));

    let out = ok(&[
        "device",
        "update",
        "--root",
        root,
        "--server",
        &server,
        "--device-id",
        "meter-7",
    ]);
    assert!(out.contains("updated 1.0.0 -> 1.1.0"), "{out}");
    // The firmware travelled as a patch: fewer bytes than files + full image.
    let manifest: serde_json::Value =
        serde_json::from_str(&served.get("/manifest.json?current_ver=1.0.0")).unwrap();
    let entries = manifest["new"]
        .as_array()
        .unwrap()
        .iter()
        .chain(manifest["update"].as_array().unwrap());
    let full: u64 = entries.map(|e| e["size"].as_u64().unwrap()).sum::<u64>()
        + manifest["firmware"]["size"].as_u64().unwrap();
    let downloaded: u64 = out
        .split('(')
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(downloaded < full, "downloaded {downloaded} of {full}");
    assert_eq!(tree(&meter), tree(&sample().join("1.1.0")));
    let after = status(root);
    assert_eq!(after["version"], "1.1.0");
    assert_eq!(after["pending_confirm"], true);
    assert_eq!(after["boot_slot"], "b");
    assert_eq!(
        after["firmware_sha1"],
        sha1_file(&sample().join("firmware_1.1.0.bin"))
    );

    // A second update while pending is refused with a clear message.
    let refused = run(&["device", "update", "--root", root, "--server", &server]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("awaits confirm or rollback"));

    ok(&["device", "rollback", "--root", root]);
    assert_eq!(tree(&meter), tree(&sample().join("1.0.0")));
    assert_eq!(status(root), before);

    ok(&[
        "device",
        "update",
        "--root",
        root,
        "--server",
        &server,
        "--device-id",
        "meter-7",
    ]);
    ok(&["device", "confirm", "--root", root]);
    let confirmed = status(root);
    assert_eq!(confirmed["pending_confirm"], false);
    assert_eq!(confirmed["version"], "1.1.0");
    let out = ok(&["device", "update", "--root", root, "--server", &server]);
    assert!(out.contains("already current at 1.1.0"), "{out}");

    // The van saw every state of both updates.
    let csv = served.get("/reports.csv");
    let updated = csv
        .lines()
        .filter(|l| l.contains("meter-7") && l.contains(",UPDATED,"))
        .count();
    assert_eq!(updated, 2, "{csv}");
}

#[test]
fn failures_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().to_str().unwrap();
    let output = run(&["device", "status", "--root", root]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not provisioned"));

    ok(&["device", "init", "--root", root, "--version", "1.0.0"]);
    let again = run(&["device", "init", "--root", root, "--version", "1.0.0"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already provisioned"));

    // Nobody listens on port 9 of loopback.
    let output = run(&[
        "device",
        "update",
        "--root",
        root,
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("otavan: fetching the manifest"), "{stderr}");

    let output = run(&["device", "confirm", "--root", root]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("no update is pending"));
    assert_eq!(status(root)["firmware_sha1"], serde_json::Value::Null);
}

/// A meter at 1.0.0 under `dir/meter`, and the van serving the sample.
fn meter_and_van(dir: &Path) -> (Served, String, std::path::PathBuf) {
    let served = Served::start(sample(), &dir.join("van.db"));
    let server = format!("http://{}", served.addr);
    (served, server, lone_meter(dir))
}

fn update(root: &str, server: &str, device_id: &str) {
    let out = ok(&[
        "device",
        "update",
        "--root",
        root,
        "--server",
        server,
        "--device-id",
        device_id,
    ]);
    assert!(out.contains("updated 1.0.0 -> 1.1.0"), "{out}");
}

#[test]
fn a_meter_reverts_a_version_that_fails_its_self_test_and_confirms_one_that_passes() {
    let dir = tempfile::TempDir::new().unwrap();
    let (served, server, meter) = meter_and_van(dir.path());
    let root = meter.to_str().unwrap();
    update(root, &server, "meter-8");

    // The self-test fails: reverted at once, and the van hears why.
    let output = run(&[
        "device",
        "check",
        "--root",
        root,
        "--hook",
        "exit 4",
        "--server",
        &server,
        "--device-id",
        "meter-8",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "otavan: reverted to 1.0.0: self-test failed: the health hook \"exit 4\" exited with 4"
        ),
        "{stderr}"
    );
    assert_eq!(tree(&meter), tree(&sample().join("1.0.0")));
    let reverted = status(root);
    assert_eq!(
        (
            reverted["version"].as_str(),
            reverted["pending_confirm"].as_bool()
        ),
        (Some("1.0.0"), Some(false))
    );
    assert_eq!(
        reverted["reverted"],
        serde_json::Value::Null,
        "the van heard it"
    );
    let csv = served.get("/reports.csv");
    assert!(
        csv.lines().any(|l| l.contains("meter-8")
            && l.contains(",FAILED,")
            && l.contains("reverted to 1.0.0")),
        "{csv}"
    );

    // Again; this time the self-test passes at the next start.
    update(root, &server, "meter-8");
    let out = ok(&[
        "device",
        "boot",
        "--root",
        root,
        "--hook",
        "test \"$OTAVAN_VERSION\" = 1.1.0",
    ]);
    assert!(
        out.contains("1.1.0 passed its self-test: confirmed"),
        "{out}"
    );
    assert_eq!(tree(&meter), tree(&sample().join("1.1.0")));
    assert_eq!(status(root)["pending_confirm"], false);
    let out = ok(&["device", "boot", "--root", root]);
    assert!(
        out.contains("no update awaits confirmation; at 1.1.0"),
        "{out}"
    );
}

#[test]
fn a_version_the_van_never_heard_is_reverted_after_its_starts() {
    let dir = tempfile::TempDir::new().unwrap();
    let (served, server, meter) = meter_and_van(dir.path());
    let root = meter.to_str().unwrap();
    // The van refuses every report of this meter (its id is too long),
    // so the new version can never show it reaches the van.
    let unheard = "m".repeat(200);
    update(root, &server, &unheard);
    for start in 1..=2 {
        let out = ok(&["device", "boot", "--root", root, "--max-boots", "2"]);
        assert!(
            out.contains(&format!(
                "1.1.0 is on trial (start {start} of 2): waiting for a report delivered to the van"
            )),
            "{out}"
        );
    }
    let output = run(&["device", "check", "--root", root]);
    assert!(!output.status.success(), "not confirmed");
    assert!(String::from_utf8_lossy(&output.stderr).contains("on trial, waiting for"));
    let output = run(&[
        "device",
        "boot",
        "--root",
        root,
        "--max-boots",
        "2",
        "--server",
        &server,
        "--device-id",
        "meter-9",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("otavan: reverted to 1.0.0: 1.1.0 was not confirmed within 2 boots"),
        "{stderr}"
    );
    assert_eq!(tree(&meter), tree(&sample().join("1.0.0")));
    assert!(
        served
            .get("/reports.csv")
            .contains("not confirmed within 2 boots")
    );
    // Without the van requirement (a plain Pycom server has no /report),
    // the next update confirms at its first start.
    update(root, &server, &unheard);
    let out = ok(&["device", "boot", "--root", root, "--no-van-report"]);
    assert!(
        out.contains("1.1.0 passed its self-test: confirmed"),
        "{out}"
    );
}

#[test]
fn after_the_bootloader_falls_back_status_shows_the_old_version_and_confirm_refuses() {
    // The issue's reproduction: journal Applied, the bootloader booted the
    // old slot again. status said 1.1.0 and confirm made it permanent.
    let dir = tempfile::TempDir::new().unwrap();
    let (_served, server, meter) = meter_and_van(dir.path());
    let root = meter.to_str().unwrap();
    update(root, &server, "meter-10");
    std::fs::write(
        meter.join(".otavan/slots/boot.json"),
        br#"{"boot":"a","pending":false}"#,
    )
    .unwrap();
    let output = run(&["device", "status", "--root", root, "--json"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("otavan: reverted to 1.0.0: the bootloader booted slot a"),
        "{stderr}"
    );
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["version"], "1.0.0");
    assert_eq!(status["pending_confirm"], false);
    assert_eq!(
        status["firmware_sha1"],
        sha1_file(&sample().join("firmware_1.0.0.bin"))
    );
    assert_eq!(tree(&meter), tree(&sample().join("1.0.0")));
    let output = run(&["device", "confirm", "--root", root]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no update is pending"));
}

/// A provisioned meter at 1.0.0 under `dir`, with no van yet.
fn lone_meter(dir: &Path) -> std::path::PathBuf {
    let meter = dir.join("meter");
    std::fs::create_dir(&meter).unwrap();
    copy_tree(&sample().join("1.0.0"), &meter);
    let firmware = sample().join("firmware_1.0.0.bin");
    ok(&[
        "device",
        "init",
        "--root",
        meter.to_str().unwrap(),
        "--version",
        "1.0.0",
        "--firmware",
        firmware.to_str().unwrap(),
    ]);
    meter
}

#[test]
fn a_meter_keeps_trying_through_its_window_until_the_van_is_there() {
    let dir = tempfile::TempDir::new().unwrap();
    let meter = lone_meter(dir.path());
    // A port nothing listens on yet: the van is still down the street.
    let port = unused_port();
    let server = format!("http://127.0.0.1:{port}");
    let waiting = otavan()
        .args(["device", "update", "--window-s", "60", "--server", &server])
        .arg("--root")
        .arg(&meter)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut van = otavan()
        .args(["serve", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--root")
        .arg(sample())
        .arg("--db")
        .arg(dir.path().join("van.db"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let output = waiting.wait_with_output().unwrap();
    van.kill().unwrap();
    van.wait().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("updated 1.0.0 -> 1.1.0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("trying again within the window"),
        "{stderr}"
    );
    assert_eq!(status(meter.to_str().unwrap())["version"], "1.1.0");
}

#[test]
fn a_meter_whose_van_never_comes_gives_up_with_its_window_and_is_as_it_was() {
    let dir = tempfile::TempDir::new().unwrap();
    let meter = lone_meter(dir.path());
    let server = format!("http://127.0.0.1:{}", unused_port());
    let stderr = update_that_fails(&meter, &server, "3");
    assert!(
        stderr.contains("trying again within the window"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

/// A loopback port nothing listens on (free when this returns).
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `device update --window-s WINDOW` on `meter` (at 1.0.0) against
/// `server`, which must fail and leave the meter as it was; its stderr.
fn update_that_fails(meter: &Path, server: &str, window: &str) -> String {
    let root = meter.to_str().unwrap();
    let before = status(root);
    let output = run(&[
        "device",
        "update",
        "--window-s",
        window,
        "--root",
        root,
        "--server",
        server,
    ]);
    assert!(!output.status.success());
    assert_eq!(status(root), before);
    assert_eq!(tree(meter), tree(&sample().join("1.0.0")));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_update_still_running_after_its_window_is_abandoned_and_the_meter_is_as_it_was() {
    let dir = tempfile::TempDir::new().unwrap();
    let meter = lone_meter(dir.path());
    // A van that answers the manifest a byte a second: never silent for
    // the read timeout, the request outlasts a 1 s window by far.
    let trickle = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", trickle.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in trickle.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut request = [0; 1024];
                let _ = stream.read(&mut request);
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
                if stream.write_all(head).is_err() {
                    return;
                }
                while stream.write_all(b" ").is_ok() {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            });
        }
    });
    let stderr = update_that_fails(&meter, &server, "1");
    assert!(
        stderr.contains("the update ran 10s past its window and was abandoned"),
        "{stderr}"
    );
}

#[test]
fn a_power_cut_mid_apply_leaves_the_meter_at_its_old_version_and_the_next_update_completes() {
    let dir = tempfile::TempDir::new().unwrap();
    let (_van, server, meter) = meter_and_van(dir.path());
    let root = meter.to_str().unwrap();
    let before = status(root);
    // A meter whose apply takes 4 s, as flash writes do: its power is cut
    // (kill -9) once its journal says the files are being swapped.
    let mut applying = otavan()
        .args(["device", "update", "--apply-s", "4", "--server", &server])
        .args(["--root", root])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = meter.join(".otavan/state.json");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&journal).is_ok_and(|s| s.contains("\"applying\"")) {
        assert!(started.elapsed().as_secs() < 30, "the apply never started");
        assert!(
            applying.try_wait().unwrap().is_none(),
            "the update ended before its apply"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    applying.kill().unwrap();
    applying.wait().unwrap();
    // Half-swapped files on disk until the meter starts again.
    assert_ne!(tree(&meter), tree(&sample().join("1.0.0")));
    ok(&["device", "boot", "--root", root]);
    assert_eq!(status(root), before);
    assert_eq!(tree(&meter), tree(&sample().join("1.0.0")));
    // The next van's update completes from what was downloaded.
    update(root, &server, "cut-meter");
    assert_eq!(status(root)["version"], "1.1.0");
    assert_eq!(tree(&meter), tree(&sample().join("1.1.0")));
}
