//! The physical limit of a campaign: which meters the route's contacts
//! could have updated at best, whatever the plan.
//!
//! A contact carries part of a meter's update: after the link setup
//! (association at its median plus the session overhead), the rest of the
//! contact moves bytes at the meter's share of the van's access point. The
//! share at best is the access point's capacity divided equally among the
//! candidates in range of the same van at each moment (at most
//! `max_clients` of them, the ones the access point admits), and never more
//! than the meter's own goodput:
//!
//! ```text
//! bytes(c) = min(goodput * (T - setup), integral over [start + setup, end] of C / min(n(t), K))
//! ```
//!
//! with `T` the contact's length, `C` the capacity, `n(t)` the candidates
//! in range of the van at `t` (the meter included) and `K` the access
//! point's client limit. (Taking the minimum of the two integrals instead
//! of integrating the minimum is what keeps this cheap, and makes it an
//! upper bound of the equal-share transfer.)
//!
//! A meter is [`Reach::Updatable`] when its contacts together move at
//! least its update: a download resumes on the next pass (the meter keeps
//! what it staged), so a campaign of many short passes can carry an update
//! no single pass could, each pass paying the setup again.
//!
//! "At best" has two limits worth knowing: a lucky association faster than
//! the median can beat it, and the access point's max-min sharing can give
//! a fast meter more than an equal share when slow ones cannot use theirs.
//! So a run can, rarely, update a meter this calls too short.
//!
//! Cost: per van, one sort of its contact ends and a sweep over them; a
//! contact's share is read off the sweep at its end and found from its
//! start's breakpoint by a short forward scan (the breakpoints within the
//! setup time). One van's buffers in memory at a time.

use crate::contacts::Contacts;
use crate::time::{Time, as_secs_f64};

/// The van's access point and the meters' link setup, as the limit sees
/// them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    /// The access point's aggregate goodput, bytes per second.
    pub capacity_bps: f64,
    /// Stations it serves at once.
    pub max_clients: u32,
    /// From entering the range to the first byte: association (median)
    /// plus the session overhead.
    pub setup: Time,
}

/// A meter that needs the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Bytes its update needs.
    pub bytes: f64,
    /// Its own goodput, bytes per second.
    pub goodput_bps: f64,
}

/// What the route can do for a meter at best.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Not a candidate (already current, or excluded by the caller).
    NotCandidate,
    /// No van ever comes within its range.
    NeverInRange,
    /// Vans pass, but its contacts at the planned speed, all passes
    /// together, are too short for its update.
    TooShort,
    /// Its contacts could carry its update.
    Updatable,
}

/// Each meter's [`Reach`] on `contacts`: `candidates[m]` is `None` for a
/// meter that does not need the update (it neither counts nor shares the
/// access point).
pub fn reach(
    contacts: &Contacts,
    candidates: &[Option<Candidate>],
    link: &LinkModel,
) -> Vec<Reach> {
    let mut carried = vec![0.0f64; candidates.len()];
    let vans = (0..candidates.len())
        .filter_map(|m| contacts.of(m).iter().map(|c| c.van).max())
        .max()
        .map_or(0, |v| v + 1);
    let mut sweep = Sweep::default();
    for van in 0..vans {
        sweep.van(contacts, candidates, link, van, &mut carried);
    }
    candidates
        .iter()
        .enumerate()
        .map(|(m, candidate)| match candidate {
            None => Reach::NotCandidate,
            Some(_) if contacts.of(m).is_empty() => Reach::NeverInRange,
            // The simulation counts a download done within a byte.
            Some(c) if carried[m] >= c.bytes - 1.0 => Reach::Updatable,
            Some(_) => Reach::TooShort,
        })
        .collect()
}

/// One van's equal share over time, swept over its candidates' contact
/// ends in time order (buffers kept from van to van).
#[derive(Default)]
struct Sweep {
    /// The van's contacts of candidates: meter, start, end.
    own: Vec<(u32, Time, Time)>,
    /// Contact ends: time, and the contact's index times two (plus one
    /// when it leaves).
    ends: Vec<(Time, u32)>,
    /// Breakpoints: where the number of candidates in range changes.
    times: Vec<Time>,
    /// Bytes per second one candidate's share moves from `times[i]` on.
    rates: Vec<f64>,
    /// Bytes one candidate's share moved from `times[0]` to `times[i]`.
    cumulative: Vec<f64>,
    /// Per contact: the breakpoint at its start.
    first_breakpoint: Vec<u32>,
    /// Per contact: `cumulative` at its end.
    moved_at_end: Vec<f64>,
}

impl Sweep {
    /// Adds to `carried[m]` what each contact of `van` carries at best.
    fn van(
        &mut self,
        contacts: &Contacts,
        candidates: &[Option<Candidate>],
        link: &LinkModel,
        van: u16,
        carried: &mut [f64],
    ) {
        self.own.clear();
        self.ends.clear();
        for (m, candidate) in candidates.iter().enumerate() {
            if candidate.is_none() {
                continue;
            }
            for c in contacts.of(m).iter().filter(|c| c.van == van) {
                let id = self.own.len() as u32;
                self.own.push((m as u32, c.start, c.end));
                self.ends.push((c.start, id * 2));
                self.ends.push((c.end, id * 2 + 1));
            }
        }
        // Ends at one instant are applied together, in any order.
        self.ends.sort_unstable_by_key(|e| e.0);
        self.breakpoints(link);
        for (id, &(m, start, end)) in self.own.iter().enumerate() {
            let first = start + link.setup;
            if first >= end {
                continue;
            }
            let mut i = self.first_breakpoint[id] as usize;
            while i + 1 < self.times.len() && self.times[i + 1] <= first {
                i += 1;
            }
            let at_first = self.cumulative[i] + self.rates[i] * as_secs_f64(first - self.times[i]);
            let share = self.moved_at_end[id] - at_first;
            let candidate = candidates[m as usize].expect("only candidates' contacts");
            let own = candidate.goodput_bps * as_secs_f64(end - first);
            carried[m as usize] += own.min(share);
        }
    }

    /// The breakpoints of `ends`, and each contact's first breakpoint and
    /// share moved at its end.
    fn breakpoints(&mut self, link: &LinkModel) {
        self.times.clear();
        self.rates.clear();
        self.cumulative.clear();
        self.first_breakpoint.clear();
        self.first_breakpoint.resize(self.own.len(), 0);
        self.moved_at_end.clear();
        self.moved_at_end.resize(self.own.len(), 0.0);
        let limit = i64::from(link.max_clients.max(1));
        let (mut in_range, mut moved) = (0i64, 0.0);
        let mut i = 0;
        while i < self.ends.len() {
            let t = self.ends[i].0;
            if let (Some(&last), Some(&rate)) = (self.times.last(), self.rates.last()) {
                moved += rate * as_secs_f64(t - last);
            }
            let breakpoint = self.times.len() as u32;
            while i < self.ends.len() && self.ends[i].0 == t {
                let id = (self.ends[i].1 / 2) as usize;
                if self.ends[i].1.is_multiple_of(2) {
                    self.first_breakpoint[id] = breakpoint;
                    in_range += 1;
                } else {
                    self.moved_at_end[id] = moved;
                    in_range -= 1;
                }
                i += 1;
            }
            self.times.push(t);
            self.rates
                .push(link.capacity_bps / in_range.clamp(1, limit) as f64);
            self.cumulative.push(moved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Point;
    use crate::leg::Leg;
    use crate::meters::{MeterSpec, Meters};
    use crate::time::secs;

    fn meters(at: &[(f64, f64)]) -> Meters {
        Meters::from_meters(
            at.iter()
                .map(|&(x, y)| MeterSpec {
                    pos: Point::new(x, y),
                    wifi_range_m: 50.0,
                    interval: secs(3600),
                    phase: 0,
                })
                .collect(),
        )
    }

    fn drive(length: f64, seconds: u64) -> Vec<Leg> {
        let mut legs = Vec::new();
        Leg::split(
            Point::new(0.0, 0.0),
            Point::new(length, 0.0),
            secs(100),
            secs(100 + seconds),
            &mut legs,
        );
        legs
    }

    const LINK: LinkModel = LinkModel {
        capacity_bps: 100_000.0,
        max_clients: 2,
        setup: 2_000_000,
    };

    fn wants(bytes: f64) -> Option<Candidate> {
        Some(Candidate {
            bytes,
            goodput_bps: 80_000.0,
        })
    }

    /// A meter alone on the street: 100 m of range at 10 m/s is 10 s, 8 s
    /// after the setup, at its own 80 kB/s: 640 kB.
    #[test]
    fn alone_the_meter_moves_its_own_goodput() {
        let m = meters(&[(500.0, 0.0)]);
        let contacts = Contacts::compute(&m, &drive(1000.0, 100));
        let reach_of = |bytes| reach(&contacts, &[wants(bytes)], &LINK)[0];
        assert_eq!(reach_of(640_000.0), Reach::Updatable);
        assert_eq!(reach_of(641_100.0), Reach::TooShort);
        assert_eq!(reach(&contacts, &[None], &LINK), [Reach::NotCandidate]);
    }

    /// A download resumes: two passes a day apart carry 2 x 640 kB, each
    /// paying the setup again.
    #[test]
    fn the_passes_of_a_campaign_add_up() {
        let m = meters(&[(500.0, 0.0)]);
        let mut legs = drive(1000.0, 100);
        Leg::split(
            Point::new(1000.0, 0.0),
            Point::new(0.0, 0.0),
            secs(86_500),
            secs(86_600),
            &mut legs,
        );
        let contacts = Contacts::compute(&m, &legs);
        assert_eq!(contacts.of(0).len(), 2);
        let reach_of = |bytes| reach(&contacts, &[wants(bytes)], &LINK)[0];
        assert_eq!(reach_of(1_280_000.0), Reach::Updatable);
        assert_eq!(reach_of(1_282_000.0), Reach::TooShort);
    }

    /// Two meters at the same spot share the 100 kB/s: 50 kB/s each for
    /// the 8 s after the setup, 400 kB; three share it as two (the client
    /// limit), and a meter that is not a candidate takes no share.
    #[test]
    fn meters_in_range_together_share_the_access_point() {
        let m = meters(&[(500.0, 0.0), (500.0, 0.0), (500.0, 0.0), (5000.0, 0.0)]);
        let contacts = Contacts::compute(&m, &drive(1000.0, 100));
        let two = [wants(400_000.0), wants(401_100.0), None, wants(1.0)];
        assert_eq!(
            reach(&contacts, &two, &LINK),
            [
                Reach::Updatable,
                Reach::TooShort,
                Reach::NotCandidate,
                Reach::NeverInRange
            ]
        );
        let three = [wants(400_000.0), wants(400_000.0), wants(401_100.0), None];
        assert_eq!(
            reach(&contacts, &three, &LINK)[..3],
            [Reach::Updatable, Reach::Updatable, Reach::TooShort]
        );
    }
}
