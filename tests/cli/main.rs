//! The `otavan` binary as operators and meters run it.

mod common;

mod campaign;

mod device;
mod lora;
mod rehearse;
mod serve;
mod signing;
