//! The physical limit of a campaign: which meters any contact of the route
//! could have updated at best, whatever the plan.
//!
//! A contact carries a meter's update when, after the link setup
//! (association at its median plus the session overhead), the rest of the
//! contact moves the meter's bytes at its share of the van's access point.
//! The share at best is the access point's capacity divided equally among
//! the candidates in range of the same van at each moment (at most
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
//! upper bound of the equal-share transfer.) A meter is
//! [`Reach::Updatable`] when its best contact moves at least its update.
//!
//! "At best" has two limits worth knowing: a lucky association faster than
//! the median can beat it, and the access point's max-min sharing can give
//! a fast meter more than an equal share when slow ones cannot use theirs.
//! So a run can, rarely, update a meter this calls too short.
//!
//! Cost: one sort of each van's contact ends and a binary search per
//! contact, O(contacts log contacts), one van's breakpoints in memory at a
//! time.

use crate::contacts::{Contact, Contacts};
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
    /// Vans pass, but no contact is long enough at the planned speed.
    TooShort,
    /// At least one contact could carry its update.
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
    let mut best = vec![0.0f64; candidates.len()];
    let vans = (0..candidates.len())
        .flat_map(|m| contacts.of(m).iter().map(|c| c.van))
        .max()
        .map_or(0, |v| usize::from(v) + 1);
    for van in 0..vans {
        let share = Share::of_van(contacts, candidates, link, van as u16);
        for (m, candidate) in candidates.iter().enumerate() {
            let Some(candidate) = candidate else { continue };
            for c in contacts.of(m).iter().filter(|c| usize::from(c.van) == van) {
                best[m] = best[m].max(share.carried(c, candidate, link.setup));
            }
        }
    }
    candidates
        .iter()
        .enumerate()
        .map(|(m, candidate)| match candidate {
            None => Reach::NotCandidate,
            Some(_) if contacts.of(m).is_empty() => Reach::NeverInRange,
            // The simulation counts a download done within a byte.
            Some(c) if best[m] >= c.bytes - 1.0 => Reach::Updatable,
            Some(_) => Reach::TooShort,
        })
        .collect()
}

/// One van's equal share over time: breakpoints where the number of
/// candidates in range changes, with the cumulative bytes one candidate
/// could have moved since the first.
struct Share {
    times: Vec<Time>,
    /// Bytes per second from `times[i]` to `times[i + 1]`.
    rates: Vec<f64>,
    /// Bytes one candidate's share moved from `times[0]` to `times[i]`.
    cumulative: Vec<f64>,
}

impl Share {
    fn of_van(
        contacts: &Contacts,
        candidates: &[Option<Candidate>],
        link: &LinkModel,
        van: u16,
    ) -> Share {
        let mut ends: Vec<(Time, i32)> = Vec::new();
        for (m, candidate) in candidates.iter().enumerate() {
            if candidate.is_none() {
                continue;
            }
            for c in contacts.of(m).iter().filter(|c| c.van == van) {
                ends.push((c.start, 1));
                ends.push((c.end, -1));
            }
        }
        // Every change at one instant is applied before the breakpoint.
        ends.sort_unstable();
        let limit = i64::from(link.max_clients.max(1));
        let mut share = Share {
            times: Vec::with_capacity(ends.len()),
            rates: Vec::with_capacity(ends.len()),
            cumulative: Vec::with_capacity(ends.len()),
        };
        let mut in_range = 0i64;
        let mut moved = 0.0;
        for (i, &(t, delta)) in ends.iter().enumerate() {
            in_range += i64::from(delta);
            if i + 1 < ends.len() && ends[i + 1].0 == t {
                continue;
            }
            if let (Some(&last), Some(&rate)) = (share.times.last(), share.rates.last()) {
                moved += rate * as_secs_f64(t - last);
            }
            share.times.push(t);
            share
                .rates
                .push(link.capacity_bps / in_range.clamp(1, limit) as f64);
            share.cumulative.push(moved);
        }
        share
    }

    /// Bytes one candidate's share moves from `times[0]` to `t`.
    fn at(&self, t: Time) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        if i == 0 {
            return 0.0;
        }
        self.cumulative[i - 1] + self.rates[i - 1] * as_secs_f64(t - self.times[i - 1])
    }

    /// Bytes contact `c` carries at best for `candidate`.
    fn carried(&self, c: &Contact, candidate: &Candidate, setup: Time) -> f64 {
        let first = c.start + setup;
        if first >= c.end {
            return 0.0;
        }
        let own = candidate.goodput_bps * as_secs_f64(c.end - first);
        own.min(self.at(c.end) - self.at(first))
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
