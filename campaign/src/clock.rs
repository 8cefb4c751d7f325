//! Wall-clock times: RFC 3339 in and out, and the planner's virtual time.
//!
//! The simulator's planner counts microseconds from a t = 0
//! ([`otavan_planning::time::Time`]); a campaign's t = 0 is its `--start`, so
//! nothing is planned before it. Input times may carry any UTC offset;
//! output times are always UTC (`2025-06-02T08:00:00Z`).

use otavan_planning::time::Time;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Parses an RFC 3339 time (`2025-06-02T08:00:00Z`, `...+02:00`,
/// fractional seconds allowed).
///
/// # Errors
///
/// A message saying what was expected.
pub fn parse(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| t.to_offset(UtcOffset::UTC))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time like 2025-06-02T08:00:00Z ({e})"))
}

/// `t` as RFC 3339 in UTC, with fractional seconds only when it has them.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The campaign's clock: virtual time 0 is `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    start: OffsetDateTime,
}

impl Clock {
    /// A clock whose t = 0 is `start`.
    pub fn new(start: OffsetDateTime) -> Clock {
        Clock { start }
    }

    /// The wall time at t = 0.
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// The virtual time of `t`, `None` before the start.
    pub fn time_of(&self, t: OffsetDateTime) -> Option<Time> {
        let micros = (t - self.start).whole_microseconds();
        u64::try_from(micros).ok()
    }

    /// The wall time of virtual time `t`.
    pub fn at(&self, t: Time) -> OffsetDateTime {
        self.start + Duration::microseconds(i64::try_from(t).unwrap_or(i64::MAX))
    }

    /// Microseconds from t = 0 to `t`, negative before the start.
    pub fn offset_of(&self, t: OffsetDateTime) -> i128 {
        (t - self.start).whole_microseconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_converted_to_utc() {
        let t = parse("2025-06-02T10:00:00+02:00").unwrap();
        assert_eq!(format(t), "2025-06-02T08:00:00Z");
        assert_eq!(
            format(parse("2025-06-02T08:00:00.250Z").unwrap()),
            "2025-06-02T08:00:00.25Z"
        );
        assert!(parse("2025-06-02 08:00").unwrap_err().contains("RFC 3339"));
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn virtual_time_counts_from_the_start() {
        let clock = Clock::new(parse("2025-06-02T08:00:00Z").unwrap());
        let later = parse("2025-06-02T09:00:00.5Z").unwrap();
        assert_eq!(clock.time_of(later), Some(3_600_500_000));
        assert_eq!(clock.at(3_600_500_000), later);
        assert_eq!(clock.time_of(parse("2025-06-02T07:59:59Z").unwrap()), None);
        assert_eq!(
            clock.offset_of(parse("2025-06-02T07:59:59Z").unwrap()),
            -1_000_000
        );
    }
}
