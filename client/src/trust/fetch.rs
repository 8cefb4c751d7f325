//! Fetching small signed documents, never more than a bound.

use std::io;

use serde::de::DeserializeOwned;

use super::refuse;
use crate::engine::EngineError;
use crate::transport::{Sink, Transport};

/// Largest accepted descriptor (a release of 20 000 files fits).
pub const MAX_DESCRIPTOR: usize = 4 * 1024 * 1024;

/// Largest accepted root certificate or timestamp.
pub const MAX_METADATA: usize = 64 * 1024;

/// Collects a small download in memory, refusing more than `limit` bytes,
/// so a server sending endless data stops being read at the limit.
struct MemorySink {
    data: Vec<u8>,
    limit: usize,
}

impl Sink for MemorySink {
    fn restart(&mut self) -> io::Result<()> {
        self.data.clear();
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.data.len() + data.len() > self.limit {
            return Err(io::Error::other(format!(
                "larger than {} KiB",
                self.limit / 1024
            )));
        }
        self.data.extend_from_slice(data);
        Ok(())
    }
}

/// The JSON document `what` at `url`, at most `limit` bytes.
pub async fn fetch_json<T: Transport, D: DeserializeOwned>(
    transport: &T,
    url: &str,
    limit: usize,
    what: &str,
) -> Result<D, EngineError> {
    let mut sink = MemorySink {
        data: Vec::new(),
        limit,
    };
    transport
        .fetch(url, 0, &mut sink)
        .await
        .map_err(|e| refuse(format!("cannot fetch the {what}: {e}")))?;
    serde_json::from_slice(&sink.data).map_err(|e| refuse(format!("malformed {what}: {e}")))
}
