//! The van's pace along its route: a speed for each route leg, and stops
//! where meters need more contact than driving past gives, within a time
//! budget per pass.
//!
//! The route is cut into legs of at most [`MAX_LEG_M`]. Driven at the
//! cruising speed, a meter's contact is the part of the route within its
//! range (its chord, over the consecutive legs it spans) divided by the
//! speed. A meter needs a contact of at least its [`need_s`] each pass
//! (the planner's minimum contact, or the setup plus its share of the
//! transfer when that is longer). [`Pace::plan`] spends the budget
//! greedily where it buys the most newly served meters per second:
//!
//! - slowing a leg to `v` costs `length * (1/v - 1/v_now)` and adds
//!   `chord * (1/v - 1/v_now)` to the contact of every meter on it;
//! - a stop of `s` seconds at a point of a leg (points every
//!   [`STOP_STEP_M`]; one stop a leg, lengthened later if worth it) costs
//!   `s` and adds `s` to every meter in range of the point.
//!
//! Each step takes the option with the most meters per second whose cost
//! fits in what is left of the budget, so the plan never spends more than
//! the budget, never drives slower than the minimum speed and never stops
//! longer than the longest stop. Pure and deterministic: same inputs, same
//! plan.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::contacts::Grid;
use crate::geometry::{Point, in_range};
use crate::leg::{Leg, MAX_LEG_M};
use crate::limit::{Candidate, LinkModel};
use crate::meters::Meters;
use crate::time::{Time, as_secs_f64, from_secs_f64};

/// Candidate stop points are this far apart along a leg, metres.
pub const STOP_STEP_M: f64 = 10.0;

/// A contact this close to a meter's need counts as enough, seconds.
const SERVED_EPS_S: f64 = 1e-6;

/// The bounds of a pace plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceLimits {
    /// Cruising speed, m/s: no leg is faster.
    pub max_speed: f64,
    /// No leg is slower, m/s.
    pub min_speed: f64,
    /// The longest stop, seconds.
    pub max_stop_s: f64,
    /// What a pass may take beyond driving it all at `max_speed`, seconds.
    pub budget_s: f64,
}

/// Where a van stops on a leg, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stop {
    /// The point, on the leg.
    pub at: Point,
    /// Seconds parked there (access point on).
    pub seconds: f64,
}

/// One leg of the route at its pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegPace {
    /// Where the leg starts.
    pub from: Point,
    /// Where it ends.
    pub to: Point,
    /// Its speed, m/s.
    pub speed: f64,
    /// A stop on the way, if any.
    pub stop: Option<Stop>,
}

impl LegPace {
    /// The leg's length, metres.
    pub fn length(&self) -> f64 {
        self.from.distance(self.to)
    }

    /// Seconds to drive it, the stop included.
    pub fn seconds(&self) -> f64 {
        self.length() / self.speed + self.stop.map_or(0.0, |s| s.seconds)
    }
}

/// A route's legs, each with its speed and stop, in driving order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pace {
    /// The legs.
    pub legs: Vec<LegPace>,
}

impl Pace {
    /// `route` at one `speed` (m/s), no stops, in legs of at most
    /// [`MAX_LEG_M`] (corners repeated back to back are skipped).
    pub fn constant(route: &[Point], speed: f64) -> Pace {
        let mut legs = Vec::new();
        for pair in route.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let length = a.distance(b);
            if length == 0.0 {
                continue;
            }
            let pieces = (length / MAX_LEG_M).ceil().max(1.0) as usize;
            for i in 0..pieces {
                let (s0, s1) = (i as f64 / pieces as f64, (i + 1) as f64 / pieces as f64);
                legs.push(LegPace {
                    from: a.lerp(b, s0),
                    to: a.lerp(b, s1),
                    speed,
                    stop: None,
                });
            }
        }
        Pace { legs }
    }

    /// Plans the pace of `route` within `limits` for the meters near it:
    /// `needs[m]` is the contact meter `m` needs each pass, seconds
    /// (`None`: it needs nothing).
    pub fn plan(
        route: &[Point],
        meters: &Meters,
        needs: &[Option<f64>],
        limits: &PaceLimits,
    ) -> Pace {
        let mut paces = Pace::plan_passes(route, meters, needs, limits, 1, 1);
        paces.pop().expect("one pass")
    }

    /// Plans `passes` passes of `route`, each within `limits` (the budget
    /// is each pass's), serving each meter in at most `per_meter` of them:
    /// `needs[m]` is the contact meter `m` needs on each pass that serves
    /// it. A pass spends its budget on the meters earlier passes did not
    /// serve enough, so the budget goes round the meters instead of
    /// buying the same contact every pass.
    pub fn plan_passes(
        route: &[Point],
        meters: &Meters,
        needs: &[Option<f64>],
        limits: &PaceLimits,
        passes: u32,
        per_meter: u32,
    ) -> Vec<Pace> {
        let limits = PaceLimits {
            min_speed: limits.min_speed.min(limits.max_speed),
            ..*limits
        };
        let constant = Pace::constant(route, limits.max_speed);
        let mut greedy = Greedy::new(constant.clone(), meters, needs);
        let mut served = vec![0u32; greedy.wanting.len()];
        (0..passes)
            .map(|_| {
                greedy.reset(&constant, |w| served[w] < per_meter);
                greedy.run(&limits);
                for (w, count) in served.iter_mut().enumerate() {
                    *count += u32::from(greedy.wanting[w].served());
                }
                greedy.pace.clone()
            })
            .collect()
    }

    /// Seconds to drive the whole route, stops included.
    pub fn seconds(&self) -> f64 {
        self.legs.iter().map(LegPace::seconds).sum()
    }

    /// Seconds beyond driving the route at `max_speed` without stopping.
    pub fn extra_s(&self, max_speed: f64) -> f64 {
        self.seconds() - self.legs.iter().map(|l| l.length()).sum::<f64>() / max_speed
    }

    /// The legs with a stop.
    pub fn stops(&self) -> usize {
        self.legs.iter().filter(|l| l.stop.is_some()).count()
    }

    /// The same pace driven backwards (the route's return passes).
    pub fn reversed(&self) -> Pace {
        Pace {
            legs: self
                .legs
                .iter()
                .rev()
                .map(|l| LegPace {
                    from: l.to,
                    to: l.from,
                    ..*l
                })
                .collect(),
        }
    }

    /// Appends the drive as timed legs for van `van`, pass `pass`, from
    /// `t0` without a break (a stop is a parked leg); returns the end.
    pub fn timed(&self, van: u16, pass: u16, t0: Time, out: &mut Vec<Leg>) -> Time {
        let mut now = t0;
        let mut push = |from: Point, to: Point, seconds: f64, out: &mut Vec<Leg>| {
            let first = out.len();
            let t1 = now + from_secs_f64(seconds);
            Leg::split(from, to, now, t1, out);
            for leg in &mut out[first..] {
                (leg.van, leg.pass) = (van, pass);
            }
            now = t1;
        };
        for leg in &self.legs {
            match leg.stop {
                Some(stop) => {
                    push(
                        leg.from,
                        stop.at,
                        leg.from.distance(stop.at) / leg.speed,
                        out,
                    );
                    push(stop.at, stop.at, stop.seconds, out);
                    push(stop.at, leg.to, stop.at.distance(leg.to) / leg.speed, out);
                }
                None => push(leg.from, leg.to, leg.length() / leg.speed, out),
            }
        }
        now
    }
}

/// The contact `candidate` needs each pass, seconds: the planner's
/// `min_contact`, or the link setup plus its transfer spread over
/// `passes` at its own goodput or its share of a full access point
/// (whichever is slower), when that is longer.
pub fn need_s(candidate: &Candidate, link: &LinkModel, min_contact: Time, passes: u32) -> f64 {
    let share = link.capacity_bps / f64::from(link.max_clients.max(1));
    let rate = candidate.goodput_bps.min(share);
    let transfer = candidate.bytes / rate / f64::from(passes.max(1));
    as_secs_f64(min_contact).max(as_secs_f64(link.setup) + transfer)
}

/// A meter the plan could still serve.
struct Wanting {
    /// Its place and range.
    pos: Point,
    range: f64,
    /// Contact it needs, seconds.
    need: f64,
    /// Contact it has at the pace so far, seconds.
    has: f64,
    /// The legs its contact spans, with its chord on each, metres.
    chords: Vec<(u32, f64)>,
}

impl Wanting {
    fn served(&self) -> bool {
        self.has >= self.need - SERVED_EPS_S
    }

    fn chord_on(&self, leg: u32) -> f64 {
        self.chords
            .iter()
            .find(|(l, _)| *l == leg)
            .map_or(0.0, |c| c.1)
    }
}

/// One way to spend budget on a leg.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Drive the leg at this inverse speed, s/m.
    Slow(f64),
    /// Stop at this point for this long in all, seconds.
    Stop(Point, f64),
}

/// A leg's best option: meters served per second, and its cost.
#[derive(Debug, Clone, Copy)]
struct Offer {
    per_second: f64,
    change: Change,
}

/// An offer in the queue, best first (ties: the earlier leg).
struct Queued {
    per_second: f64,
    leg: u32,
    version: u32,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.per_second
            .total_cmp(&other.per_second)
            .then(other.leg.cmp(&self.leg))
            .then(self.version.cmp(&other.version))
    }
}

/// The greedy's state: the pace so far and the meters still wanting.
struct Greedy {
    pace: Pace,
    wanting: Vec<Wanting>,
    /// Per leg: the wanting meters whose contact touches it.
    on_leg: Vec<Vec<u32>>,
    /// Per leg: bumped when a meter on it changes.
    version: Vec<u32>,
    /// Each wanting meter's contact at the cruising speed, seconds.
    base: Vec<f64>,
}

impl Greedy {
    fn new(pace: Pace, meters: &Meters, needs: &[Option<f64>]) -> Greedy {
        let grid = Grid::new(meters);
        // Each meter's chords, leg by leg in route order.
        let mut slot = vec![u32::MAX; meters.len()];
        let mut chords: Vec<(usize, Vec<(u32, f64)>)> = Vec::new();
        for (j, leg) in pace.legs.iter().enumerate() {
            let probe = Leg {
                van: 0,
                pass: 0,
                t0: 0,
                t1: 1,
                from: leg.from,
                to: leg.to,
            };
            let length = leg.length();
            grid.near(&probe, |m| {
                if needs.get(m).copied().flatten().is_none() {
                    return;
                }
                let spec = &meters[m];
                let Some((s0, s1)) = in_range(leg.from, leg.to, spec.pos, spec.range()) else {
                    return;
                };
                if slot[m] == u32::MAX {
                    slot[m] = chords.len() as u32;
                    chords.push((m, Vec::new()));
                }
                chords[slot[m] as usize]
                    .1
                    .push((j as u32, (s1 - s0) * length));
            });
        }
        let mut wanting = Vec::new();
        let mut on_leg = vec![Vec::new(); pace.legs.len()];
        if pace.legs.is_empty() {
            return Greedy {
                pace,
                wanting,
                on_leg,
                version: Vec::new(),
                base: Vec::new(),
            };
        }
        for (m, all) in chords {
            let run = longest_run(&all);
            let has = run.iter().map(|c| c.1).sum::<f64>() / pace.legs[0].speed;
            let w = Wanting {
                pos: meters[m].pos,
                range: meters[m].range(),
                need: needs[m].expect("only meters with a need"),
                has,
                chords: run,
            };
            if w.served() {
                continue;
            }
            for &(leg, _) in &w.chords {
                on_leg[leg as usize].push(wanting.len() as u32);
            }
            wanting.push(w);
        }
        let version = vec![0; pace.legs.len()];
        let base = wanting.iter().map(|w| w.has).collect();
        Greedy {
            pace,
            wanting,
            on_leg,
            version,
            base,
        }
    }

    /// Starts a pass afresh at `pace`, for the wanting meters `keep`
    /// says.
    fn reset(&mut self, pace: &Pace, keep: impl Fn(usize) -> bool) {
        self.pace.clone_from(pace);
        for (w, has) in self.base.iter().enumerate() {
            self.wanting[w].has = *has;
        }
        for list in &mut self.on_leg {
            list.clear();
        }
        for (w, wanting) in self.wanting.iter().enumerate() {
            if keep(w) {
                for &(leg, _) in &wanting.chords {
                    self.on_leg[leg as usize].push(w as u32);
                }
            }
        }
        self.version.iter_mut().for_each(|v| *v = 0);
    }

    fn run(&mut self, limits: &PaceLimits) {
        let mut left = limits.budget_s.max(0.0);
        let mut queue = BinaryHeap::new();
        for leg in 0..self.pace.legs.len() as u32 {
            self.offer(leg, left, limits, &mut queue);
        }
        while let Some(top) = queue.pop() {
            if top.version != self.version[top.leg as usize] {
                continue;
            }
            let Some(offer) = self.best(top.leg, left, limits) else {
                continue;
            };
            if offer.per_second < top.per_second {
                // Worse now that less budget is left: queue it again.
                self.offer(top.leg, left, limits, &mut queue);
                continue;
            }
            left -= self.apply(top.leg, offer.change, limits);
            let mut touched: Vec<u32> = self.on_leg[top.leg as usize]
                .iter()
                .flat_map(|&w| self.wanting[w as usize].chords.iter().map(|c| c.0))
                .collect();
            touched.push(top.leg);
            touched.sort_unstable();
            touched.dedup();
            for &leg in &touched {
                self.version[leg as usize] += 1;
            }
            for &leg in &touched {
                let served = &self.wanting;
                self.on_leg[leg as usize].retain(|&w| !served[w as usize].served());
            }
            for leg in touched {
                self.offer(leg, left, limits, &mut queue);
            }
        }
    }

    /// Queues leg `leg`'s best offer within `left`, if it has one.
    fn offer(&self, leg: u32, left: f64, limits: &PaceLimits, queue: &mut BinaryHeap<Queued>) {
        if let Some(offer) = self.best(leg, left, limits) {
            queue.push(Queued {
                per_second: offer.per_second,
                leg,
                version: self.version[leg as usize],
            });
        }
    }

    /// The best offer of leg `j` costing at most `left`.
    fn best(&self, j: u32, left: f64, limits: &PaceLimits) -> Option<Offer> {
        let slow = self.best_slow(j, left, limits);
        let stop = self.best_stop(j, left, limits);
        match (slow, stop) {
            (Some(a), Some(b)) if b.per_second > a.per_second => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        }
    }

    /// Slowing leg `j` just enough for its first `k` wanting meters.
    fn best_slow(&self, j: u32, left: f64, limits: &PaceLimits) -> Option<Offer> {
        let leg = &self.pace.legs[j as usize];
        let now = 1.0 / leg.speed;
        let slowest = 1.0 / limits.min_speed;
        let mut inverse: Vec<f64> = self.on_leg[j as usize]
            .iter()
            .map(|&w| &self.wanting[w as usize])
            .filter(|w| !w.served())
            .filter_map(|w| {
                let chord = w.chord_on(j);
                (chord > 0.0).then(|| now + (w.need - w.has) / chord)
            })
            .filter(|&i| i <= slowest)
            .collect();
        inverse.sort_unstable_by(f64::total_cmp);
        let length = leg.length();
        let mut best: Option<Offer> = None;
        for (k, &i) in inverse.iter().enumerate() {
            let cost = length * (i - now);
            if cost > left {
                break;
            }
            let per_second = (k + 1) as f64 / cost;
            if best.is_none_or(|b| per_second > b.per_second) {
                best = Some(Offer {
                    per_second,
                    change: Change::Slow(i),
                });
            }
        }
        best
    }

    /// A stop on leg `j` (or a longer one where it already stops) just
    /// long enough for its first `k` wanting meters in range.
    fn best_stop(&self, j: u32, left: f64, limits: &PaceLimits) -> Option<Offer> {
        let leg = &self.pace.legs[j as usize];
        let (points, already) = match leg.stop {
            Some(stop) => (vec![stop.at], stop.seconds),
            None => {
                let steps = (leg.length() / STOP_STEP_M).ceil().max(1.0) as usize;
                let points = (0..steps)
                    .map(|i| leg.from.lerp(leg.to, (i as f64 + 0.5) / steps as f64))
                    .collect();
                (points, 0.0)
            }
        };
        let room = (limits.max_stop_s - already).min(left);
        let mut best: Option<Offer> = None;
        let mut extra = Vec::new();
        for at in points {
            extra.clear();
            extra.extend(
                self.on_leg[j as usize]
                    .iter()
                    .map(|&w| &self.wanting[w as usize])
                    .filter(|w| !w.served() && w.pos.distance(at) <= w.range)
                    .map(|w| w.need - w.has)
                    .filter(|&e| e <= room),
            );
            extra.sort_unstable_by(f64::total_cmp);
            for (k, &cost) in extra.iter().enumerate() {
                let per_second = (k + 1) as f64 / cost;
                if best.is_none_or(|b| per_second > b.per_second) {
                    best = Some(Offer {
                        per_second,
                        change: Change::Stop(at, already + cost),
                    });
                }
            }
        }
        best
    }

    /// Applies `change` to leg `j`; returns the seconds it cost.
    fn apply(&mut self, j: u32, change: Change, limits: &PaceLimits) -> f64 {
        let leg = &mut self.pace.legs[j as usize];
        let length = leg.length();
        match change {
            Change::Slow(inverse) => {
                let speed = (1.0 / inverse).clamp(limits.min_speed, leg.speed);
                let added = 1.0 / speed - 1.0 / leg.speed;
                leg.speed = speed;
                for &w in &self.on_leg[j as usize] {
                    let w = &mut self.wanting[w as usize];
                    w.has += w.chord_on(j) * added;
                }
                length * added
            }
            Change::Stop(at, seconds) => {
                let before = leg.stop.map_or(0.0, |s| s.seconds);
                let seconds = seconds.min(limits.max_stop_s);
                leg.stop = Some(Stop { at, seconds });
                for &w in &self.on_leg[j as usize] {
                    let w = &mut self.wanting[w as usize];
                    if w.pos.distance(at) <= w.range {
                        w.has += seconds - before;
                    }
                }
                seconds - before
            }
        }
    }
}

/// The longest run of consecutive legs in `chords` (in leg order), by
/// total chord: the one contact of the meter the plan looks after.
fn longest_run(chords: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let mut best: &[(u32, f64)] = &[];
    let mut best_len = 0.0;
    let mut start = 0;
    for i in 1..=chords.len() {
        if i == chords.len() || chords[i].0 != chords[i - 1].0 + 1 {
            let run = &chords[start..i];
            let len: f64 = run.iter().map(|c| c.1).sum();
            if len > best_len {
                (best, best_len) = (run, len);
            }
            start = i;
        }
    }
    best.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contacts::Contacts;
    use crate::meters::MeterSpec;
    use crate::time::secs;
    use proptest::prelude::*;

    fn meter(x: f64, y: f64, range: f32) -> MeterSpec {
        MeterSpec {
            pos: Point::new(x, y),
            wifi_range_m: range,
            interval: secs(3600),
            phase: 0,
        }
    }

    fn street() -> Vec<Point> {
        vec![Point::new(0.0, 0.0), Point::new(1000.0, 0.0)]
    }

    /// Five meters 10 m off a 1 km street with 30 m of range: a chord of
    /// 2 * sqrt(30^2 - 10^2) = 56.57 m, 5.66 s at 10 m/s, where they
    /// need 10 s.
    fn cluster() -> (Meters, Vec<Option<f64>>) {
        let meters = Meters::from_meters((0..5).map(|_| meter(375.0, 10.0, 30.0)).collect());
        (meters, vec![Some(10.0); 5])
    }

    fn limits(max_stop_s: f64, budget_s: f64) -> PaceLimits {
        PaceLimits {
            max_speed: 10.0,
            min_speed: 1.0,
            max_stop_s,
            budget_s,
        }
    }

    /// The contact of each meter when the van drives `pace` once.
    fn contact_s(pace: &Pace, meters: &Meters) -> Vec<f64> {
        let mut legs = Vec::new();
        pace.timed(0, 0, secs(100), &mut legs);
        let contacts = Contacts::compute(meters, &legs);
        (0..meters.len())
            .map(|m| {
                contacts
                    .of(m)
                    .iter()
                    .map(|c| as_secs_f64(c.duration()))
                    .sum()
            })
            .collect()
    }

    /// By hand: the cluster is on the second leg (250-500 m); without
    /// stops, that leg slows to 56.57 m / 10 s = 5.657 m/s, which costs
    /// 250 * (1/5.657 - 1/10) = 19.19 s; with 19 s nothing changes.
    #[test]
    fn a_cluster_too_short_at_full_speed_gets_a_slower_leg() {
        let (meters, needs) = cluster();
        let chord = 2.0 * (30.0f64.powi(2) - 10.0f64.powi(2)).sqrt();
        let before = contact_s(&Pace::constant(&street(), 10.0), &meters);
        assert!(before.iter().all(|&t| (t - chord / 10.0).abs() < 1e-3));

        let pace = Pace::plan(&street(), &meters, &needs, &limits(0.0, 20.0));
        let speeds: Vec<f64> = pace.legs.iter().map(|l| l.speed).collect();
        assert_eq!(speeds.len(), 4);
        assert!((speeds[1] - chord / 10.0).abs() < 1e-9, "{speeds:?}");
        assert_eq!([speeds[0], speeds[2], speeds[3]], [10.0; 3]);
        let cost = 250.0 * (10.0 / chord - 0.1);
        assert!((pace.extra_s(10.0) - cost).abs() < 1e-9);
        assert!((cost - 19.19).abs() < 0.01);
        assert_eq!(pace.stops(), 0);
        for t in contact_s(&pace, &meters) {
            assert!((t - 10.0).abs() < 1e-3, "{t}");
        }

        let short = Pace::plan(&street(), &meters, &needs, &limits(0.0, 19.0));
        assert_eq!(short, Pace::constant(&street(), 10.0));
    }

    /// With stops allowed, a stop of 10 - 5.657 = 4.34 s next to the
    /// cluster is cheaper than the slow leg (19.19 s).
    #[test]
    fn or_a_stop_next_to_it_when_that_is_cheaper() {
        let (meters, needs) = cluster();
        let pace = Pace::plan(&street(), &meters, &needs, &limits(60.0, 20.0));
        assert!(pace.legs.iter().all(|l| l.speed == 10.0));
        let stop = pace.legs[1].stop.expect("a stop on the cluster's leg");
        // On the street, in range of the cluster (the first such point).
        assert_eq!(stop.at, Point::new(355.0, 0.0));
        assert!(stop.at.distance(Point::new(375.0, 10.0)) <= 30.0);
        let chord = 2.0 * 800.0f64.sqrt();
        assert!((stop.seconds - (10.0 - chord / 10.0)).abs() < 1e-9);
        assert!((pace.extra_s(10.0) - stop.seconds).abs() < 1e-9);
        for t in contact_s(&pace, &meters) {
            assert!(t >= 10.0 - 1e-3, "{t}");
        }
    }

    /// One wanting meter on the first leg, ten on the third, budget for
    /// one of them: the ten get it.
    #[test]
    fn the_budget_goes_where_it_serves_the_most() {
        let mut specs = vec![meter(125.0, 10.0, 30.0)];
        specs.extend((0..10).map(|i| meter(600.0 + i as f64, 10.0, 30.0)));
        let meters = Meters::from_meters(specs);
        let needs = vec![Some(10.0); 11];
        let pace = Pace::plan(&street(), &meters, &needs, &limits(0.0, 25.0));
        assert_eq!(pace.legs[0].speed, 10.0);
        assert!(pace.legs[2].speed < 10.0);
        let contacts = contact_s(&pace, &meters);
        assert!(contacts[0] < 10.0 - 1e-3);
        assert!(
            contacts[1..].iter().all(|&t| t >= 10.0 - 1e-3),
            "{contacts:?}"
        );
    }

    /// Budget for one cluster a pass, each meter served once: the ten
    /// first, the one on the next pass, then nothing is left to buy.
    #[test]
    fn passes_take_turns_over_the_meters() {
        let mut specs = vec![meter(125.0, 10.0, 30.0)];
        specs.extend((0..10).map(|i| meter(600.0 + i as f64, 10.0, 30.0)));
        let meters = Meters::from_meters(specs);
        let needs = vec![Some(10.0); 11];
        let paces = Pace::plan_passes(&street(), &meters, &needs, &limits(0.0, 25.0), 3, 1);
        assert_eq!(paces.len(), 3);
        let contacts: Vec<Vec<f64>> = paces.iter().map(|p| contact_s(p, &meters)).collect();
        assert!(contacts[0][1..].iter().all(|&t| t >= 10.0 - 1e-3));
        assert!(contacts[0][0] < 10.0 - 1e-3);
        assert!(contacts[1][0] >= 10.0 - 1e-3);
        assert!(contacts[1][1..].iter().all(|&t| t < 10.0 - 1e-3));
        assert_eq!(paces[2], Pace::constant(&street(), 10.0));
        // Twice each: the ten again on the second pass, the one on the third.
        let twice = Pace::plan_passes(&street(), &meters, &needs, &limits(0.0, 25.0), 3, 2);
        assert_eq!(twice[0], twice[1]);
        assert_eq!(twice[2], paces[1]);
    }

    #[test]
    fn the_need_is_the_minimum_contact_or_the_transfer() {
        let link = LinkModel {
            capacity_bps: 3_200_000.0,
            max_clients: 32,
            setup: secs(2),
        };
        let small = Candidate {
            bytes: 100_000.0,
            goodput_bps: 50_000.0,
        };
        // 2 s of setup + 100 kB at 50 kB/s over 2 passes = 3 s < 8 s.
        assert_eq!(need_s(&small, &link, secs(8), 2), 8.0);
        // 1.2 MB at the 100 kB/s share (below its 130 kB/s) over 2 passes.
        let big = Candidate {
            bytes: 1_200_000.0,
            goodput_bps: 130_000.0,
        };
        assert_eq!(need_s(&big, &link, secs(8), 2), 2.0 + 6.0);
        assert_eq!(need_s(&big, &link, secs(8), 1), 2.0 + 12.0);
    }

    #[test]
    fn backwards_and_timed() {
        let route = [
            Point::new(0.0, 0.0),
            Point::new(600.0, 0.0),
            Point::new(600.0, 0.0),
            Point::new(600.0, 100.0),
        ];
        let mut pace = Pace::constant(&route, 5.0);
        assert_eq!(pace.legs.len(), 4);
        pace.legs[1].speed = 2.5;
        pace.legs[3].stop = Some(Stop {
            at: Point::new(600.0, 50.0),
            seconds: 30.0,
        });
        // 600 m at 5 m/s, 200 m more at 2.5 m/s... 100 m at 5 + 30 s.
        assert!((pace.seconds() - (400.0 / 5.0 + 200.0 / 2.5 + 100.0 / 5.0 + 30.0)).abs() < 1e-9);
        let back = pace.reversed();
        assert_eq!(back.legs[0].from, Point::new(600.0, 100.0));
        assert_eq!(back.legs[0].stop, pace.legs[3].stop);
        assert!((back.seconds() - pace.seconds()).abs() < 1e-9);
        let mut legs = Vec::new();
        let end = back.timed(3, 1, secs(10), &mut legs);
        assert_eq!(end - secs(10), from_secs_f64(pace.seconds()));
        assert!(legs.iter().all(|l| (l.van, l.pass) == (3, 1)));
        let parked: Vec<_> = legs.iter().filter(|l| l.from == l.to).collect();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].t1 - parked[0].t0, secs(30));
        for w in legs.windows(2) {
            assert_eq!((w[0].t1, w[0].to), (w[1].t0, w[1].from));
        }
    }

    proptest! {
        /// Whatever the meters, their needs and the limits: every leg's
        /// speed is within the bounds, every stop within the longest stop
        /// and on its leg, the plan costs no more than the budget, and it
        /// drives the same route.
        #[test]
        fn the_plan_never_leaves_its_bounds_or_budget(
            corners in prop::collection::vec((0.0..2000.0f64, 0.0..2000.0f64), 2..6),
            spots in prop::collection::vec(
                (0.0..2000.0f64, 0.0..2000.0f64, 5.0..150.0f32, 0.0..60.0f64),
                0..300,
            ),
            max_kmh in 5.0..60.0f64,
            min_share in 0.05..1.0f64,
            max_stop_s in 0.0..300.0f64,
            budget_s in 0.0..3000.0f64,
            passes in 1..4u32,
            per_meter in 1..3u32,
        ) {
            let route: Vec<Point> = corners.iter().map(|&(x, y)| Point::new(x, y)).collect();
            let meters = Meters::from_meters(
                spots.iter().map(|&(x, y, r, _)| meter(x, y, r)).collect(),
            );
            let needs: Vec<Option<f64>> = spots
                .iter()
                .map(|&(_, _, _, need)| (need > 5.0).then_some(need))
                .collect();
            let limits = PaceLimits {
                max_speed: max_kmh / 3.6,
                min_speed: max_kmh / 3.6 * min_share,
                max_stop_s,
                budget_s,
            };
            let paces = Pace::plan_passes(&route, &meters, &needs, &limits, passes, per_meter);
            prop_assert_eq!(paces.len(), passes as usize);
            let constant = Pace::constant(&route, limits.max_speed);
            for pace in &paces {
            prop_assert_eq!(pace.legs.len(), constant.legs.len());
            for (leg, plain) in pace.legs.iter().zip(&constant.legs) {
                prop_assert_eq!((leg.from, leg.to), (plain.from, plain.to));
                prop_assert!(leg.speed >= limits.min_speed && leg.speed <= limits.max_speed);
                if let Some(stop) = leg.stop {
                    prop_assert!(stop.seconds > 0.0 && stop.seconds <= max_stop_s);
                    let via = leg.from.distance(stop.at) + stop.at.distance(leg.to);
                    prop_assert!((via - leg.length()).abs() < 1e-6);
                }
            }
            prop_assert!(pace.extra_s(limits.max_speed) <= budget_s + 1e-6);
            }
        }
    }
}
