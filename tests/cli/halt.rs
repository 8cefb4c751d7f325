//! The automatic halt end to end: a tripped gate, `campaign halt` into a
//! signed HALT.json or the fleet PostgreSQL's halts table, real vans
//! that stop offering the target, and `campaign resume`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::{Served, ok, otavan, sample, wait_for};
use crate::pg::PgCluster;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/campaign")
        .join(name)
}

fn run(args: &[&OsStr]) -> Output {
    otavan().args(args).output().unwrap()
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

/// The example plan with waves in `dir`, and a release key pair there.
fn setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let plan = dir.join("PLAN.csv");
    ok(&[
        os("campaign"),
        os("plan"),
        os("--meters"),
        example("METERS.csv").as_os_str(),
        os("--route"),
        example("ROUTE.csv").as_os_str(),
        os("--start"),
        os("2025-06-03T06:00:00Z"),
        os("--campaign"),
        os("7"),
        os("--target"),
        os("1.1.0"),
        os("--waves"),
        os("canary=20%,50%,100%"),
        os("--out"),
        plan.as_os_str(),
    ]);
    let prefix = dir.join("ops");
    ok(&[os("keygen"), os("--out"), prefix.as_os_str()]);
    (
        plan,
        prefix.with_extension("key"),
        prefix.with_extension("pub"),
    )
}

/// `campaign halt` of `plan` from the example reports (whose canary has
/// one failure in three final reports) with `flags`.
fn halt(plan: &Path, key: &Path, out: &Path, flags: &[&str]) -> Output {
    let reports = example("REPORTS.csv");
    let mut args = vec![
        os("campaign"),
        os("halt"),
        os("--plan"),
        plan.as_os_str(),
        os("--target"),
        os("1.1.0"),
        os("--reports"),
        reports.as_os_str(),
        os("--min-samples"),
        os("3"),
        os("--sign-key"),
        key.as_os_str(),
        os("--out"),
        out.as_os_str(),
    ];
    args.extend(flags.iter().map(os));
    run(&args)
}

fn van(halt: &Path, key: &Path, db: &Path, target: &str) -> Served {
    let cache = db.with_extension("patches");
    Served::start_with(
        sample(),
        &[
            os("--db"),
            db.as_os_str(),
            os("--patch-cache"),
            cache.as_os_str(),
            os("--target"),
            os(target),
            os("--halt-file"),
            halt.as_os_str(),
            os("--halt-key"),
            key.as_os_str(),
        ],
    )
}

#[test]
fn a_tripped_gate_halts_the_target_on_a_real_van_and_resume_is_logged() {
    let dir = tempfile::TempDir::new().unwrap();
    let (plan, secret, public) = setup(dir.path());
    let file = dir.path().join("HALT.json");
    // Lenient thresholds: no gate trips, so no halt without --reason.
    let output = halt(&plan, &secret, &file, &["--max-failure-rate", "50"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no gate of"));
    assert!(!file.exists());
    let output = halt(&plan, &secret, &file, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout
            .contains("campaign 7 halted for 1.1.0: wave 1 (canary): failure rate 33.3 % (1 of 3)"),
        "{stdout}"
    );
    // A van serving the halted target answers null and says why.
    let halted = van(&file, &public, &dir.path().join("a.db"), "1.1.0");
    assert_eq!(halted.get("/manifest.json?current_ver=1.0.0"), "null");
    assert_eq!(halted.get("/manifest.json"), "null");
    let page = halted.get("/");
    assert!(page.contains("id=\"halted\""), "{page}");
    assert!(page.contains("failure rate 33.3 %"), "{page}");
    // A van serving another version is unaffected by the same halt.
    let other = van(&file, &public, &dir.path().join("b.db"), "1.0.1");
    let manifest = other.get("/manifest.json?current_ver=1.0.0");
    assert!(manifest.contains("\"version\""), "{manifest}");
    assert!(!other.get("/").contains("id=\"halted\""));
    drop((halted, other));
    // Resume the canary's gate: it opens, said so, and logged.
    ok(&[
        os("campaign"),
        os("resume"),
        os("--plan"),
        plan.as_os_str(),
        os("--wave"),
        os("2"),
        os("--reason"),
        os("the failure was a flat battery"),
    ]);
    let reports = example("REPORTS.csv");
    let status = ok(&[
        os("campaign"),
        os("status"),
        os("--plan"),
        plan.as_os_str(),
        os("--target"),
        os("1.1.0"),
        os("--reports"),
        reports.as_os_str(),
        os("--min-samples"),
        os("3"),
        os("--min-updated"),
        os("50"),
    ]);
    assert!(
        status.contains("open: resumed by the operator after: wave 1 (canary)"),
        "{status}"
    );
    let log = std::fs::read_to_string(dir.path().join("PLAN.csv.decisions")).unwrap();
    let decisions: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["halt", "resume"]);
    assert_eq!(decisions[0]["thresholds"]["max_failure_percent"], 5.0);
    assert_eq!(decisions[0]["campaign"], 7);
    assert_eq!(decisions[1]["reason"], "the failure was a flat battery");
}

#[test]
fn a_forged_or_edited_halt_file_stops_the_van_from_starting() {
    let dir = tempfile::TempDir::new().unwrap();
    let (plan, secret, public) = setup(dir.path());
    let file = dir.path().join("HALT.json");
    assert!(halt(&plan, &secret, &file, &[]).status.success());
    // Signed by another key (a forger's).
    let forger = dir.path().join("forger");
    ok(&[os("keygen"), os("--out"), forger.as_os_str()]);
    let forged = dir.path().join("FORGED.json");
    assert!(
        halt(&plan, &forger.with_extension("key"), &forged, &[])
            .status
            .success()
    );
    // The right key's halt, edited to another target.
    let edited = dir.path().join("EDITED.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&edited, text.replace("1.1.0", "1.0.1")).unwrap();
    for bad in [&forged, &edited] {
        let cache = dir.path().join("patches");
        let output = run(&[
            os("serve"),
            os("--root"),
            sample().as_os_str(),
            os("--bind"),
            os("127.0.0.1"),
            os("--port"),
            os("0"),
            os("--db"),
            dir.path().join("v.db").as_os_str(),
            os("--patch-cache"),
            cache.as_os_str(),
            os("--halt-file"),
            bad.as_os_str(),
            os("--halt-key"),
            public.as_os_str(),
        ]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(
                "refused: the halt's signature does not verify with the trusted halt key"
            ),
            "{stderr}"
        );
    }
}

/// The dashboard of `van` once it contains `text` (within 10 s).
fn page_with(van: &Served, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = van.get("/");
        if page.contains(text) {
            return page;
        }
        assert!(Instant::now() < deadline, "no {text:?} in {page}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_running_van_reads_its_halt_file_again_on_sighup_and_a_bad_one_lifts_nothing() {
    let dir = tempfile::TempDir::new().unwrap();
    let (plan, secret, public) = setup(dir.path());
    let file = dir.path().join("HALT.json");
    assert!(halt(&plan, &secret, &file, &[]).status.success());
    let halted = van(&file, &public, &dir.path().join("a.db"), "1.1.0");
    page_with(&halted, "failure rate 33.3 %");
    // The operator's next halt, by hand, over the same file: in force
    // after SIGHUP, without a restart.
    let manual = dir.path().join("MANUAL.json");
    let output = halt(
        &plan,
        &secret,
        &manual,
        &[
            "--max-failure-rate",
            "50",
            "--reason",
            "meters brick on boot",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    std::fs::copy(&manual, &file).unwrap();
    halted.signal("HUP");
    let page = page_with(&halted, "halted by hand: meters brick on boot");
    assert!(!page.contains("failure rate 33.3 %"), "{page}");
    assert_eq!(halted.get("/manifest.json?current_ver=1.0.0"), "null");
    // Edited to another target (to lift the halt), then removed: both
    // refused on SIGHUP, and the halt read before stays in force.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("1.1.0", "1.0.1")).unwrap();
    halted.signal("HUP");
    let line = wait_for(&halted.log, "halt file not taken");
    assert!(line.contains("does not verify"), "{line}");
    std::fs::remove_file(&file).unwrap();
    halted.signal("HUP");
    let line = wait_for(&halted.log, "halt file not taken");
    assert!(line.contains("cannot read"), "{line}");
    assert_eq!(halted.get("/manifest.json?current_ver=1.0.0"), "null");
    assert!(
        halted
            .get("/")
            .contains("halted by hand: meters brick on boot")
    );
}

fn fleet_van(pg: &PgCluster, dir: &Path, id: &str, target: &str) -> Served {
    let cache = dir.join(format!("patches-{id}"));
    Served::start_with(
        sample(),
        &[
            os("--db"),
            os(&pg.url()),
            os("--van-id"),
            os(id),
            os("--patch-cache"),
            cache.as_os_str(),
            os("--target"),
            os(target),
        ],
    )
}

#[test]
fn a_halt_in_the_fleet_database_reaches_running_vans_until_resumed() {
    let pg = PgCluster::start();
    let dir = tempfile::TempDir::new().unwrap();
    let (plan, _, _) = setup(dir.path());
    let url = pg.url();
    // A van already running before the halt.
    let early = fleet_van(&pg, dir.path(), "van-1", "1.1.0");
    assert_ne!(early.get("/manifest.json?current_ver=1.0.0"), "null");
    let reports = example("REPORTS.csv");
    ok(&[
        os("campaign"),
        os("halt"),
        os("--plan"),
        plan.as_os_str(),
        os("--target"),
        os("1.1.0"),
        os("--reports"),
        reports.as_os_str(),
        os("--min-samples"),
        os("3"),
        os("--fleet-db"),
        os(&url),
    ]);
    assert_eq!(pg.count("SELECT COUNT(*) FROM halts WHERE resumed_at IS NULL AND campaign = 7 AND target = '1.1.0'"), 1);
    let until = |van: &Served, null: bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while (van.get("/manifest.json?current_ver=1.0.0") == "null") != null {
            assert!(
                Instant::now() < deadline,
                "the van did not follow the halts table"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    until(&early, true);
    // A van started after it halts at once; one serving 1.0.1 does not.
    let late = fleet_van(&pg, dir.path(), "van-2", "1.1.0");
    assert_eq!(late.get("/manifest.json?current_ver=1.0.0"), "null");
    let page = late.get("/");
    assert!(
        page.contains("id=\"halted\"") && page.contains("failure rate 33.3 %"),
        "{page}"
    );
    let other = fleet_van(&pg, dir.path(), "van-3", "1.0.1");
    assert!(
        other
            .get("/manifest.json?current_ver=1.0.0")
            .contains("\"version\"")
    );
    ok(&[
        os("campaign"),
        os("resume"),
        os("--plan"),
        plan.as_os_str(),
        os("--wave"),
        os("2"),
        os("--reason"),
        os("fixed"),
        os("--fleet-db"),
        os(&url),
        os("--target"),
        os("1.1.0"),
    ]);
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM halts WHERE resumed_at IS NULL"),
        0
    );
    until(&early, false);
    until(&late, false);
    assert!(!late.get("/").contains("id=\"halted\""));
}
