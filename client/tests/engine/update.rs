//! The happy path, confirm and rollback.

use otavan_client::{EngineError, Outcome};
use otavan_protocol::UpdateState;

use crate::harness::{NEW, OLD, Release, TestMeter, read_dirs};

#[tokio::test]
async fn update_installs_exactly_the_new_version_and_reports_each_state() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let old_dirs = read_dirs(&meter.root());
    let transport = release.transport();
    let outcome = meter.engine(transport.clone()).update().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Updated {
            from: OLD.parse().unwrap(),
            to: NEW.parse().unwrap(),
            bytes: release.update_bytes()
        }
    );
    meter.assert_at(&release, NEW);
    let status = meter.meter().status().unwrap();
    assert!(status.pending_confirm);
    assert_eq!(status.rollback_version.unwrap().as_str(), OLD);

    let states: Vec<UpdateState> = transport.reports().iter().map(|r| r.state).collect();
    use UpdateState::*;
    assert_eq!(
        states,
        [Downloading, Downloaded, Verified, Updating, Updated]
    );
    let last = transport.reports().pop().unwrap();
    assert_eq!(
        (
            last.device_id.as_str(),
            last.from_version.as_str(),
            last.to_version.as_str()
        ),
        ("meter-1", OLD, NEW)
    );
    assert_eq!(last.bytes, Some(release.update_bytes()));

    // Rollback restores the old tree byte for byte, its folders, version and boot slot.
    assert_eq!(meter.meter().rollback().unwrap().as_str(), OLD);
    meter.assert_at(&release, OLD);
    assert_eq!(
        read_dirs(&meter.root()),
        old_dirs,
        "created folders removed again"
    );
    assert!(!meter.meter().status().unwrap().pending_confirm);
    meter.assert_outside_untouched();
}

#[tokio::test]
async fn confirm_makes_it_permanent() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    meter.engine(release.transport()).update().await.unwrap();
    assert_eq!(meter.meter().confirm().unwrap().as_str(), NEW);
    meter.assert_at(&release, NEW);
    let status = meter.meter().status().unwrap();
    assert!(!status.pending_confirm);
    assert!(matches!(
        meter.meter().rollback(),
        Err(EngineError::NothingPending)
    ));
    assert!(matches!(
        meter.meter().confirm(),
        Err(EngineError::NothingPending)
    ));
    // Backups and staging are gone.
    for dir in ["backup", "staging"] {
        assert!(
            !meter.root().join(".otavan").join(dir).exists(),
            "{dir} left behind"
        );
    }
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_pending_update_blocks_another_until_confirmed() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    meter.engine(transport.clone()).update().await.unwrap();
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(
        matches!(error, EngineError::PendingConfirm(ref v) if v.as_str() == NEW),
        "{error}"
    );
    meter.meter().confirm().unwrap();
    let outcome = meter.engine(transport).update().await.unwrap();
    assert_eq!(
        outcome,
        Outcome::UpToDate {
            version: NEW.parse().unwrap()
        }
    );
}

#[tokio::test]
async fn an_update_without_firmware_keeps_the_boot_slot() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    // Serve a manifest with the firmware entry removed.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    manifest.as_object_mut().unwrap().remove("firmware");
    let transport = release.transport();
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    meter.engine(transport).update().await.unwrap();
    assert_eq!(meter.tree(), release.tree(NEW));
    assert_eq!(meter.booted_image(), release.image(OLD));
    meter.meter().rollback().unwrap();
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn reports_that_cannot_be_delivered_do_not_fail_the_update() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    transport.fail_reports(true);
    meter.engine(transport).update().await.unwrap();
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn an_unprovisioned_meter_says_so() {
    let dir = tempfile::TempDir::new().unwrap();
    let storage = otavan_client::storage::DirStorage::new(dir.path()).unwrap();
    let meter = otavan_client::Meter::new(
        storage.clone(),
        otavan_client::slots::FileSlots::new(storage),
    );
    let error = meter.status().unwrap_err();
    assert!(error.to_string().contains("not provisioned"), "{error}");
}

/// A radio that records what it was asked and can refuse to join.
#[derive(Default)]
struct FakeRadio {
    joins: Vec<String>,
    leaves: usize,
    refuse: bool,
}

impl otavan_client::wifi::WifiLink for FakeRadio {
    async fn join(
        &mut self,
        ssid: &str,
        _credentials: &otavan_client::wifi::Credentials,
        _deadline: tokio::time::Instant,
    ) -> Result<(), otavan_client::wifi::WifiError> {
        self.joins.push(ssid.to_owned());
        if self.refuse {
            return Err(otavan_client::wifi::WifiError::Timeout {
                ssid: ssid.to_owned(),
            });
        }
        Ok(())
    }

    async fn leave(&mut self) {
        self.leaves += 1;
    }
}

#[tokio::test]
async fn a_wifi_session_joins_updates_and_always_leaves() {
    use otavan_client::wifi::{Backoff, Credentials, SessionError, VanNetwork, update_within};
    let release = Release::sample();
    let network = VanNetwork {
        ssid: "otavan-van-3".into(),
        credentials: Credentials::Passphrase("secret".into()),
    };
    // A window that is already closing: one attempt, no retry.
    let closes = tokio::time::Instant::now();
    let backoff = Backoff::default();

    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let mut radio = FakeRadio {
        refuse: true,
        ..FakeRadio::default()
    };
    let engine = meter.engine(transport.clone());
    let error = update_within(&mut radio, &network, closes, backoff, None, &engine)
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::Join(_)));
    assert_eq!(transport.stats().manifests, 0, "no network, no request");

    radio.refuse = false;
    transport.set_offline(true);
    let error = update_within(&mut radio, &network, closes, backoff, None, &engine)
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::Update(_)));
    assert_eq!(radio.leaves, 1, "left even though the update failed");

    transport.set_offline(false);
    update_within(&mut radio, &network, closes, backoff, None, &engine)
        .await
        .unwrap();
    assert_eq!(radio.joins, ["otavan-van-3"; 3]);
    assert_eq!(radio.leaves, 2);
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn a_session_tries_again_while_its_window_lasts_and_never_after_it() {
    use otavan_client::wifi::{Backoff, Credentials, VanNetwork, update_within};
    use std::time::Duration;
    let release = Release::sample();
    let network = VanNetwork {
        ssid: "otavan-van-3".into(),
        credentials: Credentials::Open,
    };
    let backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_millis(400),
    };

    // The van out of reach for the first half second of a 5 s window: the
    // meter keeps trying and updates once the link is back. Then a van
    // that never comes back: the meter stops before its 1 s window closes
    // and is as it was.
    let mut radio = FakeRadio::default();
    for (back_after, window) in [
        (Some(Duration::from_millis(500)), Duration::from_secs(5)),
        (None, Duration::from_secs(1)),
    ] {
        let meter = TestMeter::provisioned(&release, OLD);
        let transport = release.transport();
        transport.set_offline(true);
        if let Some(after) = back_after {
            let back = transport.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                back.set_offline(false);
            });
        }
        let closes = tokio::time::Instant::now() + window;
        let engine = meter.engine(transport.clone());
        let outcome = update_within(&mut radio, &network, closes, backoff, None, &engine).await;
        assert!(
            transport.stats().manifests >= 3,
            "gave up early: {outcome:?}"
        );
        if back_after.is_some() {
            outcome.unwrap();
            meter.assert_at(&release, NEW);
        } else {
            assert!(outcome.is_err());
            assert!(
                tokio::time::Instant::now() <= closes,
                "tried after the window"
            );
            meter.assert_at(&release, OLD);
        }
    }
    assert_eq!((radio.joins.len(), radio.leaves), (2, 2));
}

#[tokio::test]
async fn reports_name_each_attempt_with_a_draw_from_the_engines_entropy() {
    use otavan_client::clock::{Entropy, SplitMix};
    use otavan_client::{Engine, EngineConfig};

    use crate::harness::{FixedClock, NOW};

    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = release.transport();
    let mut config = EngineConfig::new("meter-1");
    config.retries = 0;
    let engine = Engine::new(
        meter.meter(),
        transport.clone(),
        config,
        FixedClock::at(NOW),
        SplitMix::new(7),
    );
    // The first attempt is cut mid-download, the second completes.
    transport.cut_after(100);
    assert!(engine.update().await.is_err());
    engine.update().await.unwrap();
    let mut draws = SplitMix::new(7);
    let (first, second) = (draws.next_u64(), draws.next_u64());
    let ids: Vec<String> = transport
        .reports()
        .into_iter()
        .map(|r| r.report_id.unwrap())
        .collect();
    let expected: Vec<String> = [
        (first, "DOWNLOADING"),
        (first, "FAILED"),
        (second, "DOWNLOADING"),
        (second, "DOWNLOADED"),
        (second, "VERIFIED"),
        (second, "UPDATING"),
        (second, "UPDATED"),
    ]
    .iter()
    .map(|(attempt, state)| format!("{attempt:016x}-{state}"))
    .collect();
    assert_eq!(ids, expected);
}
