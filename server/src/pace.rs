//! How fast a client must take a response: a socket wrapper that fails a
//! write stalled for too long or a response taken below a minimum rate.
//!
//! hyper only times the request head; without this a client that asks for
//! a 64 MiB image and never reads holds its connection (and its buffers)
//! for ever. The defaults come from the WiFi physics in
//! `shared/reference/field-physics.md`:
//! - the slowest meter takes a download at its flash-write goodput,
//!   40-130 kB/s, and a meter at the edge of range (11b, 1 Mbit/s, about
//!   125 kB/s on air) no slower: a floor of 4 KiB/s is ten times below the
//!   slowest, so no real meter is ever cut for its rate;
//! - a drive-by contact lasts 11 s at 50 km/h to 53 s at 10 km/h (range
//!   80 m, 30 m from the road): a meter that has taken no byte for 20 s has
//!   either lost the van or is not a meter, and a flash erase pause (well
//!   under a second) is far inside it.
//!
//! The rate is averaged over windows as long as the stall timeout, counted
//! from the first write of a response, so a response's own size never trips
//! it and a keep-alive connection waiting for its next request is not
//! measured at all (that wait is the header timeout's).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::slots::ConnState;

/// How fast responses must be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Longest a write may wait without the client taking a byte; also the
    /// window the rate is averaged over.
    pub stall_timeout: Duration,
    /// Fewest bytes per second a response must be taken at; 0 for no floor.
    pub min_rate: u64,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            stall_timeout: Duration::from_secs(20),
            min_rate: 4 * 1024,
        }
    }
}

/// A socket whose writes follow a [`Pace`], telling its [`ConnState`]
/// whenever the client makes progress.
pub struct PacedStream<S> {
    inner: S,
    pace: Pace,
    state: Arc<ConnState>,
    /// When the current response's window began (`None` between responses).
    window_start: Option<Instant>,
    window_bytes: u64,
    last_write: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> PacedStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, pace: Pace, state: Arc<ConnState>) -> PacedStream<S> {
        let now = Instant::now();
        PacedStream {
            inner,
            pace,
            state,
            window_start: None,
            window_bytes: 0,
            last_write: now,
            timer: Box::pin(tokio::time::sleep_until(now)),
        }
    }

    /// An error if the client has stalled or is below the rate at `now`;
    /// starts a new window when the old one passed.
    fn check(&mut self, now: Instant) -> io::Result<()> {
        let window = self.pace.stall_timeout;
        if now >= self.last_write + window {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("client took no bytes for {} s", window.as_secs()),
            ));
        }
        let start = self.window_start.unwrap_or(now);
        if now >= start + window {
            let needed = self.pace.min_rate.saturating_mul(window.as_secs());
            if self.window_bytes < needed {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "client took {} bytes in {} s, under {} bytes/s",
                        self.window_bytes,
                        window.as_secs(),
                        self.pace.min_rate
                    ),
                ));
            }
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
        Ok(())
    }

    /// The next instant [`Self::check`] could fail.
    fn deadline(&self) -> Instant {
        let window = self.pace.stall_timeout;
        let stall = self.last_write + window;
        match self.window_start {
            Some(start) => stall.min(start + window),
            None => stall,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PacedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            // A request: its response gets a fresh window.
            this.window_start = None;
            this.state.progressed_at(Instant::now().into_std());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> PacedStream<S> {
    /// Runs `write` on the socket under the pace: counts what it took, and
    /// while it waits, fails it once the client has stalled or fallen
    /// below the rate.
    fn paced(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        // One clock reading per call: a write that completes does so now,
        // and a new response's window starts now.
        let mut now = Instant::now();
        if self.window_start.is_none() {
            self.window_start = Some(now);
            self.window_bytes = 0;
            self.last_write = now;
        }
        loop {
            match write(Pin::new(&mut self.inner), cx) {
                Poll::Ready(Ok(n)) => {
                    self.state.set_blocked(false);
                    self.window_bytes += n as u64;
                    self.last_write = now;
                    self.state.progressed_at(now.into_std());
                    return Poll::Ready(self.check(now).map(|()| n));
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => self.state.set_blocked(true),
            }
            // The deadline only ever moves later (progress and new windows
            // push it), so the timer stays armed at an earlier one and is
            // moved only when it fires: no timer-wheel update per wait.
            if self.timer.is_elapsed() || self.timer.deadline() > self.deadline() {
                let deadline = self.deadline();
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            now = Instant::now();
            if let Err(e) = self.check(now) {
                return Poll::Ready(Err(e));
            }
            // Progress or a new window moved the deadline: re-arm it.
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PacedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .paced(cx, |inner, cx| inner.poll_write(cx, data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .paced(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
