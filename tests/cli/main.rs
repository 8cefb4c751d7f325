//! The `otavan` binary as operators and meters run it.

mod common;

mod device;
mod serve;
mod signing;
