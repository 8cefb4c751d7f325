//! The junk reporters: `POST /report` with bodies no meter sends.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::sleep;

use crate::Stop;
use crate::http::{self, Endpoint};

/// Time between one reporter's posts.
const PAUSE: Duration = Duration::from_millis(500);
/// Longest one post may take before it counts as unanswered.
const TIMEOUT: Duration = Duration::from_secs(30);
/// A well-formed report the junk cases are derived from; the device id
/// marks anything stored from here as junk.
const GOOD: &str =
    r#"{"device_id":"junk-0","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#;

/// What the junk reporters saw.
#[derive(Debug, Default)]
pub struct JunkStats {
    /// Posts sent.
    pub sent: u64,
    /// Answers by status (`0`: no answer).
    pub statuses: BTreeMap<u16, u64>,
}

impl JunkStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: JunkStats) {
        self.sent += other.sent;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }

    /// Posts answered with something other than 4xx (a goal failure).
    pub fn not_refused(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s != 0 && !(400..500).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The junk bodies, each one a way a report can be wrong.
pub fn cases() -> Vec<Vec<u8>> {
    vec![
        b"hello".to_vec(),
        Vec::new(),
        b"[]".to_vec(),
        b"{\"device_id\":".to_vec(),
        b"\xff\xfe\x00junk".to_vec(),
        GOOD.replace("UPDATED", "DONE").into_bytes(),
        GOOD.replace("\"junk-0\"", "42").into_bytes(),
        GOOD.replace("\"1.0.0\"", "\"one\"").into_bytes(),
        GOOD.replace("\"1.1.0\"", "[1,1,0]").into_bytes(),
        GOOD.replace("\"state\":\"UPDATED\"", "\"state\":null")
            .into_bytes(),
        GOOD.replace(",\"state\":\"UPDATED\"", "").into_bytes(),
        GOOD.replace("}", ",\"bytes\":\"lots\"}").into_bytes(),
        GOOD.replace("}", ",\"bytes\":-1}").into_bytes(),
        GOOD.replace("junk-0", &format!("junk-{}", "x".repeat(200)))
            .into_bytes(),
        GOOD.replace("junk-0", "junk-\\u0007bell").into_bytes(),
        GOOD.replace("junk-0", "").into_bytes(),
        GOOD.replace("}", ",\"report_id\":\"has space\"}")
            .into_bytes(),
        GOOD.replace("}", &format!(",\"error\":\"{}\"}}", "e".repeat(5000)))
            .into_bytes(),
        GOOD.replace("}", &format!(",\"error\":\"{}\"}}", "e".repeat(20 * 1024)))
            .into_bytes(),
        format!("[{}]", "0,".repeat(10 * 1024)).into_bytes(),
    ]
}

/// One junk reporter: posts every case in turn, starting at `first`, until
/// `stop`.
pub async fn run(endpoint: Endpoint, first: usize, stop: Stop) -> JunkStats {
    let cases = cases();
    let mut stats = JunkStats::default();
    let mut i = first;
    while !stop.is_set() {
        let body = &cases[i % cases.len()];
        let head = http::request_head(
            "POST",
            "/report",
            &endpoint.server.to_string(),
            Some(body.len()),
        );
        let status = match http::exchange(endpoint, &head, body, TIMEOUT).await {
            Ok((status, _)) => status,
            Err(_) => 0,
        };
        stats.sent += 1;
        *stats.statuses.entry(status).or_default() += 1;
        i += 1;
        sleep(PAUSE).await;
    }
    stats
}
