//! `otavan serve --gpsd HOST:PORT`: where the van is, from gpsd.
//!
//! A task of its own ([`follow`]) holds one TCP connection to gpsd, asks
//! for JSON reports ([`tpv::WATCH`]) and keeps the latest fix in a
//! [`Position`] that report handlers read without waiting; it also stores
//! the van's trace, thinned ([`thin`]). When gpsd goes away the position is
//! dropped at once (reports are then stored without one), the loss is
//! logged, and the task reconnects with a doubling backoff; nothing on the
//! request path ever waits for gpsd.

pub mod thin;
pub mod tpv;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use otavan_store::{ReportBackend, VanFix};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

/// A fix older than this (by the server's clock) is no position: the
/// receiver lost the sky, or gpsd stopped sending.
pub const STALE: Duration = Duration::from_secs(10);

/// First wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// How long to wait for a line before taking gpsd for gone (it sends a
/// TPV every second while it has a receiver).
const SILENCE: Duration = Duration::from_secs(30);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The van's latest fix, shared by the gpsd task and request handlers.
#[derive(Debug, Default)]
pub struct Position {
    inner: Mutex<Fixes>,
}

#[derive(Debug, Default)]
struct Fixes {
    /// The latest fix and when it arrived.
    latest: Option<(VanFix, Instant)>,
    /// The receiver's time of the first fix since the server started: the
    /// start of this session's trace (a recorded drive replayed by gpsfake
    /// has its own dates, so the server's clock would not do).
    first: Option<SystemTime>,
}

impl Position {
    /// The latest fix, unless it is older than [`STALE`] or gpsd is gone.
    pub fn current(&self) -> Option<VanFix> {
        let latest = self.lock().latest;
        latest.and_then(|(fix, at)| (at.elapsed() < STALE).then_some(fix))
    }

    /// The receiver's time of the session's first fix, if there was one.
    pub fn first_fix_time(&self) -> Option<SystemTime> {
        self.lock().first
    }

    fn set(&self, fix: VanFix) {
        let mut fixes = self.lock();
        fixes.latest = Some((fix, Instant::now()));
        fixes.first.get_or_insert(fix.time);
    }

    fn lose(&self) {
        self.lock().latest = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fixes> {
        // Holding the lock never panics; a poisoned one still holds a fix.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why `--gpsd` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--gpsd {addr}: {reason}")]
pub struct BadGpsd {
    /// The address as given.
    pub addr: String,
    /// Why not.
    pub reason: String,
}

/// Checks that `addr` (HOST:PORT) names a socket address; gpsd itself need
/// not be running yet.
pub async fn check_address(addr: &str) -> Result<(), BadGpsd> {
    let bad = |reason: String| BadGpsd {
        addr: addr.to_owned(),
        reason,
    };
    match tokio::net::lookup_host(addr).await {
        Ok(mut found) => match found.next() {
            Some(_) => Ok(()),
            None => Err(bad("resolves to no address".into())),
        },
        Err(e) => Err(bad(format!("does not resolve ({e}); expected HOST:PORT"))),
    }
}

/// Follows gpsd at `addr` for ever: keeps `position` current and stores
/// the thinned trace in `reports`.
pub async fn follow(addr: String, position: Arc<Position>, reports: Arc<dyn ReportBackend>) {
    let mut thinner = thin::Thinner::default();
    let mut backoff = FIRST_BACKOFF;
    // The first failure in a row is a warning; the retries after it are
    // debug lines, so a van without its receiver does not flood the log.
    let mut failing = false;
    loop {
        let mut fixes = 0u64;
        let mut connected = false;
        let ended = session(
            &addr,
            &position,
            &*reports,
            &mut thinner,
            &mut connected,
            &mut fixes,
        )
        .await;
        position.lose();
        if fixes > 0 {
            backoff = FIRST_BACKOFF;
        }
        let retry_ms = backoff.as_millis() as u64;
        match ended {
            Ok(()) => warn!(gpsd = %addr, fixes, retry_ms,
                "gpsd closed the connection; reports are stored without position"),
            Err(error) if connected || !failing => warn!(gpsd = %addr, %error, fixes, retry_ms,
                "gpsd unavailable; reports are stored without position"),
            Err(error) => debug!(gpsd = %addr, %error, retry_ms, "gpsd still unavailable"),
        }
        failing = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: returns when gpsd closes it, errors when it fails or
/// falls silent.
async fn session(
    addr: &str,
    position: &Position,
    reports: &dyn ReportBackend,
    thinner: &mut thin::Thinner,
    connected: &mut bool,
    fixes: &mut u64,
) -> std::io::Result<()> {
    let timed_out = |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_owned());
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connect timed out"))??;
    stream.write_all(tpv::WATCH).await?;
    *connected = true;
    info!(gpsd = %addr, "gpsd connected; watching");
    let mut lines = BufReader::new(stream).lines();
    loop {
        let line = tokio::time::timeout(SILENCE, lines.next_line())
            .await
            .map_err(|_| timed_out("gpsd fell silent"))??;
        let Some(line) = line else {
            return Ok(());
        };
        match tpv::parse(&line) {
            Ok(Some(fix)) => {
                position.set(fix);
                *fixes += 1;
                if *fixes == 1 {
                    info!(lat = fix.lat, lon = fix.lon, "gpsd fix");
                }
                if thinner.keep(fix)
                    && let Err(error) = reports.record_fix(fix).await
                {
                    warn!(%error, "trace point not stored");
                }
            }
            Ok(None) => {}
            Err(error) => debug!(%error, "gpsd line skipped"),
        }
    }
}
