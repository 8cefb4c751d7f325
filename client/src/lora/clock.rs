//! The trigger's notion of time: wall-clock time advanced by tokio's
//! monotonic clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Time as a [`Duration`] since the Unix epoch, read once from a wall
/// clock and then advanced by tokio's monotonic [`Instant`].
///
/// Scheduled sessions are stored in this time, so they mean the same after
/// a restart (the meter's real-time clock gives the new anchor). Everything
/// in between follows tokio time, so tests with paused time are exact; a
/// test that rebuilds a trigger passes it the same clock.
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
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        MeterClock::starting_at(wall)
    }

    /// A clock that reads `wall` now (in tokio time) and advances with
    /// tokio time from there.
    pub fn starting_at(wall: Duration) -> MeterClock {
        MeterClock {
            wall,
            anchor: Instant::now(),
        }
    }

    /// The time now.
    pub fn now(&self) -> Duration {
        self.wall + self.anchor.elapsed()
    }

    /// The tokio instant at time `at` (the anchor for times before it).
    pub fn instant(&self, at: Duration) -> Instant {
        self.anchor + at.saturating_sub(self.wall)
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
}
