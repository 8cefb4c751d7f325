//! Parsing a single-range `Range: bytes=...` request header (RFC 9110 14.2).
//!
//! Meters resume a cut download with `bytes=N-`; that, `bytes=A-B` and the
//! suffix form `bytes=-N` are honoured. Multi-range requests and anything
//! unparsable are ignored (the whole file is sent), which the RFC allows
//! and every client handles.

/// What to send for a request's `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// The whole file (no header, or one we choose to ignore).
    Full,
    /// The inclusive byte range `start..=end`, both within the file.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A syntactically valid range that lies outside the file: 416.
    Unsatisfiable,
}

impl RangeRequest {
    /// Interprets `header` for a file of `size` bytes.
    pub fn parse(header: Option<&str>, size: u64) -> RangeRequest {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return RangeRequest::Full;
        };
        if spec.contains(',') {
            return RangeRequest::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return RangeRequest::Full;
        };
        let (first, last) = (first.trim(), last.trim());
        let number = |s: &str| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        };
        match (first.is_empty(), number(first), number(last)) {
            // bytes=-N: the last N bytes.
            (true, _, Some(suffix)) => {
                if suffix == 0 || size == 0 {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial {
                        start: size.saturating_sub(suffix),
                        end: size - 1,
                    }
                }
            }
            // bytes=A- and bytes=A-B.
            (false, Some(start), end) if last.is_empty() || end.is_some() => {
                let end = end.unwrap_or(u64::MAX);
                if end < start {
                    RangeRequest::Full
                } else if start >= size {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial {
                        start,
                        end: end.min(size - 1),
                    }
                }
            }
            _ => RangeRequest::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};

    fn parse(header: &str, size: u64) -> RangeRequest {
        RangeRequest::parse(Some(header), size)
    }

    #[test]
    fn forms_within_the_file() {
        assert_eq!(parse("bytes=0-99", 1000), Partial { start: 0, end: 99 });
        assert_eq!(
            parse("bytes=500-", 1000),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            parse("bytes=-100", 1000),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse("bytes=990-5000", 1000),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(parse("bytes=-5000", 1000), Partial { start: 0, end: 999 });
        assert_eq!(
            parse("bytes=999-999", 1000),
            Partial {
                start: 999,
                end: 999
            }
        );
    }

    #[test]
    fn outside_the_file_is_unsatisfiable() {
        assert_eq!(parse("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=1000-2000", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), Unsatisfiable);
    }

    #[test]
    fn ignored_headers_mean_full() {
        assert_eq!(RangeRequest::parse(None, 10), Full);
        for header in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "bytes",
        ] {
            assert_eq!(parse(header, 10), Full, "{header}");
        }
    }
}
