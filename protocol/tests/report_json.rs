//! Hostile `POST /report` bodies, the stable-Rust twin of
//! `fuzz/fuzz_targets/report.rs` (bench/fuzz.sh runs that one for millions
//! of inputs): parsing and validating any body never panics, and a parsed
//! report re-serialises and re-parses equal, with the same verdict.

use otavan_protocol::report::{MAX_DEVICE_ID_LEN, MAX_ERROR_LEN, MAX_REPORT_ID_LEN};
use otavan_protocol::{Report, ReportError};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// The report's fields, a typo of one, and an unknown one.
const KEYS: &[&str] = &[
    "device_id",
    "from_version",
    "to_version",
    "state",
    "error",
    "bytes",
    "full_bytes",
    "report_id",
    "Device_id",
    "extra",
];

/// A JSON value as text: right and wrong types, limits, hostile strings,
/// numbers beyond `u64`.
fn value() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        "[0-9a-zA-Z._+-]{0,12}",
        Just("x".repeat(MAX_DEVICE_ID_LEN)),
        Just("x".repeat(MAX_DEVICE_ID_LEN + 1)),
        Just("e".repeat(MAX_ERROR_LEN + 1)),
        Just("r".repeat(MAX_REPORT_ID_LEN + 1)),
        Just("../..".to_owned()),
        any::<String>(),
    ]
    .prop_map(|s| serde_json::to_string(&s).unwrap());
    prop_oneof![
        4 => text,
        2 => prop::sample::select(vec!["\"UPDATED\"", "\"FAILED\"", "\"DOWNLOADING\"", "\"done\""])
            .prop_map(str::to_owned),
        2 => "-?[0-9]{1,22}(\\.[0-9])?(e[0-9]{1,3})?",
        1 => prop::sample::select(vec!["null", "true", "[]", "{}", "[\"1.0.0\"]", "\"\\ud800\""])
            .prop_map(str::to_owned),
    ]
}

/// A valid report.
const BASE: &[(&str, &str)] = &[
    ("device_id", "\"70B3D5\""),
    ("from_version", "\"1.0.0\""),
    ("to_version", "\"1.1.0\""),
    ("state", "\"UPDATED\""),
];

/// A valid report with fields dropped, replaced or added, sometimes cut
/// short or with one byte replaced.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let keep = prop::collection::vec(prop::bool::weighted(0.9), BASE.len());
    let edits = prop::collection::vec((prop::sample::select(KEYS), value()), 0..4);
    (
        keep,
        edits,
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..6u8,
    )
        .prop_map(|(keep, edits, at, byte, damage)| {
            let mut fields: Vec<(&str, String)> = BASE
                .iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|(&(k, v), _)| (k, v.to_owned()))
                .collect();
            for (key, value) in edits {
                match fields.iter_mut().find(|(k, _)| *k == key) {
                    Some(field) => field.1 = value,
                    None => fields.push((key, value)),
                }
            }
            let members: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let mut bytes = format!("{{{}}}", members.join(",")).into_bytes();
            let at = at.index(bytes.len());
            match damage {
                0 => bytes.truncate(at),
                1 => bytes[at] = byte,
                _ => {}
            }
            bytes
        })
}

/// What the van does with a body, and the property it keeps.
fn check(body: &[u8]) -> Result<Option<Result<(), ReportError>>, TestCaseError> {
    let Ok(report) = serde_json::from_slice::<Report>(body) else {
        return Ok(None);
    };
    let verdict = report.validate();
    let reparsed: Report = serde_json::from_slice(&serde_json::to_vec(&report).unwrap()).unwrap();
    prop_assert_eq!(&reparsed, &report);
    prop_assert_eq!(reparsed.validate(), verdict.clone());
    Ok(Some(verdict))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_report_body_parses_or_is_refused_without_panicking(body in body()) {
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
fn generated_bodies_reach_valid_invalid_and_malformed() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut valid, mut invalid, mut malformed) = (0, 0, 0);
    for _ in 0..2000 {
        let body = body().new_tree(&mut runner).unwrap().current();
        match check(&body).unwrap() {
            Some(Ok(())) => valid += 1,
            Some(Err(_)) => invalid += 1,
            None => malformed += 1,
        }
    }
    assert!(
        valid > 0 && invalid > 0 && malformed > 0,
        "{valid} {invalid} {malformed}"
    );
}
