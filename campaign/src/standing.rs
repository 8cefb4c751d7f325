//! `campaign plan --wake standing`: standing multicast groups, set up once
//! and woken in their daily slot by one multicast WAKE per campaign.
//!
//! The planned meters with a multicast root key that no earlier plan put
//! in a group are grouped by street segment, as for `--wake multicast`
//! ([`segment_groups`]), and each new group gets a daily slot
//! ([`standing::assign_slots`]) and, per member, one installation setup
//! (McGroupSetupReq and otavan's StandingSessionReq, first slot the
//! group's next after the plan's start). Meters an earlier plan set up
//! (its GROUPS.csv and GROUPKEYS.csv, [`read_registry`]) keep their group,
//! key and slot and get no setup. Every group with members this campaign
//! wakes gets a WAKE in each of [`standing::wake_slots`], its window
//! covering those members' contacts; those members' unicast WAKEs leave
//! PLAN.csv. A member whose pass comes before its group's next slot (or
//! whose contact the group's window cannot cover) keeps its unicast WAKE.
//!
//! The inventory does not say which gateway hears a meter, so every group
//! is taken to share one gateway: slots are one RX2 frame's airtime times
//! the duty-cycle divisor apart across the whole fleet, which is
//! conservative (groups under different gateways could share a slot).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use otavan_planning::contacts::Contact;
use otavan_planning::multicast::{GROUP_SPAN, GroupConfig, segment_groups};
use otavan_planning::standing::{self, FRAME_OFFSET, PERIOD};
use otavan_planning::time::{Time, secs};
use otavan_protocol::lora::multicast::{Key, OTAVAN_SETUP_FPORT};
use otavan_protocol::lora::{DEFAULT_FPORT, Wake, Window};
use otavan_protocol::region::Region;
use time::OffsetDateTime;

use crate::capacity;
use crate::deveui::DevEui;
use crate::groups_csv::{self, GroupKeys, GroupRow};
use crate::multicast::{Inputs, RX_AMPS, VOLTS};
use crate::table::{InputError, Problems};

/// Standing groups' addresses start here (a TS005 plan's are
/// [`crate::multicast::MC_ADDR_BASE`] plus the campaign's): a new group
/// takes the next address after every known one.
pub const STANDING_ADDR_BASE: u32 = 0x0180_0000;

/// The installation setup's length, bytes.
pub const SETUP_LEN: usize = standing::SETUP_LEN;

/// A slot's window, seconds.
pub const WINDOW_S: u64 = standing::WINDOW / secs(1);

/// A multicast frame lasts under 3 s at any data rate: the WAKE's delay
/// counts from its end.
const FRAME_END: Time = secs(3);

/// A setup must be queued this long, plus one uplink interval, its jitter
/// and receive delay, before the first slot its WAKE goes out in.
const SETUP_MARGIN: Time = secs(60);

/// A slot's WAKE is queued this long before its transmission (The Things
/// Stack holds it until its absolute time).
const WAKE_QUEUE_AHEAD: Time = secs(600);

/// One standing group an earlier plan set up.
#[derive(Clone)]
pub struct KnownGroup {
    /// Its multicast address.
    pub addr: u32,
    /// Its group key; never printed.
    pub key: Key,
    /// Its slot, seconds after 00:00 UTC.
    pub slot_s: u32,
    /// Its members, in file order.
    pub members: Vec<DevEui>,
}

impl std::fmt::Debug for KnownGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(
            f,
            "KnownGroup({:08X}, slot {} s, {} members)",
            self.addr,
            self.slot_s,
            self.members.len()
        )
    }
}

/// The standing groups of earlier plans.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// By first appearance in GROUPS.csv.
    pub groups: Vec<KnownGroup>,
}

/// Reads the standing groups of an earlier plan's GROUPS.csv (its
/// `standing` and `member` rows; other rows belong to that campaign) and
/// their keys from GROUPKEYS.csv.
///
/// # Errors
///
/// [`InputError`]: either file is missing or bad (as [`groups_csv::read_lines`]
/// and [`groups_csv::read_keys`]), or a group has no keys (by line).
pub fn read_registry(groups: &Path, keys_path: &Path) -> Result<Registry, InputError> {
    let rows = groups_csv::read_lines(groups)?;
    let keys = groups_csv::read_keys(keys_path)?;
    let mut problems = Problems::default();
    let mut registry = Registry::default();
    let mut index: HashMap<u32, usize> = HashMap::new();
    for (line, row) in rows {
        let (GroupRow::Standing {
            mc_addr,
            dev_eui,
            slot_s,
            ..
        }
        | GroupRow::Member {
            mc_addr,
            dev_eui,
            slot_s,
        }) = row
        else {
            continue;
        };
        let g = match index.get(&mc_addr) {
            Some(&g) => g,
            None => {
                let Some(k) = keys.get(&mc_addr) else {
                    problems.add(
                        line,
                        format!("group {mc_addr:08X} has no keys in {}", keys_path.display()),
                    );
                    continue;
                };
                index.insert(mc_addr, registry.groups.len());
                registry.groups.push(KnownGroup {
                    addr: mc_addr,
                    key: k.mc_key,
                    slot_s,
                    members: Vec::new(),
                });
                registry.groups.len() - 1
            }
        };
        registry.groups[g].members.push(dev_eui);
    }
    problems.check(groups)?;
    Ok(registry)
}

/// One group as this campaign uses it.
#[derive(Debug, Clone)]
pub struct GroupFigures {
    /// Its address.
    pub addr: u32,
    /// Its slot, seconds after 00:00 UTC.
    pub slot_s: u32,
    /// Members set up now.
    pub new_members: usize,
    /// Members this campaign wakes by its multicast WAKE.
    pub woken: usize,
    /// When its WAKEs go out.
    pub wakes: Vec<OffsetDateTime>,
}

/// What a standing plan adds to a unicast plan.
#[derive(Debug, Clone, Default)]
pub struct StandingPlan {
    /// The groups set up or woken this campaign, known ones first.
    pub groups: Vec<GroupFigures>,
    /// GROUPS.csv: setups of the new members, a `member` row for every
    /// known one, and each group's slot WAKEs.
    pub rows: Vec<GroupRow>,
    /// Every group's keys, known and new (GROUPKEYS.csv).
    pub keys: Vec<GroupKeys>,
    /// Meters set up now.
    pub set_up_now: usize,
    /// Planned meters already in a standing group.
    pub already_standing: usize,
    /// Planned meters without `gen_app_key` and no group: unicast.
    pub without_root_key: usize,
    /// Planned members whose pass their group's slots cannot reach in
    /// time (or whose contact its window cannot cover): unicast.
    pub unicast_members: usize,
    /// The setups' airtime (once per meter, not per campaign).
    pub setup_airtime: Duration,
    /// This campaign's slot WAKEs.
    pub wake_frames: usize,
    /// Their airtime.
    pub wake_airtime: Duration,
    /// What listening in its slot costs a member, joules a day.
    pub listen_j_per_day: f64,
}

/// One group this campaign deals with.
struct Draft {
    addr: u32,
    key: Key,
    slot_s: u32,
    /// Its members this campaign plans (inventory indices; a new group's
    /// by contact start).
    planned: Vec<usize>,
    /// Whether they are set up now.
    new: bool,
}

/// Plans the standing groups for `inputs`' unicast plan, with the groups
/// of `known`; `key` draws each new group's key. Returns the plan and, per
/// inventory meter, whether a slot WAKE serves it.
pub fn plan(
    inputs: &Inputs<'_>,
    known: &Registry,
    key: &mut dyn FnMut() -> Key,
) -> (StandingPlan, Vec<bool>) {
    let mut out = StandingPlan {
        listen_j_per_day: standing::listen_j_per_day(RX_AMPS, VOLTS),
        ..StandingPlan::default()
    };
    let mut served = vec![false; inputs.meters.len()];
    let group_of: HashMap<DevEui, usize> = known
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, k)| k.members.iter().map(move |&d| (d, g)))
        .collect();
    let mut known_planned: Vec<Vec<usize>> = vec![Vec::new(); known.groups.len()];
    let mut new = Vec::new();
    for (m, meter) in inputs.meters.iter().enumerate() {
        if meter.delivery.is_none() {
            continue;
        }
        match (group_of.get(&meter.dev_eui), meter.root_key) {
            (Some(&g), _) => {
                out.already_standing += 1;
                known_planned[g].push(m);
            }
            (None, Some(_)) => new.push(m),
            (None, None) => out.without_root_key += 1,
        }
    }
    let config = GroupConfig {
        span: GROUP_SPAN,
        earliest_session: 0,
        wake_lead: 0,
        min_contact: inputs.min_contact,
        lead: inputs.lead,
        slack: inputs.slack,
        max_window: secs(u64::from(Window::MAX.secs())),
    };
    let segments = segment_groups(new.iter().map(|&m| (m, inputs.contacts.of(m))), &config);
    out.unicast_members += new.len() - segments.iter().map(|s| s.members.len()).sum::<usize>();
    let slots = new_slots(inputs.region, inputs.wake_bytes, known, segments.len());
    let first_addr = known
        .groups
        .iter()
        .map(|g| g.addr + 1)
        .max()
        .unwrap_or(STANDING_ADDR_BASE)
        .max(STANDING_ADDR_BASE);
    let mut drafts: Vec<Draft> = known
        .groups
        .iter()
        .zip(known_planned)
        .filter(|(_, planned)| !planned.is_empty())
        .map(|(g, planned)| Draft {
            addr: g.addr,
            key: g.key,
            slot_s: g.slot_s,
            planned,
            new: false,
        })
        .collect();
    for (addr, (segment, slot_s)) in (first_addr..).zip(segments.iter().zip(slots)) {
        drafts.push(Draft {
            addr,
            key: key(),
            slot_s,
            planned: segment.members.clone(),
            new: true,
        });
    }
    for g in &known.groups {
        out.keys.push(GroupKeys::new(g.addr, g.key));
        for &dev_eui in &g.members {
            out.rows.push(GroupRow::Member {
                mc_addr: g.addr,
                dev_eui,
                slot_s: g.slot_s,
            });
        }
    }
    let wake_air = capacity::rx2_airtime(inputs.region, inputs.wake_bytes);
    let setup_air = capacity::rx2_airtime(inputs.region, SETUP_LEN);
    for draft in drafts {
        let figures = group(inputs, &draft, &mut out.rows, &mut served);
        out.unicast_members += draft.planned.len() - figures.woken;
        out.wake_frames += figures.wakes.len();
        out.wake_airtime += wake_air * figures.wakes.len() as u32;
        if draft.new {
            out.keys.push(GroupKeys::new(draft.addr, draft.key));
            out.set_up_now += figures.new_members;
            out.setup_airtime += setup_air * figures.new_members as u32;
        }
        out.groups.push(figures);
    }
    (out, served)
}

/// Slots for `count` new groups: [`standing::assign_slots`] over the
/// known groups and the new ones, all on one gateway, a new group moved
/// to the next free slot if a known one (from a plan with other spacing)
/// already holds its own.
fn new_slots(region: Region, wake_bytes: usize, known: &Registry, count: usize) -> Vec<u32> {
    let air = capacity::rx2_airtime(region, wake_bytes) * capacity::rx2_duty_divisor(region);
    let spacing = secs(air.as_secs() + u64::from(air.subsec_nanos() > 0)).max(secs(1));
    let one_gateway = vec![vec![0]; known.groups.len() + count];
    let offsets = standing::assign_slots(&one_gateway, spacing);
    let mut taken: HashSet<u32> = known.groups.iter().map(|g| g.slot_s).collect();
    let per_day = (PERIOD / spacing) as u32;
    let spacing_s = (spacing / secs(1)) as u32;
    offsets[known.groups.len()..]
        .iter()
        .map(|&offset| {
            let mut slot = (offset / secs(1)) as u32;
            for _ in 0..per_day {
                if !taken.contains(&slot) {
                    break;
                }
                slot = (slot + spacing_s) % (per_day * spacing_s);
            }
            taken.insert(slot);
            slot
        })
        .collect()
}

/// `draft`'s rows (setups of new members, the slot WAKEs) and figures.
fn group(
    inputs: &Inputs<'_>,
    draft: &Draft,
    rows: &mut Vec<GroupRow>,
    served: &mut [bool],
) -> GroupFigures {
    let clock = inputs.clock;
    let first = first_slot(clock.start(), draft.slot_s);
    let offset = clock.time_of(first).unwrap_or(0);
    let (members, open, close) = covered(inputs, &draft.planned);
    // A new group's setups must reach every member first.
    let longest = draft
        .planned
        .iter()
        .map(|&m| secs(inputs.meters[m].interval_s))
        .max()
        .unwrap_or(0);
    let setup_lead = longest + inputs.uplink_spread + SETUP_MARGIN;
    let earliest = if draft.new { setup_lead } else { SETUP_MARGIN };
    let slots = if members.is_empty() {
        Vec::new()
    } else {
        standing::wake_slots(offset, open, earliest)
    };
    let wakes: Vec<(Time, Wake)> = slots
        .iter()
        .filter_map(|&slot| Some((slot + FRAME_OFFSET, wake(&inputs.wake, slot, open, close)?)))
        .collect();
    let mut figures = GroupFigures {
        addr: draft.addr,
        slot_s: draft.slot_s,
        new_members: 0,
        woken: 0,
        wakes: Vec::new(),
    };
    if draft.new {
        let send_by = match wakes.first() {
            Some(&(transmit, _)) => clock.at((transmit - FRAME_OFFSET).saturating_sub(setup_lead)),
            None => clock.at(PERIOD),
        };
        figures.new_members = setups(inputs, draft, first, send_by, rows);
    }
    if !wakes.is_empty() {
        for (m, _) in &members {
            served[*m] = true;
        }
        figures.woken = members.len();
    }
    for (transmit, wake) in wakes {
        let transmit_at = clock.at(transmit);
        rows.push(GroupRow::SlotWake {
            mc_addr: draft.addr,
            slot_s: draft.slot_s,
            enqueue_at: whole_second(clock.at(transmit.saturating_sub(WAKE_QUEUE_AHEAD))),
            send_by: transmit_at - time::Duration::seconds(30),
            transmit_at,
            fport: DEFAULT_FPORT,
            wake,
        });
        figures.wakes.push(transmit_at);
    }
    figures
}

/// The first time of day `slot_s` (seconds after 00:00 UTC) at or after
/// `start`, in whole seconds.
fn first_slot(start: OffsetDateTime, slot_s: u32) -> OffsetDateTime {
    let day = start
        .to_offset(time::UtcOffset::UTC)
        .replace_time(time::Time::MIDNIGHT);
    let slot = day + time::Duration::seconds(i64::from(slot_s));
    if slot < start {
        slot + time::Duration::DAY
    } else {
        slot
    }
}

/// The members of `planned` one WiFi window covers: each one's first
/// usable contact, by start, as many as fit the longest window a WAKE
/// carries; and that window's opening and closing.
fn covered(inputs: &Inputs<'_>, planned: &[usize]) -> (Vec<(usize, Contact)>, Time, Time) {
    let mut members: Vec<(usize, Contact)> = planned
        .iter()
        .filter_map(|&m| {
            let c = inputs
                .contacts
                .of(m)
                .iter()
                .find(|c| c.start >= inputs.lead && c.duration() >= inputs.min_contact)?;
            Some((m, *c))
        })
        .collect();
    members.sort_by_key(|(m, c)| (c.start, *m));
    let max_window = secs(u64::from(Window::MAX.secs()));
    let open = members.first().map_or(0, |(_, c)| c.start - inputs.lead);
    members.retain(|(_, c)| c.end + inputs.slack - open <= max_window);
    let close = members
        .iter()
        .map(|(_, c)| c.end + inputs.slack)
        .max()
        .unwrap_or(open);
    (members, open, close)
}

/// Pushes the installation setup of every member of `draft` with a root
/// key, their queue times spread from the plan's start to `send_by`, the
/// first slot at `first`; returns how many.
fn setups(
    inputs: &Inputs<'_>,
    draft: &Draft,
    first: OffsetDateTime,
    send_by: OffsetDateTime,
    rows: &mut Vec<GroupRow>,
) -> usize {
    let start = inputs.clock.start();
    let first = Duration::from_secs(u64::try_from(first.unix_timestamp()).unwrap_or(0));
    let mut count = 0;
    for (j, &m) in draft.planned.iter().enumerate() {
        let Some(root) = inputs.meters[m].root_key else {
            continue;
        };
        // Spread over the time there is, not all in the first hour's duty
        // cycle.
        let share = (send_by - start) * (j as f64 / draft.planned.len() as f64);
        rows.push(GroupRow::Standing {
            mc_addr: draft.addr,
            dev_eui: inputs.meters[m].dev_eui,
            slot_s: draft.slot_s,
            enqueue_at: whole_second(start + share),
            send_by: whole_second(send_by),
            fport: OTAVAN_SETUP_FPORT,
            frame: standing::setup_frame(draft.addr, &draft.key, &root, first, inputs.region),
        });
        count += 1;
    }
    count
}

/// The WAKE (`template`'s campaign, network and tag) sent in the slot at
/// `slot` for a WiFi window from `open` to `close`: its delay counted
/// from the frame's end, rounded as the codec rounds it, and its window
/// long enough to still reach `close`.
fn wake(template: &Wake, slot: Time, open: Time, close: Time) -> Option<Wake> {
    let heard = slot + FRAME_OFFSET + FRAME_END;
    let delay = Duration::from_micros(open.checked_sub(heard)?);
    let make = |window: Time| {
        Wake::new(
            template.campaign,
            delay,
            Duration::from_micros(window),
            template.network,
            template.version_tag,
        )
        .ok()
    };
    let rounded = make(close - open)?;
    // The delay is rounded to the minute past 9 h: the window then opens
    // up to 30 s early or late, and is lengthened to close no earlier.
    let opens = heard + secs(u64::from(rounded.delay.secs()));
    make(close.saturating_sub(opens).max(close - open)).or(Some(rounded))
}

/// `t` to the whole second below.
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_groups_take_the_slots_after_the_known_ones_and_never_a_taken_one() {
        let known = |slots: &[u32]| Registry {
            groups: slots
                .iter()
                .enumerate()
                .map(|(i, &slot_s)| KnownGroup {
                    addr: STANDING_ADDR_BASE + i as u32,
                    key: [0; 16],
                    slot_s,
                    members: Vec::new(),
                })
                .collect(),
        };
        // EU868: an 11-byte WAKE is 1.48 s on air at 10 %: 15 s apart.
        assert_eq!(
            new_slots(Region::Eu868, 11, &Registry::default(), 3),
            [0, 15, 30]
        );
        assert_eq!(new_slots(Region::Eu868, 11, &known(&[0, 15]), 2), [30, 45]);
        // Known groups from a plan with other slots: a new group skips
        // the ones taken.
        assert_eq!(new_slots(Region::Eu868, 11, &known(&[0, 30]), 2), [45, 60]);
    }

    #[test]
    fn a_wake_days_ahead_still_covers_its_window_after_minute_rounding() {
        let template = Wake::new(7, Duration::ZERO, Duration::ZERO, 1, None).unwrap();
        let slot = secs(3_600);
        // Opens 33 h 20 min 37 s after the frame: the delay goes in
        // minutes.
        let open = slot + FRAME_OFFSET + FRAME_END + secs(120_037);
        let close = open + secs(900);
        let w = wake(&template, slot, open, close).unwrap();
        let heard = slot + FRAME_OFFSET + FRAME_END;
        let opens = heard + secs(u64::from(w.delay.secs()));
        let closes = opens + secs(u64::from(w.window.secs()));
        assert!(opens.abs_diff(open) <= secs(30), "{w:?}");
        assert!(closes >= close, "{w:?}");
        assert_eq!((w.campaign, w.network), (7, 1));
        // A window before the frame: none.
        assert!(wake(&template, slot, slot, close).is_none());
    }
}
