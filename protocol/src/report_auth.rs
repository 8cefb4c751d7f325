//! Report authenticity: a meter signs the exact bytes of its `POST /report`
//! body with its own key, and the van checks the signature.
//!
//! Keys come from one fleet secret ([`FleetSecret`]): at provisioning a
//! meter gets [`FleetSecret::meter_key`], HMAC-SHA256 of the secret over
//! its device id, so each meter holds only its own key while a van holding
//! the fleet secret can check any meter without an inventory. The
//! signature ([`MeterKey::sign`]) is HMAC-SHA256 of the meter's key over
//! the body, sent in [`SIGNATURE_HEADER`] as `hmac-sha256=<64 hex>`. The
//! body names the device, and the van derives the key from that name, so a
//! body re-sent as another device (or changed in any byte) no longer
//! matches. Keys travel as 64 hex digits (32 bytes).

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The request header carrying a report's signature.
pub const SIGNATURE_HEADER: &str = "x-otavan-signature";

/// The signature's scheme, before `=` in [`SIGNATURE_HEADER`].
const SCHEME: &str = "hmac-sha256";

/// What a meter key is derived over, before the device id, so the same
/// secret never yields the same bytes for another purpose.
const METER_KEY_CONTEXT: &[u8] = b"otavan meter report key v1\0";

/// Bytes in a fleet secret and a meter key.
pub const KEY_BYTES: usize = 32;

/// The fleet's report secret, from which every meter's key is derived.
/// Whoever holds it can sign reports for any meter.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSecret([u8; KEY_BYTES]);

/// One meter's report key: it signs that meter's reports only.
#[derive(Clone, PartialEq, Eq)]
pub struct MeterKey([u8; KEY_BYTES]);

/// Why a key's text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey;

impl fmt::Display for BadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a report key is {} hex digits", KEY_BYTES * 2)
    }
}

impl std::error::Error for BadKey {}

/// Why a report's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `hmac-sha256=` and 64 hex digits.
    Malformed,
    /// The signature is not this body's under this device's key: the body
    /// was changed, signed with another key or sent as another device.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Malformed => write!(
                f,
                "{SIGNATURE_HEADER} must be {SCHEME}= and {} hex digits",
                KEY_BYTES * 2
            ),
            SignatureError::Mismatch => {
                f.write_str("the report's signature does not match its body and device id")
            }
        }
    }
}

impl std::error::Error for SignatureError {}

/// 32 bytes from 64 hex digits, surrounding whitespace ignored (key files
/// end with a newline).
fn key_bytes(text: &str) -> Result<[u8; KEY_BYTES], BadKey> {
    let mut bytes = [0; KEY_BYTES];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| BadKey)?;
    Ok(bytes)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac
}

impl FleetSecret {
    /// A secret from 32 random bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> FleetSecret {
        FleetSecret(bytes)
    }

    /// The secret as 64 hex digits, for its file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a secret from its 64 hex digits.
    pub fn from_hex(text: &str) -> Result<FleetSecret, BadKey> {
        key_bytes(text).map(FleetSecret)
    }

    /// The key of the meter called `device_id`.
    pub fn meter_key(&self, device_id: &str) -> MeterKey {
        let mac = hmac(&self.0, &[METER_KEY_CONTEXT, device_id.as_bytes()]);
        MeterKey(mac.finalize().into_bytes().into())
    }

    /// Checks that `header` (the [`SIGNATURE_HEADER`] value) signs `body`
    /// for the meter called `device_id` (the body's own `device_id`).
    pub fn verify(&self, device_id: &str, header: &str, body: &[u8]) -> Result<(), SignatureError> {
        let hex_digits = header
            .trim()
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or(SignatureError::Malformed)?;
        let mut claimed = [0; KEY_BYTES];
        hex::decode_to_slice(hex_digits, &mut claimed).map_err(|_| SignatureError::Malformed)?;
        let key = self.meter_key(device_id);
        // Constant time: the comparison tells nothing of where it differs.
        hmac(&key.0, &[body])
            .verify_slice(&claimed)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl MeterKey {
    /// Reads a key from its 64 hex digits.
    pub fn from_hex(text: &str) -> Result<MeterKey, BadKey> {
        key_bytes(text).map(MeterKey)
    }

    /// The key as 64 hex digits, for the meter's key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The [`SIGNATURE_HEADER`] value for a report body.
    pub fn sign(&self, body: &[u8]) -> String {
        let tag = hmac(&self.0, &[body]).finalize().into_bytes();
        format!("{SCHEME}={}", hex::encode(tag))
    }
}

impl fmt::Debug for FleetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetSecret(..)")
    }
}

impl fmt::Debug for MeterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const BODY: &[u8] =
        br#"{"device_id":"m1","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED","report_id":"a/UPDATED"}"#;

    #[test]
    fn a_meter_signature_verifies_and_any_change_breaks_it() {
        let fleet = FleetSecret::from_hex(&format!("{SECRET}\n")).unwrap();
        assert_eq!(fleet.to_hex(), SECRET);
        let key = fleet.meter_key("m1");
        let header = key.sign(BODY);
        assert!(header.starts_with("hmac-sha256=") && header.len() == 12 + 64);
        assert_eq!(fleet.verify("m1", &header, BODY), Ok(()));
        // Through its hex form (the meter's key file), the same key.
        assert_eq!(MeterKey::from_hex(&key.to_hex()).unwrap(), key);
        let mut tampered = BODY.to_vec();
        tampered[BODY.len() - 3] ^= 1;
        assert_eq!(
            fleet.verify("m1", &header, &tampered),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            fleet.verify("m2", &header, BODY),
            Err(SignatureError::Mismatch),
            "another device's key"
        );
        let other_fleet = FleetSecret::from_hex(&SECRET.replace("00", "ff")).unwrap();
        assert_eq!(
            other_fleet.verify("m1", &header, BODY),
            Err(SignatureError::Mismatch)
        );
        assert_ne!(fleet.meter_key("m2"), key);
    }

    #[test]
    fn malformed_headers_and_keys_are_refused() {
        let fleet = FleetSecret::from_hex(SECRET).unwrap();
        let good = fleet.meter_key("m1").sign(BODY);
        let hex_part = &good["hmac-sha256=".len()..];
        for bad in [
            String::new(),
            hex_part.to_owned(),
            format!("hmac-sha1={hex_part}"),
            format!("hmac-sha256={}", &hex_part[2..]),
            format!("hmac-sha256={hex_part}00"),
            format!("hmac-sha256={}zz", &hex_part[2..]),
        ] {
            assert_eq!(
                fleet.verify("m1", &bad, BODY),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        for bad in ["", "00", &SECRET.replace('0', "g"), &format!("{SECRET}00")] {
            assert_eq!(FleetSecret::from_hex(bad), Err(BadKey), "{bad:?}");
            assert_eq!(MeterKey::from_hex(bad), Err(BadKey), "{bad:?}");
        }
        assert_eq!(format!("{fleet:?}"), "FleetSecret(..)");
    }

    /// RFC 4231 test case 2, so the derivation is plain HMAC-SHA256 that a
    /// provisioning script can reproduce.
    #[test]
    fn hmac_is_the_standard_one() {
        let tag = hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"])
            .finalize()
            .into_bytes();
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
