//! Paths on the meter's file system, checked before any use.
//!
//! Every path a manifest names goes through [`MeterPath::from_manifest`]
//! before the engine touches the disk: it is made relative to the meter's
//! root (after its one leading `/`), and anything that could escape the root
//! or confuse a FAT file system is refused: `..`, `.`, empty components,
//! absolute or drive paths, backslashes, NUL and other control characters.
//! The engine's own state directory ([`STATE_DIR`]) is off limits to
//! manifests, so a release cannot overwrite the journal it is applied with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The directory under the root where the client keeps its state.
pub const STATE_DIR: &str = ".otavan";

/// Longest accepted path, in bytes.
const MAX_PATH: usize = 1024;
/// Longest accepted path component, in bytes.
const MAX_COMPONENT: usize = 255;

/// A checked path relative to the meter's root, `/`-separated
/// (`flash/lib/meter.py`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MeterPath(String);

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path:?}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl MeterPath {
    /// Checks a path from a manifest (`/flash/main.py` in `new`/`update`,
    /// `sd/old.wav` in `delete`): one leading `/` is allowed and removed.
    pub fn from_manifest(path: &str) -> Result<MeterPath, PathError> {
        let relative = path.strip_prefix('/').unwrap_or(path);
        let checked = MeterPath::parse(relative).map_err(|e| PathError {
            path: path.to_owned(),
            reason: e.reason,
        })?;
        if checked.0 == STATE_DIR || checked.0.starts_with(&format!("{STATE_DIR}/")) {
            return Err(PathError {
                path: path.to_owned(),
                reason: "the client's state directory is reserved",
            });
        }
        Ok(checked)
    }

    /// Checks a relative path (no leading `/`).
    pub fn parse(path: &str) -> Result<MeterPath, PathError> {
        let refuse = |reason| {
            Err(PathError {
                path: path.to_owned(),
                reason,
            })
        };
        if path.is_empty() {
            return refuse("empty");
        }
        if path.len() > MAX_PATH {
            return refuse("longer than 1024 bytes");
        }
        if path.starts_with('/') {
            return refuse("absolute");
        }
        if path.contains('\\') {
            return refuse("backslash");
        }
        if path.contains(char::is_control) {
            return refuse("control character");
        }
        if path.contains(':') {
            return refuse("drive or stream separator ':'");
        }
        for component in path.split('/') {
            match component {
                "" => return refuse("empty component"),
                "." | ".." => return refuse("relative component"),
                c if c.len() > MAX_COMPONENT => return refuse("component longer than 255 bytes"),
                _ => {}
            }
        }
        Ok(MeterPath(path.to_owned()))
    }

    /// A path inside the client's state directory (`.otavan/NAME`).
    pub fn state(name: &str) -> MeterPath {
        MeterPath::parse(&format!("{STATE_DIR}/{name}")).expect("state paths are valid")
    }

    /// `self/name`; `name` may hold several components.
    pub fn join(&self, name: &str) -> Result<MeterPath, PathError> {
        MeterPath::parse(&format!("{}/{name}", self.0))
    }

    /// The parent directory, `None` at the top level.
    pub fn parent(&self) -> Option<MeterPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| MeterPath(parent.to_owned()))
    }

    /// Every ancestor directory, outermost first (`a`, `a/b` for `a/b/c`).
    pub fn ancestors(&self) -> Vec<MeterPath> {
        let mut ancestors = Vec::new();
        let mut current = self.parent();
        while let Some(dir) = current {
            current = dir.parent();
            ancestors.push(dir);
        }
        ancestors.reverse();
        ancestors
    }

    /// The path as a string, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeterPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for MeterPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MeterPath({:?})", self.0)
    }
}

impl TryFrom<String> for MeterPath {
    type Error = PathError;
    fn try_from(value: String) -> Result<MeterPath, PathError> {
        MeterPath::parse(&value)
    }
}

impl From<MeterPath> for String {
    fn from(path: MeterPath) -> String {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_become_relative() {
        assert_eq!(
            MeterPath::from_manifest("/flash/main.py").unwrap().as_str(),
            "flash/main.py"
        );
        assert_eq!(
            MeterPath::from_manifest("sd/old.wav").unwrap().as_str(),
            "sd/old.wav"
        );
        assert_eq!(
            MeterPath::from_manifest("/flash/lib/x.py")
                .unwrap()
                .to_string(),
            "/flash/lib/x.py"
        );
    }

    #[test]
    fn escapes_and_oddities_are_refused() {
        for bad in [
            "",
            "/",
            "//etc/passwd",
            "../../etc/passwd",
            "/flash/../../etc",
            "flash/./x",
            "flash//x",
            "flash/",
            "C:/Windows",
            "c:x",
            "flash\\..\\x",
            "\\\\server\\share",
            "flash/x\0.py",
            "flash/\nx",
            "/.otavan/state.json",
            ".otavan",
            "/.otavan",
        ] {
            assert!(MeterPath::from_manifest(bad).is_err(), "{bad:?} accepted");
        }
        assert!(MeterPath::from_manifest(&format!("/{}", "a".repeat(256))).is_err());
        assert!(MeterPath::from_manifest(&"a/".repeat(600)).is_err());
    }

    #[test]
    fn odd_but_harmless_names_are_fine() {
        for good in [
            "/flash/...",
            "/sd/sound files/bell #1.wav",
            "/flash/.hidden",
            "/.otavanx/y",
        ] {
            assert!(MeterPath::from_manifest(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn ancestors_outermost_first() {
        let path = MeterPath::parse("a/b/c.py").unwrap();
        let names: Vec<_> = path
            .ancestors()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(names, ["a", "a/b"]);
        assert!(MeterPath::parse("top.py").unwrap().ancestors().is_empty());
    }
}
