//! How a WiFi update session ended, as the STATUS uplink's result code.

use std::io;

use otavan_protocol::lora::OtaResult;

use crate::download::DownloadError;
use crate::engine::{EngineError, Outcome};
use crate::transport::TransportError;
use crate::wifi::SessionError;

/// The result code for a session's outcome.
///
/// - installed: `updated`; nothing newer: `already_current`;
/// - the WiFi join failed: `wifi_join_failed`;
/// - the release or manifest was refused (unsigned, untrusted, a
///   downgrade, unsafe paths, a pending update awaiting confirmation, an
///   unprovisioned meter):
///   `refused`;
/// - the manifest or a file could not be fetched: `download_failed`;
/// - a file did not match its hash or size: `verification_failed`;
/// - too little space (checked, or the disk filled up): `no_space`;
/// - the file system failed and the update was undone: `interrupted`.
pub fn ota_result(outcome: &Result<Outcome, SessionError>) -> OtaResult {
    match outcome {
        Ok(Outcome::Updated { .. }) => OtaResult::Updated,
        Ok(Outcome::UpToDate { .. }) => OtaResult::AlreadyCurrent,
        Err(SessionError::Join(_)) => OtaResult::WifiJoinFailed,
        Err(SessionError::Overran(_)) => OtaResult::Interrupted,
        Err(SessionError::Update(error)) => engine_result(error),
    }
}

fn engine_result(error: &EngineError) -> OtaResult {
    match error {
        EngineError::NotProvisioned
        | EngineError::PendingConfirm(_)
        | EngineError::NothingPending
        | EngineError::BootMismatch { .. }
        | EngineError::Plan(_)
        | EngineError::Untrusted(_)
        | EngineError::Downgrade { .. } => OtaResult::Refused,
        EngineError::Manifest(error) => transport_result(error),
        EngineError::Download(DownloadError::Transport { source, .. }) => transport_result(source),
        EngineError::Download(DownloadError::Mismatch(_)) => OtaResult::VerificationFailed,
        EngineError::Download(DownloadError::Storage { source, .. }) => io_result(source),
        EngineError::NoSpace { .. } => OtaResult::NoSpace,
        EngineError::Storage(error) => io_result(error),
    }
}

fn transport_result(error: &TransportError) -> OtaResult {
    match error {
        TransportError::Sink(error) => io_result(error),
        TransportError::Connection(_)
        | TransportError::Status { .. }
        | TransportError::BadResponse(_) => OtaResult::DownloadFailed,
    }
}

fn io_result(error: &io::Error) -> OtaResult {
    if error.kind() == io::ErrorKind::StorageFull {
        OtaResult::NoSpace
    } else {
        OtaResult::Interrupted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Mismatch;
    use crate::path::MeterPath;
    use crate::wifi::WifiError;

    #[test]
    fn outcomes_map_to_result_codes() {
        let v = |s: &str| s.parse().unwrap();
        let path = MeterPath::parse("flash/main.py").unwrap();
        let update = |e: EngineError| ota_result(&Err(SessionError::Update(e)));
        assert_eq!(
            ota_result(&Ok(Outcome::Updated {
                from: v("1.0.0"),
                to: v("1.1.0"),
                bytes: 10
            })),
            OtaResult::Updated
        );
        assert_eq!(
            ota_result(&Ok(Outcome::UpToDate {
                version: v("1.1.0")
            })),
            OtaResult::AlreadyCurrent
        );
        assert_eq!(
            ota_result(&Err(SessionError::Join(WifiError::Timeout {
                ssid: "van".into()
            }))),
            OtaResult::WifiJoinFailed
        );
        assert_eq!(
            update(EngineError::Untrusted("expired".into())),
            OtaResult::Refused
        );
        assert_eq!(
            update(EngineError::Downgrade {
                from: v("1.1.0"),
                to: v("1.0.0"),
                signed: false
            }),
            OtaResult::Refused
        );
        assert_eq!(
            update(EngineError::PendingConfirm(v("1.1.0"))),
            OtaResult::Refused
        );
        assert_eq!(
            update(EngineError::Manifest(TransportError::Connection(
                "gone".into()
            ))),
            OtaResult::DownloadFailed
        );
        assert_eq!(
            update(EngineError::Download(DownloadError::Transport {
                path: path.clone(),
                source: TransportError::Status {
                    status: 404,
                    what: "x".into()
                },
            })),
            OtaResult::DownloadFailed
        );
        assert_eq!(
            update(EngineError::Download(DownloadError::Mismatch(Mismatch {
                path: path.clone(),
                what: "sha1",
                expected: "a".into(),
                actual: "b".into(),
            }))),
            OtaResult::VerificationFailed
        );
        assert_eq!(
            update(EngineError::NoSpace {
                needed: 2,
                available: 1
            }),
            OtaResult::NoSpace
        );
        assert_eq!(
            update(EngineError::Download(DownloadError::Storage {
                path,
                source: io::Error::from(io::ErrorKind::StorageFull),
            })),
            OtaResult::NoSpace
        );
        assert_eq!(
            update(EngineError::Storage(io::Error::other("power cut"))),
            OtaResult::Interrupted
        );
    }
}
