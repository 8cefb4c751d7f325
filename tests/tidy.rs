//! Tidy: the rules of the code map (ARCHITECTURE.md), checked on every
//! test run, rust-analyzer style. Each rule says why it exists; a failure
//! names the file and the line, so the fix is to move the code, not to
//! loosen the rule (unless ARCHITECTURE.md changes with it).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace's crates: directory, package name, and the workspace
/// crates its (non-dev) dependencies may name. Dependencies point down
/// this list only: nothing depends on a crate above it.
const LAYERS: &[(&str, &str, &[&str])] = &[
    ("protocol", "otavan-protocol", &[]),
    ("durable", "otavan-durable", &[]),
    ("planning", "otavan-planning", &["otavan-protocol"]),
    ("loranet", "otavan-loranet", &["otavan-protocol"]),
    ("store", "otavan-store", &["otavan-protocol"]),
    (
        "client",
        "otavan-client",
        &["otavan-protocol", "otavan-durable"],
    ),
    (
        "server",
        "otavan-server",
        &["otavan-protocol", "otavan-durable", "otavan-store"],
    ),
    (
        "campaign",
        "otavan-campaign",
        &[
            "otavan-protocol",
            "otavan-durable",
            "otavan-planning",
            "otavan-store",
        ],
    ),
    (
        "simulator",
        "otavan-sim",
        &[
            "otavan-protocol",
            "otavan-planning",
            "otavan-loranet",
            "otavan-store",
            "otavan-client",
            "otavan-server",
        ],
    ),
];

/// External crates only some crates may use, and where: the network
/// stacks and drivers stay at the edges, so the engine, the planner and
/// the simulation never grow a socket. `(crate as imported, its package,
/// the source folders allowed to import it)`.
const EDGES: &[(&str, &str, &[&str])] = &[
    ("hyper", "hyper", &["server/src"]),
    ("hyper_util", "hyper-util", &["server/src"]),
    ("http_body", "http-body", &["server/src"]),
    ("http_body_util", "http-body-util", &["server/src"]),
    ("reqwest", "reqwest", &["client/src/transport/http.rs"]),
    ("rumqttc", "rumqttc", &["campaign/src"]),
    (
        "chirpstack_api",
        "chirpstack_api",
        &["campaign/src/chirpstack/grpc.rs"],
    ),
    ("tokio_postgres", "tokio-postgres", &["store/src"]),
    ("rusqlite", "rusqlite", &["store/src"]),
    ("plotters", "plotters", &["simulator/src"]),
];

/// Folders whose code must be a pure function of its inputs: the meter's
/// update engine (time and randomness come in through `client/src/clock.rs`,
/// their one home) and the simulation (virtual time only: tokio's paused
/// clock, seeded streams).
const DETERMINISTIC: &[&str] = &["client/src", "simulator/src", "planning/src"];

/// The files allowed to read the wall clock or the OS random generator.
const CLOCK_HOMES: &[&str] = &["client/src/clock.rs"];

/// What reading real time or OS randomness looks like.
const NONDETERMINISTIC: &[&str] = &[
    "SystemTime",
    "std::time::Instant",
    "getrandom",
    "OsRng",
    "thread_rng",
    "rand::random",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A file's lines without `//` comments (doc comments name crates freely).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) if !line[..at].contains('"') => &line[..at],
                _ => line,
            };
            (i + 1, code.to_owned())
        })
        .collect()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Whether `line` names the crate `name` as a path (`name::` at a word
/// start).
fn names_crate(line: &str, name: &str) -> bool {
    let pattern = format!("{name}::");
    line.match_indices(&pattern).any(|(at, _)| {
        line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    })
}

fn dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = fs::read_to_string(manifest).unwrap();
    let toml: toml::Table = text.parse().unwrap();
    toml.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_member_is_in_the_layer_table() {
    let text = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let toml: toml::Table = text.parse().unwrap();
    let members: BTreeSet<String> = toml["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();
    let known: BTreeSet<String> = LAYERS.iter().map(|(d, _, _)| (*d).to_owned()).collect();
    assert_eq!(
        members, known,
        "a workspace member needs its place in LAYERS (and in ARCHITECTURE.md)"
    );
}

/// Dependencies point one way: protocol at the bottom, the simulator on
/// top, the binary above everything.
#[test]
fn workspace_dependencies_point_down() {
    let mut wrong = Vec::new();
    for (i, (dir, name, allowed)) in LAYERS.iter().enumerate() {
        let below: BTreeSet<&str> = LAYERS[..i].iter().map(|(_, n, _)| *n).collect();
        for allowed_dep in *allowed {
            assert!(
                below.contains(allowed_dep),
                "LAYERS lets {name} use {allowed_dep}, which is not below it"
            );
        }
        let manifest = root().join(dir).join("Cargo.toml");
        for dep in dependencies(&manifest) {
            if dep.starts_with("otavan") && !allowed.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows against the code map:\n{wrong:#?}");
}

/// Network stacks, drivers and plotting stay in the crates whose job they
/// are.
#[test]
fn edge_crates_stay_at_the_edges() {
    let mut wrong = Vec::new();
    for (dir, name, _) in LAYERS {
        let deps = dependencies(&root().join(dir).join("Cargo.toml"));
        for (_, package, allowed) in EDGES {
            let mine = allowed.iter().any(|a| a.split('/').next() == Some(*dir));
            if deps.contains(*package) && !mine {
                wrong.push(format!("{name} depends on {package}"));
            }
        }
        for file in rust_files(&root().join(dir).join("src")) {
            let path = relative(&file);
            for (line_no, line) in code_lines(&file) {
                for (imported, _, allowed) in EDGES {
                    let here = allowed.iter().any(|a| path.starts_with(a));
                    if !here && names_crate(&line, imported) {
                        wrong.push(format!("{path}:{line_no} uses {imported}"));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edge crates outside their place:\n{wrong:#?}"
    );
}

/// The engine and the simulation never read the wall clock or the OS
/// random generator: time and randomness are inputs, so tests pin them
/// and a rehearsal is a pure function of its scenario and seed. Tokio's
/// `Instant` is allowed in the simulation (its clock is paused).
#[test]
fn no_wall_clock_or_os_randomness_in_engine_or_simulation() {
    let mut wrong = Vec::new();
    for dir in DETERMINISTIC {
        for file in rust_files(&root().join(dir)) {
            let path = relative(&file);
            if CLOCK_HOMES.contains(&path.as_str()) {
                continue;
            }
            let lines = code_lines(&file);
            let tokio_instant = lines
                .iter()
                .any(|(_, l)| l.contains("tokio::time::") && l.contains("Instant"));
            for (line_no, line) in &lines {
                for token in NONDETERMINISTIC {
                    if line.contains(token) {
                        wrong.push(format!("{path}:{line_no}: {token}"));
                    }
                }
                if line.contains("Instant::now") && !tokio_instant {
                    wrong.push(format!("{path}:{line_no}: Instant::now outside tokio time"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "real time or randomness where only inputs belong:\n{wrong:#?}"
    );
}

/// Every source file says what it is for in its first line.
#[test]
fn every_file_starts_with_its_purpose() {
    let mut wrong = Vec::new();
    let mut dirs: Vec<&str> = LAYERS.iter().map(|(d, _, _)| *d).collect();
    dirs.extend(["src", "tests"]);
    for dir in dirs {
        for file in rust_files(&root().join(dir)) {
            let text = fs::read_to_string(&file).unwrap();
            if !text.starts_with("//!") {
                wrong.push(relative(&file));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "files without a `//!` first line: {wrong:#?}"
    );
}

/// Every crate has a README saying what it is for and its main types.
#[test]
fn every_crate_has_a_readme() {
    let missing: Vec<&str> = LAYERS
        .iter()
        .map(|(dir, _, _)| *dir)
        .filter(|dir| !root().join(dir).join("README.md").is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "crates without a README.md: {missing:?}"
    );
}

/// No test is switched off: a slow check belongs in a benchmark, a broken
/// one gets fixed.
#[test]
fn no_ignored_tests() {
    let mut wrong = BTreeMap::new();
    let mut dirs: Vec<&str> = LAYERS.iter().map(|(d, _, _)| *d).collect();
    dirs.extend(["src", "tests"]);
    for dir in dirs {
        for file in rust_files(&root().join(dir)) {
            for (line_no, line) in code_lines(&file) {
                if line.trim_start().starts_with("#[ignore") {
                    wrong.insert(relative(&file), line_no);
                }
            }
        }
    }
    assert!(wrong.is_empty(), "ignored tests: {wrong:?}");
}

#[test]
fn crate_paths_are_recognised() {
    assert!(names_crate("use hyper::Request;", "hyper"));
    assert!(names_crate("let x = reqwest::Client::new();", "reqwest"));
    assert!(!names_crate("use otavan_hyper::x;", "hyper"));
    assert!(!names_crate("use hyper_util::rt;", "hyper"));
    assert!(names_crate("use hyper_util::rt;", "hyper_util"));
    assert!(!names_crate("crate::hyper::x", "hyper"));
}
