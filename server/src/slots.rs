//! Connection slots: a total cap, a cap per client address, and room made
//! for new meters by closing the connection that has gone longest without
//! progress.
//!
//! When every slot is taken the accept loop asks [`Slots::evict_stalest`]
//! to close the connection whose client last sent a byte or took one
//! longest ago: first among those waiting for a request (an idle
//! keep-alive connection, one that connected and never sent its request)
//! silent at least [`EVICT_AFTER`], then among those whose download waits
//! on the client, stalled at least [`EVICT_BLOCKED_AFTER`] (a slow meter
//! behind the kernel's send buffer sees a write complete only every second
//! or two, so it must not be taken for stalled). A connection making progress is never
//! closed for a newcomer; if all of them are, newcomers wait in the
//! kernel's accept queue as before. So a stalled or greedy client can
//! delay a new meter's manifest by at most a slot's turnover, never keep
//! it out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a connection that is not in the middle of sending a response
/// (waiting for its first or next request) must have been silent before
/// it may be closed to make room: longer than a meter's pause between two
/// requests of one session, far shorter than the header timeout.
pub const EVICT_AFTER: Duration = Duration::from_secs(2);

/// How long a connection whose response waits on the client must have gone
/// without the client taking a byte before it may be closed to make room.
/// Behind the kernel's send buffer a meter taking 40 kB/s sees a write
/// complete only every second or two, so it must not look stale at 2 s;
/// half the default stall timeout.
pub const EVICT_BLOCKED_AFTER: Duration = Duration::from_secs(10);

/// The default cap per client address: a meter uses one or two
/// connections; 8 leaves room for a client behind NAT (a phone, a laptop).
pub const DEFAULT_PER_IP: usize = 8;

/// Every connection being served.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    per_ip: usize,
    epoch: Instant,
    inner: Mutex<Inner>,
    freed: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    conns: HashMap<u64, Arc<ConnState>>,
    per_ip: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// One connection's progress, written by its socket and read by the
/// eviction scan.
#[derive(Debug)]
pub struct ConnState {
    epoch: Instant,
    /// Milliseconds from the epoch to the last byte sent or taken.
    last_progress_ms: AtomicU64,
    /// Whether the last write waited on the client (a response under way).
    blocked: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

impl ConnState {
    /// Records that the client sent or took bytes at `now` (the caller's
    /// clock reading: the socket's hot path reads the clock once per call).
    pub fn progressed_at(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last_progress_ms.store(ms, Ordering::Relaxed);
    }

    /// Records whether the socket's last write had to wait for the client.
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    /// Completes when the connection has been chosen to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
    ip: IpAddr,
    state: Arc<ConnState>,
}

impl SlotGuard {
    /// The connection's progress record.
    pub fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut inner = self.slots.inner.lock().expect("slots lock");
        inner.conns.remove(&self.id);
        if let Some(n) = inner.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.per_ip.remove(&self.ip);
            }
        }
        drop(inner);
        self.slots.freed.notify_one();
    }
}

impl Slots {
    /// At most `max` connections, `per_ip` from one address (0: no cap).
    pub fn new(max: usize, per_ip: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            per_ip,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
            freed: Notify::new(),
        })
    }

    /// Whether every slot is taken.
    pub fn full(&self) -> bool {
        self.inner.lock().expect("slots lock").conns.len() >= self.max
    }

    /// Connections being served.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("slots lock").conns.len()
    }

    /// Whether no connection is being served.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A slot for a connection from `ip`, or `None` when that address
    /// already has its share.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<SlotGuard> {
        let mut inner = self.inner.lock().expect("slots lock");
        let count = inner.per_ip.entry(ip).or_default();
        if self.per_ip != 0 && *count >= self.per_ip {
            return None;
        }
        *count += 1;
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState {
            epoch: self.epoch,
            last_progress_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            blocked: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        inner.conns.insert(id, Arc::clone(&state));
        Some(SlotGuard {
            slots: Arc::clone(self),
            id,
            ip,
            state,
        })
    }

    /// Tells one connection to close to make room: the one silent longest
    /// among those waiting for a request and silent at least `idle`, else
    /// the one stalled longest among those whose response waits on the
    /// client and stalled at least `blocked_idle`. Whether one was told.
    pub fn evict_stalest(&self, idle: Duration, blocked_idle: Duration) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let inner = self.inner.lock().expect("slots lock");
        let stalest = |blocked: bool, limit: Duration| {
            let limit = limit.as_millis() as u64;
            inner
                .conns
                .values()
                .filter(|c| !c.evicted.load(Ordering::Relaxed))
                .filter(|c| c.blocked.load(Ordering::Relaxed) == blocked)
                .map(|c| (c.last_progress_ms.load(Ordering::Relaxed), c))
                .filter(|(last, _)| now.saturating_sub(*last) >= limit)
                .min_by_key(|(last, _)| *last)
        };
        let stalest = stalest(false, idle).or_else(|| stalest(true, blocked_idle));
        match stalest {
            Some((_, conn)) => {
                conn.evicted.store(true, Ordering::Relaxed);
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Completes when a slot is freed (at once if one was freed since the
    /// last call).
    pub async fn freed(&self) {
        self.freed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A download waiting on a slow client is closed only after the longer
    /// limit, and a connection waiting for a request goes first.
    #[test]
    fn a_connection_waiting_for_a_request_goes_before_a_slow_download() {
        let slots = Slots::new(2, 0);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let download = slots.admit(ip).unwrap();
        download.state().set_blocked(true);
        let idle = slots.admit(ip).unwrap();
        assert!(slots.full());
        let hour = Duration::from_secs(3600);
        assert!(slots.evict_stalest(Duration::ZERO, hour));
        assert!(idle.state().evicted.load(Ordering::Relaxed));
        assert!(!download.state().evicted.load(Ordering::Relaxed));
        assert!(
            !slots.evict_stalest(Duration::ZERO, hour),
            "the download is not stale yet"
        );
        assert!(slots.evict_stalest(Duration::ZERO, Duration::ZERO));
        assert!(download.state().evicted.load(Ordering::Relaxed));
    }

    #[test]
    fn one_address_gets_its_share_and_a_freed_slot_returns() {
        let slots = Slots::new(10, 2);
        let ip = IpAddr::from([10, 0, 0, 1]);
        let a = slots.admit(ip).unwrap();
        let _b = slots.admit(ip).unwrap();
        assert!(slots.admit(ip).is_none());
        assert!(slots.admit(IpAddr::from([10, 0, 0, 2])).is_some());
        drop(a);
        assert!(slots.admit(ip).is_some());
    }
}
