//! gpsd's JSON lines as the van needs them: a TPV (time-position-velocity)
//! report with a 2D or 3D fix becomes a [`VanFix`]; every other class
//! (VERSION, DEVICES, WATCH, SKY, ...) and a TPV without a fix is skipped.

use otavan_store::VanFix;
use serde::Deserialize;

/// The command that asks gpsd to stream JSON reports to this connection.
pub const WATCH: &[u8] = b"?WATCH={\"enable\":true,\"json\":true}\n";

/// The fields of a gpsd report otavan reads (gpsd sends many more).
#[derive(Debug, Deserialize)]
struct Line {
    class: String,
    /// 0 or 1: no fix, 2: 2D, 3: 3D.
    #[serde(default)]
    mode: u8,
    time: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
}

/// Why a line from gpsd is not read.
#[derive(Debug, thiserror::Error)]
pub enum BadLine {
    /// Not a JSON object with a `class`.
    #[error("not a gpsd report: {0}")]
    Json(#[from] serde_json::Error),
    /// A TPV with a fix whose time is not RFC 3339.
    #[error("TPV time {0:?} is not RFC 3339")]
    Time(String),
}

/// The fix a gpsd line reports, if it is a TPV with a position and a time.
pub fn parse(line: &str) -> Result<Option<VanFix>, BadLine> {
    let line: Line = serde_json::from_str(line)?;
    if line.class != "TPV" || line.mode < 2 {
        return Ok(None);
    }
    let (Some(time), Some(lat), Some(lon)) = (line.time, line.lat, line.lon) else {
        return Ok(None);
    };
    let time = humantime::parse_rfc3339_weak(&time).map_err(|_| BadLine::Time(time.clone()))?;
    Ok(Some(VanFix { lat, lon, time }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_tpv_with_a_fix_is_read_and_other_lines_are_skipped() {
        // As gpsd 3.22 sends them (fields trimmed).
        let tpv = r#"{"class":"TPV","device":"/dev/pts/3","mode":3,"time":"2025-06-02T10:00:05.000Z","ept":0.005,"lat":52.370100000,"lon":9.734300000,"altHAE":95.0,"speed":8.3}"#;
        assert_eq!(
            parse(tpv).unwrap(),
            Some(VanFix {
                lat: 52.3701,
                lon: 9.7343,
                time: UNIX_EPOCH + Duration::from_secs(1_748_858_405),
            })
        );
        for skipped in [
            r#"{"class":"VERSION","release":"3.22","rev":"3.22","proto_major":3,"proto_minor":14}"#,
            r#"{"class":"TPV","device":"/dev/pts/3","mode":1}"#,
            r#"{"class":"TPV","mode":2,"lat":52.0,"lon":9.0}"#,
            r#"{"class":"SKY","satellites":[]}"#,
        ] {
            assert_eq!(parse(skipped).unwrap(), None, "{skipped}");
        }
        assert!(matches!(parse("garbage"), Err(BadLine::Json(_))));
        let bad_time = r#"{"class":"TPV","mode":3,"time":"yesterday","lat":1.0,"lon":2.0}"#;
        assert!(matches!(parse(bad_time), Err(BadLine::Time(t)) if t == "yesterday"));
    }
}
