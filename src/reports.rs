//! `otavan reports sync`: upload a van's SQLite report file to the fleet's
//! PostgreSQL after the drive, exactly once.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
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
}

/// Runs a `reports` subcommand.
pub fn run(command: ReportsCommand) -> anyhow::Result<()> {
    let ReportsCommand::Sync {
        from,
        to,
        van_id,
        batch,
    } = command;
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
