//! The meter confirms itself or reverts (issue 13, part 5): a new version
//! is on trial until its self-test passes; it is reverted when the test
//! fails, when its starts run out unconfirmed, or when the bootloader fell
//! back to the old image; the van hears why. Power cuts anywhere in a
//! counted start, a self-confirm or a revert end exactly at the old or the
//! new version.

use otavan_client::confirm::Confirmation;
use otavan_client::health::{DefaultCheck, Evidence, Hook};
use otavan_client::slots::{BootState, FileSlots, FirmwareSlots, Slot};
use otavan_client::transport::MemoryTransport;
use otavan_client::{EngineConfig, EngineError, Recovery};
use otavan_protocol::UpdateState;

use crate::crash::assert_exactly;
use crate::harness::{NEW, OLD, Release, TestMeter, new_engine};

/// The bootloader gave up on the new image and booted the old slot.
fn fall_back(meter: &TestMeter) {
    FileSlots::new(meter.storage())
        .set_state(BootState {
            boot: Slot::A,
            pending: false,
        })
        .unwrap();
}

/// A meter updated to NEW, on trial, over `transport`.
async fn on_trial(release: &Release, transport: &MemoryTransport) -> TestMeter {
    let meter = TestMeter::provisioned(release, OLD);
    meter.engine(transport.clone()).update().await.unwrap();
    assert!(meter.meter().status().unwrap().pending_confirm);
    meter
}

fn failed_reports(transport: &MemoryTransport) -> Vec<String> {
    transport
        .reports()
        .into_iter()
        .filter(|r| r.state == UpdateState::Failed)
        .map(|r| r.error.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn after_a_bootloader_fallback_status_shows_the_old_version_and_confirm_refuses() {
    // The reproduction: the journal says Applied, the bootloader
    // booted the old slot. Status showed the new version, and confirm
    // made it permanent.
    let release = Release::sample();
    let meter = on_trial(&release, &release.transport()).await;
    fall_back(&meter);
    let status = meter.meter().status().unwrap();
    assert_eq!(status.version.as_str(), OLD);
    assert!(!status.pending_confirm);
    assert_eq!(status.boot_slot, Slot::A);
    let error = meter.meter().confirm().unwrap_err();
    assert!(matches!(error, EngineError::BootMismatch { .. }), "{error}");
    assert!(error.to_string().contains("booted slot a"), "{error}");
    assert!(
        meter.meter().state().unwrap().update.is_some(),
        "nothing confirmed"
    );
}

#[tokio::test]
async fn recovery_follows_the_bootloader_back_and_the_next_van_hears_why() {
    let release = Release::sample();
    let meter = on_trial(&release, &release.transport()).await;
    fall_back(&meter);
    let Recovery::Reverted(revert) = meter.meter().recover().unwrap() else {
        panic!("the files follow the bootloader back");
    };
    assert!(
        revert.reason.contains("bootloader booted slot a"),
        "{}",
        revert.reason
    );
    assert_exactly(&meter, &release, OLD);
    assert_eq!(meter.meter().status().unwrap().reverted, Some(revert));

    // The next van pass: FAILED with the reason first, then the update.
    let transport = release.transport();
    meter.engine(transport.clone()).update().await.unwrap();
    let first = transport.reports().remove(0);
    assert_eq!(first.state, UpdateState::Failed);
    assert_eq!(
        (first.from_version.as_str(), first.to_version.as_str()),
        (OLD, NEW)
    );
    let error = first.error.unwrap();
    assert!(
        error.starts_with("reverted to 1.0.0: the bootloader"),
        "{error}"
    );
    assert_eq!(meter.meter().state().unwrap().reverted, None, "told once");
    meter.assert_at(&release, NEW);
}

#[tokio::test]
async fn the_meter_confirms_itself_once_the_van_heard_it_and_an_uplink_went_out() {
    let release = Release::sample();
    let transport = release.transport();
    let meter = on_trial(&release, &transport).await;
    let engine = meter.engine(transport.clone());
    // The UPDATED report reached the van; an uplink is what is missing.
    assert_eq!(
        engine.boot().await.unwrap(),
        Confirmation::Waiting {
            version: NEW.parse().unwrap(),
            missing: "a LoRaWAN uplink".into()
        }
    );
    assert_eq!(
        engine.self_test(Evidence::UPLINK).await.unwrap(),
        Confirmation::Confirmed(NEW.parse().unwrap())
    );
    assert!(!meter.meter().status().unwrap().pending_confirm);
    assert!(!meter.root().join(".otavan/backup").exists());
    assert_exactly(&meter, &release, NEW);
    assert_eq!(
        engine.self_test(Evidence::UPLINK).await.unwrap(),
        Confirmation::Settled
    );
}

#[tokio::test]
async fn a_version_the_van_never_heard_stays_on_trial() {
    let release = Release::sample();
    let transport = release.transport();
    transport.fail_reports(true);
    let meter = on_trial(&release, &transport).await;
    let result = meter
        .engine(transport.clone())
        .self_test(Evidence::UPLINK)
        .await
        .unwrap();
    assert_eq!(
        result,
        Confirmation::Waiting {
            version: NEW.parse().unwrap(),
            missing: "a report delivered to the van".into()
        }
    );
    assert!(meter.meter().status().unwrap().pending_confirm);
}

#[tokio::test]
async fn a_version_on_trial_the_van_never_heard_confirms_when_the_next_van_hears_it() {
    let release = Release::sample();
    let transport = release.transport();
    transport.fail_reports(true);
    let meter = on_trial(&release, &transport).await;
    let engine = meter.engine(transport.clone());
    assert!(matches!(
        engine.self_test(Evidence::UPLINK).await.unwrap(),
        Confirmation::Waiting { .. }
    ));
    // The next pass: the van hears the meter runs 1.1.0, which confirms
    // it, and the cycle goes on (nothing newer here) instead of being
    // refused as pending.
    transport.fail_reports(false);
    let outcome = engine.update().await.unwrap();
    assert_eq!(
        outcome,
        otavan_client::Outcome::UpToDate {
            version: NEW.parse().unwrap()
        }
    );
    assert!(!meter.meter().status().unwrap().pending_confirm);
    let told = transport.reports().pop().unwrap();
    assert_eq!(
        (told.state, told.to_version.as_str()),
        (UpdateState::Updated, NEW)
    );
    assert_exactly(&meter, &release, NEW);
}

#[tokio::test]
async fn an_update_never_confirmed_is_reverted_when_its_boots_run_out() {
    let release = Release::sample();
    let transport = release.transport();
    let meter = on_trial(&release, &transport).await;
    let engine = meter.engine(transport.clone());
    for boot in 1..=3 {
        let result = engine.boot().await.unwrap();
        assert!(matches!(result, Confirmation::Waiting { .. }), "{result:?}");
        assert_eq!(meter.meter().status().unwrap().boots, boot);
    }
    let Confirmation::Reverted(revert) = engine.boot().await.unwrap() else {
        panic!("the fourth start reverts");
    };
    assert_eq!(revert.reason, "1.1.0 was not confirmed within 3 boots");
    assert_exactly(&meter, &release, OLD);
    // The van was in reach: it heard at once, and the notice is gone.
    let failed = failed_reports(&transport);
    assert_eq!(
        failed,
        ["reverted to 1.0.0: 1.1.0 was not confirmed within 3 boots"]
    );
    assert_eq!(meter.meter().status().unwrap().reverted, None);
}

#[tokio::test]
async fn a_revert_no_van_heard_is_reported_by_the_next_pass() {
    let release = Release::sample();
    let transport = release.transport();
    let meter = on_trial(&release, &transport).await;
    let mut config = EngineConfig::new("meter-1");
    config.max_boots = 0;
    transport.set_offline(true);
    let engine = new_engine(meter.meter(), transport.clone(), config);
    assert!(matches!(
        engine.boot().await.unwrap(),
        Confirmation::Reverted(_)
    ));
    assert!(meter.meter().status().unwrap().reverted.is_some());
    assert!(failed_reports(&transport).is_empty());
    // Back in reach: told before anything else, then the update again.
    transport.set_offline(false);
    meter.engine(transport.clone()).update().await.unwrap();
    assert_eq!(
        failed_reports(&transport),
        ["reverted to 1.0.0: 1.1.0 was not confirmed within 0 boots"]
    );
    assert_eq!(meter.meter().status().unwrap().reverted, None);
}

#[tokio::test]
async fn a_failing_hook_reverts_at_once_and_a_passing_one_confirms() {
    let release = Release::sample();
    let check = |command: &str| DefaultCheck {
        van_report: true,
        uplink: false,
        hook: Some(Hook::new(command)),
    };
    let transport = release.transport();
    let meter = on_trial(&release, &transport).await;
    let engine = meter.engine(transport.clone()).checking(check("exit 3"));
    let Confirmation::Reverted(revert) = engine.boot().await.unwrap() else {
        panic!("a failing hook reverts");
    };
    assert!(revert.reason.contains("exited with 3"), "{}", revert.reason);
    assert_exactly(&meter, &release, OLD);
    let failed = failed_reports(&transport);
    assert!(failed[0].contains("self-test failed"), "{failed:?}");

    let meter = on_trial(&release, &transport).await;
    let engine = meter
        .engine(transport.clone())
        .checking(check("test \"$OTAVAN_VERSION\" = 1.1.0"));
    assert_eq!(
        engine.boot().await.unwrap(),
        Confirmation::Confirmed(NEW.parse().unwrap())
    );
    assert_exactly(&meter, &release, NEW);
}

#[tokio::test]
async fn confirming_by_hand_still_works_and_ends_the_trial() {
    let release = Release::sample();
    let meter = on_trial(&release, &release.transport()).await;
    meter.meter().count_boot(3).unwrap();
    meter.meter().confirm().unwrap();
    let status = meter.meter().status().unwrap();
    assert_eq!((status.pending_confirm, status.boots), (false, 0));
    assert!(matches!(
        meter.meter().count_boot(3).unwrap(),
        otavan_client::confirm::BootCount::Settled
    ));
}

/// Operations `run` takes on a fresh meter prepared by `prepare`.
async fn count_ops<P, R>(release: &Release, prepare: P, run: R) -> u64
where
    P: AsyncFn(&TestMeter),
    R: AsyncFn(&crate::harness::FaultyEngine),
{
    let meter = TestMeter::provisioned(release, OLD);
    prepare(&meter).await;
    let (engine, storage) = meter.faulty_engine(release.transport(), None);
    run(&engine).await;
    storage.ops()
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_counted_boot_keeps_the_new_version_on_trial() {
    let release = Release::sample();
    let prepare = async |meter: &TestMeter| {
        meter.engine(release.transport()).update().await.unwrap();
    };
    let total = count_ops(&release, &prepare, async |engine| {
        engine.boot().await.unwrap();
    })
    .await;
    assert!(total > 0);
    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        prepare(&meter).await;
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.boot().await.is_err(), "cut {cut}");
        assert_eq!(meter.meter().recover().unwrap(), Recovery::Clean);
        assert_exactly(&meter, &release, NEW);
        let status = meter.meter().status().unwrap();
        assert!(
            status.pending_confirm && status.boots <= 1,
            "cut {cut}: {status:?}"
        );
    }
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_self_confirm_keeps_the_new_version() {
    let release = Release::sample();
    let prepare = async |meter: &TestMeter| {
        meter.engine(release.transport()).update().await.unwrap();
    };
    let total = count_ops(&release, &prepare, async |engine| {
        engine.self_test(Evidence::UPLINK).await.unwrap();
    })
    .await;
    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        prepare(&meter).await;
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(
            engine.self_test(Evidence::UPLINK).await.is_err(),
            "cut {cut}"
        );
        meter.meter().recover().unwrap();
        assert_exactly(&meter, &release, NEW);
        // The next start finishes what the cut stopped.
        let engine = meter.engine(release.transport());
        let result = engine.self_test(Evidence::UPLINK).await.unwrap();
        assert!(
            matches!(result, Confirmation::Confirmed(_) | Confirmation::Settled),
            "cut {cut}: {result:?}"
        );
        assert!(!meter.meter().status().unwrap().pending_confirm);
        assert!(!meter.root().join(".otavan/backup").exists(), "cut {cut}");
        assert_exactly(&meter, &release, NEW);
    }
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_an_auto_revert_ends_old_or_on_trial() {
    let release = Release::sample();
    // On trial with its starts used up: the next start reverts.
    let prepare = async |meter: &TestMeter| {
        meter.engine(release.transport()).update().await.unwrap();
        for _ in 0..3 {
            meter.meter().count_boot(3).unwrap();
        }
    };
    let total = count_ops(&release, &prepare, async |engine| {
        engine.boot().await.unwrap();
    })
    .await;
    assert!(total > 10, "{total}");
    let (mut ended_old, mut ended_new) = (0, 0);
    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        prepare(&meter).await;
        let transport = release.transport();
        let (engine, _) = meter.faulty_engine(transport.clone(), Some(cut));
        assert!(engine.boot().await.is_err(), "cut {cut}");
        meter.meter().recover().unwrap();
        if meter.version() == NEW {
            assert_exactly(&meter, &release, NEW);
            ended_new += 1;
            // Power back: this start reverts, and tells the van.
            let result = meter.engine(transport.clone()).boot().await.unwrap();
            assert!(matches!(result, Confirmation::Reverted(_)), "cut {cut}");
        } else {
            ended_old += 1;
            // Why is never lost: kept until a van hears it.
            meter.engine(transport.clone()).update().await.unwrap();
        }
        // The van hears at least once (twice when the cut came between
        // its answer and the meter forgetting the notice).
        let failed = failed_reports(&transport);
        assert!(!failed.is_empty(), "cut {cut}: the van never heard");
        for error in failed {
            assert_eq!(
                error, "reverted to 1.0.0: 1.1.0 was not confirmed within 3 boots",
                "cut {cut}"
            );
        }
        assert_eq!(meter.meter().status().unwrap().reverted, None);
        if meter.version() == OLD {
            assert_exactly(&meter, &release, OLD);
        }
    }
    assert!(
        ended_old > 0 && ended_new > 0,
        "old {ended_old}, new {ended_new}"
    );
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_following_the_bootloader_back_ends_old() {
    let release = Release::sample();
    let prepare = async |meter: &TestMeter| {
        meter.engine(release.transport()).update().await.unwrap();
        fall_back(meter);
    };
    let total = count_ops(&release, &prepare, async |engine| {
        engine.meter().recover().unwrap();
    })
    .await;
    assert!(total > 10, "{total}");
    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        prepare(&meter).await;
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.meter().recover().is_err(), "cut {cut}");
        // Whatever the cut left, the next start puts the meter at OLD
        // (the booted image never was anything else).
        let status = meter.meter().status().unwrap();
        assert_eq!(status.version.as_str(), OLD, "cut {cut}");
        meter.meter().recover().unwrap();
        assert_exactly(&meter, &release, OLD);
        let reverted = meter.meter().status().unwrap().reverted;
        assert!(
            reverted.is_some_and(|r| r.reason.contains("bootloader")),
            "cut {cut}"
        );
    }
}
