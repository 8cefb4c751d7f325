//! The meter's multicast groups (LoRaWAN Remote Multicast Setup, TS005):
//! what it does with the setup requests it receives, when its class C
//! windows open, and which multicast frames heard in them it accepts.
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
//!
//! The groups (their session keys and counters) and the scheduled windows
//! are part of the trigger's saved state ([`GroupsState`]), so a restart
//! neither forgets a group nor accepts a frame counter twice.

use std::time::Duration;

use lorawan::default_crypto::DefaultFactory;
use lorawan::keys::AES128;
use lorawan::parser::{DataHeader, DataPayload, FRMPayload, PhyPayload, parse_with_factory};
use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::multicast::{
    ClassCSession, GroupId, GroupSessionKeys, Key, MAX_GROUPS, McAnswer, McRequest, McRootKey,
    PACKAGE_IDENTIFIER, PACKAGE_VERSION, SessionAnswer, StandingSession,
};
use otavan_protocol::region::{Direction, Modulation, Region};
use serde::{Deserialize, Serialize};

/// One group the meter belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Group {
    addr: u32,
    app_s_key: Key,
    nwk_s_key: Key,
    /// The lowest frame counter still accepted.
    next_fcnt: u32,
    max_fcnt: u32,
    /// The group's scheduled class C window (for a standing session, the
    /// next one not yet listened in).
    window: Option<ClassCWindow>,
    /// A standing session's period, seconds: the window comes back every
    /// period until the group is set up again or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period_s: Option<u32>,
}

impl Group {
    /// The group's window that has not closed by `now`: a standing
    /// session's missed windows (the meter was off, say) are skipped.
    fn window_after(&self, now: Duration) -> Option<ClassCWindow> {
        let window = self.window?;
        match self.period_s {
            Some(period) if window.closes_at <= now => {
                let period = Duration::from_secs(u64::from(period));
                let behind = (now - window.closes_at).as_nanos() / period.as_nanos() + 1;
                Some(window.later_by(period * u32::try_from(behind).unwrap_or(u32::MAX)))
            }
            _ => Some(window),
        }
    }
}

/// A class C window the meter will listen in, in [`crate::clock::MeterClock`]
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCWindow {
    /// The group it is for (0..=3).
    pub group: u8,
    /// When it opens.
    #[serde(rename = "opens_at_ms", with = "super::schedule::millis")]
    pub opens_at: Duration,
    /// When it closes.
    #[serde(rename = "closes_at_ms", with = "super::schedule::millis")]
    pub closes_at: Duration,
    /// The downlink frequency, Hz.
    pub frequency_hz: u32,
    /// The downlink data rate index.
    pub data_rate: u8,
}

impl ClassCWindow {
    /// The same window `by` later.
    fn later_by(self, by: Duration) -> ClassCWindow {
        ClassCWindow {
            opens_at: self.opens_at + by,
            closes_at: self.closes_at + by,
            ..self
        }
    }

    /// The window's spreading factor and bandwidth (the data rate was
    /// checked against the region when the session was accepted).
    pub fn modulation(&self, region: Region) -> Option<(u8, u32)> {
        match region.modulation(self.data_rate, Direction::Downlink)? {
            Modulation::Lora { sf, bandwidth_hz } => Some((sf, bandwidth_hz)),
            Modulation::Fsk50k => None,
        }
    }
}

/// The groups as saved with the trigger's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsState {
    groups: [Option<Group>; MAX_GROUPS as usize],
}

impl GroupsState {
    /// Whether no group is defined.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(Option::is_none)
    }
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
    region: Region,
    state: GroupsState,
}

/// The time of a setup request, on both clocks: the network's (Unix
/// time, from its last `DeviceTimeAns`, or the meter's own when it has
/// not answered; session times are in GPS time) and the meter's clock
/// (what windows are kept in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupTime {
    /// Unix time.
    pub unix: Duration,
    /// [`crate::clock::MeterClock`] time.
    pub meter: Duration,
}

impl MulticastGroups {
    /// The groups in `state` (default: none); group keys arrive encrypted
    /// for `root`, windows must use `region`'s downlink channels.
    pub fn new(root: McRootKey, region: Region, state: GroupsState) -> MulticastGroups {
        MulticastGroups {
            root,
            region,
            state,
        }
    }

    /// What to save.
    pub fn state(&self) -> &GroupsState {
        &self.state
    }

    /// Carries out `requests` (one setup frame) received at `now` and
    /// gives the answers, in order.
    pub fn handle(&mut self, requests: &[McRequest], now: SetupTime) -> Vec<McAnswer> {
        requests
            .iter()
            .map(|request| self.handle_one(request, now))
            .collect()
    }

    fn handle_one(&mut self, request: &McRequest, now: SetupTime) -> McAnswer {
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
                let defined = self.state.groups.iter().flatten().count() as u8;
                McAnswer::GroupStatus { defined, groups }
            }
            McRequest::GroupSetup(setup) => {
                let mc_key = self.root.decrypt_group_key(&setup.mc_key_encrypted);
                let id_error = setup.min_fcount > setup.max_fcount;
                if !id_error {
                    let keys = GroupSessionKeys::derive(&mc_key, setup.mc_addr);
                    self.state.groups[usize::from(setup.group.get())] = Some(Group {
                        addr: setup.mc_addr,
                        app_s_key: keys.app_s_key,
                        nwk_s_key: keys.nwk_s_key,
                        next_fcnt: setup.min_fcount,
                        max_fcnt: setup.max_fcount,
                        window: None,
                        period_s: None,
                    });
                }
                McAnswer::GroupSetup {
                    group: setup.group,
                    id_error,
                }
            }
            McRequest::GroupDelete(group) => {
                let slot = &mut self.state.groups[usize::from(group.get())];
                McAnswer::GroupDelete {
                    group: *group,
                    undefined: slot.take().is_none(),
                }
            }
            McRequest::ClassCSession(session) => McAnswer::ClassCSession {
                group: session.group,
                answer: self.schedule(session, now),
            },
            McRequest::StandingSession(standing) => McAnswer::StandingSession {
                group: standing.group,
                answer: self.schedule_standing(standing, now),
            },
        }
    }

    /// Schedules a standing session: its first window as
    /// [`Self::schedule`] would a class C session's, then every period;
    /// the answer's time to start is the next window's.
    fn schedule_standing(&mut self, standing: &StandingSession, now: SetupTime) -> SessionAnswer {
        let session = ClassCSession {
            group: standing.group,
            session_time: standing.first_slot,
            timeout_exponent: standing.timeout_exponent,
            frequency_hz: standing.frequency_hz,
            data_rate: standing.data_rate,
        };
        if let refused @ SessionAnswer::Refused { .. } = self.schedule(&session, now) {
            return refused;
        }
        let group = self.state.groups[usize::from(standing.group.get())]
            .as_mut()
            .expect("scheduled: the group is defined");
        group.period_s = Some(standing.period_s());
        let next = group.window_after(now.meter).expect("just scheduled");
        let ahead = next.opens_at.saturating_sub(now.meter).as_secs();
        SessionAnswer::Scheduled {
            time_to_start: u32::try_from(ahead).unwrap_or(u32::MAX).min((1 << 24) - 1),
        }
    }

    /// Schedules `session`'s window, or says why not: the group must be
    /// defined, the frequency in one of the region's bands and the data
    /// rate a LoRa downlink rate of the region. A session time already
    /// past opens the window at once, for what is left of it.
    fn schedule(&mut self, session: &ClassCSession, now: SetupTime) -> SessionAnswer {
        let freq_error = self.region.band(session.frequency_hz).is_none();
        let dr_error = !matches!(
            self.region
                .modulation(session.data_rate, Direction::Downlink),
            Some(Modulation::Lora { .. })
        );
        let group = &mut self.state.groups[usize::from(session.group.get())];
        let Some(group) = group.as_mut().filter(|_| !freq_error && !dr_error) else {
            return SessionAnswer::Refused {
                group_undefined: group.is_none(),
                freq_error,
                dr_error,
            };
        };
        let session_unix = DeviceTime {
            gps_seconds: session.session_time,
            fraction: 0,
        }
        .to_unix();
        let opens_at = match session_unix.checked_sub(now.unix) {
            Some(ahead) => now.meter + ahead,
            None => now.meter.saturating_sub(now.unix - session_unix),
        };
        let ahead = session_unix.saturating_sub(now.unix).as_secs();
        group.period_s = None;
        group.window = Some(ClassCWindow {
            group: session.group.get(),
            opens_at,
            closes_at: opens_at + Duration::from_secs(u64::from(session.window_s())),
            frequency_hz: session.frequency_hz,
            data_rate: session.data_rate,
        });
        SessionAnswer::Scheduled {
            time_to_start: u32::try_from(ahead).unwrap_or(u32::MAX).min((1 << 24) - 1),
        }
    }

    fn slot(&self, id: u8) -> Option<&Group> {
        self.state.groups.get(usize::from(id))?.as_ref()
    }

    /// The earliest class C window that has not closed by `now`.
    pub fn next_window(&self, now: Duration) -> Option<ClassCWindow> {
        self.windows(now).min_by_key(|w| w.opens_at)
    }

    /// Every group's class C window that has not closed by `now`, by group.
    pub fn windows(&self, now: Duration) -> impl Iterator<Item = ClassCWindow> + '_ {
        (self.state.groups.iter().flatten())
            .filter_map(move |g| g.window_after(now))
            .filter(move |w| w.closes_at > now)
    }

    /// Group `group`'s window `window` was listened in: a one-shot
    /// session's is forgotten, a standing session's comes back a period
    /// later.
    pub fn close_window(&mut self, window: &ClassCWindow) {
        if let Some(Some(group)) = self.state.groups.get_mut(usize::from(window.group)) {
            group.window = group
                .period_s
                .map(|period| window.later_by(Duration::from_secs(u64::from(period))));
        }
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
            .state
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
        let (nwk_s_key, app_s_key) = (AES128(group.nwk_s_key), AES128(group.app_s_key));
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
    use otavan_protocol::lora::multicast::GroupSetup;

    use super::*;

    const GROUP_KEY: Key = *b"street segment 7";
    const MC_ADDR: u32 = 0x0170_0007;

    fn root(n: u8) -> McRootKey {
        McRootKey::from_gen_app_key(&[n; 16])
    }

    fn groups(n: u8) -> MulticastGroups {
        MulticastGroups::new(root(n), Region::Eu868, GroupsState::default())
    }

    /// GPS time `gps`, when the meter's clock reads 1,000 s more.
    fn at(gps: u32) -> SetupTime {
        SetupTime {
            unix: DeviceTime {
                gps_seconds: gps,
                fraction: 0,
            }
            .to_unix(),
            meter: Duration::from_secs(u64::from(gps) + 1000),
        }
    }

    /// A meter whose group 1 was set up by the network with `mc_key`.
    fn meter(n: u8, mc_key: &Key) -> MulticastGroups {
        let mut meter = groups(n);
        let setup = McRequest::GroupSetup(GroupSetup {
            group: GroupId::new(1).unwrap(),
            mc_addr: MC_ADDR,
            mc_key_encrypted: root(n).encrypt_group_key(mc_key),
            min_fcount: 10,
            max_fcount: 100,
        });
        let answers = meter.handle(&[setup], at(0));
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
        let mut alone = groups(9);
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
        let mut misprovisioned = groups(5);
        let setup = McRequest::GroupSetup(GroupSetup {
            group: GroupId::new(0).unwrap(),
            mc_addr: MC_ADDR,
            mc_key_encrypted: root(6).encrypt_group_key(&GROUP_KEY),
            min_fcount: 0,
            max_fcount: 100,
        });
        misprovisioned.handle(&[setup], at(0));
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
        let answers = meter.handle(&[session(1), session(2)], at(1_000_000));
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
        let opens = Duration::from_secs(1_001_300);
        let window = ClassCWindow {
            group: 1,
            opens_at: opens,
            closes_at: opens + Duration::from_secs(64),
            frequency_hz: 869_525_000,
            data_rate: 0,
        };
        assert_eq!(meter.windows(Duration::ZERO).collect::<Vec<_>>(), [window]);
        assert_eq!(
            meter.next_window(opens + Duration::from_secs(63)),
            Some(window)
        );
        assert_eq!(meter.next_window(opens + Duration::from_secs(64)), None);
        assert_eq!(window.modulation(Region::Eu868), Some((12, 125_000)));
        meter.close_window(&window);
        assert_eq!(meter.windows(Duration::ZERO).count(), 0);
        let deleted = meter.handle(&[McRequest::GroupDelete(GroupId::new(1).unwrap())], at(0));
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

    #[test]
    fn a_standing_session_comes_back_every_period_until_replaced() {
        let mut meter = meter(1, &GROUP_KEY);
        let standing = |group| {
            McRequest::StandingSession(StandingSession {
                group: GroupId::new(group).unwrap(),
                first_slot: 1_000_300,
                period_minutes: 60,
                timeout_exponent: 3,
                frequency_hz: 869_525_000,
                data_rate: 0,
            })
        };
        // Set up two and a half periods after the first slot: the next
        // slot is half a period away.
        let answers = meter.handle(&[standing(1), standing(3)], at(1_000_300 + 9_000));
        assert_eq!(
            answers[0],
            McAnswer::StandingSession {
                group: GroupId::new(1).unwrap(),
                answer: SessionAnswer::Scheduled {
                    time_to_start: 1_800
                }
            }
        );
        assert!(matches!(
            answers[1],
            McAnswer::StandingSession {
                answer: SessionAnswer::Refused {
                    group_undefined: true,
                    ..
                },
                ..
            }
        ));
        let hour = Duration::from_secs(3_600);
        let next = meter.next_window(Duration::from_secs(1_010_300)).unwrap();
        assert_eq!(next.opens_at, Duration::from_secs(1_001_300) + 3 * hour);
        assert_eq!(next.closes_at - next.opens_at, Duration::from_secs(8));
        // Listened in: the next one is a period later, and stays so over
        // a restart.
        meter.close_window(&next);
        let saved = serde_json::to_string(meter.state()).unwrap();
        let restarted = MulticastGroups::new(
            root(1),
            Region::Eu868,
            serde_json::from_str(&saved).unwrap(),
        );
        let after = restarted.next_window(next.closes_at).unwrap();
        assert_eq!(after.opens_at, next.opens_at + hour);
        // Off for a day: the missed windows are skipped.
        let day_later = after.opens_at + 24 * hour + Duration::from_secs(10);
        let resumed = restarted.next_window(day_later).unwrap();
        assert_eq!(resumed.opens_at, after.opens_at + 25 * hour);
        // A one-shot session for the group replaces the standing one.
        let one_shot = McRequest::ClassCSession(ClassCSession {
            group: GroupId::new(1).unwrap(),
            session_time: 1_020_000,
            timeout_exponent: 3,
            frequency_hz: 869_525_000,
            data_rate: 0,
        });
        meter.handle(&[one_shot], at(1_010_000));
        let window = meter.next_window(Duration::ZERO).unwrap();
        meter.close_window(&window);
        assert_eq!(meter.next_window(Duration::ZERO), None);
    }

    #[test]
    fn sessions_on_channels_the_region_has_not_are_refused() {
        let mut meter = meter(1, &GROUP_KEY);
        let session = |frequency_hz, data_rate| {
            McRequest::ClassCSession(ClassCSession {
                group: GroupId::new(1).unwrap(),
                session_time: 500,
                timeout_exponent: 4,
                frequency_hz,
                data_rate,
            })
        };
        // 915 MHz is not EU868; DR7 is FSK, DR9 does not exist.
        let answers = meter.handle(
            &[
                session(915_000_000, 0),
                session(869_525_000, 7),
                session(869_525_000, 9),
            ],
            at(100),
        );
        let refusals: Vec<_> = answers
            .iter()
            .map(|a| match a {
                McAnswer::ClassCSession {
                    answer:
                        SessionAnswer::Refused {
                            group_undefined,
                            freq_error,
                            dr_error,
                        },
                    ..
                } => (*group_undefined, *freq_error, *dr_error),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            refusals,
            [
                (false, true, false),
                (false, false, true),
                (false, false, true)
            ]
        );
        assert_eq!(meter.windows(Duration::ZERO).count(), 0);
    }

    #[test]
    fn a_session_time_already_past_opens_the_window_at_once_for_what_is_left() {
        let mut meter = meter(1, &GROUP_KEY);
        let late = McRequest::ClassCSession(ClassCSession {
            group: GroupId::new(1).unwrap(),
            session_time: 90,
            timeout_exponent: 4,
            frequency_hz: 869_525_000,
            data_rate: 0,
        });
        let answers = meter.handle(&[late], at(100));
        assert!(matches!(
            answers[..],
            [McAnswer::ClassCSession {
                answer: SessionAnswer::Scheduled { time_to_start: 0 },
                ..
            }]
        ));
        let window = meter.windows(Duration::ZERO).next().unwrap();
        assert_eq!(window.opens_at, Duration::from_secs(1090));
        assert_eq!(window.closes_at, Duration::from_secs(1106));
    }

    #[test]
    fn groups_survive_a_restart_without_accepting_a_counter_twice() {
        let mut meter = meter(1, &GROUP_KEY);
        let wake = frame(&GROUP_KEY, MC_ADDR, 12, b"wake!");
        assert!(meter.accept(&wake).is_ok());
        let saved = serde_json::to_string(meter.state()).unwrap();
        let restored: GroupsState = serde_json::from_str(&saved).unwrap();
        assert_eq!(&restored, meter.state());
        let mut restarted = MulticastGroups::new(root(1), Region::Eu868, restored);
        assert!(matches!(restarted.accept(&wake), Err(Ignored::Counter(_))));
        let next = frame(&GROUP_KEY, MC_ADDR, 13, b"again");
        assert_eq!(restarted.accept(&next).unwrap().payload, b"again");
    }
}
