//! When each meter can reach a van: contact windows from geometry and
//! speed.
//!
//! The meters are bucketed in a square grid whose cells are as wide as the
//! longest WiFi range, so a leg (at most [`crate::leg::MAX_LEG_M`] long)
//! only looks at the meters of the few cells around it. For each meter in
//! reach, [`in_range`] gives the exact part of the leg within its range;
//! consecutive pieces with the same van merge into one [`Contact`].

use crate::geometry::in_range;
use crate::leg::Leg;
use crate::meters::Meters;
use crate::time::Time;

/// Pieces closer than this merge into one contact.
const MERGE_GAP: Time = 1_000_000;

/// A time interval during which a van is within a meter's WiFi range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// The van enters the range.
    pub start: Time,
    /// The van leaves it.
    pub end: Time,
    /// Which van.
    pub van: u16,
    /// Which pass of that van.
    pub pass: u16,
}

impl Contact {
    /// How long the contact lasts.
    pub fn duration(&self) -> Time {
        self.end - self.start
    }
}

/// Every meter's contacts, in time order (compressed rows: meter `m`'s are
/// `all[offsets[m]..offsets[m + 1]]`).
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    offsets: Vec<u32>,
    all: Vec<Contact>,
}

impl Contacts {
    /// Meter `m`'s contacts, earliest first.
    pub fn of(&self, m: usize) -> &[Contact] {
        &self.all[self.offsets[m] as usize..self.offsets[m + 1] as usize]
    }

    /// How many contacts there are in all.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether no meter has any contact.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Finds every contact of every meter with the vans' `legs` (given van
    /// by van, each van's in time order).
    pub fn compute(fleet: &Meters, legs: &[Leg]) -> Contacts {
        let grid = Grid::new(fleet);
        let meters = fleet.len();
        // The latest contact of each meter, to extend while the same van
        // stays in range.
        let mut last: Vec<u32> = vec![u32::MAX; meters];
        let mut owner: Vec<u32> = Vec::new();
        let mut found: Vec<Contact> = Vec::new();
        for leg in legs {
            let span = (leg.t1 - leg.t0) as f64;
            grid.near(leg, |m| {
                let spec = &fleet[m];
                let Some((s0, s1)) = in_range(leg.from, leg.to, spec.pos, spec.range()) else {
                    return;
                };
                let start = leg.t0 + (s0 * span) as Time;
                let end = leg.t0 + (s1 * span) as Time;
                let previous = last[m];
                if previous != u32::MAX {
                    let c = &mut found[previous as usize];
                    if c.van == leg.van && start <= c.end + MERGE_GAP {
                        c.end = c.end.max(end);
                        return;
                    }
                }
                last[m] = found.len() as u32;
                owner.push(m as u32);
                found.push(Contact {
                    start,
                    end,
                    van: leg.van,
                    pass: leg.pass,
                });
            });
        }
        // Group by meter (counting sort), then order each meter's by time.
        let mut offsets = vec![0u32; meters + 1];
        for &m in &owner {
            offsets[m as usize + 1] += 1;
        }
        for i in 0..meters {
            offsets[i + 1] += offsets[i];
        }
        let mut next = offsets.clone();
        let mut all = vec![
            Contact {
                start: 0,
                end: 0,
                van: 0,
                pass: 0
            };
            found.len()
        ];
        for (c, &m) in found.into_iter().zip(&owner) {
            let slot = &mut next[m as usize];
            all[*slot as usize] = c;
            *slot += 1;
        }
        for m in 0..meters {
            all[offsets[m] as usize..offsets[m + 1] as usize]
                .sort_unstable_by_key(|c| (c.start, c.van));
        }
        Contacts { offsets, all }
    }
}

/// Meters bucketed by grid cell (shared with the pace planner).
pub(crate) struct Grid {
    cell: f64,
    x0: f64,
    y0: f64,
    cols: i64,
    rows: i64,
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl Grid {
    /// Buckets `fleet`'s meters.
    pub(crate) fn new(fleet: &Meters) -> Grid {
        let cell = fleet.max_wifi_range().max(1.0);
        let (x0, y0) = (fleet.min.x - cell, fleet.min.y - cell);
        let cols = (((fleet.max.x + cell - x0) / cell).ceil() as i64).max(1);
        let rows = (((fleet.max.y + cell - y0) / cell).ceil() as i64).max(1);
        let mut grid = Grid {
            cell,
            x0,
            y0,
            cols,
            rows,
            starts: vec![0; (cols * rows + 1) as usize],
            members: vec![0; fleet.len()],
        };
        let cells: Vec<usize> = fleet
            .iter()
            .map(|m| grid.cell_of(m.pos.x, m.pos.y))
            .collect();
        for &c in &cells {
            grid.starts[c + 1] += 1;
        }
        for i in 0..grid.starts.len() - 1 {
            grid.starts[i + 1] += grid.starts[i];
        }
        let mut next = grid.starts.clone();
        for (m, &c) in cells.iter().enumerate() {
            grid.members[next[c] as usize] = m as u32;
            next[c] += 1;
        }
        grid
    }

    fn col(&self, x: f64) -> i64 {
        (((x - self.x0) / self.cell).floor() as i64).clamp(0, self.cols - 1)
    }

    fn row(&self, y: f64) -> i64 {
        (((y - self.y0) / self.cell).floor() as i64).clamp(0, self.rows - 1)
    }

    fn cell_of(&self, x: f64, y: f64) -> usize {
        (self.row(y) * self.cols + self.col(x)) as usize
    }

    /// Calls `visit` with every meter in a cell the leg's reach touches.
    pub(crate) fn near(&self, leg: &Leg, mut visit: impl FnMut(usize)) {
        let reach = self.cell;
        let (c0, c1) = (
            self.col(leg.from.x.min(leg.to.x) - reach),
            self.col(leg.from.x.max(leg.to.x) + reach),
        );
        let (r0, r1) = (
            self.row(leg.from.y.min(leg.to.y) - reach),
            self.row(leg.from.y.max(leg.to.y) + reach),
        );
        for row in r0..=r1 {
            let first = (row * self.cols + c0) as usize;
            let last = (row * self.cols + c1) as usize;
            let (a, b) = (self.starts[first] as usize, self.starts[last + 1] as usize);
            for &m in &self.members[a..b] {
                visit(m as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{Point, contact_time_closed_form};
    use crate::meters::MeterSpec;
    use crate::time::{as_secs_f64, secs};

    fn meter(x: f64, y: f64, range: f32) -> MeterSpec {
        MeterSpec {
            pos: Point::new(x, y),
            wifi_range_m: range,
            interval: secs(3600),
            phase: 0,
        }
    }

    /// Van 0's drive along y = 0 from x = 0 to `length` at `speed` m/s,
    /// `passes` times (every other one backwards), a day apart.
    fn street(length: f64, speed: f64, passes: u16) -> Vec<Leg> {
        let mut legs = Vec::new();
        for pass in 0..passes {
            let (a, b) = match pass % 2 {
                0 => (Point::new(0.0, 0.0), Point::new(length, 0.0)),
                _ => (Point::new(length, 0.0), Point::new(0.0, 0.0)),
            };
            let t0 = secs(86_400 * u64::from(pass + 1));
            let t1 = t0 + crate::time::from_secs_f64(length / speed);
            let first = legs.len();
            Leg::split(a, b, t0, t1, &mut legs);
            for leg in &mut legs[first..] {
                leg.pass = pass;
            }
        }
        legs
    }

    /// One straight street, meters at known distances: the contact equals
    /// 2*sqrt(R^2 - d^2)/v.
    #[test]
    fn contact_time_matches_the_closed_form() {
        for speed_kmh in [10.0, 30.0, 50.0] {
            let meters = Meters::from_meters(
                (0..50)
                    .map(|i| meter(500.0 + 40.0 * i as f64, (i % 9) as f64 * 9.0 + 1.0, 80.0))
                    .collect(),
            );
            let contacts = Contacts::compute(&meters, &street(3000.0, speed_kmh / 3.6, 1));
            for (i, m) in meters.iter().enumerate() {
                let c = contacts.of(i);
                assert_eq!(c.len(), 1, "meter {i}");
                let expected = contact_time_closed_form(80.0, m.pos.y.abs(), speed_kmh / 3.6);
                let got = as_secs_f64(c[0].duration());
                assert!(
                    (got - expected).abs() < 1e-3,
                    "{speed_kmh} km/h d={}: {got} vs {expected}",
                    m.pos.y
                );
            }
        }
    }

    #[test]
    fn passes_and_out_of_range_meters() {
        let meters = Meters::from_meters(vec![
            meter(100.0, 10.0, 50.0),
            meter(900.0, 20.0, 50.0),
            meter(500.0, 5000.0, 50.0),
        ]);
        let contacts = Contacts::compute(&meters, &street(1000.0, 5.0, 3));
        assert_eq!(contacts.of(0).len(), 3);
        assert_eq!(
            contacts.of(0).iter().map(|c| c.pass).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(contacts.of(1).len(), 3);
        assert!(contacts.of(2).is_empty());
        assert_eq!(contacts.len(), 6);
    }

    #[test]
    fn a_parked_van_is_one_contact_with_pieces_merged() {
        let meters = Meters::from_meters(vec![meter(10.0, 10.0, 30.0)]);
        let here = Point::new(10.0, 0.0);
        let mut legs = Vec::new();
        Leg::split(here, here, secs(100), secs(160), &mut legs);
        Leg::split(here, here, secs(160), secs(200), &mut legs);
        let contacts = Contacts::compute(&meters, &legs);
        assert_eq!(contacts.of(0).len(), 1);
        assert_eq!(
            (contacts.of(0)[0].start, contacts.of(0)[0].end),
            (secs(100), secs(200))
        );
    }
}
