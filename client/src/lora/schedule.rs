//! What the meter does with a downlink: the WAKE/CANCEL/STATUS_REQUEST
//! state machine.
//!
//! [`Scheduler`] is pure: no I/O, no clock. Every call takes `now`, a
//! [`Duration`] since an epoch the caller chooses and keeps (the trigger
//! uses Unix time, see [`crate::clock::MeterClock`]), so the same inputs always
//! give the same decisions and its state can be saved and restored
//! ([`SchedulerState`]).
//!
//! The rules:
//! - Only downlinks on the command FPort are commands; anything that does
//!   not decode is [`Decision::Malformed`] and changes nothing.
//! - A WAKE schedules a WiFi session from `now + delay` to `now + delay +
//!   window` on its network slot, unless it is a duplicate (its campaign is
//!   the one scheduled), stale (its campaign already ran, was cancelled,
//!   replaced or missed), meant for another version (the meter's version
//!   has the WAKE's tag, [`Wake::applies_to`]), names a network slot the
//!   meter does not have, or has an empty window. A WAKE of a new campaign
//!   replaces a scheduled session of another one: the operator re-planned.
//! - A CANCEL removes its campaign's scheduled session; a CANCEL of a
//!   campaign that is not scheduled still marks it seen, so a WAKE that
//!   arrives after its CANCEL is stale.
//! - A STATUS_REQUEST asks for a status uplink; the caller sends it.
//! - [`Scheduler::due`] hands a session over once, when its window is open;
//!   a session whose window closed unseen is dropped and marked seen.

use std::collections::VecDeque;
use std::time::Duration;

use otavan_protocol::Version;
use otavan_protocol::lora::{CodecError, DownlinkCommand, Wake};
use serde::{Deserialize, Serialize};

/// How many past campaigns a meter remembers (older ones are forgotten
/// first, so a campaign number reused much later works again).
pub const SEEN_CAMPAIGNS: usize = 32;

/// A WiFi session the meter will open for the van.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiSession {
    /// The WAKE's campaign.
    pub campaign: u16,
    /// When the window opens (same epoch as `now`).
    #[serde(rename = "opens_at_ms", with = "millis")]
    pub opens_at: Duration,
    /// When the window closes.
    #[serde(rename = "closes_at_ms", with = "millis")]
    pub closes_at: Duration,
    /// The provisioned van network slot to join (an index into the meter's
    /// list of van networks).
    pub network: u8,
}

impl WifiSession {
    /// Whether the window is open at `now` (opening instant included,
    /// closing instant excluded).
    pub fn is_open(&self, now: Duration) -> bool {
        self.opens_at <= now && now < self.closes_at
    }
}

/// Why a downlink changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Not on the command FPort (or FPort 0, MAC commands only).
    WrongPort {
        /// The downlink's FPort.
        fport: u8,
    },
    /// A WAKE for the campaign already scheduled.
    Duplicate {
        /// The campaign.
        campaign: u16,
    },
    /// A WAKE for a campaign that already ran, was cancelled, replaced or
    /// missed.
    Stale {
        /// The campaign.
        campaign: u16,
    },
    /// A WAKE whose target version tag is the meter's own version.
    AlreadyAtVersion {
        /// The campaign.
        campaign: u16,
    },
    /// A WAKE naming a van network slot the meter does not have.
    UnknownNetwork {
        /// The campaign.
        campaign: u16,
        /// The slot asked for.
        network: u8,
    },
    /// A WAKE with a window of zero seconds: there is nothing to open.
    EmptyWindow {
        /// The campaign.
        campaign: u16,
    },
    /// A CANCEL for a campaign that is not scheduled (it is remembered, so
    /// its WAKE is ignored if it arrives later).
    NothingToCancel {
        /// The campaign.
        campaign: u16,
    },
}

/// What a downlink did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing changed.
    Ignored(IgnoreReason),
    /// A WiFi session is scheduled.
    Scheduled {
        /// The session.
        session: WifiSession,
        /// The campaign of a session it replaced, if any.
        replaced: Option<u16>,
    },
    /// A scheduled session was removed.
    Cancelled {
        /// Its campaign.
        campaign: u16,
    },
    /// The operator asks for a status uplink.
    StatusRequested,
    /// The payload is not a valid command (nothing changed).
    Malformed(CodecError),
}

/// What the meter should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// Send the next uplink at this time.
    Uplink(Duration),
    /// Open this WiFi session at `at` (its opening time, or `now` when it is
    /// already open).
    Session {
        /// When to act.
        at: Duration,
        /// The session.
        session: WifiSession,
    },
}

impl Wakeup {
    /// When to act.
    pub fn at(&self) -> Duration {
        match self {
            Wakeup::Uplink(at) | Wakeup::Session { at, .. } => *at,
        }
    }
}

/// The scheduler's durable part: save it with the session keys, restore it
/// after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// The session waiting for its window.
    #[serde(default)]
    pub scheduled: Option<WifiSession>,
    /// Campaigns that ran, were cancelled, replaced or missed, oldest
    /// first, at most [`SEEN_CAMPAIGNS`].
    #[serde(default)]
    pub seen: VecDeque<u16>,
    /// The last campaign the meter acted on (scheduled, or ignored for its
    /// version tag), 0 for none: the STATUS uplink's `campaign`.
    #[serde(default)]
    pub last_campaign: u16,
}

/// The downlink state machine (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    fport: u8,
    networks: usize,
    state: SchedulerState,
}

impl Scheduler {
    /// A scheduler with nothing seen, taking commands on `fport`, for a
    /// meter with `networks` provisioned van networks (slots
    /// `0..networks`).
    pub fn new(fport: u8, networks: usize) -> Scheduler {
        Scheduler::restore(fport, networks, SchedulerState::default())
    }

    /// A scheduler continuing from a saved `state`.
    pub fn restore(fport: u8, networks: usize, state: SchedulerState) -> Scheduler {
        Scheduler {
            fport,
            networks,
            state,
        }
    }

    /// The state to save.
    pub fn state(&self) -> &SchedulerState {
        &self.state
    }

    /// The session waiting for its window, if any.
    pub fn scheduled(&self) -> Option<&WifiSession> {
        self.state.scheduled.as_ref()
    }

    /// The STATUS uplink's `campaign`: the last campaign acted on, 0 for
    /// none.
    pub fn last_campaign(&self) -> u16 {
        self.state.last_campaign
    }

    /// Whether `campaign` already ran, was cancelled, replaced or missed.
    pub fn has_seen(&self, campaign: u16) -> bool {
        self.state.seen.contains(&campaign)
    }

    /// Handles a downlink received at `now` on `fport` by a meter at
    /// `my_version`.
    pub fn on_downlink(
        &mut self,
        now: Duration,
        fport: u8,
        bytes: &[u8],
        my_version: &Version,
    ) -> Decision {
        if fport != self.fport {
            return Decision::Ignored(IgnoreReason::WrongPort { fport });
        }
        match DownlinkCommand::decode(bytes) {
            Err(error) => Decision::Malformed(error),
            Ok(DownlinkCommand::Wake(wake)) => self.on_wake(now, &wake, my_version),
            Ok(DownlinkCommand::Cancel { campaign }) => self.on_cancel(campaign),
            Ok(DownlinkCommand::StatusRequest) => Decision::StatusRequested,
        }
    }

    fn on_wake(&mut self, now: Duration, wake: &Wake, my_version: &Version) -> Decision {
        let campaign = wake.campaign;
        let ignored = |reason| Decision::Ignored(reason);
        if self.state.scheduled.is_some_and(|s| s.campaign == campaign) {
            return ignored(IgnoreReason::Duplicate { campaign });
        }
        if self.has_seen(campaign) {
            return ignored(IgnoreReason::Stale { campaign });
        }
        if !wake.applies_to(my_version) {
            self.state.last_campaign = campaign;
            return ignored(IgnoreReason::AlreadyAtVersion { campaign });
        }
        if usize::from(wake.network) >= self.networks {
            return ignored(IgnoreReason::UnknownNetwork {
                campaign,
                network: wake.network,
            });
        }
        if wake.window.secs() == 0 {
            return ignored(IgnoreReason::EmptyWindow { campaign });
        }
        let opens_at = now + wake.delay.as_duration();
        let session = WifiSession {
            campaign,
            opens_at,
            closes_at: opens_at + wake.window.as_duration(),
            network: wake.network,
        };
        let replaced = self.state.scheduled.replace(session).map(|old| {
            self.remember(old.campaign);
            old.campaign
        });
        self.state.last_campaign = campaign;
        Decision::Scheduled { session, replaced }
    }

    fn on_cancel(&mut self, campaign: u16) -> Decision {
        if self.state.scheduled.is_some_and(|s| s.campaign == campaign) {
            self.state.scheduled = None;
            self.remember(campaign);
            return Decision::Cancelled { campaign };
        }
        self.remember(campaign);
        Decision::Ignored(IgnoreReason::NothingToCancel { campaign })
    }

    /// Hands over the scheduled session if its window is open at `now`
    /// (once: it is then marked seen). A session whose window has closed is
    /// dropped and marked seen; `None` then, as before the window opens.
    pub fn due(&mut self, now: Duration) -> Option<WifiSession> {
        let session = self.state.scheduled?;
        if now < session.opens_at {
            return None;
        }
        self.state.scheduled = None;
        self.remember(session.campaign);
        session.is_open(now).then_some(session)
    }

    /// What to do next, given that the next uplink is due at
    /// `next_uplink`: the scheduled session if its window opens by then,
    /// otherwise the uplink. A session whose window has already closed
    /// (the meter was off) is due `now` too, so the caller's
    /// [`Scheduler::due`] drops it.
    pub fn next_wakeup(&self, now: Duration, next_uplink: Duration) -> Wakeup {
        match self.state.scheduled {
            Some(session) if session.opens_at <= next_uplink || session.closes_at <= now => {
                Wakeup::Session {
                    at: session.opens_at.max(now),
                    session,
                }
            }
            _ => Wakeup::Uplink(next_uplink),
        }
    }

    /// Records `campaign` as seen, forgetting the oldest beyond
    /// [`SEEN_CAMPAIGNS`].
    fn remember(&mut self, campaign: u16) {
        let seen = &mut self.state.seen;
        if let Some(at) = seen.iter().position(|&c| c == campaign) {
            seen.remove(at);
        }
        seen.push_back(campaign);
        while seen.len() > SEEN_CAMPAIGNS {
            seen.pop_front();
        }
    }
}

/// Durations as whole milliseconds, for readable saved state.
pub(super) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        serializer.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use otavan_protocol::lora::{DEFAULT_FPORT, VersionTag};

    use super::*;

    const PORT: u8 = DEFAULT_FPORT;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn version(v: &str) -> Version {
        v.parse().unwrap()
    }

    fn wake(campaign: u16, delay: u64, window: u64, network: u8, tag: Option<&str>) -> Vec<u8> {
        let tag = tag.map(|v| VersionTag::of(&version(v)));
        Wake::new(campaign, secs(delay), secs(window), network, tag)
            .unwrap()
            .encode()
    }

    fn cancel(campaign: u16) -> Vec<u8> {
        DownlinkCommand::Cancel { campaign }.encode()
    }

    fn scheduler() -> Scheduler {
        Scheduler::new(PORT, 2)
    }

    /// Feeds a downlink on the command port from a meter at 1.0.0.
    fn feed(s: &mut Scheduler, now: u64, bytes: &[u8]) -> Decision {
        s.on_downlink(secs(now), PORT, bytes, &version("1.0.0"))
    }

    fn scheduled(campaign: u16, opens: u64, closes: u64, network: u8) -> Decision {
        Decision::Scheduled {
            session: WifiSession {
                campaign,
                opens_at: secs(opens),
                closes_at: secs(closes),
                network,
            },
            replaced: None,
        }
    }

    #[test]
    fn wake_schedules_relative_to_reception() {
        let mut s = scheduler();
        let d = feed(&mut s, 1000, &wake(7, 7200, 900, 1, Some("1.1.0")));
        assert_eq!(d, scheduled(7, 8200, 9100, 1));
        assert_eq!(s.last_campaign(), 7);
        assert_eq!(s.scheduled().unwrap().campaign, 7);
    }

    #[test]
    fn untagged_wake_applies_to_every_version() {
        let mut s = scheduler();
        assert_eq!(
            feed(&mut s, 0, &wake(1, 60, 600, 0, None)),
            scheduled(1, 60, 660, 0)
        );
    }

    #[test]
    fn duplicate_wake_keeps_the_first_schedule() {
        let mut s = scheduler();
        feed(&mut s, 100, &wake(7, 3600, 900, 0, None));
        let d = feed(&mut s, 500, &wake(7, 3600, 900, 0, None));
        assert_eq!(
            d,
            Decision::Ignored(IgnoreReason::Duplicate { campaign: 7 })
        );
        // Still relative to the first reception.
        assert_eq!(s.scheduled().unwrap().opens_at, secs(3700));
    }

    #[test]
    fn wake_after_its_session_ran_is_stale() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 60, 600, 0, None));
        assert!(s.due(secs(30)).is_none(), "not open yet");
        let session = s.due(secs(60)).expect("open at its first instant");
        assert_eq!(session.campaign, 7);
        assert!(s.due(secs(61)).is_none(), "handed over once");
        assert!(s.has_seen(7));
        assert_eq!(
            feed(&mut s, 700, &wake(7, 60, 600, 0, None)),
            Decision::Ignored(IgnoreReason::Stale { campaign: 7 })
        );
        assert!(s.scheduled().is_none());
    }

    #[test]
    fn missed_window_is_dropped_and_seen() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(3, 60, 600, 0, None));
        // The closing instant is outside the window.
        assert!(s.due(secs(660)).is_none());
        assert!(s.scheduled().is_none());
        assert!(s.has_seen(3));
        assert_eq!(
            feed(&mut s, 700, &wake(3, 60, 600, 0, None)),
            Decision::Ignored(IgnoreReason::Stale { campaign: 3 })
        );
    }

    #[test]
    fn wake_for_my_own_version_is_ignored() {
        let mut s = scheduler();
        let d = feed(&mut s, 0, &wake(9, 60, 600, 0, Some("1.0.0")));
        assert_eq!(
            d,
            Decision::Ignored(IgnoreReason::AlreadyAtVersion { campaign: 9 })
        );
        assert!(s.scheduled().is_none());
        assert_eq!(s.last_campaign(), 9, "seen, for the status uplink");
        // Not remembered as done: a meter that rolls back can still act on it.
        assert!(!s.has_seen(9));
        let d = s.on_downlink(
            secs(10),
            PORT,
            &wake(9, 60, 600, 0, Some("1.0.0")),
            &version("0.9.0"),
        );
        assert_eq!(d, scheduled(9, 70, 670, 0));
    }

    #[test]
    fn version_tags_compare_exact_strings() {
        let mut s = scheduler();
        // 1.0 and 1.0.0 are different strings, so different tags.
        let d = feed(&mut s, 0, &wake(2, 60, 600, 0, Some("1.0")));
        assert!(matches!(d, Decision::Scheduled { .. }), "{d:?}");
    }

    #[test]
    fn cancel_removes_the_scheduled_session() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 3600, 900, 0, None));
        assert_eq!(
            feed(&mut s, 100, &cancel(7)),
            Decision::Cancelled { campaign: 7 }
        );
        assert!(s.scheduled().is_none());
        assert!(s.due(secs(3700)).is_none());
        assert_eq!(
            s.next_wakeup(secs(100), secs(3700)),
            Wakeup::Uplink(secs(3700))
        );
        // The WAKE sent again is stale now.
        assert_eq!(
            feed(&mut s, 200, &wake(7, 3600, 900, 0, None)),
            Decision::Ignored(IgnoreReason::Stale { campaign: 7 })
        );
    }

    #[test]
    fn cancel_of_another_campaign_keeps_the_schedule() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 3600, 900, 0, None));
        assert_eq!(
            feed(&mut s, 10, &cancel(8)),
            Decision::Ignored(IgnoreReason::NothingToCancel { campaign: 8 })
        );
        assert_eq!(s.scheduled().unwrap().campaign, 7);
    }

    #[test]
    fn cancel_before_its_wake_makes_the_wake_stale() {
        let mut s = scheduler();
        feed(&mut s, 0, &cancel(5));
        assert_eq!(
            feed(&mut s, 10, &wake(5, 60, 600, 0, None)),
            Decision::Ignored(IgnoreReason::Stale { campaign: 5 })
        );
    }

    #[test]
    fn new_campaign_replaces_the_scheduled_one() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 3600, 900, 0, None));
        let d = feed(&mut s, 100, &wake(8, 600, 600, 1, None));
        assert_eq!(
            d,
            Decision::Scheduled {
                session: WifiSession {
                    campaign: 8,
                    opens_at: secs(700),
                    closes_at: secs(1300),
                    network: 1,
                },
                replaced: Some(7),
            }
        );
        assert!(s.has_seen(7));
        assert_eq!(
            feed(&mut s, 200, &wake(7, 3600, 900, 0, None)),
            Decision::Ignored(IgnoreReason::Stale { campaign: 7 })
        );
    }

    #[test]
    fn status_request_changes_nothing_else() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 3600, 900, 0, None));
        let before = s.clone();
        let bytes = DownlinkCommand::StatusRequest.encode();
        assert_eq!(feed(&mut s, 10, &bytes), Decision::StatusRequested);
        assert_eq!(s, before);
    }

    #[test]
    fn wrong_port_is_ignored_even_when_it_decodes() {
        let mut s = scheduler();
        let bytes = wake(7, 60, 600, 0, None);
        for fport in [0, 1, 199, 201, 224] {
            let d = s.on_downlink(secs(0), fport, &bytes, &version("1.0.0"));
            assert_eq!(d, Decision::Ignored(IgnoreReason::WrongPort { fport }));
        }
        assert!(s.scheduled().is_none());
        // Another command port is configurable.
        let mut s = Scheduler::new(42, 1);
        let d = s.on_downlink(secs(0), 42, &bytes, &version("1.0.0"));
        assert!(matches!(d, Decision::Scheduled { .. }));
    }

    #[test]
    fn malformed_bytes_change_nothing() {
        let mut s = scheduler();
        feed(&mut s, 0, &wake(7, 3600, 900, 0, None));
        let before = s.clone();
        let good = wake(8, 60, 600, 0, None);
        type Check = fn(&CodecError) -> bool;
        let cases: Vec<(Vec<u8>, Check)> = vec![
            (vec![], |e| *e == CodecError::Empty),
            (vec![0x21], |e| *e == CodecError::UnsupportedVersion(2)),
            (vec![0x18; 10], |e| *e == CodecError::UnknownCommand(8)),
            (vec![0x1f], |e| *e == CodecError::UnknownCommand(15)),
            (good[..6].to_vec(), |e| {
                matches!(e, CodecError::BadLength { got: 6, .. })
            }),
            ([good.as_slice(), &[0]].concat(), |e| {
                matches!(e, CodecError::BadLength { got: 8, .. })
            }),
            (vec![0x12, 0x00], |e| {
                matches!(e, CodecError::BadLength { got: 2, .. })
            }),
            (vec![0x13, 0x00], |e| {
                matches!(e, CodecError::BadLength { got: 2, .. })
            }),
            // A delay of 1 minute must be sent as 60 seconds.
            (vec![0x11, 0x00, 0x08, 0x80, 0x01, 0x3c, 0x00], |e| {
                matches!(e, CodecError::NonCanonical { field: "delay" })
            }),
        ];
        for (bytes, expected) in cases {
            match feed(&mut s, 10, &bytes) {
                Decision::Malformed(error) => assert!(expected(&error), "{bytes:02x?}: {error}"),
                other => panic!("{bytes:02x?}: {other:?}"),
            }
            assert_eq!(s, before, "{bytes:02x?} changed the state");
        }
    }

    #[test]
    fn every_byte_string_is_handled_without_panicking() {
        let mut s = scheduler();
        for len in 0..12 {
            for first in [0x10u8, 0x11, 0x12, 0x13, 0x00, 0xff] {
                for fill in [0x00u8, 0x7f, 0x80, 0xff] {
                    let mut bytes = vec![fill; len];
                    if let Some(b) = bytes.first_mut() {
                        *b = first;
                    }
                    let _ = feed(&mut s, 5, &bytes);
                }
            }
        }
    }

    #[test]
    fn unknown_network_slot_and_empty_window_are_ignored() {
        let mut s = scheduler();
        assert_eq!(
            feed(&mut s, 0, &wake(4, 60, 600, 2, None)),
            Decision::Ignored(IgnoreReason::UnknownNetwork {
                campaign: 4,
                network: 2
            })
        );
        assert_eq!(
            feed(&mut s, 0, &wake(4, 60, 0, 0, None)),
            Decision::Ignored(IgnoreReason::EmptyWindow { campaign: 4 })
        );
        assert!(s.scheduled().is_none());
        // Neither counts as seen: a corrected WAKE of the campaign works.
        assert!(matches!(
            feed(&mut s, 0, &wake(4, 60, 600, 1, None)),
            Decision::Scheduled { .. }
        ));
    }

    #[test]
    fn zero_delay_opens_at_once() {
        let mut s = scheduler();
        feed(&mut s, 500, &wake(1, 0, 600, 0, None));
        assert_eq!(
            s.next_wakeup(secs(500), secs(4100)),
            Wakeup::Session {
                at: secs(500),
                session: *s.scheduled().unwrap()
            }
        );
        assert_eq!(s.due(secs(500)).unwrap().campaign, 1);
    }

    #[test]
    fn next_wakeup_orders_uplinks_and_sessions() {
        let mut s = scheduler();
        assert_eq!(
            s.next_wakeup(secs(0), secs(3600)),
            Wakeup::Uplink(secs(3600))
        );
        feed(&mut s, 0, &wake(1, 1800, 600, 0, None));
        let session = *s.scheduled().unwrap();
        // Opens before the next uplink: the session comes first.
        assert_eq!(
            s.next_wakeup(secs(0), secs(3600)),
            Wakeup::Session {
                at: secs(1800),
                session
            }
        );
        // Opens exactly at the uplink: the session still comes first.
        assert_eq!(s.next_wakeup(secs(0), secs(1800)).at(), secs(1800));
        assert!(matches!(
            s.next_wakeup(secs(0), secs(1800)),
            Wakeup::Session { .. }
        ));
        // Opens after the next uplink: the uplink first.
        assert_eq!(s.next_wakeup(secs(0), secs(900)), Wakeup::Uplink(secs(900)));
        // Already open (the meter was busy): now.
        assert_eq!(
            s.next_wakeup(secs(2000), secs(3600)),
            Wakeup::Session {
                at: secs(2000),
                session
            }
        );
        // Closed unseen, even if it opened after the uplink time: now, and
        // `due` drops it.
        assert_eq!(
            s.next_wakeup(secs(2400), secs(3600)),
            Wakeup::Session {
                at: secs(2400),
                session
            }
        );
        assert_eq!(s.next_wakeup(secs(2400), secs(100)).at(), secs(2400));
        assert!(s.due(secs(2400)).is_none());
        assert!(s.scheduled().is_none());
        assert_eq!(
            s.next_wakeup(secs(2400), secs(3600)),
            Wakeup::Uplink(secs(3600))
        );
    }

    #[test]
    fn seen_campaigns_are_bounded_oldest_forgotten_first() {
        let mut s = scheduler();
        for campaign in 0..(SEEN_CAMPAIGNS as u16 + 5) {
            feed(&mut s, 0, &cancel(campaign));
        }
        assert_eq!(s.state().seen.len(), SEEN_CAMPAIGNS);
        assert!(!s.has_seen(4));
        assert!(s.has_seen(5));
        // Seeing one again moves it to the newest end, not a second entry.
        feed(&mut s, 0, &cancel(5));
        assert_eq!(s.state().seen.back(), Some(&5));
        assert_eq!(s.state().seen.len(), SEEN_CAMPAIGNS);
        assert!(matches!(
            feed(&mut s, 0, &wake(0, 60, 600, 0, None)),
            Decision::Scheduled { .. }
        ));
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut s = scheduler();
        feed(&mut s, 0, &cancel(3));
        feed(&mut s, 1_700_000_000, &wake(7, 7200, 900, 1, None));
        let json = serde_json::to_string(s.state()).unwrap();
        assert!(json.contains("\"opens_at_ms\":1700007200000"), "{json}");
        let restored: SchedulerState = serde_json::from_str(&json).unwrap();
        let mut r = Scheduler::restore(PORT, 2, restored);
        assert_eq!(r, s);
        assert_eq!(
            feed(&mut r, 1_700_000_100, &wake(7, 7200, 900, 1, None)),
            Decision::Ignored(IgnoreReason::Duplicate { campaign: 7 })
        );
        assert_eq!(r.due(secs(1_700_007_200)).unwrap().campaign, 7);
        // An empty object is a fresh state.
        let fresh: SchedulerState = serde_json::from_str("{}").unwrap();
        assert_eq!(fresh, SchedulerState::default());
    }
}
