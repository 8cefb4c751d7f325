//! `otavan release sign` and `release certify`/`rotate-key` on real trees,
//! and what the server then offers: counters fixed once signed, the
//! timestamp naming the latest release, the root certificate, and the
//! descriptor of the version a meter reports, all named in the manifest
//! and served over HTTP.

use otavan_protocol::descriptor::{KeyPair, SignedDescriptor};
use otavan_protocol::root::RootCertificate;
use otavan_protocol::signed::Envelope;
use otavan_protocol::timestamp::Timestamp;
use otavan_server::certify::{Terms, certify};
use otavan_server::sign::{SignError, Signing, sign_release};

use crate::harness::{TestServer, tree, write};

const NOW: u64 = 1_767_225_600;

fn keys() -> KeyPair {
    KeyPair::from_seed([3; 32])
}

fn sign(root: &std::path::Path, expires: u64) -> Result<Vec<(String, u64, bool)>, SignError> {
    let keys = keys();
    let signing = Signing {
        keys: &[&keys],
        now: NOW,
        expires,
        timestamp_expires: NOW + 7 * 86_400,
    };
    Ok(sign_release(root, &signing)?
        .into_iter()
        .map(|s| (s.version.to_string(), s.counter, s.new))
        .collect())
}

fn descriptor(
    root: &std::path::Path,
    version: &str,
) -> otavan_protocol::descriptor::TargetDescriptor {
    let bytes = std::fs::read(root.join(format!("target_{version}.json"))).unwrap();
    serde_json::from_slice::<SignedDescriptor>(&bytes)
        .unwrap()
        .verify(&keys().public())
        .unwrap()
}

/// The reproduction: a routine re-sign gave every version a new
/// counter above the highest, so 1.0.0 ended above the 1.1.0 meters ran.
#[test]
fn re_signing_renews_the_expiry_and_keeps_every_counter() {
    let root = tree(&[("1.0.0/flash/main.py", b"a"), ("1.1.0/flash/main.py", b"b")]);
    let first = sign(root.path(), 2_000_000_000).unwrap();
    assert_eq!(
        first,
        [("1.0.0".into(), 1, true), ("1.1.0".into(), 2, true)]
    );
    let again = sign(root.path(), 3_000_000_000).unwrap();
    assert_eq!(
        again,
        [("1.0.0".into(), 1, false), ("1.1.0".into(), 2, false)]
    );
    assert_eq!(descriptor(root.path(), "1.0.0").expires, 3_000_000_000);
    // A new version gets the next counter; the old ones keep theirs.
    write(root.path(), "1.2.0/flash/main.py", b"c");
    let third = sign(root.path(), 3_000_000_000).unwrap();
    assert_eq!(
        third,
        [
            ("1.0.0".into(), 1, false),
            ("1.1.0".into(), 2, false),
            ("1.2.0".into(), 3, true)
        ]
    );
}

#[test]
fn a_new_version_below_a_signed_one_is_refused_and_nothing_is_written() {
    let root = tree(&[("1.1.0/flash/main.py", b"b")]);
    sign(root.path(), 2_000_000_000).unwrap();
    let before = std::fs::read(root.path().join("target_1.1.0.json")).unwrap();
    write(root.path(), "1.0.5/flash/main.py", b"a");
    let error = sign(root.path(), 3_000_000_000).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("1.0.5 is below 1.1.0, already signed with counter 1"),
        "{error}"
    );
    assert!(!root.path().join("target_1.0.5.json").exists());
    assert_eq!(
        std::fs::read(root.path().join("target_1.1.0.json")).unwrap(),
        before
    );
}

#[test]
fn an_unreadable_existing_descriptor_stops_signing() {
    let root = tree(&[("1.0.0/flash/main.py", b"a"), ("target_1.0.0.json", b"{")]);
    let error = sign(root.path(), 2_000_000_000).unwrap_err();
    assert!(
        error.to_string().contains("counter must be kept"),
        "{error}"
    );
}

#[test]
fn the_timestamp_names_the_latest_release() {
    let root = tree(&[("1.0.0/flash/main.py", b"a"), ("1.1.0/flash/main.py", b"b")]);
    sign(root.path(), 2_000_000_000).unwrap();
    let bytes = std::fs::read(root.path().join("timestamp.json")).unwrap();
    let envelope: Envelope = serde_json::from_slice(&bytes).unwrap();
    let timestamp = Timestamp::open(&envelope, &[keys().public()], 1).unwrap();
    assert_eq!(
        (timestamp.version.as_str(), timestamp.counter),
        ("1.1.0", 2)
    );
    assert_eq!(
        (timestamp.issued, timestamp.expires),
        (NOW, NOW + 7 * 86_400)
    );
}

#[tokio::test]
async fn the_manifest_names_every_signed_file_and_the_server_serves_them() {
    let root = tree(&[("1.0.0/flash/main.py", b"a"), ("1.1.0/flash/main.py", b"b")]);
    let root_key = KeyPair::from_seed([1; 32]);
    certify(
        root.path(),
        &root_key,
        &Terms {
            keys: vec![keys().public()],
            expires: 2_000_000_000,
            ..Terms::default()
        },
    )
    .unwrap();
    sign(root.path(), 2_000_000_000).unwrap();
    let server = TestServer::start(root.path()).await;
    let manifest = server
        .get("/manifest.json?current_ver=1.0.0", &[])
        .await
        .json();
    let host = "http://van.local:8000";
    assert_eq!(manifest["descriptor"], format!("{host}/target_1.1.0.json"));
    assert_eq!(
        manifest["previous_descriptor"],
        format!("{host}/target_1.0.0.json")
    );
    assert_eq!(manifest["root"], format!("{host}/root.json"));
    assert_eq!(manifest["timestamp"], format!("{host}/timestamp.json"));
    let root_json = server.get("/root.json", &[]).await.body;
    let envelope: Envelope = serde_json::from_slice(&root_json).unwrap();
    let certificate = RootCertificate::open(&envelope, &root_key.public()).unwrap();
    assert_eq!(certificate.keys, [keys().public().to_text()]);
    let timestamp = server.get("/timestamp.json", &[]).await.body;
    assert!(serde_json::from_slice::<Envelope>(&timestamp).is_ok());
    // A meter at a version the release does not sign gets no
    // previous_descriptor; a full install neither.
    for query in ["?current_ver=0.9.0", ""] {
        let manifest = server
            .get(&format!("/manifest.json{query}"), &[])
            .await
            .json();
        assert!(manifest.get("previous_descriptor").is_none(), "{query}");
    }
}
