//! Time and randomness: what the meter's logic takes from the world, as
//! inputs.
//!
//! Nothing else in the client reads the wall clock or the operating
//! system's random numbers. The engine takes a [`Clock`] and an
//! [`Entropy`] from its caller, the LoRa trigger a [`MeterClock`] and a
//! seed: a meter passes [`SystemClock`], [`SystemEntropy`] and
//! [`MeterClock::system`]; a rehearsal passes its virtual time (a
//! [`MeterClock`] anchored at the campaign's epoch) and seeded streams, so
//! a run is a function of its seed; a test passes a clock stopped at the
//! instant it checks.
//!
//! **Trusted time.** The meter's own clock (its RTC) is not trusted: it
//! may have reset to 1970, and nothing authenticates it. What the meter
//! trusts is the network's time ([`NetworkTime`]: LoRaWAN's
//! `DeviceTimeAns`, authenticated by the network session, carried forward
//! by the monotonic clock) and its floor ([`crate::state::DeviceState`]'s
//! `trusted_time`: the latest such time it has seen, kept across reboots,
//! never lowered). Expiry is judged at [`trusted_now`]: the latest of the
//! floor, the network's time and the RTC. The RTC can only make a meter
//! stricter (an expiry comes sooner), never accept what the trusted time
//! says has expired, and it is never written into the floor, so a clock
//! that jumped to 2100 stops updates only until it is set right.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall-clock time, as a [`Duration`] since the Unix epoch.
///
/// The meter's own clock; the engine judges expiry at [`trusted_now`] of
/// it. A trait, not a call to [`SystemTime::now`], so that the time is
/// whatever the caller says: the system's on a meter, virtual in a
/// rehearsal, fixed in a test.
pub trait Clock {
    /// The time now.
    fn now(&self) -> Duration;
}

/// The operating system's clock (the epoch itself if it is set before).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// Wall time read once from a [`Clock`] and then advanced by tokio's
/// monotonic [`Instant`]: the LoRa trigger's time.
///
/// Scheduled sessions are stored in this time, so they mean the same after
/// a restart (the meter's real-time clock gives the new anchor). Everything
/// in between follows tokio time, so tests with paused time are exact, and
/// a rehearsal in paused time gets its virtual wall time; a test that
/// rebuilds a trigger passes it the same clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterClock {
    /// Wall time at `anchor`.
    wall: Duration,
    /// The tokio instant the wall time was read at.
    anchor: Instant,
}

impl MeterClock {
    /// Anchored to the system clock now.
    pub fn system() -> MeterClock {
        MeterClock::starting_at(SystemClock.now())
    }

    /// A clock that reads `wall` now (in tokio time) and advances with
    /// tokio time from there.
    pub fn starting_at(wall: Duration) -> MeterClock {
        MeterClock {
            wall,
            anchor: Instant::now(),
        }
    }

    /// The tokio instant at time `at` (the anchor for times before it).
    pub fn instant(&self, at: Duration) -> Instant {
        self.anchor + at.saturating_sub(self.wall)
    }
}

impl Clock for MeterClock {
    fn now(&self) -> Duration {
        self.wall + self.anchor.elapsed()
    }
}

/// The network's time: the last authenticated answer (LoRaWAN
/// `DeviceTimeAns`) and the monotonic instant it stood for, shared by the
/// LoRa trigger (which sets it) and the engine (which reads it).
///
/// It lives for one boot only: tokio's [`Instant`] means nothing after a
/// restart, which is why the floor in the device state keeps the latest
/// value across reboots.
#[derive(Debug, Clone, Default)]
pub struct NetworkTime(Arc<Mutex<Option<(Duration, Instant)>>>);

impl NetworkTime {
    /// No answer yet.
    pub fn new() -> NetworkTime {
        NetworkTime::default()
    }

    /// The network said it was Unix time `unix` at `at`. An answer that
    /// would move the time back is ignored: the time only grows.
    pub fn set(&self, unix: Duration, at: Instant) {
        let mut time = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = |(wall, anchor): (Duration, Instant)| wall + anchor.elapsed();
        if time.is_none_or(|old| now(old) <= unix + at.elapsed()) {
            *time = Some((unix, at));
        }
    }

    /// The network's time now, carried from its last answer by the
    /// monotonic clock; `None` before any answer.
    pub fn now(&self) -> Option<Duration> {
        let time = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        time.map(|(wall, anchor)| wall + anchor.elapsed())
    }
}

/// The time a meter judges expiry at: the latest of its `floor` (the
/// trusted time it kept), the `network`'s time, and its own clock `rtc`.
/// Each only ever makes the result later, so none of them can make an
/// expired release look valid again by going back.
pub fn trusted_now(floor: Duration, network: Option<Duration>, rtc: Duration) -> Duration {
    floor.max(network.unwrap_or_default()).max(rtc)
}

/// A source of random 64-bit numbers.
///
/// The engine names each update attempt with one (the reports' ids). A
/// meter passes [`SystemEntropy`]; a rehearsal a stream seeded from its
/// run's seed, so the same seed gives the same reports.
pub trait Entropy {
    /// The next number.
    fn next_u64(&mut self) -> u64;
}

/// The operating system's random numbers; where it has none, the system
/// clock's nanoseconds, which still tell draws apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn next_u64(&mut self) -> u64 {
        getrandom::u64().unwrap_or_else(|_| SystemClock.now().as_nanos() as u64)
    }
}

/// SplitMix64: a seeded generator, cheap and good enough to spread a
/// fleet's retries (the trigger's join jitter) or to name attempts in a
/// test. Not for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// The generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }
}

impl Entropy for SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn maps_wall_time_to_tokio_instants() {
        let clock = MeterClock::starting_at(Duration::from_secs(1_000));
        let now = clock.now();
        assert!(now >= Duration::from_secs(1_000) && now < Duration::from_secs(1_010));
        let anchor = clock.instant(Duration::from_secs(1_000));
        assert_eq!(
            clock.instant(Duration::from_secs(1_090)) - anchor,
            Duration::from_secs(90)
        );
        // Times before the anchor are the anchor.
        assert_eq!(clock.instant(Duration::from_secs(5)), anchor);
        assert!(anchor <= Instant::now());
        let system = MeterClock::system().now();
        assert!(system > Duration::from_secs(1_600_000_000), "{system:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_meter_clock_advances_with_paused_time_only() {
        let clock = MeterClock::starting_at(Duration::from_secs(1_767_225_600));
        assert_eq!(clock.now(), Duration::from_secs(1_767_225_600));
        tokio::time::sleep(Duration::from_secs(86_400)).await;
        assert_eq!(clock.now(), Duration::from_secs(1_767_312_000));
    }

    #[tokio::test(start_paused = true)]
    async fn network_time_advances_with_the_monotonic_clock_and_never_goes_back() {
        let time = NetworkTime::new();
        assert_eq!(time.now(), None);
        time.set(Duration::from_secs(1_767_225_600), Instant::now());
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(time.now(), Some(Duration::from_secs(1_767_225_660)));
        // An older answer (a replayed or delayed frame) changes nothing.
        time.set(Duration::from_secs(1_000), Instant::now());
        assert_eq!(time.now(), Some(Duration::from_secs(1_767_225_660)));
        time.set(Duration::from_secs(1_767_230_000), Instant::now());
        assert_eq!(time.now(), Some(Duration::from_secs(1_767_230_000)));
        // Clones share the time: the trigger sets what the engine reads.
        assert_eq!(time.clone().now(), time.now());
    }

    #[test]
    fn trusted_time_is_the_latest_source() {
        let s = Duration::from_secs;
        // An RTC reset to 1970 cannot pull the time back.
        assert_eq!(trusted_now(s(500), Some(s(900)), s(0)), s(900));
        assert_eq!(trusted_now(s(500), None, s(0)), s(500));
        // A clock ahead only makes the meter stricter.
        assert_eq!(trusted_now(s(500), Some(s(900)), s(2_000)), s(2_000));
    }

    #[test]
    fn split_mix_is_the_reference_sequence() {
        // SplitMix64 from seed 0 (Steele, Lea and Flood 2014; the values of
        // the reference C implementation).
        let mut g = SplitMix::new(0);
        assert_eq!(g.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(g.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut system = SystemEntropy;
        assert_ne!(system.next_u64(), system.next_u64());
    }
}
