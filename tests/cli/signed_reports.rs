//! Signed reports end to end with the binary: `otavan reports keygen` and
//! `meter-key` at provisioning, `otavan serve --report-key
//! --require-signed-reports`, `otavan device update --report-key`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{Served, copy_tree, ok, report_json, run, sample};

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// The text of `<b id="ID">text</b>` on a page.
fn by_id(page: &str, id: &str) -> String {
    let start = page.find(&format!("id=\"{id}\">")).unwrap() + id.len() + 6;
    page[start..start + page[start..].find('<').unwrap()].to_owned()
}

#[test]
fn a_provisioned_meter_signs_and_only_its_reports_count() {
    let dir = tempfile::TempDir::new().unwrap();
    let fleet = dir.path().join("fleet-report.key");
    let meter_key = dir.path().join("meter-s.key");
    let path = |p: &Path| p.as_os_str().to_owned();
    ok(&[
        OsStr::new("reports"),
        OsStr::new("keygen"),
        OsStr::new("--out"),
        &path(&fleet),
    ]);
    let mode = std::fs::metadata(&fleet).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&fleet).unwrap().trim().len(), 64);
    let again = run(&[
        OsStr::new("reports"),
        OsStr::new("keygen"),
        OsStr::new("--out"),
        &path(&fleet),
    ]);
    assert!(!again.status.success(), "a key is never overwritten");
    let mut derive = os(&[
        "reports",
        "meter-key",
        "--device-id",
        "meter-s",
        "--fleet-key",
    ]);
    derive.push(fleet.as_os_str());
    derive.extend([OsStr::new("--out"), meter_key.as_os_str()]);
    ok(&derive);

    // The flag needs the secret.
    let refused = run(&os(&["serve", "--root", ".", "--require-signed-reports"]));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--report-key"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let db = dir.path().join("van.db");
    let patches = dir.path().join("patches");
    let served = Served::start_with(
        sample(),
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--patch-cache"),
            patches.as_os_str(),
            OsStr::new("--report-key"),
            fleet.as_os_str(),
            OsStr::new("--require-signed-reports"),
        ],
    );
    // Anyone on the WiFi claims meter-f is updated.
    let forged = report_json("meter-f", "UPDATED", None);
    assert_eq!(served.post("/report", &forged), 204);

    let meter = dir.path().join("meter");
    std::fs::create_dir(&meter).unwrap();
    copy_tree(&sample().join("1.0.0"), &meter);
    let image = sample().join("firmware_1.0.0.bin");
    let mut init = os(&["device", "init", "--version", "1.0.0", "--root"]);
    init.extend([
        meter.as_os_str(),
        OsStr::new("--firmware"),
        image.as_os_str(),
    ]);
    ok(&init);
    let server = format!("http://{}", served.addr);
    let mut update = os(&[
        "device",
        "update",
        "--device-id",
        "meter-s",
        "--server",
        &server,
    ]);
    update.extend([OsStr::new("--root"), meter.as_os_str()]);
    update.extend([OsStr::new("--report-key"), meter_key.as_os_str()]);
    let out = ok(&update);
    assert!(out.contains("updated 1.0.0 -> 1.1.0"), "{out}");

    let csv = served.get("/reports.csv");
    let marks = |device: &str| -> Vec<String> {
        csv.lines()
            .filter(|l| l.contains(&format!(",{device},")))
            // `verified`, before the van's position (no GPS here).
            .map(|l| l.rsplit(',').nth(3).unwrap().to_owned())
            .collect()
    };
    let signed = marks("meter-s");
    assert!(
        signed.len() >= 2 && signed.iter().all(|m| m == "verified"),
        "{csv}"
    );
    assert_eq!(marks("meter-f"), ["unsigned"], "{csv}");
    let page = served.get("/");
    assert_eq!(by_id(&page, "count-UPDATED"), "1", "{page}");
    assert_eq!(by_id(&page, "unverified-reports"), "1");
}
