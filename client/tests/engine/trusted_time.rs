//! Trusted time: expiry is judged at the latest of the floor the meter
//! keeps, the network's authenticated time and its own clock. A clock
//! that reset to 1970 revives nothing; the network's time outlives a
//! reboot through the floor; the meter's clock alone never extends trust.

use std::time::Duration;

use otavan_client::clock::SystemEntropy;
use otavan_client::device::{InitOptions, init};
use otavan_client::{Engine, EngineConfig, EngineError};
use otavan_protocol::descriptor::KeyPair;

use crate::harness::{FixedClock, NEW, NOW, OLD, Release, TestMeter, write};

fn keys() -> KeyPair {
    KeyPair::from_seed([42; 32])
}

/// The sample release signed (single-key mode) until `expires`.
fn signed_until(expires: u64) -> Release {
    let mut release = Release::sample();
    release.sign(&keys(), expires);
    release
}

/// An engine for `meter` whose own clock reads `rtc`.
fn engine_at(
    meter: &TestMeter,
    release: &Release,
    rtc: u64,
) -> Engine<
    otavan_client::storage::DirStorage,
    otavan_client::slots::FileSlots<otavan_client::storage::DirStorage>,
    otavan_client::transport::MemoryTransport,
> {
    Engine::new(
        meter.meter(),
        release.transport(),
        EngineConfig::new("meter-1"),
        FixedClock::at(rtc),
        SystemEntropy,
    )
}

/// The reproduction: a meter whose clock reset to 1970 accepted
/// every expired descriptor. Provisioned by `otavan device init`, it
/// keeps the time of its provisioning as the earliest it will believe.
#[tokio::test]
async fn a_meter_whose_clock_reset_to_1970_refuses_an_expired_descriptor() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Expired yesterday.
    let release = signed_until(now - 86_400);
    let dir = tempfile::TempDir::new().unwrap();
    let key_file = dir.path().join("release.pub");
    std::fs::write(&key_file, keys().public().to_file()).unwrap();
    let image_file = dir.path().join("firmware.bin");
    std::fs::write(&image_file, release.image(OLD)).unwrap();
    let meter = TestMeter::empty();
    for (path, bytes) in release.tree(OLD) {
        write(&meter.root(), &path, &bytes);
    }
    let options = InitOptions {
        firmware: Some(&image_file),
        public_key: Some(&key_file),
        ..InitOptions::default()
    };
    init(&meter.root(), &OLD.parse().unwrap(), &options).unwrap();
    assert!(meter.meter().state().unwrap().trusted_time >= now);
    // The RTC reads 1970.
    let error = engine_at(&meter, &release, 0).update().await.unwrap_err();
    assert!(matches!(error, EngineError::Untrusted(_)), "{error}");
    assert!(error.to_string().contains("expired"), "{error}");
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn the_networks_time_decides_when_the_clock_is_wrong() {
    // Valid until a day after NOW; the meter's clock reads 1970.
    let release = signed_until(NOW + 86_400);
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    let engine = engine_at(&meter, &release, 0);
    // The network says it is two days after NOW: expired.
    engine.network_time().set(
        Duration::from_secs(NOW + 2 * 86_400),
        tokio::time::Instant::now(),
    );
    let error = engine.update().await.unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    meter.assert_at(&release, OLD);
    // The network's time became the meter's floor: after a reboot (no
    // network time yet, the clock still at 1970) the release stays expired.
    assert!(meter.meter().state().unwrap().trusted_time >= NOW + 2 * 86_400);
    let error = engine_at(&meter, &release, 0).update().await.unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn network_time_before_the_expiry_installs_whatever_the_clock_says() {
    let release = signed_until(NOW + 86_400);
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    let engine = engine_at(&meter, &release, 0);
    engine
        .network_time()
        .set(Duration::from_secs(NOW), tokio::time::Instant::now());
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);
    assert!(meter.meter().state().unwrap().trusted_time >= NOW);
}

#[tokio::test]
async fn the_meters_clock_alone_never_extends_trust() {
    // The floor says the release expired; a clock set back does not help.
    let release = signed_until(NOW);
    let meter = TestMeter::provisioned_with(&release, OLD, Some(&keys().public()));
    meter.meter().raise_trusted_time(NOW).unwrap();
    let error = engine_at(&meter, &release, NOW - 365 * 86_400)
        .update()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
    // The floor is never lowered.
    meter.meter().raise_trusted_time(NOW - 1).unwrap();
    assert_eq!(meter.meter().state().unwrap().trusted_time, NOW);
    meter.assert_at(&release, OLD);
}
