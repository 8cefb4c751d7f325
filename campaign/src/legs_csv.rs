//! LEGS.csv (`campaign plan --legs-out`): the van's paced drive, one row a
//! route leg: where it starts and ends, its speed, its stop and when the
//! van starts it.

use std::path::Path;

use time::OffsetDateTime;

use crate::clock;

/// LEGS.csv's columns.
pub const COLUMNS: [&str; 10] = [
    "leg",
    "from_lat",
    "from_lon",
    "to_lat",
    "to_lon",
    "speed_kmh",
    "stop_lat",
    "stop_lon",
    "stop_s",
    "starts_at",
];

/// One leg of the drive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegRow {
    /// Where it starts, degrees.
    pub from: (f64, f64),
    /// Where it ends, degrees.
    pub to: (f64, f64),
    /// Its speed, km/h.
    pub speed_kmh: f64,
    /// Where the van stops on it (degrees) and for how long (seconds).
    pub stop: Option<((f64, f64), f64)>,
    /// When the van starts it.
    pub starts_at: OffsetDateTime,
}

/// LEGS.csv's text for `rows`, numbered from 1.
pub fn to_csv(rows: &[LegRow]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let degrees = |x: f64| format!("{x:.6}");
    // Writing into memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for (i, row) in rows.iter().enumerate() {
        let (stop_lat, stop_lon, stop_s) = match row.stop {
            Some(((lat, lon), s)) => (degrees(lat), degrees(lon), format!("{s:.1}")),
            None => (String::new(), String::new(), String::new()),
        };
        let _ = writer.write_record([
            (i + 1).to_string(),
            degrees(row.from.0),
            degrees(row.from.1),
            degrees(row.to.0),
            degrees(row.to.1),
            format!("{:.2}", row.speed_kmh),
            stop_lat,
            stop_lon,
            stop_s,
            clock::format(row.starts_at),
        ]);
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes LEGS.csv atomically ([`otavan_durable::write_atomic`]).
///
/// # Errors
///
/// The I/O error.
pub fn write(path: &Path, rows: &[LegRow]) -> std::io::Result<()> {
    otavan_durable::write_atomic(path, &to_csv(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_a_leg_with_its_stop() {
        let at = clock::parse("2025-06-03T09:00:00Z").unwrap();
        let rows = [
            LegRow {
                from: (52.37, 9.73),
                to: (52.37, 9.7336),
                speed_kmh: 20.0,
                stop: None,
                starts_at: at,
            },
            LegRow {
                from: (52.37, 9.7336),
                to: (52.37, 9.7372),
                speed_kmh: 7.5,
                stop: Some(((52.37, 9.735), 12.0)),
                starts_at: at + time::Duration::seconds(45),
            },
        ];
        let text = String::from_utf8(to_csv(&rows)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "1,52.370000,9.730000,52.370000,9.733600,20.00,,,,2025-06-03T09:00:00Z"
        );
        assert_eq!(
            lines[2],
            "2,52.370000,9.733600,52.370000,9.737200,7.50,52.370000,9.735000,12.0,2025-06-03T09:00:45Z"
        );
    }
}
