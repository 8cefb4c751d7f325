//! The `otavan` binary as operators and meters run it.

mod common;

mod device;
mod lora;
mod rehearse;
mod serve;
mod signing;
