//! Checking an update against what the release keys signed.
//!
//! A meter is provisioned with a trust [`Anchor`]: a root public key (root
//! mode) or, as before release roles, a release public key (single-key
//! mode). Without one it installs what any server offers (Pycom mode).
//! With one, nothing the van says is trusted; an update goes ahead only
//! when, in order:
//!
//! 1. ([`chain`], root mode) the root certificate verifies with the root
//!    key and is the highest the meter has seen (a higher one offered by
//!    the van is kept at once, so a rotation's revocations stick even if
//!    the update then fails), and has not expired;
//! 2. the target's descriptor verifies (with the certified release keys,
//!    at the certificate's threshold; or with the single key), has not
//!    expired, and its counter is not below the highest installed nor,
//!    in root mode, more than the certificate's `max_counter_jump` above
//!    it;
//! 3. (root mode) the signed timestamp verifies, has not expired, and
//!    names no release newer than the target;
//! 4. ([`vouch`]) the manifest matches the descriptor exactly: every file
//!    and the firmware pinned to the signed SHA-256 and size, deletes only
//!    of files the installed version's signed descriptor lists and the
//!    target lacks, and the tree after the install (outside `.otavan/`)
//!    exactly the target's: no extra file, no leftover.
//!
//! Expiry is judged at the meter's trusted time
//! ([`crate::clock::trusted_now`]). The version rule comes before all of
//! this, in the engine: a target that is not above the installed version
//! is refused whatever its counter.
//!
//! The installed version's descriptor is kept in `.otavan/descriptors/`
//! ([`installed`]). A meter that has none yet (provisioned from a tree by
//! `otavan device init`) takes the one the van serves for its version
//! (`previous_descriptor` in the manifest), verified like the target's;
//! when the van has none, no delete is justified, so the update is
//! refused unless the meter's files are all the target's.

mod anchor;
mod chain;
mod fetch;
pub mod installed;
mod vouch;

pub use anchor::Anchor;
pub use chain::{Checks, Verified, verify};
pub use vouch::{MeterView, vouch};

use crate::engine::EngineError;

/// The refusal of an untrusted update, with its one-line reason.
fn refuse(reason: impl Into<String>) -> EngineError {
    EngineError::Untrusted(reason.into())
}
