//! How a meter talks to the van: fetch a manifest, fetch a byte range of a
//! file into a sink, send a status report.
//!
//! The engine is generic over [`Transport`], so WiFi/HTTP ([`HttpTransport`])
//! and test doubles ([`MemoryTransport`]) plug in the same way, and later
//! transports (BLE, a mesh hop) need no engine change.

mod http;
mod memory;
pub mod response;

use std::io;

use otavan_protocol::{Manifest, Report, Version};

pub use http::{HttpTransport, HttpTransportConfig};
pub use memory::{MemoryTransport, TransportStats};

/// Where downloaded bytes go (a staging file, a firmware slot).
pub trait Sink {
    /// Discards everything written so far: the server did not honour a
    /// resume request and is sending the file from its first byte.
    fn restart(&mut self) -> io::Result<()>;
    /// Appends `data`.
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
}

/// How a fetch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    /// The offset the sink's content now starts from: the requested offset
    /// when the server resumed, 0 when it restarted the file.
    pub from: u64,
    /// Bytes received and written to the sink by this fetch.
    pub received: u64,
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made, or it was cut.
    #[error("connection: {0}")]
    Connection(String),
    /// The server answered with an unexpected HTTP status.
    #[error("server answered {status} for {what}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// What was asked for.
        what: String,
    },
    /// The server's answer could not be understood.
    #[error("bad response: {0}")]
    BadResponse(String),
    /// The sink refused the data (disk full, power cut).
    #[error("storage: {0}")]
    Sink(#[from] io::Error),
}

impl TransportError {
    /// Whether the same request may succeed later: no connection or a cut
    /// one, or the server asking the meter to come back (408, 429, 502,
    /// 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Connection(_) => true,
            TransportError::Status { status, .. } => matches!(status, 408 | 429 | 502..=504),
            TransportError::BadResponse(_) | TransportError::Sink(_) => false,
        }
    }
}

/// A link to an otavan (or plain Pycom) server.
///
/// Methods are async because every real link is; implementations must
/// keep memory bounded (stream into the sink, never buffer a whole file).
#[allow(
    async_fn_in_trait,
    reason = "the engine uses transports generically, never as dyn"
)]
pub trait Transport {
    /// The manifest from `current` to the server's target; `None` when the
    /// server says the meter is up to date (a `null` body).
    async fn fetch_manifest(&self, current: &Version) -> Result<Option<Manifest>, TransportError>;

    /// Fetches `url` from byte `from` to its end into `sink`. With
    /// `from > 0` the server must answer 206 with a `Content-Range` starting
    /// at `from`; a 200 restarts the sink and the file from byte 0; anything
    /// else is an error.
    async fn fetch(
        &self,
        url: &str,
        from: u64,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, TransportError>;

    /// Posts a status report.
    async fn send_report(&self, report: &Report) -> Result<(), TransportError>;
}
