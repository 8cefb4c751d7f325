//! `--set section.key=value`: overriding any value of a scenario from the
//! command line.
//!
//! The effective scenario is built in three layers: the defaults, the file
//! on top (tables merge key by key; the share tables, position lists and
//! size table are replaced as a whole, so a file listing two install kinds
//! has exactly those two), and the overrides on top of that (merging, so
//! `--set 'fleet.versions."1.0.1"=0.2'` adds a version to the mix). The key
//! is a TOML dotted key and the value a TOML value; a value that is not
//! valid TOML is taken as a string, so `--set lora.region=US915` works
//! without quotes.

use std::str::FromStr;

use crate::scenario::{Scenario, ScenarioError};

/// Tables and arrays a scenario file replaces as a whole.
const REPLACED: [&str; 8] = [
    "fleet.install",
    "fleet.uplink_intervals",
    "fleet.versions",
    "release.sizes",
    "lora.gateway_positions",
    "van.waypoints",
    "release.release_dir",
    "release.signing_key",
];

/// One `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The option as given, for messages.
    pub text: String,
    /// The key and value as a one-line TOML document.
    table: toml::Table,
}

impl FromStr for Override {
    type Err = String;

    fn from_str(text: &str) -> Result<Override, String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not KEY=VALUE (for example van.speed_kmh=30)"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(format!("{text:?} has no key"));
        }
        let as_toml = format!("{key} = {value}");
        let table = match as_toml.parse::<toml::Table>() {
            Ok(table) => table,
            Err(_) => {
                let quoted = toml::Value::String(value.to_string()).to_string();
                format!("{key} = {quoted}")
                    .parse::<toml::Table>()
                    .map_err(|e| format!("{text:?}: {}", e.message()))?
            }
        };
        Ok(Override {
            text: text.to_string(),
            table,
        })
    }
}

/// The defaults, `file` on top and `overrides` on top of that.
///
/// # Errors
///
/// [`ScenarioError::Override`] when an override would replace a table
/// with a scalar (`--set fleet=3`).
pub fn effective(file: &toml::Table, overrides: &[Override]) -> Result<toml::Table, ScenarioError> {
    let mut table = toml::Table::try_from(Scenario::default())
        .expect("the default scenario serialises to TOML");
    merge(&mut table, file, "", true)
        .map_err(|path| ScenarioError::Override(format!("file: {path} is a section")))?;
    for option in overrides {
        merge(&mut table, &option.table, "", false).map_err(|path| {
            ScenarioError::Override(format!(
                "{}: {path} is a section; name one of its values",
                option.text
            ))
        })?;
    }
    Ok(table)
}

/// Merges `over` into `base`. With `replace`, the [`REPLACED`] paths are
/// taken whole from `over`. Returns the dotted path of a section `over`
/// tries to overwrite with a scalar.
fn merge(
    base: &mut toml::Table,
    over: &toml::Table,
    prefix: &str,
    replace: bool,
) -> Result<(), String> {
    for (key, value) in over {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let whole = replace && REPLACED.contains(&path.as_str());
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over_inner)) if !whole => {
                merge(inner, over_inner, &path, replace)?;
            }
            (Some(toml::Value::Table(_)), _) if !whole => return Err(path),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> Override {
        text.parse().unwrap()
    }

    fn scenario(file: &str, overrides: &[Override]) -> Result<Scenario, String> {
        let file: toml::Table = file.parse().unwrap();
        let table = effective(&file, overrides).map_err(|e| e.to_string())?;
        table.try_into().map_err(|e: toml::de::Error| e.to_string())
    }

    #[test]
    fn scalars_strings_and_nested_keys() {
        let s = scenario(
            "[van]\nspeed_kmh = 15\n",
            &[
                set("van.speed_kmh=30"),
                set("lora.region=US915"),
                set("fleet.install.basement.share = 0.5"),
                set("fleet.versions.\"1.0.1\"=0.25"),
            ],
        )
        .unwrap();
        assert_eq!(s.van.speed_kmh, 30.0);
        assert_eq!(s.lora.region, "US915");
        assert_eq!(s.fleet.install["basement"].share, 0.5);
        // The other install kinds keep their defaults.
        assert_eq!(s.fleet.install.len(), 3);
        assert_eq!(s.fleet.versions.len(), 2);
    }

    #[test]
    fn a_file_replaces_share_tables_whole() {
        let s = scenario(
            "[fleet.install.cabinet]\nshare = 1.0\nwifi_range_min_m = 50\nwifi_range_max_m = 60\nlora_loss_db = 0\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.fleet.install.keys().collect::<Vec<_>>(), ["cabinet"]);
    }

    #[test]
    fn bad_options_are_named() {
        assert!("no-equals".parse::<Override>().is_err());
        assert!("=3".parse::<Override>().is_err());
        let err = scenario("", &[set("fleet=3")]).unwrap_err();
        assert!(err.contains("fleet is a section"), "{err}");
        let err = scenario("", &[set("van.sped_kmh=3")]).unwrap_err();
        assert!(err.contains("sped_kmh"), "{err}");
        let err = scenario("", &[set("van.speed_kmh=fast")]).unwrap_err();
        assert!(
            err.contains("speed_kmh") || err.contains("invalid type"),
            "{err}"
        );
    }
}
