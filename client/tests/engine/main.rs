//! Engine tests: real files in temp dirs, a real release indexed by the
//! server's own code, and transports that fail on purpose.

mod harness;

mod confirm;
mod crash;
mod deltas;
mod downgrade;
mod golden;
mod hostile;
mod http;
mod manifest_input;
mod patch_bounds;
mod pycom;
mod resume;
mod roles;
mod slot;
mod steps;
mod transitions;
mod trust;
mod trusted_time;
mod update;
mod whole_truth;
