//! The release index: every file the server may serve, with its hashes.
//!
//! A Pycom-style release root holds one folder per version (`1.0.0/flash/...`,
//! `1.0.0/sd/...`), firmware images named `firmware_VERSION.bin`, and, for
//! signed releases, descriptors named `target_VERSION.json`, the root
//! certificate `root.json` and the timestamp `timestamp.json`. The index
//! is built once (at start and on SIGHUP) and never changes afterwards, so
//! request handling reads it without locks. Only files recorded here are ever
//! served: a request path is looked up as a key, never joined onto the root,
//! which is what makes traversal impossible by construction.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use otavan_protocol::Version;
use otavan_protocol::root::ROOT_FILE;
use otavan_protocol::timestamp::TIMESTAMP_FILE;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use tracing::{debug, warn};
use walkdir::WalkDir;

/// File names that editors and the Pycom tooling leave in release trees and
/// that must never reach a meter.
const IGNORED_NAMES: [&str; 2] = [".DS_Store", "pymakr.conf"];

/// The release-metadata files served from the release root by name.
const TRUST_FILES: [&str; 2] = [ROOT_FILE, TIMESTAMP_FILE];

/// Buffer size for hashing files while indexing.
const HASH_BUFFER: usize = 64 * 1024;

/// One file of the release, as it was when the index was built.
#[derive(Debug)]
pub struct IndexedFile {
    /// Where the file lives on the server's disk.
    pub disk_path: PathBuf,
    /// Lower-case hex SHA-1 of the content.
    pub sha1: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The content, when it was preloaded into memory (see [`crate::preload`]).
    content: OnceLock<Bytes>,
}

impl IndexedFile {
    /// The content held in memory, if the file was preloaded.
    pub fn cached(&self) -> Option<&Bytes> {
        self.content.get()
    }

    /// A file record with made-up hashes, for unit tests elsewhere.
    #[cfg(test)]
    pub(crate) fn for_tests(disk_path: &str, size: u64) -> IndexedFile {
        IndexedFile {
            disk_path: PathBuf::from(disk_path),
            sha1: String::new(),
            sha256: String::new(),
            size,
            content: OnceLock::new(),
        }
    }

    /// Keeps `content` in memory. Callers must have checked it against
    /// the file's hashes.
    pub(crate) fn set_cached(&self, content: Bytes) {
        // Set only once per index; a second call cannot happen and would be a no-op.
        let _ = self.content.set(content);
    }
}

/// The files of one version folder, keyed by their path inside the folder
/// (`flash/main.py`), in byte order.
pub type VersionTree = BTreeMap<String, Arc<IndexedFile>>;

/// Everything servable under a release root.
#[derive(Debug)]
pub struct ReleaseIndex {
    root: PathBuf,
    versions: BTreeMap<Version, VersionTree>,
    firmware: BTreeMap<Version, Arc<IndexedFile>>,
    descriptors: BTreeMap<Version, Arc<IndexedFile>>,
    /// `root.json` and `timestamp.json`, by file name.
    trust_files: BTreeMap<String, Arc<IndexedFile>>,
    /// Patches to the target's image, by source image SHA-256.
    patches: BTreeMap<String, Arc<IndexedFile>>,
    /// URL path (without the leading `/`, not percent-encoded) to file.
    by_url_path: HashMap<String, Arc<IndexedFile>>,
    target: Version,
}

/// Why a release root could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The root or one of its files could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// The root has no version folder at all.
    #[error("no version folders in {0}")]
    NoVersions(PathBuf),
    /// `--target` names a version that has no folder.
    #[error("target version {0} has no folder in the release root")]
    MissingTarget(Version),
}

impl ReleaseIndex {
    /// Indexes `root`, hashing every file. `target` defaults to the highest
    /// version. Paths in `exclude` (such as the server's own database) are
    /// never indexed even if they lie inside the root.
    pub fn build(
        root: &Path,
        target: Option<&Version>,
        exclude: &[PathBuf],
    ) -> Result<ReleaseIndex, IndexError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error| IndexError::Io { path, error }
        };
        let root = root.canonicalize().map_err(io_err(root))?;
        let exclude: Vec<PathBuf> = exclude
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        let mut versions = BTreeMap::new();
        let mut firmware = BTreeMap::new();
        let mut descriptors = BTreeMap::new();
        let mut trust_files = BTreeMap::new();
        for entry in std::fs::read_dir(&root).map_err(io_err(&root))? {
            let entry = entry.map_err(io_err(&root))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_err(&path))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                warn!(path = %path.display(), "skipping entry whose name is not UTF-8");
                continue;
            };
            if file_type.is_dir() {
                match Version::parse(&name) {
                    Ok(version) => {
                        let tree = index_version_folder(&path, &exclude)?;
                        versions.insert(version, tree);
                    }
                    Err(reason) => {
                        warn!(folder = %name, %reason, "skipping folder that is not a version")
                    }
                }
            } else if file_type.is_file() {
                if let Some(version) = firmware_version(&name) {
                    firmware.insert(version, Arc::new(hash_file(&path)?));
                } else if let Some(version) = descriptor_version(&name) {
                    descriptors.insert(version, Arc::new(hash_file(&path)?));
                } else if TRUST_FILES.contains(&name.as_str()) {
                    trust_files.insert(name, Arc::new(hash_file(&path)?));
                } else {
                    debug!(file = %name, "ignoring top-level file");
                }
            } else {
                warn!(path = %path.display(), "skipping symbolic link or special file");
            }
        }
        let target = match target {
            Some(t) if versions.contains_key(t) => t.clone(),
            Some(t) => return Err(IndexError::MissingTarget(t.clone())),
            None => match versions.keys().next_back() {
                Some(highest) => highest.clone(),
                None => return Err(IndexError::NoVersions(root)),
            },
        };
        let by_url_path = url_paths(&versions, &firmware, &descriptors, &trust_files);
        Ok(ReleaseIndex {
            root,
            versions,
            firmware,
            descriptors,
            trust_files,
            patches: BTreeMap::new(),
            by_url_path,
            target,
        })
    }

    /// The canonical release root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The version meters are updated to.
    pub fn target(&self) -> &Version {
        &self.target
    }

    /// The files of a version folder, if it exists.
    pub fn version(&self, version: &Version) -> Option<&VersionTree> {
        self.versions.get(version)
    }

    /// Every version folder, lowest first.
    pub fn versions(&self) -> impl Iterator<Item = &Version> {
        self.versions.keys()
    }

    /// Firmware images by version, lowest first.
    pub fn firmware(&self) -> &BTreeMap<Version, Arc<IndexedFile>> {
        &self.firmware
    }

    /// Signed target descriptors (`target_VERSION.json`) by version.
    pub fn descriptors(&self) -> &BTreeMap<Version, Arc<IndexedFile>> {
        &self.descriptors
    }

    /// The root certificate or the timestamp at the release root, by file
    /// name ([`ROOT_FILE`], [`TIMESTAMP_FILE`]); served at `/{name}`.
    pub fn trust_file(&self, name: &str) -> Option<&Arc<IndexedFile>> {
        self.trust_files.get(name)
    }

    /// Adds firmware patches (from [`crate::patches::build_patches`]) to
    /// what this index serves.
    pub fn attach_patches(&mut self, patches: BTreeMap<String, Arc<IndexedFile>>) {
        if let Some((_, target)) = self.firmware_for(&self.target) {
            let target = target.sha256.clone();
            for (source, patch) in &patches {
                self.by_url_path.insert(
                    crate::patches::patch_url_path(source, &target),
                    Arc::clone(patch),
                );
            }
        }
        self.patches = patches;
    }

    /// Every patch to the target's image, by source image SHA-256.
    pub fn patches(&self) -> &BTreeMap<String, Arc<IndexedFile>> {
        &self.patches
    }

    /// The patch to the target's image from the image with SHA-256 `source`.
    pub fn patch_from(&self, source: &str) -> Option<&Arc<IndexedFile>> {
        self.patches.get(source)
    }

    /// The firmware image a meter at `version` runs: the highest image not
    /// above it.
    pub fn firmware_for(&self, version: &Version) -> Option<(&Version, &Arc<IndexedFile>)> {
        self.firmware.range(..=version).next_back()
    }

    /// The file served at `url_path` (`1.0.0/flash/main.py`,
    /// `firmware_1.0.1.bin`), already percent-decoded and without the
    /// leading `/`.
    pub fn lookup(&self, url_path: &str) -> Option<&Arc<IndexedFile>> {
        self.by_url_path.get(url_path)
    }

    /// Number of servable files (version files plus firmware images).
    pub fn file_count(&self) -> usize {
        self.by_url_path.len()
    }
}

/// The URL path (before percent-encoding) of a file inside a version folder.
pub fn version_file_url_path(version: &Version, path: &str) -> String {
    format!("{version}/{path}")
}

/// The URL path of a firmware image.
pub fn firmware_url_path(version: &Version) -> String {
    format!("firmware_{version}.bin")
}

/// The URL path (and file name) of a signed target descriptor.
pub fn descriptor_url_path(version: &Version) -> String {
    format!("target_{version}.json")
}

/// The version in a `firmware_VERSION.bin` file name.
fn firmware_version(name: &str) -> Option<Version> {
    let version = name.strip_prefix("firmware_")?.strip_suffix(".bin")?;
    Version::parse(version).ok()
}

/// The version in a `target_VERSION.json` file name.
fn descriptor_version(name: &str) -> Option<Version> {
    let version = name.strip_prefix("target_")?.strip_suffix(".json")?;
    Version::parse(version).ok()
}

fn url_paths(
    versions: &BTreeMap<Version, VersionTree>,
    firmware: &BTreeMap<Version, Arc<IndexedFile>>,
    descriptors: &BTreeMap<Version, Arc<IndexedFile>>,
    trust_files: &BTreeMap<String, Arc<IndexedFile>>,
) -> HashMap<String, Arc<IndexedFile>> {
    let version_files = versions.iter().flat_map(|(version, tree)| {
        tree.iter()
            .map(move |(path, file)| (version_file_url_path(version, path), Arc::clone(file)))
    });
    let images = firmware
        .iter()
        .map(|(version, file)| (firmware_url_path(version), Arc::clone(file)));
    let signed = descriptors
        .iter()
        .map(|(version, file)| (descriptor_url_path(version), Arc::clone(file)));
    let trust = trust_files
        .iter()
        .map(|(name, file)| (name.clone(), Arc::clone(file)));
    version_files
        .chain(images)
        .chain(signed)
        .chain(trust)
        .collect()
}

/// Walks one version folder without following links.
fn index_version_folder(folder: &Path, exclude: &[PathBuf]) -> Result<VersionTree, IndexError> {
    let mut tree = VersionTree::new();
    for entry in WalkDir::new(folder).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| IndexError::Io {
            path: e.path().unwrap_or(folder).to_path_buf(),
            error: e.into(),
        })?;
        let path = entry.path();
        if entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            warn!(path = %path.display(), "skipping symbolic link or special file");
            continue;
        }
        if exclude.iter().any(|x| x == path) {
            continue;
        }
        if IGNORED_NAMES.iter().any(|n| entry.file_name() == *n) {
            continue;
        }
        let Some(relative) = relative_url_path(folder, path) else {
            warn!(path = %path.display(), "skipping file whose path is not UTF-8 or not servable");
            continue;
        };
        tree.insert(relative, Arc::new(hash_file(path)?));
    }
    Ok(tree)
}

/// `flash/lib/x.py` for `folder/flash/lib/x.py`, with `/` separators. Names
/// with characters a meter could not store safely (backslash, control
/// characters) are refused.
fn relative_url_path(folder: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(folder).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    let joined = parts?.join("/");
    let unsafe_char = |c: char| c == '\\' || c.is_control();
    (!joined.is_empty() && !joined.contains(unsafe_char)).then_some(joined)
}

/// Hashes a file with SHA-1 and SHA-256 in one pass.
pub(crate) fn hash_file(path: &Path) -> Result<IndexedFile, IndexError> {
    let io_err = |error| IndexError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut sha1 = Sha1::new();
    let mut sha256 = Sha256::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        if n == 0 {
            break;
        }
        sha1.update(&buffer[..n]);
        sha256.update(&buffer[..n]);
        size += n as u64;
    }
    Ok(IndexedFile {
        disk_path: path.to_path_buf(),
        sha1: hex::encode(sha1.finalize()),
        sha256: hex::encode(sha256.finalize()),
        size,
        content: OnceLock::new(),
    })
}
