//! `otavan serve` as an operator runs it: flags, signals, exit codes.

use crate::common::{Served, otavan, wait_for, write};

#[test]
fn sighup_reindexes_and_sigterm_stops_cleanly() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().join("release");
    write(&root, "1.0.0/flash/main.py", "a");
    let mut served = Served::start(&root, &dir.path().join("van.db"));
    assert_eq!(served.get("/manifest.json?current_ver=1.0.0"), "null");

    write(&root, "1.1.0/flash/main.py", "b");
    served.signal("HUP");
    wait_for(&served.log, "release indexed");
    let manifest = served.get("/manifest.json?current_ver=1.0.0");
    assert!(manifest.contains("\"version\":\"1.1.0\""), "{manifest}");

    served.signal("TERM");
    let status = served.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status}");
}

#[test]
fn every_request_is_logged_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().join("release");
    write(&root, "1.0.0/flash/main.py", "a");
    let mut served = Served::start(&root, &dir.path().join("van.db"));
    served.get("/1.0.0/flash/main.py");
    let line = wait_for(&served.log, "request");
    for field in [
        "method=GET",
        "path=\"/1.0.0/flash/main.py\"",
        "status=200",
        "bytes=1",
        "us=",
        "peer=127.0.0.1:",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    served.signal("INT");
    assert!(served.child.wait().unwrap().success());
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = otavan()
        .args(["serve", "--port", "0", "--root"])
        .arg(dir.path().join("nope"))
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("otavan: cannot read") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn a_target_that_is_not_a_version_is_refused_by_the_flag_parser() {
    let output = otavan()
        .args(["serve", "--root", ".", "--target", "../etc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target"));
}
