//! Joining the van's access point.
//!
//! A meter's radio driver implements [`WifiLink`]; the engine's caller
//! joins before an update cycle and leaves after it, so the radio is on
//! only while the van is near. [`HostWifi`] is for machines that are
//! already on a network (Linux meters on Ethernet, tests).

use tokio::time::Instant;

use crate::engine::{Engine, EngineError, Outcome};
use crate::slots::FirmwareSlots;
use crate::storage::Storage;
use crate::transport::Transport;

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
    /// Joins `ssid` and obtains an address, giving up at `deadline`
    /// (tokio time: virtual in rehearsals and tests).
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

/// The van's network, as provisioned on the meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VanNetwork {
    /// The access point's name.
    pub ssid: String,
    /// How to join it.
    pub credentials: Credentials,
}

/// Why a WiFi update session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The radio could not join the van's network; nothing was attempted.
    #[error(transparent)]
    Join(#[from] WifiError),
    /// Joined, but the update cycle failed (the meter is unchanged).
    #[error(transparent)]
    Update(#[from] EngineError),
}

/// One WiFi session: joins `network` (giving up at `deadline`), runs one
/// update cycle, and always leaves again so the radio is off between vans.
pub async fn update_session<W, S, F, T>(
    wifi: &mut W,
    network: &VanNetwork,
    deadline: Instant,
    engine: &Engine<S, F, T>,
) -> Result<Outcome, SessionError>
where
    W: WifiLink,
    S: Storage,
    F: FirmwareSlots,
    T: Transport,
{
    wifi.join(&network.ssid, &network.credentials, deadline)
        .await?;
    let outcome = engine.update().await;
    wifi.leave().await;
    Ok(outcome?)
}
