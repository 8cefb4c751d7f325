//! The request parsing a hostile meter reaches before anything else, the
//! stable-Rust twins of `fuzz/fuzz_targets/range.rs` and `query.rs`
//! (bench/fuzz.sh runs those for millions of inputs): `Range` headers and
//! the manifest's `current_ver` never panic and keep their properties.

use otavan_protocol::Version;
use otavan_server::range::RangeRequest;
use otavan_server::service::current_ver;
use proptest::prelude::*;

/// `Range` values: the forms the server honours, with spaces, signs,
/// commas, huge numbers and other units mixed in, and any text.
fn range_header() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just(String::new()),
        "[0-9]{1,4}",
        "[0-9]{18,22}",
        "[+ -]?[0-9]{1,3} ?",
    ];
    prop_oneof![
        4 => (prop::sample::select(vec!["bytes=", " bytes= ", "Bytes=", "items="]), number.clone(), "[-,]{0,2}", number)
            .prop_map(|(unit, a, dash, b)| format!("{unit}{a}{dash}{b}")),
        1 => any::<String>(),
    ]
}

/// File sizes: empty, small, around the numbers above, the largest.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0..10_000u64,
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>()
    ]
}

/// Query strings: `current_ver` repeated, percent- and `+`-encoded,
/// broken escapes, other keys, and any text.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "((current_ver|current%5Fver|a)=[0-9a-z.%+&=/-]{0,12}&?){0,3}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_range_is_within_the_file_and_its_canonical_form_parses_the_same(
        header in range_header(),
        size in size(),
    ) {
        if let RangeRequest::Partial { start, end } = RangeRequest::parse(Some(&header), size) {
            prop_assert!(start <= end && end < size, "{:?} of {}: {}-{}", header, size, start, end);
            let canonical = format!("bytes={start}-{end}");
            prop_assert_eq!(RangeRequest::parse(Some(&canonical), size), RangeRequest::Partial { start, end });
        }
    }

    #[test]
    fn current_ver_is_extracted_unchanged_after_encoding(query in query()) {
        let value = current_ver(Some(&query));
        if !value.is_empty() {
            let _ = Version::parse(&value);
        }
        let encoded = form_urlencoded::Serializer::new(String::new())
            .append_pair("current_ver", &value)
            .finish();
        prop_assert_eq!(current_ver(Some(&encoded)), value);
    }
}

#[test]
fn current_ver_decodes_and_takes_the_first() {
    assert_eq!(current_ver(None), "");
    assert_eq!(current_ver(Some("a=1")), "");
    assert_eq!(
        current_ver(Some("current_ver=1.0.1%2Bbuild&current_ver=2")),
        "1.0.1+build"
    );
    assert_eq!(current_ver(Some("current_ver=1.0+rc")), "1.0 rc");
    assert_eq!(current_ver(Some("current_ver=%ZZ")), "%ZZ");
}
