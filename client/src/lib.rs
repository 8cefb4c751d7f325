//! The meter side of otavan.
//!
//! An update cycle fetches the manifest for the meter's version, downloads
//! the files into staging and the firmware image straight into the
//! inactive A/B slot (resuming cut downloads with `Range`), verifies every
//! byte (files as they arrive, the image by reading the slot back),
//! journals its intent, backs up what it will replace, installs by rename,
//! boots the new image and records the new version as pending until it is
//! confirmed or rolled back. A power cut at any point leaves the meter
//! exactly at the old or the new version.
//!
//! The engine runs over three small traits, so a meter's drivers plug in
//! and tests inject faults: [`transport::Transport`] (how bytes arrive),
//! [`storage::Storage`] (the meter's file system) and
//! [`slots::FirmwareSlots`] (the A/B images). Time and random numbers are
//! inputs too ([`clock`]): nothing reads the system's behind the caller's
//! back, so a rehearsal runs the engine in virtual time, reproducibly.

pub mod transport;

pub mod apply;
mod bounded;
mod bspatch;
pub mod clock;
pub mod confirm;
pub mod digest;
pub mod download;
pub mod engine;
pub mod fault;
mod firmware;
pub mod health;
pub mod lora;
pub mod meter;
pub mod path;
pub mod plan;
pub mod slots;
pub mod state;
pub mod storage;
pub mod trust;
pub mod wifi;

pub use engine::{Engine, EngineConfig, EngineError, Outcome};
pub use meter::{Meter, Recovery, Status};
pub mod device;
