//! Checking an update against the release manager's signed descriptor.
//!
//! A meter provisioned with a public key accepts a manifest only if the
//! target's descriptor verifies with that key, has not expired, carries a
//! release counter no lower than the highest the meter has installed, and
//! covers everything the manifest asks for: every installed file and the
//! firmware by SHA-256 and size, no deletion of a file the target has, and
//! no file of the target left different on the meter. The server and the
//! van are not trusted at all; only the key is.

use std::io;

use otavan_protocol::Manifest;
use otavan_protocol::descriptor::{PublicKey, SignedDescriptor, TargetDescriptor};

use crate::digest::digest;
use crate::engine::EngineError;
use crate::plan::UpdatePlan;
use crate::storage::Storage;
use crate::transport::{Sink, Transport};

/// Largest accepted descriptor.
const MAX_DESCRIPTOR: usize = 4 * 1024 * 1024;

/// Collects a small download in memory, refusing more than `limit` bytes.
struct MemorySink {
    data: Vec<u8>,
    limit: usize,
}

impl Sink for MemorySink {
    fn restart(&mut self) -> io::Result<()> {
        self.data.clear();
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.data.len() + data.len() > self.limit {
            return Err(io::Error::other("descriptor larger than 4 MiB"));
        }
        self.data.extend_from_slice(data);
        Ok(())
    }
}

fn refuse(reason: impl Into<String>) -> EngineError {
    EngineError::Untrusted(reason.into())
}

/// Fetches the descriptor the manifest names and verifies its signature.
pub async fn fetch_descriptor<T: Transport>(
    transport: &T,
    manifest: &Manifest,
    key: &PublicKey,
) -> Result<TargetDescriptor, EngineError> {
    let url = manifest
        .descriptor
        .as_deref()
        .ok_or_else(|| refuse("unsigned manifest: this meter only installs signed releases"))?;
    let mut sink = MemorySink {
        data: Vec::new(),
        limit: MAX_DESCRIPTOR,
    };
    transport
        .fetch(url, 0, &mut sink)
        .await
        .map_err(|e| refuse(format!("cannot fetch the signed descriptor: {e}")))?;
    let signed: SignedDescriptor = serde_json::from_slice(&sink.data)
        .map_err(|e| refuse(format!("malformed signed descriptor: {e}")))?;
    signed.verify(key).map_err(|e| refuse(e.to_string()))
}

/// What the meter holds now, for the coverage checks.
pub struct MeterView<'a> {
    /// The meter's file system.
    pub storage: &'a dyn Storage,
    /// SHA-256 of the booted firmware image.
    pub booted_sha256: Option<String>,
    /// The highest release counter installed so far.
    pub highest_counter: u64,
    /// Unix time now, in seconds.
    pub now: u64,
}

/// Checks `plan` against `descriptor` and pins every expected hash and size
/// to the signed values.
pub fn vouch(
    plan: &mut UpdatePlan,
    descriptor: &TargetDescriptor,
    meter: &MeterView<'_>,
) -> Result<(), EngineError> {
    if descriptor.version != plan.to.as_str() {
        return Err(refuse(format!(
            "the signed descriptor is for version {}, the manifest targets {}",
            descriptor.version, plan.to
        )));
    }
    if meter.now >= descriptor.expires {
        return Err(refuse(format!(
            "the signed descriptor expired at Unix time {}",
            descriptor.expires
        )));
    }
    if descriptor.counter < meter.highest_counter {
        return Err(refuse(format!(
            "release counter {} is below {} already installed (rollback refused)",
            descriptor.counter, meter.highest_counter
        )));
    }
    for file in &mut plan.files {
        let Some(signed) = descriptor.file(file.path.as_str()) else {
            return Err(refuse(format!(
                "the manifest installs {}, which the signed release does not contain",
                file.path
            )));
        };
        let expect = &mut file.expect;
        if expect.sha256.as_ref().is_some_and(|h| *h != signed.sha256)
            || expect.size.is_some_and(|s| s != signed.size)
        {
            return Err(refuse(format!(
                "{} differs from the signed release",
                file.path
            )));
        }
        expect.sha256 = Some(signed.sha256.clone());
        expect.size = Some(signed.size);
    }
    for path in &plan.deletes {
        if descriptor.file(path.as_str()).is_some() {
            return Err(refuse(format!(
                "the manifest deletes {path}, which the signed release contains"
            )));
        }
    }
    match (&mut plan.firmware, &descriptor.firmware) {
        (Some(image), Some(signed)) => {
            let expect = &mut image.expect;
            if expect.sha256.as_ref().is_some_and(|h| *h != signed.sha256)
                || expect.size.is_some_and(|s| s != signed.size)
            {
                return Err(refuse("the firmware differs from the signed release"));
            }
            expect.sha256 = Some(signed.sha256.clone());
            expect.size = Some(signed.size);
        }
        (Some(_), None) => {
            return Err(refuse(
                "the manifest brings firmware the signed release does not contain",
            ));
        }
        (None, Some(signed)) if meter.booted_sha256.as_deref() != Some(signed.sha256.as_str()) => {
            return Err(refuse(
                "the signed release needs firmware the manifest does not provide",
            ));
        }
        (None, _) => {}
    }
    for signed in &descriptor.files {
        if plan.files.iter().any(|f| f.path.as_str() == signed.path) {
            continue;
        }
        if meter_sha256(meter.storage, &signed.path)?.as_deref() != Some(signed.sha256.as_str()) {
            return Err(refuse(format!(
                "the manifest leaves /{} different from the signed release",
                signed.path
            )));
        }
    }
    plan.counter = Some(descriptor.counter);
    Ok(())
}

/// SHA-256 of a file on the meter (`None`: absent or not a valid path).
fn meter_sha256(storage: &dyn Storage, path: &str) -> Result<Option<String>, EngineError> {
    let Ok(path) = crate::path::MeterPath::parse(path) else {
        return Ok(None);
    };
    if storage.size(&path)?.is_none() {
        return Ok(None);
    }
    Ok(Some(digest(storage.open(&path)?)?.sha256))
}
