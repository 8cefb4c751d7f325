//! The STATUS uplink: decoding any bytes never panics, and whatever decodes
//! encodes back to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otavan_protocol::lora::StatusUplink;

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = StatusUplink::decode(data) {
        assert_eq!(status.encode(), data, "{status:?} is not canonical");
    }
});
