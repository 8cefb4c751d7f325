//! Gates judged from report files written to a temp dir.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::reports_csv;

const SETTINGS: GateSettings = GateSettings {
    min_updated_percent: 50.0,
    max_failure_percent: 20.0,
    max_rollback_percent: 10.0,
    min_samples: 3,
};

fn eui(n: u8) -> DevEui {
    DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, n])
}

/// Meters 1-4 in wave 1 (canary), 5-10 in wave 2, 11-12 in wave 3.
fn waves() -> Vec<Assignment> {
    (1..=12)
        .map(|n| {
            let (wave, name) = match n {
                1..=4 => (1, "canary"),
                5..=10 => (2, "wave2"),
                _ => (3, "wave3"),
            };
            Assignment {
                dev_eui: eui(n),
                wave,
                name: name.into(),
            }
        })
        .collect()
}

/// Reports for meters `(n, state)`, van reports to 1.1.0.
fn reports(states: &[(u8, &str)]) -> Reports {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("REPORTS.csv");
    let mut text = String::from("time,device_id,from_version,to_version,state,error,source\n");
    for (n, state) in states {
        let source = if *state == "REVERTED" { "lora" } else { "van" };
        text += &format!(
            "2025-06-03T09:00:00Z,{},1.0.0,1.1.0,{state},,{source}\n",
            eui(*n)
        );
    }
    std::fs::write(&path, text).unwrap();
    reports_csv::read(Path::new(&path)).unwrap()
}

fn judged(states: &[(u8, &str)]) -> Vec<WaveStatus> {
    let target: Version = "1.1.0".parse().unwrap();
    evaluate(
        &waves(),
        &reports(states),
        Some(&target),
        &SETTINGS,
        &BTreeSet::new(),
    )
}

#[test]
fn a_healthy_canary_opens_the_next_wave_only() {
    let status = judged(&[
        (1, "UPDATED"),
        (2, "UPDATED"),
        (3, "UPDATED"),
        (4, "DOWNLOADING"),
    ]);
    assert_eq!(status[0].gate, GateState::Open);
    assert_eq!((status[0].updated, status[0].in_progress), (3, 1));
    assert_eq!(status[1].gate, GateState::Open, "{}", status[1].reason);
    assert!(
        status[1].reason.contains("75.0 % updated (3 of 4)"),
        "{}",
        status[1].reason
    );
    assert_eq!(status[2].gate, GateState::Waiting, "{}", status[2].reason);
    assert_eq!(status[2].no_report, 2);
    assert_eq!(open_meters(&waves(), &status).len(), 10);
}

#[test]
fn a_failing_canary_trips_every_later_gate() {
    let status = judged(&[
        (1, "UPDATED"),
        (2, "FAILED"),
        (3, "UPDATED"),
        (4, "UPDATED"),
    ]);
    assert_eq!(status[1].gate, GateState::Tripped);
    assert!(
        status[1]
            .reason
            .contains("failure rate 25.0 % (1 of 4) above --max-failure-rate 20 %"),
        "{}",
        status[1].reason
    );
    assert_eq!(status[2].gate, GateState::Tripped);
    assert_eq!(open_meters(&waves(), &status).len(), 4);
}

#[test]
fn rollbacks_trip_the_gate() {
    let status = judged(&[
        (1, "UPDATED"),
        (2, "REVERTED"),
        (3, "UPDATED"),
        (4, "UPDATED"),
    ]);
    assert_eq!(status[1].gate, GateState::Tripped);
    assert!(
        status[1].reason.contains("rollback rate 25.0 %"),
        "{}",
        status[1].reason
    );
}

#[test]
fn too_few_samples_neither_open_nor_trip() {
    // Two final reports, both failed: a 100 % failure rate from two
    // samples is not judged.
    let status = judged(&[(1, "FAILED"), (2, "FAILED")]);
    assert_eq!(status[1].gate, GateState::Waiting);
    assert!(
        status[1].reason.contains("2 final report(s) of 4 meters"),
        "{}",
        status[1].reason
    );
    let none = judged(&[]);
    assert_eq!(none[1].gate, GateState::Waiting);
    assert_eq!(none[0].no_report, 4);
}

#[test]
fn a_resumed_gate_opens_and_says_why() {
    let target: Version = "1.1.0".parse().unwrap();
    let failing = reports(&[
        (1, "UPDATED"),
        (2, "FAILED"),
        (3, "UPDATED"),
        (4, "UPDATED"),
    ]);
    let status = evaluate(
        &waves(),
        &failing,
        Some(&target),
        &SETTINGS,
        &BTreeSet::from([2]),
    );
    assert_eq!(status[1].gate, GateState::Open);
    assert!(
        status[1]
            .reason
            .starts_with("resumed by the operator after: wave 1 (canary): failure rate"),
        "{}",
        status[1].reason
    );
    assert_eq!(status[2].gate, GateState::Waiting, "{}", status[2].reason);
}
