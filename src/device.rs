//! `otavan device ...`: a meter on this machine's file system.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use otavan_client::confirm::Confirmation;
use otavan_client::device::{Device, InitOptions, Trial, init};
use otavan_client::health::{DefaultCheck, Hook};
use otavan_client::{EngineConfig, Outcome, Recovery};
use otavan_protocol::Version;
use otavan_protocol::report_auth::MeterKey;

/// Device subcommands.
#[derive(clap::Subcommand)]
pub enum DeviceCommand {
    /// Provision a meter: record VERSION as current and FILE as the booted image.
    Init {
        /// The meter's root (its file system; state goes to ROOT/.otavan/).
        #[arg(long)]
        root: PathBuf,
        /// The version the files under ROOT are at.
        #[arg(long)]
        version: Version,
        /// The firmware image the meter runs now.
        #[arg(long)]
        firmware: Option<PathBuf>,
        /// The release-signing public key (PREFIX.pub): the meter then
        /// installs only releases signed with its secret half.
        #[arg(long, conflicts_with = "root_key")]
        public_key: Option<PathBuf>,
        /// The root public key (PREFIX.pub from `otavan keygen --role
        /// root`): the meter then installs only what the release keys its
        /// root certificate names sign.
        #[arg(long)]
        root_key: Option<PathBuf>,
    },
    /// Run one update cycle against a server.
    Update {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
        /// The van's server, e.g. http://192.168.4.1:8000.
        #[arg(long)]
        server: String,
        /// The identifier used in reports (default: this machine's host name).
        #[arg(long)]
        device_id: Option<String>,
        /// Let an unsigned meter go to a lower version (a signed meter
        /// never does).
        #[arg(long)]
        allow_downgrade: bool,
        /// The meter's report key (`otavan reports meter-key`, for its
        /// device id): reports are signed with it.
        #[arg(long)]
        report_key: Option<PathBuf>,
        /// How long the meter's WiFi window lasts: a cycle a cut link
        /// failed is tried again (resuming its downloads, 1 s, 2, 4, then
        /// every 8 s) until no attempt fits before the window closes; the
        /// update is abandoned 10 s after the window closes. 0 (the
        /// default) makes one attempt, however long it takes.
        #[arg(long, default_value_t = 0, value_name = "SECONDS")]
        window_s: u64,
        /// Spread the apply's file steps over SECONDS, as a meter's flash
        /// writes take (the rehearsal's wifi.apply_s is 5): the same steps,
        /// slower, so that a power cut can land mid-apply. 0 (the
        /// default): as fast as this machine's disk.
        #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
        apply_s: f64,
    },
    /// Show the meter's version, pending state and firmware.
    Status {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a meter runs at every start: count the start of an update on
    /// trial, revert it once its starts ran out, else run its self-test and
    /// confirm it when it passes.
    Boot {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
        /// Starts an update may take unconfirmed before it is reverted.
        #[arg(long, default_value_t = 3)]
        max_boots: u32,
        #[command(flatten)]
        trial: TrialArgs,
    },
    /// Run the self-test of an update on trial now: confirm it when it
    /// passes, revert it when it fails (exit status 0 only once confirmed).
    Check {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
        #[command(flatten)]
        trial: TrialArgs,
    },
    /// Make a pending update permanent.
    Confirm {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
    },
    /// Restore the version before the pending update.
    Rollback {
        /// The meter's root.
        #[arg(long)]
        root: PathBuf,
    },
}

/// How `boot` and `check` test an update on trial.
#[derive(clap::Args)]
pub struct TrialArgs {
    /// A self-test command, run with `sh -c` (OTAVAN_VERSION is the version
    /// on trial): exit status 0 passes, anything else reverts the update.
    #[arg(long)]
    hook: Option<String>,
    /// Seconds the hook may run before it counts as failed.
    #[arg(long, default_value_t = 60)]
    hook_timeout: u64,
    /// Do not require that the van heard the new version (a plain Pycom
    /// server has no /report).
    #[arg(long)]
    no_van_report: bool,
    /// The van to tell of a revert (otherwise the next `update` tells it).
    #[arg(long)]
    server: Option<String>,
    /// The identifier used in reports (default: this machine's host name).
    #[arg(long)]
    device_id: Option<String>,
    /// The meter's report key: reports are signed with it.
    #[arg(long)]
    report_key: Option<PathBuf>,
}

impl TrialArgs {
    fn check(&self) -> DefaultCheck {
        DefaultCheck {
            van_report: !self.no_van_report,
            // No LoRaWAN radio here.
            uplink: false,
            hook: self.hook.as_ref().map(|command| Hook {
                command: command.clone(),
                timeout: Duration::from_secs(self.hook_timeout),
            }),
        }
    }
}

/// Runs a device subcommand.
pub fn run(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Init {
            root,
            version,
            firmware,
            public_key,
            root_key,
        } => {
            let options = InitOptions {
                firmware: firmware.as_deref(),
                public_key: public_key.as_deref(),
                root_key: root_key.as_deref(),
            };
            init(&root, &version, &options)?;
            if public_key.is_none() && root_key.is_none() {
                eprintln!(
                    "otavan: warning: no --root-key or --public-key: this meter trusts any van and installs whatever a server offers"
                );
            }
            println!("provisioned {} at version {version}", root.display());
        }
        DeviceCommand::Update {
            root,
            server,
            device_id,
            allow_downgrade,
            report_key,
            window_s,
            apply_s,
        } => {
            let apply = Duration::try_from_secs_f64(apply_s)
                .map_err(|e| anyhow::anyhow!("--apply-s {apply_s}: {e}"))?;
            let device = signing(open(&root)?, report_key.as_deref())?.with_apply_time(apply);
            let mut config = EngineConfig::new(device_id.unwrap_or_else(host_name));
            config.allow_downgrade = allow_downgrade;
            match runtime()?.block_on(device.update(
                &server,
                config,
                Duration::from_secs(window_s),
            ))? {
                Outcome::UpToDate { version } => println!("already current at {version}"),
                Outcome::Updated { from, to, bytes } => {
                    println!(
                        "updated {from} -> {to} ({bytes} bytes downloaded); confirm or roll back"
                    )
                }
            }
        }
        DeviceCommand::Status { root, json } => {
            let status = open(&root)?.status()?;
            if json {
                let value = serde_json::json!({
                    "version": status.version,
                    "pending_confirm": status.pending_confirm,
                    "rollback_version": status.rollback_version,
                    "boot_slot": status.boot_slot,
                    "firmware_sha1": status.firmware_sha1,
                    "boots": status.boots,
                    "reverted": status.reverted,
                });
                println!("{value}");
            } else {
                println!("version:         {}", status.version);
                println!("pending confirm: {}", status.pending_confirm);
                if let Some(previous) = &status.rollback_version {
                    println!("rollback to:     {previous}");
                    println!("starts on trial: {}", status.boots);
                }
                if let Some(revert) = &status.reverted {
                    println!("reverted:        {} ({})", revert.to, revert.reason);
                }
                println!("boot slot:       {}", status.boot_slot.name());
                println!(
                    "firmware sha1:   {}",
                    status.firmware_sha1.as_deref().unwrap_or("(empty slot)")
                );
            }
        }
        DeviceCommand::Boot {
            root,
            max_boots,
            trial,
        } => {
            let device = signing(open(&root)?, trial.report_key.as_deref())?;
            let device_id = trial.device_id.clone().unwrap_or_else(host_name);
            let options = Trial {
                server: trial.server.as_deref(),
                device_id: &device_id,
                check: trial.check(),
                max_boots,
            };
            let result = runtime()?.block_on(device.boot(&options))?;
            if let Some((version, missing)) = settled(&device, result)? {
                println!(
                    "{version} is on trial (start {} of {max_boots}): waiting for {missing}",
                    device.status()?.boots
                );
            }
        }
        DeviceCommand::Check { root, trial } => {
            let device = signing(open(&root)?, trial.report_key.as_deref())?;
            let device_id = trial.device_id.clone().unwrap_or_else(host_name);
            let options = Trial {
                server: trial.server.as_deref(),
                device_id: &device_id,
                check: trial.check(),
                max_boots: u32::MAX,
            };
            let result = runtime()?.block_on(device.check(&options))?;
            if let Some((version, missing)) = settled(&device, result)? {
                anyhow::bail!("{version} is not confirmed: it is on trial, waiting for {missing}");
            }
        }
        DeviceCommand::Confirm { root } => {
            let version = open(&root)?.confirm()?;
            println!("confirmed {version}");
        }
        DeviceCommand::Rollback { root } => {
            let version = open(&root)?.rollback()?;
            println!("rolled back to {version}");
        }
    }
    Ok(())
}

/// Opens the meter, telling the operator when a power cut was recovered
/// or the files followed the bootloader back.
fn open(root: &std::path::Path) -> anyhow::Result<Device> {
    let (device, recovery) = Device::open(root)?;
    match recovery {
        Recovery::Clean => {}
        Recovery::Undone { version } => {
            eprintln!("otavan: an interrupted update was undone; the meter is at {version}")
        }
        Recovery::Reverted(revert) => eprintln!("otavan: {}", revert.report_error()),
    }
    Ok(device)
}

/// The meter signing its reports with the key in `report_key`, if given.
fn signing(device: Device, report_key: Option<&Path>) -> anyhow::Result<Device> {
    Ok(match report_key {
        Some(path) => device.with_report_key(crate::reports::read_key(path, MeterKey::from_hex)?),
        None => device,
    })
}

/// Prints how a trial ended (a revert is an error: exit status 1), or
/// returns the version still on trial and what its self-test awaits.
fn settled(device: &Device, result: Confirmation) -> anyhow::Result<Option<(Version, String)>> {
    match result {
        Confirmation::Settled => println!(
            "no update awaits confirmation; at {}",
            device.status()?.version
        ),
        Confirmation::Confirmed(version) => {
            println!("{version} passed its self-test: confirmed")
        }
        Confirmation::Waiting { version, missing } => return Ok(Some((version, missing))),
        Confirmation::Reverted(revert) => anyhow::bail!("{}", revert.report_error()),
    }
    Ok(None)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "otavan-meter".to_owned())
}
