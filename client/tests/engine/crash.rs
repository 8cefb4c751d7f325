//! Power cuts at every storage operation of an update, a rollback and a
//! confirm: after recovery the meter is exactly at the old or the new
//! version (files, folders, version, booted image), and a later pass still
//! gets it to the new one. Run over the sample release and over one where
//! files and folders swap places.

use otavan_client::Recovery;

use std::time::Duration;

use crate::harness::{NEW, NOW, OLD, Release, TestMeter, pass, read_dirs};
use crate::roles::{certified_release, root_meter};
use crate::transitions::swapped_release;

/// Exactly at `version`: files, version and image, and its folders too.
pub fn assert_exactly(meter: &TestMeter, release: &Release, version: &str) {
    meter.assert_at(release, version);
    let fresh = TestMeter::provisioned(release, version);
    assert_eq!(
        read_dirs(&meter.root()),
        read_dirs(&fresh.root()),
        "folders differ from {version}'s"
    );
}

/// Operations a clean update takes, counted by a fault storage that never cuts.
async fn count_update_ops(release: &Release) -> u64 {
    let meter = TestMeter::provisioned(release, OLD);
    let (engine, storage) = meter.faulty_engine(release.transport(), None);
    engine.update().await.unwrap();
    storage.ops()
}

async fn a_power_cut_at_any_operation_of_an_update_leaves_old_or_new(release: &Release) {
    let total = count_update_ops(release).await;
    assert!(total > 50, "the update takes {total} operations");
    let (mut ended_old, mut ended_new) = (0, 0);
    for cut in 0..total {
        let meter = TestMeter::provisioned(release, OLD);
        let (engine, storage) = meter.faulty_engine(release.transport(), Some(cut));
        let result = engine.update().await;
        assert!(storage.is_cut(), "cut {cut} of {total} never happened");
        assert!(
            result.is_err(),
            "cut {cut}: the update cannot succeed without power"
        );

        // Power returns: a fresh process recovers.
        let recovery = meter.meter().recover().unwrap();
        if meter.version() == NEW {
            assert_eq!(recovery, Recovery::Clean);
            assert_exactly(&meter, release, NEW);
            assert!(meter.meter().status().unwrap().pending_confirm);
            ended_new += 1;
        } else {
            assert_exactly(&meter, release, OLD);
            ended_old += 1;
            // The next van pass completes the update.
            meter.engine(release.transport()).update().await.unwrap();
            assert_exactly(&meter, release, NEW);
        }
        // And the update rolls back byte for byte from there.
        meter.meter().rollback().unwrap();
        assert_exactly(&meter, release, OLD);
        meter.assert_outside_untouched();
    }
    // Cuts before the commit end old; a cut at the commit's directory sync ends new.
    assert!(
        ended_old > 0 && ended_new > 0,
        "old {ended_old}, new {ended_new}"
    );
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_an_update_leaves_old_or_new_sample() {
    a_power_cut_at_any_operation_of_an_update_leaves_old_or_new(&Release::sample()).await;
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_file_folder_swap_leaves_old_or_new() {
    a_power_cut_at_any_operation_of_an_update_leaves_old_or_new(&swapped_release()).await;
}

#[tokio::test]
async fn after_a_power_cut_anywhere_the_next_pass_fetches_only_what_is_missing() {
    let release = Release::sample();
    let needed = release.update_bytes();
    let total = count_update_ops(&release).await;
    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        let transport = release.transport();
        let (engine, _) = meter.faulty_engine(transport.clone(), Some(cut));
        assert!(engine.update().await.is_err(), "cut {cut}");
        meter.meter().recover().unwrap();
        if meter.version() == OLD {
            pass(&meter, &transport).await.unwrap();
        }
        meter.assert_at(&release, NEW);
        // Staged files and the image's prefix in its slot survive the cut
        // (a write it tore kept its first half), so no byte comes twice.
        let moved = transport.stats().bytes;
        assert!(moved <= needed, "cut {cut}: moved {moved} for {needed}");
    }
}

async fn a_power_cut_at_any_operation_of_a_rollback_leaves_old_or_pending_new(release: &Release) {
    let probe = TestMeter::provisioned(release, OLD);
    probe.engine(release.transport()).update().await.unwrap();
    let (engine, storage) = probe.faulty_engine(release.transport(), None);
    engine.meter().rollback().unwrap();
    let total = storage.ops();

    for cut in 0..total {
        let meter = TestMeter::provisioned(release, OLD);
        meter.engine(release.transport()).update().await.unwrap();
        let (engine, storage) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.meter().rollback().is_err(), "cut {cut}");
        assert!(storage.is_cut());
        meter.meter().recover().unwrap();
        if meter.version() == NEW {
            assert_exactly(&meter, release, NEW);
            meter.meter().rollback().unwrap();
        }
        assert_exactly(&meter, release, OLD);
    }
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_rollback_leaves_old_or_pending_new_sample() {
    a_power_cut_at_any_operation_of_a_rollback_leaves_old_or_pending_new(&Release::sample()).await;
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_file_folder_swap_rollback_leaves_old_or_new() {
    a_power_cut_at_any_operation_of_a_rollback_leaves_old_or_pending_new(&swapped_release()).await;
}

#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_confirm_keeps_the_new_version() {
    let release = Release::sample();
    let probe = TestMeter::provisioned(&release, OLD);
    probe.engine(release.transport()).update().await.unwrap();
    let (engine, storage) = probe.faulty_engine(release.transport(), None);
    engine.meter().confirm().unwrap();
    let total = storage.ops();

    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        meter.engine(release.transport()).update().await.unwrap();
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.meter().confirm().is_err(), "cut {cut}");
        meter.meter().recover().unwrap();
        assert_exactly(&meter, &release, NEW);
        if meter.meter().status().unwrap().pending_confirm {
            meter.meter().confirm().unwrap();
        }
        assert_exactly(&meter, &release, NEW);
        assert!(
            !meter.root().join(".otavan/backup").exists(),
            "cut {cut}: backups left"
        );
    }
}

/// A root-mode update also follows the certificate, raises the trusted
/// time and keeps the descriptors: a cut at any of its operations still
/// leaves the meter at OLD or NEW, and at NEW with NEW's descriptor and
/// the certificate kept (OLD's too, so a rollback finds it).
#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_signed_update_keeps_its_trust_state() {
    let release = certified_release();
    let network_now = Duration::from_secs(NOW);
    let count = {
        let meter = root_meter(&release, OLD);
        let (engine, storage) = meter.faulty_engine(release.transport(), None);
        engine
            .network_time()
            .set(network_now, tokio::time::Instant::now());
        engine.update().await.unwrap();
        storage.ops()
    };
    let kept = |meter: &TestMeter, version: &str| {
        meter
            .root()
            .join(format!(".otavan/descriptors/{version}.json"))
            .exists()
    };
    let (mut ended_old, mut ended_new) = (0, 0);
    for cut in 0..count {
        let meter = root_meter(&release, OLD);
        let (engine, storage) = meter.faulty_engine(release.transport(), Some(cut));
        engine
            .network_time()
            .set(network_now, tokio::time::Instant::now());
        assert!(engine.update().await.is_err(), "cut {cut}");
        assert!(storage.is_cut());
        meter.meter().recover().unwrap();
        if meter.version() == NEW {
            meter.assert_at(&release, NEW);
            ended_new += 1;
        } else {
            meter.assert_at(&release, OLD);
            ended_old += 1;
            meter.engine(release.transport()).update().await.unwrap();
            meter.assert_at(&release, NEW);
        }
        assert!(kept(&meter, NEW) && kept(&meter, OLD), "cut {cut}");
        assert!(meter.root().join(".otavan/root.json").exists(), "cut {cut}");
        assert_eq!(
            meter.meter().state().unwrap().highest_counter,
            release.descriptor(NEW).counter
        );
        meter.meter().rollback().unwrap();
        meter.assert_at(&release, OLD);
        assert!(kept(&meter, OLD));
        meter.assert_outside_untouched();
    }
    assert!(
        ended_old > 0 && ended_new > 0,
        "old {ended_old}, new {ended_new}"
    );
}

/// Confirming drops every kept descriptor but the installed version's; a
/// cut anywhere in it keeps NEW's.
#[tokio::test]
async fn a_power_cut_at_any_operation_of_a_signed_confirm_keeps_the_installed_descriptor() {
    let release = certified_release();
    let probe = root_meter(&release, OLD);
    probe.engine(release.transport()).update().await.unwrap();
    let (engine, storage) = probe.faulty_engine(release.transport(), None);
    engine.meter().confirm().unwrap();
    let total = storage.ops();
    for cut in 0..total {
        let meter = root_meter(&release, OLD);
        meter.engine(release.transport()).update().await.unwrap();
        let (engine, _) = meter.faulty_engine(release.transport(), Some(cut));
        assert!(engine.meter().confirm().is_err(), "cut {cut}");
        meter.meter().recover().unwrap();
        if meter.meter().status().unwrap().pending_confirm {
            meter.meter().confirm().unwrap();
        }
        meter.assert_at(&release, NEW);
        let descriptors = meter.root().join(".otavan/descriptors");
        let names: Vec<String> = std::fs::read_dir(descriptors)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!("{NEW}.json")], "cut {cut}");
    }
}
