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
//! A standing plan (`campaign plan --wake standing`) adds a ninth column,
//! `slot_s`: its group's daily slot, seconds after 00:00 UTC (a plan
//! without standing rows keeps the eight columns). Its kinds: `standing`,
//! a member's installation setup (McGroupSetupReq and otavan's
//! StandingSessionReq, whose first slot falls at `slot_s`), sent like a
//! `setup`; `member`, a meter an earlier plan set up (only `mc_addr`,
//! `dev_eui` and `slot_s`: nothing is sent, the row keeps the group's
//! membership for the next plan); and `wake` with a `slot_s`, the group's
//! WAKE in one of its slots (`transmit_at` inside the slot's window).
//! A meter is in one group at most, and a group has one slot.
//!
//! GROUPKEYS.csv (`mc_addr, mc_key, app_s_key, nwk_s_key`, hex) holds each
//! group's key and the session keys derived from it, for registering the
//! groups on the network server. It is written with mode 0600 and read
//! only if nobody else may read it.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use otavan_planning::standing::WINDOW_EXPONENT as STANDING_WINDOW_EXPONENT;
use otavan_protocol::device_time::DeviceTime;
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

/// The column a standing plan adds: the group's daily slot.
pub const SLOT_COLUMN: &str = "slot_s";

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
    /// A member's installation setup for a standing group, by unicast.
    Standing {
        /// The group.
        mc_addr: u32,
        /// The member.
        dev_eui: DevEui,
        /// The group's slot, seconds after 00:00 UTC.
        slot_s: u32,
        /// Queue it from then.
        enqueue_at: OffsetDateTime,
        /// And no later than this.
        send_by: OffsetDateTime,
        /// The setup FPort.
        fport: u8,
        /// McGroupSetupReq and StandingSessionReq.
        frame: Vec<u8>,
    },
    /// A meter an earlier plan set up for a standing group: nothing to
    /// send, kept for the next plan.
    Member {
        /// The group.
        mc_addr: u32,
        /// The member.
        dev_eui: DevEui,
        /// The group's slot, seconds after 00:00 UTC.
        slot_s: u32,
    },
    /// A standing group's WAKE in one of its daily slots.
    SlotWake {
        /// The group.
        mc_addr: u32,
        /// The group's slot, seconds after 00:00 UTC.
        slot_s: u32,
        /// Queue it from then.
        enqueue_at: OffsetDateTime,
        /// And no later than this.
        send_by: OffsetDateTime,
        /// When the gateway transmits it (inside the slot's window).
        transmit_at: OffsetDateTime,
        /// The command FPort.
        fport: u8,
        /// The command.
        wake: Wake,
    },
}

impl GroupRow {
    /// When to queue it (`None`: a member row, nothing to send).
    pub fn enqueue_at(&self) -> Option<OffsetDateTime> {
        match self {
            GroupRow::Setup { enqueue_at, .. }
            | GroupRow::Wake { enqueue_at, .. }
            | GroupRow::Standing { enqueue_at, .. }
            | GroupRow::SlotWake { enqueue_at, .. } => Some(*enqueue_at),
            GroupRow::Member { .. } => None,
        }
    }

    /// The latest time it may be queued (`None`: a member row).
    pub fn send_by(&self) -> Option<OffsetDateTime> {
        match self {
            GroupRow::Setup { send_by, .. }
            | GroupRow::Wake { send_by, .. }
            | GroupRow::Standing { send_by, .. }
            | GroupRow::SlotWake { send_by, .. } => Some(*send_by),
            GroupRow::Member { .. } => None,
        }
    }

    /// The group.
    pub fn mc_addr(&self) -> u32 {
        match self {
            GroupRow::Setup { mc_addr, .. }
            | GroupRow::Wake { mc_addr, .. }
            | GroupRow::Standing { mc_addr, .. }
            | GroupRow::Member { mc_addr, .. }
            | GroupRow::SlotWake { mc_addr, .. } => *mc_addr,
        }
    }

    /// The member a row is about (setups and member rows).
    pub fn dev_eui(&self) -> Option<DevEui> {
        match self {
            GroupRow::Setup { dev_eui, .. }
            | GroupRow::Standing { dev_eui, .. }
            | GroupRow::Member { dev_eui, .. } => Some(*dev_eui),
            GroupRow::Wake { .. } | GroupRow::SlotWake { .. } => None,
        }
    }

    /// A standing group's slot, seconds after 00:00 UTC.
    pub fn slot_s(&self) -> Option<u32> {
        match self {
            GroupRow::Standing { slot_s, .. }
            | GroupRow::Member { slot_s, .. }
            | GroupRow::SlotWake { slot_s, .. } => Some(*slot_s),
            GroupRow::Setup { .. } | GroupRow::Wake { .. } => None,
        }
    }

    /// What the progress file records it as: `setup-DEVEUI` (either kind
    /// of setup), `group-ADDR` (a TS005 group's WAKE) or
    /// `group-ADDR@TRANSMIT_AT` (a standing group's WAKE in one slot);
    /// `member-DEVEUI` is never sent.
    pub fn progress_key(&self) -> String {
        match self {
            GroupRow::Setup { dev_eui, .. } | GroupRow::Standing { dev_eui, .. } => {
                format!("setup-{dev_eui}")
            }
            GroupRow::Member { dev_eui, .. } => format!("member-{dev_eui}"),
            GroupRow::Wake { mc_addr, .. } => format!("group-{mc_addr:08X}"),
            GroupRow::SlotWake {
                mc_addr,
                transmit_at,
                ..
            } => format!("group-{mc_addr:08X}@{}", clock::format(*transmit_at)),
        }
    }

    fn record(&self) -> Vec<String> {
        let time = |t: Option<OffsetDateTime>| t.map(clock::format).unwrap_or_default();
        let (kind, transmit_at, fport, payload) = match self {
            GroupRow::Setup { fport, frame, .. } => ("setup", None, Some(*fport), frame.clone()),
            GroupRow::Standing { fport, frame, .. } => {
                ("standing", None, Some(*fport), frame.clone())
            }
            GroupRow::Member { .. } => ("member", None, None, Vec::new()),
            GroupRow::Wake {
                transmit_at,
                fport,
                wake,
                ..
            }
            | GroupRow::SlotWake {
                transmit_at,
                fport,
                wake,
                ..
            } => ("wake", Some(*transmit_at), Some(*fport), wake.encode()),
        };
        vec![
            kind.to_owned(),
            format!("{:08X}", self.mc_addr()),
            self.dev_eui().map(|d| d.to_string()).unwrap_or_default(),
            time(self.enqueue_at()),
            time(self.send_by()),
            time(transmit_at),
            fport.map(|p| p.to_string()).unwrap_or_default(),
            hex::encode(payload),
        ]
    }
}

/// GROUPS.csv's text for `rows`: with the `slot_s` column when a row is
/// a standing one.
pub fn to_csv(rows: &[GroupRow]) -> Vec<u8> {
    let standing = rows.iter().any(|r| r.slot_s().is_some());
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = COLUMNS.to_vec();
    if standing {
        header.push(SLOT_COLUMN);
    }
    // Writing into memory cannot fail.
    let _ = writer.write_record(header);
    for row in rows {
        let mut record = row.record();
        if standing {
            record.push(row.slot_s().map(|s| s.to_string()).unwrap_or_default());
        }
        let _ = writer.write_record(record);
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
/// As [`read_lines`].
pub fn read(path: &Path) -> Result<Vec<GroupRow>, InputError> {
    Ok(read_lines(path)?.into_iter().map(|(_, r)| r).collect())
}

/// Reads and checks GROUPS.csv, each row with its line number.
///
/// # Errors
///
/// [`InputError`] listing every bad row: an unknown kind, a payload that
/// does not decode (a setup that is not a group setup for its row's
/// group, a standing setup whose session is not its row's daily slot, a
/// WAKE that is not a WAKE), a slot out of the day, a slot WAKE outside
/// its slot, a group with two slots, a meter in two groups, a row twice.
pub fn read_lines(path: &Path) -> Result<Vec<(u64, GroupRow)>, InputError> {
    let table = Table::read(path, &COLUMNS, &[SLOT_COLUMN])?;
    let mut problems = Problems::default();
    let mut rows = Vec::with_capacity(table.len());
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut groups_of: HashMap<DevEui, (u32, u64)> = HashMap::new();
    let mut slots: HashMap<u32, (u32, u64)> = HashMap::new();
    for (line, field) in table.rows() {
        match row(field) {
            Ok(row) => {
                if let Some(dev_eui) = row.dev_eui() {
                    if let Some((group, first)) = groups_of.insert(dev_eui, (row.mc_addr(), line)) {
                        problems.add(
                            line,
                            format!("{dev_eui} is already in group {group:08X} on line {first}"),
                        );
                    }
                } else if let Some(first) = seen.insert(row.progress_key(), line) {
                    problems.add(
                        line,
                        format!("{} is already on line {first}", row.progress_key()),
                    );
                }
                if let Some(slot) = row.slot_s() {
                    match slots.get(&row.mc_addr()) {
                        Some(&(other, first)) if other != slot => problems.add(
                            line,
                            format!(
                                "group {:08X} has slot_s {other} on line {first}, not {slot}",
                                row.mc_addr()
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            slots.insert(row.mc_addr(), (slot, line));
                        }
                    }
                }
                rows.push((line, row));
            }
            Err(message) => problems.add(line, message),
        }
    }
    problems.check(path)?;
    Ok(rows)
}

/// A `slot_s` field: whole seconds within the day.
fn slot(field: Field<'_>) -> Result<u32, String> {
    let text = field.require(SLOT_COLUMN)?;
    text.parse::<u32>()
        .ok()
        .filter(|s| u64::from(*s) < DAY_S)
        .ok_or_else(|| format!("slot_s {text:?} is not a whole second of the day (0-86399)"))
}

/// A day, seconds: standing slots come back every day.
const DAY_S: u64 = 86_400;

fn row(field: Field<'_>) -> Result<GroupRow, String> {
    let mc_addr = field.require("mc_addr")?;
    let mc_addr = u32::from_str_radix(mc_addr, 16)
        .map_err(|_| format!("mc_addr {mc_addr:?} is not 8 hex digits"))?;
    match field.require("kind")? {
        "member" => Ok(GroupRow::Member {
            mc_addr,
            dev_eui: field.require("dev_eui")?.parse()?,
            slot_s: slot(field)?,
        }),
        kind @ ("setup" | "standing") => setup_row(field, mc_addr, kind == "standing"),
        "wake" => wake_row(field, mc_addr),
        other => Err(format!(
            "kind {other:?} is not setup, wake, standing or member"
        )),
    }
}

/// What every row that is sent has: when to queue it, its port and its
/// payload.
struct Queued {
    enqueue_at: OffsetDateTime,
    send_by: OffsetDateTime,
    fport: u8,
    payload: Vec<u8>,
}

fn queued(field: Field<'_>) -> Result<Queued, String> {
    let fport = field.require("fport")?;
    let fport = fport
        .parse::<u8>()
        .ok()
        .filter(|p| otavan_protocol::lora::APP_FPORTS.contains(p))
        .ok_or_else(|| format!("fport {fport:?} is not an application port (1-223)"))?;
    let payload = field.require("payload_hex")?;
    Ok(Queued {
        enqueue_at: time(field, "enqueue_at")?,
        send_by: time(field, "send_by")?,
        fport,
        payload: hex::decode(payload).map_err(|_| format!("payload_hex {payload:?} is not hex"))?,
    })
}

/// Column `name` as an RFC 3339 time.
fn time(field: Field<'_>, name: &str) -> Result<OffsetDateTime, String> {
    field
        .require(name)
        .and_then(|t| clock::parse(t).map_err(|e| format!("{name}: {e}")))
}

/// A TS005 `setup` row, or (`standing`) a standing group's installation
/// setup whose session is a daily slot at the row's `slot_s`.
fn setup_row(field: Field<'_>, mc_addr: u32, standing: bool) -> Result<GroupRow, String> {
    let q = queued(field)?;
    let dev_eui: DevEui = field.require("dev_eui")?.parse()?;
    let requests = McRequest::decode_all(&q.payload)
        .map_err(|e| format!("payload_hex is not a multicast setup: {e}"))?;
    let names_group = requests
        .iter()
        .any(|r| matches!(r, McRequest::GroupSetup(s) if s.mc_addr == mc_addr));
    if !names_group {
        return Err(format!("payload_hex sets up no group {mc_addr:08X}"));
    }
    if !standing {
        if field.get(SLOT_COLUMN).is_some() {
            return Err("a setup row has no slot_s (a standing one is kind standing)".into());
        }
        return Ok(GroupRow::Setup {
            mc_addr,
            dev_eui,
            enqueue_at: q.enqueue_at,
            send_by: q.send_by,
            fport: q.fport,
            frame: q.payload,
        });
    }
    let slot_s = slot(field)?;
    let session = requests.iter().find_map(|r| match r {
        McRequest::StandingSession(s) => Some(*s),
        _ => None,
    });
    let Some(session) = session else {
        return Err("payload_hex has no standing session".into());
    };
    let first = DeviceTime {
        gps_seconds: session.first_slot,
        fraction: 0,
    }
    .to_unix()
    .as_secs();
    if u64::from(session.period_s()) != DAY_S || first % DAY_S != u64::from(slot_s) {
        return Err(format!(
            "payload_hex's standing session is not a daily slot at slot_s {slot_s}"
        ));
    }
    Ok(GroupRow::Standing {
        mc_addr,
        dev_eui,
        slot_s,
        enqueue_at: q.enqueue_at,
        send_by: q.send_by,
        fport: q.fport,
        frame: q.payload,
    })
}

/// A group's WAKE: a TS005 group's, or with `slot_s` a standing group's,
/// transmitted inside that slot's window.
fn wake_row(field: Field<'_>, mc_addr: u32) -> Result<GroupRow, String> {
    let q = queued(field)?;
    let wake = Wake::decode(&q.payload).map_err(|e| format!("payload_hex is not a WAKE: {e}"))?;
    let transmit_at = time(field, "transmit_at")?;
    if field.get(SLOT_COLUMN).is_none() {
        return Ok(GroupRow::Wake {
            mc_addr,
            enqueue_at: q.enqueue_at,
            send_by: q.send_by,
            transmit_at,
            fport: q.fport,
            wake,
        });
    }
    let slot_s = slot(field)?;
    let into_slot = (transmit_at.unix_timestamp() - i64::from(slot_s)).rem_euclid(DAY_S as i64);
    if into_slot >= 1 << STANDING_WINDOW_EXPONENT {
        return Err(format!(
            "transmit_at {} is not inside the slot at slot_s {slot_s}",
            clock::format(transmit_at)
        ));
    }
    Ok(GroupRow::SlotWake {
        mc_addr,
        slot_s,
        enqueue_at: q.enqueue_at,
        send_by: q.send_by,
        transmit_at,
        fport: q.fport,
        wake,
    })
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
            error.contains("line 4: kind \"group\" is not setup, wake, standing or member"),
            "{error}"
        );
    }

    #[test]
    fn standing_rows_round_trip_with_their_slot_and_a_wake_outside_it_is_refused() {
        let t = |s: &str| clock::parse(s).unwrap();
        let root = otavan_protocol::lora::multicast::McRootKey::from_gen_app_key(&[3; 16]);
        // Slot 00:00:15, first on 2025-06-02.
        let frame = otavan_planning::standing::setup_frame(
            0x0180_0000,
            &[4; 16],
            &root,
            Duration::from_secs(1_748_822_415),
            otavan_protocol::region::Region::Eu868,
        );
        let wake = Wake::new(
            7,
            Duration::from_secs(3600),
            Duration::from_secs(900),
            0,
            None,
        )
        .unwrap();
        let rows = vec![
            GroupRow::Standing {
                mc_addr: 0x0180_0000,
                dev_eui: "70b3d57ed0000001".parse().unwrap(),
                slot_s: 15,
                enqueue_at: t("2025-06-01T06:00:00Z"),
                send_by: t("2025-06-01T20:00:00Z"),
                fport: 201,
                frame,
            },
            GroupRow::Member {
                mc_addr: 0x0180_0000,
                dev_eui: "70b3d57ed0000002".parse().unwrap(),
                slot_s: 15,
            },
            GroupRow::SlotWake {
                mc_addr: 0x0180_0000,
                slot_s: 15,
                enqueue_at: t("2025-06-01T23:50:17Z"),
                send_by: t("2025-06-01T23:59:47Z"),
                transmit_at: t("2025-06-02T00:00:17Z"),
                fport: 200,
                wake,
            },
        ];
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("GROUPS.csv");
        write(&path, &rows).unwrap();
        assert_eq!(read(&path).unwrap(), rows);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\nmember,01800000,70B3D57ED0000002,,,,,,15\n"),
            "{text}"
        );
        assert_eq!(
            rows[2].progress_key(),
            "group-01800000@2025-06-02T00:00:17Z"
        );
        // Transmitted 8 s into the slot: after its window; a standing
        // setup whose session is another slot; a second slot for the group.
        let bad = text
            .replace("2025-06-02T00:00:17Z", "2025-06-02T00:00:23Z")
            .replacen(",15\n", ",30\n", 1);
        std::fs::write(&path, bad).unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains(
                "line 2: payload_hex's standing session is not a daily slot at slot_s 30"
            ),
            "{error}"
        );
        assert!(
            error.contains(
                "line 4: transmit_at 2025-06-02T00:00:23Z is not inside the slot at slot_s 15"
            ),
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
