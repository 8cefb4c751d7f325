//! Virtual time: microseconds since the campaign's t = 0 (midnight before
//! its first day).

/// A point in virtual time, or a duration, in microseconds.
pub type Time = u64;

/// `s` whole seconds.
pub const fn secs(s: u64) -> Time {
    s * 1_000_000
}

/// Seconds (fractional) to virtual time, rounded to the microsecond
/// (negative values give zero).
pub fn from_secs_f64(s: f64) -> Time {
    (s * 1e6).round().max(0.0) as Time
}

/// Virtual time as fractional seconds.
pub fn as_secs_f64(t: Time) -> f64 {
    t as f64 / 1e6
}

/// A day.
pub const DAY: Time = secs(86_400);
