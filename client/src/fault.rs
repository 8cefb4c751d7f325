//! Fault injection: a [`Storage`] wrapper that loses power at an exact
//! operation, or runs out of space.
//!
//! Every mutating call (create, append, each `write`, `sync`, rename,
//! remove, mkdir, directory and file-system sync) is numbered from 0. With a cut at N,
//! operations before N happen, operation N does not (a write is torn: the
//! first half of its buffer lands), and every later call, reads included,
//! fails as if the meter were off. Crash-consistency tests run an update
//! once per N and check what a fresh engine recovers.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::path::MeterPath;
use crate::storage::{DirEntry, Storage, WriteFile};

/// Shared counters of a [`FaultStorage`].
#[derive(Debug)]
struct Faults {
    ops: AtomicU64,
    /// The operation that loses power (`u64::MAX`: none).
    cut_at: AtomicU64,
    dead: AtomicBool,
    written: AtomicU64,
    capacity: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            ops: AtomicU64::new(0),
            cut_at: AtomicU64::new(u64::MAX),
            dead: AtomicBool::new(false),
            written: AtomicU64::new(0),
            capacity: None,
        }
    }
}

impl Faults {
    /// Counts one operation; `Err` when the power is (now) off.
    fn step(&self) -> io::Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(power_cut());
        }
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if self.cut_at.load(Ordering::SeqCst) == n {
            self.dead.store(true, Ordering::SeqCst);
            return Err(power_cut());
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            Err(power_cut())
        } else {
            Ok(())
        }
    }
}

fn power_cut() -> io::Error {
    io::Error::other("power cut (fault injection)")
}

/// A storage that fails like hardware does, for tests and rehearsals.
/// Clones share the same counters (one meter, one power supply).
#[derive(Clone)]
pub struct FaultStorage<S> {
    inner: S,
    faults: Arc<Faults>,
}

impl<S: Storage> FaultStorage<S> {
    /// Cuts power at operation `cut_at` (`None`: never; count only).
    pub fn new(inner: S, cut_at: Option<u64>) -> FaultStorage<S> {
        FaultStorage {
            inner,
            faults: Arc::new(Faults {
                cut_at: AtomicU64::new(cut_at.unwrap_or(u64::MAX)),
                ..Faults::default()
            }),
        }
    }

    /// Never loses power, but refuses writes past `capacity` new bytes
    /// with "no space left on device", and reports free space accordingly.
    pub fn with_capacity(inner: S, capacity: u64) -> FaultStorage<S> {
        FaultStorage {
            inner,
            faults: Arc::new(Faults {
                capacity: Some(capacity),
                ..Faults::default()
            }),
        }
    }

    /// Loses power `after` operations from now (0: at the next one),
    /// replacing any cut not yet reached.
    pub fn arm(&self, after: u64) {
        let at = self.ops().saturating_add(after);
        self.faults.cut_at.store(at, Ordering::SeqCst);
    }

    /// Operations counted so far.
    pub fn ops(&self) -> u64 {
        self.faults.ops.load(Ordering::SeqCst)
    }

    /// Whether the power cut has happened.
    pub fn is_cut(&self) -> bool {
        self.faults.dead.load(Ordering::SeqCst)
    }
}

struct FaultFile<'a> {
    inner: Box<dyn WriteFile + 'a>,
    faults: Arc<Faults>,
}

impl Write for FaultFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(cut) = self.faults.step() {
            if self.faults.cut_at.load(Ordering::SeqCst) != u64::MAX && !buf.is_empty() {
                // A torn write: part of the buffer reaches the disk.
                let _ = self.inner.write(&buf[..buf.len() / 2]);
            }
            return Err(cut);
        }
        if let Some(capacity) = self.faults.capacity {
            let written = self.faults.written.load(Ordering::SeqCst);
            if written + buf.len() as u64 > capacity {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
        }
        let n = self.inner.write(buf)?;
        self.faults.written.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.faults.alive()?;
        self.inner.flush()
    }
}

impl WriteFile for FaultFile<'_> {
    fn sync(&mut self) -> io::Result<()> {
        self.faults.step()?;
        self.inner.sync()
    }
}

struct FaultReader<'a> {
    inner: Box<dyn Read + 'a>,
    faults: Arc<Faults>,
}

impl Read for FaultReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.faults.alive()?;
        self.inner.read(buf)
    }
}

impl<S: Storage> Storage for FaultStorage<S> {
    fn read(&self, path: &MeterPath) -> io::Result<Vec<u8>> {
        self.faults.alive()?;
        self.inner.read(path)
    }

    fn open(&self, path: &MeterPath) -> io::Result<Box<dyn Read + '_>> {
        self.faults.alive()?;
        Ok(Box::new(FaultReader {
            inner: self.inner.open(path)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn open_at(&self, path: &MeterPath, offset: u64) -> io::Result<Box<dyn Read + '_>> {
        self.faults.alive()?;
        Ok(Box::new(FaultReader {
            inner: self.inner.open_at(path, offset)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn create(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        self.faults.step()?;
        Ok(Box::new(FaultFile {
            inner: self.inner.create(path)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn append(&self, path: &MeterPath) -> io::Result<Box<dyn WriteFile + '_>> {
        self.faults.step()?;
        Ok(Box::new(FaultFile {
            inner: self.inner.append(path)?,
            faults: Arc::clone(&self.faults),
        }))
    }

    fn size(&self, path: &MeterPath) -> io::Result<Option<u64>> {
        self.faults.alive()?;
        self.inner.size(path)
    }

    fn exists(&self, path: &MeterPath) -> io::Result<bool> {
        self.faults.alive()?;
        self.inner.exists(path)
    }

    fn rename(&self, from: &MeterPath, to: &MeterPath) -> io::Result<()> {
        self.faults.step()?;
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &MeterPath) -> io::Result<()> {
        self.faults.step()?;
        self.inner.remove_file(path)
    }

    fn create_dir(&self, path: &MeterPath) -> io::Result<()> {
        self.faults.step()?;
        self.inner.create_dir(path)
    }

    fn remove_dir(&self, path: &MeterPath) -> io::Result<()> {
        self.faults.step()?;
        self.inner.remove_dir(path)
    }

    fn remove_dir_all(&self, path: &MeterPath) -> io::Result<()> {
        self.faults.step()?;
        self.inner.remove_dir_all(path)
    }

    fn sync_dir(&self, dir: Option<&MeterPath>) -> io::Result<()> {
        self.faults.step()?;
        self.inner.sync_dir(dir)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.faults.step()?;
        self.inner.sync_all()
    }

    fn list(&self, dir: Option<&MeterPath>) -> io::Result<Vec<DirEntry>> {
        self.faults.alive()?;
        self.inner.list(dir)
    }

    fn case_insensitive(&self) -> io::Result<bool> {
        self.faults.alive()?;
        self.inner.case_insensitive()
    }

    fn free_space(&self) -> io::Result<u64> {
        self.faults.alive()?;
        let real = self.inner.free_space()?;
        Ok(match self.faults.capacity {
            Some(capacity) => {
                real.min(capacity.saturating_sub(self.faults.written.load(Ordering::SeqCst)))
            }
            None => real,
        })
    }
}
