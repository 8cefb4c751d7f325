//! The manifest request's query string: the server extracts `current_ver`
//! (`service::current_ver`) and parses it as a `Version`. Neither may
//! panic; the value, encoded back into a query, is extracted unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otavan_protocol::Version;
use otavan_server::service::current_ver;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let value = current_ver(Some(query));
    if !value.is_empty() {
        let _ = Version::parse(&value);
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .append_pair("current_ver", &value)
        .finish();
    assert_eq!(current_ver(Some(&encoded)), value, "{encoded:?}");
});
