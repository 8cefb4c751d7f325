//! The meter's multicast groups (LoRaWAN Remote Multicast Setup, TS005):
//! what it does with the setup requests it receives, and which multicast
//! frames heard in a class C window it accepts.
//!
//! lorawan-device listens in class C but only for the meter's own
//! address, so multicast frames are checked here, with the `lorawan`
//! crate and each group's keys: the frame must be an unconfirmed downlink
//! to a group's address with no MAC commands, its MIC must check with the
//! group's McNwkSKey at a frame counter inside the group's range and above
//! the last one accepted, and it is then decrypted with the group's
//! McAppSKey. A frame for an address the meter has no group for is
//! ignored; one for its group that fails a check is refused, with the
//! reason.

use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::AES128;
use lorawan::parser::{DataHeader, DataPayload, FRMPayload, PhyPayload, parse_with_factory};
use otavan_protocol::lora::multicast::{
    ClassCSession, GroupId, GroupSessionKeys, MAX_GROUPS, McAnswer, McRequest, McRootKey,
    PACKAGE_IDENTIFIER, PACKAGE_VERSION, SessionAnswer,
};

/// One group the meter belongs to.
#[derive(Debug, Clone)]
struct Group {
    addr: u32,
    keys: GroupSessionKeys,
    /// The lowest frame counter still accepted.
    next_fcnt: u32,
    max_fcnt: u32,
    session: Option<ClassCSession>,
}

/// A multicast frame the meter accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDownlink {
    /// The group it was sent to.
    pub group: GroupId,
    /// Its frame counter.
    pub fcnt: u32,
    /// Its application port.
    pub fport: u8,
    /// The decrypted application payload.
    pub payload: Vec<u8>,
}

/// Why a frame heard in a class C window was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Not a LoRaWAN data downlink at all.
    #[error("not a data downlink")]
    NotADownlink,
    /// Sent to an address the meter has no group for (another group's
    /// frame, or a unicast frame for another meter): not for this meter.
    #[error("not for a group of this meter")]
    OtherAddress,
    /// A confirmed frame, or one with MAC commands: multicast frames are
    /// neither.
    #[error("a multicast frame is unconfirmed and carries no MAC commands")]
    NotMulticastShaped,
    /// The frame counter is below the last accepted one or above the
    /// group's range.
    #[error("frame counter {0} outside the group's window")]
    Counter(u32),
    /// The MIC does not check with the group's key: forged, or sent with
    /// another key.
    #[error("the MIC does not check with the group's key")]
    BadMic,
}

/// The meter's multicast groups.
#[derive(Debug, Clone)]
pub struct MulticastGroups {
    root: McRootKey,
    groups: [Option<Group>; MAX_GROUPS as usize],
}

impl MulticastGroups {
    /// No groups yet; group keys will arrive encrypted for `root`.
    pub fn new(root: McRootKey) -> MulticastGroups {
        MulticastGroups {
            root,
            groups: Default::default(),
        }
    }

    /// Carries out `requests` (one setup frame) and gives the answers, in
    /// order; `now_gps` is the meter's GPS time, seconds, for the time to
    /// a class C session's start.
    pub fn handle(&mut self, requests: &[McRequest], now_gps: u32) -> Vec<McAnswer> {
        requests
            .iter()
            .map(|request| self.handle_one(request, now_gps))
            .collect()
    }

    fn handle_one(&mut self, request: &McRequest, now_gps: u32) -> McAnswer {
        match request {
            McRequest::PackageVersion => McAnswer::PackageVersion {
                package: PACKAGE_IDENTIFIER,
                version: PACKAGE_VERSION,
            },
            McRequest::GroupStatus { mask } => {
                let groups = (0..MAX_GROUPS)
                    .filter(|id| mask & (1 << id) != 0)
                    .filter_map(|id| Some((self.slot(id)?, id)))
                    .map(|(group, id)| (GroupId::new(id).expect("0..=3"), group.addr))
                    .collect();
                let defined = self.groups.iter().flatten().count() as u8;
                McAnswer::GroupStatus { defined, groups }
            }
            McRequest::GroupSetup(setup) => {
                let mc_key = self.root.decrypt_group_key(&setup.mc_key_encrypted);
                let id_error = setup.min_fcount > setup.max_fcount;
                if !id_error {
                    self.groups[usize::from(setup.group.get())] = Some(Group {
                        addr: setup.mc_addr,
                        keys: GroupSessionKeys::derive(&mc_key, setup.mc_addr),
                        next_fcnt: setup.min_fcount,
                        max_fcnt: setup.max_fcount,
                        session: None,
                    });
                }
                McAnswer::GroupSetup {
                    group: setup.group,
                    id_error,
                }
            }
            McRequest::GroupDelete(group) => {
                let slot = &mut self.groups[usize::from(group.get())];
                McAnswer::GroupDelete {
                    group: *group,
                    undefined: slot.take().is_none(),
                }
            }
            McRequest::ClassCSession(session) => {
                let answer = match &mut self.groups[usize::from(session.group.get())] {
                    None => SessionAnswer::Refused {
                        group_undefined: true,
                        freq_error: false,
                        dr_error: false,
                    },
                    Some(group) => {
                        group.session = Some(*session);
                        SessionAnswer::Scheduled {
                            time_to_start: session
                                .session_time
                                .wrapping_sub(now_gps)
                                .min((1 << 24) - 1),
                        }
                    }
                };
                McAnswer::ClassCSession {
                    group: session.group,
                    answer,
                }
            }
        }
    }

    fn slot(&self, id: u8) -> Option<&Group> {
        self.groups.get(usize::from(id))?.as_ref()
    }

    /// The class C windows scheduled, by group.
    pub fn sessions(&self) -> impl Iterator<Item = ClassCSession> + '_ {
        self.groups.iter().flatten().filter_map(|g| g.session)
    }

    /// Checks a frame heard in a class C window and, if it is a valid
    /// multicast frame for one of the meter's groups, accepts it (its
    /// counter cannot be accepted again) and gives its payload.
    pub fn accept(&mut self, frame: &[u8]) -> Result<GroupDownlink, Ignored> {
        let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) =
            parse_with_factory(frame.to_vec(), DefaultFactory)
        else {
            return Err(Ignored::NotADownlink);
        };
        if data.is_uplink() {
            return Err(Ignored::NotADownlink);
        }
        // DevAddr travels least significant byte first, like McAddr.
        let addr = u32::from_le_bytes(data.fhdr().dev_addr().as_ref().try_into().expect("4"));
        let (id, group) = self
            .groups
            .iter_mut()
            .enumerate()
            .find_map(|(id, g)| g.as_mut().filter(|g| g.addr == addr).map(|g| (id, g)))
            .ok_or(Ignored::OtherAddress)?;
        if data.is_confirmed() || !data.fhdr().data().is_empty() || data.f_port() == Some(0) {
            return Err(Ignored::NotMulticastShaped);
        }
        let fcnt = full_fcnt(group.next_fcnt, data.fhdr().fcnt());
        if fcnt < group.next_fcnt || fcnt > group.max_fcnt {
            return Err(Ignored::Counter(fcnt));
        }
        let (nwk_s_key, app_s_key) = (AES128(group.keys.nwk_s_key), AES128(group.keys.app_s_key));
        if !data.validate_mic(&nwk_s_key, fcnt) {
            return Err(Ignored::BadMic);
        }
        let fport = data.f_port().ok_or(Ignored::NotMulticastShaped)?;
        let decrypted = data
            .decrypt(Some(&nwk_s_key), Some(&app_s_key), fcnt)
            .map_err(|_| Ignored::BadMic)?;
        let payload = match decrypted.frm_payload() {
            FRMPayload::Data(bytes) => bytes.to_vec(),
            _ => return Err(Ignored::NotMulticastShaped),
        };
        group.next_fcnt = fcnt + 1;
        Ok(GroupDownlink {
            group: GroupId::new(id as u8).expect("0..=3"),
            fcnt,
            fport,
            payload,
        })
    }
}

/// The 32-bit counter nearest above `next` whose low 16 bits are `fcnt16`.
fn full_fcnt(next: u32, fcnt16: u16) -> u32 {
    let candidate = (next & !0xffff) | u32::from(fcnt16);
    match candidate < next {
        true => candidate.saturating_add(0x1_0000),
        false => candidate,
    }
}

#[cfg(test)]
mod tests {
    use lorawan::creator::DataPayloadCreator;
    use lorawan::keys::{AppSKey, NewSKey};
    use lorawan::parser::DevAddr;
    use otavan_protocol::lora::multicast::{GroupSetup, Key};

    use super::*;

    const GROUP_KEY: Key = *b"street segment 7";
    const MC_ADDR: u32 = 0x0170_0007;

    fn root(n: u8) -> McRootKey {
        McRootKey::from_gen_app_key(&[n; 16])
    }

    /// A meter whose group 1 was set up by the network with `mc_key`.
    fn meter(n: u8, mc_key: &Key) -> MulticastGroups {
        let mut meter = MulticastGroups::new(root(n));
        let setup = McRequest::GroupSetup(GroupSetup {
            group: GroupId::new(1).unwrap(),
            mc_addr: MC_ADDR,
            mc_key_encrypted: root(n).encrypt_group_key(mc_key),
            min_fcount: 10,
            max_fcount: 100,
        });
        let answers = meter.handle(&[setup], 0);
        assert_eq!(
            answers,
            [McAnswer::GroupSetup {
                group: GroupId::new(1).unwrap(),
                id_error: false
            }]
        );
        meter
    }

    /// A multicast frame as the network server builds it.
    fn frame(mc_key: &Key, addr: u32, fcnt: u32, payload: &[u8]) -> Vec<u8> {
        let keys = GroupSessionKeys::derive(mc_key, addr);
        let mut creator = DataPayloadCreator::new();
        creator
            .set_uplink(false)
            .set_confirmed(false)
            .set_dev_addr(DevAddr::from(addr.to_le_bytes()))
            .set_fcnt(fcnt)
            .set_f_port(200);
        creator
            .build(
                payload,
                &[],
                &NewSKey::from(keys.nwk_s_key),
                &AppSKey::from(keys.app_s_key),
            )
            .unwrap()
            .to_vec()
    }

    #[test]
    fn one_frame_is_accepted_by_every_meter_of_the_group() {
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        for n in 1..=3 {
            let mut meter = meter(n, &GROUP_KEY);
            let got = meter.accept(&wake).unwrap();
            assert_eq!(got.payload, b"wake!");
            assert_eq!((got.group.get(), got.fcnt, got.fport), (1, 12, 200));
        }
    }

    #[test]
    fn a_meter_outside_the_group_ignores_the_frame() {
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        let mut alone = MulticastGroups::new(root(9));
        assert_eq!(alone.accept(&wake), Err(Ignored::OtherAddress));
        let mut other_group = meter(4, &GROUP_KEY);
        let elsewhere = frame(&GROUP_KEY, MC_ADDR + 1, 12, b"wake!");
        assert_eq!(other_group.accept(&elsewhere), Err(Ignored::OtherAddress));
    }

    #[test]
    fn a_frame_under_another_key_is_refused() {
        let forged = frame(b"not the group's!", MC_ADDR, 12, b"wake!");
        let mut meter = meter(1, &GROUP_KEY);
        assert_eq!(meter.accept(&forged), Err(Ignored::BadMic));
        // A group key encrypted for another meter decrypts to garbage here.
        let mut misprovisioned = MulticastGroups::new(root(5));
        let setup = McRequest::GroupSetup(GroupSetup {
            group: GroupId::new(0).unwrap(),
            mc_addr: MC_ADDR,
            mc_key_encrypted: root(6).encrypt_group_key(&GROUP_KEY),
            min_fcount: 0,
            max_fcount: 100,
        });
        misprovisioned.handle(&[setup], 0);
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        assert_eq!(misprovisioned.accept(&wake), Err(Ignored::BadMic));
    }

    #[test]
    fn replayed_and_out_of_range_counters_are_refused() {
        let mut meter = meter(1, &GROUP_KEY);
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        assert!(meter.accept(&wake).is_ok());
        assert_eq!(meter.accept(&wake), Err(Ignored::Counter(12 + 0x1_0000)));
        let early = frame(&GROUP_KEY, MC_ADDR, 5, b"wake!");
        assert!(matches!(meter.accept(&early), Err(Ignored::Counter(_))));
        let late = frame(&GROUP_KEY, MC_ADDR, 101, b"wake!");
        assert_eq!(meter.accept(&late), Err(Ignored::Counter(101)));
        let next = frame(&GROUP_KEY, MC_ADDR, 13, b"again");
        assert_eq!(meter.accept(&next).unwrap().payload, b"again");
    }

    #[test]
    fn class_c_sessions_need_a_group_and_say_when_they_start() {
        let mut meter = meter(1, &GROUP_KEY);
        let session = |group| {
            McRequest::ClassCSession(ClassCSession {
                group: GroupId::new(group).unwrap(),
                session_time: 1_000_300,
                timeout_exponent: 6,
                frequency_hz: 869_525_000,
                data_rate: 0,
            })
        };
        let answers = meter.handle(&[session(1), session(2)], 1_000_000);
        assert_eq!(
            answers[0],
            McAnswer::ClassCSession {
                group: GroupId::new(1).unwrap(),
                answer: SessionAnswer::Scheduled { time_to_start: 300 }
            }
        );
        assert!(matches!(
            answers[1],
            McAnswer::ClassCSession {
                answer: SessionAnswer::Refused {
                    group_undefined: true,
                    ..
                },
                ..
            }
        ));
        let windows: Vec<_> = meter.sessions().map(|s| s.window_s()).collect();
        assert_eq!(windows, [64]);
        let deleted = meter.handle(&[McRequest::GroupDelete(GroupId::new(1).unwrap())], 0);
        assert!(matches!(
            deleted[..],
            [McAnswer::GroupDelete {
                undefined: false,
                ..
            }]
        ));
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        assert_eq!(meter.accept(&wake), Err(Ignored::OtherAddress));
    }
}
