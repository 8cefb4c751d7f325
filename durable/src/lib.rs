//! Durable atomic file replacement: once [`write_atomic`] returns, the new
//! content survives a power cut; until then a cut leaves the old content
//! (or no file, if there was none), never a mix or a truncated file.
//!
//! The sequence is defined once, in [`replace`]: write a temporary file
//! next to the target (its name plus [`TEMPORARY_SUFFIX`]), flush it to
//! stable storage, rename it over the target, then flush the directory so
//! the rename itself is on disk. A rename alone is not enough: without the
//! first flush the renamed file may come back empty after a crash, and
//! without the second the directory may still name the old file.
//!
//! [`replace`] runs over any [`AtomicReplace`] file system, so the meter's
//! storage (and its fault-injecting test double, which cuts power at an
//! exact operation) goes through the very same steps as the van's and the
//! operator's files, which use [`write_atomic`] on the local file system.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::TempDir::new()?;
//! let plan = dir.path().join("PLAN.csv");
//! otavan_durable::write_atomic(&plan, b"dev_eui,enqueue_at\n")?;
//! otavan_durable::write_atomic(&plan, b"dev_eui\n")?;
//! assert_eq!(std::fs::read(&plan)?, b"dev_eui\n");
//! assert!(!dir.path().join("PLAN.csv.tmp").exists());
//! # Ok(())
//! # }
//! ```

use std::borrow::Borrow;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a temporary file's name adds to the name of the file it replaces.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// The operations a durable replace is made of, on some file system.
///
/// A trait rather than `std::fs` calls so that one sequence ([`replace`])
/// serves every file system otavan writes to: the local one
/// ([`write_atomic`]) and the meter's storage seam, whose test double
/// counts each of these operations to cut power in between.
pub trait AtomicReplace {
    /// A file's name on this file system.
    type Path: ?Sized + ToOwned;
    /// A file open for writing.
    type File<'a>: Write
    where
        Self: 'a;

    /// The temporary file that replaces `path`: its name plus
    /// [`TEMPORARY_SUFFIX`], in the same directory.
    fn temporary(&self, path: &Self::Path) -> io::Result<<Self::Path as ToOwned>::Owned>;

    /// Creates (or truncates) a file for writing.
    fn create_file(&self, path: &Self::Path) -> io::Result<Self::File<'_>>;

    /// Flushes a file's data and metadata to stable storage (fsync).
    fn sync_file(&self, file: &mut Self::File<'_>) -> io::Result<()>;

    /// Atomically renames `from` to `to`, replacing a file at `to`.
    fn rename_file(&self, from: &Self::Path, to: &Self::Path) -> io::Result<()>;

    /// Flushes the entries of the directory holding `path` (fsync on the
    /// directory).
    fn sync_parent(&self, path: &Self::Path) -> io::Result<()>;
}

/// Replaces `path` with `content` on `fs`: temporary file, fsync, rename,
/// fsync of the directory (see the crate docs). On an error the steps
/// after it are not taken; in particular nothing is renamed over `path`
/// before its content is on disk.
///
/// # Errors
///
/// The first failing step's error.
pub fn replace<F>(fs: &F, path: &F::Path, content: &[u8]) -> io::Result<()>
where
    F: AtomicReplace + ?Sized,
{
    let temporary = fs.temporary(path)?;
    let temporary = temporary.borrow();
    let mut file = fs.create_file(temporary)?;
    file.write_all(content)?;
    fs.sync_file(&mut file)?;
    drop(file);
    fs.rename_file(temporary, path)?;
    fs.sync_parent(path)
}

/// Replaces the local file `path` with `content`, durably (see the crate
/// docs). On failure the old file is untouched and the temporary file is
/// removed if it was left behind.
///
/// # Errors
///
/// The I/O error of the step that failed.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    replace(&Local, path, content).inspect_err(|_| {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(temporary_path(path));
    })
}

/// Flushes the directory holding the local file `path`, so that its
/// creation (or a rename to it) survives a power cut; `fsync` on the file
/// itself does not make its directory entry durable.
///
/// # Errors
///
/// The directory cannot be opened or flushed.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMPORARY_SUFFIX);
    PathBuf::from(name)
}

/// The local file system.
struct Local;

impl AtomicReplace for Local {
    type Path = Path;
    type File<'a> = File;

    fn temporary(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(temporary_path(path))
    }

    fn create_file(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    fn sync_file(&self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }

    fn rename_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_parent(&self, path: &Path) -> io::Result<()> {
        sync_parent(path)
    }
}

#[cfg(test)]
mod tests;
