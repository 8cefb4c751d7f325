//! State transitions of the meter's tree beyond "a file changes" (issue
//! 13, part 6): a file becoming a directory and the reverse, directories
//! an update empties, and paths that differ only in case on storage that
//! ignores case. Each installs exactly, rolls back exactly, and survives
//! a power cut at any operation.

use std::io::{self, Read};

use otavan_client::path::MeterPath;
use otavan_client::slots::FileSlots;
use otavan_client::storage::{DirEntry, DirStorage, Storage, WriteFile};
use otavan_client::{EngineConfig, EngineError, Meter};

use crate::harness::{NEW, OLD, Release, TestMeter, Tree, new_engine, read_dirs};

fn bytes(tag: &str, size: usize) -> Vec<u8> {
    tag.bytes().cycle().take(size).collect()
}

/// 1.0.0 has `flash/config` as a file and `flash/lib/drivers/` as a
/// directory of two files; 1.1.0 has them the other way round.
pub fn swapped_release() -> Release {
    let old: &[(&str, Vec<u8>)] = &[
        ("flash/main.py", bytes("main 1.0.0", 900)),
        ("flash/config", bytes("config as one file", 400)),
        ("flash/lib/drivers/modbus.py", bytes("modbus", 700)),
        ("flash/lib/drivers/mbus.py", bytes("mbus", 600)),
        ("flash/lib/meter.py", bytes("meter 1.0.0", 1000)),
    ];
    let new: &[(&str, Vec<u8>)] = &[
        ("flash/main.py", bytes("main 1.1.0", 950)),
        ("flash/config/site.json", bytes("site", 120)),
        ("flash/config/tariff/peak.json", bytes("peak", 80)),
        ("flash/lib/drivers", bytes("drivers as one file", 1500)),
        ("flash/lib/meter.py", bytes("meter 1.0.0", 1000)),
    ];
    Release::from_trees(
        old,
        new,
        &bytes("image 1.0.0", 4000),
        &bytes("image 1.1.0", 4200),
    )
}

/// The directories of a version's tree in the release.
fn release_dirs(release: &Release, version: &str) -> Vec<String> {
    let meter = TestMeter::provisioned(release, version);
    read_dirs(&meter.root())
}

#[tokio::test]
async fn files_and_directories_swap_places_and_back() {
    let release = swapped_release();
    let meter = TestMeter::provisioned(&release, OLD);
    let old_dirs = read_dirs(&meter.root());
    meter.engine(release.transport()).update().await.unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(read_dirs(&meter.root()), release_dirs(&release, NEW));
    assert!(meter.root().join("flash/lib/drivers").is_file());
    assert!(meter.root().join("flash/config").is_dir());

    meter.meter().rollback().unwrap();
    meter.assert_at(&release, OLD);
    assert_eq!(read_dirs(&meter.root()), old_dirs);
    meter.assert_outside_untouched();

    // And forward again, then confirmed.
    meter.engine(release.transport()).update().await.unwrap();
    meter.meter().confirm().unwrap();
    meter.assert_at(&release, NEW);
    assert_eq!(read_dirs(&meter.root()), release_dirs(&release, NEW));
}

#[tokio::test]
async fn directories_an_update_empties_are_removed_and_rollback_brings_them_back() {
    // The sample deletes the only file of sd/sounds/.
    let release = Release::sample();
    let meter = TestMeter::provisioned(&release, OLD);
    let old_dirs = read_dirs(&meter.root());
    assert!(old_dirs.contains(&"sd/sounds".to_owned()));
    meter.engine(release.transport()).update().await.unwrap();
    assert_eq!(read_dirs(&meter.root()), release_dirs(&release, NEW));
    meter.meter().rollback().unwrap();
    assert_eq!(read_dirs(&meter.root()), old_dirs);
    meter.assert_at(&release, OLD);
}

#[tokio::test]
async fn a_directory_holding_files_the_update_does_not_know_is_not_replaced() {
    let release = swapped_release();
    let meter = TestMeter::provisioned(&release, OLD);
    // The meter keeps a file of its own in the directory 1.1.0 turns into
    // a file.
    std::fs::write(meter.root().join("flash/lib/drivers/local.cfg"), b"mine").unwrap();
    let before = meter.tree();
    let transport = release.transport();
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(matches!(error, EngineError::Plan(_)), "{error}");
    assert!(error.to_string().contains("/flash/lib/drivers"), "{error}");
    assert_eq!(meter.tree(), before);
    assert_eq!(meter.version(), OLD);
    assert_eq!(transport.stats().bytes, 0, "refused before downloading");
    let failed = transport.reports().pop().unwrap();
    assert!(failed.error.unwrap().contains("/flash/lib/drivers"));
}

#[tokio::test]
async fn a_file_in_the_way_of_a_new_directory_is_not_overwritten() {
    let release = swapped_release();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&release.manifest_json(OLD)).unwrap();
    // A manifest that installs under flash/config/ without deleting the
    // file flash/config.
    let delete = manifest["delete"].as_array_mut().unwrap();
    delete.retain(|p| p != "flash/config" && p != "/flash/config");
    let transport = release.transport();
    transport.set_manifest(OLD, serde_json::to_vec(&manifest).unwrap());
    let meter = TestMeter::provisioned(&release, OLD);
    let error = meter.engine(transport.clone()).update().await.unwrap_err();
    assert!(error.to_string().contains("/flash/config"), "{error}");
    meter.assert_at(&release, OLD);
    assert_eq!(transport.stats().bytes, 0);
}

/// A storage that ignores case, as FAT on a Pycom meter does: every path
/// is folded to lower case before it reaches the directory below.
#[derive(Clone)]
struct FoldingStorage(DirStorage);

fn fold(path: &MeterPath) -> MeterPath {
    MeterPath::parse(&path.as_str().to_lowercase()).unwrap()
}

impl Storage for FoldingStorage {
    fn read(&self, path: &MeterPath) -> io::Result<Vec<u8>> {
        self.0.read(&fold(path))
    }
    fn open(&self, path: &MeterPath) -> io::Result<Box<dyn Read + '_>> {
        self.0.open(&fold(path))
    }
    fn create(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        self.0.create(&fold(path))
    }
    fn append(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        self.0.append(&fold(path))
    }
    fn size(&self, path: &MeterPath) -> io::Result<Option<u64>> {
        self.0.size(&fold(path))
    }
    fn exists(&self, path: &MeterPath) -> io::Result<bool> {
        self.0.exists(&fold(path))
    }
    fn rename(&self, from: &MeterPath, to: &MeterPath) -> io::Result<()> {
        self.0.rename(&fold(from), &fold(to))
    }
    fn remove_file(&self, path: &MeterPath) -> io::Result<()> {
        self.0.remove_file(&fold(path))
    }
    fn create_dir(&self, path: &MeterPath) -> io::Result<()> {
        self.0.create_dir(&fold(path))
    }
    fn remove_dir(&self, path: &MeterPath) -> io::Result<()> {
        self.0.remove_dir(&fold(path))
    }
    fn remove_dir_all(&self, path: &MeterPath) -> io::Result<()> {
        self.0.remove_dir_all(&fold(path))
    }
    fn sync_dir(&self, dir: Option<&MeterPath>) -> io::Result<()> {
        self.0.sync_dir(dir.map(fold).as_ref())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn list(&self, dir: Option<&MeterPath>) -> io::Result<Vec<DirEntry>> {
        self.0.list(dir.map(fold).as_ref())
    }
    fn free_space(&self) -> io::Result<u64> {
        self.0.free_space()
    }
    fn case_insensitive(&self) -> io::Result<bool> {
        Ok(true)
    }
}

/// 1.1.0 adds two files whose paths differ only in case (`case` picks
/// which part: the file name or a directory).
fn case_release(second: &str) -> Release {
    let old: &[(&str, Vec<u8>)] = &[("flash/main.py", bytes("main 1.0.0", 900))];
    let new: &[(&str, Vec<u8>)] = &[
        ("flash/main.py", bytes("main 1.1.0", 900)),
        ("flash/lib/readme.txt", bytes("lower", 100)),
        (second, bytes("upper", 200)),
    ];
    Release::from_trees(
        old,
        new,
        &bytes("image 1.0.0", 4000),
        &bytes("image 1.1.0", 4200),
    )
}

#[tokio::test]
async fn paths_that_differ_only_in_case_are_refused_where_case_is_ignored() {
    for second in ["flash/lib/README.txt", "flash/Lib/notes.txt"] {
        let release = case_release(second);
        let meter = TestMeter::provisioned(&release, OLD);
        let storage = FoldingStorage(meter.storage());
        let transport = release.transport();
        let engine = new_engine(
            Meter::new(storage.clone(), FileSlots::new(storage)),
            transport.clone(),
            EngineConfig::new("meter-1"),
        );
        let error = engine.update().await.unwrap_err();
        assert!(matches!(error, EngineError::Plan(_)), "{second}: {error}");
        assert!(error.to_string().contains("differ only in case"), "{error}");
        meter.assert_at(&release, OLD);
        assert_eq!(transport.stats().bytes, 0, "refused before downloading");

        // Where case matters, both files are installed.
        let meter = TestMeter::provisioned(&release, OLD);
        meter.engine(release.transport()).update().await.unwrap();
        meter.assert_at(&release, NEW);
    }
}

#[tokio::test]
async fn a_file_renamed_by_case_alone_is_refused_where_case_is_ignored() {
    // Deleting Config.py and installing config.py would back both up to
    // one file on a case-ignoring disk: the old one could not come back.
    let old: &[(&str, Vec<u8>)] = &[("flash/Config.py", bytes("old", 300))];
    let new: &[(&str, Vec<u8>)] = &[("flash/config.py", bytes("new", 310))];
    let release = Release::from_trees(old, new, b"image 1", b"image 2");
    let meter = TestMeter::provisioned(&release, OLD);
    // The meter's disk holds the file under the folded name, as FAT would
    // show it through the folding double.
    std::fs::rename(
        meter.root().join("flash/Config.py"),
        meter.root().join("flash/config.py"),
    )
    .unwrap();
    let storage = FoldingStorage(meter.storage());
    let engine = new_engine(
        Meter::new(storage.clone(), FileSlots::new(storage)),
        release.transport(),
        EngineConfig::new("meter-1"),
    );
    let error = engine.update().await.unwrap_err();
    assert!(error.to_string().contains("differ only in case"), "{error}");
    let tree: Tree = meter.tree();
    assert_eq!(tree.keys().collect::<Vec<_>>(), ["flash/config.py"]);
    assert_eq!(tree["flash/config.py"], bytes("old", 300));
}

#[test]
fn dir_storage_says_whether_it_ignores_case() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join(".otavan")).unwrap();
    // Linux temporary directories respect case.
    let storage = DirStorage::new(dir.path()).unwrap();
    assert!(!storage.case_insensitive().unwrap());
    // A meter can be told (a FAT volume mounted under its root).
    let told = DirStorage::new(dir.path())
        .unwrap()
        .with_case_insensitive(true);
    assert!(told.case_insensitive().unwrap());
}
