//! Response bodies: bytes already in memory, or a file streamed from disk
//! in fixed-size chunks so memory stays bounded whatever the file size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes read from disk per chunk of a streamed file.
pub const CHUNK: usize = 64 * 1024;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// In-memory content, sent in one frame (`None` once sent).
    Bytes(Option<Bytes>),
    /// A byte range of a file, read chunk by chunk on the blocking pool.
    File(FileStream),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body::Bytes(None)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::Bytes(Some(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

/// Streams `len` bytes of a file from `offset`.
#[derive(Debug)]
pub struct FileStream {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    pending: Option<JoinHandle<io::Result<Bytes>>>,
}

impl FileStream {
    /// A stream of `len` bytes of `file` starting at `offset`.
    pub fn new(file: File, offset: u64, len: u64) -> FileStream {
        FileStream {
            file: Arc::new(file),
            offset,
            remaining: len,
            pending: None,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let pending = self.pending.get_or_insert_with(|| {
            let file = Arc::clone(&self.file);
            let (offset, len) = (self.offset, self.remaining.min(CHUNK as u64) as usize);
            tokio::task::spawn_blocking(move || read_chunk(&file, offset, len))
        });
        let result = ready!(Pin::new(pending).poll(cx));
        self.pending = None;
        let chunk = match result {
            Ok(Ok(chunk)) if chunk.is_empty() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being served",
            )),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(error)) => Err(error),
            Err(join) => Err(io::Error::other(join)),
        };
        if let Ok(chunk) = &chunk {
            self.offset += chunk.len() as u64;
            self.remaining -= chunk.len() as u64;
        } else {
            self.remaining = 0;
        }
        Poll::Ready(Some(chunk))
    }
}

/// Reads up to `len` bytes at `offset`; fewer only at end of file.
fn read_chunk(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buffer = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buffer.truncate(filled);
    Ok(buffer.freeze())
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::File(stream) => stream.poll_chunk(cx).map(|c| c.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Bytes(bytes) => bytes.is_none(),
            Body::File(stream) => stream.remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::File(stream) => SizeHint::with_exact(stream.remaining),
        }
    }
}
