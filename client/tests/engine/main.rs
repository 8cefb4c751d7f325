//! Engine tests: real files in temp dirs, a real release indexed by the
//! server's own code, and transports that fail on purpose.

mod harness;

mod confirm;
mod crash;
mod deltas;
mod golden;
mod hostile;
mod http;
mod patch_bounds;
mod pycom;
mod resume;
mod slot;
mod steps;
mod transitions;
mod trust;
mod update;
