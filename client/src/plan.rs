//! Turning a manifest from the network into a checked update plan.
//!
//! Nothing in a manifest is trusted: every path is checked
//! ([`MeterPath::from_manifest`]), every hash must be well-formed hex, sizes
//! must be within limits, and no path may appear twice. Only a plan that
//! passes all of this reaches the disk.

use std::collections::BTreeSet;

use otavan_protocol::{Manifest, Version};
use sha1::{Digest, Sha1};

use crate::path::{MeterPath, PathError};
use crate::state::staging_dir;

/// Bounds on what a manifest may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest single file, in bytes.
    pub max_file: u64,
    /// Largest firmware image, in bytes.
    pub max_firmware: u64,
    /// Most files in one update (new, update and delete together).
    pub max_entries: usize,
    /// Free space to keep beyond what the update needs.
    pub reserve: u64,
    /// Largest booted image a firmware patch is applied to: the patch
    /// needs its source in memory, so bigger images are downloaded whole.
    pub max_patch_source: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file: 64 * 1024 * 1024,
            max_firmware: 1024 * 1024 * 1024,
            max_entries: 20_000,
            reserve: 256 * 1024,
            max_patch_source: 16 * 1024 * 1024,
        }
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A path could escape the root or is otherwise unsafe.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A hash is not lower-case hex of the right length.
    #[error("malformed {kind} for {what}: {value:?}")]
    Hash {
        /// `sha1` or `sha256`.
        kind: &'static str,
        /// The entry.
        what: String,
        /// The value given.
        value: String,
    },
    /// A file or image is larger than allowed.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The entry.
        what: String,
        /// Its declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("manifest has {0} entries, over the limit")]
    TooManyEntries(usize),
    /// The same path is named twice.
    #[error("{0} appears more than once in the manifest")]
    Duplicate(MeterPath),
    /// `version` is not a version.
    #[error("manifest version {0:?} is not a version")]
    BadVersion(String),
    /// The manifest was computed for another version than the meter's.
    #[error("manifest is for version {manifest}, but the meter is at {meter}")]
    WrongBase {
        /// `previous_version` in the manifest.
        manifest: String,
        /// The meter's version.
        meter: Version,
    },
    /// A URL that is not plain `http://`.
    #[error("unsupported URL {0:?}")]
    BadUrl(String),
    /// Two paths differ only in case on a meter whose storage ignores
    /// case: they would be one file there.
    #[error("{0} and {1} differ only in case, and this meter's storage ignores case")]
    CaseCollision(MeterPath, MeterPath),
    /// The update cannot be installed over the meter's tree as it is.
    #[error("{path} {reason}")]
    Tree {
        /// Where the tree is in the way.
        path: MeterPath,
        /// How.
        reason: &'static str,
    },
}

/// A file to download and install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Where it goes on the meter.
    pub path: MeterPath,
    /// Where it is downloaded to first.
    pub staged: MeterPath,
    /// Where to fetch it.
    pub url: String,
    /// Expected content.
    pub expect: Expected,
}

/// What downloaded content must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lower-case hex SHA-1 (always present).
    pub sha1: String,
    /// Lower-case hex SHA-256, when the server gave one.
    pub sha256: Option<String>,
    /// Size in bytes, when the server gave one.
    pub size: Option<u64>,
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePlan {
    /// The meter's version.
    pub from: Version,
    /// The version after the update.
    pub to: Version,
    /// New and changed files, in manifest order.
    pub files: Vec<PlannedFile>,
    /// Files to remove.
    pub deletes: Vec<MeterPath>,
    /// The firmware image, when there is one.
    pub firmware: Option<PlannedFile>,
    /// A patch that rebuilds the firmware image from the booted one.
    pub patch: Option<PlannedPatch>,
    /// The signed release counter, once a descriptor vouched for the plan.
    pub counter: Option<u64>,
}

/// A firmware patch on offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPatch {
    /// The patch download itself.
    pub file: PlannedFile,
    /// Lower-case hex SHA-256 of the image the patch applies to.
    pub source_sha256: String,
}

impl UpdatePlan {
    /// Every download: files, then the firmware image.
    pub fn downloads(&self) -> impl Iterator<Item = &PlannedFile> {
        self.files.iter().chain(self.firmware.as_ref())
    }

    /// Total declared bytes to download (entries without a size count 0).
    pub fn declared_bytes(&self) -> u64 {
        self.downloads().filter_map(|f| f.expect.size).sum()
    }

    /// The firmware patch, when it may be used: one no larger than the
    /// image it rebuilds, as declared (once a signed descriptor vouched
    /// for the plan, the image's size is the signed one). A patch larger
    /// than its image saves nothing and bounds nothing, so it is never
    /// downloaded; the full image is.
    pub fn usable_patch(&self) -> Option<&PlannedPatch> {
        let patch = self.patch.as_ref()?;
        let image = self.firmware.as_ref()?.expect.size?;
        patch
            .file
            .expect
            .size
            .is_some_and(|size| size <= image)
            .then_some(patch)
    }

    /// Bytes the update may occupy while staged: every download, and the
    /// usable patch beside the image it rebuilds.
    pub fn space_needed(&self) -> u64 {
        let patch = self.usable_patch().and_then(|p| p.file.expect.size);
        self.declared_bytes() + patch.unwrap_or(0)
    }
}

/// Checks `manifest` for a meter at `current`. `Ok(None)` when the
/// manifest's target is the meter's version (nothing to do).
pub fn plan(
    manifest: &Manifest,
    current: &Version,
    limits: &Limits,
) -> Result<Option<UpdatePlan>, PlanError> {
    let to = Version::parse(&manifest.version)
        .map_err(|_| PlanError::BadVersion(manifest.version.clone()))?;
    if &to == current {
        return Ok(None);
    }
    if let Some(base) = &manifest.previous_version
        && base != current.as_str()
    {
        return Err(PlanError::WrongBase {
            manifest: base.clone(),
            meter: current.clone(),
        });
    }
    let entries = manifest.new.len() + manifest.update.len() + manifest.delete.len();
    if entries > limits.max_entries {
        return Err(PlanError::TooManyEntries(entries));
    }
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for entry in manifest.new.iter().chain(&manifest.update) {
        let path = MeterPath::from_manifest(&entry.dst_path)?;
        if !seen.insert(path.clone()) {
            return Err(PlanError::Duplicate(path));
        }
        let expect = expected(
            &path.to_string(),
            &entry.hash,
            entry.sha256.as_deref(),
            entry.size,
            limits.max_file,
        )?;
        files.push(PlannedFile {
            staged: staged_name(path.as_str(), &expect.sha1),
            url: checked_url(&entry.url)?,
            path,
            expect,
        });
    }
    let mut deletes = Vec::new();
    for raw in &manifest.delete {
        let path = MeterPath::from_manifest(raw)?;
        if !seen.insert(path.clone()) {
            return Err(PlanError::Duplicate(path));
        }
        deletes.push(path);
    }
    let patch = match manifest.firmware.as_ref().and_then(|f| f.patch.as_ref()) {
        Some(patch) => {
            let what = "firmware patch";
            let expect = expected(
                what,
                &patch.hash,
                Some(&patch.sha256),
                Some(patch.size),
                limits.max_firmware,
            )?;
            Some(PlannedPatch {
                source_sha256: hex_digest(what, "source_sha256", &patch.source_sha256, 64)?,
                file: PlannedFile {
                    path: MeterPath::state("firmware.patch"),
                    staged: staged_name("firmware.patch", &expect.sha1),
                    url: checked_url(&patch.url)?,
                    expect,
                },
            })
        }
        None => None,
    };
    let firmware = match &manifest.firmware {
        Some(image) => {
            let expect = expected(
                "firmware",
                &image.hash,
                image.sha256.as_deref(),
                image.size,
                limits.max_firmware,
            )?;
            Some(PlannedFile {
                path: MeterPath::state("firmware"),
                staged: staged_name("firmware", &expect.sha1),
                url: checked_url(&image.url)?,
                expect,
            })
        }
        None => None,
    };
    Ok(Some(UpdatePlan {
        from: current.clone(),
        to,
        files,
        deletes,
        firmware,
        patch,
        counter: None,
    }))
}

fn expected(
    what: &str,
    sha1: &str,
    sha256: Option<&str>,
    size: Option<u64>,
    limit: u64,
) -> Result<Expected, PlanError> {
    let sha1 = hex_digest(what, "sha1", sha1, 40)?;
    let sha256 = sha256
        .map(|h| hex_digest(what, "sha256", h, 64))
        .transpose()?;
    if let Some(size) = size
        && size > limit
    {
        return Err(PlanError::TooLarge {
            what: what.to_owned(),
            size,
            limit,
        });
    }
    Ok(Expected { sha1, sha256, size })
}

/// Accepts hex digests in either case and returns them lower-case.
fn hex_digest(
    what: &str,
    kind: &'static str,
    value: &str,
    len: usize,
) -> Result<String, PlanError> {
    if value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(PlanError::Hash {
            kind,
            what: what.to_owned(),
            value: value.chars().take(80).collect(),
        })
    }
}

fn checked_url(url: &str) -> Result<String, PlanError> {
    let ok = url.starts_with("http://") && url.len() <= 2048 && !url.contains(char::is_control);
    if ok {
        Ok(url.to_owned())
    } else {
        Err(PlanError::BadUrl(url.chars().take(80).collect()))
    }
}

/// A staging file per (path, content): a resumed pass finds its partial
/// download again, and two paths never share one staged file.
fn staged_name(path: &str, sha1: &str) -> MeterPath {
    let path_digest = hex::encode(Sha1::digest(path.as_bytes()));
    staging_dir()
        .join(&format!("{}-{sha1}", &path_digest[..16]))
        .expect("hex names are valid paths")
}
