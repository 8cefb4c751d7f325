//! Device credentials and the hex spellings used in logs.
//!
//! EUIs travel least significant byte first and are shown most significant
//! byte first (the way a network console shows them); keys are shown in
//! their wire order. [`DevEui`] and [`AppEui`] parse from that usual MSB hex
//! with `str::parse`.

pub use lorawan::keys::{AppEui, AppKey, AppSKey, DevEui, NewSKey};
use lorawan_device::JoinMode;

use crate::rng::SimRng;

/// What a device and the network share before the join: DevEUI, AppEUI
/// (JoinEUI) and AppKey (LoRaWAN 1.0.x OTAA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceKeys {
    /// The device's EUI.
    pub dev_eui: DevEui,
    /// The application (join) EUI.
    pub app_eui: AppEui,
    /// The root key the session keys derive from.
    pub app_key: AppKey,
}

/// The DevEUI of [`DeviceKeys::simulated`] device 0, MSB first.
pub const SIMULATED_DEV_EUI_BASE: u64 = 0x70B3_D57E_D000_0000;

/// The AppEUI of every [`DeviceKeys::simulated`] device, MSB first.
pub const SIMULATED_APP_EUI: u64 = 0x70B3_D57E_F000_0001;

impl DeviceKeys {
    /// Credentials from their parts.
    pub fn new(dev_eui: DevEui, app_eui: AppEui, app_key: AppKey) -> Self {
        DeviceKeys {
            dev_eui,
            app_eui,
            app_key,
        }
    }

    /// Deterministic credentials for simulated device `index`: DevEUI
    /// `70B3D57ED0000000 + index`, a shared AppEUI and an AppKey drawn from
    /// a generator seeded with the index.
    pub fn simulated(index: u64) -> Self {
        let mut key = [0u8; 16];
        SimRng::new(index ^ 0xA5A5_5A5A_0F0F_F0F0).fill(&mut key);
        DeviceKeys {
            dev_eui: eui_from_u64(SIMULATED_DEV_EUI_BASE.wrapping_add(index)),
            app_eui: AppEui::from(SIMULATED_APP_EUI.to_le_bytes()),
            app_key: AppKey::from(key),
        }
    }

    /// The OTAA join mode a `lorawan_device` device joins with.
    pub fn join_mode(&self) -> JoinMode {
        JoinMode::OTAA {
            deveui: self.dev_eui,
            appeui: self.app_eui,
            appkey: self.app_key,
        }
    }
}

/// A DevEUI from its numeric (MSB-first) value.
pub fn eui_from_u64(value: u64) -> DevEui {
    DevEui::from(value.to_le_bytes())
}

/// An EUI (wire order, LSB first) as MSB-first lower-case hex.
pub fn eui_hex(eui: &impl AsRef<[u8]>) -> String {
    let mut bytes = eui.as_ref().to_vec();
    bytes.reverse();
    hex::encode(bytes)
}

/// A key as lower-case hex, in its wire (MSB-first) order.
pub fn key_hex(key: &impl AsRef<[u8]>) -> String {
    hex::encode(key.as_ref())
}

/// A DevAddr (its numeric value) as 8 hex digits, MSB first.
pub fn dev_addr_hex(dev_addr: u32) -> String {
    format!("{dev_addr:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let keys = DeviceKeys::simulated(0x1234);
        assert_eq!(eui_hex(&keys.dev_eui), "70b3d57ed0001234");
        assert_eq!(eui_hex(&keys.app_eui), "70b3d57ef0000001");
        let parsed: DevEui = "70B3D57ED0001234".parse().unwrap();
        assert_eq!(parsed, keys.dev_eui);
        assert_eq!(keys, DeviceKeys::simulated(0x1234));
        assert_ne!(keys.app_key, DeviceKeys::simulated(0x1235).app_key);
        assert_eq!(key_hex(&AppKey::from([0xab; 16])), "ab".repeat(16));
        assert_eq!(dev_addr_hex(0x2601_0203), "26010203");
    }
}
