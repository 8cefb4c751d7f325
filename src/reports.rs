//! `otavan reports sync`: upload a van's SQLite report file to the fleet's
//! PostgreSQL after the drive, exactly once; `otavan reports keygen` and
//! `meter-key`: the fleet's report secret and each meter's key derived
//! from it at provisioning (docs/security.md).

use std::fs::OpenOptions;
use std::io::Write;
use std::ops::ControlFlow;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use otavan_protocol::report::check_device_id;
use otavan_protocol::report_auth::{BadKey, FleetSecret, KEY_BYTES, MeterKey};
use otavan_store::postgres::{PgStore, describe, parse_url};
use otavan_store::sync::{SyncOptions, sync};
use otavan_store::{ReportStore, StoreLocation, VanId};

/// `otavan reports ...` subcommands.
#[derive(clap::Subcommand)]
pub enum ReportsCommand {
    /// Upload a van's report file to the fleet database; rows already there
    /// are skipped, so running it again (or after a cut) adds nothing twice.
    Sync {
        /// The van's SQLite file (`otavan serve --db`).
        #[arg(long)]
        from: PathBuf,
        /// The fleet database, postgres://user[:password]@host:port/dbname
        /// (from $OTAVAN_FLEET_DB when not given).
        #[arg(long, env = "OTAVAN_FLEET_DB", hide_env_values = true)]
        to: String,
        /// Van id for rows stored before otavan recorded one (default: the
        /// host name).
        #[arg(long)]
        van_id: Option<VanId>,
        /// Rows per INSERT statement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
        batch: u32,
    },
    /// Create the fleet's report secret (64 hex digits, mode 0600): vans
    /// check signatures with it (`otavan serve --report-key`), provisioning
    /// derives each meter's key from it. Whoever holds it can sign reports
    /// for any meter.
    Keygen {
        /// The file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Derive one meter's report key from the fleet secret, at
    /// provisioning (`otavan device update --report-key`).
    MeterKey {
        /// The fleet's report secret (`otavan reports keygen`).
        #[arg(long)]
        fleet_key: PathBuf,
        /// The device id the meter reports as.
        #[arg(long)]
        device_id: String,
        /// The file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Reads a report key file (64 hex digits).
pub fn read_key<K>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<K, BadKey>,
) -> anyhow::Result<K> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the report key {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not a report key", path.display()))
}

/// Writes a key file readable by its owner only, refusing to overwrite.
fn write_key(path: &Path, hex: &str) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    file.write_all(format!("{hex}\n").as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Runs a `reports` subcommand.
pub fn run(command: ReportsCommand) -> anyhow::Result<()> {
    match command {
        ReportsCommand::Sync {
            from,
            to,
            van_id,
            batch,
        } => sync_reports(from, to, van_id, batch),
        ReportsCommand::Keygen { out } => {
            let mut secret = [0u8; KEY_BYTES];
            getrandom::fill(&mut secret)
                .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
            write_key(&out, &FleetSecret::from_bytes(secret).to_hex())?;
            println!(
                "wrote the fleet report secret {} (keep it on vans and the provisioning station only)",
                out.display()
            );
            Ok(())
        }
        ReportsCommand::MeterKey {
            fleet_key,
            device_id,
            out,
        } => {
            let fleet = read_key(&fleet_key, FleetSecret::from_hex)?;
            check_device_id(&device_id).with_context(|| format!("--device-id {device_id:?}"))?;
            let key: MeterKey = fleet.meter_key(&device_id);
            write_key(&out, &key.to_hex())?;
            println!("wrote the report key of {device_id} to {}", out.display());
            Ok(())
        }
    }
}

fn sync_reports(
    from: PathBuf,
    to: String,
    van_id: Option<VanId>,
    batch: u32,
) -> anyhow::Result<()> {
    let StoreLocation::Postgres(url) = StoreLocation::parse(&to) else {
        bail!("--to must be a postgres:// address, not {to:?}");
    };
    let config = parse_url(&url)?;
    if !from.is_file() {
        bail!("{}: no such report file", from.display());
    }
    let van = match van_id {
        Some(van) => van,
        None => {
            VanId::from_hostname().context("the host name is not a valid van id; pass --van-id")?
        }
    };
    let store =
        ReportStore::open(&from).with_context(|| format!("cannot open {}", from.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let target = describe(&config);
    let done = runtime.block_on(async {
        let fleet = PgStore::connect(config, van.clone())
            .await
            .with_context(|| format!("cannot reach {target}"))?;
        let options = SyncOptions { batch, van };
        sync(Arc::new(store), &fleet, &options, |progress| {
            tracing::debug!(
                read = progress.read,
                inserted = progress.inserted,
                "batch synced"
            );
            ControlFlow::Continue(())
        })
        .await
        .with_context(|| format!("sync to {target} stopped"))
    })?;
    println!(
        "synced {} to {target}: {} reports, {} new, {} already there",
        from.display(),
        done.read,
        done.inserted,
        done.already_there()
    );
    Ok(())
}
