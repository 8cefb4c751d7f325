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
    #[arg(long, value_name = "KEY")]
    sign_key: PathBuf,
    /// The halt file to write (HALT.json).
    #[arg(long)]
    out: PathBuf,
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
    let key = crate::release::read_secret(&args.sign_key, KeyRole::Release)?;
    let now = OffsetDateTime::now_utc();
    let issued = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    let halt = Halt::new(campaign, target.as_str(), &reason, issued);
    let text = serde_json::to_string_pretty(&halt.sign(&key))?;
    otavan_durable::write_atomic(&args.out, text.as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
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
            "halt_file": args.out.display().to_string(),
        }),
    )?;
    println!("campaign {campaign} halted for {target}: {reason}");
    println!(
        "wrote {} (signed; give it to vans with serve --halt-file)",
        args.out.display()
    );
    Ok(())
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
}

/// Runs `campaign resume`: the wave's gate opens even though its figures
/// trip it, logged with the reason.
pub fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    plan_csv::read(&args.plan)?;
    if args.wave < 2 {
        bail!("--wave {}: the first wave has no gate to resume", args.wave);
    }
    log_decision(
        &args.plan,
        serde_json::json!({
            "time": clock::format(OffsetDateTime::now_utc()),
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
