//! The `otavan` binary as operators and meters run it.

mod common;

mod device;
mod lora;
mod serve;
mod signing;
