//! The van's `Range` header parsing: the first 8 bytes are the file's size,
//! the rest the header. Never panics; a partial range lies within the file,
//! and its canonical `bytes=START-END` form parses to the same range.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otavan_server::range::RangeRequest;

fuzz_target!(|data: &[u8]| {
    let Some((size, header)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let RangeRequest::Partial { start, end } = RangeRequest::parse(Some(header), size) {
        assert!(
            start <= end && end < size,
            "{header:?} of {size}: {start}-{end}"
        );
        let canonical = format!("bytes={start}-{end}");
        assert_eq!(
            RangeRequest::parse(Some(&canonical), size),
            RangeRequest::Partial { start, end }
        );
    }
});
