//! Reading a server's answers, whatever carried them: the manifest body,
//! a ranged file body, and the errors both give. [`HttpTransport`] reads
//! them from a socket; other transports (the rehearsal's in-process van)
//! from wherever their responses come, with the same checks and messages.
//!
//! [`HttpTransport`]: super::HttpTransport

use http::StatusCode;
use url::Url;

use otavan_protocol::Manifest;

use super::{Fetched, Sink, TransportError};

/// Parses a `GET /manifest.json` body: the JSON literal `null` (surrounding
/// whitespace allowed) means "up to date", anything else must be a
/// [`Manifest`]. Shared by every transport so that test doubles report the
/// same errors as HTTP.
pub fn parse_manifest_body(body: &[u8]) -> Result<Option<Manifest>, TransportError> {
    if body.trim_ascii() == b"null" {
        return Ok(None);
    }
    serde_json::from_slice::<Manifest>(body)
        .map(Some)
        .map_err(|e| TransportError::BadResponse(format!("manifest is not valid: {e}")))
}

/// The error for a manifest body larger than `limit` bytes.
pub fn manifest_too_large(limit: usize) -> TransportError {
    TransportError::BadResponse(format!("manifest is larger than {limit} bytes"))
}

/// The error for a 206 answer that does not start where it was asked to.
pub fn wrong_range_start(what: &str, asked: u64, got: u64) -> TransportError {
    TransportError::BadResponse(format!(
        "{what}: asked for bytes from {asked}, server sent bytes from {got}"
    ))
}

/// The error for an unexpected HTTP status.
pub fn status_error(status: u16, what: String) -> TransportError {
    TransportError::Status { status, what }
}

/// The request target (path and query, everything after the authority) of
/// an absolute `http://` URL, as the Pycom device library requests it.
pub fn request_target(url: &str) -> Result<String, TransportError> {
    let bad = |why: &str| TransportError::BadResponse(format!("file URL {url:?} {why}"));
    let parsed = Url::parse(url).map_err(|e| bad(&format!("is not an absolute URL: {e}")))?;
    if parsed.scheme() != "http" {
        return Err(bad("is not an http:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    let mut target = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        target.push('?');
        target.push_str(query);
    }
    Ok(target)
}

/// The body of an answer to `GET url` from byte `from`: checks the status
/// and `Content-Range` before the first byte, counts what arrives, and
/// tells a complete body from a cut one.
#[derive(Debug)]
pub struct RangedBody {
    what: String,
    start: u64,
    expected: Option<u64>,
    received: u64,
}

impl RangedBody {
    /// Starts reading an answer with `status`, its `Content-Range` and
    /// `Content-Length` headers, to a request for bytes `from`- described
    /// by `what` (`"GET /path"`). A 200 restarts the sink; a 206 must start
    /// at `from` and run to the end of the file.
    ///
    /// # Errors
    ///
    /// [`TransportError::Status`] for any other status,
    /// [`TransportError::BadResponse`] for a missing, malformed or wrong
    /// `Content-Range`, and the sink's error when it cannot restart.
    pub fn begin(
        what: String,
        from: u64,
        status: u16,
        content_range: Option<&[u8]>,
        content_length: Option<u64>,
        sink: &mut dyn Sink,
    ) -> Result<RangedBody, TransportError> {
        let (start, expected) = match StatusCode::from_u16(status) {
            Ok(StatusCode::PARTIAL_CONTENT) => {
                let header = content_range.ok_or_else(|| {
                    TransportError::BadResponse(format!("{what}: 206 without Content-Range"))
                })?;
                let text = std::str::from_utf8(header).map_err(|_| {
                    TransportError::BadResponse(format!("{what}: Content-Range is not ASCII"))
                })?;
                let range = ContentRange::parse(text).ok_or_else(|| {
                    TransportError::BadResponse(format!("{what}: malformed Content-Range {text:?}"))
                })?;
                if range.start != from {
                    return Err(wrong_range_start(&what, from, range.start));
                }
                if range.total.is_some_and(|total| range.end + 1 != total) {
                    return Err(TransportError::BadResponse(format!(
                        "{what}: asked for bytes {from}- but got only {text:?}"
                    )));
                }
                (from, Some(range.end - range.start + 1))
            }
            Ok(StatusCode::OK) => {
                sink.restart()?;
                (0, content_length)
            }
            _ => {
                return Err(TransportError::Status { status, what });
            }
        };
        Ok(RangedBody {
            what,
            start,
            expected,
            received: 0,
        })
    }

    /// Appends a chunk of the body to `sink`.
    ///
    /// # Errors
    ///
    /// [`TransportError::BadResponse`] past the announced length, the
    /// sink's error when it cannot write.
    pub fn write(&mut self, chunk: &[u8], sink: &mut dyn Sink) -> Result<(), TransportError> {
        let len = chunk.len() as u64;
        if self
            .expected
            .is_some_and(|expected| self.received + len > expected)
        {
            return Err(TransportError::BadResponse(format!(
                "{}: more bytes than the announced {}",
                self.what,
                self.expected.unwrap_or_default()
            )));
        }
        sink.write(chunk)?;
        self.received += len;
        Ok(())
    }

    /// The error for a connection cut now, for `cause`.
    pub fn cut(&self, cause: &str) -> TransportError {
        TransportError::Connection(format!(
            "{}: connection cut after {} bytes ({cause})",
            self.what, self.received
        ))
    }

    /// The body ended: complete, or cut short of its announced length.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connection`] when fewer bytes came than announced.
    pub fn finish(self) -> Result<Fetched, TransportError> {
        if let Some(expected) = self.expected
            && self.received < expected
        {
            return Err(TransportError::Connection(format!(
                "{}: connection cut after {} bytes of {expected}",
                self.what, self.received
            )));
        }
        Ok(Fetched {
            from: self.start,
            received: self.received,
        })
    }
}

/// A parsed `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    end: u64,
    total: Option<u64>,
}

impl ContentRange {
    fn parse(text: &str) -> Option<ContentRange> {
        let rest = text.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let start = number(start)?;
        let end = number(end)?;
        let total = match total {
            "*" => None,
            total => Some(number(total)?),
        };
        if start > end || total.is_some_and(|total| end >= total) {
            return None;
        }
        Some(ContentRange { start, end, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets_keep_path_and_query_only() {
        assert_eq!(
            request_target("http://10.0.0.1:8000/1.1.0/flash/main.py").unwrap(),
            "/1.1.0/flash/main.py"
        );
        assert_eq!(
            request_target("http://other.host/firmware_1.1.0.bin?x=1#f").unwrap(),
            "/firmware_1.1.0.bin?x=1"
        );
        assert_eq!(request_target("http://h").unwrap(), "/");
        for bad in [
            "/1.1.0/flash/main.py",
            "https://h/a",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                matches!(request_target(bad), Err(TransportError::BadResponse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            ContentRange::parse("bytes 100-999/1000"),
            Some(ContentRange {
                start: 100,
                end: 999,
                total: Some(1000)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes 0-0/*"),
            Some(ContentRange {
                start: 0,
                end: 0,
                total: None
            })
        );
        for bad in [
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes -5/10",
            "bytes 1-+5/10",
            "bytes */10",
            "items 0-1/2",
            "bytes 0-1",
            "",
        ] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }
}
