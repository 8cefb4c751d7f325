//! Downgrades: a meter never goes to a version that is not above the one
//! it runs, however the older release is signed; an unsigned meter only
//! when its operator allows it (`EngineConfig::allow_downgrade`).

use otavan_client::{EngineConfig, EngineError};
use otavan_protocol::UpdateState;
use otavan_protocol::descriptor::{KeyPair, SignedDescriptor};

use crate::harness::{NEW, OLD, Release, TestMeter, new_engine};

fn keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

/// A meter of `release` confirmed at [`NEW`] (updated from [`OLD`]).
async fn confirmed_at_new(release: &Release, signed: bool) -> TestMeter {
    let key = keys().public();
    let meter = TestMeter::provisioned_with(release, OLD, signed.then_some(&key));
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().confirm().unwrap();
    meter.assert_at(release, NEW);
    meter
}

/// A transport offering a meter at NEW only OLD's genuine files, image and
/// (when signed) descriptor.
fn downgrade_transport(release: &Release) -> otavan_client::transport::MemoryTransport {
    let transport = release.transport();
    transport.set_manifest(NEW, release.downgrade_manifest_json());
    transport
}

/// The refusal: one line saying why, FAILED reported, nothing moved.
async fn assert_downgrade_refused(
    release: &Release,
    meter: &TestMeter,
    transport: otavan_client::transport::MemoryTransport,
) {
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, EngineError::Downgrade { .. }), "{text}");
    assert!(
        text.contains("1.0.0 is not above the installed 1.1.0"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    meter.assert_at(release, NEW);
    assert!(!meter.meter().status().unwrap().pending_confirm);
    let failed = transport
        .reports()
        .into_iter()
        .find(|r| r.state == UpdateState::Failed)
        .expect("FAILED reported");
    assert_eq!(failed.error.as_deref(), Some(text.as_str()));
    assert_eq!(transport.stats().bytes, 0, "nothing downloaded");
}

/// The reproduction: after a routine re-sign gave 1.0.0 a counter
/// above the 1.1.0 the meter runs, a server offering only 1.0.0's signed
/// descriptor, tree and image took a confirmed 1.1.0 meter back.
#[tokio::test]
async fn a_signed_meter_refuses_an_older_version_whatever_its_counter() {
    let mut release = Release::sample();
    release.sign(&keys(), 4_000_000_000);
    let meter = confirmed_at_new(&release, true).await;
    // 1.0.0 validly signed with a counter far above 1.1.0's, as the old
    // `release sign` produced on every re-sign.
    let mut old = release.descriptor(OLD);
    old.counter = release.descriptor(NEW).counter + 10;
    release.put_descriptor(OLD, &SignedDescriptor::sign(&old, &keys()));
    assert_downgrade_refused(&release, &meter, downgrade_transport(&release)).await;
}

#[tokio::test]
async fn an_unsigned_meter_refuses_a_downgrade() {
    let release = Release::sample();
    let meter = confirmed_at_new(&release, false).await;
    assert_downgrade_refused(&release, &meter, downgrade_transport(&release)).await;
}

#[tokio::test]
async fn an_unsigned_meter_downgrades_when_its_operator_allows_it() {
    let release = Release::sample();
    let meter = confirmed_at_new(&release, false).await;
    let mut config = EngineConfig::new("meter-1");
    config.allow_downgrade = true;
    new_engine(meter.meter(), downgrade_transport(&release), config)
        .update()
        .await
        .unwrap();
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn allowing_downgrades_does_not_open_them_to_a_signed_meter() {
    let mut release = Release::sample();
    release.sign(&keys(), 4_000_000_000);
    let meter = confirmed_at_new(&release, true).await;
    let mut config = EngineConfig::new("meter-1");
    config.allow_downgrade = true;
    let error = new_engine(meter.meter(), downgrade_transport(&release), config)
        .update()
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Downgrade { .. }), "{error}");
    meter.assert_at(&release, NEW);
}
