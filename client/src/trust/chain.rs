//! The chain of signed metadata: root certificate, descriptors,
//! timestamp; which keys sign, what they say, until when.

use std::io;

use otavan_protocol::descriptor::{DescriptorError, SignedDescriptor, TargetDescriptor};
use otavan_protocol::keys::PublicKey;
use otavan_protocol::root::RootCertificate;
use otavan_protocol::signed::Envelope;
use otavan_protocol::timestamp::Timestamp;
use otavan_protocol::{Manifest, Version};
use tracing::{info, warn};

use super::fetch::{MAX_DESCRIPTOR, MAX_METADATA, fetch_json};
use super::{Anchor, installed, refuse};
use crate::engine::EngineError;
use crate::state::certificate_file;
use crate::storage::{Storage, write_atomic};
use crate::transport::Transport;

/// What the checks need to know of the meter.
pub struct Checks<'a> {
    /// The meter's storage (kept certificate and descriptors).
    pub storage: &'a dyn Storage,
    /// The installed version.
    pub version: &'a Version,
    /// The highest release counter installed so far.
    pub highest_counter: u64,
    /// The meter's trusted time, Unix seconds.
    pub now: u64,
}

/// A target the release keys vouch for, and what the meter holds.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The target's descriptor.
    pub target: TargetDescriptor,
    /// As served, to keep once installed.
    pub target_signed: SignedDescriptor,
    /// The installed version's descriptor: the kept one, or the one the
    /// van serves (`None`: neither exists).
    pub installed: Option<TargetDescriptor>,
    /// The van's descriptor of the installed version, when the meter kept
    /// none: kept beside the target's, so a rollback finds it.
    pub installed_signed: Option<SignedDescriptor>,
}

impl Verified {
    /// Keeps the descriptors durably, before the apply.
    pub fn keep(&self, storage: &dyn Storage, installed: &Version) -> io::Result<()> {
        if let Some(signed) = &self.installed_signed {
            installed::keep(storage, installed, signed)?;
        }
        let target = Version::parse(&self.target.version).map_err(io::Error::other)?;
        installed::keep(storage, &target, &self.target_signed)
    }
}

/// Who may sign: the single key, or the certified release keys.
enum Signers {
    Key(PublicKey),
    Certified {
        certificate: RootCertificate,
        keys: Vec<PublicKey>,
    },
}

impl Signers {
    fn open(&self, signed: &SignedDescriptor) -> Result<TargetDescriptor, DescriptorError> {
        match self {
            Signers::Key(key) => signed.verify(key),
            Signers::Certified { certificate, keys } => {
                signed.verify_threshold(keys, certificate.threshold)
            }
        }
    }
}

/// Fetches and checks the metadata `manifest` names, for a meter with
/// `anchor`: steps 1 to 3 of [`super`].
pub async fn verify<T: Transport>(
    transport: &T,
    manifest: &Manifest,
    anchor: &Anchor,
    checks: &Checks<'_>,
) -> Result<Verified, EngineError> {
    let signers = match anchor {
        Anchor::Key(key) => Signers::Key(*key),
        Anchor::Root(root) => {
            let certificate = certificate(transport, manifest, root, checks).await?;
            let keys = certificate
                .public_keys()
                .map_err(|e| refuse(format!("root certificate: {e}")))?;
            Signers::Certified { certificate, keys }
        }
    };
    let url = manifest
        .descriptor
        .as_deref()
        .ok_or_else(|| refuse("unsigned manifest: this meter only installs signed releases"))?;
    let target_signed: SignedDescriptor =
        fetch_json(transport, url, MAX_DESCRIPTOR, "signed descriptor").await?;
    let target = signers
        .open(&target_signed)
        .map_err(|e| refuse(e.to_string()))?;
    if checks.now >= target.expires {
        return Err(refuse(format!(
            "the signed descriptor expired at Unix time {}",
            target.expires
        )));
    }
    check_counter(&target, checks.highest_counter, &signers)?;
    if let Signers::Certified { certificate, keys } = &signers {
        check_timestamp(transport, manifest, certificate, keys, &target, checks.now).await?;
    }
    let (installed, installed_signed) = match installed::load(checks.storage, checks.version)? {
        Some(kept) => (Some(kept), None),
        None => match &manifest.previous_descriptor {
            Some(url) => {
                let signed: SignedDescriptor = fetch_json(
                    transport,
                    url,
                    MAX_DESCRIPTOR,
                    "signed descriptor of the installed version",
                )
                .await?;
                let descriptor = signers.open(&signed).map_err(|e| {
                    refuse(format!(
                        "the descriptor of the installed {}: {e}",
                        checks.version
                    ))
                })?;
                if descriptor.version != checks.version.as_str() {
                    return Err(refuse(format!(
                        "the van's descriptor of the installed {} describes {}",
                        checks.version, descriptor.version
                    )));
                }
                (Some(descriptor), Some(signed))
            }
            None => (None, None),
        },
    };
    Ok(Verified {
        target,
        target_signed,
        installed,
        installed_signed,
    })
}

/// Counters never go back, and in root mode never jump further than the
/// certificate allows (a stolen key signing a huge counter would lock
/// every later genuine release out).
fn check_counter(
    target: &TargetDescriptor,
    highest: u64,
    signers: &Signers,
) -> Result<(), EngineError> {
    if target.counter < highest {
        return Err(refuse(format!(
            "release counter {} is below {highest} already installed (rollback refused)",
            target.counter
        )));
    }
    if let Signers::Certified { certificate, .. } = signers {
        let jump = target.counter - highest;
        if jump > certificate.max_counter_jump {
            return Err(refuse(format!(
                "release counter {} is {jump} above {highest} already installed; the root certificate (version {}) allows at most {} (fast-forward refused)",
                target.counter, certificate.version, certificate.max_counter_jump
            )));
        }
    }
    Ok(())
}

/// The root certificate to trust now: the highest of the kept one and the
/// van's, verified with the root key; a higher one from the van is kept
/// before anything else happens.
async fn certificate<T: Transport>(
    transport: &T,
    manifest: &Manifest,
    root: &PublicKey,
    checks: &Checks<'_>,
) -> Result<RootCertificate, EngineError> {
    let kept = kept_certificate(checks.storage, root)?;
    let offered = match &manifest.root {
        Some(url) => {
            let envelope: Envelope =
                fetch_json(transport, url, MAX_METADATA, "root certificate").await?;
            let certificate = RootCertificate::open(&envelope, root)
                .map_err(|e| refuse(format!("the van's {e}")))?;
            Some((certificate, envelope))
        }
        None => None,
    };
    let certificate = match (kept, offered) {
        (None, None) => {
            return Err(refuse(
                "no root certificate: the van serves no root.json and this meter holds none",
            ));
        }
        (Some(kept), None) => kept,
        (kept, Some((offered, envelope))) => match kept {
            Some(kept) if kept.version > offered.version => {
                warn!(
                    kept = kept.version,
                    offered = offered.version,
                    "the van serves an older root certificate; keeping the newer"
                );
                kept
            }
            Some(kept) if kept.version == offered.version => {
                if kept != offered {
                    return Err(refuse(format!(
                        "the van's root certificate version {} differs from the one this meter holds",
                        offered.version
                    )));
                }
                kept
            }
            _ => {
                let json = serde_json::to_vec_pretty(&envelope).expect("envelopes serialise");
                write_atomic(checks.storage, &certificate_file(), &json)?;
                info!(
                    version = offered.version,
                    keys = offered.keys.len(),
                    "following a new root certificate"
                );
                offered
            }
        },
    };
    if checks.now >= certificate.expires {
        return Err(refuse(format!(
            "the root certificate (version {}) expired at Unix time {}",
            certificate.version, certificate.expires
        )));
    }
    Ok(certificate)
}

/// The certificate the meter kept, verified again with the root key.
fn kept_certificate(
    storage: &dyn Storage,
    root: &PublicKey,
) -> Result<Option<RootCertificate>, EngineError> {
    let bytes = match storage.read(&certificate_file()) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |why: String| {
        EngineError::Storage(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}", certificate_file()),
        ))
    };
    let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    RootCertificate::open(&envelope, root)
        .map(Some)
        .map_err(|e| corrupt(e.to_string()))
}

/// The timestamp bounds a freeze: it must be unexpired and name no newer
/// release than the target.
async fn check_timestamp<T: Transport>(
    transport: &T,
    manifest: &Manifest,
    certificate: &RootCertificate,
    keys: &[PublicKey],
    target: &TargetDescriptor,
    now: u64,
) -> Result<(), EngineError> {
    let url = manifest.timestamp.as_deref().ok_or_else(|| {
        refuse("the van serves no signed timestamp (timestamp.json): this meter needs one to know the release is current")
    })?;
    let envelope: Envelope = fetch_json(transport, url, MAX_METADATA, "signed timestamp").await?;
    let timestamp = Timestamp::open(&envelope, keys, certificate.threshold)
        .map_err(|e| refuse(e.to_string()))?;
    if now >= timestamp.expires {
        return Err(refuse(format!(
            "the signed timestamp expired at Unix time {} (a van serving an old release?)",
            timestamp.expires
        )));
    }
    if target.counter < timestamp.counter {
        return Err(refuse(format!(
            "the signed timestamp names release {} (counter {}); the van offers {} (counter {}), an older one (freeze refused)",
            timestamp.version, timestamp.counter, target.version, target.counter
        )));
    }
    Ok(())
}
