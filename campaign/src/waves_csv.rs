//! WAVES.csv: which wave each meter of PLAN.csv is in, written beside it
//! by `campaign plan --waves` and read by `campaign push`, `status` and
//! `missed`.
//!
//! Columns, in order: `dev_eui, wave, name` (wave numbers from 1, in
//! route order; one name per number).

use std::collections::HashMap;
use std::path::Path;

use crate::deveui::DevEui;
use crate::table::{InputError, Problems, Table};
use crate::waves::Assignment;

/// The columns of WAVES.csv, in order.
pub const COLUMNS: [&str; 3] = ["dev_eui", "wave", "name"];

/// WAVES.csv's text for `waves`.
pub fn to_csv(waves: &[Assignment]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for a in waves {
        let _ = writer.write_record([a.dev_eui.to_string(), a.wave.to_string(), a.name.clone()]);
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes WAVES.csv atomically and durably.
///
/// # Errors
///
/// The I/O error.
pub fn write(path: &Path, waves: &[Assignment]) -> std::io::Result<()> {
    otavan_durable::write_atomic(path, &to_csv(waves))
}

/// Reads and checks WAVES.csv.
///
/// # Errors
///
/// [`InputError`] listing every bad row: a bad DevEUI or wave number, a
/// DevEUI twice, a wave number under two names.
pub fn read(path: &Path) -> Result<Vec<Assignment>, InputError> {
    let table = Table::read(path, &COLUMNS, &[])?;
    let mut problems = Problems::default();
    let mut out = Vec::with_capacity(table.len());
    let mut seen: HashMap<DevEui, u64> = HashMap::new();
    let mut names: HashMap<usize, String> = HashMap::new();
    for (line, field) in table.rows() {
        let row = (|| -> Result<Assignment, String> {
            let dev_eui: DevEui = field.require("dev_eui")?.parse()?;
            let wave = field.require("wave")?;
            let wave = match wave.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => return Err(format!("wave {wave:?} is not a wave number (1, 2, ...)")),
            };
            let name = field.require("name")?.to_owned();
            if let Some(other) = names.get(&wave)
                && *other != name
            {
                return Err(format!("wave {wave} is named {other} on an earlier line"));
            }
            names.insert(wave, name.clone());
            Ok(Assignment {
                dev_eui,
                wave,
                name,
            })
        })();
        match row {
            Ok(a) => {
                if let Some(first) = seen.insert(a.dev_eui, line) {
                    problems.add(
                        line,
                        format!("DevEUI {} is already on line {first}", a.dev_eui),
                    );
                }
                out.push(a);
            }
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(path)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_round_trip_and_a_bad_row_is_named_by_line() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("WAVES.csv");
        let a = Assignment {
            dev_eui: "70b3d57ed0000001".parse().unwrap(),
            wave: 1,
            name: "canary".into(),
        };
        write(&path, std::slice::from_ref(&a)).unwrap();
        assert_eq!(read(&path).unwrap(), [a]);
        std::fs::write(
            &path,
            "dev_eui,wave,name\n70B3D57ED0000001,1,canary\n70B3D57ED0000002,1,rest\n\
             70B3D57ED0000003,0,x\n",
        )
        .unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("line 3: wave 1 is named canary"), "{error}");
        assert!(
            error.contains("line 4: wave \"0\" is not a wave number"),
            "{error}"
        );
    }
}
