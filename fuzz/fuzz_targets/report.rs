//! The report body as the van reads it (`POST /report`): `serde_json`
//! into a `Report`, then `Report::validate`. Neither may panic on any
//! bytes; a parsed report re-serialises and re-parses equal, with the same
//! verdict.

#![no_main]

use libfuzzer_sys::fuzz_target;
use otavan_protocol::Report;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    let verdict = report.validate();
    let again = serde_json::to_vec(&report).expect("a report serialises");
    let reparsed: Report = serde_json::from_slice(&again).expect("re-parses");
    assert_eq!(reparsed, report);
    assert_eq!(reparsed.validate(), verdict);
});
