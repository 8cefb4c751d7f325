//! `otavan lora` as an operator scripts it: encode a command, paste it into
//! the network server, decode what comes back.

use std::collections::BTreeMap;

use crate::common::otavan;

/// Runs `otavan ARGS`, expecting success; returns stdout.
fn run_ok(args: &[&str]) -> String {
    let output = otavan().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "otavan {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `otavan ARGS`, expecting failure; returns stderr.
fn run_err(args: &[&str]) -> String {
    let output = otavan().args(args).output().unwrap();
    assert!(!output.status.success(), "otavan {args:?} succeeded");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    String::from_utf8(output.stderr).unwrap()
}

/// The `key: value` lines of `encode`'s output.
fn fields(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .map(|line| {
            let (key, value) = line.split_once(": ").unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn decode_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(run_ok(args).trim()).unwrap()
}

#[test]
fn encode_wake_then_decode_hex_and_base64() {
    let stdout = run_ok(&[
        "lora",
        "encode",
        "wake",
        "--campaign",
        "7",
        "--in",
        "2h",
        "--window",
        "15m",
        "--network",
        "1",
        "--version",
        "1.1.0",
        "--region",
        "US915",
        "--dr",
        "0",
    ]);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let out = fields(&stdout);
    assert_eq!(out["fport"], "200");
    // 7200 s = 0x1c20; 900 s = 90 x 10 s; tag of "1.1.0" = 7fbd210e.
    assert_eq!(out["hex"], "1100071c205a017fbd210e");
    assert_eq!(out["base64"], "EQAHHCBaAX+9IQ4=");

    let expected = serde_json::json!({
        "command": "wake", "campaign": 7, "delay_s": 7200, "window_s": 900,
        "network": 1, "version_tag": "7fbd210e",
    });
    assert_eq!(decode_json(&["lora", "decode", &out["hex"]]), expected);
    assert_eq!(decode_json(&["lora", "decode", &out["base64"]]), expected);
    // Padding is optional, and so is case in hex.
    let unpadded = out["base64"].trim_end_matches('=');
    assert_eq!(decode_json(&["lora", "decode", unpadded]), expected);
    let upper = out["hex"].to_uppercase();
    assert_eq!(decode_json(&["lora", "decode", &upper]), expected);
}

#[test]
fn encode_cancel_and_status_request() {
    let out = fields(&run_ok(&[
        "lora",
        "encode",
        "cancel",
        "--campaign",
        "513",
        "--fport",
        "42",
    ]));
    assert_eq!(out["fport"], "42");
    assert_eq!(out["hex"], "120201");
    assert_eq!(
        decode_json(&["lora", "decode", &out["base64"]]),
        serde_json::json!({"command": "cancel", "campaign": 513})
    );

    let out = fields(&run_ok(&["lora", "encode", "status-request"]));
    assert_eq!((out["fport"].as_str(), out["hex"].as_str()), ("200", "13"));
    assert_eq!(out["base64"], "Ew==");
    assert_eq!(
        decode_json(&["lora", "decode", "13"]),
        serde_json::json!({"command": "status_request"})
    );
}

#[test]
fn decode_a_status_uplink() {
    assert_eq!(
        decode_json(&["lora", "decode", "--uplink", "18deadbeef0101c80007"]),
        serde_json::json!({
            "message": "status", "version_tag": "deadbeef", "pending_confirm": true,
            "last_result": "updated", "battery": 200, "campaign": 7,
        })
    );
    let stderr = run_err(&["lora", "decode", "18deadbeef0101c80007"]);
    assert!(stderr.contains("add --uplink"), "{stderr}");
}

#[test]
fn rounding_is_reported_and_range_is_enforced() {
    let output = otavan()
        .args([
            "lora",
            "encode",
            "wake",
            "--campaign",
            "1",
            "--network",
            "0",
        ])
        .args(["--in", "10h 29s", "--window", "17s"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        fields(&String::from_utf8_lossy(&output.stdout))["hex"],
        "11000182580200"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--in 10h 29s is sent as 10h"), "{stderr}");
    assert!(stderr.contains("--window 17s is sent as 20s"), "{stderr}");

    let stderr = run_err(&[
        "lora",
        "encode",
        "wake",
        "--campaign",
        "1",
        "--in",
        "1h",
        "--window",
        "3h",
        "--network",
        "0",
    ]);
    assert!(
        stderr.starts_with("otavan: --window 3h: window of 10800 s is out of range"),
        "{stderr}"
    );
}

#[test]
fn a_payload_that_does_not_fit_the_data_rate_is_refused() {
    // Every message of the codec fits US915 DR0 (11 bytes), the smallest
    // limit there is; a data rate the region lacks fits nothing.
    for args in [
        &[
            "lora",
            "encode",
            "status-request",
            "--region",
            "US915",
            "--dr",
            "7",
        ][..],
        &[
            "lora",
            "encode",
            "wake",
            "--campaign",
            "1",
            "--in",
            "1m",
            "--window",
            "1m",
            "--network",
            "0",
            "--version",
            "1.0.0",
            "--region",
            "eu868",
            "--dr",
            "8",
        ],
    ] {
        let stderr = run_err(args);
        assert!(stderr.contains("has no data rate DR"), "{stderr}");
    }
    // The tagged WAKE, the largest message, fits US915 DR0 exactly.
    let out = fields(&run_ok(&[
        "lora",
        "encode",
        "wake",
        "--campaign",
        "1",
        "--in",
        "1m",
        "--window",
        "1m",
        "--network",
        "0",
        "--version",
        "1.0.0",
        "--region",
        "us915",
        "--dr",
        "0",
    ]));
    assert_eq!(out["hex"].len(), 22);
}

#[test]
fn garbage_to_decode_is_a_clear_error() {
    let stderr = run_err(&["lora", "decode", "not a payload!"]);
    assert!(
        stderr.starts_with("otavan: \"not a payload!\" is neither hex")
            && stderr.contains("nor base64"),
        "{stderr}"
    );
    let stderr = run_err(&["lora", "decode", "110007"]);
    assert_eq!(
        stderr.trim(),
        "otavan: cannot decode the payload: WAKE (code 1) must be 7 or 11 bytes, got 3"
    );
    let stderr = run_err(&["lora", "decode", "2100"]);
    assert!(stderr.contains("unsupported codec version 2"), "{stderr}");
    let stderr = run_err(&["lora", "decode", ""]);
    assert!(stderr.contains("empty"), "{stderr}");
}

#[test]
fn region_and_data_rate_go_together() {
    let output = otavan()
        .args(["lora", "encode", "status-request", "--region", "US915"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--dr"));
    let output = otavan()
        .args([
            "lora",
            "encode",
            "status-request",
            "--region",
            "AS923",
            "--dr",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown region"));
}
