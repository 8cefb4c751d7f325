//! `otavan release certify` and `otavan release rotate-key`: the root
//! key's one job, on an offline machine. Both write the release root's
//! `root.json`, one version above the certificate already there (which
//! must be this root key's): certifying names the release keys meters
//! trust, rotating replaces them, and meters that see the new
//! certificate refuse every key it no longer lists.

use std::io;
use std::path::{Path, PathBuf};

use otavan_protocol::keys::{KeyPair, PublicKey};
use otavan_protocol::root::{CertificateError, ROOT_FILE, RootCertificate};
use otavan_protocol::signed::Envelope;

/// Why a certificate was not written.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    /// The existing `root.json` could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why not.
        error: io::Error,
    },
    /// The existing `root.json` is not this root key's certificate.
    #[error("{path}: {reason}")]
    Existing {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// There is no certificate to rotate.
    #[error("{0} does not exist: certify the release keys first (otavan release certify)")]
    NothingToRotate(PathBuf),
    /// The new certificate would be unusable.
    #[error("{0}")]
    Invalid(String),
    /// The certificate could not be written.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why not.
        error: io::Error,
    },
}

/// What the next certificate says; `None` keeps the current
/// certificate's value (or the default, for the first one).
#[derive(Debug, Clone, Default)]
pub struct Terms {
    /// The release keys.
    pub keys: Vec<PublicKey>,
    /// Signatures needed (default 1).
    pub threshold: Option<u32>,
    /// Largest counter step a meter accepts (default
    /// [`DEFAULT_MAX_COUNTER_JUMP`]).
    pub max_counter_jump: Option<u64>,
    /// Unix seconds until which meters accept it.
    pub expires: u64,
}

/// The counter step meters accept unless the certificate says otherwise:
/// far more releases than a fleet makes between two van campaigns, far
/// fewer than a stolen key would need to lock later releases out.
pub const DEFAULT_MAX_COUNTER_JUMP: u64 = 100;

/// The certificate written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certified {
    /// The new certificate.
    pub certificate: RootCertificate,
    /// Keys of the previous certificate the new one no longer lists.
    pub revoked: Vec<String>,
    /// The file written.
    pub path: PathBuf,
}

/// Writes the release root's next certificate with `terms`, signed by
/// `root`. Without an existing one this is version 1.
pub fn certify(release: &Path, root: &KeyPair, terms: &Terms) -> Result<Certified, CertifyError> {
    let path = release.join(ROOT_FILE);
    let current = current(&path, &root.public())?;
    next(path, root, current, terms)
}

/// Like [`certify`], but a certificate must exist, and at least one of its
/// keys must be replaced: a stolen or retired key is revoked.
pub fn rotate(release: &Path, root: &KeyPair, terms: &Terms) -> Result<Certified, CertifyError> {
    let path = release.join(ROOT_FILE);
    let Some(current) = current(&path, &root.public())? else {
        return Err(CertifyError::NothingToRotate(path));
    };
    let new: Vec<String> = terms.keys.iter().map(PublicKey::to_text).collect();
    if current.keys.iter().all(|k| new.contains(k)) {
        return Err(CertifyError::Invalid(
            "every key of the current certificate is kept: a rotation revokes at least one".into(),
        ));
    }
    next(path, root, Some(current), terms)
}

/// The certificate in `path` (`None` when there is none), verified with
/// `root`.
fn current(path: &Path, root: &PublicKey) -> Result<Option<RootCertificate>, CertifyError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(CertifyError::Read {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    let existing = |reason: String| CertifyError::Existing {
        path: path.to_path_buf(),
        reason,
    };
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|e| existing(format!("not a certificate: {e}")))?;
    RootCertificate::open(&envelope, root)
        .map(Some)
        .map_err(|e| match e {
            CertificateError::BadSignature => {
                existing("signed by another root key than the one given".into())
            }
            other => existing(other.to_string()),
        })
}

fn next(
    path: PathBuf,
    root: &KeyPair,
    current: Option<RootCertificate>,
    terms: &Terms,
) -> Result<Certified, CertifyError> {
    if terms.keys.is_empty() {
        return Err(CertifyError::Invalid("no release key to certify".into()));
    }
    let certificate = RootCertificate::new(
        current.as_ref().map_or(1, |c| c.version + 1),
        terms.keys.clone(),
        terms
            .threshold
            .or(current.as_ref().map(|c| c.threshold))
            .unwrap_or(1),
        terms
            .max_counter_jump
            .or(current.as_ref().map(|c| c.max_counter_jump))
            .unwrap_or(DEFAULT_MAX_COUNTER_JUMP),
        terms.expires,
    );
    let envelope = certificate.sign(root);
    // The meters' own check, before anything is written.
    RootCertificate::open(&envelope, &root.public())
        .map_err(|e| CertifyError::Invalid(e.to_string()))?;
    let revoked = current
        .map(|c| {
            c.keys
                .into_iter()
                .filter(|k| !certificate.keys.contains(k))
                .collect()
        })
        .unwrap_or_default();
    let json = serde_json::to_vec_pretty(&envelope).expect("serialises");
    otavan_durable::write_atomic(&path, &json).map_err(|error| CertifyError::Write {
        path: path.clone(),
        error,
    })?;
    Ok(Certified {
        certificate,
        revoked,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyPair {
        KeyPair::from_seed([n; 32])
    }

    fn terms(keys: &[&KeyPair]) -> Terms {
        Terms {
            keys: keys.iter().map(|k| k.public()).collect(),
            expires: 2_000_000_000,
            ..Terms::default()
        }
    }

    #[test]
    fn certificates_grow_in_version_and_rotation_revokes() {
        let dir = tempfile::TempDir::new().unwrap();
        let root = key(1);
        let first = certify(dir.path(), &root, &terms(&[&key(2)])).unwrap();
        assert_eq!(first.certificate.version, 1);
        assert_eq!(first.certificate.threshold, 1);
        assert_eq!(first.certificate.max_counter_jump, DEFAULT_MAX_COUNTER_JUMP);
        let mut strict = terms(&[&key(2), &key(3)]);
        strict.threshold = Some(2);
        strict.max_counter_jump = Some(5);
        let second = certify(dir.path(), &root, &strict).unwrap();
        assert_eq!(second.certificate.version, 2);
        assert!(second.revoked.is_empty());
        let rotated = rotate(dir.path(), &root, &terms(&[&key(3), &key(4)])).unwrap();
        assert_eq!(rotated.certificate.version, 3);
        assert_eq!(rotated.revoked, [key(2).public().to_text()]);
        // Threshold and counter jump carry over from the certificate before.
        assert_eq!(
            (
                rotated.certificate.threshold,
                rotated.certificate.max_counter_jump
            ),
            (2, 5)
        );
        let on_disk: Envelope =
            serde_json::from_slice(&std::fs::read(dir.path().join(ROOT_FILE)).unwrap()).unwrap();
        assert_eq!(
            RootCertificate::open(&on_disk, &root.public()).unwrap(),
            rotated.certificate
        );
    }

    #[test]
    fn bad_requests_write_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let root = key(1);
        let error = rotate(dir.path(), &root, &terms(&[&key(2)])).unwrap_err();
        assert!(matches!(error, CertifyError::NothingToRotate(_)), "{error}");
        let mut impossible = terms(&[&key(2)]);
        impossible.threshold = Some(2);
        let error = certify(dir.path(), &root, &impossible).unwrap_err();
        assert!(
            error.to_string().contains("threshold 2 for 1 key"),
            "{error}"
        );
        assert!(!dir.path().join(ROOT_FILE).exists());
        certify(dir.path(), &root, &terms(&[&key(2)])).unwrap();
        let error = rotate(dir.path(), &root, &terms(&[&key(2), &key(3)])).unwrap_err();
        assert!(
            error.to_string().contains("revokes at least one"),
            "{error}"
        );
        // Another root key cannot take over the certificate.
        let error = certify(dir.path(), &key(9), &terms(&[&key(9)])).unwrap_err();
        assert!(error.to_string().contains("another root key"), "{error}");
    }
}
