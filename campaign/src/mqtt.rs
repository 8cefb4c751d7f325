//! The network servers' MQTT integrations: where a downlink is published
//! and in what JSON, and how an uplink event reads.
//!
//! - ChirpStack v4 (JSON integration, its default): downlinks on
//!   `application/{app}/device/{dev_eui}/command/down` as `{"devEui",
//!   "confirmed", "fPort", "data"}` (base64); uplinks on
//!   `application/{app}/device/+/event/up` with `deviceInfo.devEui`,
//!   `fPort`, `data` and `time`.
//! - The Things Stack: downlinks on
//!   `v3/{app}@{tenant}/devices/{device_id}/down/push` as
//!   `{"downlinks":[{"f_port","frm_payload","priority"}]}`; uplinks on
//!   `v3/{app}@{tenant}/devices/+/up` with `end_device_ids.dev_eui`,
//!   `uplink_message.f_port`, `uplink_message.frm_payload` and
//!   `received_at`. Device IDs are chosen when devices are registered;
//!   [`DeviceIds`] says how to make one from a DevEUI (the console's
//!   default is `eui-` and the DevEUI in lower case). A multicast group
//!   is a multicast end device `mc-{mc_addr}` (hex, lower case) registered
//!   with the group's session keys; its downlink goes on the same topic
//!   with `class_b_c: {gateways, absolute_time}` (a multicast device has
//!   no uplink, so no known downlink path: the gateways must be named).
//!   ChirpStack v4 takes multicast downlinks only through its gRPC API
//!   ([`crate::chirpstack`]), not over MQTT.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;

/// An MQTT broker address: `mqtt://[user[:password]@]host[:port]`
/// (`tcp://` is the same; the port defaults to 1883).
#[derive(Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (or API key), if the broker wants one.
    pub password: Option<String>,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        write!(f, "Broker({self})")
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.username {
            Some(user) => write!(f, "mqtt://{user}@{}:{}", self.host, self.port),
            None => write!(f, "mqtt://{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for Broker {
    type Err = String;

    fn from_str(url: &str) -> Result<Broker, String> {
        let bad = |why: &str| format!("{url:?} is not an MQTT URL: {why}");
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected mqtt://host[:port]"))?;
        match scheme {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" | "tls" => {
                return Err(format!(
                    "{url:?}: TLS is not supported yet; use the broker's plain port \
                     (1883) on a trusted network, or a local TLS bridge"
                ));
            }
            _ => return Err(bad("the scheme must be mqtt:// (or tcp://)")),
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(bad("no path or query is allowed"));
        }
        let (credentials, address) = match rest.rsplit_once('@') {
            Some((c, a)) => (Some(c), a),
            None => (None, rest),
        };
        let (username, password) = match credentials {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)?), Some(percent_decode(p)?)),
                None => (Some(percent_decode(c)?), None),
            },
            None => (None, None),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            ),
            _ => (address, 1883),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        Ok(Broker {
            host: host.to_owned(),
            port,
            username,
            password,
        })
    }
}

/// Decodes `%XX` escapes (for user names and passwords with `@` or `:`).
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// How The Things Stack device IDs are made from DevEUIs: a pattern in
/// which `{dev_eui}` stands for the DevEUI in lower case and `{DEV_EUI}`
/// in upper case. The default is the console's, `eui-{dev_eui}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIds(String);

impl Default for DeviceIds {
    fn default() -> DeviceIds {
        DeviceIds("eui-{dev_eui}".into())
    }
}

impl FromStr for DeviceIds {
    type Err = String;

    fn from_str(pattern: &str) -> Result<DeviceIds, String> {
        if !pattern.contains("{dev_eui}") && !pattern.contains("{DEV_EUI}") {
            return Err(format!("{pattern:?} names no {{dev_eui}} or {{DEV_EUI}}"));
        }
        check_topic_level("the device ID pattern", pattern)?;
        Ok(DeviceIds(pattern.to_owned()))
    }
}

impl DeviceIds {
    /// The device ID of `dev_eui`.
    pub fn of(&self, dev_eui: DevEui) -> String {
        self.0
            .replace("{dev_eui}", &dev_eui.lower())
            .replace("{DEV_EUI}", &dev_eui.to_string())
    }
}

/// Refuses what would break out of one MQTT topic level.
fn check_topic_level(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.contains(['/', '+', '#', '\0']) {
        Err(format!(
            "{what} {value:?} must be non-empty, without / + # or NUL"
        ))
    } else {
        Ok(())
    }
}

/// The network server whose MQTT integration carries the campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkServer {
    /// ChirpStack v4, application `application` (its ID).
    ChirpStack {
        /// The application ID.
        application: String,
    },
    /// The Things Stack, `application@tenant`.
    Tts {
        /// The application ID.
        application: String,
        /// The tenant ID (`ttn` on The Things Network).
        tenant: String,
        /// How device IDs are made from DevEUIs.
        device_ids: DeviceIds,
    },
}

impl NetworkServer {
    /// ChirpStack application `id`.
    ///
    /// # Errors
    ///
    /// When `id` is empty or holds `/`, `+` or `#`.
    pub fn chirpstack(id: &str) -> Result<NetworkServer, String> {
        check_topic_level("--chirpstack-app", id)?;
        Ok(NetworkServer::ChirpStack {
            application: id.to_owned(),
        })
    }

    /// The Things Stack application `ID@TENANT`.
    ///
    /// # Errors
    ///
    /// When there is no `@` or either part is empty or holds `/`, `+`
    /// or `#`.
    pub fn tts(app_at_tenant: &str, device_ids: DeviceIds) -> Result<NetworkServer, String> {
        let (application, tenant) = app_at_tenant
            .rsplit_once('@')
            .ok_or_else(|| format!("--tts-app {app_at_tenant:?} must be ID@TENANT"))?;
        check_topic_level("the application ID", application)?;
        check_topic_level("the tenant", tenant)?;
        Ok(NetworkServer::Tts {
            application: application.to_owned(),
            tenant: tenant.to_owned(),
            device_ids,
        })
    }

    /// The topic a downlink for `dev_eui` is published on.
    pub fn downlink_topic(&self, dev_eui: DevEui) -> String {
        match self {
            NetworkServer::ChirpStack { application } => {
                format!(
                    "application/{application}/device/{}/command/down",
                    dev_eui.lower()
                )
            }
            NetworkServer::Tts {
                application,
                tenant,
                device_ids,
            } => format!(
                "v3/{application}@{tenant}/devices/{}/down/push",
                device_ids.of(dev_eui)
            ),
        }
    }

    /// The JSON message that queues `payload` on `fport` for `dev_eui`
    /// (unconfirmed, normal priority).
    pub fn downlink_message(&self, dev_eui: DevEui, fport: u8, payload: &[u8]) -> String {
        let data = STANDARD.encode(payload);
        let message = match self {
            NetworkServer::ChirpStack { .. } => json!({
                "devEui": dev_eui.lower(),
                "confirmed": false,
                "fPort": fport,
                "data": data,
            }),
            NetworkServer::Tts { .. } => json!({
                "downlinks": [{"f_port": fport, "frm_payload": data, "priority": "NORMAL"}],
            }),
        };
        message.to_string()
    }

    /// The device ID of multicast group `mc_addr` on The Things Stack.
    pub fn multicast_device_id(mc_addr: u32) -> String {
        format!("mc-{mc_addr:08x}")
    }

    /// The topic and JSON message that queue `payload` on `fport` for
    /// multicast group `mc_addr`, transmitted at `at` by `gateways`.
    ///
    /// # Errors
    ///
    /// On ChirpStack (multicast is not on its MQTT integration), or when no
    /// gateway is given.
    pub fn multicast_downlink(
        &self,
        mc_addr: u32,
        fport: u8,
        payload: &[u8],
        at: OffsetDateTime,
        gateways: &[String],
    ) -> Result<(String, String), String> {
        match self {
            NetworkServer::ChirpStack { .. } => Err(
                "ChirpStack v4 queues multicast downlinks only through its gRPC API \
                 (MulticastGroupService: --chirpstack-api), not over MQTT"
                    .into(),
            ),
            NetworkServer::Tts {
                application,
                tenant,
                ..
            } => {
                if gateways.is_empty() {
                    return Err(
                        "a multicast WAKE needs the gateways that send it: give --gateway ID"
                            .into(),
                    );
                }
                let topic = format!(
                    "v3/{application}@{tenant}/devices/{}/down/push",
                    Self::multicast_device_id(mc_addr)
                );
                let gateways: Vec<_> = gateways
                    .iter()
                    .map(|id| json!({"gateway_ids": {"gateway_id": id}}))
                    .collect();
                let message = json!({
                    "downlinks": [{
                        "f_port": fport,
                        "frm_payload": STANDARD.encode(payload),
                        "priority": "NORMAL",
                        "class_b_c": {"gateways": gateways, "absolute_time": clock::format(at)},
                    }],
                });
                Ok((topic, message.to_string()))
            }
        }
    }

    /// The topic filter of every device's uplink events.
    pub fn uplink_filter(&self) -> String {
        match self {
            NetworkServer::ChirpStack { application } => {
                format!("application/{application}/device/+/event/up")
            }
            NetworkServer::Tts {
                application,
                tenant,
                ..
            } => format!("v3/{application}@{tenant}/devices/+/up"),
        }
    }

    /// Reads an uplink event.
    ///
    /// # Errors
    ///
    /// What is missing or malformed in the JSON.
    pub fn parse_uplink(&self, message: &[u8]) -> Result<Uplink, String> {
        let (dev_eui, fport, data, time) = match self {
            NetworkServer::ChirpStack { .. } => {
                let event: ChirpStackUp = serde_json::from_slice(message)
                    .map_err(|e| format!("not a ChirpStack uplink event: {e}"))?;
                (
                    event.device_info.dev_eui,
                    event.f_port,
                    event.data,
                    event.time,
                )
            }
            NetworkServer::Tts { .. } => {
                let event: TtsUp = serde_json::from_slice(message)
                    .map_err(|e| format!("not a The Things Stack uplink message: {e}"))?;
                let dev_eui = event
                    .end_device_ids
                    .dev_eui
                    .ok_or("the uplink message has no end_device_ids.dev_eui")?;
                let up = event.uplink_message;
                (dev_eui, up.f_port, up.frm_payload, event.received_at)
            }
        };
        Ok(Uplink {
            dev_eui: dev_eui.parse()?,
            fport,
            payload: match data {
                Some(data) => STANDARD
                    .decode(data.trim())
                    .map_err(|e| format!("the payload is not base64: {e}"))?,
                None => Vec::new(),
            },
            received_at: time.and_then(|t| clock::parse(&t).ok()),
        })
    }
}

/// One uplink, as the network server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The meter.
    pub dev_eui: DevEui,
    /// Its FPort (`None`: a frame without one, MAC commands only).
    pub fport: Option<u8>,
    /// The application payload.
    pub payload: Vec<u8>,
    /// When the network server received it, if it says.
    pub received_at: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChirpStackUp {
    device_info: ChirpStackDevice,
    f_port: Option<u8>,
    data: Option<String>,
    time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChirpStackDevice {
    dev_eui: String,
}

#[derive(Deserialize)]
struct TtsUp {
    end_device_ids: TtsIds,
    uplink_message: TtsUplinkMessage,
    received_at: Option<String>,
}

#[derive(Deserialize)]
struct TtsIds {
    dev_eui: Option<String>,
}

#[derive(Deserialize)]
struct TtsUplinkMessage {
    f_port: Option<u8>,
    frm_payload: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUI: &str = "70b3d57ed0001234";

    fn eui() -> DevEui {
        EUI.parse().unwrap()
    }

    #[test]
    fn broker_urls() {
        let b: Broker = "mqtt://localhost".parse().unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.username.is_none()),
            ("localhost", 1883, true)
        );
        let b: Broker = "tcp://app%40acme:NNSXS.key@eu1.cloud.example:1884/"
            .parse()
            .unwrap();
        assert_eq!(b.host, "eu1.cloud.example");
        assert_eq!(b.port, 1884);
        assert_eq!(b.username.as_deref(), Some("app@acme"));
        assert_eq!(b.password.as_deref(), Some("NNSXS.key"));
        assert_eq!(
            format!("{b:?}"),
            "Broker(mqtt://app@acme@eu1.cloud.example:1884)"
        );
        let b: Broker = "mqtt://[::1]:1999".parse().unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 1999));
        assert!(
            "mqtts://host"
                .parse::<Broker>()
                .unwrap_err()
                .contains("TLS")
        );
        for bad in [
            "localhost",
            "http://h",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://",
            "mqtt://h/topic",
        ] {
            assert!(bad.parse::<Broker>().is_err(), "{bad}");
        }
    }

    #[test]
    fn chirpstack_topics_and_messages() {
        let cs = NetworkServer::chirpstack("8c6d1a2e-app").unwrap();
        assert_eq!(
            cs.downlink_topic(eui()),
            "application/8c6d1a2e-app/device/70b3d57ed0001234/command/down"
        );
        let message: serde_json::Value =
            serde_json::from_str(&cs.downlink_message(eui(), 200, &[0x13])).unwrap();
        assert_eq!(
            message,
            json!({"devEui": EUI, "confirmed": false, "fPort": 200, "data": "Ew=="})
        );
        assert_eq!(
            cs.uplink_filter(),
            "application/8c6d1a2e-app/device/+/event/up"
        );
        let up = cs
            .parse_uplink(
                br#"{"deduplicationId":"x","time":"2025-06-02T10:00:00.5+00:00",
                     "deviceInfo":{"applicationId":"8c6d1a2e-app","devEui":"70b3d57ed0001234"},
                     "fCnt":4,"fPort":200,"data":"GN6tvu8AAcgABw=="}"#,
            )
            .unwrap();
        assert_eq!(up.dev_eui, eui());
        assert_eq!(up.fport, Some(200));
        assert_eq!(hex::encode(&up.payload), "18deadbeef0001c80007");
        assert_eq!(
            clock::format(up.received_at.unwrap()),
            "2025-06-02T10:00:00.5Z"
        );
        assert!(NetworkServer::chirpstack("a/b").is_err());
        assert!(NetworkServer::chirpstack("#").is_err());
        assert!(cs.parse_uplink(b"{}").unwrap_err().contains("ChirpStack"));
    }

    #[test]
    fn tts_topics_and_messages() {
        let tts = NetworkServer::tts("meters@acme", DeviceIds::default()).unwrap();
        assert_eq!(
            tts.downlink_topic(eui()),
            "v3/meters@acme/devices/eui-70b3d57ed0001234/down/push"
        );
        let message: serde_json::Value =
            serde_json::from_str(&tts.downlink_message(eui(), 200, &[0x13])).unwrap();
        assert_eq!(
            message,
            json!({"downlinks": [{"f_port": 200, "frm_payload": "Ew==", "priority": "NORMAL"}]})
        );
        assert_eq!(tts.uplink_filter(), "v3/meters@acme/devices/+/up");
        let up = tts
            .parse_uplink(
                br#"{"end_device_ids":{"device_id":"eui-70b3d57ed0001234","dev_eui":"70B3D57ED0001234"},
                     "received_at":"2025-06-02T10:00:00Z",
                     "uplink_message":{"f_port":200,"f_cnt":3,"frm_payload":"GN6tvu8AAcgABw=="}}"#,
            )
            .unwrap();
        assert_eq!((up.dev_eui, up.fport), (eui(), Some(200)));
        let custom = NetworkServer::tts("m@t", "meter-{DEV_EUI}".parse().unwrap()).unwrap();
        assert_eq!(
            custom.downlink_topic(eui()),
            "v3/m@t/devices/meter-70B3D57ED0001234/down/push"
        );
        assert!("meter".parse::<DeviceIds>().is_err());
        assert!(NetworkServer::tts("meters", DeviceIds::default()).is_err());
        let at = clock::parse("2025-06-03T08:54:05Z").unwrap();
        let (topic, message) = tts
            .multicast_downlink(0x0170_7000, 200, &[0x13], at, &["gw-north".into()])
            .unwrap();
        assert_eq!(topic, "v3/meters@acme/devices/mc-01707000/down/push");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&message).unwrap(),
            json!({"downlinks": [{"f_port": 200, "frm_payload": "Ew==", "priority": "NORMAL",
                "class_b_c": {"gateways": [{"gateway_ids": {"gateway_id": "gw-north"}}],
                              "absolute_time": "2025-06-03T08:54:05Z"}}]})
        );
        let error = tts.multicast_downlink(1, 200, &[], at, &[]).unwrap_err();
        assert!(error.contains("--gateway"), "{error}");
        let cs = NetworkServer::chirpstack("app").unwrap();
        let error = cs
            .multicast_downlink(1, 200, &[], at, &["g".into()])
            .unwrap_err();
        assert!(error.contains("gRPC"), "{error}");
        assert!(NetworkServer::tts("@acme", DeviceIds::default()).is_err());
    }
}
