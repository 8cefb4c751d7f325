//! The manifest as a meter reads it: the body is parsed the way every
//! transport parses it (`parse_manifest_body`), then checked into an update
//! plan (`plan::plan`), the last step before anything touches the disk.
//! Neither may panic on any bytes; a parsed manifest re-serialises and
//! re-parses equal; an accepted plan holds only checked paths, hashes and
//! URLs.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use otavan_client::plan::{Limits, plan};
use otavan_client::transport::response::{parse_manifest_body, request_target};
use otavan_protocol::Version;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(manifest)) = parse_manifest_body(data) else {
        return;
    };
    let again = serde_json::to_vec(&manifest).expect("a manifest serialises");
    assert_eq!(
        parse_manifest_body(&again).expect("re-parses"),
        Some(manifest.clone())
    );
    // The meter's own version: a fixed one, and the manifest's claimed base
    // so the checks past the base comparison are reached.
    let mut currents = vec![Version::parse("1.0.0").expect("valid")];
    if let Some(base) = manifest
        .previous_version
        .as_deref()
        .and_then(|v| Version::parse(v).ok())
    {
        currents.push(base);
    }
    for current in &currents {
        let update = match plan(&manifest, current, &Limits::default()) {
            Ok(Some(update)) => update,
            Ok(None) => continue,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                continue;
            }
        };
        assert_eq!(update.to.as_str(), manifest.version);
        assert_ne!(&update.to, current);
        assert_eq!(
            update.files.len(),
            manifest.new.len() + manifest.update.len()
        );
        let mut paths = BTreeSet::new();
        for path in update.files.iter().map(|f| &f.path).chain(&update.deletes) {
            assert!(paths.insert(path.clone()), "{path} twice");
        }
        let files = update
            .downloads()
            .chain(update.patch.as_ref().map(|p| &p.file));
        for file in files {
            let hex = |h: &str, len| {
                h.len() == len && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            };
            assert!(hex(&file.expect.sha1, 40), "{:?}", file.expect.sha1);
            assert!(file.expect.sha256.as_deref().is_none_or(|h| hex(h, 64)));
            assert!(file.url.starts_with("http://"), "{:?}", file.url);
            let _ = request_target(&file.url);
        }
        let _ = update.space_needed();
    }
});
