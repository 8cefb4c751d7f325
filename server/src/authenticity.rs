//! Whether a `POST /report` comes from its meter: the signature check on
//! the report path (see `otavan_protocol::report_auth` and
//! docs/security.md).
//!
//! A report without [`SIGNATURE_HEADER`] is stored `unsigned` (Pycom
//! meters, older otavan meters). A signed report is checked against the
//! key of the device its body names, derived from the fleet's report
//! secret: it is stored `verified` when it matches and refused when it
//! does not, so nothing claiming a signature it does not have is ever
//! stored. A van without the secret stores signed reports `unchecked`.

use hyper::StatusCode;
use hyper::header::HeaderMap;
use otavan_protocol::Report;
use otavan_protocol::report_auth::{FleetSecret, SIGNATURE_HEADER};
use otavan_store::Verification;

/// How the van treats report signatures (`otavan serve --report-key`,
/// `--require-signed-reports`).
#[derive(Debug, Clone, Default)]
pub struct ReportAuth {
    /// The fleet's report secret; without it signatures are not checked.
    pub secret: Option<FleetSecret>,
    /// Count only verified reports and LoRa status uplinks on the
    /// dashboard (unsigned reports are still stored, marked).
    pub require_signed: bool,
}

/// Why a report was refused: the status and the text sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 400 for a malformed signature or a signed report without a
    /// `report_id`, 403 for a signature that does not match.
    pub status: StatusCode,
    /// Why, for the meter's log.
    pub reason: String,
}

impl Refused {
    fn new(status: StatusCode, reason: impl Into<String>) -> Refused {
        Refused {
            status,
            reason: reason.into(),
        }
    }
}

impl ReportAuth {
    /// Checks `report`, parsed from exactly `body`, against the signature
    /// in `headers`.
    ///
    /// # Errors
    ///
    /// [`Refused`] when the report carries a signature that is malformed or
    /// not the body's under its device's key, or a valid one without a
    /// `report_id` (a replay of it would not be a duplicate).
    pub fn check(
        &self,
        headers: &HeaderMap,
        report: &Report,
        body: &[u8],
    ) -> Result<Verification, Refused> {
        let mut values = headers.get_all(SIGNATURE_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(Verification::Unsigned);
        };
        if values.next().is_some() {
            return Err(Refused::new(
                StatusCode::BAD_REQUEST,
                format!("more than one {SIGNATURE_HEADER}"),
            ));
        }
        let Some(secret) = &self.secret else {
            return Ok(Verification::Unchecked);
        };
        let value = value.to_str().unwrap_or("");
        match secret.verify(&report.device_id, value, body) {
            Ok(()) if report.report_id.is_none() => Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "a signed report needs a report_id (so a replay is a duplicate)",
            )),
            Ok(()) => Ok(Verification::Verified),
            Err(e @ otavan_protocol::report_auth::SignatureError::Malformed) => {
                Err(Refused::new(StatusCode::BAD_REQUEST, e.to_string()))
            }
            Err(e) => Err(Refused::new(StatusCode::FORBIDDEN, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const SECRET: &str = "5f1b0e3c8a9d4e2f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f";

    fn parts(json: &str) -> (Report, Vec<u8>) {
        (
            serde_json::from_str(json).unwrap(),
            json.as_bytes().to_vec(),
        )
    }

    fn signed(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        headers
    }

    #[test]
    fn each_kind_of_report_gets_its_mark_or_is_refused() {
        let fleet = FleetSecret::from_hex(SECRET).unwrap();
        let auth = ReportAuth {
            secret: Some(fleet.clone()),
            require_signed: true,
        };
        let (report, body) = parts(
            r#"{"device_id":"m1","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","report_id":"a/UPDATED"}"#,
        );
        let good = signed(&fleet.meter_key("m1").sign(&body));
        assert_eq!(
            auth.check(&good, &report, &body),
            Ok(Verification::Verified)
        );
        assert_eq!(
            auth.check(&HeaderMap::new(), &report, &body),
            Ok(Verification::Unsigned)
        );
        let unchecked = ReportAuth::default().check(&good, &report, &body);
        assert_eq!(unchecked, Ok(Verification::Unchecked));
        let wrong = signed(&fleet.meter_key("m2").sign(&body));
        let refused = auth.check(&wrong, &report, &body).unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let refused = auth.check(&signed("hmac-sha256=00"), &report, &body);
        assert_eq!(refused.unwrap_err().status, StatusCode::BAD_REQUEST);
        let mut twice = good.clone();
        twice.append(SIGNATURE_HEADER, good[SIGNATURE_HEADER].clone());
        let refused = auth.check(&twice, &report, &body);
        assert_eq!(refused.unwrap_err().status, StatusCode::BAD_REQUEST);
        let (anonymous, body) = parts(
            r#"{"device_id":"m1","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#,
        );
        let headers = signed(&fleet.meter_key("m1").sign(&body));
        let refused = auth.check(&headers, &anonymous, &body).unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(refused.reason.contains("report_id"), "{}", refused.reason);
    }
}
