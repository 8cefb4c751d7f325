//! SHA-1, SHA-256 and length of content, computed incrementally as bytes
//! arrive ([`Hashes`]) or over a stream ([`digest`]), and compared with
//! what a manifest promised ([`Digest3::check`]).
//!
//! Manifests give SHA-1 (Pycom) and, from otavan servers, SHA-256; both
//! are checked whenever both are given. A long stream is hashed with both
//! algorithms at once, SHA-1 on a helper thread, so reading back a large
//! firmware image costs the slower of the two hashes, not their sum.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::path::MeterPath;
use crate::plan::Expected;

/// Read buffer for hashing and copying: memory stays bounded whatever the
/// file sizes.
pub const BUFFER: usize = 64 * 1024;

/// Buffers in flight between the reader and the SHA-1 thread.
const DEPTH: usize = 4;

/// Content that does not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {what} mismatch (expected {expected}, got {actual})")]
pub struct Mismatch {
    /// The file.
    pub path: MeterPath,
    /// `sha1`, `sha256` or `size`.
    pub what: &'static str,
    /// What the manifest says.
    pub expected: String,
    /// What arrived.
    pub actual: String,
}

/// SHA-1, SHA-256 and length of some content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest3 {
    /// Lower-case hex SHA-1.
    pub sha1: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Bytes hashed.
    pub size: u64,
}

impl Digest3 {
    /// Compares with what the manifest promised: the size and SHA-256 when
    /// given, SHA-1 always.
    pub fn check(&self, expect: &Expected, path: &MeterPath) -> Result<(), Mismatch> {
        let mismatch = |what, expected: String, actual: String| Mismatch {
            path: path.clone(),
            what,
            expected,
            actual,
        };
        if let Some(size) = expect.size
            && size != self.size
        {
            return Err(mismatch("size", size.to_string(), self.size.to_string()));
        }
        if expect.sha1 != self.sha1 {
            return Err(mismatch("sha1", expect.sha1.clone(), self.sha1.clone()));
        }
        if let Some(sha256) = &expect.sha256
            && *sha256 != self.sha256
        {
            return Err(mismatch("sha256", sha256.clone(), self.sha256.clone()));
        }
        Ok(())
    }
}

/// Both hashes and the length of the bytes fed so far.
#[derive(Clone, Default)]
pub struct Hashes {
    sha1: Sha1,
    sha256: Sha256,
    len: u64,
}

impl Hashes {
    /// Nothing hashed yet.
    pub fn new() -> Hashes {
        Hashes::default()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        self.sha256.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Feeds everything `reader` yields.
    pub fn update_from(&mut self, reader: impl Read) -> io::Result<()> {
        let mut chunks = Chunks::new(reader);
        while let Some(data) = chunks.next_chunk()? {
            self.update(data);
        }
        Ok(())
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest3 {
        Digest3 {
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            size: self.len,
        }
    }
}

/// Hashes a stream with bounded memory. Beyond one buffer, SHA-1 runs on a
/// helper thread beside SHA-256.
pub fn digest(reader: impl Read) -> io::Result<Digest3> {
    let mut chunks = Chunks::new(reader);
    let mut hashes = Hashes::new();
    let first = match chunks.next_chunk()? {
        // The stream ended within one buffer: not worth a thread.
        Some(data) if data.len() < BUFFER => {
            hashes.update(data);
            return Ok(hashes.finish());
        }
        Some(data) => Chunk::filled(data),
        None => return Ok(hashes.finish()),
    };
    digest_in_parallel(first, chunks.reader)
}

/// A read buffer, shared by the two hashing threads once filled.
struct Chunk {
    data: Box<[u8]>,
    len: usize,
}

impl Chunk {
    fn empty() -> Chunk {
        Chunk {
            data: vec![0u8; BUFFER].into_boxed_slice(),
            len: 0,
        }
    }

    fn filled(data: &[u8]) -> Chunk {
        let mut chunk = Chunk::empty();
        chunk.data[..data.len()].copy_from_slice(data);
        chunk.len = data.len();
        chunk
    }

    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// A chunk the helper handed back: by then it holds the only copy.
    fn reuse(done: Arc<Chunk>) -> Chunk {
        Arc::into_inner(done).unwrap_or_else(Chunk::empty)
    }
}

/// SHA-256 on this thread, SHA-1 on a scoped helper. Each filled chunk is
/// shared with the helper, which hands it back to be refilled; at most
/// [`DEPTH`] chunks exist.
fn digest_in_parallel(first: Chunk, mut reader: impl Read) -> io::Result<Digest3> {
    let (to_helper, filled) = mpsc::sync_channel::<Arc<Chunk>>(DEPTH);
    let (to_reader, emptied) = mpsc::channel::<Arc<Chunk>>();
    let stopped = || io::Error::other("the SHA-1 thread stopped");
    thread::scope(|scope| {
        let helper = scope.spawn(move || {
            let mut sha1 = Sha1::new();
            for chunk in filled {
                sha1.update(chunk.bytes());
                // After a read error nobody takes chunks back: dropped here.
                let _ = to_reader.send(chunk);
            }
            sha1
        });
        let mut sha256 = Sha256::new();
        let mut len = 0u64;
        let mut allocated = 1;
        let mut chunk = first;
        let result = loop {
            let shared = Arc::new(chunk);
            if to_helper.send(Arc::clone(&shared)).is_err() {
                break Err(stopped());
            }
            sha256.update(shared.bytes());
            len += shared.len as u64;
            drop(shared);
            chunk = match emptied.try_recv() {
                Ok(done) => Chunk::reuse(done),
                Err(_) if allocated < DEPTH => {
                    allocated += 1;
                    Chunk::empty()
                }
                Err(_) => match emptied.recv() {
                    Ok(done) => Chunk::reuse(done),
                    Err(_) => break Err(stopped()),
                },
            };
            match read_full(&mut reader, &mut chunk.data) {
                Ok(0) => break Ok(()),
                Ok(n) => chunk.len = n,
                Err(e) => break Err(e),
            }
        };
        drop(to_helper);
        let sha1 = helper.join().map_err(|_| stopped())?;
        result.map(|()| Digest3 {
            sha1: hex::encode(sha1.finalize()),
            sha256: hex::encode(sha256.finalize()),
            size: len,
        })
    })
}

/// Reads until `buffer` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A stream read in full buffers of [`BUFFER`] bytes.
struct Chunks<R> {
    reader: R,
    buffer: Vec<u8>,
}

impl<R: Read> Chunks<R> {
    fn new(reader: R) -> Chunks<R> {
        Chunks {
            reader,
            buffer: vec![0u8; BUFFER],
        }
    }

    fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let n = read_full(&mut self.reader, &mut self.buffer)?;
        Ok((n > 0).then(|| &self.buffer[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `data` at most `step` bytes per read, then fails if `fail`.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        fail: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.data.is_empty() && self.fail {
                return Err(io::Error::other("device gone"));
            }
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn reference(data: &[u8]) -> Digest3 {
        Digest3 {
            sha1: hex::encode(Sha1::digest(data)),
            sha256: hex::encode(Sha256::digest(data)),
            size: data.len() as u64,
        }
    }

    #[test]
    fn streams_of_any_length_hash_like_one_call() {
        let data: Vec<u8> = (0..(DEPTH + 3) * BUFFER + 7)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        for len in [0, 1, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER, data.len()] {
            let data = &data[..len];
            for step in [1000, BUFFER, 3 * BUFFER] {
                let reader = Trickle {
                    data,
                    step,
                    fail: false,
                };
                assert_eq!(digest(reader).unwrap(), reference(data), "{len} by {step}");
            }
            let mut hashes = Hashes::new();
            for piece in data.chunks(777) {
                hashes.update(piece);
            }
            assert_eq!(hashes.len(), len as u64);
            assert_eq!(hashes.finish(), reference(data), "{len} incrementally");
        }
    }

    #[test]
    fn a_read_error_is_returned_from_either_path() {
        let data = vec![5u8; 4 * BUFFER];
        for len in [100, data.len()] {
            let reader = Trickle {
                data: &data[..len],
                step: BUFFER,
                fail: true,
            };
            let error = digest(reader).unwrap_err();
            assert_eq!(error.to_string(), "device gone");
        }
    }

    #[test]
    fn check_names_the_first_difference() {
        let path = MeterPath::parse("flash/main.py").unwrap();
        let digest = reference(b"abc");
        let mut expect = Expected {
            sha1: digest.sha1.clone(),
            sha256: Some(digest.sha256.clone()),
            size: Some(3),
        };
        assert_eq!(digest.check(&expect, &path), Ok(()));
        expect.sha256 = Some("0".repeat(64));
        assert_eq!(digest.check(&expect, &path).unwrap_err().what, "sha256");
        expect.sha1 = "0".repeat(40);
        assert_eq!(digest.check(&expect, &path).unwrap_err().what, "sha1");
        expect.size = Some(4);
        assert_eq!(digest.check(&expect, &path).unwrap_err().what, "size");
    }
}
