//! The dashboard as a browser shows it: a real `otavan serve`, reports
//! posted over HTTP, the page rendered by headless Chromium (Debian's
//! `chromium`, installed by `.ci/setup`) and its DOM checked.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::common::{Served, report_json};

/// Chromium's DOM of `url` after it loaded.
pub fn chromium_dom(url: &str) -> String {
    let profile = tempfile::TempDir::new().unwrap();
    let output = chromium(profile.path())
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): run .ci/setup (installs Debian's chromium package)")
        });
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Headless Chromium as root may run it, with a throwaway profile and
/// nothing that would reach beyond the machine.
pub fn chromium(profile: &Path) -> Command {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// The text of the element with `id` in a DOM dump (`<x id="ID">TEXT<`).
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"))
        + marker.len();
    &dom[start..start + dom[start..].find('<').unwrap()]
}

#[test]
fn the_dashboard_renders_the_posted_reports_in_chromium() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/releases");
    let db = dir.path().join("van.db");
    let served = Served::start_with(
        &root,
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--van-id"),
            OsStr::new("van-test"),
            OsStr::new("--patch-cache"),
            dir.path().join("patches").as_os_str(),
        ],
    );
    let hostile_id = "<script>document.title='pwned'</script>";
    let hostile_error = "<img src=x onerror=\"document.title='pwned'\"> & more";
    let mut posts = Vec::new();
    for m in 0..3 {
        for state in [
            "DOWNLOADING",
            "DOWNLOADED",
            "VERIFIED",
            "UPDATING",
            "UPDATED",
        ] {
            posts.push(report_json(&format!("meter-{m}"), state, None));
        }
    }
    posts.push(report_json("meter-3", "DOWNLOADING", None));
    posts.push(report_json(hostile_id, "DOWNLOADING", None));
    posts.push(report_json(hostile_id, "FAILED", Some(hostile_error)));
    posts.push(report_json("meter-4", "VERIFIED", None));
    for body in &posts {
        assert_eq!(served.post("/report", body), 204, "{body}");
    }

    let dom = chromium_dom(&format!("http://{}/", served.addr));
    assert!(
        dom.contains("<title>otavan van-test → 1.1.0</title>"),
        "{dom}"
    );
    assert_eq!(by_id(&dom, "target"), "1.1.0");
    assert_eq!(by_id(&dom, "van-id"), "van-test");
    assert_eq!(by_id(&dom, "count-UPDATED"), "3");
    assert_eq!(by_id(&dom, "count-DOWNLOADING"), "1");
    assert_eq!(by_id(&dom, "count-VERIFIED"), "1");
    assert_eq!(by_id(&dom, "count-FAILED"), "1");
    assert_eq!(by_id(&dom, "count-UPDATING"), "0");
    assert_eq!(by_id(&dom, "meters"), "6");
    assert_eq!(by_id(&dom, "updated"), "3");
    assert_eq!(by_id(&dom, "percent"), "50.0");
    assert_eq!(by_id(&dom, "session-meters"), "6");
    assert_eq!(by_id(&dom, "session-reports"), posts.len().to_string());
    // The hostile id and error are shown as text, never run or parsed.
    assert!(!dom.contains("pwned</title>"), "a script ran: {dom}");
    assert!(!dom.contains("<img"), "markup injected: {dom}");
    assert!(!dom.contains("<script>"), "markup injected: {dom}");
    assert!(dom.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt; &amp; more"));
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"));

    // The hostile meter's own page, through the link the dashboard gives.
    let href = "/devices/%3Cscript%3Edocument.title%3D%27pwned%27%3C%2Fscript%3E";
    assert!(dom.contains(&format!("href=\"{href}\"")), "{dom}");
    let page = chromium_dom(&format!("http://{}{href}", served.addr));
    assert_eq!(by_id(&page, "report-count"), "2");
    assert!(
        !page.contains("<img") && !page.contains("<script>"),
        "{page}"
    );
    assert!(page.contains("<td class=\"state\">FAILED</td>"), "{page}");
    let plain = chromium_dom(&format!("http://{}/devices/meter-0", served.addr));
    assert_eq!(by_id(&plain, "report-count"), "5");
    assert_eq!(by_id(&plain, "device-id"), "meter-0");
}
