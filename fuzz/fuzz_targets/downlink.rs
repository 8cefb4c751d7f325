//! Downlink commands: decoding any bytes never panics, and whatever decodes
//! encodes back to the same bytes (the codec accepts canonical forms only).

#![no_main]

use libfuzzer_sys::fuzz_target;
use otavan_protocol::lora::{DownlinkCommand, Wake};

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = DownlinkCommand::decode(data) {
        assert_eq!(command.encode(), data, "{command:?} is not canonical");
        assert_eq!(command.buffer_len(), data.len());
    }
    if let Ok(wake) = Wake::decode(data) {
        assert_eq!(wake.encode(), data, "{wake:?} is not canonical");
    }
});
