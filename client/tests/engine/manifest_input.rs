//! Hostile manifest bodies through the meter's own checks, the stable-Rust
//! twin of `fuzz/fuzz_targets/manifest.rs` (bench/fuzz.sh runs that one for
//! millions of inputs): `parse_manifest_body` then `plan::plan` never
//! panic; a parsed manifest re-serialises and re-parses equal; an accepted
//! plan holds only checked paths, hashes and URLs.

use std::collections::BTreeSet;

use otavan_client::plan::{Limits, plan};
use otavan_client::transport::response::{parse_manifest_body, request_target};
use otavan_protocol::Version;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// Manifests the real server rendered (its golden files): the inputs are
/// these with values replaced, entries duplicated, keys removed and bytes
/// damaged.
const SEEDS: &[&[u8]] = &[
    include_bytes!("../../../server/tests/golden/manifest_from_1.0.0.json"),
    include_bytes!("../../../server/tests/golden/manifest_from_1.0.1.json"),
    include_bytes!("../../../server/tests/golden/manifest_full_install.json"),
    include_bytes!("../../../server/tests/golden/manifest_from_unknown_0.9.0.json"),
];

/// Values a hostile van could put anywhere.
fn hostile() -> Vec<Value> {
    let hex40 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    vec![
        json!("../../etc/passwd"),
        json!("/flash/../../outside.txt"),
        json!("/.otavan/state.json"),
        json!("/flash/main.py"),
        json!("flash/main.py"),
        json!(""),
        json!("/flash/x\u{0}.py"),
        json!("x".repeat(3000)),
        json!("https://h/a"),
        json!("http://h/a b"),
        json!("http://"),
        json!("1.0.0"),
        json!("1.1.0"),
        json!("docs"),
        json!(hex40.to_uppercase()),
        json!(&hex40[1..]),
        json!(u64::MAX),
        json!(1u64 << 40),
        json!(-1),
        json!(1.5),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
    ]
}

/// Every JSON pointer into `value`, the root included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// One edit: `(kind, where, which hostile value)`.
type Edit = (u8, Index, Index);

/// Applies `edit` to `manifest`: replace a node, duplicate an array's first
/// entry, or remove an object's first key.
fn apply(manifest: &mut Value, (kind, at, pick): Edit, hostile: &[Value]) {
    let mut all = Vec::new();
    pointers(manifest, String::new(), &mut all);
    let Some(node) = manifest.pointer_mut(&all[at.index(all.len())]) else {
        return;
    };
    match (kind, node) {
        (0, Value::Array(items)) if !items.is_empty() => items.push(items[0].clone()),
        (1, Value::Object(map)) => {
            if let Some(key) = map.keys().next().cloned() {
                map.remove(&key);
            }
        }
        (_, node) => *node = hostile[pick.index(hostile.len())].clone(),
    }
}

/// A seed with up to five edits, sometimes cut short or with one byte
/// replaced.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let edit = (0..4u8, any::<Index>(), any::<Index>());
    (
        any::<Index>(),
        prop::collection::vec(edit, 0..6),
        (0..8u8, any::<Index>(), any::<u8>()),
    )
        .prop_map(|(seed, edits, (damage, at, byte))| {
            let mut manifest: Value =
                serde_json::from_slice(SEEDS[seed.index(SEEDS.len())]).unwrap();
            let hostile = hostile();
            for edit in edits {
                apply(&mut manifest, edit, &hostile);
            }
            let mut bytes = serde_json::to_vec(&manifest).unwrap();
            let at = at.index(bytes.len());
            match damage {
                0 => bytes.truncate(at),
                1 => bytes[at] = byte,
                _ => {}
            }
            bytes
        })
}

/// How far a body got.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    Malformed,
    Refused,
    Planned,
}

/// What the meter does with a body, and the properties it keeps.
fn check(body: &[u8]) -> Result<Reached, TestCaseError> {
    let Ok(Some(manifest)) = parse_manifest_body(body) else {
        return Ok(Reached::Malformed);
    };
    let again = serde_json::to_vec(&manifest).unwrap();
    prop_assert_eq!(parse_manifest_body(&again).unwrap(), Some(manifest.clone()));
    let mut currents = vec![Version::parse("1.0.0").unwrap()];
    if let Some(base) = manifest
        .previous_version
        .as_deref()
        .and_then(|v| Version::parse(v).ok())
    {
        currents.push(base);
    }
    let mut reached = Reached::Refused;
    for current in &currents {
        let update = match plan(&manifest, current, &Limits::default()) {
            Ok(Some(update)) => update,
            Ok(None) => continue,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                continue;
            }
        };
        reached = Reached::Planned;
        prop_assert_eq!(update.to.as_str(), manifest.version.as_str());
        prop_assert_ne!(&update.to, current);
        prop_assert_eq!(
            update.files.len(),
            manifest.new.len() + manifest.update.len()
        );
        let mut paths = BTreeSet::new();
        for path in update.files.iter().map(|f| &f.path).chain(&update.deletes) {
            prop_assert!(paths.insert(path.clone()), "{} twice", path);
        }
        let hex = |h: &str, len| {
            h.len() == len && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        for file in update
            .downloads()
            .chain(update.patch.as_ref().map(|p| &p.file))
        {
            prop_assert!(hex(&file.expect.sha1, 40), "{:?}", file.expect.sha1);
            prop_assert!(file.expect.sha256.as_deref().is_none_or(|h| hex(h, 64)));
            prop_assert!(file.url.starts_with("http://"), "{:?}", file.url);
            let _ = request_target(&file.url);
        }
        let _ = update.space_needed();
    }
    Ok(reached)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_manifest_body_is_planned_or_refused_without_panicking(body in body()) {
        check(&body)?;
    }

    #[test]
    fn any_bytes_are_refused_without_panicking(body in prop::collection::vec(any::<u8>(), 0..64)) {
        check(&body)?;
    }
}

/// The generator reaches every outcome, so the property above is not only
/// ever checking refusals.
#[test]
fn generated_bodies_reach_plans_refusals_and_malformed_json() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..500 {
        let body = body().new_tree(&mut runner).unwrap().current();
        seen.insert(check(&body).unwrap());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}
