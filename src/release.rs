//! `otavan keygen` and `otavan release ...`: the release manager's and the
//! root key holder's tools, run offline; the van only ever carries their
//! output.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use otavan_protocol::keys::{KeyPair, KeyRole, PublicKey};
use otavan_server::certify::{Certified, Terms, certify, rotate};
use otavan_server::patches::diff;
use otavan_server::sign::{Signing, sign_release};

/// A key's role, as `--role` names it.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Role {
    /// Signs descriptors and timestamps.
    Release,
    /// Certifies release keys (root.json); keep it offline.
    Root,
}

impl From<Role> for KeyRole {
    fn from(role: Role) -> KeyRole {
        match role {
            Role::Release => KeyRole::Release,
            Role::Root => KeyRole::Root,
        }
    }
}

/// What a root certificate says, as flags (shared by certify and
/// rotate-key).
#[derive(clap::Args)]
pub struct CertificateArgs {
    /// The release root (root.json is written there).
    #[arg(long)]
    root: PathBuf,
    /// The root secret key (PREFIX.key from `otavan keygen --role root`).
    #[arg(long)]
    root_key: PathBuf,
    /// A release public key to certify (PREFIX.pub); repeat for several.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// How many certified keys must sign each descriptor and timestamp
    /// (default: 1, or the current certificate's).
    #[arg(long)]
    threshold: Option<u32>,
    /// The largest step of the release counter a meter accepts (default:
    /// 100, or the current certificate's).
    #[arg(long)]
    max_counter_jump: Option<u64>,
    /// How long meters accept the certificate, e.g. 730d.
    #[arg(long, default_value = "730d", value_parser = humantime::parse_duration)]
    expires: Duration,
}

/// `otavan release ...` subcommands.
#[derive(clap::Subcommand)]
pub enum ReleaseCommand {
    /// Write a signed target descriptor (target_VERSION.json) for every
    /// version, keeping the counter of every version already signed, and
    /// the timestamp (timestamp.json) naming the latest.
    Sign {
        /// The release root.
        #[arg(long)]
        root: PathBuf,
        /// A release secret key (PREFIX.key from `otavan keygen`); repeat
        /// to sign with several (a certificate's threshold).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// How long meters accept the descriptors, e.g. 90d, 12h.
        #[arg(long, default_value = "365d", value_parser = humantime::parse_duration)]
        expires: Duration,
        /// How long meters accept the timestamp: the longest a van can
        /// keep a meter on an old release once a newer one is signed.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        timestamp_expires: Duration,
    },
    /// Certify release keys with the root key: write root.json, one
    /// version above the one there.
    Certify(CertificateArgs),
    /// Replace certified release keys (a stolen or retired key): write
    /// root.json one version up, without the old keys; meters that see it
    /// refuse everything the old keys sign.
    RotateKey(CertificateArgs),
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

/// `otavan keygen --out PREFIX [--role ROLE]`: writes PREFIX.key (mode
/// 0600) and PREFIX.pub.
pub fn keygen(prefix: &Path, role: Role) -> anyhow::Result<()> {
    let role = KeyRole::from(role);
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
    file.write_all(keys.to_file_as(role).as_bytes())?;
    file.sync_all()?;
    std::fs::write(&public, keys.public().to_file_as(role))
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
        ReleaseCommand::Sign {
            root,
            keys,
            expires,
            timestamp_expires,
        } => {
            let keys = keys
                .iter()
                .map(|path| read_secret(path, KeyRole::Release))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let keys: Vec<&KeyPair> = keys.iter().collect();
            let now = unix_now()?;
            let signing = Signing {
                keys: &keys,
                now,
                expires: now + expires.as_secs(),
                timestamp_expires: now + timestamp_expires.as_secs(),
            };
            let signed = sign_release(&root, &signing)?;
            for descriptor in &signed {
                println!(
                    "{} counter {}{} -> {}",
                    descriptor.version,
                    descriptor.counter,
                    if descriptor.new { " (new)" } else { "" },
                    descriptor.path.display()
                );
            }
            if let Some(latest) = signed.iter().max_by_key(|s| s.counter) {
                println!(
                    "timestamp: latest {} counter {}, valid {}",
                    latest.version,
                    latest.counter,
                    humantime::format_duration(timestamp_expires)
                );
            }
        }
        ReleaseCommand::Certify(args) => {
            let (root, key, terms) = certificate_request(&args)?;
            report(&certify(&root, &key, &terms)?);
        }
        ReleaseCommand::RotateKey(args) => {
            let (root, key, terms) = certificate_request(&args)?;
            report(&rotate(&root, &key, &terms)?);
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

/// The release root, the root key and the terms the flags ask for.
fn certificate_request(args: &CertificateArgs) -> anyhow::Result<(PathBuf, KeyPair, Terms)> {
    let root_key = read_secret(&args.root_key, KeyRole::Root)?;
    let keys = args
        .keys
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            PublicKey::from_text_as(&text, KeyRole::Release)
                .with_context(|| format!("{} is not a release public key", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let terms = Terms {
        keys,
        threshold: args.threshold,
        max_counter_jump: args.max_counter_jump,
        expires: unix_now()? + args.expires.as_secs(),
    };
    Ok((args.root.clone(), root_key, terms))
}

fn report(certified: &Certified) {
    let certificate = &certified.certificate;
    println!(
        "root.json version {}: {} key(s), threshold {}, counter jump at most {} -> {}",
        certificate.version,
        certificate.keys.len(),
        certificate.threshold,
        certificate.max_counter_jump,
        certified.path.display()
    );
    for key in &certificate.keys {
        println!("certified {key}");
    }
    for key in &certified.revoked {
        println!("revoked {key}");
    }
}

/// The secret key of `role` in the key file at `path`.
pub(crate) fn read_secret(path: &Path, role: KeyRole) -> anyhow::Result<KeyPair> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    KeyPair::from_text_as(&text, role).with_context(|| {
        let what = match role {
            KeyRole::Release => "release secret key",
            KeyRole::Root => "root secret key",
        };
        format!("{} is not a {what}", path.display())
    })
}

fn unix_now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}
