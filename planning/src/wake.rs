//! The WAKE planner: which pass each meter is woken for, when its WAKE is
//! queued on the network server, and what delay and window it carries.
//!
//! A class A meter only hears a downlink right after one of its own
//! uplinks, and the WAKE's delay counts from that moment. The planner
//! predicts the meter's uplinks (`phase + k * interval`, known to the
//! network server from the meter's history) and picks the last uplink `k`
//! before the window must open, so the prediction is as short-range as
//! possible:
//!
//! - the window opens `lead` before the predicted contact and closes
//!   `slack` after it (capped at the longest window a WAKE can carry);
//! - the WAKE is queued after uplink `k - 1` can have happened (its
//!   nominal time plus the jitter and the receive windows), so it is not
//!   delivered one uplink early;
//! - it expires when a later delivery would leave less than `min_contact`
//!   of the contact inside the window (the network server drops it; the
//!   meter is planned for a later pass).
//!
//! Delay and window are rounded exactly as the downlink codec rounds them,
//! so the plan is what the meter will do.

use std::time::Duration;

use otavan_protocol::lora::{Delay, VersionTag, Wake, Window};
use serde::{Deserialize, Serialize};

use crate::contacts::Contact;
use crate::defaults::Margins;
use crate::time::{Time, from_secs_f64, secs};

/// How the planner picks the pass a meter is woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The next pass with enough predicted contact; after a miss, the next
    /// one after that.
    NextPass,
    /// The remaining pass with the longest predicted contact; after a miss,
    /// the longest of the passes after it.
    LongestContact,
}

/// The campaign-wide planning settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig {
    /// How contacts are chosen.
    pub policy: Policy,
    /// The window opens this long before the predicted contact.
    pub lead: Time,
    /// The window closes this long after it.
    pub slack: Time,
    /// Contacts shorter than this are not planned; a WAKE expires when it
    /// can no longer give this much contact.
    pub min_contact: Time,
    /// Uplinks happen up to this long before or after their nominal time.
    pub jitter: Time,
    /// The campaign number of the WAKEs.
    pub campaign: u16,
    /// The van network slot the meters join.
    pub network: u8,
    /// The target version's tag, if WAKEs carry it.
    pub version_tag: Option<VersionTag>,
}

impl PlanConfig {
    /// `policy` with `margins`, for campaign 0 on network slot 0 without a
    /// version tag (set those fields to change them).
    pub fn new(policy: Policy, margins: &Margins) -> PlanConfig {
        PlanConfig {
            policy,
            lead: from_secs_f64(margins.lead_s),
            slack: from_secs_f64(margins.slack_s),
            min_contact: from_secs_f64(margins.min_contact_s),
            jitter: from_secs_f64(margins.jitter_s),
            campaign: 0,
            network: 0,
            version_tag: None,
        }
    }
}

/// A meter's predicted uplinks.
#[derive(Debug, Clone, Copy)]
pub struct Uplinks {
    /// Nominal time of uplink 0.
    pub phase: Time,
    /// Time between uplinks.
    pub interval: Time,
    /// From the start of an uplink to the end of the downlink answering it
    /// in RX1 (time on air + 1 s + the WAKE's time on air).
    pub rx_delay: Time,
}

impl Uplinks {
    /// Nominal start of uplink `k`.
    pub fn nominal(&self, k: u64) -> Time {
        self.phase + k * self.interval
    }
}

/// One planned WAKE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WakePlan {
    /// Index of the contact it is for, in the slice given to [`plan`].
    pub contact: usize,
    /// The uplink it should ride on.
    pub uplink: u64,
    /// When to queue it on the network server.
    pub enqueue_at: Time,
    /// When the network server should drop it if still queued.
    pub expires_at: Time,
    /// The command.
    pub wake: Wake,
    /// When the window opens if the WAKE rides on its uplink.
    pub opens_at: Time,
    /// When it closes.
    pub closes_at: Time,
}

/// Plans a WAKE for one of `contacts[from..]` (a meter's contacts in time
/// order), no earlier than `now`, following the policy; `None` when no
/// contact can be planned any more.
pub fn plan(
    contacts: &[Contact],
    from: usize,
    now: Time,
    uplinks: &Uplinks,
    config: &PlanConfig,
) -> Option<WakePlan> {
    let candidates = contacts
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, c)| c.duration() >= config.min_contact)
        .filter_map(|(i, c)| wake_for(i, c, now, uplinks, config));
    match config.policy {
        Policy::NextPass => candidates.into_iter().next(),
        Policy::LongestContact => candidates.reduce(|best, p| {
            let d = |p: &WakePlan| contacts[p.contact].duration();
            if d(&p) > d(&best) { p } else { best }
        }),
    }
}

/// The WAKE for contact `c`, if there is still an uplink to carry it.
fn wake_for(
    index: usize,
    c: &Contact,
    now: Time,
    uplinks: &Uplinks,
    config: &PlanConfig,
) -> Option<WakePlan> {
    let open = c.start.checked_sub(config.lead)?;
    let latest_uplink = open.checked_sub(uplinks.rx_delay)?;
    if latest_uplink < uplinks.phase {
        return None;
    }
    let k = (latest_uplink - uplinks.phase) / uplinks.interval;
    let at = uplinks.nominal(k);
    if at < now + config.jitter {
        return None;
    }
    let received = at + uplinks.rx_delay;
    let delay = Delay::from_duration(Duration::from_micros(open - received)).ok()?;
    let opens_at = received + secs(u64::from(delay.secs()));
    let wanted = (c.end + config.slack).saturating_sub(opens_at);
    let wanted =
        Duration::from_micros(wanted).min(Duration::from_secs(u64::from(Window::MAX.secs())));
    let window = Window::from_duration(wanted).ok()?;
    let closes_at = opens_at + secs(u64::from(window.secs()));
    // Later deliveries shift the window later by as much.
    let latest_open = c.end.checked_sub(config.min_contact)?;
    let expires_at = at + latest_open.saturating_sub(opens_at);
    let after_previous = match k {
        0 => now,
        _ => uplinks.nominal(k - 1) + config.jitter + uplinks.rx_delay + secs(1),
    };
    Some(WakePlan {
        contact: index,
        uplink: k,
        enqueue_at: after_previous.max(now),
        expires_at,
        wake: Wake {
            campaign: config.campaign,
            delay,
            window,
            network: config.network,
            version_tag: config.version_tag,
        },
        opens_at,
        closes_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default margins: lead 60 s, slack 120 s, contacts of 10 s,
    /// jitter 30 s.
    fn config(policy: Policy) -> PlanConfig {
        PlanConfig {
            campaign: 7,
            ..PlanConfig::new(policy, &Margins::default())
        }
    }

    fn contact(start_s: u64, len_s: u64) -> Contact {
        Contact {
            start: secs(start_s),
            end: secs(start_s + len_s),
            van: 0,
            pass: 0,
        }
    }

    const HOURLY: Uplinks = Uplinks {
        phase: secs(100),
        interval: secs(3600),
        rx_delay: secs(2),
    };

    #[test]
    fn rides_on_the_last_uplink_before_the_window() {
        let contacts = [contact(10_000, 40)];
        let p = plan(&contacts, 0, 0, &HOURLY, &config(Policy::NextPass)).unwrap();
        // Uplinks at 100, 3700, 7300, 10900: the window opens at 9940.
        assert_eq!(p.uplink, 2);
        assert_eq!(p.opens_at, secs(9940));
        assert_eq!(p.wake.delay.secs(), 9940 - 7302);
        // Queued after uplink 1 (3700 + 30 jitter + 2 + 1).
        assert_eq!(p.enqueue_at, secs(3733));
        assert!(p.closes_at >= secs(10_040 + 120 - 5));
        // Delivered up to 30 s late still leaves 10 s of contact.
        assert_eq!(p.expires_at, secs(7300 + (10_030 - 9940)));
        assert_eq!(p.wake.campaign, 7);
    }

    #[test]
    fn skips_contacts_too_soon_or_too_short() {
        let contacts = [contact(120, 40), contact(20_000, 5), contact(30_000, 60)];
        let p = plan(&contacts, 0, 0, &HOURLY, &config(Policy::NextPass)).unwrap();
        assert_eq!(p.contact, 2);
        // Nothing left after the last one.
        assert!(plan(&contacts, 3, 0, &HOURLY, &config(Policy::NextPass)).is_none());
        // Too late to catch the uplink before it.
        assert!(
            plan(
                &contacts[2..],
                0,
                secs(29_000),
                &HOURLY,
                &config(Policy::NextPass)
            )
            .is_none()
        );
    }

    #[test]
    fn longest_contact_policy() {
        let contacts = [
            contact(10_000, 20),
            contact(50_000, 90),
            contact(90_000, 30),
        ];
        let next = plan(&contacts, 0, 0, &HOURLY, &config(Policy::NextPass)).unwrap();
        let longest = plan(&contacts, 0, 0, &HOURLY, &config(Policy::LongestContact)).unwrap();
        assert_eq!((next.contact, longest.contact), (0, 1));
    }

    #[test]
    fn long_delays_round_like_the_codec() {
        // A daily meter: the delay is above 32767 s, carried in minutes.
        let daily = Uplinks {
            phase: secs(50),
            interval: secs(86_400),
            rx_delay: secs(3),
        };
        let contacts = [contact(86_400 + 80_000, 30)];
        let p = plan(&contacts, 0, 0, &daily, &config(Policy::NextPass)).unwrap();
        assert_eq!(p.uplink, 1);
        assert_eq!(p.wake.delay.secs() % 60, 0);
        let received = daily.nominal(1) + secs(3);
        assert_eq!(p.opens_at, received + secs(u64::from(p.wake.delay.secs())));
        assert!(p.opens_at.abs_diff(secs(86_400 + 80_000 - 60)) <= secs(30));
        let bytes = p.wake.encode();
        assert_eq!(Wake::decode(&bytes).unwrap(), p.wake);
    }
}
