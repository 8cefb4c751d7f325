//! Root mode: a meter provisioned with the offline root key installs what
//! the release keys its root certificate names sign, at the certificate's
//! threshold, within its counter jump, with an unexpired timestamp naming
//! no newer release. The TUF attacks on that chain, each refused with a
//! one-line reason, FAILED reported, the meter exactly where it was.

use otavan_client::EngineError;
use otavan_client::transport::MemoryTransport;
use otavan_client::trust::Anchor;
use otavan_protocol::UpdateState;
use otavan_protocol::descriptor::{KeyPair, SignedDescriptor};
use otavan_protocol::root::RootCertificate;
use otavan_protocol::signed::Envelope;
use otavan_protocol::timestamp::Timestamp;
use otavan_server::certify::Terms;

use crate::harness::{NEW, NOW, OLD, Release, TestMeter};

const FAR: u64 = 4_000_000_000;
const WEEK: u64 = 7 * 86_400;

pub fn root() -> KeyPair {
    KeyPair::from_seed([1; 32])
}

fn release_key() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

fn second_key() -> KeyPair {
    KeyPair::from_seed([43; 32])
}

fn terms(keys: &[&KeyPair]) -> Terms {
    Terms {
        keys: keys.iter().map(|k| k.public()).collect(),
        expires: FAR,
        ..Terms::default()
    }
}

/// The sample release, certified for the release key and signed by it.
pub fn certified_release() -> Release {
    let mut release = Release::sample();
    release.certify(&root(), &terms(&[&release_key()]));
    release.sign_by(&[&release_key()], FAR, NOW + WEEK);
    release
}

/// A meter of `release` at `version` trusting [`root`].
pub fn root_meter(release: &Release, version: &str) -> TestMeter {
    TestMeter::provisioned_trusting(release, version, Some(&Anchor::Root(root().public())))
}

/// The update must be refused with `expected` in its one-line reason.
async fn refused(release: &Release, meter: &TestMeter, transport: MemoryTransport, expected: &str) {
    let before = meter.tree();
    let version = meter.version();
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, EngineError::Untrusted(_)), "{text}");
    assert!(text.contains(expected), "{text}");
    assert!(!text.contains('\n'));
    assert_eq!(meter.version(), version);
    assert!(meter.tree() == before, "files moved");
    assert_eq!(meter.booted_image(), release.image(&version));
    let failed = transport
        .reports()
        .into_iter()
        .find(|r| r.state == UpdateState::Failed)
        .expect("FAILED reported");
    assert_eq!(failed.error.as_deref(), Some(text.as_str()));
}

#[tokio::test]
async fn a_root_provisioned_meter_installs_what_the_certified_key_signs() {
    let release = certified_release();
    let meter = root_meter(&release, OLD);
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    let state = meter.meter().state().unwrap();
    assert_eq!(state.highest_counter, release.descriptor(NEW).counter);
    // It keeps the certificate it followed and the installed descriptor,
    // and (first signed update) the one of the version it came from.
    let kept: Envelope =
        serde_json::from_slice(&std::fs::read(meter.root().join(".otavan/root.json")).unwrap())
            .unwrap();
    assert_eq!(
        RootCertificate::open(&kept, &root().public())
            .unwrap()
            .version,
        1
    );
    for version in [OLD, NEW] {
        assert!(
            meter
                .root()
                .join(format!(".otavan/descriptors/{version}.json"))
                .exists()
        );
    }
    // Rolled back, the meter is at OLD with OLD's descriptor kept.
    meter.meter().rollback().unwrap();
    meter.assert_at(&release, OLD);
    assert!(meter.root().join(".otavan/descriptors/1.0.0.json").exists());
}

#[tokio::test]
async fn arbitrary_install_a_key_the_root_did_not_certify_is_refused() {
    let mut release = Release::sample();
    release.certify(&root(), &terms(&[&release_key()]));
    // The rogue van signs with its own key; the single-key mode's key
    // would not help it either.
    release.sign_by(&[&KeyPair::from_seed([66; 32])], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    refused(&release, &meter, release.transport(), "does not verify").await;
}

#[tokio::test]
async fn arbitrary_install_a_certificate_not_signed_by_the_root_is_refused() {
    let mut release = Release::sample();
    // The attacker certifies its own key with its own "root".
    let attacker = KeyPair::from_seed([66; 32]);
    release.certify(&attacker, &terms(&[&attacker]));
    release.sign_by(&[&attacker], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    refused(
        &release,
        &meter,
        release.transport(),
        "the van's root certificate signature does not verify with the root key",
    )
    .await;
}

#[tokio::test]
async fn a_meter_without_any_certificate_refuses() {
    let mut release = Release::sample();
    release.sign_by(&[&release_key()], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    refused(&release, &meter, release.transport(), "no root certificate").await;
}

#[tokio::test]
async fn an_expired_root_certificate_is_refused() {
    let mut release = Release::sample();
    let mut short = terms(&[&release_key()]);
    short.expires = NOW;
    release.certify(&root(), &short);
    release.sign_by(&[&release_key()], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    refused(
        &release,
        &meter,
        release.transport(),
        "the root certificate (version 1) expired",
    )
    .await;
}

#[tokio::test]
async fn a_threshold_of_two_needs_two_certified_keys() {
    let mut release = Release::sample();
    let mut two = terms(&[&release_key(), &second_key()]);
    two.threshold = Some(2);
    release.certify(&root(), &two);
    release.sign_by(&[&release_key()], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    refused(
        &release,
        &meter,
        release.transport(),
        "1 certified release key(s) signed it, 2 needed",
    )
    .await;
    // One key signing twice is still one key.
    let descriptor = release.descriptor(NEW);
    let twice = SignedDescriptor::sign_by(&descriptor, &release_key(), &[&release_key()]);
    release.put_descriptor(NEW, &twice);
    refused(&release, &meter, release.transport(), "2 needed").await;
    // Both keys sign: it installs.
    release.sign_by(&[&release_key(), &second_key()], FAR, NOW + WEEK);
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn fast_forward_a_counter_jump_beyond_the_certificate_is_refused() {
    let mut release = Release::sample();
    let mut strict = terms(&[&release_key()]);
    strict.max_counter_jump = Some(5);
    release.certify(&root(), &strict);
    release.sign_by(&[&release_key()], FAR, NOW + WEEK);
    let meter = root_meter(&release, OLD);
    // A validly signed 1.1.0 with a counter far ahead, timestamp to match.
    let mut ahead = release.descriptor(NEW);
    ahead.counter = 1_000_000;
    release.put_descriptor(NEW, &SignedDescriptor::sign(&ahead, &release_key()));
    let timestamp = Timestamp::new(NEW, 1_000_000, NOW, NOW + WEEK);
    release.put_file(
        "timestamp.json",
        &serde_json::to_vec(&timestamp.sign(&[&release_key()])).unwrap(),
    );
    refused(
        &release,
        &meter,
        release.transport(),
        "release counter 1000000 is 1000000 above 0 already installed; the root certificate (version 1) allows at most 5 (fast-forward refused)",
    )
    .await;
    // A jump within the limit installs.
    ahead.counter = 5;
    release.put_descriptor(NEW, &SignedDescriptor::sign(&ahead, &release_key()));
    let timestamp = Timestamp::new(NEW, 5, NOW, NOW + WEEK);
    release.put_file(
        "timestamp.json",
        &serde_json::to_vec(&timestamp.sign(&[&release_key()])).unwrap(),
    );
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn indefinite_freeze_an_expired_timestamp_is_refused() {
    let mut release = Release::sample();
    release.certify(&root(), &terms(&[&release_key()]));
    // The descriptors are good for decades; the timestamp ran out.
    release.sign_by(&[&release_key()], FAR, NOW);
    let meter = root_meter(&release, OLD);
    refused(
        &release,
        &meter,
        release.transport(),
        &format!("the signed timestamp expired at Unix time {NOW}"),
    )
    .await;
}

#[tokio::test]
async fn indefinite_freeze_an_older_release_than_the_timestamp_names_is_refused() {
    let mut release = certified_release();
    // The van keeps offering 1.1.0 (counter 2) after 1.2.0 (counter 3)
    // was published: the current timestamp names 1.2.0.
    let newer = Timestamp::new(
        "1.2.0",
        release.descriptor(NEW).counter + 1,
        NOW,
        NOW + WEEK,
    );
    release.put_file(
        "timestamp.json",
        &serde_json::to_vec(&newer.sign(&[&release_key()])).unwrap(),
    );
    let meter = root_meter(&release, OLD);
    refused(
        &release,
        &meter,
        release.transport(),
        "the signed timestamp names release 1.2.0 (counter 3); the van offers 1.1.0 (counter 2), an older one (freeze refused)",
    )
    .await;
}

#[tokio::test]
async fn a_timestamp_is_required_and_must_be_certified() {
    let release = certified_release();
    let meter = root_meter(&release, OLD);
    let transport = release.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest.as_object_mut().unwrap().remove("timestamp");
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(
        &release,
        &meter,
        transport,
        "the van serves no signed timestamp",
    )
    .await;

    let mut release = certified_release();
    let forged = Timestamp::new(NEW, 2, NOW, FAR).sign(&[&KeyPair::from_seed([66; 32])]);
    release.put_file("timestamp.json", &serde_json::to_vec(&forged).unwrap());
    refused(
        &release,
        &meter,
        release.transport(),
        "timestamp signature does not verify",
    )
    .await;
}

#[tokio::test]
async fn mix_and_match_another_versions_descriptor_is_refused() {
    let release = certified_release();
    let meter = root_meter(&release, OLD);
    // Genuine signed metadata, from the wrong version: OLD's descriptor
    // where NEW's should be. The timestamp names NEW, so it cannot pass.
    let transport = release.transport();
    let old = std::fs::read(release.root().join(format!("target_{OLD}.json"))).unwrap();
    transport.set_file(&format!("/target_{NEW}.json"), old.clone());
    refused(
        &release,
        &meter,
        transport,
        "the signed timestamp names release 1.1.0 (counter 2); the van offers 1.0.0 (counter 1)",
    )
    .await;
    // Even with a timestamp that lets it through, the descriptor must be
    // the manifest's target.
    let mut release = certified_release();
    let stamp = Timestamp::new(OLD, 1, NOW, NOW + WEEK).sign(&[&release_key()]);
    release.put_file("timestamp.json", &serde_json::to_vec(&stamp).unwrap());
    let transport = release.transport();
    transport.set_file(&format!("/target_{NEW}.json"), old);
    refused(
        &release,
        &meter,
        transport,
        "the signed descriptor is for version 1.0.0, the manifest targets 1.1.0",
    )
    .await;
}

#[tokio::test]
async fn endless_data_oversized_metadata_is_cut_off() {
    let release = certified_release();
    let meter = root_meter(&release, OLD);
    let transport = release.transport();
    transport.set_file("/root.json", vec![b' '; 8 * 1024 * 1024]);
    refused(
        &release,
        &meter,
        transport.clone(),
        "cannot fetch the root certificate",
    )
    .await;
    let fetched = transport.stats().bytes;
    assert!(
        fetched < 1024 * 1024,
        "read {fetched} bytes of an endless root.json"
    );
}

/// Key compromise and rotation, end to end on one meter: the attacker
/// holds the release key and signs what it likes (including a huge
/// counter), the operator rotates, and from the new certificate on the
/// meter refuses every signature of the stolen key, even next to the old
/// certificate, while genuine releases signed by the new key install.
#[tokio::test]
async fn key_compromise_rotation_revokes_the_stolen_key() {
    let stolen = release_key();
    let fresh = second_key();
    let genuine = certified_release();
    let meter = root_meter(&genuine, OLD);
    // Before the rotation the meter has seen certificate 1.
    let probe = genuine.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&genuine.manifest_json(OLD)).unwrap();
    manifest["descriptor"] = serde_json::json!(null);
    probe.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    assert!(meter.engine(probe).update().await.is_err());
    assert!(meter.root().join(".otavan/root.json").exists());

    // The attacker's van: certificate 1 (genuine, listing the stolen
    // key) and a 1.1.0 it signed with a huge counter.
    let mut rogue = certified_release();
    let mut forged = rogue.descriptor(NEW);
    forged.counter = u64::MAX / 2;
    rogue.put_descriptor(NEW, &SignedDescriptor::sign(&forged, &stolen));
    let stamp = Timestamp::new(NEW, forged.counter, NOW, NOW + WEEK);
    rogue.put_file(
        "timestamp.json",
        &serde_json::to_vec(&stamp.sign(&[&stolen])).unwrap(),
    );
    refused(&rogue, &meter, rogue.transport(), "fast-forward refused").await;

    // The operator rotates to a fresh key and re-signs; a genuine van
    // carries certificate 2. The meter sees it while this van has no
    // newer release for it (nothing installs, but the certificate sticks).
    let mut rotated = Release::sample();
    std::fs::copy(
        genuine.root().join("root.json"),
        rotated.root().join("root.json"),
    )
    .unwrap();
    otavan_server::certify::rotate(rotated.root(), &root(), &terms(&[&fresh])).unwrap();
    rotated.sign_by(&[&fresh], FAR, NOW + WEEK);
    let only_certificate = rotated.transport();
    only_certificate.remove_file(&format!("/target_{NEW}.json"));
    assert!(meter.engine(only_certificate).update().await.is_err());
    let kept: Envelope =
        serde_json::from_slice(&std::fs::read(meter.root().join(".otavan/root.json")).unwrap())
            .unwrap();
    assert_eq!(
        RootCertificate::open(&kept, &root().public())
            .unwrap()
            .version,
        2
    );

    // The rogue van again, with certificate 1 and a modest counter: the
    // stolen key is revoked for this meter.
    let mut modest = rogue.descriptor(NEW);
    modest.counter = 2;
    rogue.put_descriptor(NEW, &SignedDescriptor::sign(&modest, &stolen));
    rogue.put_file(
        "timestamp.json",
        &serde_json::to_vec(&Timestamp::new(NEW, 2, NOW, NOW + WEEK).sign(&[&stolen])).unwrap(),
    );
    refused(&rogue, &meter, rogue.transport(), "does not verify").await;
    // Without any root.json on offer either.
    let bare = rogue.transport();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&rogue.manifest_json(OLD)).unwrap();
    manifest.as_object_mut().unwrap().remove("root");
    bare.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    refused(&rogue, &meter, bare, "does not verify").await;

    // The genuine release under the new key installs.
    meter.engine(rotated.transport()).update().await.unwrap();
    meter.assert_at(&rotated, NEW);
}

#[tokio::test]
async fn two_different_certificates_with_one_version_are_refused() {
    let release = certified_release();
    let meter = root_meter(&release, OLD);
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().rollback().unwrap();
    let mut other = certified_release();
    let dir = tempfile::TempDir::new().unwrap();
    otavan_server::certify::certify(dir.path(), &root(), &terms(&[&second_key()])).unwrap();
    other.put_file(
        "root.json",
        &std::fs::read(dir.path().join("root.json")).unwrap(),
    );
    refused(
        &other,
        &meter,
        other.transport(),
        "the van's root certificate version 1 differs from the one this meter holds",
    )
    .await;
}
