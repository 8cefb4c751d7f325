//! Joining the van's access point.
//!
//! A meter's radio driver implements [`WifiLink`]; the engine's caller
//! joins before an update cycle and leaves after it, so the radio is on
//! only while the van is near. [`HostWifi`] is for machines that are
//! already on a network (Linux meters on Ethernet, tests).

use std::time::Instant;

/// What a meter needs to join a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An open network.
    Open,
    /// WPA2/WPA3 personal.
    Passphrase(String),
}

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum WifiError {
    /// The network was not found or did not accept us before the deadline.
    #[error("could not join {ssid} before the deadline")]
    Timeout {
        /// The network.
        ssid: String,
    },
    /// The radio driver failed.
    #[error("radio: {0}")]
    Radio(String),
}

/// A WiFi radio.
#[allow(async_fn_in_trait, reason = "used generically, never as dyn")]
pub trait WifiLink {
    /// Joins `ssid` and obtains an address, giving up at `deadline`.
    async fn join(
        &mut self,
        ssid: &str,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<(), WifiError>;
    /// Leaves the network and powers the radio down.
    async fn leave(&mut self);
}

/// A host that is already connected: joining succeeds at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostWifi;

impl WifiLink for HostWifi {
    async fn join(
        &mut self,
        _ssid: &str,
        _credentials: &Credentials,
        _deadline: Instant,
    ) -> Result<(), WifiError> {
        Ok(())
    }

    async fn leave(&mut self) {}
}
