//! Wire types shared by the otavan server, the meter-side client and the
//! fleet simulator.
//!
//! Everything here is plain data with serde derives: this crate is the
//! deliberate exception to "no serde on internal types", because these types
//! *are* the wire format. It does no I/O and pulls in no async runtime, so it
//! builds for a meter as easily as for the van.
//!
//! - [`Version`]: a release version with a total order compatible with
//!   Python's `LooseVersion` and with semver.
//! - [`Manifest`]: the Pycom-compatible `manifest.json`, plus otavan's
//!   optional extensions (`sha256`, `size`, `previous_version`).
//! - [`Report`]: the status report a meter posts to `/report`;
//!   [`report_auth`]: its HMAC signature with a per-meter key.
//! - [`descriptor`]: offline-signed target descriptors; [`keys`]: the
//!   Ed25519 keys by role (root, release); [`root`]: the root certificate
//!   naming the release keys; [`timestamp`]: the short-lived statement of
//!   the latest release; [`signed`]: the signed-JSON envelope they share.
//! - [`device_time`]: LoRaWAN's `DeviceTimeAns` and GPS time.
//! - [`lora`]: the LoRaWAN downlink commands that wake meters and the
//!   meters' status uplink.
//! - [`region`]: the LoRaWAN regional parameters: data rates and their
//!   modulation, payload limits, time on air, sub-bands and receive
//!   windows.
//!
//! ```
//! use otavan_protocol::Version;
//! let old: Version = "1.9.0".parse().unwrap();
//! let new: Version = "1.10.0".parse().unwrap();
//! assert!(old < new);
//! ```

pub mod descriptor;
pub mod device_time;
pub mod halt;
pub mod keys;
pub mod lora;
pub mod manifest;
pub mod region;
pub mod report;
pub mod report_auth;
pub mod root;
pub mod signed;
pub mod timestamp;
pub mod version;

pub use manifest::{FileEntry, FirmwareEntry, FirmwarePatch, Manifest};
pub use report::{Report, ReportError, UpdateState};
pub use version::{Version, VersionError};
