//! Joining the van's access point.
//!
//! A meter's radio driver implements [`WifiLink`]; the engine's caller
//! joins before an update cycle and leaves after it, so the radio is on
//! only while the van is near. [`HostWifi`] is for machines that are
//! already on a network (Linux meters on Ethernet, tests).

use std::time::Duration;

use tokio::time::{Instant, sleep, timeout_at};
use tracing::warn;

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
    /// The update still ran this long after the window closed and was
    /// abandoned (the network left); the meter's next start recovers it
    /// as after a power cut: at its old version, or its new one if the
    /// apply had finished.
    #[error("the update ran {}s past its window and was abandoned", .0.as_secs())]
    Overran(Duration),
}

/// How a session spaces its attempts after a cut link: `first`, then
/// doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first cut attempt.
    pub first: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, then 2, 4, 8 s: from the drive-bys over a real network stack
    /// (docs/rehearsal.md, "What a meter does on a real link"): a meter at
    /// the edge of range gets a next attempt within a few seconds of the
    /// link coming back, and one that has lost the van tries a handful of
    /// times a minute, never after its window.
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
        }
    }
}

/// A WiFi session that lasts its window: joins `network`, then runs update
/// cycles until one ends for good (updated, up to date, or refused for a
/// reason another attempt does not change) or a cut link leaves no time
/// for another attempt before `closes`. A later attempt resumes the
/// downloads the cut left staged. With an `overrun`, a session (its join
/// included) still running that long after `closes` (a radio driver that
/// hangs, a cut download the engine resumes within its cycle, its report)
/// is abandoned: the van has gone and the radio must go off. Leaves the
/// network again whenever it joined or was abandoned.
pub async fn update_within<W, S, F, T>(
    wifi: &mut W,
    network: &VanNetwork,
    closes: Instant,
    backoff: Backoff,
    overrun: Option<Duration>,
    engine: &Engine<S, F, T>,
) -> Result<Outcome, SessionError>
where
    W: WifiLink,
    S: Storage,
    F: FirmwareSlots,
    T: Transport,
{
    let session = async {
        wifi.join(&network.ssid, &network.credentials, closes)
            .await?;
        let mut wait = backoff.first;
        loop {
            match engine.update().await {
                Err(error) if error.is_transient() && Instant::now() + wait < closes => {
                    warn!(%error, retry_in = ?wait, "update cycle cut; trying again within the window");
                    sleep(wait).await;
                    wait = (wait * 2).min(backoff.max);
                }
                outcome => break Ok(outcome),
            }
        }
    };
    let outcome = match overrun {
        None => session.await,
        Some(overrun) => timeout_at(closes + overrun, session)
            .await
            .unwrap_or(Err(SessionError::Overran(overrun))),
    };
    if let Err(SessionError::Join(error)) = outcome {
        return Err(SessionError::Join(error));
    }
    wifi.leave().await;
    Ok(outcome??)
}
