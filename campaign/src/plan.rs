//! `campaign plan`: a WAKE for every meter the van will pass, from the
//! inventory and the route, with the planning crate's contact model and
//! planner (the one rehearsals use).
//!
//! 1. Meters and waypoints are projected to local metres around the
//!    route's centroid ([`Projection`]); each meter's WiFi range is its
//!    install kind's ([`WifiRanges`]).
//! 2. The route becomes timed legs ([`crate::route::legs`]) and
//!    [`Contacts::compute`] finds when the van is within each meter's
//!    range.
//! 3. [`otavan_planning::wake::plan`] picks each meter's pass and the WAKE:
//!    the uplink it rides on, when to queue it, and the delay and window,
//!    rounded as the codec rounds them.
//!
//! With a pace budget ([`Settings::pace`]), step 2 first plans the van's
//! speed on each leg and its stops for the meters not at the target
//! ([`crate::pace`]) and drives the route at that pace from its first
//! waypoint's time; [`Plan::legs`] has the drive for LEGS.csv.
//!
//! # The uplink phase
//!
//! A class A meter hears a WAKE only after its next uplink, so the plan
//! depends on when the meter's uplinks fall:
//!
//! - With `last_uplink`, uplinks are predicted at `last_uplink + k *
//!   interval` (± the scenario's 30 s jitter) and the planner rides the
//!   WAKE on the last uplink before the window, as in a rehearsal.
//! - Without it, the WAKE is delivered at the first uplink after it is
//!   queued: any time in one interval (plus jitter). The plan is then
//!   made for the latest delivery (the planner sees an uplink every
//!   second, so the latest delivery lands right before the window, and a
//!   contact extended by the interval plus jitter, so the window opened by
//!   the earliest delivery still lasts past the real contact). The window
//!   is about one interval longer: more energy, and possible only while
//!   the interval plus the margins fits the longest window a WAKE carries
//!   (127 min): 30 min and 1 h meters, and 2 h meters for short contacts.
//!   Longer intervals are counted in the summary as
//!   `interval_too_long`, not planned.
//!
//! # Multicast
//!
//! With [`WakeMode::Multicast`] the planned meters are then grouped by
//! street segment and each group served by unicast or multicast, which
//! costs less ([`crate::multicast`]); PLAN.csv keeps the unicast WAKEs
//! and [`Plan::multicast`] has the groups.

use std::time::Duration;

use otavan_planning::contacts::{Contact, Contacts};
use otavan_planning::defaults;
use otavan_planning::geometry::Point;
use otavan_planning::meters::{MeterSpec, Meters};
use otavan_planning::time::{Time, as_secs_f64, from_secs_f64, secs};
use otavan_planning::wake::{self, PlanConfig, Policy, Uplinks, WakePlan};
use otavan_protocol::Version;
use otavan_protocol::lora::{DEFAULT_FPORT, Delay, VersionTag, Wake, Window};
use otavan_protocol::region::Region;
use otavan_protocol::region::airtime::{lorawan_downlink_airtime, lorawan_uplink_airtime};
use time::OffsetDateTime;

use crate::capacity::{self, HourlyLoad};
use crate::clock::Clock;
use crate::deveui::DevEui;
use crate::geo::Projection;
use crate::groups_csv::GroupRow;
use crate::inventory::Meter;
use crate::legs_csv::LegRow;
use crate::limit::{self, LimitSplit};
use crate::multicast::{self, MulticastPlan};
use crate::pace::{self, PaceSettings};
use otavan_protocol::lora::multicast::Key;

use crate::plan_csv::PlanRow;
use crate::route::{self, Waypoint};
use crate::standing::{self, Registry, StandingPlan};
use crate::table::Problems;
/// The planner's margins and WiFi ranges, as the settings name them.
pub use otavan_planning::defaults::{Margins, WifiRanges};

/// What a plan is made with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// No WAKE is queued before this; route times count from it.
    pub start: OffsetDateTime,
    /// The van's speed between waypoints without times, km/h.
    pub speed_kmh: f64,
    /// The campaign number the WAKEs carry.
    pub campaign: u16,
    /// The van network slot the meters join.
    pub network: u8,
    /// The target version: WAKEs carry its tag, and meters the inventory
    /// says are at it are not woken.
    pub target: Option<Version>,
    /// The application port of the WAKEs.
    pub fport: u8,
    /// WiFi range per install kind.
    pub wifi_ranges: WifiRanges,
    /// The region, for the gateway capacity.
    pub region: Region,
    /// Timing margins and the shortest useful contact.
    pub margins: Margins,
    /// The update's size, bytes: with it the summary has the route's
    /// physical limit ([`crate::limit`]).
    pub update_bytes: Option<u64>,
    /// Plan the van's speed on each leg and its stops within this budget
    /// ([`crate::pace`]); `None`: one speed.
    pub pace: Option<PaceSettings>,
    /// How meters are woken.
    pub wake: WakeMode,
    /// With [`WakeMode::Standing`], the groups earlier plans set up.
    pub standing: Registry,
}

/// How `campaign plan` wakes meters (`--wake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WakeMode {
    /// Each meter its own WAKE (the default).
    #[default]
    Unicast,
    /// Per street segment, unicast or multicast, whichever costs less.
    Multicast,
    /// Standing multicast groups, woken in their daily slot
    /// ([`crate::standing`]); the known ones in [`Settings::standing`].
    Standing,
}

impl Settings {
    /// The defaults for a campaign starting at `start`: the planner's
    /// speed (20 km/h), campaign 1, network 0, no target, FPort 200, EU868.
    pub fn new(start: OffsetDateTime) -> Settings {
        Settings {
            start,
            speed_kmh: defaults::SPEED_KMH,
            campaign: 1,
            network: 0,
            target: None,
            fport: DEFAULT_FPORT,
            wifi_ranges: WifiRanges::default(),
            region: Region::Eu868,
            margins: Margins::default(),
            update_bytes: None,
            pace: None,
            wake: WakeMode::Unicast,
            standing: Registry::default(),
        }
    }
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The route cannot be driven as given (ROUTE.csv lines).
    #[error("ROUTE.csv: {0}")]
    Route(Problems),
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
}

/// What happened to each meter of the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A WAKE is planned.
    Planned,
    /// The inventory says it already runs the target.
    AlreadyAtTarget,
    /// The van never comes within its WiFi range.
    NeverInRange,
    /// The van passes, but never for `min_contact_s`.
    ContactTooShort,
    /// Its uplink phase is unknown and its interval too long for one
    /// WAKE's window to cover it (give `last_uplink`).
    IntervalTooLong,
    /// No uplink is left between the start and its contacts to carry a
    /// WAKE (start earlier, or drive later).
    TooSoon,
}

/// The plan's numbers, for the summary on stdout.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Meters in the inventory.
    pub meters: usize,
    /// Meters with a WAKE.
    pub planned: usize,
    /// Of those, planned with a known uplink phase (`last_uplink`).
    pub phase_known: usize,
    /// Meters the inventory says are at the target.
    pub already_at_target: usize,
    /// Meters never within range.
    pub never_in_range: usize,
    /// Meters whose contacts are all too short.
    pub contact_too_short: usize,
    /// Meters of unknown phase whose interval is too long.
    pub interval_too_long: usize,
    /// Meters whose contacts come too soon after the start.
    pub too_soon: usize,
    /// The busiest hour of WAKE deliveries (Unix seconds) and its count.
    pub peak_hour: Option<(i64, u32)>,
    /// One gateway's RX2 WAKEs per hour.
    pub gateway_capacity_per_hour: u32,
    /// Gateways the peak hour needs.
    pub gateways_needed: u32,
    /// The WAKE's application payload, bytes.
    pub wake_bytes: usize,
    /// The region the capacity is for.
    pub region: Region,
    /// The longest window planned, seconds.
    pub longest_window_s: u32,
    /// The physical limit and the loss split (with `update_bytes`).
    pub limit: Option<LimitSplit>,
    /// What the pace plan does (with a pace budget).
    pub pace: Option<PaceSummary>,
}

/// A paced drive's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceSummary {
    /// Route legs.
    pub legs: usize,
    /// Legs slower than `--speed-kmh`.
    pub slowed: usize,
    /// Stops.
    pub stops: usize,
    /// Seconds the drive takes beyond the route at `--speed-kmh`.
    pub extra_s: f64,
    /// The budget, seconds.
    pub budget_s: f64,
}

/// A finished plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One row per planned meter, by enqueue time.
    pub rows: Vec<PlanRow>,
    /// Each inventory meter's outcome, in inventory order.
    pub outcomes: Vec<(DevEui, Outcome)>,
    /// The paced drive, leg by leg (with a pace budget; empty without).
    pub legs: Vec<LegRow>,
    /// The numbers.
    pub summary: Summary,
    /// The groups, with [`WakeMode::Multicast`].
    pub multicast: Option<MulticastPlan>,
    /// The standing groups, with [`WakeMode::Standing`].
    pub standing: Option<StandingPlan>,
}

/// Plans the campaign; multicast group keys come from the operating
/// system's random generator.
///
/// # Errors
///
/// [`PlanError::Route`] when the route cannot be driven,
/// [`PlanError::Setting`] for a bad speed or no random generator.
pub fn plan(
    meters: &[Meter],
    waypoints: &[Waypoint],
    settings: &Settings,
) -> Result<Plan, PlanError> {
    let mut failed = None;
    let mut key = || {
        let mut key = [0; 16];
        if let Err(e) = getrandom::fill(&mut key) {
            failed = Some(e);
        }
        key
    };
    let plan = plan_with_keys(meters, waypoints, settings, &mut key)?;
    match failed {
        Some(e) => Err(PlanError::Setting(format!("no random group keys: {e}"))),
        None => Ok(plan),
    }
}

/// Plans the campaign, drawing each multicast group's key from `key`.
///
/// # Errors
///
/// As [`plan`].
pub fn plan_with_keys(
    meters: &[Meter],
    waypoints: &[Waypoint],
    settings: &Settings,
    key: &mut dyn FnMut() -> Key,
) -> Result<Plan, PlanError> {
    if !(settings.speed_kmh.is_finite() && settings.speed_kmh > 0.0) {
        return Err(PlanError::Setting(format!(
            "--speed-kmh must be positive, not {}",
            settings.speed_kmh
        )));
    }
    let clock = Clock::new(settings.start);
    let projection = Projection::around(waypoints.iter().map(|w| (w.lat, w.lon)));
    let mut legs = route::legs(waypoints, &projection, settings.speed_kmh, &clock)
        .map_err(PlanError::Route)?;
    let fleet = fleet(meters, &projection, &settings.wifi_ranges);
    let mut paced = None;
    if let Some(pace_settings) = &settings.pace {
        pace_settings
            .check(settings.speed_kmh)
            .map_err(PlanError::Setting)?;
        if let Some(w) = waypoints.iter().skip(1).find(|w| w.time.is_some()) {
            return Err(PlanError::Setting(format!(
                "--pace-budget-s plans the van's times: ROUTE.csv may give a time only on its first waypoint (line {} has one)",
                w.line
            )));
        }
        let route: Vec<Point> = waypoints
            .iter()
            .map(|w| projection.point(w.lat, w.lon))
            .collect();
        let wanted: Vec<bool> = meters.iter().map(|m| !at_target(m, settings)).collect();
        let pace = pace::plan(
            &route,
            &fleet,
            &wanted,
            pace_settings,
            settings.speed_kmh,
            from_secs_f64(settings.margins.min_contact_s),
            settings.update_bytes,
        );
        let (timed, starts) = pace::drive(&pace, legs.first().map_or(0, |l| l.t0));
        legs = timed;
        paced = Some((pace, starts));
    }
    let contacts = Contacts::compute(&fleet, &legs);
    let planner = Planner::new(settings);
    let mut rows = Vec::new();
    let mut outcomes = Vec::with_capacity(meters.len());
    let mut load = HourlyLoad::default();
    let mut deliveries = vec![None; meters.len()];
    let mut longest_window_s = 0;
    for (m, meter) in meters.iter().enumerate() {
        let outcome = if at_target(meter, settings) {
            Outcome::AlreadyAtTarget
        } else {
            match planner.meter(meter, &clock, contacts.of(m)) {
                Ok(planned) => {
                    let delivery = (
                        unix(clock.at(planned.delivery.0)),
                        unix(clock.at(planned.delivery.1)),
                    );
                    load.add(delivery.0, delivery.1);
                    deliveries[m] = Some(delivery);
                    longest_window_s = longest_window_s.max(planned.wake.window.secs());
                    rows.push(PlanRow {
                        dev_eui: meter.dev_eui,
                        enqueue_at: whole_second_up(clock.at(planned.enqueue_at)),
                        wake: planned.wake,
                        expected_contact_at: whole_second(clock.at(planned.contact.start)),
                        expected_contact_s: as_secs_f64(planned.contact.duration()),
                        fport: settings.fport,
                    });
                    Outcome::Planned
                }
                Err(outcome) => outcome,
            }
        };
        outcomes.push((meter.dev_eui, outcome));
    }
    let inputs = multicast::Inputs {
        meters: meters
            .iter()
            .zip(&deliveries)
            .map(|(m, d)| multicast::Candidate {
                dev_eui: m.dev_eui,
                root_key: m.root_key,
                interval_s: m.uplink_interval_s,
                delivery: *d,
            })
            .collect(),
        contacts: &contacts,
        clock: &clock,
        load: &load,
        wake_bytes: planner.wake_bytes,
        min_contact: planner.min_contact,
        lead: planner.config.lead,
        slack: planner.config.slack,
        uplink_spread: planner.jitter + planner.rx_delay,
        region: settings.region,
        wake: Wake {
            campaign: settings.campaign,
            delay: Delay::ZERO,
            window: Window::ZERO,
            network: settings.network,
            version_tag: planner.config.version_tag,
        },
    };
    let mut regrouped = None;
    let multicast = (settings.wake == WakeMode::Multicast).then(|| {
        let (groups, served) = multicast::plan(&inputs, key);
        regrouped = Some(served);
        groups
    });
    let standing = (settings.wake == WakeMode::Standing).then(|| {
        let (groups, served) = standing::plan(&inputs, &settings.standing, key);
        regrouped = Some(served);
        groups
    });
    drop(inputs);
    if let Some(served) = regrouped {
        // The served meters' WAKEs leave the unicast plan and its load;
        // their setups (delivered within an interval of their queueing)
        // and the group WAKEs come in.
        load = HourlyLoad::default();
        for (m, delivery) in deliveries.iter().enumerate() {
            if let (Some((from, to)), false) = (delivery, served[m]) {
                load.add(*from, *to);
            }
        }
        let intervals: std::collections::HashMap<DevEui, u64> = meters
            .iter()
            .map(|m| (m.dev_eui, m.uplink_interval_s))
            .collect();
        let group_rows = multicast
            .iter()
            .flat_map(|g| &g.rows)
            .chain(standing.iter().flat_map(|g| &g.rows));
        for row in group_rows {
            match row {
                GroupRow::Setup {
                    dev_eui,
                    enqueue_at,
                    ..
                }
                | GroupRow::Standing {
                    dev_eui,
                    enqueue_at,
                    ..
                } => {
                    let from = unix(*enqueue_at);
                    let interval = intervals.get(dev_eui).copied().unwrap_or(0) as f64;
                    load.add(from, from + interval);
                }
                GroupRow::Wake { transmit_at, .. } | GroupRow::SlotWake { transmit_at, .. } => {
                    load.add(unix(*transmit_at), unix(*transmit_at));
                }
                GroupRow::Member { .. } => {}
            }
        }
        let served: std::collections::HashSet<DevEui> = meters
            .iter()
            .zip(&served)
            .filter(|(_, s)| **s)
            .map(|(m, _)| m.dev_eui)
            .collect();
        rows.retain(|r| !served.contains(&r.dev_eui));
    }
    rows.sort_by_key(|r| (r.enqueue_at, r.dev_eui));
    let count = |o: Outcome| outcomes.iter().filter(|(_, x)| *x == o).count();
    let wake_bytes = planner.wake_bytes;
    let capacity = capacity::gateway_downlinks_per_hour(settings.region, wake_bytes);
    let peak_hour = load.peak();
    let summary = Summary {
        meters: meters.len(),
        planned: count(Outcome::Planned),
        phase_known: meters
            .iter()
            .zip(&outcomes)
            .filter(|(m, (_, o))| *o == Outcome::Planned && m.last_uplink.is_some())
            .count(),
        already_at_target: count(Outcome::AlreadyAtTarget),
        never_in_range: count(Outcome::NeverInRange),
        contact_too_short: count(Outcome::ContactTooShort),
        interval_too_long: count(Outcome::IntervalTooLong),
        too_soon: count(Outcome::TooSoon),
        peak_hour,
        gateway_capacity_per_hour: capacity,
        gateways_needed: capacity::gateways_needed(peak_hour.map_or(0, |p| p.1), capacity),
        wake_bytes,
        region: settings.region,
        longest_window_s,
        limit: settings.update_bytes.map(|bytes| {
            let kinds: Vec<Outcome> = outcomes.iter().map(|(_, o)| *o).collect();
            limit::split(&contacts, &kinds, bytes)
        }),
        pace: paced.as_ref().map(|(pace, _)| {
            let speed = settings.speed_kmh / 3.6;
            PaceSummary {
                legs: pace.legs.len(),
                slowed: pace.legs.iter().filter(|l| l.speed < speed).count(),
                stops: pace.stops(),
                extra_s: pace.extra_s(speed),
                budget_s: settings.pace.map_or(0.0, |p| p.budget_s),
            }
        }),
    };
    let legs = paced.map_or_else(Vec::new, |(pace, starts)| {
        pace.legs
            .iter()
            .zip(starts)
            .map(|(leg, start)| LegRow {
                from: projection.lat_lon(leg.from),
                to: projection.lat_lon(leg.to),
                speed_kmh: leg.speed * 3.6,
                stop: leg.stop.map(|s| (projection.lat_lon(s.at), s.seconds)),
                starts_at: clock.at(start),
            })
            .collect()
    });
    Ok(Plan {
        rows,
        outcomes,
        legs,
        summary,
        multicast,
        standing,
    })
}

/// Whether the inventory says `meter` runs the campaign's target.
fn at_target(meter: &Meter, settings: &Settings) -> bool {
    matches!((&meter.version, &settings.target), (Some(v), Some(t)) if v == t)
}

/// The inventory as the planner sees it (the phase is handled per meter:
/// see the module documentation).
fn fleet(meters: &[Meter], projection: &Projection, ranges: &WifiRanges) -> Meters {
    let specs = meters
        .iter()
        .map(|m| MeterSpec {
            pos: projection.point(m.lat, m.lon),
            wifi_range_m: ranges.get(&m.install).unwrap_or(0.0) as f32,
            interval: secs(m.uplink_interval_s),
            phase: 0,
        })
        .collect();
    Meters::from_meters(specs)
}

/// One meter's WAKE.
struct Planned {
    wake: Wake,
    enqueue_at: Time,
    /// The earliest and latest time the network server sends it.
    delivery: (Time, Time),
    contact: Contact,
}

/// The planner's settings, shared by every meter.
struct Planner {
    config: PlanConfig,
    rx_delay: Time,
    /// The WAKE's length, bytes.
    wake_bytes: usize,
    jitter: Time,
    min_contact: Time,
}

impl Planner {
    fn new(settings: &Settings) -> Planner {
        let config = PlanConfig {
            campaign: settings.campaign,
            network: settings.network,
            version_tag: settings.target.as_ref().map(VersionTag::of),
            ..PlanConfig::new(Policy::NextPass, &settings.margins)
        };
        // The slowest case: a status-sized uplink at SF12, RX1 one second
        // after it, the WAKE at SF12.
        let wake_bytes = Wake {
            campaign: 0,
            delay: Delay::ZERO,
            window: Window::ZERO,
            network: 0,
            version_tag: config.version_tag,
        }
        .buffer_len();
        let airtime = |d: Duration| d.as_micros() as Time;
        let rx_delay = airtime(lorawan_uplink_airtime(10, 12, 125_000))
            + secs(1)
            + airtime(lorawan_downlink_airtime(wake_bytes, 12, 125_000));
        Planner {
            config,
            rx_delay,
            wake_bytes,
            jitter: config.jitter,
            min_contact: config.min_contact,
        }
    }

    /// Plans one meter, or says why not.
    fn meter(
        &self,
        meter: &Meter,
        clock: &Clock,
        contacts: &[Contact],
    ) -> Result<Planned, Outcome> {
        if contacts.is_empty() {
            return Err(Outcome::NeverInRange);
        }
        if contacts.iter().all(|c| c.duration() < self.min_contact) {
            return Err(Outcome::ContactTooShort);
        }
        let interval = secs(meter.uplink_interval_s);
        match meter.last_uplink {
            Some(last) => self.known_phase(interval, clock.offset_of(last), contacts),
            None => self.unknown_phase(interval, contacts),
        }
    }

    /// Rides on the last predicted uplink before the window.
    fn known_phase(
        &self,
        interval: Time,
        last_uplink: i128,
        contacts: &[Contact],
    ) -> Result<Planned, Outcome> {
        let phase = last_uplink.rem_euclid(i128::from(interval)) as Time;
        let uplinks = Uplinks {
            phase,
            interval,
            rx_delay: self.rx_delay,
        };
        let p = wake::plan(contacts, 0, 0, &uplinks, &self.config).ok_or(Outcome::TooSoon)?;
        let at = uplinks.nominal(p.uplink);
        Ok(Planned {
            wake: p.wake,
            enqueue_at: p.enqueue_at,
            delivery: (at, at),
            contact: contacts[p.contact],
        })
    }

    /// Plans for delivery anywhere in one interval (plus jitter) after the
    /// WAKE is queued: see the module documentation.
    fn unknown_phase(&self, interval: Time, contacts: &[Contact]) -> Result<Planned, Outcome> {
        let spread = interval + self.jitter;
        let margins = self.config.lead + self.config.slack + self.min_contact;
        if spread + margins > secs(u64::from(Window::MAX.secs())) {
            return Err(Outcome::IntervalTooLong);
        }
        // Only contacts long enough in reality; extended so the window
        // opened by the earliest delivery still covers them.
        let usable: Vec<(usize, Contact)> = contacts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.duration() >= self.min_contact)
            .map(|(i, c)| {
                (
                    i,
                    Contact {
                        end: c.end + spread,
                        ..*c
                    },
                )
            })
            .collect();
        let extended: Vec<Contact> = usable.iter().map(|(_, c)| *c).collect();
        // The latest delivery rides on an "uplink" of a one-second grid.
        let latest = Uplinks {
            phase: 0,
            interval: secs(1),
            rx_delay: self.rx_delay,
        };
        let mut from = 0;
        let mut too_long = false;
        while let Some(p) = wake::plan(&extended, from, spread, &latest, &self.config) {
            let original = contacts[usable[p.contact].0];
            if self.covers(&p, spread, &original) {
                let last = latest.nominal(p.uplink);
                let enqueue_at = last - spread;
                return Ok(Planned {
                    wake: p.wake,
                    enqueue_at,
                    delivery: (enqueue_at, last + self.jitter),
                    contact: original,
                });
            }
            too_long = true;
            from = p.contact + 1;
        }
        Err(if too_long {
            Outcome::IntervalTooLong
        } else {
            Outcome::TooSoon
        })
    }

    /// Whether the window of `p`, opened by the earliest delivery
    /// (`spread` before the latest), still lasts to the end of `contact`.
    fn covers(&self, p: &WakePlan, spread: Time, contact: &Contact) -> bool {
        let window = secs(u64::from(p.wake.window.secs()));
        p.opens_at - spread + window >= contact.end
    }
}

fn unix(t: OffsetDateTime) -> f64 {
    t.unix_timestamp() as f64 + f64::from(t.nanosecond()) / 1e9
}

/// `t` rounded up to a whole second.
fn whole_second_up(t: OffsetDateTime) -> OffsetDateTime {
    let down = t.replace_nanosecond(0).unwrap_or(t);
    if down == t {
        t
    } else {
        down + time::Duration::SECOND
    }
}

/// `t` rounded to the nearest whole second.
fn whole_second(t: OffsetDateTime) -> OffsetDateTime {
    whole_second_up(t - time::Duration::milliseconds(500))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use crate::multicast::Delivery;
    use otavan_planning::geometry::contact_time_closed_form;

    /// Metres per degree of latitude (the projection's).
    const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

    fn start() -> OffsetDateTime {
        clock::parse("2025-06-02T06:00:00Z").unwrap()
    }

    /// An east-west street along latitude 0 from longitude 0 to 0.02
    /// (2226 m), driven from 09:00 at 18 km/h (5 m/s).
    fn street() -> Vec<Waypoint> {
        vec![
            Waypoint {
                line: 2,
                lat: 0.0,
                lon: 0.0,
                time: Some(clock::parse("2025-06-02T09:00:00Z").unwrap()),
            },
            Waypoint {
                line: 3,
                lat: 0.0,
                lon: 0.02,
                time: None,
            },
        ]
    }

    fn settings() -> Settings {
        Settings {
            speed_kmh: 18.0,
            ..Settings::new(start())
        }
    }

    fn meter(n: u8, x_m: f64, y_m: f64, install: &str, interval_s: u64) -> Meter {
        Meter {
            line: u64::from(n) + 1,
            dev_eui: DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, n]),
            lat: y_m / M_PER_DEG,
            lon: x_m / M_PER_DEG,
            install: install.into(),
            uplink_interval_s: interval_s,
            version: None,
            last_uplink: None,
            root_key: None,
        }
    }

    #[test]
    fn a_known_phase_rides_on_the_last_uplink_before_the_contact() {
        // Outdoor (80 m) meter 30 m off the street, 1000 m along it: the
        // van is within range from about 9:03:05 for 29.7 s.
        let mut m = meter(1, 1000.0, 30.0, "outdoor", 3600);
        m.last_uplink = Some(clock::parse("2025-06-01T22:20:00Z").unwrap());
        let plan = plan(&[m], &street(), &settings()).unwrap();
        assert_eq!(plan.outcomes[0].1, Outcome::Planned);
        let row = &plan.rows[0];
        let expected = contact_time_closed_form(80.0, 30.0, 5.0);
        assert!(
            (row.expected_contact_s - expected).abs() < 0.05,
            "{}",
            row.expected_contact_s
        );
        // Uplinks at hh:20; the window opens 60 s before the contact, so
        // the WAKE rides the 08:20 uplink and is queued after 07:20's.
        let contact = clock::parse("2025-06-02T09:00:00Z").unwrap()
            + time::Duration::seconds_f64((1000.0 - (80f64.powi(2) - 900.0).sqrt()) / 5.0);
        assert!((row.expected_contact_at - contact).abs() <= time::Duration::SECOND);
        // 07:20 + 30 s jitter + the SF12 receive delay + 1 s, to the second.
        assert_eq!(
            row.enqueue_at,
            clock::parse("2025-06-02T07:20:35Z").unwrap()
        );
        let received = clock::parse("2025-06-02T08:20:00Z").unwrap()
            + time::Duration::microseconds(Planner::new(&settings()).rx_delay as i64);
        let opens = received + time::Duration::seconds(i64::from(row.wake.delay.secs()));
        assert!((opens - (contact - time::Duration::seconds(60))).abs() <= time::Duration::SECOND);
        let closes = opens + time::Duration::seconds(i64::from(row.wake.window.secs()));
        assert!(closes >= contact + time::Duration::seconds_f64(expected + 115.0));
        assert_eq!(row.wake.campaign, 1);
        assert_eq!(row.fport, 200);
        assert_eq!(plan.summary.phase_known, 1);
    }

    #[test]
    fn an_unknown_phase_gets_a_window_covering_one_interval() {
        let m = meter(1, 1000.0, 30.0, "outdoor", 1800);
        let plan = plan(&[m], &street(), &settings()).unwrap();
        let row = &plan.rows[0];
        let contact_end =
            row.expected_contact_at + time::Duration::seconds_f64(row.expected_contact_s);
        // Delivered right when queued: the window must last past the contact.
        let rx = time::Duration::microseconds(Planner::new(&settings()).rx_delay as i64);
        let earliest_open =
            row.enqueue_at + rx + time::Duration::seconds(i64::from(row.wake.delay.secs()));
        let window = time::Duration::seconds(i64::from(row.wake.window.secs()));
        assert!(earliest_open + window >= contact_end);
        // Delivered one interval plus jitter later: open before the van.
        let latest_open = earliest_open + time::Duration::seconds(1830);
        assert!(latest_open <= row.expected_contact_at - time::Duration::seconds(59));
        assert!(row.wake.delay.secs() <= 1, "{}", row.wake.delay.secs());
        assert!(row.wake.window.secs() >= 1800);
        assert_eq!(plan.summary.phase_known, 0);
        assert_eq!(plan.summary.longest_window_s, row.wake.window.secs());
    }

    /// The limit by hand: at 5 m/s an indoor meter (30 m) 10 m off the
    /// street sees the van for 2 * sqrt(30^2 - 10^2) / 5 = 11.31 s, 7.78 s
    /// after association and overhead (1.63 + 1.9 s), 1.01 MB at 130 kB/s
    /// (the access point shared by at most three is not the limit); a
    /// basement meter (10 m) 8 m off for 2.4 s, less than the setup.
    #[test]
    fn the_physical_limit_splits_the_meters_the_plan_cannot_update() {
        let mut at_target = meter(1, 500.0, 10.0, "indoor", 3600);
        at_target.version = Some("2.0.0".parse().unwrap());
        let meters = [
            at_target,
            meter(3, 1000.0, 500.0, "outdoor", 3600), // never in range
            meter(4, 1000.0, 8.0, "basement", 3600),  // 2.4 s
            meter(5, 1000.0, 10.0, "indoor", 86_400), // not planned
            meter(6, 1000.0, 10.0, "indoor", 7200),   // planned
        ];
        let mut s = settings();
        s.target = Some("2.0.0".parse().unwrap());
        assert_eq!(plan(&meters, &street(), &s).unwrap().summary.limit, None);
        let mut split = |bytes| {
            s.update_bytes = Some(bytes);
            plan(&meters, &street(), &s).unwrap().summary.limit.unwrap()
        };
        assert_eq!(
            split(1_000_000),
            LimitSplit {
                physical_limit: 2,
                not_reachable: 1,
                too_short_at_planned_speed: 1,
                missed_by_plan: 1,
            }
        );
        assert_eq!(
            split(1_020_000),
            LimitSplit {
                physical_limit: 0,
                not_reachable: 1,
                too_short_at_planned_speed: 3,
                missed_by_plan: 0,
            }
        );
    }

    #[test]
    fn every_meter_not_planned_is_counted_with_its_reason() {
        let mut at_target = meter(1, 500.0, 10.0, "indoor", 3600);
        at_target.version = Some("2.0.0".parse().unwrap());
        let mut daily_known = meter(2, 1500.0, 10.0, "indoor", 86_400);
        // Daily at 07:00: the 07:00 uplink after the start carries it.
        daily_known.last_uplink = Some(clock::parse("2025-06-01T07:00:00Z").unwrap());
        let meters = [
            at_target,
            meter(3, 1000.0, 500.0, "outdoor", 3600), // never in range
            meter(4, 1000.0, 8.0, "basement", 3600),  // 10 m range: 2.4 s
            meter(5, 1000.0, 10.0, "indoor", 86_400), // daily, phase unknown
            meter(6, 1000.0, 10.0, "indoor", 7200),   // 2 h still fits
            daily_known,
        ];
        let mut s = settings();
        s.target = Some("2.0.0".parse().unwrap());
        let plan = plan(&meters, &street(), &s).unwrap();
        let outcomes: Vec<Outcome> = plan.outcomes.iter().map(|(_, o)| *o).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::AlreadyAtTarget,
                Outcome::NeverInRange,
                Outcome::ContactTooShort,
                Outcome::IntervalTooLong,
                Outcome::Planned,
                Outcome::Planned,
            ]
        );
        let summary = &plan.summary;
        assert_eq!(
            (summary.meters, summary.planned, summary.phase_known),
            (6, 2, 1)
        );
        assert_eq!(
            (
                summary.already_at_target,
                summary.never_in_range,
                summary.contact_too_short,
                summary.interval_too_long,
                summary.too_soon
            ),
            (1, 1, 1, 1, 0)
        );
        // Tagged WAKEs: 11 bytes, and the plan's rows carry the tag.
        assert_eq!(summary.wake_bytes, 11);
        assert!(plan.rows.iter().all(|r| r.wake.version_tag.is_some()));
        assert!(
            plan.rows
                .windows(2)
                .all(|w| w[0].enqueue_at <= w[1].enqueue_at)
        );
    }

    #[test]
    fn a_van_leaving_at_the_start_is_too_soon_for_meters_near_it() {
        let mut route = street();
        route[0].time = None; // leaves at --start
        let plan = plan(
            &[meter(1, 100.0, 10.0, "indoor", 3600)],
            &route,
            &settings(),
        )
        .unwrap();
        assert_eq!(plan.outcomes[0].1, Outcome::TooSoon);
        assert_eq!(plan.summary.too_soon, 1);
        assert!(plan.rows.is_empty() && plan.summary.peak_hour.is_none());
    }

    #[test]
    fn the_peak_hour_is_checked_against_gateway_capacity() {
        // 400 half-hourly meters along the street, phases known, all woken
        // for the same drive: their WAKEs go out within one hour.
        let meters: Vec<Meter> = (0..400)
            .map(|i| {
                let mut m = meter(0, 200.0 + 4.0 * f64::from(i), 20.0, "outdoor", 1800);
                m.dev_eui = DevEui([0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8]);
                m.last_uplink = Some(start() + time::Duration::seconds(i64::from(i) * 4));
                m
            })
            .collect();
        let plan = plan(&meters, &street(), &settings()).unwrap();
        let s = &plan.summary;
        assert_eq!(s.planned, 400);
        let (_, peak) = s.peak_hour.unwrap();
        assert!(peak > s.gateway_capacity_per_hour, "{s:?}");
        assert_eq!(
            s.gateways_needed,
            peak.div_ceil(s.gateway_capacity_per_hour)
        );
        assert_eq!(
            s.gateway_capacity_per_hour,
            capacity::gateway_downlinks_per_hour(Region::Eu868, 7)
        );
    }

    /// 400 half-hourly meters along the street, as in the peak-hour test:
    /// their unicast WAKEs overflow the gateway's hour, so the segments of
    /// the meters with a root key go multicast.
    #[test]
    fn multicast_serves_the_segments_whose_unicast_wakes_overflow_the_hour() {
        use otavan_protocol::lora::multicast::{McRequest, McRootKey};
        let gen_app_key = |i: u32| [i as u8; 16];
        let meters: Vec<Meter> = (0..400u32)
            .map(|i| {
                let mut m = meter(0, 200.0 + 4.0 * f64::from(i), 20.0, "outdoor", 1800);
                m.dev_eui = DevEui([0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8]);
                m.last_uplink = Some(start() + time::Duration::seconds(i64::from(i) * 4));
                // Every tenth meter has no key: unicast.
                m.root_key = (i % 10 != 0).then(|| McRootKey::from_gen_app_key(&gen_app_key(i)));
                m
            })
            .collect();
        let unicast = plan(&meters, &street(), &settings()).unwrap();
        assert!(unicast.multicast.is_none());
        let mut s = settings();
        s.wake = WakeMode::Multicast;
        let mut n = 0u8;
        let mut key = || {
            n += 1;
            [n; 16]
        };
        let p = plan_with_keys(&meters, &street(), &s, &mut key).unwrap();
        let mc = p.multicast.as_ref().unwrap();
        assert_eq!(mc.without_root_key, 40);
        let multicast: Vec<_> = mc
            .groups
            .iter()
            .filter(|g| g.delivery == Delivery::Multicast)
            .collect();
        assert!(!multicast.is_empty(), "{:?}", mc.groups);
        for g in &multicast {
            assert!(g.costs.unicast_peak_hour > g.costs.hour_budget, "{g:?}");
            assert!(g.costs.extra_j() <= g.costs.max_extra_j);
        }
        let served: usize = multicast.iter().map(|g| g.members.len()).sum();
        // Served meters leave PLAN.csv; every meter is still planned.
        assert_eq!(p.rows.len() + served, unicast.rows.len());
        assert_eq!(p.summary.planned, unicast.summary.planned);
        // The new peak hour is lighter.
        assert!(p.summary.peak_hour.unwrap().1 < unicast.summary.peak_hour.unwrap().1);
        // Each setup carries its group's key for its meter, and every
        // group's WAKE comes after its setups' deadlines, in the window.
        for g in &multicast {
            let setups: Vec<&GroupRow> = mc
                .rows
                .iter()
                .filter(|r| r.mc_addr() == g.addr && matches!(r, GroupRow::Setup { .. }))
                .collect();
            assert_eq!(setups.len(), g.members.len());
            for row in &setups {
                let GroupRow::Setup {
                    dev_eui,
                    frame,
                    send_by,
                    fport,
                    ..
                } = row
                else {
                    unreachable!()
                };
                assert_eq!(*fport, 201);
                assert!(*send_by < g.session_at);
                let i = meters.iter().position(|m| m.dev_eui == *dev_eui).unwrap();
                let root = meters[i].root_key.unwrap();
                let requests = McRequest::decode_all(frame).unwrap();
                let McRequest::GroupSetup(setup) = &requests[0] else {
                    panic!("{requests:?}")
                };
                assert_eq!(setup.mc_addr, g.addr);
                assert_eq!(root.decrypt_group_key(&setup.mc_key_encrypted), g.key);
                assert!(
                    matches!(&requests[1], McRequest::ClassCSession(c) if c.timeout_exponent == multicast::CLASS_C_EXPONENT)
                );
            }
            let wake = mc
                .rows
                .iter()
                .find(|r| r.mc_addr() == g.addr && matches!(r, GroupRow::Wake { .. }))
                .unwrap();
            let GroupRow::Wake {
                transmit_at,
                wake,
                enqueue_at,
                ..
            } = wake
            else {
                unreachable!()
            };
            assert!(setups.iter().all(|r| r.send_by() <= Some(*enqueue_at)));
            assert_eq!(*transmit_at, g.session_at + time::Duration::seconds(5));
            assert!(*transmit_at < g.session_at + time::Duration::seconds(64));
            // The window covers every member's contact.
            let opens = *transmit_at + time::Duration::seconds(3 + i64::from(wake.delay.secs()));
            let closes = opens + time::Duration::seconds(i64::from(wake.window.secs()));
            for member in &g.members {
                let row = unicast.rows.iter().find(|r| r.dev_eui == *member).unwrap();
                assert!(
                    opens <= row.expected_contact_at,
                    "{opens} {}",
                    row.expected_contact_at
                );
                let end =
                    row.expected_contact_at + time::Duration::seconds_f64(row.expected_contact_s);
                assert!(closes >= end);
            }
        }
    }

    #[test]
    fn a_bad_route_or_speed_is_an_error() {
        let mut route = street();
        route[1].time = Some(clock::parse("2025-06-02T08:00:00Z").unwrap());
        let error = plan(&[meter(1, 10.0, 10.0, "indoor", 3600)], &route, &settings()).unwrap_err();
        assert!(
            error.to_string().contains("line 3: time is earlier"),
            "{error}"
        );
        let mut s = settings();
        s.speed_kmh = 0.0;
        assert!(plan(&[], &street(), &s).is_err());
    }
}
