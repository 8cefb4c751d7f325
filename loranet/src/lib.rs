//! A simulated LoRaWAN network for tests and fleet rehearsals.
//!
//! - [`server`]: [`NetworkServer`], a minimal LoRaWAN 1.0.x network server
//!   (OTAA joins, data uplinks, class A downlink queue) with one gateway
//!   that keeps the regional duty cycle ([`gateway`]), and a JSON frame
//!   log ([`log`]).
//! - [`radio`]: [`SimRadio`] and [`SimTimer`], the `lorawan_device` radio
//!   and timer traits on tokio time, so the real device stack runs against
//!   the simulated network.
//!
//! The regional facts it keeps (data rates, time on air, sub-bands, RX1
//! and RX2) are [`otavan_protocol::region`]'s.
//!
//! Everything runs on tokio time: under `#[tokio::test(start_paused =
//! true)]` a day of traffic takes milliseconds, with a real runtime the
//! same code runs in real time. Every random choice comes from a seed.
//!
//! What is simulated: frame formats, keys, MICs, encryption and counters
//! exactly as LoRaWAN 1.0.x (through the `lorawan` crate), receive-window
//! timing, time on air, the gateway's duty cycle and single transmitter.
//! What is not: RF propagation, path loss, collisions and capture (every
//! frame arrives unless uplink loss is injected), several gateways, the
//! gateway being deaf while it transmits, MAC commands and ADR, class B/C,
//! LoRaWAN 1.1.
//!
//! Wiring a device:
//!
//! ```
//! use lorawan_device::async_device::{Device, JoinResponse, SendResponse};
//! use lorawan_device::default_crypto::DefaultFactory;
//! use lorawan_device::region::{Configuration, Region};
//! use otavan_loranet::{DeviceKeys, NetworkConfig, NetworkServer, SimRadio, SimTimer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let network = NetworkServer::new(NetworkConfig::eu868(1));
//! let keys = DeviceKeys::simulated(7);
//! network.register(keys);
//! let mut device: Device<_, DefaultFactory, _, _> = Device::new_with_seed(
//!     Configuration::new(Region::EU868),
//!     SimRadio::new(network.clone()),
//!     SimTimer::new(),
//!     42,
//! );
//! assert!(matches!(device.join(&keys.join_mode()).await, Ok(JoinResponse::JoinSuccess)));
//! network.enqueue(keys.dev_eui, 10, b"wake", false).unwrap();
//! let reply = device.send(b"hi", 1, false).await.unwrap();
//! assert!(matches!(reply, SendResponse::DownlinkReceived(_)));
//! let downlink = device.take_downlink().unwrap();
//! assert_eq!((downlink.fport, &downlink.data[..]), (10, &b"wake"[..]));
//! assert_eq!(network.uplinks()[0].payload, b"hi");
//! # }
//! ```

pub mod gateway;
pub mod keys;
pub mod log;
pub mod radio;
pub mod rng;
pub mod server;

pub use gateway::{AirFrame, DownlinkKind, GatewayTx};
pub use keys::{AppEui, AppKey, AppSKey, DevEui, DeviceKeys, NewSKey};
pub use log::{FrameDirection, FrameKind, FrameRecord, RxWindow};
pub use radio::{RadioStats, SimRadio, SimRadioError, SimTimer};
pub use server::{
    EnqueueError, MulticastError, MulticastSent, NetworkConfig, NetworkServer, NetworkStats,
    ReceivedFrame, RejectReason, Reply, SessionInfo, Uplink, UplinkInfo, UplinkOutcome,
};
