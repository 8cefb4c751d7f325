//! Applying a bsdiff patch (the `BSDIFF40` format) as a stream, bounded
//! by the size of the image it must rebuild.
//!
//! The format: a 32-byte header (`BSDIFF40`, then the compressed lengths
//! of the control and diff blocks and the new file's size, each a 64-bit
//! sign-magnitude little-endian integer) and three bzip2 streams: the
//! controls, the diff bytes and the extra bytes. Each control is three
//! such integers, `(add, copy, seek)`: add `add` diff bytes to as many
//! bytes of the source at its cursor, then copy `copy` extra bytes, then
//! move the source cursor by `seek`.
//!
//! Nothing of the patch is trusted, even when its hash matched the
//! manifest (an unsigned field): the patch is read from its staged file,
//! each block through its own reader at its own offset (never whole, so
//! memory does not grow with the patch), the header must name exactly the
//! size the image is expected to have, no control may take the output past
//! that size or read outside the source, and the controls must end with
//! exactly that many bytes written and every block used up to its end.
//! The source (the booted image) is in memory: bsdiff seeks in it freely.

use std::io::{self, BufReader, Read, Write};

use bzip2::bufread::BzDecoder;

use crate::path::MeterPath;
use crate::storage::Storage;

/// The header's length.
const HEADER: u64 = 32;

/// Bytes moved per read and write.
const CHUNK: usize = 64 * 1024;

/// Controls in a row that may write nothing (a patch made of parallel
/// chunks resets the source cursor between them); more is a patch that
/// spins without progress.
const MAX_IDLE_CONTROLS: u32 = 4;

/// Why a patch was not applied. Whatever was written must be discarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PatchError {
    /// The bytes are not a well-formed bsdiff patch.
    #[error("not a usable bsdiff patch: {0}")]
    Malformed(&'static str),
    /// The header names another size than the image must have.
    #[error("the patch builds {declared} bytes, the image has {expected}")]
    WrongSize {
        /// The size in the patch's header.
        declared: u64,
        /// The image's size.
        expected: u64,
    },
    /// A control would take the output past the image's size.
    #[error("the patch writes past the image's {expected} bytes")]
    TooLong {
        /// The image's size.
        expected: u64,
    },
    /// The controls ended before the image was complete.
    #[error("the patch ends after {written} of the image's {expected} bytes")]
    TooShort {
        /// Bytes written.
        written: u64,
        /// The image's size.
        expected: u64,
    },
    /// A control reads outside the source image.
    #[error("the patch reads outside the source image")]
    OutsideSource,
    /// Reading the patch, decompressing it or writing the output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The patch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// Compressed length of the control block.
    controls: u64,
    /// Compressed length of the diff block.
    diff: u64,
    /// The size of the file the patch builds.
    new_size: u64,
}

/// One control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Control {
    add: u64,
    copy: u64,
    seek: i64,
}

/// bsdiff's integer: 63 bits of magnitude and a sign bit.
fn decode(bytes: [u8; 8]) -> i64 {
    let raw = u64::from_le_bytes(bytes);
    let magnitude = (raw & !(1 << 63)) as i64;
    if raw >> 63 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// A length: a non-negative integer.
fn length(bytes: [u8; 8], what: &'static str) -> Result<u64, PatchError> {
    u64::try_from(decode(bytes)).map_err(|_| PatchError::Malformed(what))
}

fn field(bytes: &[u8; 32], at: usize) -> [u8; 8] {
    bytes[at..at + 8].try_into().expect("8 bytes")
}

impl Header {
    fn read(reader: &mut dyn Read, patch_len: u64) -> Result<Header, PatchError> {
        let mut bytes = [0; HEADER as usize];
        reader
            .read_exact(&mut bytes)
            .map_err(|_| PatchError::Malformed("shorter than its header"))?;
        if &bytes[..8] != b"BSDIFF40" {
            return Err(PatchError::Malformed("no BSDIFF40 magic"));
        }
        let header = Header {
            controls: length(field(&bytes, 8), "negative control block length")?,
            diff: length(field(&bytes, 16), "negative diff block length")?,
            new_size: length(field(&bytes, 24), "negative new size")?,
        };
        let blocks = HEADER
            .checked_add(header.controls)
            .and_then(|n| n.checked_add(header.diff));
        if blocks.is_none_or(|end| end > patch_len) {
            return Err(PatchError::Malformed("blocks longer than the patch"));
        }
        Ok(header)
    }
}

/// One compressed block of the staged patch, decompressed as it is read.
type Block<'a> = BzDecoder<BufReader<io::Take<Box<dyn Read + 'a>>>>;

fn block<'a>(
    storage: &'a dyn Storage,
    patch: &MeterPath,
    offset: u64,
    len: u64,
) -> io::Result<Block<'a>> {
    let reader = storage.open_at(patch, offset)?.take(len);
    Ok(BzDecoder::new(BufReader::with_capacity(CHUNK, reader)))
}

/// Reads exactly `buf.len()` bytes, or nothing at the end of `reader`
/// (`Ok(false)`).
fn read_exact_or_end(reader: &mut dyn Read, buf: &mut [u8]) -> Result<bool, PatchError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(PatchError::Malformed("a control is cut short")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// A block's bytes, which must all be there.
fn read_block(reader: &mut dyn Read, buf: &mut [u8], what: &'static str) -> Result<(), PatchError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => PatchError::Malformed(what),
        _ => PatchError::Io(e),
    })
}

/// Applies the patch staged at `patch` to `source`, writing into `out`
/// exactly `expected` bytes or failing. Returns the bytes written.
pub(crate) fn apply(
    storage: &dyn Storage,
    patch: &MeterPath,
    source: &[u8],
    expected: u64,
    out: &mut dyn Write,
) -> Result<u64, PatchError> {
    let patch_len = storage
        .size(patch)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the staged patch is gone"))?;
    let header = Header::read(&mut storage.open(patch)?, patch_len)?;
    if header.new_size != expected {
        return Err(PatchError::WrongSize {
            declared: header.new_size,
            expected,
        });
    }
    let diff_at = HEADER + header.controls;
    let extra_at = diff_at + header.diff;
    let mut controls = block(storage, patch, HEADER, header.controls)?;
    let mut diff = block(storage, patch, diff_at, header.diff)?;
    let mut extra = block(storage, patch, extra_at, patch_len - extra_at)?;

    let mut buf = vec![0; CHUNK];
    let mut delta = vec![0; CHUNK];
    let mut written: u64 = 0;
    // The source cursor: bsdiff lets it wander, only reads must be inside.
    let mut cursor: i64 = 0;
    let mut idle = 0;
    let mut raw = [0; 24];
    while read_exact_or_end(&mut controls, &mut raw)? {
        let control = Control {
            add: length(raw[..8].try_into().expect("8"), "negative add")?,
            copy: length(raw[8..16].try_into().expect("8"), "negative copy")?,
            seek: decode(raw[16..].try_into().expect("8")),
        };
        let produces = control
            .add
            .checked_add(control.copy)
            .ok_or(PatchError::TooLong { expected })?;
        if produces > expected - written {
            return Err(PatchError::TooLong { expected });
        }
        idle = if produces == 0 { idle + 1 } else { 0 };
        if idle > MAX_IDLE_CONTROLS {
            return Err(PatchError::Malformed("controls that write nothing"));
        }
        let start = usize::try_from(cursor).map_err(|_| PatchError::OutsideSource)?;
        let add = usize::try_from(control.add).map_err(|_| PatchError::OutsideSource)?;
        let from = source
            .get(start..)
            .and_then(|rest| rest.get(..add))
            .ok_or(PatchError::OutsideSource)?;
        for old in from.chunks(CHUNK) {
            let delta = &mut delta[..old.len()];
            read_block(&mut diff, delta, "the diff block ends early")?;
            for (d, o) in delta.iter_mut().zip(old) {
                *d = d.wrapping_add(*o);
            }
            out.write_all(delta)?;
        }
        let mut left = control.copy;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            read_block(&mut extra, &mut buf[..n], "the extra block ends early")?;
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        written += produces;
        cursor = cursor
            .checked_add(control.add as i64)
            .and_then(|c| c.checked_add(control.seek))
            .ok_or(PatchError::OutsideSource)?;
    }
    if written != expected {
        return Err(PatchError::TooShort { written, expected });
    }
    // The diff and extra blocks hold exactly what the controls used, and
    // each bzip2 stream ends whole (its checksums verified).
    for (block, what) in [
        (&mut diff as &mut dyn Read, "bytes left in the diff block"),
        (&mut extra, "bytes left in the extra block"),
    ] {
        if block.read(&mut buf[..1])? != 0 {
            return Err(PatchError::Malformed(what));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DirStorage;

    fn stage(bytes: &[u8]) -> (tempfile::TempDir, DirStorage, MeterPath) {
        let dir = tempfile::TempDir::new().unwrap();
        let storage = DirStorage::new(dir.path()).unwrap();
        let path = MeterPath::parse("patch.bsdiff").unwrap();
        std::fs::write(dir.path().join("patch.bsdiff"), bytes).unwrap();
        (dir, storage, path)
    }

    fn rebuild(patch: &[u8], source: &[u8], expected: u64) -> Result<Vec<u8>, PatchError> {
        let (_dir, storage, path) = stage(patch);
        let mut out = Vec::new();
        apply(&storage, &path, source, expected, &mut out)?;
        Ok(out)
    }

    /// Two images like successive builds, large enough for several
    /// chunks and for the server's parallel diff.
    fn images() -> (Vec<u8>, Vec<u8>) {
        let old: Vec<u8> = (0..600_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut new = old.clone();
        new.splice(10_000..10_000, vec![7; 3000]);
        new.drain(300_000..301_000);
        for at in [5, 77_777, 400_000] {
            new[at] ^= 0xA5;
        }
        (old, new)
    }

    #[test]
    fn rebuilds_what_the_servers_bsdiff_made() {
        let (old, new) = images();
        let patch = otavan_server::patches::diff(&old, &new).unwrap();
        assert!(patch.len() < new.len() / 10, "a real delta");
        let rebuilt = rebuild(&patch, &old, new.len() as u64).unwrap();
        assert!(rebuilt == new);
    }

    #[test]
    fn the_expected_size_must_be_the_headers() {
        let (old, new) = images();
        let patch = otavan_server::patches::diff(&old, &new).unwrap();
        for expected in [new.len() as u64 - 1, new.len() as u64 + 1] {
            let error = rebuild(&patch, &old, expected).unwrap_err();
            assert!(matches!(error, PatchError::WrongSize { .. }), "{error}");
        }
    }

    #[test]
    fn a_truncated_patch_fails_cleanly() {
        let (old, new) = images();
        let patch = otavan_server::patches::diff(&old, &new).unwrap();
        for cut in [0, 8, 31, 32, 40, patch.len() / 2, patch.len() - 1] {
            let result = rebuild(&patch[..cut], &old, new.len() as u64);
            assert!(result.is_err(), "cut at {cut} of {}", patch.len());
        }
    }

    #[test]
    fn integers_are_sign_magnitude() {
        assert_eq!(decode(5u64.to_le_bytes()), 5);
        assert_eq!(decode((5u64 | 1 << 63).to_le_bytes()), -5);
        assert_eq!(decode((1u64 << 63).to_le_bytes()), 0);
        assert!(length((3u64 | 1 << 63).to_le_bytes(), "x").is_err());
    }
}
