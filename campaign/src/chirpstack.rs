//! ChirpStack v4's multicast groups over its gRPC API
//! (`MulticastGroupService`, the `chirpstack_api` crate's types): what
//! `campaign push` does for a multicast plan's group WAKE, which
//! ChirpStack's MQTT integration cannot carry.
//!
//! At the group's time the push creates the class C multicast group (its
//! address, session keys, frame counter, RX2 frequency and data rate),
//! adds its members and gateways, and enqueues the WAKE, to expire with
//! the members' class C window. ChirpStack sends a class C multicast
//! downlink as soon as it is queued (`DELAY` scheduling), so it is queued
//! at `transmit_at`, not before. Every call carries the API key as a
//! bearer token.
//!
//! A standing group (`campaign plan --wake standing`) lives across
//! campaigns: each slot WAKE first looks the group up by its name
//! (`List`), creates it (with its members and gateways) only when it is
//! not there, and enqueues the WAKE at the slot's `transmit_at`: the
//! queue item has no transmission time (`GPS_TIME` scheduling only
//! synchronises several gateways), so the WAKE is queued at the moment it
//! should go out and expires with the slot's window.

//!
//! The calls themselves are in `grpc` (the `chirpstack` feature); an
//! otavan built without it refuses a ChirpStack group WAKE with
//! [`ApiError::NotBuilt`].

use otavan_protocol::region::Region;
use time::OffsetDateTime;

use crate::deveui::DevEui;
use crate::groups_csv::GroupKeys;

#[cfg(feature = "chirpstack")]
mod grpc;
#[cfg(feature = "chirpstack")]
pub use grpc::send;

/// Where ChirpStack's API is and how to authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The API's URL, e.g. `http://chirpstack:8080`.
    pub url: String,
    /// An API key (ChirpStack: API keys), sent as a bearer token.
    pub token: String,
    /// The application the groups belong to.
    pub application_id: String,
    /// The gateways that send the multicast frames (IDs in hex).
    pub gateways: Vec<String>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        write!(f, "ApiConfig({}, {})", self.url, self.application_id)
    }
}

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The URL is not one.
    #[error("--chirpstack-api {0:?} is not a URL")]
    Url(String),
    /// ChirpStack could not be reached, or the call failed.
    #[error("ChirpStack API: {0}")]
    Call(String),
    /// ChirpStack refused the key or the request: retrying will not help.
    #[error("ChirpStack API refused the request: {0}")]
    Refused(String),
    /// This otavan was built without the ChirpStack API.
    #[error(
        "this otavan was built without the ChirpStack API: build it with \
         `cargo build --release --features chirpstack` (needs protoc)"
    )]
    NotBuilt,
}

impl ApiError {
    /// Whether retrying cannot help.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ApiError::Url(_) | ApiError::Refused(_) | ApiError::NotBuilt
        )
    }
}

/// One group WAKE for ChirpStack.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupWake {
    /// The group's keys (address, session keys).
    pub keys: GroupKeys,
    /// Its members.
    pub members: Vec<DevEui>,
    /// The region, for the class C channel.
    pub region: Region,
    /// The command FPort.
    pub fport: u8,
    /// The WAKE.
    pub payload: Vec<u8>,
    /// When the members' class C window closes.
    pub expires_at: OffsetDateTime,
    /// A standing group: created at its first WAKE, found by name
    /// (`otavan-ADDR`) at the next ones.
    pub standing: bool,
}

/// Without the `chirpstack` feature: refuses, saying how to build it.
///
/// # Errors
///
/// Always [`ApiError::NotBuilt`].
#[cfg(not(feature = "chirpstack"))]
pub async fn send(_config: &ApiConfig, _wake: &GroupWake) -> Result<(String, u32), ApiError> {
    Err(ApiError::NotBuilt)
}
