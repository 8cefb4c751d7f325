//! How many bytes each meter needs: given in the scenario, or computed from
//! a real release tree with the van server's own manifest logic.

use std::collections::BTreeMap;
use std::path::PathBuf;

use otavan_protocol::Version;
use otavan_server::index::ReleaseIndex;
use otavan_server::manifest;
use otavan_server::state::{IndexSettings, Release};

use crate::scenario::{Scenario, ScenarioError};

/// The host the manifests' URLs name (it does not change the sizes).
const VAN_HOST: &str = "192.168.4.1:8000";

/// The update each source version needs.
#[derive(Debug, Clone)]
pub struct UpdateSizes {
    /// The version every meter should end at.
    pub target: Version,
    /// Bytes a meter at each source version downloads (manifest, new and
    /// changed files, firmware or its delta).
    pub bytes: BTreeMap<Version, u64>,
}

impl UpdateSizes {
    /// What a meter at `version` needs: `None` at or above the target.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Invalid`] when the version is below the target but
    /// has no size.
    pub fn need(&self, version: &Version) -> Result<Option<u64>, ScenarioError> {
        if version >= &self.target {
            return Ok(None);
        }
        self.bytes
            .get(version)
            .copied()
            .map(Some)
            .ok_or_else(|| ScenarioError::Invalid {
                field: "release.sizes".into(),
                message: format!(
                    "no update size for version {version}, which fleet.versions lists"
                ),
            })
    }
}

/// The sizes for `scenario`'s source versions. With a `release_dir`, the
/// tree is indexed like `otavan serve` does (deltas cached in
/// `patch_cache`) and each size is that of the manifest it would send.
///
/// # Errors
///
/// [`ScenarioError::Invalid`] when the release tree cannot be indexed.
pub fn update_sizes(
    scenario: &Scenario,
    patch_cache: Option<PathBuf>,
) -> Result<UpdateSizes, ScenarioError> {
    let release = &scenario.release;
    let Some(dir) = &release.release_dir else {
        let parse = |v: &str| Version::parse(v).expect("validated");
        return Ok(UpdateSizes {
            target: parse(&release.target),
            bytes: release.sizes.iter().map(|(v, b)| (parse(v), *b)).collect(),
        });
    };
    let root = scenario.base_dir.join(dir);
    let settings = IndexSettings {
        root: root.clone(),
        target: None,
        exclude: Vec::new(),
        preload_bytes: 0,
        manifest_cache_bytes: otavan_server::manifest_cache::DEFAULT_BUDGET,
        patch_cache: patch_cache.filter(|_| release.deltas),
    };
    let loaded = Release::load(&settings).map_err(|e| ScenarioError::Invalid {
        field: "release.release_dir".into(),
        message: format!("{}: {e}", root.display()),
    })?;
    Ok(sizes_from_index(&loaded.index, scenario))
}

/// The sizes of `scenario`'s source versions in an indexed release: for
/// each, the manifest the van server would send, its new and changed
/// files, and the firmware image or its delta.
pub fn sizes_from_index(index: &ReleaseIndex, scenario: &Scenario) -> UpdateSizes {
    let mut bytes = BTreeMap::new();
    for (version, _) in scenario.versions() {
        let Some(m) = manifest::build(index, Some(&version), VAN_HOST) else {
            continue;
        };
        let files: u64 = m.new.iter().chain(&m.update).filter_map(|f| f.size).sum();
        let firmware = m.firmware.as_ref().map_or(0, |f| match &f.patch {
            Some(patch) => patch.size,
            None => f.size.unwrap_or(0),
        });
        let manifest_len = manifest::render(Some(&m)).len() as u64;
        bytes.insert(version, manifest_len + files + firmware);
    }
    UpdateSizes {
        target: index.target().clone(),
        bytes,
    }
}
