//! Downloads that stop at their expected size.
//!
//! A server may send more than it declared, or never stop: [`Bounded`]
//! passes on at most the expected number of bytes (for a signed meter the
//! size the release keys signed) and then fails the fetch, so a van
//! sending endless data fills neither the staging area nor a firmware slot
//! beyond what the update needs.

use std::io;

use crate::transport::Sink;

/// More bytes arrived than the file has.
#[derive(Debug, thiserror::Error)]
#[error("the server sent more than the {limit} bytes expected")]
pub struct Overflow {
    /// The expected size.
    pub limit: u64,
}

/// The [`Overflow`] inside a sink error, if that is what it is.
pub fn overflow(error: &io::Error) -> Option<&Overflow> {
    error.get_ref()?.downcast_ref::<Overflow>()
}

/// A sink that takes at most `limit` bytes of the file (counted from the
/// file's start, so a resumed fetch continues the count at its offset).
pub struct Bounded<'a> {
    inner: &'a mut dyn Sink,
    limit: Option<u64>,
    /// Bytes of the file before this fetch's first byte.
    from: u64,
    /// Bytes this fetch passed on.
    written: u64,
}

impl<'a> Bounded<'a> {
    /// `inner` receiving a file of `limit` bytes (unbounded when `None`)
    /// from offset `from`.
    pub fn new(inner: &'a mut dyn Sink, limit: Option<u64>, from: u64) -> Bounded<'a> {
        Bounded {
            inner,
            limit,
            from,
            written: 0,
        }
    }
}

impl Sink for Bounded<'_> {
    fn restart(&mut self) -> io::Result<()> {
        self.from = 0;
        self.written = 0;
        self.inner.restart()
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(limit) = self.limit else {
            return self.inner.write(data);
        };
        let room = limit.saturating_sub(self.from + self.written);
        let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.inner.write(&data[..take])?;
        self.written += take as u64;
        if take < data.len() {
            return Err(io::Error::other(Overflow { limit }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<u8>);

    impl Sink for Collect {
        fn restart(&mut self) -> io::Result<()> {
            self.0.clear();
            Ok(())
        }

        fn write(&mut self, data: &[u8]) -> io::Result<()> {
            self.0.extend_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn bytes_past_the_limit_are_refused_and_the_rest_kept() {
        let mut inner = Collect::default();
        let mut sink = Bounded::new(&mut inner, Some(10), 4);
        sink.write(b"abcd").unwrap();
        let error = sink.write(b"efgh").unwrap_err();
        assert_eq!(overflow(&error).unwrap().limit, 10);
        assert_eq!(inner.0, b"abcdef");
    }

    #[test]
    fn a_restart_counts_from_the_files_start_and_no_limit_is_no_limit() {
        let mut inner = Collect::default();
        let mut sink = Bounded::new(&mut inner, Some(3), 2);
        sink.restart().unwrap();
        sink.write(b"abc").unwrap();
        assert!(sink.write(b"d").is_err());
        let mut inner = Collect::default();
        let mut sink = Bounded::new(&mut inner, None, 0);
        sink.write(&[0; 100_000]).unwrap();
        assert!(overflow(&io::Error::other("other")).is_none());
    }
}
