//! Where the vans drive, and when.
//!
//! A route is a polyline: the serpentine over a van's share of the
//! streets (`route = "grid"`: east along one street, up the connector, west
//! along the next...) or the scenario's waypoints. Each van drives its
//! route `passes` times, every other pass backwards, only during its
//! shifts (parked with the access point off at night), stopping for
//! `stop_s` every `stop_every_m`. The result is a list of [`Leg`]s, each at
//! most [`MAX_LEG_M`] long, so the contact search can index them.

use crate::scenario::{RouteKind, Scenario};
use otavan_planning::geometry::Point;
use otavan_planning::leg::{Leg, MAX_LEG_M};
use otavan_planning::pace::Pace;
use otavan_planning::time::{DAY, Time, as_secs_f64, from_secs_f64};

/// Every van's drive.
#[derive(Debug, Clone, Default)]
pub struct Drives {
    /// All legs, van by van, each van's in time order.
    pub legs: Vec<Leg>,
    /// Each van's route polyline (for the map).
    pub routes: Vec<Vec<Point>>,
    /// Each van's pace over its route, pass by pass (as the route runs
    /// forward; the return passes drive it reversed).
    pub paces: Vec<Vec<Pace>>,
    /// Passes completed, all vans together.
    pub passes_completed: u32,
    /// Kilometres driven, all vans together.
    pub km: f64,
}

impl Drives {
    /// When each pass ends, over all vans: pass `n`'s last leg's end.
    pub fn pass_ends(&self) -> Vec<Time> {
        let mut ends: Vec<Time> = Vec::new();
        for leg in &self.legs {
            let pass = usize::from(leg.pass);
            if ends.len() <= pass {
                ends.resize(pass + 1, 0);
            }
            ends[pass] = ends[pass].max(leg.t1);
        }
        ends
    }
}

/// The route polylines of the scenario's vans: the streets split into
/// contiguous bands, one per van; with waypoints, the same route for every
/// van (each starting at its share of the way along it, so they spread).
pub fn routes(scenario: &Scenario, streets_y: &[f64]) -> Vec<Vec<Point>> {
    let vans = scenario.van.vans as usize;
    match scenario.van.route {
        RouteKind::Waypoints => {
            let route: Vec<Point> = scenario
                .van
                .waypoints
                .iter()
                .map(|[x, y]| Point::new(*x, *y))
                .collect();
            (0..vans)
                .map(|v| rotate(&route, v as f64 / vans as f64))
                .collect()
        }
        RouteKind::Grid => {
            let length = scenario.fleet.street_length_m;
            let n = streets_y.len();
            (0..vans)
                .map(|v| {
                    let (lo, hi) = (v * n / vans, (v + 1) * n / vans);
                    let mut route = Vec::new();
                    for (i, y) in streets_y[lo..hi].iter().enumerate() {
                        let (a, b) = if i % 2 == 0 {
                            (0.0, length)
                        } else {
                            (length, 0.0)
                        };
                        route.push(Point::new(a, *y));
                        route.push(Point::new(b, *y));
                    }
                    route
                })
                .collect()
        }
    }
}

/// `route` started a fraction `share` of the way along (by corners).
fn rotate(route: &[Point], share: f64) -> Vec<Point> {
    let start = ((route.len() as f64) * share) as usize;
    route[start..]
        .iter()
        .chain(&route[..start])
        .copied()
        .collect()
}

/// Drives every van over its route at its pace (`paces[v][pass]`, as the
/// route runs forward: the return passes drive it reversed) until its
/// passes are done or `horizon`.
pub fn drive(
    scenario: &Scenario,
    routes: Vec<Vec<Point>>,
    paces: Vec<Vec<Pace>>,
    horizon: Time,
) -> Drives {
    let mut drives = Drives::default();
    for (van, passes) in paces.iter().enumerate() {
        let mut driver = Driver::new(scenario, van as u16, horizon);
        for (pass, pace) in passes.iter().enumerate() {
            let backwards;
            let this = if pass % 2 == 0 {
                pace
            } else {
                backwards = pace.reversed();
                &backwards
            };
            driver.pass = pass.min(usize::from(u16::MAX)) as u16;
            for leg in &this.legs {
                driver.speed = leg.speed;
                match leg.stop {
                    Some(stop) => {
                        driver.segment(leg.from, stop.at, &mut drives.legs);
                        driver.park(stop.at, from_secs_f64(stop.seconds), &mut drives.legs);
                        driver.segment(stop.at, leg.to, &mut drives.legs);
                    }
                    None => driver.segment(leg.from, leg.to, &mut drives.legs),
                }
            }
            if driver.out_of_time() {
                break;
            }
            drives.passes_completed += 1;
        }
        drives.km += driver.metres / 1000.0;
    }
    drives.routes = routes;
    drives.paces = paces;
    drives
}

/// One van's clock and odometer.
struct Driver {
    van: u16,
    pass: u16,
    speed: f64,
    now: Time,
    horizon: Time,
    shift_start: Time,
    shift_len: Time,
    stop_every: f64,
    stop: Time,
    to_next_stop: f64,
    metres: f64,
}

impl Driver {
    fn new(scenario: &Scenario, van: u16, horizon: Time) -> Driver {
        let v = &scenario.van;
        let shift_start = from_secs_f64(v.shift_start_h * 3600.0);
        Driver {
            van,
            pass: 0,
            speed: v.speed_kmh / 3.6,
            now: Time::from(v.first_day) * DAY + shift_start,
            horizon,
            shift_start,
            shift_len: from_secs_f64(v.shift_hours * 3600.0),
            stop_every: v.stop_every_m,
            stop: from_secs_f64(v.stop_s),
            to_next_stop: v.stop_every_m,
            metres: 0.0,
        }
    }

    fn out_of_time(&self) -> bool {
        self.now >= self.horizon
    }

    /// The end of the shift `now` is in.
    fn shift_end(&self) -> Time {
        self.now / DAY * DAY + self.shift_start + self.shift_len
    }

    /// Moves `now` to the next shift's start if the shift is over.
    fn next_shift_if_over(&mut self) {
        if self.now >= self.shift_end() {
            self.now = (self.now / DAY + 1) * DAY + self.shift_start;
        }
    }

    /// Drives from `a` to `b`, stopping and pausing as needed.
    fn segment(&mut self, a: Point, b: Point, legs: &mut Vec<Leg>) {
        let length = a.distance(b);
        let mut done = 0.0;
        while done < length && !self.out_of_time() {
            self.next_shift_if_over();
            if self.out_of_time() {
                return;
            }
            let mut piece = (length - done).min(MAX_LEG_M);
            if self.stop_every > 0.0 {
                piece = piece.min(self.to_next_stop);
            }
            let shift_left = as_secs_f64(self.shift_end() - self.now) * self.speed;
            piece = piece.min(shift_left);
            let from = a.lerp(b, done / length);
            let to = a.lerp(b, (done + piece) / length);
            let t1 = self.now + from_secs_f64(piece / self.speed);
            legs.push(self.leg(from, to, t1));
            self.now = t1;
            done += piece;
            self.metres += piece;
            if self.stop_every > 0.0 {
                self.to_next_stop -= piece;
                if self.to_next_stop <= 1e-9 {
                    self.to_next_stop = self.stop_every;
                    let end = (self.now + self.stop).min(self.shift_end());
                    if end > self.now {
                        legs.push(self.leg(to, to, end));
                        self.now = end;
                    }
                }
            }
        }
    }

    /// Parks at `at` for `length` of shift time (the rest in the next
    /// shift if this one ends first).
    fn park(&mut self, at: Point, length: Time, legs: &mut Vec<Leg>) {
        let mut left = length;
        while left > 0 && !self.out_of_time() {
            self.next_shift_if_over();
            if self.out_of_time() {
                return;
            }
            let end = (self.now + left).min(self.shift_end());
            legs.push(self.leg(at, at, end));
            left -= end - self.now;
            self.now = end;
        }
    }

    fn leg(&self, from: Point, to: Point, t1: Time) -> Leg {
        Leg {
            van: self.van,
            pass: self.pass,
            t0: self.now,
            t1: t1.min(self.horizon),
            from,
            to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otavan_planning::time::secs;

    /// Every van at `speed_kmh` throughout.
    fn drive_constant(s: &Scenario, routes: Vec<Vec<Point>>, horizon: Time) -> Drives {
        let paces = crate::pace::paces(s, &Default::default(), &[], &routes, horizon);
        drive(s, routes, paces, horizon)
    }

    fn scenario() -> Scenario {
        let mut s = Scenario::default();
        s.fleet.streets = 4;
        s.fleet.street_length_m = 1000.0;
        s.van.speed_kmh = 36.0; // 10 m/s
        s.van.passes = 2;
        s
    }

    #[test]
    fn a_grid_serpentine_for_each_van() {
        let mut s = scenario();
        s.van.vans = 2;
        let routes = routes(&s, &[0.0, 100.0, 200.0, 300.0]);
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[0],
            vec![
                Point::new(0.0, 0.0),
                Point::new(1000.0, 0.0),
                Point::new(1000.0, 100.0),
                Point::new(0.0, 100.0)
            ]
        );
        assert_eq!(routes[1][0], Point::new(0.0, 200.0));
    }

    #[test]
    fn drives_in_shifts_at_the_given_speed() {
        let mut s = scenario();
        s.van.shift_hours = 0.05; // 180 s: 1.8 km a shift
        let streets = [0.0, 100.0, 200.0, 300.0];
        let drives = drive_constant(&s, routes(&s, &streets), 30 * DAY);
        // 4 x 1 km streets + 3 x 100 m connectors, twice.
        assert!((drives.km - 2.0 * 4.3).abs() < 1e-6, "{}", drives.km);
        assert_eq!(drives.passes_completed, 2);
        let first = drives.legs[0];
        assert_eq!(first.t0, DAY + secs(8 * 3600));
        for leg in &drives.legs {
            let day_start = leg.t0 / DAY * DAY;
            assert!(leg.t0 >= day_start + secs(8 * 3600));
            assert!(leg.t1 <= day_start + secs(8 * 3600 + 180));
            let metres = leg.from.distance(leg.to);
            assert!(metres <= MAX_LEG_M + 1e-9);
            let secs = as_secs_f64(leg.t1 - leg.t0);
            assert!(
                (metres / secs - 10.0).abs() < 1e-3,
                "{metres} m in {secs} s"
            );
        }
        // Legs are continuous in space and ordered in time.
        for w in drives.legs.windows(2) {
            assert!(w[0].to.distance(w[1].from) < 1e-6);
            assert!(w[0].t1 <= w[1].t0);
        }
        // The second pass runs backwards.
        let second = drives.legs.iter().find(|l| l.pass == 1).unwrap();
        assert_eq!(
            second.from,
            drives.legs.iter().rfind(|l| l.pass == 0).unwrap().to
        );
    }

    #[test]
    fn stops_and_the_horizon() {
        let mut s = scenario();
        s.van.stop_every_m = 500.0;
        s.van.stop_s = 30.0;
        s.van.passes = 1;
        let drives = drive_constant(&s, routes(&s, &[0.0]), 30 * DAY);
        let parked: Vec<_> = drives.legs.iter().filter(|l| l.from == l.to).collect();
        assert_eq!(parked.len(), 2);
        assert!(parked.iter().all(|l| l.t1 - l.t0 == secs(30)));
        let horizon = DAY + secs(8 * 3600 + 50);
        let cut = drive_constant(&s, routes(&s, &[0.0]), horizon);
        assert!(cut.legs.iter().all(|l| l.t1 <= horizon));
        assert_eq!(cut.passes_completed, 0);
    }

    /// A planned pace: the van drives each leg at its speed and parks at
    /// its stop; a stop the shift cuts goes on at the next shift's start.
    #[test]
    fn each_leg_at_its_pace_and_stops_across_the_night() {
        let mut s = scenario();
        s.van.passes = 2;
        s.van.shift_hours = 0.05; // 180 s
        let route = vec![Point::new(0.0, 0.0), Point::new(1000.0, 0.0)];
        let mut pace = Pace::constant(&route, 10.0);
        pace.legs[1].speed = 5.0;
        let stop_at = Point::new(400.0, 0.0);
        pace.legs[1].stop = Some(otavan_planning::pace::Stop {
            at: stop_at,
            seconds: 100.0,
        });
        let drives = drive(&s, vec![route], vec![vec![pace.clone(); 2]], 30 * DAY);
        assert_eq!(drives.passes_completed, 2);
        assert!((drives.km - 2.0).abs() < 1e-9);
        let speed_at = |p: Point| {
            let x = p.x;
            pace.legs
                .iter()
                .find(|l| x >= l.from.x && x <= l.to.x)
                .unwrap()
                .speed
        };
        for leg in drives.legs.iter().filter(|l| l.from != l.to) {
            let metres = leg.from.distance(leg.to);
            let speed = metres / as_secs_f64(leg.t1 - leg.t0);
            assert!(
                (speed - speed_at(leg.from.lerp(leg.to, 0.5))).abs() < 1e-3,
                "{leg:?}"
            );
        }
        // Pass 0: 250 m at 10 m/s (25 s), 150 m at 5 m/s (30 s), then the
        // stop from 55 s: 125 s are left of the shift, so 100 s at once.
        let parked: Vec<_> = drives.legs.iter().filter(|l| l.from == l.to).collect();
        assert!(parked.iter().all(|l| l.from == stop_at));
        let start = DAY + secs(8 * 3600);
        assert_eq!(
            (parked[0].t0, parked[0].t1),
            (start + secs(55), start + secs(155))
        );
        let parked_s = |pass: u16| -> u64 {
            parked
                .iter()
                .filter(|l| l.pass == pass)
                .map(|l| l.t1 - l.t0)
                .sum()
        };
        assert_eq!((parked_s(0), parked_s(1)), (secs(100), secs(100)));
        // Pass 1 reaches the stop after 600 + 100 m at 10 m/s and 100 m
        // at 5 m/s (90 s), late in day 2's shift (day 1 ends 25 s into
        // pass 1): the stop is cut at the shift's end and resumed.
        let pass1: Vec<_> = parked.iter().filter(|l| l.pass == 1).collect();
        assert_eq!(pass1.len(), 2, "{pass1:?}");
        assert_eq!(pass1[0].t1 % DAY, secs(8 * 3600 + 180));
        assert_eq!(pass1[1].t0 % DAY, secs(8 * 3600));
    }
}
