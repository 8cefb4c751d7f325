//! The golden vectors in `tests/vectors/lora.json`, shared with the
//! JavaScript codec for network-server consoles
//! (`examples/codec/otavan-codec.js`): checked here against the Rust
//! codec, and the JavaScript codec run against them with node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use otavan_protocol::lora::{CodecError, DownlinkCommand, StatusUplink, VersionTag, Wake};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vectors() -> Value {
    let path = root().join("protocol/tests/vectors/lora.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in the vectors"))
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

/// The vectors' name for a codec error.
fn kind(error: &CodecError) -> &'static str {
    match error {
        CodecError::Empty => "empty",
        CodecError::UnsupportedVersion(_) => "unsupported_version",
        CodecError::UnknownCommand(_) => "unknown_command",
        CodecError::BadLength { .. } => "bad_length",
        CodecError::OutOfRange { .. } => "out_of_range",
        CodecError::NonCanonical { .. } => "non_canonical",
        CodecError::ReservedBits(_) => "reserved_bits",
    }
}

#[test]
fn golden_vectors_match_the_rust_codec() {
    let v = vectors();
    for case in list(&v, "downlinks") {
        let command = DownlinkCommand::decode(&bytes(case)).unwrap();
        assert_eq!(
            serde_json::to_value(command).unwrap(),
            case["json"],
            "{case}"
        );
        assert_eq!(command.encode(), bytes(case), "{case}");
    }
    for case in list(&v, "uplinks") {
        let status = StatusUplink::decode(&bytes(case)).unwrap();
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            case["json"],
            "{case}"
        );
        assert_eq!(status.encode(), bytes(case), "{case}");
    }
    for case in list(&v, "encode") {
        let json = &case["json"];
        let secs = |key: &str| Duration::from_secs(json[key].as_u64().unwrap());
        let tag = json["version_tag"]
            .as_str()
            .map(|t| t.parse::<VersionTag>().unwrap());
        let wake = Wake::new(
            json["campaign"].as_u64().unwrap() as u16,
            secs("delay_s"),
            secs("window_s"),
            json["network"].as_u64().unwrap() as u8,
            tag,
        );
        match case["error"].as_str() {
            Some(error) => assert_eq!(kind(&wake.unwrap_err()), error, "{case}"),
            None => assert_eq!(wake.unwrap().encode(), bytes(case), "{case}"),
        }
    }
    for case in list(&v, "invalid_downlinks") {
        let error = DownlinkCommand::decode(&bytes(case)).unwrap_err();
        assert_eq!(kind(&error), case["error"], "{case}");
    }
    for case in list(&v, "invalid_uplinks") {
        let error = StatusUplink::decode(&bytes(case)).unwrap_err();
        assert_eq!(kind(&error), case["error"], "{case}");
    }
}

#[test]
fn the_javascript_codec_passes_the_golden_vectors() {
    let output = Command::new("node")
        .arg(root().join("examples/codec/otavan-codec.test.js"))
        .arg(root().join("protocol/tests/vectors/lora.json"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run node ({e}): run .ci/setup (apt-get install nodejs)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
