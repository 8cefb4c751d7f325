//! Integration tests: the real server on an ephemeral port, spoken to over
//! real sockets. One test binary, one module per concern.

mod harness;

mod dashboard;
mod files;
mod hostile;
mod lifecycle;
mod manifests;
mod parsers;
mod pycom;
mod reports;
mod signed_reports;
mod signing;
mod traversal;
