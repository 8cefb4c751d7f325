//! The latency probe: a legitimate manifest request every 50 ms, each on a
//! fresh connection, timed from connect to the last body byte.

use std::time::Duration;

use otavan_protocol::Manifest;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::Stop;
use crate::http::{self, Endpoint};
use crate::meters::FROM_VERSION;

/// Time between probe requests.
const PERIOD: Duration = Duration::from_millis(50);
/// Longest one probe may take; slower counts as a failure.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the probe measured.
#[derive(Debug, Default)]
pub struct ProbeStats {
    /// Latencies of the successful probes, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Probes that failed (error, timeout, non-200, not a manifest).
    pub failures: u64,
}

impl ProbeStats {
    /// The `q` quantile (0..=1) of the latencies, nearest rank.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.latencies_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }
}

/// Probes until `stop`.
pub async fn run(endpoint: Endpoint, stop: Stop) -> ProbeStats {
    let mut stats = ProbeStats::default();
    let mut ticks = interval(PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let head = http::request_head(
        "GET",
        &format!("/manifest.json?current_ver={FROM_VERSION}"),
        &endpoint.server.to_string(),
        None,
    );
    while !stop.is_set() {
        ticks.tick().await;
        let started = Instant::now();
        match http::exchange(endpoint, &head, b"", TIMEOUT).await {
            Ok((200, body)) if is_manifest(&body) => stats
                .latencies_ms
                .push(started.elapsed().as_secs_f64() * 1000.0),
            _ => stats.failures += 1,
        }
    }
    stats
}

/// Whether `body` is a manifest with a firmware image.
fn is_manifest(body: &[u8]) -> bool {
    serde_json::from_slice::<Manifest>(body).is_ok_and(|m| m.firmware.is_some())
}
