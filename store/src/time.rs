//! When a van received a report, as both stores keep it.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A report's time, to the millisecond.
///
/// Stores keep it as RFC 3339 text in UTC with milliseconds
/// (`2026-01-01T08:00:00.000Z`, its [`Display`](fmt::Display)), so text
/// order is time order and a row's time reads back as the very text it was
/// stored as: parsing accepts only that form, since report keys and
/// `otavan reports sync` hash and copy the stored text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportTime(SystemTime);

impl ReportTime {
    /// The time as a [`SystemTime`].
    pub fn system_time(self) -> SystemTime {
        self.0
    }
}

impl From<SystemTime> for ReportTime {
    /// `time` truncated to the millisecond (times before 1970 are 1970).
    fn from(time: SystemTime) -> ReportTime {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let millis = since_epoch.as_secs() * 1000 + u64::from(since_epoch.subsec_millis());
        ReportTime(UNIX_EPOCH + Duration::from_millis(millis))
    }
}

impl fmt::Display for ReportTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_rfc3339_millis(self.0).fmt(f)
    }
}

/// Text that is not a time as the stores write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 UTC time with milliseconds")]
pub struct BadTime(pub String);

impl FromStr for ReportTime {
    type Err = BadTime;

    fn from_str(text: &str) -> Result<ReportTime, BadTime> {
        let bad = || BadTime(text.to_owned());
        let time = ReportTime(humantime::parse_rfc3339(text).map_err(|_| bad())?);
        // Only the canonical form: it must read back as the same text.
        match time.to_string() == text {
            true => Ok(time),
            false => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_the_text_they_were_stored_as() {
        let time = UNIX_EPOCH + Duration::new(1_767_254_400, 999_999_999);
        let stored = humantime::format_rfc3339_millis(time).to_string();
        assert_eq!(stored, "2026-01-01T08:00:00.999Z");
        let report = ReportTime::from(time);
        assert_eq!(report.to_string(), stored);
        assert_eq!(stored.parse(), Ok(report));
        assert_eq!(
            report.system_time(),
            UNIX_EPOCH + Duration::from_millis(1_767_254_400_999)
        );
        for other in [
            "t",
            "",
            "2026-01-01T08:00:00Z",
            "2026-01-01T08:00:00.5Z",
            "2026-01-01T08:00:00.000000Z",
            "2026-01-01 08:00:00.000Z",
            "2026-01-01T08:00:00.000+00:00",
        ] {
            assert_eq!(
                other.parse::<ReportTime>(),
                Err(BadTime(other.to_owned())),
                "{other}"
            );
        }
    }
}
