//! The `otavan` binary as operators and meters run it.

mod common;
mod pg;

mod campaign;
mod cancel;
mod crew_map;
mod standing;
mod waves;

mod dashboard;
mod device;
mod fleet;
mod gpsd;
mod halt;
mod lora;
mod rehearse;
mod replan;
mod roles;
mod serve;
mod signed_reports;
mod signing;
