//! `otavan device ...`: a meter on this machine's file system.

use std::path::PathBuf;

use anyhow::Context;
use otavan_client::device::{Device, InitOptions, init};
use otavan_client::{EngineConfig, Outcome, Recovery};
use otavan_protocol::Version;

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
        } => {
            let device = open(&root)?;
            let mut config = EngineConfig::new(device_id.unwrap_or_else(host_name));
            config.allow_downgrade = allow_downgrade;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            match runtime.block_on(device.update(&server, config))? {
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
                });
                println!("{value}");
            } else {
                println!("version:         {}", status.version);
                println!("pending confirm: {}", status.pending_confirm);
                if let Some(previous) = &status.rollback_version {
                    println!("rollback to:     {previous}");
                }
                println!("boot slot:       {}", status.boot_slot.name());
                println!(
                    "firmware sha1:   {}",
                    status.firmware_sha1.as_deref().unwrap_or("(empty slot)")
                );
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

/// Opens the meter, telling the operator when a power cut was recovered.
fn open(root: &std::path::Path) -> anyhow::Result<Device> {
    let (device, recovery) = Device::open(root)?;
    if let Recovery::Undone { version } = recovery {
        eprintln!("otavan: an interrupted update was undone; the meter is at {version}");
    }
    Ok(device)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "otavan-meter".to_owned())
}
