//! Building `manifest.json` from the release index, and caching the bytes.
//!
//! A manifest takes a meter from its current version `X` to the target:
//! files only in the target are `new`, files in both with a different SHA-1
//! are `update`, files only in `X` are `delete`, and the firmware is the
//! highest image above `X` and not above the target. A signed release also
//! names the target's descriptor, `X`'s, the root certificate and the
//! timestamp, when the root holds them. Entries come out in
//! path order (the index keeps them sorted), so the same request always
//! yields the same bytes.

use bytes::Bytes;
use otavan_protocol::root::ROOT_FILE;
use otavan_protocol::timestamp::TIMESTAMP_FILE;
use otavan_protocol::{FileEntry, FirmwareEntry, FirmwarePatch, Manifest, Version};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::index::{
    IndexedFile, ReleaseIndex, descriptor_url_path, firmware_url_path, version_file_url_path,
};
use crate::patches::patch_url_path;

/// Characters escaped in the path part of manifest URLs: what RFC 3986 does
/// not allow in a path segment, plus `%` itself.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// The body served when the meter is already at or above the target.
pub const UP_TO_DATE: &[u8] = b"null";

/// Computes the manifest for a meter at `current` (`None`: the request named
/// no version, a full install), with URLs under `http://{host}`. `None` when
/// the meter is already at or above the target.
pub fn build(index: &ReleaseIndex, current: Option<&Version>, host: &str) -> Option<Manifest> {
    let target = index.target();
    if current.is_some_and(|c| c >= target) {
        return None;
    }
    let url = |url_path: &str| format!("http://{host}/{}", utf8_percent_encode(url_path, PATH));
    let target_tree = index.version(target)?;
    let empty = Default::default();
    let base_tree = current.and_then(|c| index.version(c)).unwrap_or(&empty);

    let mut new = Vec::new();
    let mut update = Vec::new();
    for (path, file) in target_tree {
        let list = match base_tree.get(path) {
            Some(old) if old.sha1 == file.sha1 => continue,
            Some(_) => &mut update,
            None => &mut new,
        };
        list.push(FileEntry {
            url: url(&version_file_url_path(target, path)),
            dst_path: format!("/{path}"),
            hash: file.sha1.clone(),
            sha256: Some(file.sha256.clone()),
            size: Some(file.size),
        });
    }
    let delete = base_tree
        .keys()
        .filter(|path| !target_tree.contains_key(*path))
        .cloned()
        .collect();
    let firmware = newest_firmware(index, current).map(|(version, file)| FirmwareEntry {
        url: url(&firmware_url_path(version)),
        hash: file.sha1.clone(),
        sha256: Some(file.sha256.clone()),
        size: Some(file.size),
        patch: patch_for(index, current, file, &url),
    });
    Some(Manifest {
        delete,
        firmware,
        new,
        update,
        version: target.to_string(),
        previous_version: current.map(Version::to_string),
        descriptor: index
            .descriptors()
            .contains_key(target)
            .then(|| url(&descriptor_url_path(target))),
        previous_descriptor: current
            .filter(|c| index.descriptors().contains_key(*c))
            .map(|c| url(&descriptor_url_path(c))),
        root: index.trust_file(ROOT_FILE).map(|_| url(ROOT_FILE)),
        timestamp: index
            .trust_file(TIMESTAMP_FILE)
            .map(|_| url(TIMESTAMP_FILE)),
    })
}

/// The highest firmware image above `current` and not above the target.
fn newest_firmware<'a>(
    index: &'a ReleaseIndex,
    current: Option<&Version>,
) -> Option<(&'a Version, &'a IndexedFile)> {
    let (version, file) = index.firmware_for(index.target())?;
    current
        .is_none_or(|c| version > c)
        .then_some((version, file.as_ref()))
}

/// The patch to `image` from the image a meter at `current` runs, if the
/// server has one.
fn patch_for(
    index: &ReleaseIndex,
    current: Option<&Version>,
    image: &IndexedFile,
    url: &impl Fn(&str) -> String,
) -> Option<FirmwarePatch> {
    let (_, source) = index.firmware_for(current?)?;
    let patch = index.patch_from(&source.sha256)?;
    Some(FirmwarePatch {
        url: url(&patch_url_path(&source.sha256, &image.sha256)),
        source_sha256: source.sha256.clone(),
        hash: patch.sha1.clone(),
        sha256: patch.sha256.clone(),
        size: patch.size,
    })
}

/// Serialises a manifest answer: the manifest's JSON, or `null`.
pub fn render(manifest: Option<&Manifest>) -> Bytes {
    match manifest {
        Some(m) => Bytes::from(serde_json::to_vec(m).expect("manifest serialises")),
        None => Bytes::from_static(UP_TO_DATE),
    }
}
