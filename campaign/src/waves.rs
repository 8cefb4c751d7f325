//! Waves: a plan's meters split along the route into a canary and the
//! groups that widen it (`campaign plan --waves canary=1%,25%,100%`).
//!
//! A spec lists each wave's cumulative share of the planned meters,
//! optionally named (`NAME=P%`; unnamed waves are `wave2`, `wave3`...).
//! The shares must increase and the last must be 100 %. Meters are taken
//! in route order (by expected contact), so the canary is the first
//! stretch of the drive: wave k holds the meters up to the ceiling of its
//! share of them.

use std::path::Path;

use crate::deveui::DevEui;
use crate::plan_csv::PlanRow;

/// One wave of a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveSpec {
    /// Its name (no comma, no `=`).
    pub name: String,
    /// The share of the plan's meters in it and every earlier wave, per
    /// cent.
    pub cumulative_percent: f64,
}

/// Parses a `--waves` spec: `canary=1%,25%,100%`.
///
/// # Errors
///
/// What is wrong with it: a share that is not a number from 0 to 100, not
/// above the one before, a last share below 100 %, a name used twice.
pub fn parse(spec: &str) -> Result<Vec<WaveSpec>, String> {
    let items: Vec<&str> = spec.split(',').map(str::trim).collect();
    let mut waves = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        waves.push(item_of(item, i).map_err(|e| format!("--waves {spec:?}: {e}"))?);
    }
    check(&waves).map_err(|e| format!("--waves {spec:?}: {e}"))?;
    Ok(waves)
}

/// Reads a `--waves-file`: one wave a line, as in a spec (`canary=1%`),
/// blank lines and `#` comments skipped.
///
/// # Errors
///
/// The file and line of a bad wave, or what is wrong with the whole.
pub fn read_file(path: &Path) -> Result<Vec<WaveSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut waves = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        waves.push(
            item_of(line, waves.len())
                .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?,
        );
    }
    check(&waves).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(waves)
}

fn item_of(item: &str, index: usize) -> Result<WaveSpec, String> {
    let (name, share) = match item.split_once('=') {
        Some((name, share)) => (name.trim().to_owned(), share.trim()),
        None => (format!("wave{}", index + 1), item),
    };
    if name.is_empty() || name.contains([',', '"', ' ']) {
        return Err(format!(
            "wave name {name:?} is empty or has a comma, quote or space"
        ));
    }
    let number = share
        .strip_suffix('%')
        .ok_or_else(|| format!("wave {name}: {share:?} is not a cumulative share such as 25%"))?;
    let percent: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("wave {name}: {share:?} is not a number of per cent"))?;
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(format!(
            "wave {name}: {share} is not above 0 % and at most 100 %"
        ));
    }
    Ok(WaveSpec {
        name,
        cumulative_percent: percent,
    })
}

fn check(waves: &[WaveSpec]) -> Result<(), String> {
    let Some(last) = waves.last() else {
        return Err("no waves".into());
    };
    for pair in waves.windows(2) {
        if pair[1].cumulative_percent <= pair[0].cumulative_percent {
            return Err(format!(
                "wave {} ({} %) is not above wave {} ({} %): shares are cumulative and \
                 must increase",
                pair[1].name, pair[1].cumulative_percent, pair[0].name, pair[0].cumulative_percent
            ));
        }
    }
    for (i, wave) in waves.iter().enumerate() {
        if waves[..i].iter().any(|w| w.name == wave.name) {
            return Err(format!("wave name {} is used twice", wave.name));
        }
    }
    if last.cumulative_percent < 100.0 {
        return Err(format!(
            "the last wave, {}, ends at {} %: the waves must add up to 100 % of the meters",
            last.name, last.cumulative_percent
        ));
    }
    Ok(())
}

/// One meter's wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The meter.
    pub dev_eui: DevEui,
    /// Its wave's number, from 1.
    pub wave: usize,
    /// Its wave's name.
    pub name: String,
}

/// Splits `rows` into `waves` in route order (by expected contact, then
/// DevEUI).
pub fn split(rows: &[PlanRow], waves: &[WaveSpec]) -> Vec<Assignment> {
    let mut order: Vec<&PlanRow> = rows.iter().collect();
    order.sort_by_key(|r| (r.expected_contact_at, r.dev_eui));
    let n = order.len() as f64;
    let mut out = Vec::with_capacity(order.len());
    let mut wave = 0;
    for (i, row) in order.iter().enumerate() {
        // Meter i (from 0) belongs to the first wave whose share covers it
        // (a share that is a whole number of meters stays one, whatever
        // the float rounding).
        while wave + 1 < waves.len()
            && ((waves[wave].cumulative_percent * n / 100.0 - 1e-9).ceil() as usize) <= i
        {
            wave += 1;
        }
        out.push(Assignment {
            dev_eui: row.dev_eui,
            wave: wave + 1,
            name: waves[wave].name.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_its_waves() {
        let waves = parse("canary=1%,25%,100%").unwrap();
        let names: Vec<&str> = waves.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["canary", "wave2", "wave3"]);
        assert_eq!(waves[1].cumulative_percent, 25.0);
    }

    #[test]
    fn a_spec_that_does_not_add_up_is_refused() {
        for (spec, says) in [
            ("canary=1%,25%,90%", "must add up to 100 %"),
            ("10%,5%,100%", "must increase"),
            ("10,100%", "not a cumulative share"),
            ("a=10%,a=100%", "used twice"),
            ("0%,100%", "not above 0 %"),
            ("150%", "at most 100 %"),
        ] {
            let error = parse(spec).unwrap_err();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }

    #[test]
    fn meters_are_split_in_route_order_by_cumulative_share() {
        use otavan_protocol::lora::Wake;
        use std::time::Duration;
        let wake = Wake::new(
            7,
            Duration::from_secs(600),
            Duration::from_secs(600),
            1,
            None,
        )
        .unwrap();
        let start = crate::clock::parse("2025-06-03T09:00:00Z").unwrap();
        // Ten meters listed against route order: meter n is passed at
        // minute 10 - n.
        let rows: Vec<PlanRow> = (1..=10u8)
            .map(|n| PlanRow {
                dev_eui: DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, n]),
                enqueue_at: start,
                wake,
                expected_contact_at: start + time::Duration::minutes(i64::from(10 - n)),
                expected_contact_s: 30.0,
                fport: 200,
            })
            .collect();
        let split = split(&rows, &parse("canary=5%,50%,100%").unwrap());
        let waves: Vec<(u8, usize)> = split.iter().map(|a| (a.dev_eui.0[7], a.wave)).collect();
        // 5 % of 10 rounds up to one meter: the first passed, meter 10.
        assert_eq!(
            waves,
            [
                (10, 1),
                (9, 2),
                (8, 2),
                (7, 2),
                (6, 2),
                (5, 3),
                (4, 3),
                (3, 3),
                (2, 3),
                (1, 3)
            ]
        );
        assert_eq!(split[0].name, "canary");
    }

    #[test]
    fn a_waves_file_gives_the_line_of_a_bad_wave() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("waves.txt");
        std::fs::write(&path, "# canary first\ncanary=5%\n\nrest=lots\n").unwrap();
        let error = read_file(&path).unwrap_err();
        assert!(error.contains("waves.txt line 4: wave rest"), "{error}");
        std::fs::write(&path, "canary=5%\nrest=100%\n").unwrap();
        assert_eq!(read_file(&path).unwrap().len(), 2);
    }
}
