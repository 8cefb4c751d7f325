//! Whether a newly installed version works: the self-test that decides
//! between confirming it and reverting to the old one.
//!
//! MCUboot's model: a new image boots *on trial*; the application checks
//! that it works and confirms it, and an image never confirmed is
//! reverted. What "works" means is the meter's call, so it is a trait,
//! [`HealthCheck`]. The engine gathers [`Evidence`] as the new version
//! runs (kept in the update's journal, so a reboot does not lose it) and
//! asks the check after each piece; [`DefaultCheck`] wants what a meter in
//! the field must be able to do: reach the van (a report delivered) and
//! the LoRaWAN network (an uplink sent), and on Linux meters an optional
//! [`Hook`] command whose exit status decides.

use std::io;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use otavan_protocol::Version;
use serde::{Deserialize, Serialize};

/// What the new version has done since it was installed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// A report from the new version reached the van (it answered 2xx).
    #[serde(default, skip_serializing_if = "is_false")]
    pub van_report: bool,
    /// A LoRaWAN uplink went out from the new version.
    #[serde(default, skip_serializing_if = "is_false")]
    pub uplink: bool,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Evidence {
    /// A report reached the van.
    pub const VAN_REPORT: Evidence = Evidence {
        van_report: true,
        uplink: false,
    };
    /// An uplink went out.
    pub const UPLINK: Evidence = Evidence {
        van_report: false,
        uplink: true,
    };

    /// Nothing seen yet.
    pub fn is_empty(&self) -> bool {
        *self == Evidence::default()
    }

    /// Everything either has seen.
    pub fn and(self, other: Evidence) -> Evidence {
        Evidence {
            van_report: self.van_report || other.van_report,
            uplink: self.uplink || other.uplink,
        }
    }
}

/// A health check's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The new version works: confirm it.
    Healthy,
    /// Not known yet; what is still missing. The update stays on trial
    /// (and is reverted if its boots run out first).
    Waiting(String),
    /// The new version is broken, and why: revert now.
    Unhealthy(String),
}

/// Decides whether the version on trial works.
///
/// Called with the evidence gathered so far each time some arrives (and
/// at each start, [`crate::Engine::boot`]); it may also test for itself
/// (a [`Hook`]). It must not confirm or revert: the engine does, from the
/// verdict, so every way out of the trial is journalled the same way.
pub trait HealthCheck {
    /// The verdict on `version`, given `evidence`.
    fn check(&self, version: &Version, evidence: &Evidence) -> Verdict;
}

/// A closure is a check.
impl<F: Fn(&Version, &Evidence) -> Verdict> HealthCheck for F {
    fn check(&self, version: &Version, evidence: &Evidence) -> Verdict {
        self(version, evidence)
    }
}

/// The standard check: the evidence it requires, then the hook, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultCheck {
    /// Require a report delivered to the van (plain Pycom servers have no
    /// report endpoint: a meter updated only by one cannot give this).
    pub van_report: bool,
    /// Require a LoRaWAN uplink (a meter without a LoRa radio cannot).
    pub uplink: bool,
    /// A command to run once the evidence is in.
    pub hook: Option<Hook>,
}

impl Default for DefaultCheck {
    /// A meter in the field: the van and the LoRaWAN network, no hook.
    fn default() -> DefaultCheck {
        DefaultCheck {
            van_report: true,
            uplink: true,
            hook: None,
        }
    }
}

impl HealthCheck for DefaultCheck {
    fn check(&self, version: &Version, evidence: &Evidence) -> Verdict {
        let mut missing = Vec::new();
        if self.van_report && !evidence.van_report {
            missing.push("a report delivered to the van");
        }
        if self.uplink && !evidence.uplink {
            missing.push("a LoRaWAN uplink");
        }
        if !missing.is_empty() {
            return Verdict::Waiting(missing.join(" and "));
        }
        match &self.hook {
            Some(hook) => hook.run(version),
            None => Verdict::Healthy,
        }
    }
}

/// A self-test command (Linux meters): run with `sh -c`, with
/// `OTAVAN_VERSION` set to the version on trial; exit status 0 means
/// healthy, anything else (or no exit within the timeout) broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The shell command.
    pub command: String,
    /// How long it may run before it counts as failed (and is killed).
    pub timeout: Duration,
}

/// How often a running hook is looked at.
const POLL: Duration = Duration::from_millis(50);

impl Hook {
    /// `command` with a one-minute timeout.
    pub fn new(command: impl Into<String>) -> Hook {
        Hook {
            command: command.into(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Runs the command for `version`.
    pub fn run(&self, version: &Version) -> Verdict {
        match self.status(version) {
            Ok(Some(status)) if status.success() => Verdict::Healthy,
            Ok(Some(status)) => Verdict::Unhealthy(match status.code() {
                Some(code) => format!("the health hook {:?} exited with {code}", self.command),
                None => format!("the health hook {:?} was killed ({status})", self.command),
            }),
            Ok(None) => Verdict::Unhealthy(format!(
                "the health hook {:?} did not finish within {} s",
                self.command,
                self.timeout.as_secs_f64()
            )),
            Err(error) => Verdict::Unhealthy(format!(
                "the health hook {:?} could not run: {error}",
                self.command
            )),
        }
    }

    /// The exit status, `None` after the timeout (the child is killed).
    /// Waits by polling, counting the polls: the hook's own clock is the
    /// only time involved.
    fn status(&self, version: &Version) -> io::Result<Option<ExitStatus>> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("OTAVAN_VERSION", version.as_str())
            .spawn()?;
        let polls = self.timeout.as_millis().div_ceil(POLL.as_millis()).max(1);
        for _ in 0..polls {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(POLL);
        }
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        child.kill()?;
        child.wait()?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> Version {
        "1.1.0".parse().unwrap()
    }

    #[test]
    fn the_default_check_waits_for_the_van_and_the_network() {
        let check = DefaultCheck::default();
        let verdict = |e| check.check(&version(), &e);
        assert_eq!(
            verdict(Evidence::default()),
            Verdict::Waiting("a report delivered to the van and a LoRaWAN uplink".into())
        );
        assert_eq!(
            verdict(Evidence::VAN_REPORT),
            Verdict::Waiting("a LoRaWAN uplink".into())
        );
        assert_eq!(
            verdict(Evidence::VAN_REPORT.and(Evidence::UPLINK)),
            Verdict::Healthy
        );
    }

    #[test]
    fn a_hook_decides_by_its_exit_status_and_sees_the_version() {
        let check = |command: &str| {
            DefaultCheck {
                van_report: false,
                uplink: false,
                hook: Some(Hook::new(command)),
            }
            .check(&version(), &Evidence::default())
        };
        assert_eq!(check("test \"$OTAVAN_VERSION\" = 1.1.0"), Verdict::Healthy);
        let Verdict::Unhealthy(why) = check("exit 3") else {
            panic!("a failing hook is unhealthy");
        };
        assert!(why.contains("exited with 3"), "{why}");
    }

    #[test]
    fn a_hook_that_hangs_fails_after_its_timeout() {
        let hook = Hook {
            command: "sleep 30".into(),
            timeout: Duration::from_millis(200),
        };
        let Verdict::Unhealthy(why) = hook.run(&version()) else {
            panic!("a hanging hook is unhealthy");
        };
        assert!(why.contains("did not finish"), "{why}");
    }
}
