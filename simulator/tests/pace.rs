//! Planned pace in whole rehearsals: the vans' schedule follows the plan,
//! the plan stays within its bounds and the shifts, and it updates meters
//! that driving past at one speed could not.

mod common;

use otavan_planning::geometry::Point;
use otavan_planning::time::as_secs_f64;
use otavan_sim::scenario::PaceKind;
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

/// A small town of basement meters with short contacts: 20 km/h past a
/// 25 m range is a few seconds, below the planner's 8 s minimum.
fn basement_town() -> Scenario {
    let mut s = common::small_town(1200);
    s.fleet.offset_min_m = 5.0;
    for (name, install) in s.fleet.install.iter_mut() {
        install.share = if name == "basement" { 0.6 } else { 0.2 };
    }
    s.campaign.min_contact_s = 8.0;
    s
}

fn run(scenario: &Scenario) -> Rehearsal {
    rehearse(scenario, "pace", &Options::default(), &mut |_| {}).unwrap()
}

/// The pace leg `p` lies on in pass `pass` of van `van`, if any.
fn on_leg(r: &Rehearsal, van: u16, pass: u16, p: Point) -> Option<&otavan_planning::pace::LegPace> {
    r.drives.paces[usize::from(van)][usize::from(pass)]
        .legs
        .iter()
        .find(|l| (l.from.distance(p) + p.distance(l.to) - l.length()).abs() < 1e-6)
}

#[test]
fn the_vans_follow_the_plan_within_its_bounds() {
    let mut s = basement_town();
    s.van.pace = PaceKind::Planned;
    let r = run(&s);
    let (max, min) = (s.van.speed_kmh / 3.6, s.van.min_speed_kmh / 3.6);
    let pace = &r.report.pace;
    assert!(pace.slowed_legs + pace.stops > 0, "{pace:?}");
    let horizon = otavan_sim::horizon(&s);
    for (passes, route) in r.drives.paces.iter().zip(&r.drives.routes) {
        assert_eq!(passes.len(), 3);
        for plan in passes {
            for leg in &plan.legs {
                assert!(leg.speed >= min - 1e-9 && leg.speed <= max + 1e-9);
                assert!(leg.stop.is_none_or(|s| s.seconds <= 60.0));
            }
            assert!(plan.extra_s(max) <= otavan_sim::pace::budget_s(&s, route, horizon) + 1e-6);
        }
    }
    // Every moving leg of the drive is at its plan leg's speed; every
    // parked one at a planned stop.
    for leg in &r.drives.legs {
        let mid = leg.from.lerp(leg.to, 0.5);
        let planned = on_leg(&r, leg.van, leg.pass, mid).expect("on the route");
        if leg.from == leg.to {
            assert!(
                r.drives.paces[usize::from(leg.van)][usize::from(leg.pass)]
                    .legs
                    .iter()
                    .any(|l| l.stop.is_some_and(|s| s.at == leg.from))
            );
        } else {
            let speed = leg.from.distance(leg.to) / as_secs_f64(leg.t1 - leg.t0);
            assert!(
                (speed - planned.speed).abs() < 1e-3 * planned.speed,
                "{leg:?}"
            );
        }
    }
    // All passes done within the campaign, the same kilometres.
    let mut constant = s.clone();
    constant.van.pace = PaceKind::Constant;
    let c = run(&constant);
    assert_eq!(r.report.van_passes, c.report.van_passes);
    assert!((r.report.van_km - c.report.van_km).abs() < 1e-6);
    assert!(r.report.van_hours > c.report.van_hours);
    let extra_h = pace.extra_s / 3600.0;
    assert!((r.report.van_hours - c.report.van_hours - extra_h).abs() < 0.01);
}

#[test]
fn a_planned_pace_updates_more_than_one_speed() {
    let mut s = basement_town();
    let constant = run(&s);
    s.van.pace = PaceKind::Planned;
    let planned = run(&s);
    assert!(
        planned.report.updated > constant.report.updated + 50,
        "planned {} vs constant {}",
        planned.report.updated,
        constant.report.updated
    );
    // Deterministic: the same scenario and seed, the same report.
    let again = run(&s);
    assert_eq!(
        serde_json::to_vec(&planned.report).unwrap(),
        serde_json::to_vec(&again.report).unwrap()
    );
}

#[test]
fn bad_pace_settings_are_named() {
    let named = |edit: &dyn Fn(&mut Scenario), key: &str| {
        let mut s = basement_town();
        edit(&mut s);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{key}: {err}");
    };
    named(&|s| s.van.pace_budget_share = 1.5, "van.pace_budget_share");
    named(&|s| s.van.min_speed_kmh = 30.0, "van.min_speed_kmh");
    named(&|s| s.van.min_speed_kmh = 0.0, "van.min_speed_kmh");
    named(&|s| s.van.max_stop_s = -1.0, "van.max_stop_s");
    named(
        &|s| s.van.pace_passes_per_meter = 0,
        "van.pace_passes_per_meter",
    );
    assert!(basement_town().validate().is_ok());
}
