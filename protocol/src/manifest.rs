//! The update manifest a meter fetches from `GET /manifest.json`.
//!
//! The field names and shapes are those of the Pycom OTA library, which
//! meters in the field run unchanged: `new` and `update` entries carry an
//! upper-case `URL`, a `dst_path` starting with `/` and the lower-case SHA-1
//! hex of the file; `delete` lists paths *without* a leading slash. otavan
//! adds optional fields (`sha256`, `size`, `previous_version`, and for
//! signed releases `descriptor`, `previous_descriptor`, `root`,
//! `timestamp`) that the Pycom library ignores; they are omitted when unknown, so a manifest from a plain
//! Pycom server deserialises into the same types.

use serde::{Deserialize, Serialize};

/// A complete update manifest: how to go from one version to another.
///
/// When a meter is already up to date the server answers with the JSON
/// literal `null` instead, which deserialises as `Option::<Manifest>::None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Paths to remove, relative to the meter's root, without a leading `/`.
    #[serde(default)]
    pub delete: Vec<String>,
    /// A firmware image newer than the meter's, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareEntry>,
    /// Files the meter does not have yet.
    #[serde(default)]
    pub new: Vec<FileEntry>,
    /// Files the meter has, with different content in the target version.
    #[serde(default)]
    pub update: Vec<FileEntry>,
    /// The version the meter will be at after applying this manifest.
    pub version: String,
    /// The version this manifest was computed against (otavan extension;
    /// absent for a full install requested without a current version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// URL of the target's signed descriptor (otavan extension; absent for
    /// unsigned releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptor: Option<String>,
    /// URL of the signed descriptor of the version the manifest was
    /// computed against, when that version is signed (otavan extension):
    /// what a signed meter that has not kept one holds, so it knows which
    /// files it may delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_descriptor: Option<String>,
    /// URL of the root certificate naming the release keys (otavan
    /// extension; `root.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// URL of the signed timestamp naming the latest release (otavan
    /// extension; `timestamp.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// One file to download and install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Absolute URL of the file on the server.
    #[serde(rename = "URL")]
    pub url: String,
    /// Where the file goes on the meter, starting with `/` (`/flash/main.py`).
    pub dst_path: String,
    /// Lower-case hex SHA-1 of the file's content.
    pub hash: String,
    /// Lower-case hex SHA-256 of the file's content (otavan extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size of the file in bytes (otavan extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A firmware image to flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareEntry {
    /// Absolute URL of the image on the server.
    #[serde(rename = "URL")]
    pub url: String,
    /// Lower-case hex SHA-1 of the whole image.
    pub hash: String,
    /// Lower-case hex SHA-256 of the whole image (otavan extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size of the image in bytes (otavan extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A bsdiff patch that rebuilds this image from an older one (otavan
    /// extension): far fewer bytes through the van's short contact window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<FirmwarePatch>,
}

/// A binary patch from one firmware image to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwarePatch {
    /// Absolute URL of the patch on the server.
    #[serde(rename = "URL")]
    pub url: String,
    /// Lower-case hex SHA-256 of the image the patch applies to.
    pub source_sha256: String,
    /// Lower-case hex SHA-1 of the patch file.
    pub hash: String,
    /// Lower-case hex SHA-256 of the patch file.
    pub sha256: String,
    /// Size of the patch file in bytes.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_pycom_manifest_parses_without_extensions() {
        let body = r#"{"delete": ["sd/old.wav"], "firmware": {"URL": "http://10.0.0.1:8000/firmware_1.0.1.bin", "hash": "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
            "new": [], "update": [{"URL": "http://10.0.0.1:8000/1.0.1/flash/main.py", "dst_path": "/flash/main.py", "hash": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}],
            "version": "1.0.1"}"#;
        let manifest: Manifest = serde_json::from_str(body).unwrap();
        assert_eq!(manifest.delete, ["sd/old.wav"]);
        assert_eq!(manifest.update[0].dst_path, "/flash/main.py");
        assert_eq!(manifest.update[0].sha256, None);
        assert_eq!(manifest.previous_version, None);
        assert!(manifest.firmware.is_some());
    }

    #[test]
    fn null_body_means_up_to_date() {
        let parsed: Option<Manifest> = serde_json::from_str("null").unwrap();
        assert_eq!(parsed, None);
    }

    #[test]
    fn absent_extensions_are_not_serialised() {
        let manifest = Manifest {
            delete: vec![],
            firmware: None,
            new: vec![FileEntry {
                url: "http://h/1.0.0/flash/a.py".into(),
                dst_path: "/flash/a.py".into(),
                hash: "00".into(),
                sha256: None,
                size: None,
            }],
            update: vec![],
            version: "1.0.0".into(),
            previous_version: None,
            descriptor: None,
            previous_descriptor: None,
            root: None,
            timestamp: None,
        };
        let json = serde_json::to_string(&manifest).unwrap();
        assert_eq!(
            json,
            r#"{"delete":[],"new":[{"URL":"http://h/1.0.0/flash/a.py","dst_path":"/flash/a.py","hash":"00"}],"update":[],"version":"1.0.0"}"#
        );
    }
}
