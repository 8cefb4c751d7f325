//! ROUTE.csv: the van's drive as timed legs for the contact search.
//!
//! Columns `lat,lon` and optionally `time` (RFC 3339). A waypoint with a
//! time is reached then; one without is reached at the previous one's time
//! plus the straight-line distance at `--speed-kmh`; a first waypoint
//! without a time is left at the campaign's start. Times never go back, a
//! van does not jump (two places at one time), and it drives no faster
//! than [`MAX_SPEED_KMH`] between timed waypoints. Equal positions at
//! later times are a parked van (its access point stays on).

use std::path::Path;

use otavan_planning::geometry::Point;
use otavan_planning::leg::Leg;
use otavan_planning::time::{Time, from_secs_f64};
use time::OffsetDateTime;

use crate::clock::{self, Clock};
use crate::geo::Projection;
use crate::inventory::coordinate;
use crate::table::{InputError, Problems, Table};

/// The fastest a van is believed to drive between timed waypoints, km/h:
/// faster usually means a wrong time or a wrong coordinate.
pub const MAX_SPEED_KMH: f64 = 130.0;

/// One row of ROUTE.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Waypoint {
    /// Its line in ROUTE.csv.
    pub line: u64,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// When the van is there, if the file says.
    pub time: Option<OffsetDateTime>,
}

/// Reads ROUTE.csv (at least two waypoints).
///
/// # Errors
///
/// [`InputError`] listing every bad row.
pub fn read(path: &Path) -> Result<Vec<Waypoint>, InputError> {
    let table = Table::read(path, &["lat", "lon"], &["time"])?;
    let mut problems = Problems::default();
    let mut waypoints = Vec::with_capacity(table.len());
    for (line, field) in table.rows() {
        let lat = coordinate(field, "lat", 90.0);
        let lon = coordinate(field, "lon", 180.0);
        let time = field
            .get("time")
            .map(|text| clock::parse(text).map_err(|e| format!("time: {e}")))
            .transpose();
        match (lat, lon, time) {
            (Ok(lat), Ok(lon), Ok(time)) => waypoints.push(Waypoint {
                line,
                lat,
                lon,
                time,
            }),
            (lat, lon, time) => {
                let wrong: Vec<String> = [lat.err(), lon.err(), time.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                problems.add(line, wrong.join("; "));
            }
        }
    }
    if problems.is_empty() && waypoints.len() < 2 {
        problems.add(1, "a route needs at least two waypoints");
    }
    problems.check(path)?;
    Ok(waypoints)
}

/// The drive over `waypoints` as legs in the campaign's virtual time (one
/// van, one pass), each at most [`MAX_LEG_M`](otavan_planning::leg::MAX_LEG_M) long.
///
/// # Errors
///
/// [`Problems`] by line: a waypoint before the start, a time earlier than
/// the previous waypoint's, a jump, a speed above [`MAX_SPEED_KMH`].
pub fn legs(
    waypoints: &[Waypoint],
    projection: &Projection,
    speed_kmh: f64,
    clock: &Clock,
) -> Result<Vec<Leg>, Problems> {
    let speed = speed_kmh / 3.6;
    let mut problems = Problems::default();
    let mut legs = Vec::new();
    let mut previous: Option<(Point, Time)> = None;
    for w in waypoints {
        let here = projection.point(w.lat, w.lon);
        let at = match (w.time, previous) {
            (Some(t), _) => match clock.time_of(t) {
                Some(at) => at,
                None => {
                    problems.add(
                        w.line,
                        format!("time {} is before --start", clock::format(t)),
                    );
                    continue;
                }
            },
            (None, Some((from, t0))) => t0 + from_secs_f64(from.distance(here) / speed),
            (None, None) => 0,
        };
        if let Some((from, t0)) = previous {
            let metres = from.distance(here);
            // Infinite or NaN when no time passes: the branches before catch it.
            let kmh = metres / (at.saturating_sub(t0) as f64 / 1e6) * 3.6;
            if at < t0 {
                problems.add(w.line, "time is earlier than the previous waypoint's");
            } else if at == t0 && metres > 0.0 {
                problems.add(
                    w.line,
                    format!("the van cannot be {metres:.0} m away at the same time"),
                );
            } else if kmh > MAX_SPEED_KMH {
                problems.add(
                    w.line,
                    format!(
                        "reaching it takes {kmh:.0} km/h (more than {MAX_SPEED_KMH}): check the time and the position"
                    ),
                );
            } else {
                Leg::split(from, here, t0, at, &mut legs);
            }
        }
        previous = Some((here, at));
    }
    if problems.is_empty() {
        Ok(legs)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otavan_planning::leg::MAX_LEG_M;
    use otavan_planning::time::secs;

    fn clock() -> Clock {
        Clock::new(clock::parse("2025-06-02T08:00:00Z").unwrap())
    }

    fn waypoint(line: u64, lat: f64, lon: f64, time: Option<&str>) -> Waypoint {
        Waypoint {
            line,
            lat,
            lon,
            time: time.map(|t| clock::parse(t).unwrap()),
        }
    }

    #[test]
    fn untimed_waypoints_follow_the_speed() {
        let p = Projection::new(52.52, 13.40);
        // 0.009 degrees north is about 1000.8 m: 100 s at 36 km/h.
        let route = [
            waypoint(2, 52.52, 13.40, Some("2025-06-02T09:00:00Z")),
            waypoint(3, 52.529, 13.40, None),
            waypoint(4, 52.529, 13.40, Some("2025-06-02T09:10:00Z")),
        ];
        let legs = legs(&route, &p, 36.0, &clock()).unwrap();
        // 1000.8 m in 5 legs of at most 250 m, then one parked leg.
        assert_eq!(legs.len(), 6);
        assert_eq!(legs[0].t0, secs(3600));
        let arrive = legs[4].t1;
        assert!(
            (arrive as f64 / 1e6 - 3600.0 - 100.08).abs() < 0.01,
            "{arrive}"
        );
        assert!(legs[..5].iter().all(|l| l.from.distance(l.to) <= MAX_LEG_M));
        assert_eq!((legs[5].from, legs[5].t1), (legs[5].to, secs(4200)));
        for w in legs.windows(2) {
            assert_eq!((w[0].t1, w[0].to), (w[1].t0, w[1].from));
        }
    }

    #[test]
    fn impossible_drives_are_reported_by_line() {
        let p = Projection::new(52.52, 13.40);
        let route = [
            waypoint(2, 52.52, 13.40, Some("2025-06-02T07:00:00Z")),
            waypoint(3, 52.52, 13.40, Some("2025-06-02T09:00:00Z")),
            waypoint(4, 52.53, 13.40, Some("2025-06-02T08:59:00Z")),
            waypoint(5, 52.54, 13.40, Some("2025-06-02T08:59:00Z")),
            waypoint(6, 52.64, 13.40, Some("2025-06-02T09:00:00Z")),
        ];
        let problems = legs(&route, &p, 20.0, &clock()).unwrap_err().to_string();
        assert!(
            problems.contains("line 2: time 2025-06-02T07:00:00Z is before --start"),
            "{problems}"
        );
        assert!(problems.contains("line 4: time is earlier"), "{problems}");
        assert!(
            problems.contains("line 5: the van cannot be 1112 m away at the same time"),
            "{problems}"
        );
        assert!(
            problems.contains("line 6: reaching it takes 667 km/h"),
            "{problems}"
        );
    }

    #[test]
    fn a_route_needs_two_valid_waypoints() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("ROUTE.csv");
        std::fs::write(&path, "lat,lon,time\n52.52,13.40,\n").unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("at least two waypoints")
        );
        std::fs::write(&path, "lat,lon,time\n52.52,13.40,\n52.53,xx,soon\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 3: lon \"xx\" is not a number; time: \"soon\""),
            "{error}"
        );
        std::fs::write(&path, "lat,lon\n52.52,13.40\n52.53,13.41\n").unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
    }
}
