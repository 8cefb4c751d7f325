//! The discrete-event core: every meter's campaign, from its planned WAKE
//! to UPDATED or to the reason it is not.
//!
//! Events sit in one heap ordered by (time, sequence number), so ties
//! resolve in the order the events were scheduled and a run is a pure
//! function of its inputs. A meter goes through:
//!
//! 1. **planned**: [`otavan_planning::wake`] picks a pass and the uplink to ride
//!    on; the meter's [`Event::Uplink`] is scheduled at that uplink's
//!    actual time (nominal plus jitter).
//! 2. **uplink**: [`Radio::try_wake`] decides whether the WAKE reaches the
//!    meter. Lost uplinks and busy gateways leave the WAKE queued for the
//!    next uplink until it expires; a lost downlink is noticed when the
//!    meter fails to show up at the van.
//! 3. **window**: the meter's WiFi is on from the WAKE's delay for its
//!    window; each time a van comes within range (a [`Contact`]) it
//!    associates (log-normal time) and downloads, sharing the van's access
//!    point ([`fair_rates`]), until done, out of range, window closed or
//!    the link drops. Downloaded bytes are kept (resume on the next pass).
//! 4. **apply**: `apply_s` later the meter runs the new version, unless a
//!    power cut hits (it stays at the old version and is planned again).
//!
//! Energy counts the campaign's extra cost: WAKE reception, the WiFi
//! window while waiting for the van, association, download and apply.
//!
//! With `campaign.replan = "after-pass"` a missed meter is not planned
//! again by itself: each pass of the vans has its own plan, and once a
//! pass is over (its last leg's end plus the window's slack and the apply)
//! the operator plans every meter not at the target on the next pass's
//! contacts, through [`otavan_planning::replan`] as `otavan campaign
//! replan` does, in route order; [`PassFigures`] count each pass.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::ap::fair_rates;
use crate::fleet::Fleet;
use crate::multicast::{CLASS_C_WINDOW, FRAME_OFFSET, MulticastPlan, SETUP_AHEAD, SETUP_LEN};
use crate::radio::{Radio, WakeAttempt};
use crate::random::{Purpose, Stream};
use crate::scenario::{Replan, Scenario};
use otavan_planning::contacts::{Contact, Contacts};
use otavan_planning::multicast::Delivery;
use otavan_planning::standing;
use otavan_protocol::lora::Window;

use crate::standing::Retries;
use otavan_planning::replan::{self, Status};
use otavan_planning::time::{Time, as_secs_f64, from_secs_f64, secs};
use otavan_planning::wake::{self, PlanConfig, Uplinks, WakePlan};
use serde::Serialize;

/// Why a meter did not update (or what went wrong on the way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// No gateway can hear the meter.
    NoLoraCoverage,
    /// No van comes within the meter's WiFi range.
    NeverInRange,
    /// Every contact is shorter than the planner's minimum.
    ContactTooShort,
    /// The WAKE expired in the queue (uplinks lost or gateways busy).
    WakeNotDelivered,
    /// The WAKE was sent but the meter did not receive it.
    WakeLost,
    /// The window was open but no van came into range during it.
    WindowMissed,
    /// The access point had no room for the meter.
    ApFull,
    /// The WiFi link dropped during the download.
    LinkDrop,
    /// The van left the meter's range before the download finished.
    ContactEnded,
    /// The window closed before the download finished.
    WindowClosed,
    /// Power failed during the apply.
    PowerCut,
    /// The campaign ended before the meter's next chance.
    CampaignEnded,
}

impl Cause {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::NoLoraCoverage => "no_lora_coverage",
            Cause::NeverInRange => "never_in_range",
            Cause::ContactTooShort => "contact_too_short",
            Cause::WakeNotDelivered => "wake_not_delivered",
            Cause::WakeLost => "wake_lost",
            Cause::WindowMissed => "window_missed",
            Cause::ApFull => "ap_full",
            Cause::LinkDrop => "link_drop",
            Cause::ContactEnded => "contact_ended",
            Cause::WindowClosed => "window_closed",
            Cause::PowerCut => "power_cut",
            Cause::CampaignEnded => "campaign_ended",
        }
    }
}

/// Where a meter ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already at (or above) the target.
    AlreadyCurrent,
    /// Updated at this time.
    Updated(Time),
    /// Not updated, for this reason (the last thing that went wrong).
    Failed(Cause),
}

/// One meter's result.
#[derive(Debug, Clone, Copy)]
pub struct MeterResult {
    /// Where it ended up.
    pub outcome: Outcome,
    /// Bytes it downloaded (including bytes of unfinished attempts).
    pub bytes: f64,
    /// WiFi sessions it opened with a van.
    pub sessions: u16,
    /// WAKEs sent to it.
    pub downlinks: u16,
    /// Energy the campaign cost it, joules.
    pub energy_j: f64,
}

/// Totals of a run.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Events processed.
    pub events: u64,
    /// WAKEs planned (queued on the network server).
    pub wakes_planned: u64,
    /// WAKE downlinks transmitted by gateways.
    pub downlinks_sent: u64,
    /// Gateway airtime spent on WAKEs.
    pub downlink_airtime: Time,
    /// Everything that went wrong, as often as it did.
    pub incidents: BTreeMap<Cause, u64>,
    /// Members of standing groups a pass missed, woken for a later pass by
    /// their group's frame again.
    pub woken_again: u64,
}

/// One pass's plan against its outcome (`campaign.replan =
/// "after-pass"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PassFigures {
    /// The pass, from 1.
    pub pass: u32,
    /// Meters on the operator's list when the pass was planned: every
    /// meter not yet at the target that a van can reach at all.
    pub listed: u64,
    /// Of those, meters with a WAKE for this pass.
    pub planned: u64,
    /// Of the listed, meters at the target when the pass is over.
    pub updated: u64,
    /// Of the listed, meters not at the target then (listed for the next
    /// pass).
    pub missed: u64,
    /// Of the missed, meters that had no session with a van on this pass
    /// (no report).
    pub silent: u64,
}

/// Everything a run produces.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Per meter, in meter order.
    pub meters: Vec<MeterResult>,
    /// Totals.
    pub totals: Totals,
    /// Per pass, with `campaign.replan = "after-pass"` (empty otherwise).
    pub passes: Vec<PassFigures>,
}

/// Something that happens to a meter or van at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The meter sends the uplink its queued WAKE rides on.
    Uplink(u32),
    /// Plan the meter again (after a missed pass).
    Replan(u32),
    /// The operator plans the next pass after pass `n` (after-pass mode).
    PassOver(u16),
    /// The network server drops the meter's queued WAKE.
    Expired(u32),
    /// The WAKE's window opens.
    WindowOpen(u32),
    /// The meter sends the uplink its multicast setup rides on.
    Setup(u32),
    /// A multicast group's class C window: its WAKE goes out.
    GroupWake(u32),
    /// A standing group's slot: the WAKE for the members a pass missed.
    RetryWake(u32),
    /// Association done: the meter joins the van's access point.
    Connect(u32),
    /// The session's deadline (out of range, window closed, link drop).
    SessionEnd(u32, u32),
    /// The window closes (generation).
    WindowClose(u32, u32),
    /// The next download on the van finishes (generation).
    VanTick(u16, u32),
    /// The apply finishes.
    ApplyDone(u32),
}

/// What a group's multicast frame did for one member.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// Heard, at this time.
    Heard(Time),
    /// Listened for and missed.
    Missed(Cause),
    /// Not listening: no gateway hears it, or its setup never reached it.
    NotSetUp,
}

impl Frame {
    /// When the member heard it, or why not.
    fn at(self) -> Result<Time, Cause> {
        match self {
            Frame::Heard(at) => Ok(at),
            Frame::Missed(cause) => Err(cause),
            Frame::NotSetUp => Err(Cause::WakeNotDelivered),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Idle,
    Queued,
    Window,
    Session,
    Applying,
    Done,
}

/// A meter's run-time state.
struct MeterRun {
    stage: Stage,
    /// First contact the planner may still use.
    cursor: u32,
    /// The contact of the current plan.
    planned: u32,
    uplink: u64,
    expires_at: Time,
    delay: Time,
    window: Time,
    close: Time,
    awake_since: Time,
    /// When the meter entered the van's range for the current session.
    entered: Time,
    session_van: u16,
    session_contact_end: Time,
    session_cause: Cause,
    rate: f64,
    need: f64,
    done: f64,
    generation: u32,
    connected_this_window: bool,
    /// Had a session with a van on the current pass (after-pass mode).
    heard: bool,
    /// The multicast group it is woken with, while it is.
    group: Option<u32>,
    /// Its setup (group and class C window) reached it.
    setup_ok: bool,
    /// The standing group retry it waits for, while it does.
    retry: Option<u32>,
    result: MeterResult,
    cause: Option<Cause>,
    rng: Stream,
}

/// A van's access point.
#[derive(Default)]
struct Van {
    active: Vec<u32>,
    last: Time,
    generation: u32,
}

/// Constants of a run, derived from the scenario.
struct Settings {
    plan: PlanConfig,
    horizon: Time,
    jitter: Time,
    wake_len: usize,
    rx_delay_extra: Time,
    overhead: Time,
    apply: Time,
    capacity_bps: f64,
    max_clients: usize,
    drops_per_s: f64,
    power_cut: f64,
    assoc_median: f64,
    assoc_p99: f64,
    volts: f64,
    wait_a: f64,
    active_a: f64,
    lora_rx_a: f64,
    replan: Replan,
    /// When the operator plans pass `n + 1`: the end of pass `n`'s last
    /// leg plus the window's slack and the apply (after-pass mode).
    pass_over: Vec<Time>,
}

/// The simulation of one campaign.
pub struct Simulation<'a> {
    fleet: &'a Fleet,
    contacts: &'a Contacts,
    radio: &'a mut Radio,
    settings: Settings,
    meters: Vec<MeterRun>,
    vans: Vec<Van>,
    queue: BinaryHeap<Reverse<(Time, u64, Event)>>,
    sequence: u64,
    now: Time,
    totals: Totals,
    /// The current pass (after-pass mode).
    pass: u16,
    /// The operator's list for it.
    list: Vec<u32>,
    /// Meters with a WAKE for it.
    planned_this_pass: u64,
    passes: Vec<PassFigures>,
    /// The multicast groups (`campaign.wake = "multicast"`).
    multicast: MulticastPlan,
    /// Standing groups' WAKEs for the members a pass missed.
    retries: Retries,
}

impl<'a> Simulation<'a> {
    /// A run of `scenario` over `fleet`, where meter `m` needs
    /// `needs[version of m]` bytes (`None`: already current); pass `n` of
    /// the vans ends at `pass_ends[n]` (its last leg's end).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &Scenario,
        plan: PlanConfig,
        fleet: &'a Fleet,
        contacts: &'a Contacts,
        radio: &'a mut Radio,
        needs: &[Option<u64>],
        pass_ends: &[Time],
        seed: u64,
    ) -> Simulation<'a> {
        let wifi = &scenario.wifi;
        let settled = plan.slack + from_secs_f64(wifi.apply_s) + secs(1);
        let settings = Settings {
            plan,
            horizon: from_secs_f64(scenario.campaign.duration_days * 86_400.0),
            jitter: from_secs_f64(scenario.fleet.uplink_jitter_s),
            wake_len: if plan.version_tag.is_some() { 11 } else { 7 },
            rx_delay_extra: secs(1),
            overhead: from_secs_f64(wifi.session_overhead_s),
            apply: from_secs_f64(wifi.apply_s),
            capacity_bps: scenario.van.ap_capacity_mbps * 1e6 / 8.0,
            max_clients: scenario.van.ap_max_clients as usize,
            drops_per_s: scenario.faults.link_drops_per_min / 60.0,
            power_cut: scenario.faults.power_cut_per_apply,
            assoc_median: wifi.assoc_median_s,
            assoc_p99: wifi.assoc_p99_s,
            volts: wifi.supply_v,
            wait_a: wifi.wait_ma / 1000.0,
            active_a: wifi.active_ma / 1000.0,
            lora_rx_a: wifi.lora_rx_ma / 1000.0,
            replan: scenario.campaign.replan,
            pass_over: pass_ends.iter().map(|end| end + settled).collect(),
        };
        let meters = fleet
            .profiles
            .iter()
            .enumerate()
            .map(|(m, profile)| MeterRun {
                stage: Stage::Idle,
                cursor: 0,
                planned: 0,
                uplink: 0,
                expires_at: 0,
                delay: 0,
                window: 0,
                close: 0,
                awake_since: 0,
                entered: 0,
                session_van: 0,
                session_contact_end: 0,
                session_cause: Cause::ContactEnded,
                rate: 0.0,
                need: needs[usize::from(profile.version)].unwrap_or(0) as f64,
                done: 0.0,
                generation: 0,
                connected_this_window: false,
                heard: false,
                group: None,
                setup_ok: false,
                retry: None,
                result: MeterResult {
                    outcome: match needs[usize::from(profile.version)] {
                        None => Outcome::AlreadyCurrent,
                        Some(_) => Outcome::Failed(Cause::CampaignEnded),
                    },
                    bytes: 0.0,
                    sessions: 0,
                    downlinks: 0,
                    energy_j: 0.0,
                },
                cause: None,
                rng: Stream::new(seed, Purpose::Behaviour, m as u64),
            })
            .collect();
        let vans = scenario.van.vans as usize;
        Simulation {
            fleet,
            contacts,
            radio,
            settings,
            meters,
            vans: (0..vans).map(|_| Van::default()).collect(),
            queue: BinaryHeap::new(),
            sequence: 0,
            now: 0,
            totals: Totals::default(),
            pass: 0,
            list: Vec::new(),
            planned_this_pass: 0,
            passes: Vec::new(),
            multicast: MulticastPlan::default(),
            retries: Retries::default(),
        }
    }

    /// Wakes the meters of `plan`'s multicast groups with one multicast
    /// WAKE per group after each member's setup (per-meter replanning
    /// only); every other meter is planned by unicast.
    pub fn with_multicast(mut self, plan: MulticastPlan) -> Simulation<'a> {
        for (m, group) in plan.group_of.iter().enumerate() {
            self.meters[m].group = *group;
        }
        self.multicast = plan;
        self
    }

    /// Runs the campaign to its end; `progress` is called now and then with
    /// the share of virtual time done.
    pub fn run(mut self, progress: &mut dyn FnMut(f64)) -> RunResult {
        match self.settings.replan {
            Replan::PerMeter => {
                for m in 0..self.meters.len() {
                    if self.meters[m].result.outcome == Outcome::AlreadyCurrent {
                        continue;
                    }
                    match self.meters[m].group {
                        Some(g) if self.multicast.standing.is_some() => self.installed(m, g),
                        Some(g) => {
                            let session_at = self.multicast.groups[g as usize].segment.session_at;
                            let spec = &self.fleet.meters[m];
                            let from = session_at.saturating_sub(SETUP_AHEAD);
                            let k = from.saturating_sub(spec.phase).div_ceil(spec.interval);
                            self.meters[m].uplink = k;
                            let at = self.uplink_time(m, k);
                            self.schedule(at, Event::Setup(m as u32));
                        }
                        None => self.plan(m),
                    }
                }
                let wakes: Vec<(usize, Time)> = (self.multicast.groups.iter().enumerate())
                    .filter(|(_, group)| group.delivery == Delivery::Multicast)
                    .flat_map(|(g, group)| match group.slots.is_empty() {
                        true => vec![(g, group.segment.session_at + FRAME_OFFSET)],
                        false => (group.slots.iter())
                            .map(|&slot| (g, slot + standing::FRAME_OFFSET))
                            .collect(),
                    })
                    .collect();
                for (g, at) in wakes {
                    self.schedule(at, Event::GroupWake(g as u32));
                }
            }
            Replan::AfterPass => self.first_pass(),
        }
        while let Some(Reverse((time, _, event))) = self.queue.pop() {
            if time > self.settings.horizon {
                break;
            }
            self.now = time;
            self.totals.events += 1;
            if self.totals.events.is_multiple_of(65_536) {
                progress(as_secs_f64(time) / as_secs_f64(self.settings.horizon));
            }
            self.handle(event);
        }
        if self.settings.replan == Replan::AfterPass {
            self.last_pass();
        }
        progress(1.0);
        RunResult {
            meters: self.meters.into_iter().map(|m| m.result).collect(),
            totals: self.totals,
            passes: self.passes,
        }
    }

    fn schedule(&mut self, at: Time, event: Event) {
        self.sequence += 1;
        self.queue.push(Reverse((at, self.sequence, event)));
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Uplink(m) => self.uplink(m as usize),
            Event::Replan(m) => self.plan(m as usize),
            Event::PassOver(pass) => self.pass_over(pass),
            Event::Expired(m) => self.wake_expired(m as usize),
            Event::WindowOpen(m) => self.window_open(m as usize),
            Event::Setup(m) => self.setup(m as usize),
            Event::GroupWake(g) => self.group_wake(g as usize),
            Event::RetryWake(id) => self.retry_wake(id),
            Event::Connect(m) => self.connect(m as usize),
            Event::SessionEnd(m, generation) => {
                let run = &self.meters[m as usize];
                if run.stage == Stage::Session && run.generation == generation {
                    self.session_end(m as usize);
                }
            }
            Event::WindowClose(m, generation) => {
                let run = &self.meters[m as usize];
                if run.stage == Stage::Window && run.generation == generation {
                    self.window_close(m as usize);
                }
            }
            Event::VanTick(van, generation) => {
                if self.vans[usize::from(van)].generation == generation {
                    self.van_tick(usize::from(van));
                }
            }
            Event::ApplyDone(m) => self.apply_done(m as usize),
        }
    }

    fn incident(&mut self, m: usize, cause: Cause) {
        *self.totals.incidents.entry(cause).or_default() += 1;
        self.meters[m].cause = Some(cause);
    }

    fn finish(&mut self, m: usize, cause: Cause) {
        let run = &mut self.meters[m];
        run.stage = Stage::Done;
        run.result.outcome = Outcome::Failed(run.cause.unwrap_or(cause));
    }

    fn energy(&mut self, m: usize, amps: f64, duration: Time) {
        self.meters[m].result.energy_j += self.settings.volts * amps * as_secs_f64(duration);
    }

    /// Plans meter `m`'s next WAKE, or ends its campaign.
    fn plan(&mut self, m: usize) {
        let Some(sf_airtime) = self.radio.sf(m).map(|_| self.radio.uplink_airtime(m)) else {
            self.finish(m, Cause::NoLoraCoverage);
            return;
        };
        let contacts = self.contacts.of(m);
        if contacts.is_empty() {
            self.finish(m, Cause::NeverInRange);
            return;
        }
        if self.join_retry(m) {
            return;
        }
        let spec = &self.fleet.meters[m];
        let uplinks = Uplinks {
            phase: spec.phase,
            interval: spec.interval,
            rx_delay: sf_airtime + self.settings.rx_delay_extra,
        };
        let run = &mut self.meters[m];
        let from = run.cursor as usize;
        let Some(plan) = wake::plan(contacts, from, self.now, &uplinks, &self.settings.plan) else {
            let cause = if contacts
                .iter()
                .all(|c| c.duration() < self.settings.plan.min_contact)
            {
                Cause::ContactTooShort
            } else {
                Cause::CampaignEnded
            };
            self.finish(m, cause);
            return;
        };
        self.queue_wake(m, plan.contact, &plan);
    }

    /// Queues meter `m`'s WAKE `plan`, for its contact `contact`.
    fn queue_wake(&mut self, m: usize, contact: usize, plan: &WakePlan) {
        let run = &mut self.meters[m];
        run.stage = Stage::Queued;
        run.planned = contact as u32;
        run.uplink = plan.uplink;
        run.expires_at = plan.expires_at;
        run.delay = secs(u64::from(plan.wake.delay.secs()));
        run.window = secs(u64::from(plan.wake.window.secs()));
        self.totals.wakes_planned += 1;
        let at = self.uplink_time(m, plan.uplink);
        self.schedule(at, Event::Uplink(m as u32));
    }

    /// After a miss: planned again at once, or left for the operator's
    /// plan of the next pass.
    fn missed(&mut self, m: usize) {
        match self.settings.replan {
            Replan::PerMeter => self.plan(m),
            Replan::AfterPass => self.meters[m].stage = Stage::Idle,
        }
    }

    /// The WAKE of meter `m` for a contact of pass `pass`, with the
    /// index of that contact among all of the meter's.
    fn plan_for_pass(&self, m: usize, pass: u16) -> Option<(usize, WakePlan)> {
        let sf_airtime = self.radio.sf(m).map(|_| self.radio.uplink_airtime(m))?;
        let all = self.contacts.of(m);
        let on_pass: Vec<usize> = (0..all.len()).filter(|&i| all[i].pass == pass).collect();
        let contacts: Vec<Contact> = on_pass.iter().map(|&i| all[i]).collect();
        let spec = &self.fleet.meters[m];
        let uplinks = Uplinks {
            phase: spec.phase,
            interval: spec.interval,
            rx_delay: sf_airtime + self.settings.rx_delay_extra,
        };
        wake::plan(&contacts, 0, self.now, &uplinks, &self.settings.plan)
            .map(|plan| (on_pass[plan.contact], plan))
    }

    /// Plans pass `pass` for the idle meters of the operator's list, in
    /// route order.
    fn plan_pass(&mut self, pass: u16) {
        self.pass = pass;
        let mut plans: Vec<(usize, usize, WakePlan)> = self
            .list
            .iter()
            .map(|&m| m as usize)
            .filter(|&m| self.meters[m].stage == Stage::Idle)
            .filter_map(|m| self.plan_for_pass(m, pass).map(|(c, p)| (m, c, p)))
            .collect();
        let contacts = self.contacts;
        replan::route_order(&mut plans, |&(m, c, _)| (contacts.of(m)[c].start, m));
        self.planned_this_pass = plans.len() as u64;
        for (m, contact, plan) in plans {
            self.queue_wake(m, contact, &plan);
        }
        if let Some(&at) = self.settings.pass_over.get(usize::from(pass))
            && usize::from(pass) + 1 < self.settings.pass_over.len()
        {
            self.schedule(at.max(self.now), Event::PassOver(pass));
        }
    }

    /// The first pass's plan: every meter that needs the update and that
    /// a gateway hears and a van passes is on the list.
    fn first_pass(&mut self) {
        for m in 0..self.meters.len() {
            if self.meters[m].result.outcome == Outcome::AlreadyCurrent {
                continue;
            }
            if self.radio.sf(m).is_none() {
                self.finish(m, Cause::NoLoraCoverage);
            } else if self.contacts.of(m).is_empty() {
                self.finish(m, Cause::NeverInRange);
            } else {
                self.list.push(m as u32);
            }
        }
        self.plan_pass(0);
    }

    /// The pass's figures, and the list of the missed.
    fn close_pass(&mut self) -> Vec<u32> {
        let list = std::mem::take(&mut self.list);
        let meters = &self.meters;
        let (missed, tally) = replan::missed(list, |&m| {
            let run = &meters[m as usize];
            match run.result.outcome {
                Outcome::Updated(_) => Status::Done,
                _ => Status::Missed { heard: run.heard },
            }
        });
        self.passes.push(PassFigures {
            pass: u32::from(self.pass) + 1,
            listed: tally.listed as u64,
            planned: self.planned_this_pass,
            updated: tally.done as u64,
            missed: tally.missed as u64,
            silent: tally.silent as u64,
        });
        for &m in &missed {
            self.meters[m as usize].heard = false;
        }
        missed
    }

    /// Pass `pass` is over: the operator plans the next one for the missed.
    fn pass_over(&mut self, pass: u16) {
        self.list = self.close_pass();
        self.plan_pass(pass + 1);
    }

    /// The campaign is over: the last pass's figures, and why each meter
    /// still waiting did not update.
    fn last_pass(&mut self) {
        for m in self.close_pass() {
            let m = m as usize;
            if self.meters[m].stage != Stage::Idle {
                continue;
            }
            let min = self.settings.plan.min_contact;
            let cause = if self.contacts.of(m).iter().all(|c| c.duration() < min) {
                Cause::ContactTooShort
            } else {
                Cause::CampaignEnded
            };
            self.finish(m, cause);
        }
    }

    /// The actual time of meter `m`'s uplink `k`: nominal plus jitter.
    fn uplink_time(&mut self, m: usize, k: u64) -> Time {
        let nominal = self.fleet.meters[m].nominal_uplink(k);
        let jitter = as_secs_f64(self.settings.jitter);
        let shift = self.meters[m].rng.between(-jitter, jitter);
        let at = (nominal as i64 + (shift * 1e6) as i64).max(0) as Time;
        at.max(self.now)
    }

    fn uplink(&mut self, m: usize) {
        let now = self.now;
        if now > self.meters[m].expires_at {
            self.wake_expired(m);
            return;
        }
        let k = self.meters[m].uplink;
        let attempt = {
            let run = &mut self.meters[m];
            self.radio
                .try_wake(m, k, now, self.settings.wake_len, &mut run.rng)
        };
        match attempt {
            WakeAttempt::Delivered { at, airtime } => {
                self.sent(m, airtime);
                let run = &mut self.meters[m];
                run.stage = Stage::Window;
                let open = at + run.delay;
                run.close = open + run.window;
                self.schedule(open, Event::WindowOpen(m as u32));
            }
            WakeAttempt::DownlinkLost { airtime } => {
                self.sent(m, airtime);
                self.incident(m, Cause::WakeLost);
                // The van crew sees the meter missing once the pass is over.
                let run = &mut self.meters[m];
                let contact = self.contacts.of(m)[run.planned as usize];
                run.cursor = run.planned + 1;
                run.stage = Stage::Idle;
                if self.settings.replan == Replan::PerMeter {
                    self.schedule(contact.end.max(now), Event::Replan(m as u32));
                }
            }
            WakeAttempt::UplinkLost | WakeAttempt::GatewayBusy => {
                let next = self.fleet.meters[m].nominal_uplink(k + 1);
                if next <= self.meters[m].expires_at {
                    self.meters[m].uplink = k + 1;
                    let at = self.uplink_time(m, k + 1);
                    self.schedule(at, Event::Uplink(m as u32));
                } else {
                    let expires = self.meters[m].expires_at;
                    self.schedule(expires.max(now), Event::Expired(m as u32));
                }
            }
        }
    }

    /// Meter `m`'s uplink with its multicast setup queued: delivered, the
    /// meter waits for its group's WAKE; otherwise the setup rides the
    /// next uplink, until a minute before the session, when the meter is
    /// planned by unicast instead.
    fn setup(&mut self, m: usize) {
        let Some(g) = self.meters[m].group else {
            return;
        };
        let deadline = self.multicast.groups[g as usize].segment.session_at - secs(60);
        let now = self.now;
        let k = self.meters[m].uplink;
        let attempt = {
            let run = &mut self.meters[m];
            self.radio.try_wake(m, k, now, SETUP_LEN, &mut run.rng)
        };
        match attempt {
            WakeAttempt::Delivered { airtime, .. } => {
                self.sent(m, airtime);
                self.meters[m].setup_ok = true;
                return;
            }
            WakeAttempt::DownlinkLost { airtime } => self.sent(m, airtime),
            WakeAttempt::UplinkLost | WakeAttempt::GatewayBusy => {}
        }
        if self.fleet.meters[m].nominal_uplink(k + 1) <= deadline {
            self.meters[m].uplink = k + 1;
            let at = self.uplink_time(m, k + 1);
            self.schedule(at.min(deadline), Event::Setup(m as u32));
        } else {
            self.leave_group(m, Cause::WakeNotDelivered);
        }
    }

    /// Meter `m` of standing group `g` was set up at installation: it
    /// listens in the group's slot every day of the campaign (all of
    /// each window, counted here once for the whole campaign).
    fn installed(&mut self, m: usize, g: u32) {
        self.meters[m].setup_ok = true;
        let days = self.settings.horizon.div_ceil(standing::PERIOD);
        let amps = self.settings.lora_rx_a;
        self.energy(m, amps, standing::WINDOW * days);
        debug_assert!(!self.multicast.groups[g as usize].slots.is_empty());
    }

    /// Meter `m` is woken by unicast from now on (its group's WAKE did not
    /// reach it, for `cause`).
    fn leave_group(&mut self, m: usize, cause: Cause) {
        self.incident(m, cause);
        let run = &mut self.meters[m];
        run.group = None;
        run.uplink = 0;
        run.cursor = self.contacts.of(m).partition_point(|c| c.start < self.now) as u32;
        self.plan(m);
    }

    /// Group `g`'s class C window (a one-shot session's, or a standing
    /// group's slot): one multicast frame per gateway its set-up members
    /// are best heard by; each member that hears it opens its WiFi window
    /// for the group's pass, the others are planned by unicast (a
    /// standing group's after its last slot).
    fn group_wake(&mut self, g: usize) {
        let group = self.multicast.groups[g].segment.clone();
        let wake_len = self.settings.wake_len;
        let standing_slot = (self.multicast.groups[g].slots.iter())
            .position(|&slot| slot + standing::FRAME_OFFSET == self.now)
            .map(|i| (i, self.now - standing::FRAME_OFFSET));
        let (last_start, last_chance) = match standing_slot {
            Some((i, slot)) => (
                (slot + standing::WINDOW).saturating_sub(self.radio.rx2_airtime(wake_len)),
                i + 1 == self.multicast.groups[g].slots.len(),
            ),
            None => (group.session_at + CLASS_C_WINDOW - FRAME_OFFSET, true),
        };
        let members: Vec<(usize, usize)> = (group.members.iter().copied())
            .zip(group.contacts.iter().copied())
            .filter(|&(m, _)| self.meters[m].group == Some(g as u32))
            .collect();
        let heard = self.send_group_frame(members.iter().map(|&(m, _)| m), last_start);
        let rx_a = self.settings.lora_rx_a;
        for ((m, contact), heard) in members.into_iter().zip(heard) {
            // A standing member's listening is counted for every day at
            // once ([`Self::installed`]).
            let listened = match heard {
                _ if standing_slot.is_some() => 0,
                Frame::Heard(at) => at - group.session_at,
                Frame::Missed(_) => CLASS_C_WINDOW,
                Frame::NotSetUp => 0,
            };
            if listened > 0 {
                self.energy(m, rx_a, listened);
            }
            match heard.at() {
                Ok(at) => {
                    self.meters[m].group = None;
                    self.woken(m, contact, (group.open, group.close), at);
                }
                Err(cause) if last_chance => self.leave_group(m, cause),
                Err(cause) => self.incident(m, cause),
            }
        }
    }

    /// Meter `m`, of a standing group, is planned again: woken with the
    /// other members its next contact's pass serves, by a frame in the
    /// group's slot before it. `false` when it is not in a standing group
    /// or no slot comes in time.
    fn join_retry(&mut self, m: usize) -> bool {
        let standing = self.multicast.standing.is_some();
        let group = self.multicast.group_of.get(m).copied().flatten();
        let Some(g) = group.filter(|_| standing) else {
            return false;
        };
        let Some(offset) = self.multicast.groups[g as usize].offset else {
            return false;
        };
        let contacts = self.contacts.of(m);
        let (lead, min_contact) = (self.settings.plan.lead, self.settings.plan.min_contact);
        let next = (contacts.iter().enumerate())
            .skip(self.meters[m].cursor as usize)
            .find(|(_, c)| c.duration() >= min_contact && c.start > self.now + lead);
        let Some((index, contact)) = next else {
            return false;
        };
        let joined = self.retries.join(
            g,
            offset,
            (m, index, contact),
            contact.start - lead,
            self.now,
        );
        let Some((id, slot)) = joined else {
            return false;
        };
        if let Some(slot) = slot {
            self.schedule(slot + standing::FRAME_OFFSET, Event::RetryWake(id));
        }
        let run = &mut self.meters[m];
        run.retry = Some(id);
        run.stage = Stage::Idle;
        true
    }

    /// Retry `id`'s slot: its members' WiFi window covers all their
    /// contacts (as long as a WAKE's window can be; the members beyond are
    /// planned again), and those that miss the frame are planned again.
    fn retry_wake(&mut self, id: u32) {
        let retry = self.retries.send(id);
        let contacts = self.contacts;
        let mut members: Vec<(usize, usize)> = (retry.members.into_iter())
            .filter(|&(m, _)| self.meters[m].retry == Some(id))
            .collect();
        members.sort_by_key(|&(m, i)| (contacts.of(m)[i].start, m));
        let (lead, slack) = (self.settings.plan.lead, self.settings.plan.slack);
        let max_window = secs(u64::from(Window::MAX.secs()));
        let open = members
            .first()
            .map_or(0, |&(m, i)| contacts.of(m)[i].start - lead);
        let (fit, beyond): (Vec<_>, Vec<_>) = (members.into_iter())
            .partition(|&(m, i)| contacts.of(m)[i].end + slack - open <= max_window);
        for (m, _) in fit.iter().chain(&beyond) {
            self.meters[*m].retry = None;
        }
        for (m, _) in beyond {
            self.plan(m);
        }
        let close = (fit.iter())
            .map(|&(m, i)| contacts.of(m)[i].end + slack)
            .max()
            .unwrap_or(open);
        let wake_len = self.settings.wake_len;
        let last_start =
            (retry.slot + standing::WINDOW).saturating_sub(self.radio.rx2_airtime(wake_len));
        let heard = self.send_group_frame(fit.iter().map(|&(m, _)| m), last_start);
        for ((m, contact), heard) in fit.into_iter().zip(heard) {
            match heard.at() {
                Ok(at) => {
                    self.totals.woken_again += 1;
                    self.woken(m, contact, (open, close), at);
                }
                Err(cause) => {
                    self.incident(m, cause);
                    self.plan(m);
                }
            }
        }
    }

    /// Sends one multicast frame per gateway the `members` are best heard
    /// by, each at the first start from now its duty cycle allows up to
    /// `last_start`; gives, per member, whether it heard its gateway's
    /// frame.
    fn send_group_frame(
        &mut self,
        members: impl Iterator<Item = usize>,
        last_start: Time,
    ) -> Vec<Frame> {
        let wake_len = self.settings.wake_len;
        let mut frames: BTreeMap<u32, Option<Time>> = BTreeMap::new();
        members
            .map(|m| {
                let gw = (self.radio.best_gateway(m)).filter(|_| self.meters[m].setup_ok);
                let Some(gw) = gw else {
                    return Frame::NotSetUp;
                };
                let heard_at = *frames.entry(gw).or_insert_with(|| {
                    let sent = (self.radio).book_multicast(gw, wake_len, self.now, last_start);
                    if let Some((_, airtime)) = sent {
                        self.totals.downlinks_sent += 1;
                        self.totals.downlink_airtime += airtime;
                    }
                    sent.map(|(start, airtime)| start + airtime)
                });
                let Some(heard_at) = heard_at else {
                    return Frame::Missed(Cause::WakeNotDelivered);
                };
                let run = &mut self.meters[m];
                match self.radio.hears_rx2(m, gw, &mut run.rng) {
                    true => Frame::Heard(heard_at),
                    false => Frame::Missed(Cause::WakeLost),
                }
            })
            .collect()
    }

    /// Meter `m` heard a multicast WAKE at `at` for its contact `contact`,
    /// with the WiFi window `(open, close)`.
    fn woken(&mut self, m: usize, contact: usize, (open, close): (Time, Time), at: Time) {
        let run = &mut self.meters[m];
        run.result.downlinks += 1;
        run.planned = contact as u32;
        run.cursor = contact as u32;
        run.stage = Stage::Window;
        run.close = close;
        self.schedule(open.max(at), Event::WindowOpen(m as u32));
    }

    fn wake_expired(&mut self, m: usize) {
        self.incident(m, Cause::WakeNotDelivered);
        let run = &mut self.meters[m];
        run.cursor = run.planned + 1;
        run.stage = Stage::Idle;
        self.missed(m);
    }

    fn sent(&mut self, m: usize, airtime: Time) {
        self.totals.downlinks_sent += 1;
        self.totals.downlink_airtime += airtime;
        self.meters[m].result.downlinks += 1;
        let amps = self.settings.lora_rx_a;
        self.energy(m, amps, airtime);
    }

    fn window_open(&mut self, m: usize) {
        let now = self.now;
        let run = &mut self.meters[m];
        run.awake_since = now;
        run.connected_this_window = false;
        run.generation += 1;
        let (close, generation) = (run.close, run.generation);
        self.schedule(close, Event::WindowClose(m as u32, generation));
        self.next_contact(m);
    }

    /// Looks for the next van contact inside the open window and schedules
    /// the association; otherwise the meter waits for the window to close.
    fn next_contact(&mut self, m: usize) {
        let now = self.now;
        let close = self.meters[m].close;
        let contacts: &[Contact] = self.contacts.of(m);
        for c in contacts {
            if c.end <= now || c.start >= close {
                continue;
            }
            let entered = c.start.max(now);
            let run = &mut self.meters[m];
            let assoc = from_secs_f64(
                run.rng
                    .log_normal(self.settings.assoc_median, self.settings.assoc_p99),
            );
            let ready = entered + assoc + self.settings.overhead;
            if ready < c.end.min(close) {
                let waited = entered - run.awake_since;
                run.entered = entered;
                run.session_van = c.van;
                run.session_contact_end = c.end;
                let wait_a = self.settings.wait_a;
                self.energy(m, wait_a, waited);
                self.schedule(ready, Event::Connect(m as u32));
                return;
            }
        }
    }

    fn connect(&mut self, m: usize) {
        let now = self.now;
        let van = usize::from(self.meters[m].session_van);
        let run = &self.meters[m];
        let deadline = run.session_contact_end.min(run.close);
        if run.stage != Stage::Window {
            return;
        }
        if self.vans[van].active.len() >= self.settings.max_clients {
            *self.totals.incidents.entry(Cause::ApFull).or_default() += 1;
            let retry = now + secs(5);
            if retry < deadline {
                self.schedule(retry, Event::Connect(m as u32));
            } else {
                self.meters[m].cause = Some(Cause::ApFull);
                let active = self.settings.active_a;
                let entered = self.meters[m].entered;
                self.energy(m, active, now - entered);
                self.meters[m].awake_since = now;
                self.next_contact(m);
            }
            return;
        }
        self.advance(van);
        let run = &mut self.meters[m];
        run.stage = Stage::Session;
        run.connected_this_window = true;
        run.heard = true;
        run.result.sessions += 1;
        run.generation += 1;
        let mut end = deadline;
        run.session_cause = if run.session_contact_end <= run.close {
            Cause::ContactEnded
        } else {
            Cause::WindowClosed
        };
        if self.settings.drops_per_s > 0.0 {
            let drop = now + from_secs_f64(run.rng.exponential(1.0 / self.settings.drops_per_s));
            if drop < end {
                end = drop;
                run.session_cause = Cause::LinkDrop;
            }
        }
        let generation = run.generation;
        self.vans[van].active.push(m as u32);
        self.schedule(end, Event::SessionEnd(m as u32, generation));
        self.reschedule(van);
    }

    fn session_end(&mut self, m: usize) {
        let van = usize::from(self.meters[m].session_van);
        self.advance(van);
        self.vans[van].active.retain(|&x| x as usize != m);
        self.reschedule(van);
        let now = self.now;
        let cause = self.meters[m].session_cause;
        self.incident(m, cause);
        let entered = self.meters[m].entered;
        let active = self.settings.active_a;
        self.energy(m, active, now - entered);
        let run = &mut self.meters[m];
        run.stage = Stage::Window;
        run.awake_since = now;
        run.generation += 1;
        let (close, generation) = (run.close, run.generation);
        if now < close {
            self.schedule(close, Event::WindowClose(m as u32, generation));
            self.next_contact(m);
        } else {
            self.window_close(m);
        }
    }

    fn window_close(&mut self, m: usize) {
        let now = self.now;
        let waited = now.saturating_sub(self.meters[m].awake_since);
        let wait_a = self.settings.wait_a;
        self.energy(m, wait_a, waited);
        if !self.meters[m].connected_this_window {
            self.incident(m, Cause::WindowMissed);
        }
        let contacts = self.contacts.of(m);
        let run = &mut self.meters[m];
        run.stage = Stage::Idle;
        run.cursor = contacts.partition_point(|c| c.start < now) as u32;
        self.missed(m);
    }

    /// Moves the downloads on `van` forward to now.
    fn advance(&mut self, van: usize) {
        let now = self.now;
        let v = &mut self.vans[van];
        let dt = as_secs_f64(now - v.last);
        v.last = now;
        if dt <= 0.0 {
            return;
        }
        for &m in &v.active {
            let run = &mut self.meters[m as usize];
            let moved = (run.rate * dt).min(run.need - run.done);
            run.done += moved;
            run.result.bytes += moved;
        }
    }

    /// Shares the van's capacity anew and schedules the next completion.
    fn reschedule(&mut self, van: usize) {
        let now = self.now;
        let v = &mut self.vans[van];
        v.generation += 1;
        v.last = now;
        if v.active.is_empty() {
            return;
        }
        let caps: Vec<f64> = v
            .active
            .iter()
            .map(|&m| self.fleet.profiles[m as usize].goodput_bps)
            .collect();
        let rates = fair_rates(&caps, self.settings.capacity_bps);
        let mut next = f64::INFINITY;
        for (&m, rate) in v.active.iter().zip(rates) {
            let run = &mut self.meters[m as usize];
            run.rate = rate;
            next = next.min((run.need - run.done).max(0.0) / rate);
        }
        let generation = v.generation;
        let at = now + from_secs_f64(next).max(1);
        self.schedule(at, Event::VanTick(van as u16, generation));
    }

    fn van_tick(&mut self, van: usize) {
        self.advance(van);
        let finished: Vec<u32> = self.vans[van]
            .active
            .iter()
            .copied()
            .filter(|&m| {
                let run = &self.meters[m as usize];
                run.need - run.done <= 1.0
            })
            .collect();
        self.vans[van].active.retain(|m| !finished.contains(m));
        for m in finished {
            self.downloaded(m as usize);
        }
        self.reschedule(van);
    }

    fn downloaded(&mut self, m: usize) {
        let now = self.now;
        let apply = self.settings.apply;
        let run = &mut self.meters[m];
        run.result.bytes += run.need - run.done;
        run.done = run.need;
        run.stage = Stage::Applying;
        run.generation += 1;
        let entered = run.entered;
        let active = self.settings.active_a;
        self.energy(m, active, now - entered + apply);
        self.schedule(now + apply, Event::ApplyDone(m as u32));
    }

    fn apply_done(&mut self, m: usize) {
        let now = self.now;
        let cut = self.settings.power_cut;
        let run = &mut self.meters[m];
        if run.rng.chance(cut) {
            // The meter reboots at the old version; its download is kept.
            self.incident(m, Cause::PowerCut);
            let contacts = self.contacts.of(m);
            let run = &mut self.meters[m];
            run.stage = Stage::Idle;
            run.cursor = contacts.partition_point(|c| c.start < now) as u32;
            self.missed(m);
            return;
        }
        run.stage = Stage::Done;
        run.result.outcome = Outcome::Updated(now);
    }
}
