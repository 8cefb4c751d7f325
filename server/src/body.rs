//! Response bodies: bytes already in memory, or a file streamed from disk
//! in fixed-size chunks so memory stays bounded whatever the file size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::metrics::DownloadGuard;

/// Bytes read from disk per chunk of a streamed file. With hyper's write
/// buffer capped at the same size (see `server.rs`), a streaming connection
/// holds at most about two chunks.
pub const CHUNK: usize = 32 * 1024;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// In-memory content, sent in one frame (`None` once sent).
    Bytes(Option<Bytes>),
    /// In-memory content in parts, one frame each (a shared manifest with
    /// its base spliced in), and what the body holds until it is dropped
    /// (a permit that bounds how many such bodies exist).
    Parts(VecDeque<Bytes>, Option<OwnedSemaphorePermit>),
    /// A byte range of a file, read chunk by chunk on the blocking pool.
    File(FileStream),
    /// A file download, counted as it is sent and listed among the
    /// active downloads until the body is dropped.
    Download(Download),
}

/// Largest frame an in-memory download is cut into when its socket does
/// not count its progress (in-process callers): hyper asks for the next
/// frame once the previous one is nearly written, so progress shows.
/// Slicing `Bytes` copies nothing.
pub const MEMORY_FRAME: usize = 256 * 1024;

/// A download's content and its registration.
#[derive(Debug)]
pub struct Download {
    source: Source,
    guard: DownloadGuard,
}

#[derive(Debug)]
enum Source {
    /// What is left to hand out, in frames of at most `frame` bytes;
    /// `hold` keeps the body open for one more poll after the last frame.
    Memory {
        rest: Bytes,
        frame: usize,
        hold: bool,
    },
    File(FileStream),
}

impl Download {
    /// Sends in-memory `content`. When the socket counts the progress it
    /// goes to hyper as one frame (cheapest), and the body stays open
    /// until hyper has written nearly all of it, so the download stays
    /// listed while it runs; otherwise in frames of [`MEMORY_FRAME`].
    pub fn memory(content: Bytes, guard: DownloadGuard) -> Download {
        let tapped = guard.tapped();
        Download {
            source: Source::Memory {
                rest: content,
                frame: if tapped { usize::MAX } else { MEMORY_FRAME },
                hold: tapped,
            },
            guard,
        }
    }

    /// Streams a file.
    pub fn file(stream: FileStream, guard: DownloadGuard) -> Download {
        Download {
            source: Source::File(stream),
            guard,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let chunk = match &mut self.source {
            Source::Memory { rest, hold, .. } if rest.is_empty() => {
                // hyper polls again once the last frame is (nearly) written.
                *hold = false;
                None
            }
            Source::Memory { rest, frame, .. } => {
                let n = rest.len().min(*frame);
                Some(Ok(rest.split_to(n)))
            }
            Source::File(stream) => ready!(stream.poll_chunk(cx)),
        };
        if let Some(Ok(chunk)) = &chunk {
            self.guard.sent(chunk.len() as u64);
        }
        Poll::Ready(chunk)
    }

    fn remaining(&self) -> u64 {
        match &self.source {
            Source::Memory { rest, .. } => rest.len() as u64,
            Source::File(stream) => stream.remaining,
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Memory { rest, hold, .. } => rest.is_empty() && !hold,
            Source::File(stream) => stream.remaining == 0,
        }
    }
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

/// Streams `len` bytes of a file from its current position. The file moves
/// into the blocking task that reads a chunk and comes back with it.
#[derive(Debug)]
pub struct FileStream {
    file: Option<File>,
    remaining: u64,
    pending: Option<JoinHandle<(File, io::Result<Vec<u8>>)>>,
}

impl FileStream {
    /// A stream of `len` bytes of `file` starting at `offset`.
    pub fn new(mut file: File, offset: u64, len: u64) -> io::Result<FileStream> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(FileStream {
            file: Some(file),
            remaining: len,
            pending: None,
        })
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        if self.pending.is_none() {
            let Some(file) = self.file.take() else {
                return Poll::Ready(None);
            };
            let len = self.remaining.min(CHUNK as u64);
            self.pending = Some(tokio::task::spawn_blocking(move || {
                let mut chunk = Vec::with_capacity(len as usize);
                let read = (&file).take(len).read_to_end(&mut chunk).map(|_| chunk);
                (file, read)
            }));
        }
        let joined = ready!(Pin::new(self.pending.as_mut().expect("set above")).poll(cx));
        self.pending = None;
        let chunk = match joined {
            Ok((file, read)) => {
                self.file = Some(file);
                match read {
                    Ok(chunk) if chunk.is_empty() => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while it was being served",
                    )),
                    other => other,
                }
            }
            Err(join) => Err(io::Error::other(join)),
        };
        match &chunk {
            Ok(chunk) => self.remaining -= chunk.len() as u64,
            Err(_) => self.remaining = 0,
        }
        Poll::Ready(Some(chunk.map(Bytes::from)))
    }
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
            Body::Parts(parts, _) => Poll::Ready(parts.pop_front().map(|b| Ok(Frame::data(b)))),
            Body::File(stream) => stream.poll_chunk(cx).map(|c| c.map(|r| r.map(Frame::data))),
            Body::Download(download) => download
                .poll_chunk(cx)
                .map(|c| c.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Bytes(bytes) => bytes.is_none(),
            Body::Parts(parts, _) => parts.is_empty(),
            Body::File(stream) => stream.remaining == 0,
            Body::Download(download) => download.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Parts(parts, _) => {
                SizeHint::with_exact(parts.iter().map(|p| p.len() as u64).sum())
            }
            Body::File(stream) => SizeHint::with_exact(stream.remaining),
            Body::Download(download) => SizeHint::with_exact(download.remaining()),
        }
    }
}
