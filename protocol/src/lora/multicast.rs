//! LoRaWAN Remote Multicast Setup (TS005-1.0.0): the messages that give a
//! meter a multicast group (address, key, frame counter range) and open a
//! class C window for it, and the keys derived from them.
//!
//! One multicast downlink can then wake every meter of a street segment at
//! once instead of one unicast WAKE per meter.
//!
//! # Wire format
//!
//! Each message is a command identifier (CID) byte followed by its fields;
//! a frame carries any number of them back to back. Integers are
//! little-endian, as everywhere in LoRaWAN.
//!
//! | request (network → meter) | CID | fields | bytes |
//! |---|---|---|---|
//! | PackageVersionReq | 0 | — | 1 |
//! | McGroupStatusReq | 1 | `req_group_mask` (bits 3:0) | 2 |
//! | McGroupSetupReq | 2 | `group` (bits 1:0) `mc_addr:u32` `mc_key_encrypted:[u8;16]` `min_fcount:u32` `max_fcount:u32` | 30 |
//! | McGroupDeleteReq | 3 | `group` | 2 |
//! | McClassCSessionReq | 4 | `group` `session_time:u32` `timeout` (bits 3:0) `frequency:u24` (100 Hz) `dr:u8` | 11 |
//! | StandingSessionReq (otavan) | 0x80 | `group` `first_slot:u32` `period:u16` (minutes, ≥ 1) `timeout` (bits 3:0) `frequency:u24` (100 Hz) `dr:u8` | 13 |
//!
//! | answer (meter → network) | CID | fields | bytes |
//! |---|---|---|---|
//! | PackageVersionAns | 0 | `package:u8` (2) `version:u8` (1) | 3 |
//! | McGroupStatusAns | 1 | `status` (bits 6:4 groups defined, 3:0 answer mask), then `group` `mc_addr:u32` per bit of the mask | 2 + 5 n |
//! | McGroupSetupAns | 2 | bit 2 `id_error`, bits 1:0 `group` | 2 |
//! | McGroupDeleteAns | 3 | bit 2 `group_undefined`, bits 1:0 `group` | 2 |
//! | McClassCSessionAns | 4 | bit 5 `group_undefined`, bit 4 `freq_error`, bit 3 `dr_error`, bits 1:0 `group`, then `time_to_start:u24` when no error bit is set | 2 or 5 |
//! | StandingSessionAns (otavan) | 0x80 | as McClassCSessionAns, `time_to_start` of the next slot | 2 or 5 |
//!
//! StandingSessionReq is otavan's extension, outside TS005's command
//! range: a class C window that comes back every `period` minutes from
//! `first_slot` on, until the group is deleted or set up again. A group
//! set up once with a standing session can be woken by one multicast
//! frame in any later slot, with no unicast downlink per campaign (the
//! TS005 session needs one per member each time).
//!
//! `session_time` is GPS time (seconds since 1980-01-06) modulo 2^32; the
//! window lasts `2^timeout` seconds. Decoding checks exact lengths and that
//! reserved bits are 0, so a decoded frame encodes back to the same bytes,
//! and never panics.
//!
//! # Keys
//!
//! The meter derives its multicast keys from a key it already has
//! ([`McRootKey`]), so the group key travels encrypted: `McKEKey =
//! aes128(McRootKey, 0x00 | pad)`, the group key `McKey = aes128(McKEKey,
//! mc_key_encrypted)`, and the group's session keys `McAppSKey =
//! aes128(McKey, 0x01 | mc_addr | pad)`, `McNwkSKey = aes128(McKey, 0x02 |
//! mc_addr | pad)`.
//!
//! The package's registered port is 200, which is also otavan's
//! [`super::DEFAULT_FPORT`]: a fleet that uses both gives otavan's
//! commands another port.

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};

/// The FPort the LoRa Alliance registered for Remote Multicast Setup.
pub const MULTICAST_SETUP_FPORT: u8 = 200;

/// The setup FPort otavan provisions on meters and the operator's tools
/// send setups on: TS005's 200 is otavan's command port.
pub const OTAVAN_SETUP_FPORT: u8 = 201;

/// This package's identifier in PackageVersionAns.
pub const PACKAGE_IDENTIFIER: u8 = 2;

/// The package version this module implements.
pub const PACKAGE_VERSION: u8 = 1;

/// Groups a meter can hold (group ids 0..=3).
pub const MAX_GROUPS: u8 = 4;

/// The longest class C window, as a power of two of seconds (2^15 s,
/// about 9 hours).
pub const MAX_TIMEOUT_EXPONENT: u8 = 15;

/// Command identifiers.
pub mod cid {
    /// PackageVersionReq / Ans.
    pub const PACKAGE_VERSION: u8 = 0x00;
    /// McGroupStatusReq / Ans.
    pub const GROUP_STATUS: u8 = 0x01;
    /// McGroupSetupReq / Ans.
    pub const GROUP_SETUP: u8 = 0x02;
    /// McGroupDeleteReq / Ans.
    pub const GROUP_DELETE: u8 = 0x03;
    /// McClassCSessionReq / Ans.
    pub const CLASS_C_SESSION: u8 = 0x04;
    /// StandingSessionReq / Ans (otavan's extension).
    pub const STANDING_SESSION: u8 = 0x80;
}

/// Why a multicast setup frame cannot be decoded or a value encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MulticastError {
    /// A command identifier this package does not know (class B sessions,
    /// 0x05, are not supported).
    #[error("unknown multicast setup command 0x{0:02x}")]
    UnknownCommand(u8),
    /// The frame ends inside a command.
    #[error("multicast setup command 0x{cid:02x} needs {needed} bytes, {left} left")]
    Truncated {
        /// The command.
        cid: u8,
        /// Bytes the command needs after its CID.
        needed: usize,
        /// Bytes left in the frame.
        left: usize,
    },
    /// Reserved bits are set in a field.
    #[error("multicast setup command 0x{cid:02x}: reserved bits set in 0x{byte:02x}")]
    ReservedBits {
        /// The command.
        cid: u8,
        /// The field's byte.
        byte: u8,
    },
    /// A group id above 3.
    #[error("multicast group {0} does not exist (0..=3)")]
    BadGroup(u8),
    /// A frequency that is not a multiple of 100 Hz below 2^24 × 100 Hz.
    #[error("{0} Hz cannot be sent: a multiple of 100 Hz below 1677.7216 MHz")]
    BadFrequency(u32),
    /// A window longer than 2^15 s.
    #[error("class C window exponent {0} is above 15")]
    BadTimeout(u8),
    /// A time to start that does not fit 24 bits.
    #[error("time to start {0} s does not fit 24 bits")]
    BadTimeToStart(u32),
    /// A standing session whose period is 0 minutes.
    #[error("a standing session's period must be at least one minute")]
    BadPeriod,
}

/// A multicast group slot on the meter, 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(u8);

impl GroupId {
    /// Group `id`, if it is 0..=3.
    pub fn new(id: u8) -> Result<GroupId, MulticastError> {
        match id < MAX_GROUPS {
            true => Ok(GroupId(id)),
            false => Err(MulticastError::BadGroup(id)),
        }
    }

    /// The id, 0..=3.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A group's parameters, as McGroupSetupReq carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSetup {
    /// The slot.
    pub group: GroupId,
    /// The group's device address.
    pub mc_addr: u32,
    /// The group key, encrypted with the meter's McKEKey.
    pub mc_key_encrypted: [u8; 16],
    /// The first frame counter the meter accepts.
    pub min_fcount: u32,
    /// The last frame counter the meter accepts (the group expires after).
    pub max_fcount: u32,
}

/// A class C window for a group, as McClassCSessionReq carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassCSession {
    /// The slot.
    pub group: GroupId,
    /// When the window opens: GPS seconds modulo 2^32.
    pub session_time: u32,
    /// The window lasts `2^timeout_exponent` seconds (0..=15).
    pub timeout_exponent: u8,
    /// The downlink frequency, Hz (a multiple of 100).
    pub frequency_hz: u32,
    /// The downlink data rate index.
    pub data_rate: u8,
}

impl ClassCSession {
    /// How long the window stays open, seconds.
    pub fn window_s(&self) -> u32 {
        1 << self.timeout_exponent
    }
}

/// A class C window that comes back every period, as otavan's
/// StandingSessionReq carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandingSession {
    /// The slot.
    pub group: GroupId,
    /// When the first window opens: GPS seconds modulo 2^32.
    pub first_slot: u32,
    /// Minutes from one window's opening to the next (at least 1).
    pub period_minutes: u16,
    /// Each window lasts `2^timeout_exponent` seconds (0..=15).
    pub timeout_exponent: u8,
    /// The downlink frequency, Hz (a multiple of 100).
    pub frequency_hz: u32,
    /// The downlink data rate index.
    pub data_rate: u8,
}

impl StandingSession {
    /// How long each window stays open, seconds.
    pub fn window_s(&self) -> u32 {
        1 << self.timeout_exponent
    }

    /// Seconds from one window's opening to the next.
    pub fn period_s(&self) -> u32 {
        u32::from(self.period_minutes) * 60
    }
}

/// A request from the network to the meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McRequest {
    /// Which version of the package the meter runs.
    PackageVersion,
    /// The status of the groups in the mask (bit n: group n).
    GroupStatus {
        /// Bits 3:0.
        mask: u8,
    },
    /// Define (or redefine) a group.
    GroupSetup(GroupSetup),
    /// Forget a group.
    GroupDelete(GroupId),
    /// Open a class C window for a group.
    ClassCSession(ClassCSession),
    /// Open a class C window for a group every period (otavan).
    StandingSession(StandingSession),
}

/// What McClassCSessionAns reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAnswer {
    /// The window is scheduled, starting in this many seconds (24 bits).
    Scheduled {
        /// Seconds from the answer to the window.
        time_to_start: u32,
    },
    /// Refused, with the reasons.
    Refused {
        /// The group is not defined.
        group_undefined: bool,
        /// The frequency is not usable.
        freq_error: bool,
        /// The data rate is not usable.
        dr_error: bool,
    },
}

/// An answer from the meter to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McAnswer {
    /// The package and its version.
    PackageVersion {
        /// [`PACKAGE_IDENTIFIER`].
        package: u8,
        /// [`PACKAGE_VERSION`].
        version: u8,
    },
    /// How many groups are defined, and the address of each asked for
    /// that is.
    GroupStatus {
        /// Groups defined on the meter (0..=4).
        defined: u8,
        /// The asked-for groups that are defined, with their addresses.
        groups: Vec<(GroupId, u32)>,
    },
    /// The outcome of a setup: `id_error` when the group id is refused.
    GroupSetup {
        /// The slot.
        group: GroupId,
        /// The meter refused the id.
        id_error: bool,
    },
    /// The outcome of a delete: `undefined` when there was no such group.
    GroupDelete {
        /// The slot.
        group: GroupId,
        /// The group was not defined.
        undefined: bool,
    },
    /// The outcome of a class C session request.
    ClassCSession {
        /// The slot.
        group: GroupId,
        /// Scheduled or refused.
        answer: SessionAnswer,
    },
    /// The outcome of a standing session request (otavan).
    StandingSession {
        /// The slot.
        group: GroupId,
        /// Scheduled (the next slot) or refused.
        answer: SessionAnswer,
    },
}

/// Reads the bytes of one command after its CID.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, cid: u8, n: usize) -> Result<&'a [u8], MulticastError> {
        if self.bytes.len() < n {
            return Err(MulticastError::Truncated {
                cid,
                needed: n,
                left: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le24(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

/// A byte whose bits outside `allowed` must be 0.
fn checked(cid: u8, byte: u8, allowed: u8) -> Result<u8, MulticastError> {
    match byte & !allowed {
        0 => Ok(byte),
        _ => Err(MulticastError::ReservedBits { cid, byte }),
    }
}

fn group_header(cid: u8, byte: u8) -> Result<GroupId, MulticastError> {
    GroupId::new(checked(cid, byte, 0x03)?)
}

/// Checks a session's window exponent and frequency, and gives the
/// frequency's three bytes (units of 100 Hz).
fn radio_fields(timeout_exponent: u8, frequency_hz: u32) -> Result<[u8; 3], MulticastError> {
    if timeout_exponent > MAX_TIMEOUT_EXPONENT {
        return Err(MulticastError::BadTimeout(timeout_exponent));
    }
    if !frequency_hz.is_multiple_of(100) || frequency_hz / 100 >= 1 << 24 {
        return Err(MulticastError::BadFrequency(frequency_hz));
    }
    let [a, b, c, _] = (frequency_hz / 100).to_le_bytes();
    Ok([a, b, c])
}

impl McRequest {
    /// Every request in a frame, in order.
    pub fn decode_all(frame: &[u8]) -> Result<Vec<McRequest>, MulticastError> {
        let mut reader = Reader { bytes: frame };
        let mut requests = Vec::new();
        while let Some((&cid, rest)) = reader.bytes.split_first() {
            reader.bytes = rest;
            requests.push(McRequest::decode_one(cid, &mut reader)?);
        }
        Ok(requests)
    }

    fn decode_one(cid: u8, reader: &mut Reader<'_>) -> Result<McRequest, MulticastError> {
        Ok(match cid {
            cid::PACKAGE_VERSION => McRequest::PackageVersion,
            cid::GROUP_STATUS => McRequest::GroupStatus {
                mask: checked(cid, reader.take(cid, 1)?[0], 0x0f)?,
            },
            cid::GROUP_SETUP => {
                let b = reader.take(cid, 29)?;
                McRequest::GroupSetup(GroupSetup {
                    group: group_header(cid, b[0])?,
                    mc_addr: le32(&b[1..5]),
                    mc_key_encrypted: b[5..21].try_into().expect("16 bytes"),
                    min_fcount: le32(&b[21..25]),
                    max_fcount: le32(&b[25..29]),
                })
            }
            cid::GROUP_DELETE => {
                McRequest::GroupDelete(group_header(cid, reader.take(cid, 1)?[0])?)
            }
            cid::CLASS_C_SESSION => {
                let b = reader.take(cid, 10)?;
                McRequest::ClassCSession(ClassCSession {
                    group: group_header(cid, b[0])?,
                    session_time: le32(&b[1..5]),
                    timeout_exponent: checked(cid, b[5], 0x0f)?,
                    frequency_hz: le24(&b[6..9]) * 100,
                    data_rate: b[9],
                })
            }
            cid::STANDING_SESSION => {
                let b = reader.take(cid, 12)?;
                let period_minutes = u16::from_le_bytes([b[5], b[6]]);
                if period_minutes == 0 {
                    return Err(MulticastError::BadPeriod);
                }
                McRequest::StandingSession(StandingSession {
                    group: group_header(cid, b[0])?,
                    first_slot: le32(&b[1..5]),
                    period_minutes,
                    timeout_exponent: checked(cid, b[7], 0x0f)?,
                    frequency_hz: le24(&b[8..11]) * 100,
                    data_rate: b[11],
                })
            }
            other => return Err(MulticastError::UnknownCommand(other)),
        })
    }

    /// Appends the request's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MulticastError> {
        match self {
            McRequest::PackageVersion => out.push(cid::PACKAGE_VERSION),
            McRequest::GroupStatus { mask } => {
                out.extend([cid::GROUP_STATUS, checked(cid::GROUP_STATUS, *mask, 0x0f)?]);
            }
            McRequest::GroupSetup(setup) => {
                out.extend([cid::GROUP_SETUP, setup.group.0]);
                out.extend(setup.mc_addr.to_le_bytes());
                out.extend(setup.mc_key_encrypted);
                out.extend(setup.min_fcount.to_le_bytes());
                out.extend(setup.max_fcount.to_le_bytes());
            }
            McRequest::GroupDelete(group) => out.extend([cid::GROUP_DELETE, group.0]),
            McRequest::ClassCSession(session) => {
                let f = radio_fields(session.timeout_exponent, session.frequency_hz)?;
                out.extend([cid::CLASS_C_SESSION, session.group.0]);
                out.extend(session.session_time.to_le_bytes());
                out.push(session.timeout_exponent);
                out.extend(f);
                out.push(session.data_rate);
            }
            McRequest::StandingSession(session) => {
                let f = radio_fields(session.timeout_exponent, session.frequency_hz)?;
                if session.period_minutes == 0 {
                    return Err(MulticastError::BadPeriod);
                }
                out.extend([cid::STANDING_SESSION, session.group.0]);
                out.extend(session.first_slot.to_le_bytes());
                out.extend(session.period_minutes.to_le_bytes());
                out.push(session.timeout_exponent);
                out.extend(f);
                out.push(session.data_rate);
            }
        }
        Ok(())
    }

    /// The requests as one frame.
    pub fn encode_all(requests: &[McRequest]) -> Result<Vec<u8>, MulticastError> {
        let mut out = Vec::new();
        for request in requests {
            request.encode_into(&mut out)?;
        }
        Ok(out)
    }
}

impl McAnswer {
    /// Every answer in a frame, in order.
    pub fn decode_all(frame: &[u8]) -> Result<Vec<McAnswer>, MulticastError> {
        let mut reader = Reader { bytes: frame };
        let mut answers = Vec::new();
        while let Some((&cid, rest)) = reader.bytes.split_first() {
            reader.bytes = rest;
            answers.push(McAnswer::decode_one(cid, &mut reader)?);
        }
        Ok(answers)
    }

    fn decode_one(cid: u8, reader: &mut Reader<'_>) -> Result<McAnswer, MulticastError> {
        Ok(match cid {
            cid::PACKAGE_VERSION => {
                let b = reader.take(cid, 2)?;
                McAnswer::PackageVersion {
                    package: b[0],
                    version: b[1],
                }
            }
            cid::GROUP_STATUS => {
                let status = checked(cid, reader.take(cid, 1)?[0], 0x7f)?;
                let mask = status & 0x0f;
                let mut groups = Vec::new();
                for id in 0..MAX_GROUPS {
                    if mask & (1 << id) != 0 {
                        let b = reader.take(cid, 5)?;
                        let group = group_header(cid, b[0])?;
                        if group.0 != id {
                            return Err(MulticastError::BadGroup(b[0]));
                        }
                        groups.push((group, le32(&b[1..5])));
                    }
                }
                McAnswer::GroupStatus {
                    defined: status >> 4,
                    groups,
                }
            }
            cid::GROUP_SETUP => {
                let b = checked(cid, reader.take(cid, 1)?[0], 0x07)?;
                McAnswer::GroupSetup {
                    group: GroupId(b & 0x03),
                    id_error: b & 0x04 != 0,
                }
            }
            cid::GROUP_DELETE => {
                let b = checked(cid, reader.take(cid, 1)?[0], 0x07)?;
                McAnswer::GroupDelete {
                    group: GroupId(b & 0x03),
                    undefined: b & 0x04 != 0,
                }
            }
            cid::CLASS_C_SESSION => {
                let (group, answer) = decode_session_answer(cid, reader)?;
                McAnswer::ClassCSession { group, answer }
            }
            cid::STANDING_SESSION => {
                let (group, answer) = decode_session_answer(cid, reader)?;
                McAnswer::StandingSession { group, answer }
            }
            other => return Err(MulticastError::UnknownCommand(other)),
        })
    }

    /// Appends the answer's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MulticastError> {
        match self {
            McAnswer::PackageVersion { package, version } => {
                out.extend([cid::PACKAGE_VERSION, *package, *version]);
            }
            McAnswer::GroupStatus { defined, groups } => {
                let mask = groups.iter().fold(0u8, |m, (g, _)| m | 1 << g.0);
                if *defined > MAX_GROUPS || groups.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(MulticastError::BadGroup(*defined));
                }
                out.extend([cid::GROUP_STATUS, defined << 4 | mask]);
                for (group, addr) in groups {
                    out.push(group.0);
                    out.extend(addr.to_le_bytes());
                }
            }
            McAnswer::GroupSetup { group, id_error } => {
                out.extend([cid::GROUP_SETUP, group.0 | u8::from(*id_error) << 2]);
            }
            McAnswer::GroupDelete { group, undefined } => {
                out.extend([cid::GROUP_DELETE, group.0 | u8::from(*undefined) << 2]);
            }
            McAnswer::ClassCSession { group, answer } => {
                encode_session_answer(cid::CLASS_C_SESSION, *group, answer, out)?;
            }
            McAnswer::StandingSession { group, answer } => {
                encode_session_answer(cid::STANDING_SESSION, *group, answer, out)?;
            }
        }
        Ok(())
    }
}

/// Reads a session answer (McClassCSessionAns's layout) after its CID.
fn decode_session_answer(
    cid: u8,
    reader: &mut Reader<'_>,
) -> Result<(GroupId, SessionAnswer), MulticastError> {
    let b = checked(cid, reader.take(cid, 1)?[0], 0x3b)?;
    let (group_undefined, freq_error, dr_error) = (b & 0x20 != 0, b & 0x10 != 0, b & 0x08 != 0);
    let answer = match group_undefined || freq_error || dr_error {
        true => SessionAnswer::Refused {
            group_undefined,
            freq_error,
            dr_error,
        },
        false => SessionAnswer::Scheduled {
            time_to_start: le24(reader.take(cid, 3)?),
        },
    };
    Ok((GroupId(b & 0x03), answer))
}

/// Appends a session answer (McClassCSessionAns's layout) with `cid`.
fn encode_session_answer(
    cid: u8,
    group: GroupId,
    answer: &SessionAnswer,
    out: &mut Vec<u8>,
) -> Result<(), MulticastError> {
    match answer {
        SessionAnswer::Scheduled { time_to_start } => {
            if *time_to_start >= 1 << 24 {
                return Err(MulticastError::BadTimeToStart(*time_to_start));
            }
            out.extend([cid, group.0]);
            out.extend(&time_to_start.to_le_bytes()[..3]);
        }
        SessionAnswer::Refused {
            group_undefined,
            freq_error,
            dr_error,
        } => {
            let bits = u8::from(*group_undefined) << 5
                | u8::from(*freq_error) << 4
                | u8::from(*dr_error) << 3;
            if bits == 0 {
                // A refusal with no reason would read as scheduled.
                return Err(MulticastError::ReservedBits { cid, byte: group.0 });
            }
            out.extend([cid, group.0 | bits]);
        }
    }
    Ok(())
}

/// An AES-128 key of the multicast scheme.
pub type Key = [u8; 16];

fn aes_encrypt(key: &Key, block: [u8; 16]) -> [u8; 16] {
    let mut block = GenericArray::from(block);
    Aes128::new(&GenericArray::from(*key)).encrypt_block(&mut block);
    block.into()
}

fn aes_decrypt(key: &Key, block: [u8; 16]) -> [u8; 16] {
    let mut block = GenericArray::from(block);
    Aes128::new(&GenericArray::from(*key)).decrypt_block(&mut block);
    block.into()
}

/// A block of `first` then `rest`, zero-padded to 16 bytes.
fn padded(first: u8, rest: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[0] = first;
    block[1..=rest.len()].copy_from_slice(rest);
    block
}

/// The meter's multicast root key, from which the key that protects group
/// keys in transit is derived.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct McRootKey(Key);

impl std::fmt::Debug for McRootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McRootKey(..)")
    }
}

impl McRootKey {
    /// For a LoRaWAN 1.0.x meter: from its GenAppKey.
    pub fn from_gen_app_key(gen_app_key: &Key) -> McRootKey {
        McRootKey(aes_encrypt(gen_app_key, padded(0x00, &[])))
    }

    /// For a LoRaWAN 1.1 meter: from its AppKey.
    pub fn from_app_key(app_key: &Key) -> McRootKey {
        McRootKey(aes_encrypt(app_key, padded(0x20, &[])))
    }

    /// McKEKey, the key group keys travel under.
    fn ke_key(&self) -> Key {
        aes_encrypt(&self.0, padded(0x00, &[]))
    }

    /// The group key as McGroupSetupReq carries it to this meter (what the
    /// network server sends).
    pub fn encrypt_group_key(&self, mc_key: &Key) -> Key {
        aes_decrypt(&self.ke_key(), *mc_key)
    }

    /// The group key from McGroupSetupReq's `mc_key_encrypted` (what the
    /// meter does).
    pub fn decrypt_group_key(&self, mc_key_encrypted: &Key) -> Key {
        aes_encrypt(&self.ke_key(), *mc_key_encrypted)
    }
}

/// A group's session keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GroupSessionKeys {
    /// Encrypts the group's application payloads.
    pub app_s_key: Key,
    /// Computes the group's frame MICs.
    pub nwk_s_key: Key,
}

impl std::fmt::Debug for GroupSessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupSessionKeys(..)")
    }
}

impl GroupSessionKeys {
    /// The session keys of group `mc_addr` with group key `mc_key`.
    pub fn derive(mc_key: &Key, mc_addr: u32) -> GroupSessionKeys {
        let addr = mc_addr.to_le_bytes();
        GroupSessionKeys {
            app_s_key: aes_encrypt(mc_key, padded(0x01, &addr)),
            nwk_s_key: aes_encrypt(mc_key, padded(0x02, &addr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> McRequest {
        McRequest::GroupSetup(GroupSetup {
            group: GroupId::new(1).unwrap(),
            mc_addr: 0x0102_0304,
            mc_key_encrypted: [0xaa; 16],
            min_fcount: 5,
            max_fcount: 1000,
        })
    }

    fn session() -> McRequest {
        McRequest::ClassCSession(ClassCSession {
            group: GroupId::new(1).unwrap(),
            session_time: 0x1122_3344,
            timeout_exponent: 7,
            frequency_hz: 869_525_000,
            data_rate: 0,
        })
    }

    /// The bytes laid out by hand from TS005's tables.
    #[test]
    fn requests_encode_as_the_specification_lays_them_out() {
        let bytes = McRequest::encode_all(&[setup()]).unwrap();
        let mut expected = vec![0x02, 0x01, 0x04, 0x03, 0x02, 0x01];
        expected.extend([0xaa; 16]);
        expected.extend([5, 0, 0, 0, 0xe8, 0x03, 0, 0]);
        assert_eq!(bytes, expected);
        // 869.525 MHz is 8,695,250 units of 100 Hz: 0x84add2.
        let bytes = McRequest::encode_all(&[session()]).unwrap();
        assert_eq!(
            bytes,
            [
                0x04, 0x01, 0x44, 0x33, 0x22, 0x11, 0x07, 0xd2, 0xad, 0x84, 0x00
            ]
        );
    }

    fn standing() -> McRequest {
        McRequest::StandingSession(StandingSession {
            group: GroupId::new(2).unwrap(),
            first_slot: 0x1122_3344,
            period_minutes: 1440,
            timeout_exponent: 3,
            frequency_hz: 869_525_000,
            data_rate: 0,
        })
    }

    /// otavan's extension, laid out by hand from the table above.
    #[test]
    fn a_standing_session_encodes_as_the_table_lays_it_out() {
        let bytes = McRequest::encode_all(&[standing()]).unwrap();
        // 1440 minutes is 0x05a0.
        assert_eq!(
            bytes,
            [
                0x80, 0x02, 0x44, 0x33, 0x22, 0x11, 0xa0, 0x05, 0x03, 0xd2, 0xad, 0x84, 0x00
            ]
        );
        assert_eq!(McRequest::decode_all(&bytes).unwrap(), [standing()]);
        let McRequest::StandingSession(session) = standing() else {
            unreachable!()
        };
        assert_eq!((session.period_s(), session.window_s()), (86_400, 8));
    }

    #[test]
    fn a_standing_session_with_no_period_is_refused() {
        let mut bytes = McRequest::encode_all(&[standing()]).unwrap();
        bytes[6..8].copy_from_slice(&[0, 0]);
        assert_eq!(
            McRequest::decode_all(&bytes),
            Err(MulticastError::BadPeriod)
        );
        let McRequest::StandingSession(mut session) = standing() else {
            unreachable!()
        };
        session.period_minutes = 0;
        assert_eq!(
            McRequest::encode_all(&[McRequest::StandingSession(session)]),
            Err(MulticastError::BadPeriod)
        );
    }

    #[test]
    fn a_frame_of_several_requests_decodes_back() {
        let requests = [
            McRequest::PackageVersion,
            setup(),
            session(),
            McRequest::GroupStatus { mask: 0x0b },
            McRequest::GroupDelete(GroupId::new(3).unwrap()),
            standing(),
        ];
        let frame = McRequest::encode_all(&requests).unwrap();
        assert_eq!(McRequest::decode_all(&frame).unwrap(), requests);
    }

    #[test]
    fn answers_decode_back() {
        let g = |id| GroupId::new(id).unwrap();
        let answers = [
            McAnswer::PackageVersion {
                package: PACKAGE_IDENTIFIER,
                version: PACKAGE_VERSION,
            },
            McAnswer::GroupStatus {
                defined: 2,
                groups: vec![(g(0), 7), (g(2), 0xdead_beef)],
            },
            McAnswer::GroupSetup {
                group: g(1),
                id_error: false,
            },
            McAnswer::GroupDelete {
                group: g(3),
                undefined: true,
            },
            McAnswer::ClassCSession {
                group: g(1),
                answer: SessionAnswer::Scheduled { time_to_start: 300 },
            },
            McAnswer::ClassCSession {
                group: g(2),
                answer: SessionAnswer::Refused {
                    group_undefined: true,
                    freq_error: false,
                    dr_error: true,
                },
            },
            McAnswer::StandingSession {
                group: g(2),
                answer: SessionAnswer::Scheduled {
                    time_to_start: 86_000,
                },
            },
            McAnswer::StandingSession {
                group: g(0),
                answer: SessionAnswer::Refused {
                    group_undefined: false,
                    freq_error: true,
                    dr_error: false,
                },
            },
        ];
        let mut frame = Vec::new();
        for answer in &answers {
            answer.encode_into(&mut frame).unwrap();
        }
        assert_eq!(McAnswer::decode_all(&frame).unwrap(), answers);
    }

    #[test]
    fn bad_frames_are_refused_with_the_reason() {
        let frame = McRequest::encode_all(&[setup()]).unwrap();
        assert_eq!(
            McRequest::decode_all(&frame[..20]),
            Err(MulticastError::Truncated {
                cid: 2,
                needed: 29,
                left: 19
            })
        );
        assert_eq!(
            McRequest::decode_all(&[0x05, 0, 0]),
            Err(MulticastError::UnknownCommand(5))
        );
        assert_eq!(
            McRequest::decode_all(&[0x03, 0x04]),
            Err(MulticastError::ReservedBits { cid: 3, byte: 4 })
        );
        let mut too_long = McRequest::encode_all(&[session()]).unwrap();
        too_long[6] = 0x10;
        assert!(matches!(
            McRequest::decode_all(&too_long),
            Err(MulticastError::ReservedBits { cid: 4, .. })
        ));
        assert_eq!(GroupId::new(4), Err(MulticastError::BadGroup(4)));
        let McRequest::ClassCSession(mut odd) = session() else {
            unreachable!()
        };
        odd.frequency_hz = 869_525_050;
        assert_eq!(
            McRequest::encode_all(&[McRequest::ClassCSession(odd)]),
            Err(MulticastError::BadFrequency(869_525_050))
        );
    }

    /// Whatever bytes arrive, decoding returns and what decodes encodes
    /// back to the same bytes.
    #[test]
    fn any_bytes_decode_canonically_or_are_refused() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 * 5) as u8) % 8)
                .collect();
            if let Ok(requests) = McRequest::decode_all(&bytes) {
                assert_eq!(McRequest::encode_all(&requests).unwrap(), bytes);
            }
            if let Ok(answers) = McAnswer::decode_all(&bytes) {
                let mut out = Vec::new();
                for answer in &answers {
                    answer.encode_into(&mut out).unwrap();
                }
                assert_eq!(out, bytes);
            }
        }
    }

    /// The network encrypts the group key for a meter, the meter recovers
    /// it, and both derive the same session keys; values from Python's
    /// `cryptography` (AES-128-ECB), computed independently.
    #[test]
    fn group_keys_travel_encrypted_and_derive_the_session_keys() {
        let gen_app_key: Key = *b"0123456789abcdef";
        let mc_key: Key = *b"fedcba9876543210";
        let root = McRootKey::from_gen_app_key(&gen_app_key);
        let sent = root.encrypt_group_key(&mc_key);
        assert_ne!(sent, mc_key);
        assert_eq!(root.decrypt_group_key(&sent), mc_key);
        let other = McRootKey::from_gen_app_key(b"another meter's!");
        assert_ne!(other.decrypt_group_key(&sent), mc_key);
        let keys = GroupSessionKeys::derive(&mc_key, 0x0102_0304);
        assert_eq!(hex::encode(sent), EXPECTED_SENT);
        assert_eq!(hex::encode(keys.app_s_key), EXPECTED_APP_S_KEY);
        assert_eq!(hex::encode(keys.nwk_s_key), EXPECTED_NWK_S_KEY);
    }

    const EXPECTED_SENT: &str = "8f4b1978e509d1387f4bbf3b243c093a";
    const EXPECTED_APP_S_KEY: &str = "a7cd433228537c79f6cb7454e4d980ab";
    const EXPECTED_NWK_S_KEY: &str = "64657ce99ce94789df3c8aa4f28b89d4";
}
