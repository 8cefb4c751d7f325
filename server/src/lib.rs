//! The otavan van server.
//!
//! Serves a Pycom-style release tree to meters: `GET /manifest.json?current_ver=X`
//! answers what to download, delete and flash to reach the target version;
//! every file of the release is served with `Content-Length`, `ETag` and
//! single `Range`s; `POST /report` stores meters' status reports (SQLite,
//! or PostgreSQL shared by many vans: the `otavan-store` crate) and `GET /reports.csv`
//! exports them; signed reports are checked ([`authenticity`]). `GET /` is the van's dashboard ([`dashboard`]) and
//! `GET /metrics` the Prometheus counters ([`metrics`]). With
//! `--gpsd` each report is stored with the van's position ([`gpsd`]).
//!
//! The caller binds, so tests use port 0:
//!
//! ```no_run
//! # async fn demo() -> Result<(), otavan_server::StartError> {
//! use otavan_server::{Server, ServerConfig};
//! let mut config = ServerConfig::new("examples/releases");
//! config.addr = "127.0.0.1:0".parse().unwrap();
//! let server = Server::bind(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(std::future::pending()).await;
//! # Ok(()) }
//! ```
//!
//! Invariants: only files recorded in the [`index::ReleaseIndex`] are ever
//! served (request paths are looked up, never joined onto the root); a
//! manifest's bytes depend only on the index, the current version and the
//! Host, and are computed once per index.

pub mod authenticity;
pub mod body;
pub mod certify;
pub mod crew_map;
pub mod dashboard;
pub mod files;
pub mod gpsd;
mod gzip;
pub mod halt_file;
pub mod index;
pub mod local;
pub mod manifest;
pub mod manifest_cache;
pub mod metrics;
pub mod pace;
mod pages;
pub mod patches;
pub mod preload;
pub mod range;
mod respond;
pub mod server;
pub mod service;
pub mod sign;
pub mod signals;
pub mod slots;
pub mod state;

pub use server::{Reloader, Server, ServerConfig, StartError};
