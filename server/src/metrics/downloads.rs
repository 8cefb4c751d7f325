//! Downloads in flight: which file, to whom, how far, how fast.
//!
//! A file body registers in one of a fixed number of slots when its
//! response starts and frees it when dropped (finished or cut). A slot is
//! a handful of atomics, claimed with a compare-and-swap, so registering
//! costs no lock and no allocation; the file is an `Arc` the index already
//! holds. Readers (the dashboard) copy the slots under a sequence number
//! and skip one that changed meanwhile. When every slot is taken a
//! download is still counted, just not listed.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::counter::{Counter, SHARDS, shard};
use super::tap::ConnTap;
use crate::index::IndexedFile;

/// Downloads listed at once.
pub const SLOTS: usize = 64;

#[derive(Default)]
struct Slot {
    busy: AtomicBool,
    /// Odd while the slot is being (re)assigned.
    sequence: AtomicU64,
    file: ArcSwapOption<IndexedFile>,
    peer_ip: [AtomicU64; 2],
    peer_port: AtomicU64,
    started_us: AtomicU64,
    total: AtomicU64,
    sent: AtomicU64,
}

/// Every download in flight.
pub struct Downloads {
    epoch: Instant,
    slots: [Slot; SLOTS],
    active: Counter,
    bytes: Counter,
}

impl Default for Downloads {
    fn default() -> Downloads {
        Downloads {
            epoch: Instant::now(),
            slots: std::array::from_fn(|_| Slot::default()),
            active: Counter::default(),
            bytes: Counter::default(),
        }
    }
}

/// One download as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct ActiveDownload {
    /// The file being sent.
    pub file: Arc<IndexedFile>,
    /// Who receives it.
    pub peer: SocketAddr,
    /// Bytes handed to the connection so far.
    pub sent: u64,
    /// Bytes this response sends in all.
    pub total: u64,
    /// Time since the response started.
    pub elapsed: Duration,
}

impl ActiveDownload {
    /// Average rate so far, bytes per second.
    pub fn bytes_per_second(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

impl Downloads {
    /// Registers a download of `total` bytes of `file` to `peer`. With a
    /// `tap` (see [`super::tap`]) its progress is counted at the socket,
    /// else as the body hands out frames.
    pub fn start(
        self: &Arc<Self>,
        file: &Arc<IndexedFile>,
        peer: SocketAddr,
        total: u64,
        tap: Option<&Arc<ConnTap>>,
    ) -> DownloadGuard {
        self.active.inc();
        let first = shard() * (SLOTS / SHARDS);
        let slot = (0..SLOTS).map(|i| (first + i) % SLOTS).find(|&i| {
            self.slots[i]
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = slot {
            let slot = &self.slots[i];
            slot.sequence.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
            slot.file.store(Some(Arc::clone(file)));
            let (ip, port) = encode(peer);
            slot.peer_ip[0].store((ip >> 64) as u64, Ordering::Relaxed);
            slot.peer_ip[1].store(ip as u64, Ordering::Relaxed);
            slot.peer_port.store(port, Ordering::Relaxed);
            let started = self.epoch.elapsed().as_micros() as u64;
            slot.started_us.store(started, Ordering::Relaxed);
            slot.total.store(total, Ordering::Relaxed);
            slot.sent.store(0, Ordering::Relaxed);
            slot.sequence.fetch_add(1, Ordering::Release);
            if let Some(tap) = tap {
                tap.attach(i);
            }
        }
        DownloadGuard {
            downloads: Arc::clone(self),
            slot,
            tap: tap.map(Arc::clone),
        }
    }

    /// Adds `n` bytes written for the download in `slot`.
    #[inline]
    pub(crate) fn add_sent(&self, slot: usize, n: u64) {
        self.slots[slot].sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Downloads in flight (listed or not).
    pub fn active(&self) -> i64 {
        self.active.get()
    }

    /// File bytes handed to connections, all downloads so far.
    pub fn bytes(&self) -> i64 {
        self.bytes.get()
    }

    /// The listed downloads in flight, in slot order.
    pub fn snapshot(&self) -> Vec<ActiveDownload> {
        let now = self.epoch.elapsed();
        let mut list = Vec::new();
        for slot in &self.slots {
            if !slot.busy.load(Ordering::Acquire) {
                continue;
            }
            let before = slot.sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                continue;
            }
            let Some(file) = slot.file.load_full() else {
                continue;
            };
            let ip = (u128::from(slot.peer_ip[0].load(Ordering::Relaxed)) << 64)
                | u128::from(slot.peer_ip[1].load(Ordering::Relaxed));
            let port = slot.peer_port.load(Ordering::Relaxed);
            let started = Duration::from_micros(slot.started_us.load(Ordering::Relaxed));
            let total = slot.total.load(Ordering::Relaxed);
            let sent = slot.sent.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if slot.sequence.load(Ordering::Relaxed) != before || !slot.busy.load(Ordering::Relaxed)
            {
                continue;
            }
            list.push(ActiveDownload {
                file,
                peer: decode(ip, port),
                // Counted at the socket, the response head is included.
                sent: sent.min(total),
                total,
                elapsed: now.saturating_sub(started),
            });
        }
        list
    }
}

/// An IPv4 peer is stored as its IPv6-mapped form; the port's bit 16
/// says which it was.
fn encode(peer: SocketAddr) -> (u128, u64) {
    match peer.ip() {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().to_bits(), u64::from(peer.port())),
        IpAddr::V6(v6) => (v6.to_bits(), u64::from(peer.port()) | 1 << 16),
    }
}

fn decode(ip: u128, port: u64) -> SocketAddr {
    let v6 = Ipv6Addr::from_bits(ip);
    let ip = match (port >> 16 & 1, v6.to_ipv4_mapped()) {
        (0, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    };
    SocketAddr::new(ip, port as u16)
}

/// A registered download; counts its bytes, and frees its slot when
/// dropped.
pub struct DownloadGuard {
    downloads: Arc<Downloads>,
    slot: Option<usize>,
    tap: Option<Arc<ConnTap>>,
}

impl std::fmt::Debug for DownloadGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadGuard")
            .field("slot", &self.slot)
            .finish()
    }
}

impl DownloadGuard {
    /// Records `n` more bytes handed to the connection (the slot's
    /// progress too, unless the socket counts it).
    #[inline]
    pub fn sent(&self, n: u64) {
        self.downloads.bytes.add(n as i64);
        if let (Some(i), None) = (self.slot, &self.tap) {
            self.downloads.add_sent(i, n);
        }
    }

    /// Whether the socket counts this download's progress.
    pub fn tapped(&self) -> bool {
        self.tap.is_some() && self.slot.is_some()
    }
}

impl Drop for DownloadGuard {
    fn drop(&mut self) {
        self.downloads.active.add(-1);
        if let Some(i) = self.slot {
            if let Some(tap) = &self.tap {
                tap.detach(i);
            }
            let slot = &self.downloads.slots[i];
            slot.sequence.fetch_add(1, Ordering::Relaxed);
            slot.file.store(None);
            slot.sequence.fetch_add(1, Ordering::Release);
            slot.busy.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<IndexedFile> {
        Arc::new(IndexedFile::for_tests("/r/1.0.0/flash/a.py", 100))
    }

    #[test]
    fn downloads_are_listed_until_dropped_and_overflow_is_still_counted() {
        let downloads = Arc::new(Downloads::default());
        let v4: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        let v6: SocketAddr = "[fe80::1]:5000".parse().unwrap();
        let a = downloads.start(&file(), v4, 100, None);
        let b = downloads.start(&file(), v6, 50, None);
        a.sent(40);
        let listed = downloads.snapshot();
        assert_eq!(listed.len(), 2);
        let first = listed.iter().find(|d| d.peer == v4).unwrap();
        assert_eq!((first.sent, first.total), (40, 100));
        assert!(listed.iter().any(|d| d.peer == v6 && d.total == 50));
        drop(a);
        assert_eq!(downloads.snapshot().len(), 1);
        assert_eq!(downloads.active(), 1);
        let many: Vec<_> = (0..SLOTS + 3)
            .map(|_| downloads.start(&file(), v4, 1, None))
            .collect();
        assert_eq!(downloads.active(), SLOTS as i64 + 4);
        assert_eq!(downloads.snapshot().len(), SLOTS);
        drop(many);
        drop(b);
        assert_eq!(downloads.active(), 0);
        assert!(downloads.snapshot().is_empty());
        assert_eq!(downloads.bytes(), 40);
    }

    #[test]
    fn a_tapped_download_counts_what_the_socket_wrote() {
        let downloads = Arc::new(Downloads::default());
        let tap = Arc::new(ConnTap::default());
        let peer: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        let guard = downloads.start(&file(), peer, 100, Some(&tap));
        assert!(guard.tapped());
        guard.sent(100); // the body handed out everything at once
        assert_eq!(downloads.snapshot()[0].sent, 0);
        let slot = tap.slot.load(Ordering::Relaxed);
        downloads.add_sent(slot, 30);
        assert_eq!(downloads.snapshot()[0].sent, 30);
        downloads.add_sent(slot, 300);
        assert_eq!(downloads.snapshot()[0].sent, 100, "head bytes clamped");
        drop(guard);
        assert_eq!(tap.slot.load(Ordering::Relaxed), usize::MAX);
        assert_eq!(downloads.bytes(), 100);
    }
}
