//! The well-behaved meters: manifest, firmware at a flash-bound rate,
//! SHA-256 check, report, again until the run ends.

use std::collections::BTreeMap;
use std::time::Duration;

use otavan_protocol::Manifest;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep_until};

use crate::http::{self, Endpoint};

/// The version every meter runs before the update.
pub const FROM_VERSION: &str = "1.0.0";
/// A meter's TCP receive buffer: a small device's window, so the server
/// cannot hand the whole image to the kernel at once.
const RECV_BUFFER: u32 = 64 * 1024;
/// Longest a manifest or report exchange may take before it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest flash-bound goodput, bytes per second (field-physics.md).
const MIN_RATE: u64 = 40_000;
/// Fastest flash-bound goodput, bytes per second.
const MAX_RATE: u64 = 130_000;

/// One meter's part in the run.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Its index, which names it (`meter-NNNN`).
    pub index: usize,
    /// Where it connects from.
    pub endpoint: Endpoint,
    /// Its download rate, bytes per second.
    pub rate: u64,
    /// When it starts its first update (arrivals are staggered).
    pub start: Instant,
    /// After this instant it starts no new update.
    pub last_start: Instant,
}

/// What one meter (or all of them, merged) saw.
#[derive(Debug, Default)]
pub struct MeterStats {
    /// Updates completed: firmware verified and the report accepted.
    pub cycles_ok: u64,
    /// Updates that failed, by stage.
    pub failures: BTreeMap<&'static str, u64>,
    /// The first few failure messages, for the log.
    pub examples: Vec<String>,
    /// Firmware bytes received.
    pub bytes: u64,
    /// Reports the server accepted (2xx).
    pub reports_accepted: u64,
}

impl MeterStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: MeterStats) {
        self.cycles_ok += other.cycles_ok;
        for (stage, n) in other.failures {
            *self.failures.entry(stage).or_default() += n;
        }
        for example in other.examples {
            if self.examples.len() < 10 {
                self.examples.push(example);
            }
        }
        self.bytes += other.bytes;
        self.reports_accepted += other.reports_accepted;
    }

    /// All failed updates.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// A meter's rate from the seed: uniform in 40-130 kB/s, the same for
/// the same seed and index.
pub fn rate_for(seed: u64, index: usize) -> u64 {
    MIN_RATE
        + splitmix64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9)) % (MAX_RATE - MIN_RATE + 1)
}

/// SplitMix64: a small, well-mixed hash of a 64-bit value.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs one meter's updates until `last_start`.
pub async fn run(meter: Meter) -> MeterStats {
    let mut stats = MeterStats::default();
    sleep_until(meter.start).await;
    let mut cycle = 0u64;
    while Instant::now() < meter.last_start {
        cycle += 1;
        match update_once(&meter, cycle, &mut stats).await {
            Ok(()) => stats.cycles_ok += 1,
            Err((stage, message)) => {
                *stats.failures.entry(stage).or_default() += 1;
                if stats.examples.len() < 3 {
                    stats
                        .examples
                        .push(format!("meter-{:04} {stage}: {message}", meter.index));
                }
            }
        }
    }
    stats
}

/// A failed update: the stage and what went wrong.
type Failure = (&'static str, String);

/// One update: manifest, firmware, report.
async fn update_once(meter: &Meter, cycle: u64, stats: &mut MeterStats) -> Result<(), Failure> {
    let manifest = fetch_manifest(meter.endpoint).await?;
    let firmware = manifest
        .firmware
        .ok_or(("manifest", "no firmware in the manifest".to_owned()))?;
    let size = firmware
        .size
        .ok_or(("manifest", "firmware without size".to_owned()))?;
    let sha256 = firmware
        .sha256
        .ok_or(("manifest", "firmware without sha256".to_owned()))?;
    let path = http::url_path(&firmware.url)
        .ok_or(("manifest", format!("bad firmware URL {}", firmware.url)))?;
    // Twice the time the meter's rate needs, and half a minute more.
    let budget = Duration::from_secs_f64(2.0 * size as f64 / meter.rate as f64 + 30.0);
    let received = tokio::time::timeout(budget, download(meter, path, size, &sha256))
        .await
        .map_err(|_| ("firmware", format!("not done in {budget:?}")))??;
    stats.bytes += received;
    post_report(meter, cycle, &manifest.version, received).await?;
    stats.reports_accepted += 1;
    Ok(())
}

/// `GET /manifest.json?current_ver=1.0.0` with the server's address as
/// Host, as meters send it.
pub async fn fetch_manifest(endpoint: Endpoint) -> Result<Manifest, Failure> {
    let head = http::request_head(
        "GET",
        &format!("/manifest.json?current_ver={FROM_VERSION}"),
        &endpoint.server.to_string(),
        None,
    );
    let (status, body) = http::exchange(endpoint, &head, b"", EXCHANGE_TIMEOUT)
        .await
        .map_err(|e| ("manifest", e.to_string()))?;
    if status != 200 {
        return Err(("manifest", format!("status {status}")));
    }
    serde_json::from_slice::<Option<Manifest>>(&body)
        .map_err(|e| ("manifest", format!("bad JSON: {e}")))?
        .ok_or(("manifest", "server says up to date".to_owned()))
}

/// Downloads `path` at the meter's rate and checks its length and SHA-256;
/// returns the bytes received.
async fn download(meter: &Meter, path: &str, size: u64, sha256: &str) -> Result<u64, Failure> {
    let fail = |e: std::io::Error| ("firmware", e.to_string());
    let mut stream = http::connect(meter.endpoint, Some(RECV_BUFFER))
        .await
        .map_err(fail)?;
    let head = http::request_head("GET", path, &meter.endpoint.server.to_string(), None);
    stream.write_all(head.as_bytes()).await.map_err(fail)?;
    let head = http::read_head(&mut stream).await.map_err(fail)?;
    if head.status != 200 {
        return Err(("firmware", format!("status {}", head.status)));
    }
    if head.content_length != Some(size) {
        return Err((
            "firmware",
            format!(
                "Content-Length {:?}, manifest says {size}",
                head.content_length
            ),
        ));
    }
    let started = Instant::now();
    let mut hasher = Sha256::new();
    hasher.update(&head.body_start);
    let mut received = head.body_start.len() as u64;
    let mut chunk = vec![0u8; 8192];
    while received < size {
        let n = stream.read(&mut chunk).await.map_err(fail)?;
        if n == 0 {
            return Err((
                "firmware",
                format!("short body: {received} of {size} bytes"),
            ));
        }
        hasher.update(&chunk[..n]);
        received += n as u64;
        // Flash writes bound the rate: wait until these bytes are "written".
        sleep_until(started + Duration::from_secs_f64(received as f64 / meter.rate as f64)).await;
    }
    if received != size {
        return Err(("firmware", format!("{received} bytes, expected {size}")));
    }
    let digest = hex::encode(hasher.finalize());
    if digest != sha256 {
        return Err(("firmware", "SHA-256 mismatch".to_owned()));
    }
    Ok(received)
}

/// Posts the well-formed `UPDATED` report for this update.
async fn post_report(meter: &Meter, cycle: u64, to: &str, bytes: u64) -> Result<(), Failure> {
    let body = serde_json::json!({
        "device_id": format!("meter-{:04}", meter.index),
        "from_version": FROM_VERSION,
        "to_version": to,
        "state": "UPDATED",
        "bytes": bytes,
        "report_id": format!("cycle-{cycle}"),
    })
    .to_string();
    let head = http::request_head(
        "POST",
        "/report",
        &meter.endpoint.server.to_string(),
        Some(body.len()),
    );
    let (status, _) = http::exchange(meter.endpoint, &head, body.as_bytes(), EXCHANGE_TIMEOUT)
        .await
        .map_err(|e| ("report", e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(("report", format!("status {status}")));
    }
    Ok(())
}
