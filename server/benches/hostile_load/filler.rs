//! The cache filler: manifest requests with thousands of distinct
//! `current_ver` and Host values, a few at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::Stop;
use crate::http::{self, Endpoint};

/// Longest one filler request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What the filler saw.
#[derive(Debug, Default)]
pub struct FillerStats {
    /// Requests sent.
    pub sent: u64,
    /// Answers by status (`0`: no answer).
    pub statuses: BTreeMap<u16, u64>,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
}

/// Sends `total` manifest requests, request `n` with
/// `current_ver=0.{n / 1000}.{n % 1000}` and `Host: filler-{n}.example`,
/// from `workers` clients at a time (one address each), until done or
/// `stop`.
pub async fn run(endpoints: Vec<Endpoint>, total: usize, stop: Stop) -> FillerStats {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = endpoints
        .into_iter()
        .map(|endpoint| tokio::spawn(worker(endpoint, next.clone(), total, stop.clone())))
        .collect();
    let mut stats = FillerStats::default();
    for worker in workers {
        let part = worker.await.expect("filler worker panicked");
        stats.sent += part.sent;
        for (status, n) in part.statuses {
            *stats.statuses.entry(status).or_default() += n;
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats
}

/// One filler client: takes request numbers until `total`.
async fn worker(
    endpoint: Endpoint,
    next: Arc<AtomicUsize>,
    total: usize,
    stop: Stop,
) -> FillerStats {
    let mut stats = FillerStats::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total || stop.is_set() {
            return stats;
        }
        let path = format!("/manifest.json?current_ver=0.{}.{}", n / 1000, n % 1000);
        let head = http::request_head("GET", &path, &format!("filler-{n}.example"), None);
        let status = match http::exchange(endpoint, &head, b"", TIMEOUT).await {
            Ok((status, _)) => status,
            Err(_) => 0,
        };
        stats.sent += 1;
        *stats.statuses.entry(status).or_default() += 1;
    }
}
