//! What the server counts, and `GET /metrics` in the Prometheus text
//! format.
//!
//! Every counter is a [`Counter`]: a relaxed atomic add on the calling
//! thread's shard, no lock, no allocation, so counting costs the manifest
//! path next to nothing (docs/benchmarks.md). Rendering, on a scrape, sums
//! the shards.

pub mod counter;
pub mod downloads;
pub mod tap;

use std::fmt::Write;

use otavan_protocol::UpdateState;

pub use counter::Counter;
pub use downloads::{ActiveDownload, DownloadGuard, Downloads};
pub use tap::{ConnTap, TappedStream};

/// What a request was for, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /manifest.json`.
    Manifest,
    /// A release file or firmware image.
    File,
    /// `POST /report`.
    Report,
    /// `GET /reports.csv`.
    ReportsCsv,
    /// `GET /`.
    Dashboard,
    /// `GET /devices/{id}`.
    Device,
    /// `GET /metrics`.
    Metrics,
    /// A method a route does not allow.
    Other,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::Manifest,
        Route::File,
        Route::Report,
        Route::ReportsCsv,
        Route::Dashboard,
        Route::Device,
        Route::Metrics,
        Route::Other,
    ];

    /// The `route` label.
    pub fn label(self) -> &'static str {
        match self {
            Route::Manifest => "manifest",
            Route::File => "file",
            Route::Report => "report",
            Route::ReportsCsv => "reports_csv",
            Route::Dashboard => "dashboard",
            Route::Device => "device",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

/// Status codes counted on their own; any other is counted as `other`.
const STATUSES: [u16; 14] = [
    200, 204, 206, 304, 400, 404, 405, 408, 413, 416, 500, 501, 503, 0,
];

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// Every counter of one server.
#[derive(Default)]
pub struct Metrics {
    requests: [[Counter; STATUSES.len()]; Route::ALL.len()],
    /// Body bytes of responses other than file downloads (counted whole
    /// when the response starts; downloads count as they are sent).
    bytes_other: Counter,
    /// File downloads in flight.
    pub downloads: std::sync::Arc<Downloads>,
    /// Manifests answered without rendering (from the cache, or the fixed
    /// "up to date" body).
    pub manifest_cache_hits: Counter,
    /// Manifests rendered for their request (then cached when the budget
    /// and the Host cap allow).
    pub manifest_renders: Counter,
    reports: [Counter; 6],
    /// Reports whose key was already stored.
    pub reports_duplicate: Counter,
    /// Reports refused for a signature that is malformed or does not match.
    pub reports_refused: Counter,
    /// Successful re-indexes.
    pub reloads: Counter,
    /// Re-indexes that failed (the old release stayed).
    pub reload_failures: Counter,
    /// Connections closed to make room for new ones (see [`crate::slots`]).
    pub connections_evicted: Counter,
    /// Connections refused because their address had its share.
    pub connections_refused: Counter,
}

impl Metrics {
    /// Counts one answered request.
    #[inline]
    pub fn request(&self, route: Route, status: u16) {
        self.requests[route as usize][status_slot(status)].inc();
    }

    /// Counts `n` body bytes of a response that is not a download.
    #[inline]
    pub fn other_bytes(&self, n: u64) {
        self.bytes_other.add(n as i64);
    }

    /// Counts a newly stored report.
    pub fn report_stored(&self, state: UpdateState) {
        let i = UpdateState::ALL
            .iter()
            .position(|s| *s == state)
            .expect("ALL lists every state");
        self.reports[i].inc();
    }

    /// Requests answered so far on `route` with `status`.
    pub fn requests(&self, route: Route, status: u16) -> i64 {
        self.requests[route as usize][status_slot(status)].get()
    }

    /// Renders everything in the Prometheus text exposition format.
    pub fn render(&self, info: &MetricsInfo<'_>) -> String {
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        };
        family(
            &mut out,
            "otavan_info",
            "gauge",
            "The release being served and the van serving it.",
        );
        let _ = writeln!(
            out,
            "otavan_info{{target=\"{}\",van_id=\"{}\"}} 1",
            label_value(info.target),
            label_value(info.van_id)
        );
        family(
            &mut out,
            "otavan_requests_total",
            "counter",
            "Requests answered, by route and status.",
        );
        for route in Route::ALL {
            for (i, status) in STATUSES.iter().enumerate() {
                let n = self.requests[route as usize][i].get();
                if n > 0 {
                    let status = match status {
                        0 => "other".to_owned(),
                        s => s.to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "otavan_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        route.label()
                    );
                }
            }
        }
        family(
            &mut out,
            "otavan_bytes_served_total",
            "counter",
            "Response body bytes: files as they are sent, the rest as the response starts.",
        );
        let _ = writeln!(
            out,
            "otavan_bytes_served_total {}",
            self.bytes_other.get() + self.downloads.bytes()
        );
        family(
            &mut out,
            "otavan_active_downloads",
            "gauge",
            "File downloads in flight.",
        );
        let _ = writeln!(out, "otavan_active_downloads {}", self.downloads.active());
        family(
            &mut out,
            "otavan_manifests_total",
            "counter",
            "Manifests served, from the cache or rendered.",
        );
        let _ = writeln!(
            out,
            "otavan_manifests_total{{source=\"cache\"}} {}",
            self.manifest_cache_hits.get()
        );
        let _ = writeln!(
            out,
            "otavan_manifests_total{{source=\"rendered\"}} {}",
            self.manifest_renders.get()
        );
        family(
            &mut out,
            "otavan_manifest_cache_bytes",
            "gauge",
            "Bytes of rendered manifests kept for the current release.",
        );
        let _ = writeln!(
            out,
            "otavan_manifest_cache_bytes {}",
            info.manifest_cache_bytes
        );
        family(
            &mut out,
            "otavan_connections_closed_total",
            "counter",
            "Connections closed by the server: evicted (stalest, to make room) or refused (per-address cap).",
        );
        let _ = writeln!(
            out,
            "otavan_connections_closed_total{{reason=\"evicted\"}} {}",
            self.connections_evicted.get()
        );
        let _ = writeln!(
            out,
            "otavan_connections_closed_total{{reason=\"refused\"}} {}",
            self.connections_refused.get()
        );
        family(
            &mut out,
            "otavan_reports_total",
            "counter",
            "Reports stored by this server, by state; duplicates were already stored, \
             refused ones had a bad signature.",
        );
        for (state, counter) in UpdateState::ALL.iter().zip(&self.reports) {
            let _ = writeln!(
                out,
                "otavan_reports_total{{state=\"{}\"}} {}",
                state.as_str(),
                counter.get()
            );
        }
        let _ = writeln!(
            out,
            "otavan_reports_total{{state=\"duplicate\"}} {}",
            self.reports_duplicate.get()
        );
        let _ = writeln!(
            out,
            "otavan_reports_total{{state=\"refused\"}} {}",
            self.reports_refused.get()
        );
        family(
            &mut out,
            "otavan_index_reloads_total",
            "counter",
            "Re-indexes of the release (SIGHUP), by result.",
        );
        let _ = writeln!(
            out,
            "otavan_index_reloads_total{{result=\"ok\"}} {}",
            self.reloads.get()
        );
        let _ = writeln!(
            out,
            "otavan_index_reloads_total{{result=\"failed\"}} {}",
            self.reload_failures.get()
        );
        family(
            &mut out,
            "otavan_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(out, "otavan_uptime_seconds {:.3}", info.uptime_seconds);
        out
    }
}

/// Facts `/metrics` shows besides the counters.
#[derive(Debug, Clone, Copy)]
pub struct MetricsInfo<'a> {
    /// The target version.
    pub target: &'a str,
    /// This van.
    pub van_id: &'a str,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Bytes the manifest cache holds.
    pub manifest_cache_bytes: usize,
}

/// Escapes a Prometheus label value (`\`, `"`, newline).
fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_has_every_family_and_counts() {
        let metrics = Metrics::default();
        metrics.request(Route::Manifest, 200);
        metrics.request(Route::Manifest, 200);
        metrics.request(Route::File, 299);
        metrics.report_stored(UpdateState::Failed);
        metrics.other_bytes(10);
        let text = metrics.render(&MetricsInfo {
            target: "1.1.0",
            van_id: "van-\"1\"",
            uptime_seconds: 1.5,
            manifest_cache_bytes: 42,
        });
        for line in [
            "otavan_info{target=\"1.1.0\",van_id=\"van-\\\"1\\\"\"} 1",
            "otavan_requests_total{route=\"manifest\",status=\"200\"} 2",
            "otavan_requests_total{route=\"file\",status=\"other\"} 1",
            "otavan_bytes_served_total 10",
            "otavan_active_downloads 0",
            "otavan_reports_total{state=\"FAILED\"} 1",
            "otavan_reports_total{state=\"UPDATED\"} 0",
            "otavan_index_reloads_total{result=\"ok\"} 0",
            "otavan_manifest_cache_bytes 42",
            "otavan_connections_closed_total{reason=\"evicted\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(metrics.requests(Route::Manifest, 200), 2);
    }
}
