//! METERS.csv: the meter inventory a campaign is planned from.
//!
//! Columns `dev_eui,lat,lon,install,uplink_interval_s` and optionally
//! `version` (what the meter runs; meters already at the campaign's
//! target are not woken) and `last_uplink` (RFC 3339: when the network
//! server last heard the meter, which gives the phase of its uplinks) and
//! `gen_app_key` (32 hex digits: the meter's GenAppKey, from which its
//! multicast root key comes; only `campaign plan --wake multicast` needs
//! it, and a file with it is as secret as the network server's keys).
//! Every row is checked and every bad one reported with its line number.

use std::collections::HashMap;
use std::path::Path;

use crate::plan::WifiRanges;
use otavan_protocol::Version;
use otavan_protocol::lora::multicast::McRootKey;
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;
use crate::table::{Field, InputError, Problems, Table};

/// Shortest uplink interval accepted, seconds (as the rehearsal's).
pub const MIN_UPLINK_INTERVAL_S: u64 = 60;
/// Longest uplink interval accepted, seconds (a week).
pub const MAX_UPLINK_INTERVAL_S: u64 = 7 * 86_400;

/// One meter of the inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    /// The line of METERS.csv it came from.
    pub line: u64,
    /// Its DevEUI.
    pub dev_eui: DevEui,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Install kind, one of [`WifiRanges`].
    pub install: String,
    /// Seconds between its uplinks.
    pub uplink_interval_s: u64,
    /// The version it runs, if known.
    pub version: Option<Version>,
    /// When it was last heard, if known.
    pub last_uplink: Option<OffsetDateTime>,
    /// Its multicast root key (from `gen_app_key`), if given.
    pub root_key: Option<McRootKey>,
}

/// The columns of METERS.csv.
const REQUIRED: [&str; 5] = ["dev_eui", "lat", "lon", "install", "uplink_interval_s"];
const OPTIONAL: [&str; 3] = ["version", "last_uplink", "gen_app_key"];

/// Reads and checks METERS.csv.
///
/// # Errors
///
/// [`InputError`] listing every bad row: malformed or duplicate DevEUI,
/// coordinates out of range, an install kind not in `ranges`, an uplink
/// interval outside 60 s to a week, a bad version or time. An inventory
/// without meters is an error too.
pub fn read(path: &Path, ranges: &WifiRanges) -> Result<Vec<Meter>, InputError> {
    let table = Table::read(path, &REQUIRED, &OPTIONAL)?;
    let mut problems = Problems::default();
    let mut meters = Vec::with_capacity(table.len());
    let mut seen: HashMap<DevEui, u64> = HashMap::new();
    for (line, field) in table.rows() {
        match meter(line, field, ranges) {
            Ok(meter) => match seen.get(&meter.dev_eui) {
                Some(first) => problems.add(
                    line,
                    format!("DevEUI {} is already on line {first}", meter.dev_eui),
                ),
                None => {
                    seen.insert(meter.dev_eui, line);
                    meters.push(meter);
                }
            },
            Err(message) => problems.add(line, message),
        }
    }
    if table.is_empty() {
        problems.add(1, "no meters");
    }
    problems.check(path)?;
    Ok(meters)
}

/// One row, or what is wrong with it (every problem, separated by `; `).
fn meter(line: u64, field: Field<'_>, ranges: &WifiRanges) -> Result<Meter, String> {
    let mut wrong = Vec::new();
    let dev_eui = field
        .require("dev_eui")
        .and_then(str::parse)
        .map_err(|e| wrong.push(e))
        .ok();
    let lat = coordinate(field, "lat", 90.0)
        .map_err(|e| wrong.push(e))
        .ok();
    let lon = coordinate(field, "lon", 180.0)
        .map_err(|e| wrong.push(e))
        .ok();
    let install = field
        .require("install")
        .and_then(|name| match ranges.get(name) {
            Some(_) => Ok(name.to_owned()),
            None => Err(format!(
                "install {name:?} is not one of {} (--wifi-range KIND=METRES adds one)",
                ranges.names().join(", ")
            )),
        })
        .map_err(|e| wrong.push(e))
        .ok();
    let interval = field
        .require("uplink_interval_s")
        .and_then(|text| match text.parse::<u64>() {
            Ok(s) if (MIN_UPLINK_INTERVAL_S..=MAX_UPLINK_INTERVAL_S).contains(&s) => Ok(s),
            _ => Err(format!(
                "uplink_interval_s {text:?} is not a whole number of seconds from \
                 {MIN_UPLINK_INTERVAL_S} to {MAX_UPLINK_INTERVAL_S}"
            )),
        })
        .map_err(|e| wrong.push(e))
        .ok();
    let version = field
        .get("version")
        .map(|text| Version::parse(text).map_err(|e| format!("version {text:?}: {e}")))
        .transpose()
        .map_err(|e| wrong.push(e))
        .ok()
        .flatten();
    let last_uplink = field
        .get("last_uplink")
        .map(|text| clock::parse(text).map_err(|e| format!("last_uplink: {e}")))
        .transpose()
        .map_err(|e| wrong.push(e))
        .ok()
        .flatten();
    let root_key = field
        .get("gen_app_key")
        .map(|text| {
            let mut key = [0; 16];
            hex::decode_to_slice(text, &mut key)
                .map(|()| McRootKey::from_gen_app_key(&key))
                .map_err(|_| "gen_app_key is not 32 hex digits".to_owned())
        })
        .transpose()
        .map_err(|e| wrong.push(e))
        .ok()
        .flatten();
    match (dev_eui, lat, lon, install, interval) {
        (Some(dev_eui), Some(lat), Some(lon), Some(install), Some(uplink_interval_s))
            if wrong.is_empty() =>
        {
            Ok(Meter {
                line,
                dev_eui,
                lat,
                lon,
                install,
                uplink_interval_s,
                version,
                last_uplink,
                root_key,
            })
        }
        _ => Err(wrong.join("; ")),
    }
}

/// A latitude or longitude within `±limit` degrees.
pub(crate) fn coordinate(field: Field<'_>, name: &str, limit: f64) -> Result<f64, String> {
    let value = field.number(name)?;
    if value.abs() <= limit {
        Ok(value)
    } else {
        Err(format!("{name} {value} is outside -{limit}..{limit}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<Vec<Meter>, InputError> {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("METERS.csv");
        std::fs::write(&path, text).unwrap();
        read(&path, &WifiRanges::default())
    }

    #[test]
    fn a_good_inventory() {
        let meters = read_text(
            "dev_eui,lat,lon,install,uplink_interval_s,version,last_uplink\n\
             70b3d57ed0000001,52.52,13.40,indoor,3600,1.0.0,2025-06-02T07:12:00Z\n\
             70B3D57ED0000002,52.521,13.401,basement,86400,,\n",
        )
        .unwrap();
        assert_eq!(meters.len(), 2);
        assert_eq!(meters[0].dev_eui.to_string(), "70B3D57ED0000001");
        assert_eq!(meters[0].version.as_ref().unwrap().as_str(), "1.0.0");
        assert!(meters[0].last_uplink.is_some());
        assert_eq!((meters[1].line, meters[1].uplink_interval_s), (3, 86_400));
        assert!(meters[1].version.is_none() && meters[1].last_uplink.is_none());
        assert!(meters.iter().all(|m| m.root_key.is_none()));
    }

    #[test]
    fn a_gen_app_key_gives_the_root_key_and_a_bad_one_is_reported() {
        let key = "000102030405060708090a0b0c0d0e0f";
        let meters = read_text(&format!(
            "dev_eui,lat,lon,install,uplink_interval_s,gen_app_key\n\
             70b3d57ed0000001,52.52,13.40,indoor,3600,{key}\n\
             70b3d57ed0000002,52.52,13.40,indoor,3600,\n"
        ))
        .unwrap();
        let gen_app_key: [u8; 16] = hex::decode(key).unwrap().try_into().unwrap();
        assert_eq!(
            meters[0].root_key,
            Some(McRootKey::from_gen_app_key(&gen_app_key))
        );
        assert_eq!(meters[1].root_key, None);
        let error = read_text(
            "dev_eui,lat,lon,install,uplink_interval_s,gen_app_key\n\
             70b3d57ed0000001,52.52,13.40,indoor,3600,00ff\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("line 2: gen_app_key is not 32 hex digits"),
            "{error}"
        );
        // The key is never in an error or a debug print.
        assert!(!format!("{:?}", meters[0]).contains("0001020304"));
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let error = read_text(
            "dev_eui,lat,lon,install,uplink_interval_s\n\
             70b3d57ed0000001,52.52,13.40,indoor,3600\n\
             nope,95,13.40,attic,10\n\
             70b3d57ed0000001,52.52,13.40,indoor,3600\n\
             70b3d57ed0000003,52.52,east,indoor,1.5h\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("3 problems"), "{error}");
        assert!(
            error.contains("line 3: \"nope\" is not a DevEUI"),
            "{error}"
        );
        assert!(error.contains("lat 95 is outside"), "{error}");
        assert!(
            error.contains("install \"attic\" is not one of basement, indoor, outdoor"),
            "{error}"
        );
        assert!(error.contains("uplink_interval_s \"10\""), "{error}");
        assert!(
            error.contains("line 4: DevEUI 70B3D57ED0000001 is already on line 2"),
            "{error}"
        );
        assert!(
            error.contains("line 5: lon \"east\" is not a number"),
            "{error}"
        );
        assert!(
            read_text("dev_eui,lat,lon,install,uplink_interval_s\n")
                .unwrap_err()
                .to_string()
                .contains("no meters")
        );
    }

    #[test]
    fn ranges_default_to_the_low_end_of_the_scenario_and_can_be_overridden() {
        let mut ranges = WifiRanges::default();
        assert_eq!(ranges.get("basement"), Some(10.0));
        assert_eq!(ranges.get("outdoor"), Some(80.0));
        ranges.set("attic", 25.0).unwrap();
        assert_eq!(ranges.get("attic"), Some(25.0));
        assert!(ranges.set("attic", -1.0).is_err());
    }
}
