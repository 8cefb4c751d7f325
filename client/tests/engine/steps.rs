//! The apply's steps as an observer sees them, and a power cut at the
//! start of each (how the live rehearsal places its cuts).

use std::sync::{Arc, Mutex};

use otavan_client::Recovery;
use otavan_client::apply::{ApplyStep, FileStep, Step};
use otavan_client::state::{DeviceState, Phase};
use otavan_client::storage::{DirStorage, Storage};

use crate::harness::{NEW, OLD, Release, TestMeter, pass};

/// One step as text; checks on the way that the steps before it have
/// happened and it has not (so the observer really hears of each step
/// right before it runs).
fn seen(storage: &DirStorage, step: &Step<'_>) -> String {
    let exists = |path| storage.size(path).unwrap().is_some();
    let state = DeviceState::load(storage).unwrap();
    let phase = state.update.as_ref().map(|j| j.phase);
    match *step {
        Step::Journal => {
            assert_eq!((state.version.as_str(), phase), (OLD, None));
            "journal".to_owned()
        }
        Step::File(file) => {
            assert_eq!(phase, Some(Phase::Applying), "{file:?} before the journal");
            match file {
                FileStep::RemoveDir(dir) => {
                    assert!(storage.list(Some(dir)).unwrap().is_empty(), "{dir}");
                    format!("rmdir {dir}")
                }
                FileStep::CreateDir(dir) => {
                    assert!(!storage.exists(dir).unwrap());
                    format!("mkdir {dir}")
                }
                FileStep::Backup { path, backup } => {
                    assert!(exists(path) && !exists(backup));
                    format!("backup {path} to {backup}")
                }
                FileStep::Install { staged, path } => {
                    assert!(exists(staged) && !exists(path), "{path}");
                    assert!(staged.as_str().starts_with(".otavan/staging/"));
                    format!("install {path}")
                }
                FileStep::Delete { path, backup } => {
                    assert!(exists(path) && !exists(backup));
                    format!("delete {path} to {backup}")
                }
                FileStep::Sync => "sync".to_owned(),
            }
        }
        Step::Boot(slot) => format!("boot {}", slot.name()),
        Step::Commit => {
            assert_eq!(
                (state.version.as_str(), phase),
                (OLD, Some(Phase::Applying))
            );
            "commit".to_owned()
        }
    }
}

#[tokio::test]
async fn the_observer_hears_every_apply_step_in_order() {
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (log, storage) = (Arc::clone(&heard), meter.storage());
    let engine = meter
        .engine(release.transport())
        .observing(move |step: &ApplyStep<'_>| {
            let text = seen(&storage, &step.step);
            log.lock().unwrap().push((step.index, step.total, text));
        });
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);

    // The sample update: deleted files first (one leaves a folder empty,
    // which goes too), new files in a new folder and in an existing one,
    // replaced files (backed up first), firmware.
    let expected = [
        "journal",
        "delete /flash/lib/old_driver.py to /.otavan/backup/flash/lib/old_driver.py",
        "delete /sd/sounds/beep.wav to /.otavan/backup/sd/sounds/beep.wav",
        "rmdir /sd/sounds",
        "mkdir /flash/lib/tariff",
        "install /flash/lib/tariff/peak.py",
        "install /flash/lib/tariff/tables.py",
        "install /sd/config.json",
        "backup /flash/lib/meter.py to /.otavan/backup/flash/lib/meter.py",
        "install /flash/lib/meter.py",
        "backup /flash/main.py to /.otavan/backup/flash/main.py",
        "install /flash/main.py",
        "sync",
        "boot b",
        "commit",
    ];
    let heard = heard.lock().unwrap().clone();
    let texts: Vec<&str> = heard.iter().map(|(_, _, text)| text.as_str()).collect();
    assert_eq!(texts, expected);
    for (i, (index, total, _)) in heard.iter().enumerate() {
        assert_eq!((*index, *total), (i, expected.len()));
    }
}

#[tokio::test]
async fn a_power_cut_at_the_start_of_any_apply_step_leaves_the_old_version() {
    let release = Release::sample();
    let probe = TestMeter::provisioned(&release, OLD);
    let total = Arc::new(Mutex::new(0));
    let count = Arc::clone(&total);
    probe
        .engine(release.transport())
        .observing(move |step: &ApplyStep<'_>| *count.lock().unwrap() = step.total)
        .update()
        .await
        .unwrap();
    let total = *total.lock().unwrap();
    assert!(total > 10, "{total} steps");

    for cut in 0..total {
        let meter = TestMeter::provisioned(&release, OLD);
        let transport = release.transport();
        let (engine, storage) = meter.faulty_engine(transport.clone(), None);
        let power = storage.clone();
        let engine = engine.observing(move |step: &ApplyStep<'_>| {
            if step.index == cut {
                power.arm(0);
            }
        });
        assert!(engine.update().await.is_err(), "step {cut}");
        assert!(storage.is_cut(), "step {cut}: no cut");
        // The cut came before the commit's first write: recovery undoes
        // whatever had been done, and the next pass installs all of it.
        let recovery = meter.meter().recover().unwrap();
        let undone = Recovery::Undone {
            version: OLD.parse().unwrap(),
        };
        assert!(
            recovery == undone || (cut == 0 && recovery == Recovery::Clean),
            "step {cut}: {recovery:?}"
        );
        meter.assert_at(&release, OLD);
        pass(&meter, &transport).await.unwrap();
        meter.assert_at(&release, NEW);
        meter.assert_outside_untouched();
    }
}
