//! `otavan keygen` and `otavan release sign`: the release manager's tools,
//! run offline; the van only ever carries their output.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use otavan_protocol::descriptor::KeyPair;
use otavan_server::patches::diff;
use otavan_server::sign::sign_release;

/// `otavan release ...` subcommands.
#[derive(clap::Subcommand)]
pub enum ReleaseCommand {
    /// Write a signed target descriptor (target_VERSION.json) for every version.
    Sign {
        /// The release root.
        #[arg(long)]
        root: PathBuf,
        /// The secret key (PREFIX.key from `otavan keygen`).
        #[arg(long)]
        key: PathBuf,
        /// How long meters accept the descriptors, e.g. 90d, 12h.
        #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
        expires: Duration,
    },
    /// Write the bsdiff patch from one firmware image to another (what the
    /// server offers meters).
    Diff {
        /// The image meters run now.
        #[arg(long)]
        from: PathBuf,
        /// The new image.
        #[arg(long)]
        to: PathBuf,
        /// Where to write the patch.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `otavan keygen --out PREFIX`: writes PREFIX.key (mode 0600) and PREFIX.pub.
pub fn keygen(prefix: &Path) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let keys = KeyPair::from_seed(seed);
    let secret = with_suffix(prefix, "key");
    let public = with_suffix(prefix, "pub");
    for path in [&secret, &public] {
        if path.exists() {
            bail!("{} exists; refusing to overwrite a key", path.display());
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .with_context(|| format!("cannot create {}", secret.display()))?;
    file.write_all(keys.to_file().as_bytes())?;
    file.sync_all()?;
    std::fs::write(&public, keys.public().to_file())
        .with_context(|| format!("cannot write {}", public.display()))?;
    println!(
        "wrote {} (secret, keep offline) and {}",
        secret.display(),
        public.display()
    );
    Ok(())
}

/// Runs a release subcommand.
pub fn run(command: ReleaseCommand) -> anyhow::Result<()> {
    match command {
        ReleaseCommand::Sign { root, key, expires } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let keys = KeyPair::from_text(&text)
                .with_context(|| format!("{} is not a secret key", key.display()))?;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_secs();
            let signed = sign_release(&root, &keys, now + expires.as_secs())?;
            for descriptor in &signed {
                println!(
                    "{} counter {} -> {}",
                    descriptor.version,
                    descriptor.counter,
                    descriptor.path.display()
                );
            }
        }
        ReleaseCommand::Diff { from, to, out } => {
            let read = |path: &Path| {
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
            };
            let (old, new) = (read(&from)?, read(&to)?);
            let started = std::time::Instant::now();
            let patch = diff(&old, &new).context("cannot compute the patch")?;
            std::fs::write(&out, &patch)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "{} bytes ({:.1}% of {}) in {:.3} s",
                patch.len(),
                100.0 * patch.len() as f64 / new.len().max(1) as f64,
                new.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}
