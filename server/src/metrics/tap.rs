//! Counting a download's bytes where they leave: at the socket.
//!
//! Each connection's stream is wrapped in a [`TappedStream`] that shares a
//! [`ConnTap`] with the requests served on it. While a download runs on
//! the connection the tap names its slot, and every successful write adds
//! its byte count to that slot: one relaxed load per write, and an add
//! while a download is on. So a download's progress is what the kernel
//! accepted, whatever the size of the body's frames, and an in-memory file
//! can go to hyper as one frame (the cheapest way to send it).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::downloads::Downloads;

const NONE: usize = usize::MAX;

/// Which download, if any, is being written on one connection.
#[derive(Debug)]
pub struct ConnTap {
    pub(super) slot: AtomicUsize,
}

impl Default for ConnTap {
    fn default() -> ConnTap {
        ConnTap {
            slot: AtomicUsize::new(NONE),
        }
    }
}

impl ConnTap {
    /// From now on, writes count toward download `slot`.
    pub(crate) fn attach(&self, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    /// Writes stop counting toward `slot` (if it is still the one).
    pub(crate) fn detach(&self, slot: usize) {
        let _ = self
            .slot
            .compare_exchange(slot, NONE, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A connection's stream, counting written bytes for the tap's download.
pub struct TappedStream<S> {
    stream: S,
    tap: Arc<ConnTap>,
    downloads: Arc<Downloads>,
}

impl<S> TappedStream<S> {
    /// Wraps `stream`; downloads attached to `tap` are counted in
    /// `downloads`.
    pub fn new(stream: S, tap: Arc<ConnTap>, downloads: Arc<Downloads>) -> TappedStream<S> {
        TappedStream {
            stream,
            tap,
            downloads,
        }
    }

    fn count(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written {
            let slot = self.tap.slot.load(Ordering::Relaxed);
            if slot != NONE {
                self.downloads.add_sent(slot, *n as u64);
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TappedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TappedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
