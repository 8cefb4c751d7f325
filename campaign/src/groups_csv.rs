//! GROUPS.csv and GROUPKEYS.csv: the multicast part of a plan
//! (`campaign plan --wake multicast`), what `campaign push` sends besides
//! PLAN.csv.
//!
//! GROUPS.csv columns, in order: `kind, mc_addr, dev_eui, enqueue_at,
//! send_by, transmit_at, fport, payload_hex`. A `setup` row is one
//! member's TS005 setup (McGroupSetupReq and McClassCSessionReq, the
//! group key encrypted for that meter): a unicast downlink on the setup
//! FPort to queue from `enqueue_at` and no later than `send_by` (one
//! uplink interval before the session). A `wake` row is the group's
//! multicast WAKE (`dev_eui` empty): queued from `enqueue_at` (after its
//! setups) for transmission at `transmit_at`, and not after `send_by`.
//! `mc_addr` is the group's DevAddr in hex. A reader checks every payload
//! decodes, and that a setup names its row's group.
//!
//! GROUPKEYS.csv (`mc_addr, mc_key, app_s_key, nwk_s_key`, hex) holds each
//! group's key and the session keys derived from it, for registering the
//! groups on the network server. It is written with mode 0600 and read
//! only if nobody else may read it.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use otavan_protocol::lora::Wake;
use otavan_protocol::lora::multicast::{GroupSessionKeys, Key, McRequest};
use time::OffsetDateTime;

use crate::clock;
use crate::deveui::DevEui;
use crate::table::{Field, InputError, Problems, Table};

/// The columns of GROUPS.csv, in order.
pub const COLUMNS: [&str; 8] = [
    "kind",
    "mc_addr",
    "dev_eui",
    "enqueue_at",
    "send_by",
    "transmit_at",
    "fport",
    "payload_hex",
];

/// The columns of GROUPKEYS.csv, in order.
pub const KEY_COLUMNS: [&str; 4] = ["mc_addr", "mc_key", "app_s_key", "nwk_s_key"];

/// One row of GROUPS.csv.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRow {
    /// A member's setup, by unicast.
    Setup {
        /// The group.
        mc_addr: u32,
        /// The member.
        dev_eui: DevEui,
        /// Queue it from then.
        enqueue_at: OffsetDateTime,
        /// And no later than this.
        send_by: OffsetDateTime,
        /// The setup FPort.
        fport: u8,
        /// The TS005 requests.
        frame: Vec<u8>,
    },
    /// The group's multicast WAKE.
    Wake {
        /// The group.
        mc_addr: u32,
        /// Queue it from then.
        enqueue_at: OffsetDateTime,
        /// And no later than this.
        send_by: OffsetDateTime,
        /// When the gateway transmits it (in the class C window).
        transmit_at: OffsetDateTime,
        /// The command FPort.
        fport: u8,
        /// The command.
        wake: Wake,
    },
}

impl GroupRow {
    /// When to queue it.
    pub fn enqueue_at(&self) -> OffsetDateTime {
        match self {
            GroupRow::Setup { enqueue_at, .. } | GroupRow::Wake { enqueue_at, .. } => *enqueue_at,
        }
    }

    /// The latest time it may be queued.
    pub fn send_by(&self) -> OffsetDateTime {
        match self {
            GroupRow::Setup { send_by, .. } | GroupRow::Wake { send_by, .. } => *send_by,
        }
    }

    /// The group.
    pub fn mc_addr(&self) -> u32 {
        match self {
            GroupRow::Setup { mc_addr, .. } | GroupRow::Wake { mc_addr, .. } => *mc_addr,
        }
    }

    /// The FPort.
    pub fn fport(&self) -> u8 {
        match self {
            GroupRow::Setup { fport, .. } | GroupRow::Wake { fport, .. } => *fport,
        }
    }

    /// The FRMPayload.
    pub fn payload(&self) -> Vec<u8> {
        match self {
            GroupRow::Setup { frame, .. } => frame.clone(),
            GroupRow::Wake { wake, .. } => wake.encode(),
        }
    }

    /// What the progress file records it as: `setup-DEVEUI` or
    /// `group-ADDR`.
    pub fn progress_key(&self) -> String {
        match self {
            GroupRow::Setup { dev_eui, .. } => format!("setup-{dev_eui}"),
            GroupRow::Wake { mc_addr, .. } => format!("group-{mc_addr:08X}"),
        }
    }

    fn record(&self) -> [String; 8] {
        let (kind, dev_eui, transmit_at) = match self {
            GroupRow::Setup { dev_eui, .. } => ("setup", dev_eui.to_string(), String::new()),
            GroupRow::Wake { transmit_at, .. } => {
                ("wake", String::new(), clock::format(*transmit_at))
            }
        };
        [
            kind.to_owned(),
            format!("{:08X}", self.mc_addr()),
            dev_eui,
            clock::format(self.enqueue_at()),
            clock::format(self.send_by()),
            transmit_at,
            self.fport().to_string(),
            hex::encode(self.payload()),
        ]
    }
}

/// GROUPS.csv's text for `rows`.
pub fn to_csv(rows: &[GroupRow]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing into memory cannot fail.
    let _ = writer.write_record(COLUMNS);
    for row in rows {
        let _ = writer.write_record(row.record());
    }
    writer.into_inner().unwrap_or_default()
}

/// Writes GROUPS.csv atomically and durably.
///
/// # Errors
///
/// The I/O error.
pub fn write(path: &Path, rows: &[GroupRow]) -> std::io::Result<()> {
    otavan_durable::write_atomic(path, &to_csv(rows))
}

/// Reads and checks GROUPS.csv.
///
/// # Errors
///
/// [`InputError`] listing every bad row: an unknown kind, a payload that
/// does not decode (a setup that is not a group setup for its row's
/// group, a WAKE that is not a WAKE), a member or group twice.
pub fn read(path: &Path) -> Result<Vec<GroupRow>, InputError> {
    let table = Table::read(path, &COLUMNS, &[])?;
    let mut problems = Problems::default();
    let mut rows = Vec::with_capacity(table.len());
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (line, field) in table.rows() {
        match row(field) {
            Ok(row) => {
                if let Some(first) = seen.insert(row.progress_key(), line) {
                    problems.add(
                        line,
                        format!("{} is already on line {first}", row.progress_key()),
                    );
                }
                rows.push(row);
            }
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(path)?;
    Ok(rows)
}

fn row(field: Field<'_>) -> Result<GroupRow, String> {
    let mc_addr = field.require("mc_addr")?;
    let mc_addr = u32::from_str_radix(mc_addr, 16)
        .map_err(|_| format!("mc_addr {mc_addr:?} is not 8 hex digits"))?;
    let time = |name: &str| {
        field
            .require(name)
            .and_then(|t| clock::parse(t).map_err(|e| format!("{name}: {e}")))
    };
    let enqueue_at = time("enqueue_at")?;
    let send_by = time("send_by")?;
    let fport = field.require("fport")?;
    let fport = fport
        .parse::<u8>()
        .ok()
        .filter(|p| otavan_protocol::lora::APP_FPORTS.contains(p))
        .ok_or_else(|| format!("fport {fport:?} is not an application port (1-223)"))?;
    let payload = field.require("payload_hex")?;
    let bytes = hex::decode(payload).map_err(|_| format!("payload_hex {payload:?} is not hex"))?;
    match field.require("kind")? {
        "setup" => {
            let dev_eui: DevEui = field.require("dev_eui")?.parse()?;
            let requests = McRequest::decode_all(&bytes)
                .map_err(|e| format!("payload_hex is not a multicast setup: {e}"))?;
            let names_group = requests
                .iter()
                .any(|r| matches!(r, McRequest::GroupSetup(s) if s.mc_addr == mc_addr));
            if !names_group {
                return Err(format!("payload_hex sets up no group {mc_addr:08X}"));
            }
            Ok(GroupRow::Setup {
                mc_addr,
                dev_eui,
                enqueue_at,
                send_by,
                fport,
                frame: bytes,
            })
        }
        "wake" => {
            let wake =
                Wake::decode(&bytes).map_err(|e| format!("payload_hex is not a WAKE: {e}"))?;
            Ok(GroupRow::Wake {
                mc_addr,
                enqueue_at,
                send_by,
                transmit_at: time("transmit_at")?,
                fport,
                wake,
            })
        }
        other => Err(format!("kind {other:?} is not setup or wake")),
    }
}

/// One group's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKeys {
    /// The group.
    pub mc_addr: u32,
    /// Its group key (McKey).
    pub mc_key: Key,
    /// The session keys derived from it.
    pub session: GroupSessionKeys,
}

impl std::fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupKeys({:08X}, ..)", self.mc_addr)
    }
}

impl GroupKeys {
    /// The keys of group `mc_addr` with group key `mc_key`.
    pub fn new(mc_addr: u32, mc_key: Key) -> GroupKeys {
        GroupKeys {
            mc_addr,
            mc_key,
            session: GroupSessionKeys::derive(&mc_key, mc_addr),
        }
    }
}

/// Writes GROUPKEYS.csv with mode 0600, atomically and durably (a
/// temporary file created 0600, fsync, rename, fsync of the directory).
///
/// # Errors
///
/// The I/O error.
pub fn write_keys(path: &Path, keys: &[GroupKeys]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = writer.write_record(KEY_COLUMNS);
    for k in keys {
        let _ = writer.write_record([
            format!("{:08X}", k.mc_addr),
            hex::encode(k.mc_key),
            hex::encode(k.session.app_s_key),
            hex::encode(k.session.nwk_s_key),
        ]);
    }
    let text = writer.into_inner().unwrap_or_default();
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        otavan_durable::sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Reads GROUPKEYS.csv, refusing one that anybody but its owner may read.
///
/// # Errors
///
/// [`InputError`]: the file is missing, readable by group or others, or
/// has bad rows (hex, or session keys that do not follow from the group
/// key).
pub fn read_keys(path: &Path) -> Result<HashMap<u32, GroupKeys>, InputError> {
    let mode = std::fs::metadata(path)
        .map_err(|e| InputError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(InputError::Unsafe {
            path: path.to_path_buf(),
            message: format!(
                "holds group keys but is readable by others (mode {:o}): chmod 600 it",
                mode & 0o777
            ),
        });
    }
    let table = Table::read(path, &KEY_COLUMNS, &[])?;
    let mut problems = Problems::default();
    let mut keys = HashMap::new();
    for (line, field) in table.rows() {
        match key_row(field) {
            Ok(k) => {
                if keys.insert(k.mc_addr, k).is_some() {
                    problems.add(line, "group already listed");
                }
            }
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(path)?;
    Ok(keys)
}

fn key_row(field: Field<'_>) -> Result<GroupKeys, String> {
    let addr = field.require("mc_addr")?;
    let mc_addr = u32::from_str_radix(addr, 16)
        .map_err(|_| format!("mc_addr {addr:?} is not 8 hex digits"))?;
    let key = |name: &str| -> Result<Key, String> {
        let mut k = [0; 16];
        hex::decode_to_slice(field.require(name)?, &mut k)
            .map_err(|_| format!("{name} is not 32 hex digits"))?;
        Ok(k)
    };
    let keys = GroupKeys::new(mc_addr, key("mc_key")?);
    if key("app_s_key")? != keys.session.app_s_key || key("nwk_s_key")? != keys.session.nwk_s_key {
        return Err("the session keys do not follow from mc_key".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rows() -> Vec<GroupRow> {
        let t = |s: &str| clock::parse(s).unwrap();
        let setup = McRequest::encode_all(&[McRequest::GroupSetup(
            otavan_protocol::lora::multicast::GroupSetup {
                group: otavan_protocol::lora::multicast::GroupId::new(0).unwrap(),
                mc_addr: 0x0170_7000,
                mc_key_encrypted: [7; 16],
                min_fcount: 1,
                max_fcount: 1001,
            },
        )])
        .unwrap();
        vec![
            GroupRow::Setup {
                mc_addr: 0x0170_7000,
                dev_eui: "70b3d57ed0000001".parse().unwrap(),
                enqueue_at: t("2025-06-03T06:00:00Z"),
                send_by: t("2025-06-03T07:50:00Z"),
                fport: 201,
                frame: setup,
            },
            GroupRow::Wake {
                mc_addr: 0x0170_7000,
                enqueue_at: t("2025-06-03T07:50:00Z"),
                send_by: t("2025-06-03T08:54:24Z"),
                transmit_at: t("2025-06-03T08:54:54Z"),
                fport: 200,
                wake: Wake::new(
                    7,
                    Duration::from_secs(357),
                    Duration::from_secs(900),
                    0,
                    None,
                )
                .unwrap(),
            },
        ]
    }

    #[test]
    fn rows_round_trip_and_bad_ones_are_reported_by_line() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("GROUPS.csv");
        write(&path, &rows()).unwrap();
        assert_eq!(read(&path).unwrap(), rows());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("kind,mc_addr,dev_eui,enqueue_at,send_by,transmit_at,fport,payload_hex\nsetup,01707000,70B3D57ED0000001,"), "{text}");
        let bad = text.replace("setup,01707000", "setup,01707001")
            + "group,01707000,,2025-06-03T06:00:00Z,2025-06-03T06:00:00Z,,200,00\n";
        std::fs::write(&path, bad).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 2: payload_hex sets up no group 01707001"),
            "{error}"
        );
        assert!(
            error.contains("line 4: kind \"group\" is not setup or wake"),
            "{error}"
        );
    }

    #[test]
    fn the_key_file_is_written_0600_and_refused_when_others_may_read_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("GROUPKEYS.csv");
        let keys = [GroupKeys::new(0x0170_7000, [9; 16])];
        write_keys(&path, &keys).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = read_keys(&path).unwrap();
        assert_eq!(back[&0x0170_7000], keys[0]);
        assert_eq!(format!("{:?}", keys[0]), "GroupKeys(01707000, ..)");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_keys(&path).unwrap_err().to_string();
        assert!(
            error.contains("readable by others (mode 644): chmod 600"),
            "{error}"
        );
        let error = read_keys(&dir.path().join("absent.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot read") && error.contains("absent.csv"),
            "{error}"
        );
        // Session keys that do not follow from the group key.
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().nth(1).unwrap();
        let tampered = line[..line.len() - 1].to_owned() + "0";
        let tampered = if tampered == line {
            line[..line.len() - 1].to_owned() + "1"
        } else {
            tampered
        };
        std::fs::write(&path, format!("{}\n{tampered}\n", KEY_COLUMNS.join(","))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = read_keys(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 2: the session keys do not follow from mc_key"),
            "{error}"
        );
    }
}
