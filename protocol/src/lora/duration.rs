//! The WAKE's two durations, each a number in one of two units chosen by
//! the field's top bit.
//!
//! # Rounding
//!
//! Both fields hold whole seconds. A duration the field holds exactly is
//! kept exactly, in the finest unit that holds it. Any other duration
//! becomes the nearest value the field holds (halfway between two, the
//! larger), so the error is at most half of the unit used:
//!
//! - [`Delay`]: up to 32767 s, whole seconds (within 0.5 s); above, whole
//!   minutes or 32767 s, whichever is nearer (within 30 s).
//! - [`Window`]: up to 1270 s, multiples of 10 s (within 5 s); above, whole
//!   minutes or 1270 s, whichever is nearer (within 30 s).
//!
//! A duration above the field's maximum (32767 min for the delay, 127 min
//! for the window) is an error, [`CodecError::OutOfRange`].

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::CodecError;

/// How a field's bits map to seconds.
struct Scale {
    /// `"delay"` or `"window"`.
    field: &'static str,
    /// Seconds per fine unit.
    fine_step: u32,
    /// The top bit: set for minutes.
    minutes_flag: u16,
    /// Largest count in either unit (all bits below the flag).
    max_count: u32,
}

impl Scale {
    /// The longest duration the field holds, in seconds.
    const fn max_secs(&self) -> u32 {
        self.max_count * 60
    }

    /// Whether the fine unit holds `secs` exactly.
    const fn fine_holds(&self, secs: u32) -> bool {
        secs.is_multiple_of(self.fine_step) && secs / self.fine_step <= self.max_count
    }

    /// The representable number of seconds nearest to `d` (ties: the larger).
    fn nearest(&self, d: Duration) -> Result<u32, CodecError> {
        let max = Duration::from_secs(self.max_secs().into());
        if d > max {
            return Err(CodecError::OutOfRange {
                field: self.field,
                requested: d,
                max,
            });
        }
        let nanos = d.as_nanos();
        let fine = round_to(nanos, self.fine_step).min(self.max_count * self.fine_step);
        let coarse = round_to(nanos, 60);
        let error = |secs: u32| (u128::from(secs) * NANOS_PER_SEC).abs_diff(nanos);
        Ok(match error(fine).cmp(&error(coarse)) {
            std::cmp::Ordering::Less => fine,
            std::cmp::Ordering::Greater => coarse,
            std::cmp::Ordering::Equal => fine.max(coarse),
        })
    }

    /// The canonical bits for representable `secs`.
    fn write_bits(&self, secs: u32) -> u16 {
        // Both branches fit: counts are at most `max_count`, below the flag.
        if self.fine_holds(secs) {
            (secs / self.fine_step) as u16
        } else {
            self.minutes_flag | (secs / 60) as u16
        }
    }

    /// Seconds from the field's bits, accepting only the canonical unit.
    fn read_bits(&self, bits: u16) -> Result<u32, CodecError> {
        let count = u32::from(bits & !self.minutes_flag);
        if bits & self.minutes_flag == 0 {
            return Ok(count * self.fine_step);
        }
        let secs = count * 60;
        if self.fine_holds(secs) {
            return Err(CodecError::NonCanonical { field: self.field });
        }
        Ok(secs)
    }
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// `nanos` rounded to the nearest multiple of `step` seconds, halves up, in
/// seconds (the caller has checked that `nanos` is at most the field's
/// maximum, so the result fits).
fn round_to(nanos: u128, step: u32) -> u32 {
    let step = u128::from(step) * NANOS_PER_SEC;
    let seconds = (nanos + step / 2) / step * step / NANOS_PER_SEC;
    u32::try_from(seconds).unwrap_or(u32::MAX)
}

const DELAY: Scale = Scale {
    field: "delay",
    fine_step: 1,
    minutes_flag: 0x8000,
    max_count: 0x7fff,
};

const WINDOW: Scale = Scale {
    field: "window",
    fine_step: 10,
    minutes_flag: 0x80,
    max_count: 0x7f,
};

macro_rules! duration_field {
    ($(#[$doc:meta])* $name:ident, $scale:ident, $wire:ty) => {
        $(#[$doc])*
        ///
        /// Always holds a representable value, so equal durations are equal
        /// values with the same encoding. Serializes as its number of seconds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name {
            secs: u32,
        }

        impl $name {
            /// No time at all.
            pub const ZERO: $name = $name { secs: 0 };
            /// The longest duration the field holds.
            pub const MAX: $name = $name { secs: $scale.max_secs() };

            /// The representable duration nearest to `d` (see the module's
            /// rounding rules).
            ///
            /// # Errors
            ///
            /// [`CodecError::OutOfRange`] when `d` is above [`Self::MAX`].
            pub fn from_duration(d: Duration) -> Result<Self, CodecError> {
                $scale.nearest(d).map(|secs| $name { secs })
            }

            /// The representable duration nearest to `secs` seconds.
            ///
            /// # Errors
            ///
            /// [`CodecError::OutOfRange`] when `secs` is above [`Self::MAX`].
            pub fn from_secs(secs: u64) -> Result<Self, CodecError> {
                Self::from_duration(Duration::from_secs(secs))
            }

            /// Whole seconds.
            pub fn secs(self) -> u32 {
                self.secs
            }

            /// As a [`Duration`].
            pub fn as_duration(self) -> Duration {
                Duration::from_secs(self.secs.into())
            }

            /// The field's canonical bits.
            pub fn to_wire(self) -> $wire {
                // The scale's counts and flag fit the wire type.
                $scale.write_bits(self.secs) as $wire
            }

            /// Reads the field's bits.
            ///
            /// # Errors
            ///
            /// [`CodecError::NonCanonical`] when the bits use minutes for a
            /// value the finer unit holds.
            pub fn from_wire(bits: $wire) -> Result<Self, CodecError> {
                $scale.read_bits(bits.into()).map(|secs| $name { secs })
            }
        }

        impl TryFrom<Duration> for $name {
            type Error = CodecError;

            fn try_from(d: Duration) -> Result<Self, CodecError> {
                Self::from_duration(d)
            }
        }

        impl From<$name> for Duration {
            fn from(value: $name) -> Duration {
                value.as_duration()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} s", self.secs)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u32(self.secs)
            }
        }
    };
}

duration_field!(
    /// When a WAKE's WiFi window opens, after the meter receives it: 0 to
    /// 32767 s in seconds, up to 32767 min in minutes.
    Delay,
    DELAY,
    u16
);

duration_field!(
    /// How long a WAKE's WiFi window stays open: 0 to 1270 s in 10 s units,
    /// up to 127 min in minutes.
    Window,
    WINDOW,
    u8
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_prefers_the_closer_unit() {
        // 1275 s: 1270 (10 s units) is nearer than 1260 or 1320 (minutes).
        assert_eq!(Window::from_secs(1275).unwrap().secs(), 1270);
        // 1295 s: 1270 and 1320 are both 25 s away; the larger wins.
        assert_eq!(Window::from_secs(1295).unwrap().secs(), 1320);
        // 32780 s: 32767 s is nearer than 547 min.
        assert_eq!(Delay::from_secs(32780).unwrap().secs(), 32767);
        assert_eq!(Delay::from_secs(32800).unwrap().secs(), 32820);
    }

    #[test]
    fn sub_second_parts_round_to_the_nearest_second() {
        let d = |ms| {
            Delay::from_duration(Duration::from_millis(ms))
                .unwrap()
                .secs()
        };
        assert_eq!(d(1499), 1);
        assert_eq!(d(1500), 2);
    }
}
