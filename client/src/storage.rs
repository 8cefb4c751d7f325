//! The meter's file system, under one root.
//!
//! [`Storage`] is the seam the engine writes through: [`DirStorage`] is a
//! directory on a Linux meter (or a test's temp dir), and
//! [`crate::fault::FaultStorage`] wraps any storage to cut power at an exact
//! operation. Paths are [`MeterPath`]s, so nothing unchecked reaches it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::path::MeterPath;

/// A file open for writing.
pub trait WriteFile: Write {
    /// Flushes the file's data and metadata to stable storage (fsync).
    fn sync(&mut self) -> io::Result<()>;
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's path.
    pub path: MeterPath,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// File operations the update engine needs, all relative to the meter's
/// root. Every mutating call is one "operation" for fault injection;
/// renames must be atomic (POSIX `rename`).
pub trait Storage {
    /// Reads a whole (small) file.
    fn read(&self, path: &MeterPath) -> io::Result<Vec<u8>>;
    /// Opens a file for streaming reads.
    fn open(&self, path: &MeterPath) -> io::Result<Box<dyn Read + '_>>;
    /// Opens a file for streaming reads from byte `offset` (a patch's
    /// blocks are read each at its own offset). The default reads up to
    /// the offset; storages that can seek override it.
    fn open_at(&self, path: &MeterPath, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        let mut reader = self.open(path)?;
        let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())?;
        if skipped < offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} is shorter than {offset} bytes"),
            ));
        }
        Ok(reader)
    }
    /// Creates or truncates a file.
    fn create(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>>;
    /// Opens a file for appending, creating it if absent.
    fn append(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>>;
    /// The size of a file; `None` when nothing is there.
    fn size(&self, path: &MeterPath) -> io::Result<Option<u64>>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &MeterPath) -> io::Result<bool>;
    /// Atomically renames `from` to `to`, replacing a file at `to`.
    fn rename(&self, from: &MeterPath, to: &MeterPath) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &MeterPath) -> io::Result<()>;
    /// Creates one directory (its parent must exist).
    fn create_dir(&self, path: &MeterPath) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &MeterPath) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &MeterPath) -> io::Result<()>;
    /// Makes a directory's entries durable (fsync on the directory);
    /// `None` is the root.
    fn sync_dir(&self, dir: Option<&MeterPath>) -> io::Result<()>;
    /// Makes everything written so far durable at once (`syncfs`): cheaper
    /// than an fsync per file when many files were written.
    fn sync_all(&self) -> io::Result<()>;
    /// The entries of a directory (`None`: the root), sorted by path.
    fn list(&self, dir: Option<&MeterPath>) -> io::Result<Vec<DirEntry>>;
    /// Bytes available for new data.
    fn free_space(&self) -> io::Result<u64>;
    /// Whether names that differ only in case are one file here (FAT, as
    /// on Pycom meters; exFAT; most Windows and macOS volumes). The engine
    /// then refuses updates whose paths differ only in case.
    fn case_insensitive(&self) -> io::Result<bool>;
}

/// Creates `path`'s missing parent directories, outermost first, and
/// returns the ones it created.
pub fn create_parents(storage: &dyn Storage, path: &MeterPath) -> io::Result<Vec<MeterPath>> {
    let mut created = Vec::new();
    for dir in path.ancestors() {
        if !storage.exists(&dir)? {
            storage.create_dir(&dir)?;
            created.push(dir);
        }
    }
    Ok(created)
}

/// Replaces `path` with `content` so that a power cut leaves either the
/// old or the new content: [`otavan_durable::replace`]'s sequence (write
/// `PATH.tmp`, fsync, rename, fsync the directory), each step one
/// [`Storage`] operation.
pub fn write_atomic(storage: &dyn Storage, path: &MeterPath, content: &[u8]) -> io::Result<()> {
    otavan_durable::replace(storage, path, content)
}

/// The steps of a durable replace, as storage operations (so a
/// [`crate::fault::FaultStorage`] can cut power between any two).
impl otavan_durable::AtomicReplace for dyn Storage + '_ {
    type Path = MeterPath;
    type File<'a>
        = Box<dyn WriteFile + 'a>
    where
        Self: 'a;

    fn temporary(&self, path: &MeterPath) -> io::Result<MeterPath> {
        let name = format!("{}{}", path.as_str(), otavan_durable::TEMPORARY_SUFFIX);
        MeterPath::parse(&name).map_err(io::Error::other)
    }

    fn create_file(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        self.create(path)
    }

    fn sync_file(&self, file: &mut Box<dyn WriteFile + '_>) -> io::Result<()> {
        file.sync()
    }

    fn rename_file(&self, from: &MeterPath, to: &MeterPath) -> io::Result<()> {
        self.rename(from, to)
    }

    fn sync_parent(&self, path: &MeterPath) -> io::Result<()> {
        self.sync_dir(path.parent().as_ref())
    }
}

/// Every file under `dir` (`None`: the root), recursively, sorted.
pub fn walk_files(storage: &dyn Storage, dir: Option<&MeterPath>) -> io::Result<Vec<MeterPath>> {
    let mut files = Vec::new();
    for entry in storage.list(dir)? {
        if entry.is_dir {
            files.extend(walk_files(storage, Some(&entry.path))?);
        } else {
            files.push(entry.path);
        }
    }
    Ok(files)
}

/// A directory on the local file system.
///
/// Mutating operations refuse to pass through symbolic links, so even a
/// link planted in the meter's tree cannot redirect a write outside it.
#[derive(Debug, Clone)]
pub struct DirStorage {
    root: PathBuf,
    /// Whether names differing only in case are one file, when told; else
    /// detected.
    case_insensitive: Option<bool>,
}

impl DirStorage {
    /// Storage rooted at `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<DirStorage> {
        let root = root.into();
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(DirStorage {
            root,
            case_insensitive: None,
        })
    }

    /// This storage, told whether it ignores case instead of detecting it
    /// (a meter knows its volumes).
    pub fn with_case_insensitive(self, case_insensitive: bool) -> DirStorage {
        DirStorage {
            case_insensitive: Some(case_insensitive),
            ..self
        }
    }

    /// Whether some entry of the root is found again under its name with
    /// the case of its letters swapped: then the volume holding it ignores
    /// case. The root's entries are where a meter's volumes are mounted
    /// (`flash`, `sd`) and where its state lives (`.otavan`).
    fn detect_case_insensitive(&self) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let swapped: String = name
                .chars()
                .map(|c| {
                    if c.is_lowercase() {
                        c.to_uppercase().next().unwrap_or(c)
                    } else {
                        c.to_lowercase().next().unwrap_or(c)
                    }
                })
                .collect();
            if swapped == name {
                continue;
            }
            let (Ok(there), Ok(again)) = (
                fs::symlink_metadata(entry.path()),
                fs::symlink_metadata(self.root.join(&swapped)),
            ) else {
                continue;
            };
            if (there.dev(), there.ino()) == (again.dev(), again.ino()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &MeterPath) -> PathBuf {
        self.root.join(path.as_str())
    }

    /// The full path, after checking that no existing component of it is a
    /// symbolic link.
    fn checked(&self, path: &MeterPath) -> io::Result<PathBuf> {
        for dir in path.ancestors().iter().chain(std::iter::once(path)) {
            match fs::symlink_metadata(self.full(dir)) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{dir} is a symbolic link"),
                    ));
                }
                Ok(_) => {}
                Err(e) if absent(&e) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(self.full(path))
    }

    fn dir_path(&self, dir: Option<&MeterPath>) -> PathBuf {
        dir.map_or_else(|| self.root.clone(), |d| self.full(d))
    }
}

/// Bytes a file accumulates before their write-back is started.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

/// A file being written. Every [`WRITEBACK_EVERY`] bytes it asks the
/// kernel to start writing them back, so a large file's final fsync (a
/// firmware image's) finds little left to do, and dirty memory stays
/// bounded.
struct DirFile {
    file: File,
    /// Bytes written whose write-back was not started yet.
    pending: u64,
}

impl DirFile {
    fn new(file: File) -> DirFile {
        DirFile { file, pending: 0 }
    }

    /// Starts write-back of the pending bytes without waiting for it. Only
    /// a hint: durability still comes from [`WriteFile::sync`], so a
    /// failure here changes nothing and is ignored.
    fn start_writeback(&mut self) {
        use std::io::Seek;
        let pending = std::mem::take(&mut self.pending);
        // In append mode too, the position is the end of the last write.
        let Ok(end) = self.file.stream_position() else {
            return;
        };
        let start = end.saturating_sub(pending);
        // POSIX_FADV_DONTNEED starts write-back of the range's dirty pages
        // (WB_SYNC_NONE); pages still dirty or under write-back stay cached.
        let _ = rustix::fs::fadvise(
            &self.file,
            start,
            std::num::NonZeroU64::new(end - start),
            rustix::fs::Advice::DontNeed,
        );
    }
}

impl Write for DirFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.pending += n as u64;
        if self.pending >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl WriteFile for DirFile {
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}

impl Storage for DirStorage {
    fn read(&self, path: &MeterPath) -> io::Result<Vec<u8>> {
        fs::read(self.checked(path)?)
    }

    fn open(&self, path: &MeterPath) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.checked(path)?)?))
    }

    fn open_at(&self, path: &MeterPath, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        use std::io::{Seek, SeekFrom};
        let mut file = File::open(self.checked(path)?)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(file))
    }

    fn create(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        Ok(Box::new(DirFile::new(File::create(self.checked(path)?)?)))
    }

    fn append(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.checked(path)?)?;
        Ok(Box::new(DirFile::new(file)))
    }

    fn size(&self, path: &MeterPath) -> io::Result<Option<u64>> {
        match fs::symlink_metadata(self.checked(path)?) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, path: &MeterPath) -> io::Result<bool> {
        match fs::symlink_metadata(self.full(path)) {
            Ok(_) => Ok(true),
            Err(e) if absent(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn rename(&self, from: &MeterPath, to: &MeterPath) -> io::Result<()> {
        fs::rename(self.checked(from)?, self.checked(to)?)
    }

    fn remove_file(&self, path: &MeterPath) -> io::Result<()> {
        fs::remove_file(self.checked(path)?)
    }

    fn create_dir(&self, path: &MeterPath) -> io::Result<()> {
        fs::create_dir(self.checked(path)?)
    }

    fn remove_dir(&self, path: &MeterPath) -> io::Result<()> {
        fs::remove_dir(self.checked(path)?)
    }

    fn remove_dir_all(&self, path: &MeterPath) -> io::Result<()> {
        fs::remove_dir_all(self.checked(path)?)
    }

    fn sync_dir(&self, dir: Option<&MeterPath>) -> io::Result<()> {
        File::open(self.dir_path(dir))?.sync_all()
    }

    fn sync_all(&self) -> io::Result<()> {
        let root = File::open(&self.root)?;
        rustix::fs::syncfs(&root).map_err(io::Error::from)
    }

    fn list(&self, dir: Option<&MeterPath>) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(self.dir_path(dir))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = match dir {
                Some(dir) => dir.join(name),
                None => MeterPath::parse(name),
            };
            // Names the engine could never have written are not its business.
            let Ok(path) = path else { continue };
            let file_type = entry.file_type()?;
            entries.push(DirEntry {
                path,
                is_dir: file_type.is_dir(),
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    fn free_space(&self) -> io::Result<u64> {
        let stats = rustix::fs::statvfs(&self.root).map_err(io::Error::from)?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    fn case_insensitive(&self) -> io::Result<bool> {
        match self.case_insensitive {
            Some(told) => Ok(told),
            None => self.detect_case_insensitive(),
        }
    }
}

/// Nothing is at a path: it does not exist, or a component above it is a
/// file (as when a file is about to become a directory).
fn absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_never_follow_symbolic_links() {
        let outside = tempfile::TempDir::new().unwrap();
        let root = tempfile::TempDir::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("flash")).unwrap();
        let storage = DirStorage::new(root.path()).unwrap();
        let path = MeterPath::parse("flash/main.py").unwrap();
        let error = storage.create(&path).err().expect("refused");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn atomic_write_and_walk() {
        let root = tempfile::TempDir::new().unwrap();
        let storage = DirStorage::new(root.path()).unwrap();
        let path = MeterPath::parse("a/b/c.txt").unwrap();
        let created = create_parents(&storage, &path).unwrap();
        assert_eq!(created.len(), 2);
        write_atomic(&storage, &path, b"one").unwrap();
        write_atomic(&storage, &path, b"two").unwrap();
        assert_eq!(storage.read(&path).unwrap(), b"two");
        assert_eq!(walk_files(&storage, None).unwrap(), vec![path]);
        assert!(storage.free_space().unwrap() > 0);
    }

    #[test]
    fn large_files_start_write_back_and_keep_every_byte() {
        let root = tempfile::TempDir::new().unwrap();
        let storage = DirStorage::new(root.path()).unwrap();
        let path = MeterPath::parse("image.bin").unwrap();
        let chunk: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut expected = Vec::new();
        let mut file = storage.create(&path).unwrap();
        for _ in 0..9 {
            file.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        drop(file);
        // Appending crosses the write-back threshold again.
        let mut file = storage.append(&path).unwrap();
        for _ in 0..9 {
            file.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        file.sync().unwrap();
        drop(file);
        assert!(expected.len() as u64 > 2 * WRITEBACK_EVERY);
        assert!(storage.read(&path).unwrap() == expected);
    }
}
