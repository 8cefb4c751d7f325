//! Log output that costs a request almost nothing.
//!
//! Every request logs a line, so at tens of thousands of requests a second
//! how lines reach stderr matters: a `write` per line, or a wake-up of a
//! writer thread per line, cost the server a fifth of its manifest rate
//! (docs/benchmarks.md). Here a request only appends its formatted line to
//! a shared buffer; a background thread writes whatever accumulated every
//! [`FLUSH_EVERY`], so lines appear within that delay, in order. Timestamps
//! reuse the date part formatted once a second ([`CachedUtc`]), and request
//! events (target [`REQUEST_TARGET`]) skip the general formatter
//! ([`RequestLines`]) while printing the same text.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use std::fmt::Write as _;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many buffered bytes the logging thread writes them itself, so
/// a stalled stderr slows requests down instead of growing memory.
const MAX_BUFFERED: usize = 1024 * 1024;

#[derive(Default)]
struct Shared {
    buffer: Mutex<Vec<u8>>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    fn buffer(&self) -> MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flush(&self) {
        let pending = std::mem::take(&mut *self.buffer());
        if !pending.is_empty() {
            // Nowhere left to report a failing stderr.
            let _ = io::stderr().lock().write_all(&pending);
        }
    }
}

/// A [`MakeWriter`] appending to the shared buffer.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// Stops the flushing thread and writes what is left when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The writer for the subscriber, and the guard `main` keeps until exit.
pub fn batched_stderr() -> (BatchedStderr, FlushGuard) {
    let shared = Arc::new(Shared::default());
    let flusher = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("log-flush".into())
        .spawn(move || {
            let mut stop = flusher.stop.lock().unwrap_or_else(PoisonError::into_inner);
            while !*stop {
                stop = flusher
                    .wake
                    .wait_timeout(stop, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                flusher.flush();
            }
        })
        .expect("can start the log thread");
    let guard = FlushGuard {
        shared: Arc::clone(&shared),
        thread: Some(thread),
    };
    (BatchedStderr { shared }, guard)
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        *self
            .shared
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buffer = self.shared.buffer();
            buffer.extend_from_slice(data);
            buffer.len() > MAX_BUFFERED
        };
        if full {
            self.shared.flush();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = BatchedStderr;

    fn make_writer(&'a self) -> BatchedStderr {
        self.clone()
    }
}

/// RFC 3339 UTC timestamps with microseconds, the date part formatted at
/// most once a second per thread (the request log stamps every line).
pub struct CachedUtc;

impl tracing_subscriber::fmt::time::FormatTime for CachedUtc {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        thread_local! {
            static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
        }
        let now = std::time::SystemTime::now();
        let since = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        SECOND.with_borrow_mut(|(second, prefix)| {
            if *second != since.as_secs() {
                *second = since.as_secs();
                // "2026-11-22T18:18:01Z" without the Z: the micros follow.
                let whole = humantime::format_rfc3339_seconds(now).to_string();
                *prefix = whole.trim_end_matches('Z').to_owned();
            }
            write!(w, "{}.{:06}Z", prefix, since.subsec_micros())
        })
    }
}

/// The target of the per-request log events (see `otavan_server::service`).
pub const REQUEST_TARGET: &str = "otavan::request";

/// Writes request events straight into the batch, skipping the general
/// formatter: same text, a fraction of the work, on every request's path.
pub struct RequestLines {
    out: BatchedStderr,
}

impl RequestLines {
    /// A layer writing to `out`.
    pub fn new(out: BatchedStderr) -> RequestLines {
        RequestLines { out }
    }
}

/// Collects an event's fields as `name=value` text.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RequestLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            let mut stamp = tracing_subscriber::fmt::format::Writer::new(line);
            let _ = tracing_subscriber::fmt::time::FormatTime::format_time(&CachedUtc, &mut stamp);
            line.push_str("  INFO");
            event.record(&mut Fields(line));
            line.push('\n');
            let _ = self.out.clone().write_all(line.as_bytes());
        });
    }
}
