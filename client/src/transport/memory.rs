//! [`MemoryTransport`]: an in-memory [`Transport`] for tests, with fault
//! injection (cut connections, servers that ignore `Range`, wrong
//! `Content-Range` starts, corrupted bytes, failing reports).
//!
//! It answers the way [`HttpTransport`](super::HttpTransport) does for the
//! corresponding HTTP exchanges: manifests go through the same parser and
//! size cap, file URLs are reduced to the same request target, and the
//! errors carry the same variants.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::StatusCode;
use otavan_protocol::{Manifest, Report, Version};

use super::http::DEFAULT_MAX_MANIFEST_BYTES;
use super::response::{
    manifest_too_large, parse_manifest_body, request_target, status_error, wrong_range_start,
};
use super::{Fetched, Sink, Transport, TransportError};

/// Counters of what a [`MemoryTransport`] was asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// `fetch_manifest` calls.
    pub manifests: u64,
    /// `fetch` calls, failed ones included.
    pub fetches: u64,
    /// File bytes written to sinks.
    pub bytes: u64,
    /// `send_report` calls, failed ones included.
    pub reports: u64,
}

/// An in-memory server for engine tests.
///
/// Cloning shares the state: a test keeps one handle to inspect
/// [`reports`](Self::reports) and [`stats`](Self::stats) or to change the
/// faults while the engine owns another.
///
/// Behaviour, mirroring an otavan server reached over HTTP:
/// - `fetch_manifest(v)` serves the body registered for `v` with
///   [`with_manifest`](Self::with_manifest), else the default body
///   ([`with_default_manifest`](Self::with_default_manifest); initially
///   `null`, "up to date"). Bodies are raw bytes parsed like an HTTP body.
/// - `fetch(url, from, sink)` looks the URL's path (and query, if any) up
///   among the files registered with [`with_file`](Self::with_file); an
///   unknown path is a 404 [`TransportError::Status`]. With `from == 0`
///   (or when Range is ignored) it answers like a 200: `sink.restart()`,
///   then the whole file. With `from > 0` it answers like a 206 from
///   `from`, or a 416 `Status` when `from` is not before the end.
///   Data is written in chunks of [`set_chunk_size`](Self::set_chunk_size)
///   bytes (1 KiB by default).
/// - `send_report` records the report, readable with
///   [`reports`](Self::reports).
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    manifests: HashMap<String, Vec<u8>>,
    default_manifest: Vec<u8>,
    files: HashMap<String, Vec<u8>>,
    reports: Vec<Report>,
    stats: TransportStats,
    manifest_log: Vec<String>,
    fetch_log: Vec<(String, u64)>,
    chunk_size: usize,
    /// Bytes left before the connection is cut, across fetches.
    cut_budget: Option<u64>,
    /// Per-fetch cut points, consumed one per `fetch` call.
    cut_schedule: VecDeque<u64>,
    ignore_range: bool,
    wrong_range_start: bool,
    /// (request target, offset) pairs whose byte is flipped when served.
    corruptions: Vec<(String, u64)>,
    fail_reports: bool,
    offline: bool,
}

impl Default for State {
    fn default() -> State {
        State {
            manifests: HashMap::new(),
            default_manifest: b"null".to_vec(),
            files: HashMap::new(),
            reports: Vec::new(),
            stats: TransportStats::default(),
            manifest_log: Vec::new(),
            fetch_log: Vec::new(),
            chunk_size: 1024,
            cut_budget: None,
            cut_schedule: VecDeque::new(),
            ignore_range: false,
            wrong_range_start: false,
            corruptions: Vec::new(),
            fail_reports: false,
            offline: false,
        }
    }
}

impl MemoryTransport {
    /// An empty server: every manifest request answers `null`, no files,
    /// no faults.
    pub fn new() -> MemoryTransport {
        MemoryTransport::default()
    }

    /// Serves `body` (raw bytes, possibly malformed on purpose) to
    /// `fetch_manifest(current)`.
    pub fn with_manifest(self, current: &str, body: impl Into<Vec<u8>>) -> MemoryTransport {
        self.set_manifest(current, body);
        self
    }

    /// Serves `body` to every version without a body of its own (replaces
    /// the initial `null`).
    pub fn with_default_manifest(self, body: impl Into<Vec<u8>>) -> MemoryTransport {
        self.set_default_manifest(body);
        self
    }

    /// Serves `bytes` at `url_path`, the path part of the URLs the
    /// manifest names (`/1.1.0/flash/main.py`).
    pub fn with_file(self, url_path: &str, bytes: impl Into<Vec<u8>>) -> MemoryTransport {
        self.set_file(url_path, bytes);
        self
    }

    /// Like [`with_manifest`](Self::with_manifest), through a shared handle.
    pub fn set_manifest(&self, current: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .manifests
            .insert(current.to_owned(), body.into());
    }

    /// Like [`with_default_manifest`](Self::with_default_manifest), through
    /// a shared handle.
    pub fn set_default_manifest(&self, body: impl Into<Vec<u8>>) {
        self.lock().default_manifest = body.into();
    }

    /// Like [`with_file`](Self::with_file), through a shared handle
    /// (replaces any previous content).
    pub fn set_file(&self, url_path: &str, bytes: impl Into<Vec<u8>>) {
        self.lock().files.insert(url_path.to_owned(), bytes.into());
    }

    /// Removes the file at `url_path`; fetching it then answers 404.
    pub fn remove_file(&self, url_path: &str) {
        self.lock().files.remove(url_path);
    }

    /// Cuts the connection once `n_bytes` more file bytes have been
    /// delivered, counted across fetches: the fetch that would go beyond
    /// writes what is left of the allowance, then fails with
    /// [`TransportError::Connection`]. After that one cut, fetches succeed
    /// again (call again for another cut).
    pub fn cut_after(&self, n_bytes: u64) {
        self.lock().cut_budget = Some(n_bytes);
    }

    /// Cuts individual fetches: the k-th `fetch` call from now (whatever its
    /// outcome) delivers at most `schedule[k]` bytes before its connection
    /// is cut; a file that fits is not cut (use `u64::MAX` for "do not
    /// cut"). Fetches after the schedule runs out are not cut. Replaces any
    /// previous schedule.
    pub fn set_cut_schedule(&self, schedule: impl IntoIterator<Item = u64>) {
        self.lock().cut_schedule = schedule.into_iter().collect();
    }

    /// When `ignore`, `from > 0` is answered like the Pycom reference server
    /// does: a full 200 (the sink is restarted, `Fetched::from == 0`).
    pub fn set_ignore_range(&self, ignore: bool) {
        self.lock().ignore_range = ignore;
    }

    /// When `wrong`, resume requests (`from > 0`, Range honoured) get a 206
    /// whose `Content-Range` starts elsewhere:
    /// [`TransportError::BadResponse`], nothing written.
    pub fn set_wrong_range_start(&self, wrong: bool) {
        self.lock().wrong_range_start = wrong;
    }

    /// Flips every bit of the byte at `offset` of the file at `url_path`
    /// each time it is served (offsets past the end do nothing), so its
    /// hashes no longer match. Several offsets may be corrupted.
    pub fn corrupt_byte(&self, url_path: &str, offset: u64) {
        self.lock().corruptions.push((url_path.to_owned(), offset));
    }

    /// Undoes every [`corrupt_byte`](Self::corrupt_byte).
    pub fn clear_corruptions(&self) {
        self.lock().corruptions.clear();
    }

    /// When `fail`, `send_report` answers a 500 [`TransportError::Status`]
    /// and records nothing.
    pub fn fail_reports(&self, fail: bool) {
        self.lock().fail_reports = fail;
    }

    /// When `offline`, every operation fails with
    /// [`TransportError::Connection`] (the van is out of range).
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// Writes file data in chunks of at most `bytes` bytes (at least 1).
    pub fn set_chunk_size(&self, bytes: usize) {
        self.lock().chunk_size = bytes.max(1);
    }

    /// The reports received so far, oldest first.
    pub fn reports(&self) -> Vec<Report> {
        self.lock().reports.clone()
    }

    /// What was asked of this transport so far.
    pub fn stats(&self) -> TransportStats {
        self.lock().stats
    }

    /// The `current` version of every `fetch_manifest` call, in order.
    pub fn manifest_log(&self) -> Vec<String> {
        self.lock().manifest_log.clone()
    }

    /// The request target and `from` offset of every `fetch` call, in
    /// order (URLs that could not be parsed are logged as given).
    pub fn fetch_log(&self) -> Vec<(String, u64)> {
        self.lock().fetch_log.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one fetch will deliver, decided under the lock.
struct Plan {
    data: Vec<u8>,
    start: u64,
    restart: bool,
    /// Deliver at most this many bytes, then cut.
    cut_at: Option<u64>,
    chunk_size: usize,
}

impl MemoryTransport {
    fn plan_fetch(&self, url: &str, from: u64) -> Result<Plan, TransportError> {
        let mut state = self.lock();
        state.stats.fetches += 1;
        let scheduled_cut = state.cut_schedule.pop_front();
        let target = match request_target(url) {
            Ok(target) => target,
            Err(e) => {
                state.fetch_log.push((url.to_owned(), from));
                return Err(e);
            }
        };
        state.fetch_log.push((target.clone(), from));
        let what = format!("GET {target}");
        if state.offline {
            return Err(offline(&what));
        }
        let Some(file) = state.files.get(&target) else {
            return Err(status_error(StatusCode::NOT_FOUND.as_u16(), what));
        };
        let len = file.len() as u64;
        let (start, restart) = if from == 0 || state.ignore_range {
            (0, true)
        } else if from >= len {
            return Err(status_error(
                StatusCode::RANGE_NOT_SATISFIABLE.as_u16(),
                what,
            ));
        } else if state.wrong_range_start {
            return Err(wrong_range_start(&what, from, from - 1));
        } else {
            (from, false)
        };
        let mut data = file[start as usize..].to_vec();
        for (path, offset) in &state.corruptions {
            if *path == target && *offset >= start && *offset < len {
                data[(*offset - start) as usize] ^= 0xFF;
            }
        }
        let remaining = data.len() as u64;
        let mut cut_at = scheduled_cut.filter(|&n| n < remaining);
        if let Some(budget) = state.cut_budget {
            if budget < remaining {
                state.cut_budget = None;
                cut_at = Some(cut_at.map_or(budget, |n| n.min(budget)));
            } else {
                state.cut_budget = Some(budget - remaining);
            }
        }
        Ok(Plan {
            data,
            start,
            restart,
            cut_at,
            chunk_size: state.chunk_size,
        })
    }
}

fn offline(what: &str) -> TransportError {
    TransportError::Connection(format!(
        "{what}: cannot connect (memory transport is offline)"
    ))
}

impl Transport for MemoryTransport {
    async fn fetch_manifest(&self, current: &Version) -> Result<Option<Manifest>, TransportError> {
        let body = {
            let mut state = self.lock();
            state.stats.manifests += 1;
            state.manifest_log.push(current.as_str().to_owned());
            if state.offline {
                return Err(offline("GET /manifest.json"));
            }
            state
                .manifests
                .get(current.as_str())
                .unwrap_or(&state.default_manifest)
                .clone()
        };
        if body.len() > DEFAULT_MAX_MANIFEST_BYTES {
            return Err(manifest_too_large(DEFAULT_MAX_MANIFEST_BYTES));
        }
        parse_manifest_body(&body)
    }

    async fn fetch(
        &self,
        url: &str,
        from: u64,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, TransportError> {
        let plan = self.plan_fetch(url, from)?;
        // The lock is not held while the sink works.
        if plan.restart {
            sink.restart()?;
        }
        let deliver = plan.cut_at.map_or(plan.data.len(), |n| n as usize);
        let mut received: u64 = 0;
        let mut outcome = Ok(());
        for chunk in plan.data[..deliver].chunks(plan.chunk_size) {
            if let Err(e) = sink.write(chunk) {
                outcome = Err(TransportError::Sink(e));
                break;
            }
            received += chunk.len() as u64;
        }
        self.lock().stats.bytes += received;
        outcome?;
        if plan.cut_at.is_some() {
            let target = request_target(url).unwrap_or_default();
            return Err(TransportError::Connection(format!(
                "GET {target}: connection cut after {received} bytes of {}",
                plan.data.len()
            )));
        }
        Ok(Fetched {
            from: plan.start,
            received,
        })
    }

    async fn send_report(&self, report: &Report) -> Result<(), TransportError> {
        let mut state = self.lock();
        state.stats.reports += 1;
        if state.offline {
            return Err(offline("POST /report"));
        }
        if state.fail_reports {
            return Err(status_error(
                StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
                "POST /report".to_owned(),
            ));
        }
        state.reports.push(report.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use otavan_protocol::UpdateState;

    use super::*;

    /// Records what the transport does to it.
    #[derive(Debug, Default)]
    struct VecSink {
        data: Vec<u8>,
        restarts: u32,
        writes: u32,
        fail_after: Option<usize>,
    }

    impl Sink for VecSink {
        fn restart(&mut self) -> io::Result<()> {
            self.data.clear();
            self.restarts += 1;
            Ok(())
        }

        fn write(&mut self, data: &[u8]) -> io::Result<()> {
            if self
                .fail_after
                .is_some_and(|limit| self.data.len() + data.len() > limit)
            {
                return Err(io::Error::other("disk full"));
            }
            self.data.extend_from_slice(data);
            self.writes += 1;
            Ok(())
        }
    }

    const URL: &str = "http://10.0.0.1:8000/1.1.0/sd/big.bin";
    const PATH: &str = "/1.1.0/sd/big.bin";

    fn content() -> Vec<u8> {
        (0..5000u32).map(|i| (i * 13 % 251) as u8).collect()
    }

    fn transport() -> MemoryTransport {
        MemoryTransport::new().with_file(PATH, content())
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn version(v: &str) -> Version {
        Version::parse(v).unwrap()
    }

    #[test]
    fn full_fetch_restarts_and_writes_in_chunks() {
        let t = transport();
        let mut sink = VecSink::default();
        let fetched = block_on(t.fetch(URL, 0, &mut sink)).unwrap();
        assert_eq!(
            fetched,
            Fetched {
                from: 0,
                received: 5000
            }
        );
        assert_eq!(sink.data, content());
        assert_eq!(sink.restarts, 1);
        assert_eq!(sink.writes, 5);
        assert_eq!(
            t.stats(),
            TransportStats {
                manifests: 0,
                fetches: 1,
                bytes: 5000,
                reports: 0
            }
        );
        assert_eq!(t.fetch_log(), vec![(PATH.to_owned(), 0)]);
    }

    #[test]
    fn cut_schedule_then_resume() {
        let t = transport();
        t.set_cut_schedule([1500, u64::MAX, 10]);
        let mut sink = VecSink::default();

        let err = block_on(t.fetch(URL, 0, &mut sink)).unwrap_err();
        assert!(
            matches!(err, TransportError::Connection(ref m) if m.contains("cut after 1500 bytes")),
            "{err}"
        );
        assert_eq!(sink.data, &content()[..1500]);

        // Second fetch: not cut; resumes from 1500 without a restart.
        let fetched = block_on(t.fetch(URL, 1500, &mut sink)).unwrap();
        assert_eq!(
            fetched,
            Fetched {
                from: 1500,
                received: 3500
            }
        );
        assert_eq!(sink.data, content());
        assert_eq!(sink.restarts, 1);

        // Third fetch: cut after 10 bytes; fourth: schedule exhausted.
        let mut sink = VecSink::default();
        assert!(block_on(t.fetch(URL, 4000, &mut sink)).is_err());
        assert_eq!(sink.data, &content()[4000..4010]);
        let fetched = block_on(t.fetch(URL, 4010, &mut sink)).unwrap();
        assert_eq!(
            fetched,
            Fetched {
                from: 4010,
                received: 990
            }
        );
        assert_eq!(sink.data, &content()[4000..]);
        assert_eq!(t.stats().bytes, 1500 + 3500 + 10 + 990);
        assert_eq!(t.stats().fetches, 4);
    }

    #[test]
    fn scheduled_cut_beyond_the_file_does_not_cut() {
        let t = transport();
        t.set_cut_schedule([5000]);
        let mut sink = VecSink::default();
        assert!(block_on(t.fetch(URL, 0, &mut sink)).is_ok());
        assert_eq!(sink.data, content());
    }

    #[test]
    fn cut_after_counts_across_fetches_and_fires_once() {
        let t = transport().with_file("/1.1.0/flash/a.py", b"0123456789".to_vec());
        t.cut_after(5004);
        let mut a = VecSink::default();
        block_on(t.fetch("http://h/1.1.0/flash/a.py", 0, &mut a)).unwrap();
        let mut big = VecSink::default();
        let err = block_on(t.fetch(URL, 0, &mut big)).unwrap_err();
        assert!(matches!(err, TransportError::Connection(_)));
        assert_eq!(big.data, &content()[..4994]);
        // The allowance is spent: the resume completes.
        let fetched = block_on(t.fetch(URL, 4994, &mut big)).unwrap();
        assert_eq!(fetched.received, 6);
        assert_eq!(big.data, content());
    }

    #[test]
    fn ignored_range_restarts_from_zero() {
        let t = transport();
        t.set_ignore_range(true);
        let mut sink = VecSink {
            data: b"stale".to_vec(),
            ..VecSink::default()
        };
        let fetched = block_on(t.fetch(URL, 1000, &mut sink)).unwrap();
        assert_eq!(
            fetched,
            Fetched {
                from: 0,
                received: 5000
            }
        );
        assert_eq!(sink.restarts, 1);
        assert_eq!(sink.data, content());
    }

    #[test]
    fn range_errors() {
        let t = transport();
        let mut sink = VecSink::default();
        let err = block_on(t.fetch(URL, 5000, &mut sink)).unwrap_err();
        assert!(
            matches!(err, TransportError::Status { status: 416, .. }),
            "{err}"
        );
        let err = block_on(t.fetch("http://h/nope", 0, &mut sink)).unwrap_err();
        assert!(
            matches!(err, TransportError::Status { status: 404, .. }),
            "{err}"
        );
        let err = block_on(t.fetch("/1.1.0/sd/big.bin", 0, &mut sink)).unwrap_err();
        assert!(matches!(err, TransportError::BadResponse(_)), "{err}");

        t.set_wrong_range_start(true);
        let err = block_on(t.fetch(URL, 100, &mut sink)).unwrap_err();
        assert!(matches!(err, TransportError::BadResponse(_)), "{err}");
        assert!(sink.data.is_empty());
        // A full fetch is unaffected.
        assert!(block_on(t.fetch(URL, 0, &mut sink)).is_ok());
    }

    #[test]
    fn corruption_flips_one_byte() {
        let t = transport();
        t.corrupt_byte(PATH, 2500);
        let mut sink = VecSink::default();
        block_on(t.fetch(URL, 0, &mut sink)).unwrap();
        let expected = content();
        let differing: Vec<usize> = (0..5000).filter(|&i| sink.data[i] != expected[i]).collect();
        assert_eq!(differing, [2500]);
        assert_eq!(sink.data[2500], expected[2500] ^ 0xFF);

        let mut tail = VecSink::default();
        block_on(t.fetch(URL, 2000, &mut tail)).unwrap();
        assert_eq!(tail.data[500], expected[2500] ^ 0xFF);

        t.clear_corruptions();
        let mut sink = VecSink::default();
        block_on(t.fetch(URL, 0, &mut sink)).unwrap();
        assert_eq!(sink.data, expected);
    }

    #[test]
    fn sink_errors_keep_written_bytes() {
        let t = transport();
        let mut sink = VecSink {
            fail_after: Some(2048),
            ..VecSink::default()
        };
        let err = block_on(t.fetch(URL, 0, &mut sink)).unwrap_err();
        assert!(matches!(err, TransportError::Sink(_)), "{err}");
        assert_eq!(sink.data.len(), 2048);
        assert_eq!(t.stats().bytes, 2048);
    }

    #[test]
    fn manifests_share_the_http_parser() {
        let body = r#"{"delete":[],"new":[],"update":[],"version":"1.1.0"}"#;
        let t = MemoryTransport::new()
            .with_manifest("1.0.0", body)
            .with_manifest("0.9.0", "{\"version\":")
            .with_manifest("0.8.0", " null\n");
        let m = block_on(t.fetch_manifest(&version("1.0.0")))
            .unwrap()
            .unwrap();
        assert_eq!(m.version, "1.1.0");
        assert!(matches!(
            block_on(t.fetch_manifest(&version("0.9.0"))),
            Err(TransportError::BadResponse(_))
        ));
        assert_eq!(block_on(t.fetch_manifest(&version("0.8.0"))).unwrap(), None);
        // No entry: the initial default is `null`.
        assert_eq!(block_on(t.fetch_manifest(&version("1.1.0"))).unwrap(), None);
        t.set_default_manifest(body);
        assert!(
            block_on(t.fetch_manifest(&version("0.1")))
                .unwrap()
                .is_some()
        );
        t.set_default_manifest(vec![b' '; DEFAULT_MAX_MANIFEST_BYTES + 1]);
        assert!(matches!(
            block_on(t.fetch_manifest(&version("0.1"))),
            Err(TransportError::BadResponse(_))
        ));
        assert_eq!(t.stats().manifests, 6);
        assert_eq!(t.manifest_log()[0], "1.0.0");
    }

    #[test]
    fn reports_are_recorded_unless_failing_and_clones_share_state() {
        let t = MemoryTransport::new();
        let engine_side = t.clone();
        let report = Report {
            device_id: "meter-1".into(),
            from_version: version("1.0.0"),
            to_version: version("1.1.0"),
            state: UpdateState::Downloading,
            error: None,
            bytes: Some(0),
            full_bytes: None,
            report_id: None,
        };
        block_on(engine_side.send_report(&report)).unwrap();
        t.fail_reports(true);
        let err = block_on(engine_side.send_report(&report)).unwrap_err();
        assert!(matches!(err, TransportError::Status { status: 500, .. }));
        t.fail_reports(false);
        t.set_offline(true);
        assert!(matches!(
            block_on(engine_side.send_report(&report)),
            Err(TransportError::Connection(_))
        ));
        assert_eq!(t.reports(), vec![report]);
        assert_eq!(t.stats().reports, 3);
    }
}
