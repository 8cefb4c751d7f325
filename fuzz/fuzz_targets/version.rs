//! The version parser: the input is one or two candidate versions separated
//! by a newline (never part of a version). Parsing never panics; a parsed
//! version re-prints as its input and re-parses equal (also through JSON);
//! two versions compare antisymmetrically, equal exactly when their strings
//! are.

#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use otavan_protocol::Version;

fn parsed(text: &str) -> Option<Version> {
    let version = Version::parse(text).ok()?;
    let printed = version.to_string();
    assert_eq!(printed, text);
    assert_eq!(Version::parse(&printed).as_ref(), Ok(&version));
    let json = serde_json::to_string(&version).expect("a version serialises");
    assert_eq!(
        serde_json::from_str::<Version>(&json).expect("re-parses"),
        version
    );
    assert_eq!(version.cmp(&version), Ordering::Equal);
    Some(version)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    if let (Some(a), Some(b)) = (parsed(a), parsed(b)) {
        assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        assert_eq!(a.cmp(&b) == Ordering::Equal, a.as_str() == b.as_str());
    }
});
