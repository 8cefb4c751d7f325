//! The meter confirms a new version itself, or reverts it (MCUboot's
//! test, confirm and revert).
//!
//! An applied update is *on trial* until it is confirmed. The engine
//! gathers evidence that it works as the meter runs ([`Engine::self_test`]:
//! the van answered its report, a LoRaWAN uplink went out) and asks its
//! [`HealthCheck`](crate::health::HealthCheck); a healthy verdict confirms,
//! an unhealthy one reverts at once. At every start ([`Engine::boot`],
//! after [`Meter::recover`](crate::Meter::recover)) the boot is counted:
//! an update still unconfirmed after [`EngineConfig::max_boots`] starts is
//! reverted, so a version that cannot prove itself (it never reaches the
//! van, hangs before its self-test, crashes at start) does not stay. And
//! when the bootloader itself fell back to the old image, recovery makes
//! the files follow.
//!
//! Every revert is journalled like a rollback and keeps its reason in the
//! device state ([`Revert`]) until a van has been told: the next report
//! the engine can deliver is FAILED with that reason, and the LoRaWAN
//! status uplink's last result says `reverted`.
//!
//! [`EngineConfig::max_boots`]: crate::EngineConfig::max_boots

use otavan_protocol::{UpdateState, Version};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::engine::{Attempt, Engine, EngineError};
use crate::health::{Evidence, Verdict};
use crate::slots::FirmwareSlots;
use crate::storage::Storage;
use crate::transport::Transport;

/// An update the meter rolled back by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revert {
    /// The version the meter is back at.
    pub from: Version,
    /// The version it reverted.
    pub to: Version,
    /// Why, in one line.
    pub reason: String,
}

impl Revert {
    /// The error of the FAILED report that tells a van.
    pub fn report_error(&self) -> String {
        format!("reverted to {}: {}", self.from, self.reason)
    }
}

/// What counting a start did ([`crate::Meter::count_boot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootCount {
    /// No update awaits confirmation.
    Settled,
    /// `version` is on trial; this is its `boot`-th start.
    OnTrial {
        /// The version on trial.
        version: Version,
        /// Starts so far, this one included.
        boot: u32,
    },
    /// The update had used up its starts and was reverted.
    Reverted(Revert),
}

/// Where the trial of an update stands after a start or a self-test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// No update awaits confirmation.
    Settled,
    /// The version passed its self-test and is confirmed.
    Confirmed(Version),
    /// The version stays on trial: the self-test still needs `missing`.
    Waiting {
        /// The version on trial.
        version: Version,
        /// What the health check is waiting for.
        missing: String,
    },
    /// The version was reverted.
    Reverted(Revert),
}

impl<S: Storage, F: FirmwareSlots, T: Transport> Engine<S, F, T> {
    /// What a meter runs at every start, after
    /// [`Meter::recover`](crate::Meter::recover): tells the van of a
    /// revert it has not heard of, counts this start of a version on
    /// trial and reverts it when its starts are used up, else runs the
    /// self-test on the evidence so far (a meter whose check needs nothing
    /// more, or only its hook, confirms here).
    pub async fn boot(&self) -> Result<Confirmation, EngineError> {
        self.report_revert().await?;
        match self.meter().count_boot(self.config().max_boots)? {
            BootCount::Settled => Ok(Confirmation::Settled),
            BootCount::Reverted(revert) => {
                self.report_revert().await?;
                Ok(Confirmation::Reverted(revert))
            }
            BootCount::OnTrial { .. } => self.self_test(Evidence::default()).await,
        }
    }

    /// Adds `seen` to what the version on trial has shown and asks the
    /// health check: confirms, reverts (telling the van if it can), or
    /// leaves it on trial.
    pub async fn self_test(&self, seen: Evidence) -> Result<Confirmation, EngineError> {
        let Some((version, evidence)) = self.meter().record(seen)? else {
            return Ok(Confirmation::Settled);
        };
        match self.health().check(&version, &evidence) {
            Verdict::Healthy => {
                let version = self.meter().confirm()?;
                info!(%version, "self-test passed; confirmed");
                Ok(Confirmation::Confirmed(version))
            }
            Verdict::Waiting(missing) => Ok(Confirmation::Waiting { version, missing }),
            Verdict::Unhealthy(reason) => {
                let revert = self.meter().revert(format!("self-test failed: {reason}"))?;
                self.report_revert().await?;
                Ok(Confirmation::Reverted(revert))
            }
        }
    }

    /// A version on trial whose report never reached a van (the van
    /// left, the link dropped): the van in reach now hears that the meter
    /// runs it, which is the evidence its self-test was missing. Called
    /// before an update cycle, so a meter on trial confirms (and then
    /// updates) rather than staying blocked until its starts run out.
    pub(crate) async fn retell_trial(&self) -> Result<(), EngineError> {
        let state = self.meter().state()?;
        let Some(journal) = state
            .update
            .filter(|j| j.phase == crate::state::Phase::Applied && !j.seen.van_report)
        else {
            return Ok(());
        };
        let attempt = Attempt(self.draw());
        let heard = self
            .report(
                &attempt,
                &journal.from,
                &journal.to,
                UpdateState::Updated,
                None,
                None,
            )
            .await;
        if heard {
            self.self_test(Evidence::VAN_REPORT).await?;
        }
        Ok(())
    }

    /// Posts FAILED for a revert no van has heard of yet, and forgets it
    /// once one has. An unreachable van is no error: the next report the
    /// engine sends tries again.
    pub(crate) async fn report_revert(&self) -> Result<(), EngineError> {
        let Some(revert) = self.meter().state()?.reverted else {
            return Ok(());
        };
        let attempt = Attempt(self.draw());
        let delivered = self
            .report(
                &attempt,
                &revert.from,
                &revert.to,
                UpdateState::Failed,
                Some(revert.report_error()),
                None,
            )
            .await;
        if delivered {
            self.meter().revert_reported(&revert)?;
        } else {
            warn!(reason = %revert.reason, "the van did not hear of the revert; telling the next one");
        }
        Ok(())
    }
}
