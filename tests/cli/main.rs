//! The `otavan` binary as operators and meters run it.

mod common;
mod pg;

mod campaign;
mod crew_map;
mod standing;

mod dashboard;
mod device;
mod fleet;
mod gpsd;
mod lora;
mod rehearse;
mod replan;
mod roles;
mod serve;
mod signed_reports;
mod signing;
