//! Release roles end to end, as operators run them: an offline root key,
//! certified release keys, meters provisioned with the root key only, and
//! the recovery from a stolen release key against real `otavan serve`
//! processes (a genuine van and an attacker's).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use otavan_protocol::descriptor::{KeyPair, SignedDescriptor};
use otavan_protocol::keys::KeyRole;
use otavan_protocol::timestamp::Timestamp;

use crate::common::{Served, copy_tree, ok, run, sample, write};

fn os(s: &str) -> &OsStr {
    s.as_ref()
}

/// Files under `root` outside `.otavan/`.
fn files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with(".otavan") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new(dir: &Path, name: &str, role: &str) -> Keys {
        let prefix = dir.join(name);
        ok(&[
            os("keygen"),
            os("--role"),
            os(role),
            os("--out"),
            prefix.as_os_str(),
        ]);
        Keys { dir: prefix }
    }

    fn secret(&self) -> PathBuf {
        self.dir.with_extension("key")
    }

    fn public(&self) -> PathBuf {
        self.dir.with_extension("pub")
    }

    fn pair(&self, role: KeyRole) -> KeyPair {
        KeyPair::from_text_as(&std::fs::read_to_string(self.secret()).unwrap(), role).unwrap()
    }
}

/// `otavan device update` of `meter` against `server`.
fn update(meter: &Path, served: &Served) -> Output {
    let server = format!("http://{}", served.addr);
    run(&[
        os("device"),
        os("update"),
        os("--root"),
        meter.as_os_str(),
        os("--server"),
        os(&server),
        os("--device-id"),
        os("meter-1"),
    ])
}

fn version(meter: &Path) -> String {
    let out = ok(&[
        os("device"),
        os("status"),
        os("--root"),
        meter.as_os_str(),
        os("--json"),
    ]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    status["version"].as_str().unwrap().to_owned()
}

/// A new version folder: `from`'s files plus `extra`.
fn add_version(release: &Path, from: &str, version: &str, extra: (&str, &str)) {
    copy_tree(&release.join(from), &release.join(version));
    let _ = std::fs::remove_file(release.join(version).join("flash/pymakr.conf"));
    write(&release.join(version), extra.0, extra.1);
    std::fs::copy(
        release.join(format!("firmware_{from}.bin")),
        release.join(format!("firmware_{version}.bin")),
    )
    .unwrap();
}

/// The refusal: non-zero exit, one line on stderr saying `why`, the meter
/// at `at` with the same files, and FAILED in the van's reports.
fn assert_refused(meter: &Path, served: &Served, at: &str, why: &str) {
    let before = files(meter);
    let output = update(meter, served);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("otavan: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains(why), "{line}");
    assert_eq!(version(meter), at);
    assert_eq!(files(meter), before);
    let csv = served.get("/reports.csv");
    assert!(
        csv.lines()
            .any(|l| l.contains("meter-1") && l.contains(",FAILED,") && l.contains(why)),
        "{csv}"
    );
}

#[test]
fn a_root_provisioned_meter_recovers_from_a_stolen_release_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = Keys::new(dir.path(), "root", "root");
    let stolen = Keys::new(dir.path(), "release-a", "release");
    assert!(
        std::fs::read_to_string(root.public())
            .unwrap()
            .starts_with("otavan-ed25519-root-public\n")
    );

    // The release manager certifies key A (a counter jump of at most 10)
    // and signs the sample release with it.
    let release = dir.path().join("release");
    copy_tree(sample(), &release);
    let out = ok(&[
        os("release"),
        os("certify"),
        os("--root"),
        release.as_os_str(),
        os("--root-key"),
        root.secret().as_os_str(),
        os("--key"),
        stolen.public().as_os_str(),
        os("--max-counter-jump"),
        os("10"),
    ]);
    assert!(out.contains("root.json version 1"), "{out}");
    let sign = |keys: &Keys, tree: &Path| {
        ok(&[
            os("release"),
            os("sign"),
            os("--root"),
            tree.as_os_str(),
            os("--key"),
            keys.secret().as_os_str(),
            os("--expires"),
            os("30d"),
        ])
    };
    sign(&stolen, &release);

    // The meter is provisioned with the root key only; a release key in
    // its place is refused.
    let meter = dir.path().join("meter");
    copy_tree(&release.join("1.0.0"), &meter);
    let init = |key: &Path| {
        run(&[
            os("device"),
            os("init"),
            os("--root"),
            meter.as_os_str(),
            os("--version"),
            os("1.0.0"),
            os("--firmware"),
            release.join("firmware_1.0.0.bin").as_os_str(),
            os("--root-key"),
            key.as_os_str(),
        ])
    };
    let wrong = init(&stolen.public());
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("expected a otavan-ed25519-root-public key"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let provisioned = init(&root.public());
    assert!(provisioned.status.success());
    assert!(
        !String::from_utf8_lossy(&provisioned.stderr).contains("trusts any van"),
        "no warning for a signed meter"
    );

    let genuine = Served::start(&release, &dir.path().join("genuine.db"));
    let out = update(&meter, &genuine);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&[os("device"), os("confirm"), os("--root"), meter.as_os_str()]);
    assert_eq!(version(&meter), "1.1.0");
    drop(genuine);

    // Key A is stolen. The attacker's van: the genuine tree and
    // certificate, plus a 1.2.0 with a backdoor, signed by A with a huge
    // counter (to lock every later genuine release out) and a timestamp
    // naming it.
    let rogue = dir.path().join("rogue");
    copy_tree(&release, &rogue);
    add_version(&rogue, "1.1.0", "1.2.0", ("flash/backdoor.py", "steal()"));
    sign(&stolen, &rogue);
    let a = stolen.pair(KeyRole::Release);
    let signed: SignedDescriptor =
        serde_json::from_slice(&std::fs::read(rogue.join("target_1.2.0.json")).unwrap()).unwrap();
    let mut forged = signed.descriptor().unwrap();
    forged.counter = 1_000_000;
    std::fs::write(
        rogue.join("target_1.2.0.json"),
        serde_json::to_vec(&SignedDescriptor::sign(&forged, &a)).unwrap(),
    )
    .unwrap();
    let now = forged.expires - 30 * 86_400;
    let stamp = Timestamp::new("1.2.0", 1_000_000, now, now + 7 * 86_400);
    std::fs::write(
        rogue.join("timestamp.json"),
        serde_json::to_vec(&stamp.sign(&[&a])).unwrap(),
    )
    .unwrap();
    let attacker = Served::start(&rogue, &dir.path().join("rogue.db"));
    assert_refused(&meter, &attacker, "1.1.0", "fast-forward refused");
    drop(attacker);

    // The operator rotates to key B and publishes a genuine 1.2.0 with it.
    let fresh = Keys::new(dir.path(), "release-b", "release");
    let out = ok(&[
        os("release"),
        os("rotate-key"),
        os("--root"),
        release.as_os_str(),
        os("--root-key"),
        root.secret().as_os_str(),
        os("--key"),
        fresh.public().as_os_str(),
    ]);
    assert!(out.contains("root.json version 2"), "{out}");
    assert!(
        out.contains(&format!(
            "revoked {}",
            stolen.pair(KeyRole::Release).public().to_text()
        )),
        "{out}"
    );
    add_version(&release, "1.1.0", "1.2.0", ("flash/lib/fix.py", "fix()"));
    let out = sign(&fresh, &release);
    assert!(
        out.contains("1.1.0 counter 3 ->") && out.contains("1.2.0 counter 4 (new)"),
        "{out}"
    );
    let genuine = Served::start(&release, &dir.path().join("genuine.db"));
    let out = update(&meter, &genuine);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&[os("device"), os("confirm"), os("--root"), meter.as_os_str()]);
    assert_eq!(version(&meter), "1.2.0");
    assert!(files(&meter).contains(&"flash/lib/fix.py".to_owned()));
    drop(genuine);

    // The attacker, with the old certificate and A, now signs a 1.3.0 the
    // ordinary way (a counter just above): the meter saw certificate 2,
    // so key A is revoked for it.
    std::fs::remove_dir_all(rogue.join("1.2.0")).unwrap();
    std::fs::remove_file(rogue.join("target_1.2.0.json")).unwrap();
    std::fs::remove_file(rogue.join("firmware_1.2.0.bin")).unwrap();
    add_version(&rogue, "1.1.0", "1.2.0", ("flash/lib/fix.py", "fix()"));
    add_version(&rogue, "1.2.0", "1.3.0", ("flash/backdoor.py", "steal()"));
    sign(&stolen, &rogue);
    let attacker = Served::start(&rogue, &dir.path().join("rogue.db"));
    assert_refused(&meter, &attacker, "1.2.0", "does not verify");
    assert!(!files(&meter).contains(&"flash/backdoor.py".to_owned()));
    drop(attacker);

    // A later genuine release under key B still installs.
    add_version(&release, "1.2.0", "1.3.0", ("flash/lib/fix2.py", "fix2()"));
    sign(&fresh, &release);
    let genuine = Served::start(&release, &dir.path().join("genuine.db"));
    let out = update(&meter, &genuine);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(version(&meter), "1.3.0");
}

#[test]
fn init_without_a_key_warns_that_the_meter_trusts_any_van() {
    let dir = tempfile::TempDir::new().unwrap();
    let meter = dir.path().join("meter");
    std::fs::create_dir(&meter).unwrap();
    let output = run(&[
        os("device"),
        os("init"),
        os("--root"),
        meter.as_os_str(),
        os("--version"),
        os("1.0.0"),
    ]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("trusts any van"),
        "{stderr}"
    );

    // One anchor or the other, never both.
    let root = Keys::new(dir.path(), "root", "root");
    let release = Keys::new(dir.path(), "release", "release");
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let both = run(&[
        os("device"),
        os("init"),
        os("--root"),
        other.as_os_str(),
        os("--version"),
        os("1.0.0"),
        os("--root-key"),
        root.public().as_os_str(),
        os("--public-key"),
        release.public().as_os_str(),
    ]);
    assert!(!both.status.success());
    assert!(!other.join(".otavan").exists());
}
