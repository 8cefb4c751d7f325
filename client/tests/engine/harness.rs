//! A sample release (indexed and turned into manifests by the server's
//! own code) and meters provisioned from it in temp dirs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use otavan_client::clock::{Clock, SystemEntropy};
use otavan_client::device::provision;
use otavan_client::fault::FaultStorage;
use otavan_client::slots::{FileSlots, FirmwareSlots};
use otavan_client::storage::{DirStorage, Storage, walk_files};
use otavan_client::transport::{MemoryTransport, Transport};
use otavan_client::trust::Anchor;
use otavan_client::{Engine, EngineConfig, EngineError, Meter};
use otavan_protocol::Version;
use otavan_protocol::descriptor::{KeyPair, PublicKey, SignedDescriptor, TargetDescriptor};
use otavan_server::index::ReleaseIndex;
use tempfile::TempDir;

/// A file tree: path relative to the root -> content.
pub type Tree = BTreeMap<String, Vec<u8>>;

/// Two versions covering every kind of change: updated, unchanged, new (in
/// a new nested folder), deleted files, and a firmware image each.
pub struct Release {
    root: TempDir,
    pub index: ReleaseIndex,
}

pub const OLD: &str = "1.0.0";
pub const NEW: &str = "1.1.0";

fn content(tag: &str, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ tag.len() as u8 ^ tag.as_bytes()[i % tag.len()])
        .collect()
}

impl Release {
    pub fn sample() -> Release {
        let old: &[(&str, Vec<u8>)] = &[
            ("flash/main.py", content("main 1.0.0", 3000)),
            ("flash/boot.py", content("boot", 500)),
            ("flash/lib/meter.py", content("meter 1.0.0", 5000)),
            ("flash/lib/old_driver.py", content("old driver", 2000)),
            ("sd/sounds/beep.wav", content("beep", 9000)),
        ];
        let new: &[(&str, Vec<u8>)] = &[
            ("flash/main.py", content("main 1.1.0", 3300)),
            ("flash/boot.py", content("boot", 500)),
            ("flash/lib/meter.py", content("meter 1.1.0", 4000)),
            ("flash/lib/tariff/tables.py", content("tables", 6000)),
            ("flash/lib/tariff/peak.py", content("peak", 700)),
            ("sd/config.json", content("config", 300)),
        ];
        Release::from_trees(
            old,
            new,
            &content("firmware 1.0.0", 12_000),
            &content("firmware 1.1.0", 16_000),
        )
    }

    pub fn from_trees(
        old: &[(&str, Vec<u8>)],
        new: &[(&str, Vec<u8>)],
        old_image: &[u8],
        new_image: &[u8],
    ) -> Release {
        let root = TempDir::new().unwrap();
        for (version, files) in [(OLD, old), (NEW, new)] {
            for (path, bytes) in files {
                write(&root.path().join(version), path, bytes);
            }
        }
        std::fs::write(root.path().join(format!("firmware_{OLD}.bin")), old_image).unwrap();
        std::fs::write(root.path().join(format!("firmware_{NEW}.bin")), new_image).unwrap();
        let index = ReleaseIndex::build(root.path(), None, &[]).unwrap();
        Release { root, index }
    }

    /// Signs every version with `keys` (as `otavan release sign` does) and
    /// re-indexes, so manifests name the target's descriptor.
    pub fn sign(&mut self, keys: &KeyPair, expires: u64) {
        self.sign_by(&[keys], expires, NOW + 7 * 86_400);
    }

    /// Signs every version with all of `keys`, descriptors valid until
    /// `expires`, the timestamp (issued at [`NOW`]) until
    /// `timestamp_expires`, and re-indexes.
    pub fn sign_by(&mut self, keys: &[&KeyPair], expires: u64, timestamp_expires: u64) {
        let signing = otavan_server::sign::Signing {
            keys,
            now: NOW,
            expires,
            timestamp_expires,
        };
        otavan_server::sign::sign_release(self.root.path(), &signing).unwrap();
        self.reindex();
    }

    /// Writes the release root's next certificate, signed by `root`, for
    /// `terms`, and re-indexes.
    pub fn certify(&mut self, root: &KeyPair, terms: &otavan_server::certify::Terms) {
        otavan_server::certify::certify(self.root.path(), root, terms).unwrap();
        self.reindex();
    }

    /// Replaces a file at the release root (`root.json`, `timestamp.json`,
    /// a descriptor) with `bytes` and re-indexes.
    pub fn put_file(&mut self, name: &str, bytes: &[u8]) {
        std::fs::write(self.root.path().join(name), bytes).unwrap();
        self.reindex();
    }

    /// Replaces the target's descriptor with `signed` and re-indexes.
    pub fn put_descriptor(&mut self, version: &str, signed: &SignedDescriptor) {
        let path = self.root.path().join(format!("target_{version}.json"));
        std::fs::write(path, serde_json::to_vec(signed).unwrap()).unwrap();
        self.reindex();
    }

    /// The descriptor of `version` as signed in the release root.
    pub fn descriptor(&self, version: &str) -> TargetDescriptor {
        let path = self.root.path().join(format!("target_{version}.json"));
        let signed: SignedDescriptor =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        serde_json::from_str(&signed.signed).unwrap()
    }

    fn reindex(&mut self) {
        self.index = ReleaseIndex::build(self.root.path(), None, &[]).unwrap();
    }

    /// Computes firmware patches as the server does at index time.
    pub fn with_patches(mut self) -> Release {
        let cache = self.root.path().join("patch-cache");
        let patches = otavan_server::patches::build_patches(&self.index, &cache).unwrap();
        assert!(
            !patches.is_empty(),
            "the images are similar enough to patch"
        );
        self.index.attach_patches(patches);
        self
    }

    /// The URL path of the patch from `source` to the target image.
    pub fn patch_path(&self) -> String {
        let target = &self
            .index
            .firmware_for(self.index.target())
            .unwrap()
            .1
            .sha256;
        let source = self.index.patches().keys().next().unwrap();
        format!(
            "/{}",
            otavan_server::patches::patch_url_path(source, target)
        )
    }

    /// The manifest JSON the server would send a meter at `current`.
    pub fn manifest_json(&self, current: &str) -> Vec<u8> {
        let current: Version = current.parse().unwrap();
        let manifest = otavan_server::manifest::build(&self.index, Some(&current), "van.local");
        serde_json::to_vec(&manifest).unwrap()
    }

    /// The manifest a rogue server sends a meter at [`NEW`] to take it
    /// back to [`OLD`]: every file of OLD, the deletes of what NEW added,
    /// OLD's firmware and OLD's signed descriptor, all genuine bytes any
    /// van serves to anyone.
    pub fn downgrade_manifest_json(&self) -> Vec<u8> {
        let old: Version = OLD.parse().unwrap();
        let index = ReleaseIndex::build(self.root.path(), Some(&old), &[]).unwrap();
        let mut manifest =
            otavan_server::manifest::build(&index, None, "van.local").expect("a full install");
        let (old_tree, new_tree) = (self.tree(OLD), self.tree(NEW));
        manifest.delete = new_tree
            .keys()
            .filter(|path| !old_tree.contains_key(*path))
            .cloned()
            .collect();
        manifest.previous_version = Some(NEW.to_owned());
        serde_json::to_vec(&manifest).unwrap()
    }

    /// The release root on disk.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A transport serving this release to meters at [`OLD`].
    pub fn transport(&self) -> MemoryTransport {
        let transport = MemoryTransport::new().with_manifest(OLD, self.manifest_json(OLD));
        for version in [OLD, NEW] {
            for (path, bytes) in self.tree(version) {
                transport.set_file(&format!("/{version}/{path}"), bytes);
            }
            transport.set_file(&format!("/firmware_{version}.bin"), self.image(version));
            let descriptor = self.root.path().join(format!("target_{version}.json"));
            if version == NEW {
                let target = self
                    .index
                    .firmware_for(self.index.target())
                    .map(|(_, f)| f.sha256.clone());
                for (source, patch) in self.index.patches() {
                    let path =
                        otavan_server::patches::patch_url_path(source, target.as_deref().unwrap());
                    transport.set_file(
                        &format!("/{path}"),
                        std::fs::read(&patch.disk_path).unwrap(),
                    );
                }
            }
            if let Ok(bytes) = std::fs::read(descriptor) {
                transport.set_file(&format!("/target_{version}.json"), bytes);
            }
        }
        for name in ["root.json", "timestamp.json"] {
            if let Ok(bytes) = std::fs::read(self.root.path().join(name)) {
                transport.set_file(&format!("/{name}"), bytes);
            }
        }
        transport
    }

    pub fn tree(&self, version: &str) -> Tree {
        read_tree(&self.root.path().join(version))
    }

    pub fn image(&self, version: &str) -> Vec<u8> {
        std::fs::read(self.root.path().join(format!("firmware_{version}.bin"))).unwrap()
    }

    /// Bytes of the files (not the image) a meter at OLD must download:
    /// they are staged before the image.
    pub fn file_bytes(&self) -> u64 {
        self.update_bytes() - self.image(NEW).len() as u64
    }

    /// Bytes a meter at OLD must download.
    pub fn update_bytes(&self) -> u64 {
        let manifest: otavan_protocol::Manifest =
            serde_json::from_slice(&self.manifest_json(OLD)).unwrap();
        let files: u64 = manifest
            .new
            .iter()
            .chain(&manifest.update)
            .map(|e| e.size.unwrap())
            .sum();
        files + manifest.firmware.map_or(0, |f| f.size.unwrap())
    }
}

pub fn write(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `root` except the client's state, by relative path.
pub fn read_tree(root: &Path) -> Tree {
    let storage = DirStorage::new(root).unwrap();
    walk_files(&storage, None)
        .unwrap()
        .into_iter()
        .filter(|p| !p.as_str().starts_with(".otavan/"))
        .map(|p| (p.as_str().to_owned(), storage.read(&p).unwrap()))
        .collect()
}

/// Every directory under `root` except the client's state.
pub fn read_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with(".otavan") {
                dirs.push(path.strip_prefix(root).unwrap().display().to_string());
                stack.push(path);
            }
        }
    }
    dirs.sort();
    dirs
}

/// The meters' time in these tests, in Unix seconds: 2026-01-01T00:00:00Z.
pub const NOW: u64 = 1_767_225_600;

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Duration);

impl FixedClock {
    /// Stopped at Unix time `secs`.
    pub fn at(secs: u64) -> FixedClock {
        FixedClock(Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Duration {
        self.0
    }
}

/// An engine whose clock reads [`NOW`]; attempts are named from the
/// system's random numbers, as on a meter (engines built one after another
/// over one transport must not repeat names).
pub fn new_engine<S: Storage, F: FirmwareSlots, T: Transport>(
    meter: Meter<S, F>,
    transport: T,
    config: EngineConfig,
) -> Engine<S, F, T> {
    Engine::new(meter, transport, config, FixedClock::at(NOW), SystemEntropy)
}

/// One van pass: an update cycle without retries inside it.
pub async fn pass(meter: &TestMeter, transport: &MemoryTransport) -> Result<(), EngineError> {
    let mut config = EngineConfig::new("meter-1");
    config.retries = 0;
    new_engine(meter.meter(), transport.clone(), config)
        .update()
        .await
        .map(drop)
}

/// An engine whose storage and slots share one fault-injecting storage.
pub type FaultyEngine =
    Engine<FaultStorage<DirStorage>, FileSlots<FaultStorage<DirStorage>>, MemoryTransport>;

/// A meter in a temp dir.
pub struct TestMeter {
    /// The meter's root is `dir/meter`; `dir` also holds a sentinel
    /// outside the root to prove nothing is written there.
    pub dir: TempDir,
}

impl TestMeter {
    /// A meter at `version` of `release` with its firmware booted.
    pub fn provisioned(release: &Release, version: &str) -> TestMeter {
        TestMeter::provisioned_with(release, version, None)
    }

    /// Like [`TestMeter::provisioned`], trusting only releases signed for `key`.
    pub fn provisioned_with(
        release: &Release,
        version: &str,
        key: Option<&PublicKey>,
    ) -> TestMeter {
        TestMeter::provisioned_trusting(release, version, key.map(|k| Anchor::Key(*k)).as_ref())
    }

    /// Like [`TestMeter::provisioned`], trusting `anchor`.
    pub fn provisioned_trusting(
        release: &Release,
        version: &str,
        anchor: Option<&Anchor>,
    ) -> TestMeter {
        let meter = TestMeter::empty();
        for (path, bytes) in release.tree(version) {
            write(&meter.root(), &path, &bytes);
        }
        let image = release.image(version);
        provision(
            &meter.storage(),
            &version.parse().unwrap(),
            Some(&mut image.as_slice()),
            anchor,
        )
        .unwrap();
        meter
    }

    /// An empty meter root, not provisioned.
    pub fn empty() -> TestMeter {
        let dir = TempDir::new().unwrap();
        std::fs::create_dir(dir.path().join("meter")).unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"sentinel").unwrap();
        TestMeter { dir }
    }

    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("meter")
    }

    pub fn storage(&self) -> DirStorage {
        DirStorage::new(self.root()).unwrap()
    }

    pub fn meter(&self) -> Meter<DirStorage, FileSlots<DirStorage>> {
        Meter::new(self.storage(), FileSlots::new(self.storage()))
    }

    pub fn engine(
        &self,
        transport: MemoryTransport,
    ) -> Engine<DirStorage, FileSlots<DirStorage>, MemoryTransport> {
        new_engine(self.meter(), transport, EngineConfig::new("meter-1"))
    }

    /// An engine whose storage (slots included) loses power at `cut_at`.
    pub fn faulty_engine(
        &self,
        transport: MemoryTransport,
        cut_at: Option<u64>,
    ) -> (FaultyEngine, FaultStorage<DirStorage>) {
        let storage = FaultStorage::new(self.storage(), cut_at);
        let meter = Meter::new(storage.clone(), FileSlots::new(storage.clone()));
        (
            new_engine(meter, transport, EngineConfig::new("meter-1")),
            storage,
        )
    }

    pub fn tree(&self) -> Tree {
        read_tree(&self.root())
    }

    pub fn version(&self) -> String {
        self.meter().status().unwrap().version.to_string()
    }

    /// The image file of the slot that is not booted (slot A boots after
    /// provisioning).
    pub fn inactive_slot(&self) -> std::path::PathBuf {
        let slots = FileSlots::new(self.storage());
        let inactive = slots.state().unwrap().boot.other();
        self.root()
            .join(format!(".otavan/slots/{}.bin", inactive.name()))
    }

    pub fn booted_image(&self) -> Vec<u8> {
        let slots = FileSlots::new(self.storage());
        let boot = slots.state().unwrap().boot;
        let mut image = Vec::new();
        std::io::copy(&mut slots.read(boot).unwrap().unwrap(), &mut image).unwrap();
        image
    }

    /// Nothing beside the meter's root changed.
    pub fn assert_outside_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["meter", "outside.txt"]);
        assert_eq!(
            std::fs::read(self.dir.path().join("outside.txt")).unwrap(),
            b"sentinel"
        );
    }

    /// Exactly at `version` of `release`: files, version, booted image.
    pub fn assert_at(&self, release: &Release, version: &str) {
        assert_eq!(self.version(), version);
        assert!(
            self.tree() == release.tree(version),
            "tree differs from {version}: {:?}",
            diff(&self.tree(), &release.tree(version))
        );
        assert!(
            self.booted_image() == release.image(version),
            "booted image is not {version}'s"
        );
    }
}

/// Paths that differ between two trees, for readable failures.
pub fn diff(a: &Tree, b: &Tree) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
