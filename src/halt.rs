//! `otavan campaign halt` and `campaign resume`: the signed halt file a
//! van without the fleet database is given, and the operator's explicit
//! resume, both in the plan's decisions log.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, bail};
use otavan_campaign::{clock, plan_csv};
use otavan_protocol::Version;
use otavan_protocol::halt::Halt;
use otavan_protocol::keys::KeyRole;
use time::OffsetDateTime;

use otavan_store::halts::HaltRecord;
use otavan_store::postgres::{PgStore, describe, parse_url};
use otavan_store::{StoreLocation, VanId};

use crate::campaign::runtime;
use crate::waves::{GateArgs, judge, log_decision};

/// `campaign halt`.
#[derive(clap::Args)]
pub struct HaltArgs {
    /// The plan (from `campaign plan --waves`).
    #[arg(long)]
    plan: PathBuf,
    #[command(flatten)]
    gate: GateArgs,
    /// The release secret key that signs the halt (`otavan keygen`); vans
    /// check it with `serve --halt-key` and its public key.
    #[arg(long, value_name = "KEY", requires = "out")]
    sign_key: Option<PathBuf>,
    /// The halt file to write (HALT.json), for vans without the fleet
    /// database.
    #[arg(long, requires = "sign_key", required_unless_present = "fleet_db")]
    out: Option<PathBuf>,
    /// The fleet database (postgres://user@host/db): the halt goes into
    /// its `halts` table, which every van on it reads.
    #[arg(long, value_name = "postgres://...")]
    fleet_db: Option<String>,
    /// Halt by hand with this reason, whatever the gates say.
    #[arg(long)]
    reason: Option<String>,
}

/// Runs `campaign halt`: a signed HALT.json when a gate has tripped (or
/// `--reason` is given), logged.
pub fn halt(args: HaltArgs) -> anyhow::Result<()> {
    let rows = plan_csv::read(&args.plan)?;
    let target: Version = args
        .gate
        .target()
        .cloned()
        .context("--target is needed: the halt names the version vans stop offering")?;
    let campaign = rows
        .first()
        .map(|r| r.wake.campaign)
        .with_context(|| format!("{} has no WAKEs: nothing to halt", args.plan.display()))?;
    let judged = judge(&args.plan, &rows, &args.gate)?;
    let tripped = judged.as_ref().and_then(|j| j.tripped());
    let reason = match (&args.reason, tripped) {
        (Some(reason), _) => format!("halted by hand: {reason}"),
        (None, Some(wave)) => wave.reason.clone(),
        (None, None) => bail!(
            "no gate of {} has tripped: give --reason to halt by hand",
            args.plan.display()
        ),
    };
    let now = OffsetDateTime::now_utc();
    let issued = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let figures = serde_json::json!({
        "wave": tripped,
        "thresholds": judged.as_ref().map(|j| j.settings),
    });
    if let (Some(key), Some(out)) = (&args.sign_key, &args.out) {
        let key = crate::release::read_secret(key, KeyRole::Release)?;
        let halt = Halt::new(campaign, target.as_str(), &reason, issued);
        let text = serde_json::to_string_pretty(&halt.sign(&key))?;
        otavan_durable::write_atomic(out, text.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!(
            "wrote {} (signed; give it to vans with serve --halt-file)",
            out.display()
        );
    }
    if let Some(url) = &args.fleet_db {
        let record = HaltRecord {
            campaign,
            target: target.to_string(),
            reason: reason.clone(),
            figures: figures.to_string(),
            halted_at: clock::format(now),
            resumed_at: None,
        };
        let (new, name) = record_halt(url, &record)?;
        match new {
            true => println!("stored the halt in the halts table of {name}"),
            false => println!("{name} already has this halt"),
        }
    }
    log_decision(
        &args.plan,
        serde_json::json!({
            "time": clock::format(now),
            "decision": "halt",
            "campaign": campaign,
            "target": target.as_str(),
            "reason": reason,
            "wave": tripped,
            "thresholds": judged.as_ref().map(|j| j.settings),
            "halt_file": args.out.as_ref().map(|p| p.display().to_string()),
            "fleet_db": args.fleet_db.is_some(),
        }),
    )?;
    println!("campaign {campaign} halted for {target}: {reason}");
    Ok(())
}

/// Stores `record` in the `halts` table of the fleet database at `url`
/// unless the campaign's target is already halted there: whether it was
/// new, and the database's name.
///
/// # Errors
///
/// Not a postgres:// address, or the database's error.
pub(crate) fn record_halt(url: &str, record: &HaltRecord) -> anyhow::Result<(bool, String)> {
    runtime()?.block_on(async {
        let (store, name) = fleet(url).await?;
        let active = store
            .active_halts()
            .await
            .with_context(|| format!("cannot read the halts of {name}"))?;
        if active
            .iter()
            .any(|h| h.campaign == record.campaign && h.target == record.target)
        {
            return Ok((false, name));
        }
        store
            .record_halt(record)
            .await
            .with_context(|| format!("cannot store the halt in {name}"))?;
        Ok((true, name))
    })
}

/// The fleet database at `url`, connected, and its name (no password).
async fn fleet(url: &str) -> anyhow::Result<(PgStore, String)> {
    let StoreLocation::Postgres(url) = StoreLocation::parse(url) else {
        bail!("--fleet-db {url:?} is not a postgres:// address");
    };
    let config = parse_url(&url)?;
    let name = describe(&config);
    let store = PgStore::connect(config, VanId::new("campaign").context("a van id")?)
        .await
        .with_context(|| format!("cannot reach {name}"))?;
    Ok((store, name))
}

/// `campaign resume`.
#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The plan whose campaign resumes.
    #[arg(long)]
    plan: PathBuf,
    /// The wave whose tripped gate opens (its number, from 2).
    #[arg(long)]
    wave: usize,
    /// Why (logged).
    #[arg(long)]
    reason: String,
    /// The fleet database whose halts of this campaign and --target are
    /// marked resumed (vans on it offer the target again).
    #[arg(long, value_name = "postgres://...", requires = "target")]
    fleet_db: Option<String>,
    /// The halted target, with --fleet-db.
    #[arg(long)]
    target: Option<Version>,
}

/// Runs `campaign resume`: the wave's gate opens even though its figures
/// trip it, logged with the reason.
pub fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    let rows = plan_csv::read(&args.plan)?;
    if args.wave < 2 {
        bail!("--wave {}: the first wave has no gate to resume", args.wave);
    }
    let now = OffsetDateTime::now_utc();
    if let (Some(url), Some(target), Some(row)) = (&args.fleet_db, &args.target, rows.first()) {
        let campaign = row.wake.campaign;
        let (resumed, name) = runtime()?.block_on(async {
            let (store, name) = fleet(url).await?;
            let n = store
                .resume_halts(campaign, target.as_str(), &clock::format(now))
                .await
                .with_context(|| format!("cannot resume the halt in {name}"))?;
            anyhow::Ok((n, name))
        })?;
        println!("{resumed} halt(s) of campaign {campaign} for {target} resumed in {name}");
    }
    log_decision(
        &args.plan,
        serde_json::json!({
            "time": clock::format(now),
            "decision": "resume",
            "wave": args.wave,
            "reason": args.reason,
        }),
    )?;
    println!(
        "wave {} of {} resumed: {} (a van given HALT.json keeps it until it is removed)",
        args.wave,
        args.plan.display(),
        args.reason
    );
    Ok(())
}
