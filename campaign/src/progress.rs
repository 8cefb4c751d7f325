//! `PLAN.csv.progress`: which WAKEs of a plan the broker has acknowledged,
//! so a restarted push never sends one twice.
//!
//! The file starts with a line naming the plan's SHA-256 (a progress file
//! of another plan is refused), then has one line per acknowledged
//! downlink, `ID ACKED_AT`: a WAKE's ID is its DevEUI, a multicast setup's
//! `setup-DEVEUI`, a halted campaign's CANCEL `cancel-DEVEUI`, a group
//! WAKE's `group-MCADDR` (a standing group's
//! WAKE in one slot: `group-MCADDR@TRANSMIT_AT`). Each line is appended and flushed to disk
//! (`fsync`) after the broker's PUBACK and before the next WAKE is
//! published; the directory is flushed once when the file is opened, so
//! the file itself (not only its lines) survives a power cut. A line cut short by a crash has no newline: it is dropped
//! when the file is opened again, so that WAKE counts as unsent (the one
//! case where it can go out twice: acknowledged, then the machine died
//! before the line reached the disk).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;

const HEADER: &str = "# otavan campaign push progress, plan sha256 ";

/// Why the progress file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The progress file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// It belongs to another plan, or is not a progress file.
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The progress file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
}

/// The SHA-256 of a plan's bytes, in hex.
pub fn digest(plan: &[u8]) -> String {
    hex::encode(Sha256::digest(plan))
}

/// The progress file next to `plan`: `PLAN.csv.progress`.
pub fn path_for(plan: &Path) -> PathBuf {
    let mut name = plan.as_os_str().to_owned();
    name.push(".progress");
    PathBuf::from(name)
}

/// The acknowledged WAKEs of one plan, read from its progress file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acknowledged(HashSet<String>);

impl Acknowledged {
    /// Whether the downlink `id` (a DevEUI for a WAKE) was acknowledged.
    pub fn contains(&self, id: impl std::fmt::Display) -> bool {
        self.0.contains(&id.to_string())
    }

    /// How many were.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads the progress at `path` for the plan with `digest`, without
/// changing anything (an absent file is no progress).
///
/// # Errors
///
/// [`ProgressError`] for I/O errors, another plan's file or a malformed
/// line.
pub fn read(path: &Path, digest: &str) -> Result<Acknowledged, ProgressError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Acknowledged::default()),
        Err(source) => {
            return Err(ProgressError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    parse(path, &text, digest).map(|(acked, _)| acked)
}

/// The acknowledged WAKEs and the length of the complete lines.
fn parse(path: &Path, text: &str, digest: &str) -> Result<(Acknowledged, usize), ProgressError> {
    let mismatch = |message: String| ProgressError::Mismatch {
        path: path.to_path_buf(),
        message,
    };
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut lines = text[..complete].lines();
    match lines.next().and_then(|l| l.strip_prefix(HEADER)) {
        Some(d) if d == digest => {}
        Some(_) => {
            return Err(mismatch(
                "it records another plan (PLAN.csv changed since): move it away to push \
                 the new plan from the start"
                    .into(),
            ));
        }
        None if complete == 0 => return Ok((Acknowledged::default(), 0)),
        None => return Err(mismatch("not an otavan progress file".into())),
    }
    let mut acked = HashSet::new();
    for (i, line) in lines.enumerate() {
        let id = line.split(' ').next().unwrap_or("");
        check_id(id).map_err(|e| mismatch(format!("line {}: {e}", i + 2)))?;
        acked.insert(id.to_owned());
    }
    Ok((Acknowledged(acked), complete))
}

/// Checks a downlink ID: a DevEUI, `setup-DEVEUI`, `cancel-DEVEUI`,
/// `group-MCADDR` or `group-MCADDR@TRANSMIT_AT`.
fn check_id(id: &str) -> Result<(), String> {
    match id.strip_prefix("group-") {
        Some(group) => {
            let (addr, at) = match group.split_once('@') {
                Some((addr, at)) => (addr, Some(at)),
                None => (group, None),
            };
            u32::from_str_radix(addr, 16).map_err(|_| format!("{id:?} names no group address"))?;
            match at {
                Some(at) => clock::parse(at).map(|_| ()),
                None => Ok(()),
            }
        }
        None => id
            .strip_prefix("setup-")
            .or_else(|| id.strip_prefix("cancel-"))
            .unwrap_or(id)
            .parse::<DevEui>()
            .map(|_| ()),
    }
}

/// The progress file open for appending.
#[derive(Debug)]
pub struct Progress {
    path: PathBuf,
    file: File,
    acked: Acknowledged,
}

impl Progress {
    /// Opens (creating) the progress at `path` for the plan with `digest`,
    /// dropping a line a crash cut short.
    ///
    /// # Errors
    ///
    /// As [`read`].
    pub fn open(path: &Path, digest: &str) -> Result<Progress, ProgressError> {
        let io_error = |source| ProgressError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        let text = std::fs::read_to_string(path).map_err(io_error)?;
        let (acked, complete) = parse(path, &text, digest)?;
        if complete != text.len() {
            file.set_len(complete as u64).map_err(io_error)?;
        }
        if complete == 0 {
            writeln!(file, "{HEADER}{digest}").map_err(io_error)?;
        }
        file.sync_data().map_err(io_error)?;
        // The file may be new (or new since the last power cut).
        otavan_durable::sync_parent(path).map_err(io_error)?;
        Ok(Progress {
            path: path.to_path_buf(),
            file,
            acked,
        })
    }

    /// What was acknowledged so far.
    pub fn acknowledged(&self) -> &Acknowledged {
        &self.acked
    }

    /// Records that downlink `id` (a DevEUI for a WAKE) was acknowledged
    /// `at`, on disk before returning.
    ///
    /// # Errors
    ///
    /// [`ProgressError::Io`].
    pub fn record(
        &mut self,
        id: impl std::fmt::Display,
        at: OffsetDateTime,
    ) -> Result<(), ProgressError> {
        let id = id.to_string();
        let line = format!("{id} {}\n", clock::format(at));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| ProgressError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.acked.0.insert(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_reopening_and_a_torn_line() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = path_for(&dir.path().join("PLAN.csv"));
        assert!(path.ends_with("PLAN.csv.progress"));
        let a: DevEui = "70b3d57ed0000001".parse().unwrap();
        let b: DevEui = "70b3d57ed0000002".parse().unwrap();
        let now = OffsetDateTime::now_utc();
        {
            let mut p = Progress::open(&path, "abc").unwrap();
            assert!(p.acknowledged().is_empty());
            p.record(a, now).unwrap();
        }
        // A crash in the middle of the next line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"70B3D57ED00000").unwrap();
        drop(file);
        assert_eq!(read(&path, "abc").unwrap().len(), 1);
        let mut p = Progress::open(&path, "abc").unwrap();
        assert!(p.acknowledged().contains(a) && !p.acknowledged().contains(b));
        p.record(b, now).unwrap();
        drop(p);
        let again = read(&path, "abc").unwrap();
        assert!(again.contains(a) && again.contains(b));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
        let error = Progress::open(&path, "other").unwrap_err().to_string();
        assert!(error.contains("another plan"), "{error}");
        assert!(read(&dir.path().join("absent"), "abc").unwrap().is_empty());
        // Multicast downlinks have their own IDs.
        let mut p = Progress::open(&path, "abc").unwrap();
        p.record(format!("setup-{a}"), now).unwrap();
        p.record(format!("cancel-{a}"), now).unwrap();
        p.record("group-01707000", now).unwrap();
        p.record("group-01800000@2025-06-02T00:00:02Z", now)
            .unwrap();
        drop(p);
        let again = read(&path, "abc").unwrap();
        assert!(again.contains("setup-70B3D57ED0000001") && again.contains("group-01707000"));
        assert!(again.contains("cancel-70B3D57ED0000001"));
        assert!(again.contains("group-01800000@2025-06-02T00:00:02Z"));
        std::fs::write(
            &path,
            "# otavan campaign push progress, plan sha256 abc\ngroup-xyz 1\n",
        )
        .unwrap();
        let error = read(&path, "abc").unwrap_err().to_string();
        assert!(
            error.contains("line 2: \"group-xyz\" names no group address"),
            "{error}"
        );
        std::fs::write(
            &path,
            "# otavan campaign push progress, plan sha256 abc\ngroup-01800000@noon 1\n",
        )
        .unwrap();
        assert!(
            read(&path, "abc")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }
}
