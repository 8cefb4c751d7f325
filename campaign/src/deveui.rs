//! A meter's LoRaWAN DevEUI: the key that ties the inventory, the plan,
//! the network server's devices and the report store together.

use std::fmt;
use std::str::FromStr;

/// A 64-bit DevEUI. Parsed from 16 hex digits (either case); shown in
/// upper case, the way LoRaWAN documents write it (`70B3D57ED0001234`);
/// [`DevEui::lower`] gives the form ChirpStack uses in its topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevEui(pub [u8; 8]);

impl DevEui {
    /// The 16 lower-case hex digits.
    pub fn lower(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for DevEui {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(self.0))
    }
}

impl FromStr for DevEui {
    type Err = String;

    fn from_str(s: &str) -> Result<DevEui, String> {
        let mut bytes = [0; 8];
        match hex::decode_to_slice(s.trim(), &mut bytes) {
            Ok(()) => Ok(DevEui(bytes)),
            Err(_) => Err(format!("{s:?} is not a DevEUI (16 hex digits)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case_and_shows_upper_case() {
        let eui: DevEui = "70b3d57ed0001234".parse().unwrap();
        assert_eq!(eui.to_string(), "70B3D57ED0001234");
        assert_eq!(eui.lower(), "70b3d57ed0001234");
        assert_eq!("70B3D57ED0001234".parse::<DevEui>().unwrap(), eui);
        for bad in [
            "70b3d57ed000123",
            "70b3d57ed00012345",
            "70b3d57ed000123g",
            "",
        ] {
            assert!(bad.parse::<DevEui>().is_err(), "{bad}");
        }
    }
}
