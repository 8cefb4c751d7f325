//! Standing multicast sessions in the analytic model (`campaign.wake =
//! "standing"`): groups set up at installation are woken by multicast
//! alone, on their first pass and, for the members a pass missed, on the
//! next.

use std::path::Path;

use otavan_sim::scenario::{Replan, WakeDelivery};
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

fn town(wake: WakeDelivery) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/town.toml");
    let mut s = Scenario::load(&path, &[]).unwrap();
    // One gateway for the whole town: unicast WAKEs crowd its duty cycle.
    s.lora.gateways = 1;
    s.campaign.wake = wake;
    s
}

fn run(s: &Scenario) -> Rehearsal {
    rehearse(s, "town", &Options::default(), &mut |_| {}).unwrap()
}

/// Against unicast WAKEs through one busy gateway: a small part of the
/// downlink airtime, no WAKE lost to the duty cycle, more meters updated,
/// on the same route (the same physical limit).
#[test]
fn standing_groups_wake_the_town_for_a_fraction_of_the_airtime() {
    let u = run(&town(WakeDelivery::Unicast)).report;
    let s = run(&town(WakeDelivery::Standing)).report;
    let figures = s.multicast.unwrap();
    let standing = figures.standing.unwrap();
    assert!(
        figures.multicast_meters > 9 * figures.unicast_meters,
        "{figures:?}"
    );
    assert_eq!(standing.setup_frames, figures.multicast_meters);
    assert!(
        s.lora.downlink_airtime_s * 10.0 < u.lora.downlink_airtime_s,
        "standing {} s, unicast {} s",
        s.lora.downlink_airtime_s,
        u.lora.downlink_airtime_s
    );
    assert!(u.losses.wake_not_delivered > 50, "{:?}", u.losses);
    assert!(
        s.losses.wake_not_delivered * 10 < u.losses.wake_not_delivered,
        "standing {:?} unicast {:?}",
        s.losses,
        u.losses
    );
    assert!(s.updated > u.updated, "{} vs {}", s.updated, u.updated);
    assert_eq!(s.physical_limit, u.physical_limit);
}

/// The members a pass missed (cut sessions, dropped links) are woken for
/// their next pass by their group's frame again: the campaign queues
/// unicast WAKEs for a few meters only, far fewer than the misses.
#[test]
fn members_a_pass_missed_are_woken_again_by_multicast() {
    let mut scenario = town(WakeDelivery::Standing);
    scenario.faults.link_drops_per_min = 20.0;
    let s = run(&scenario).report;
    let figures = s.multicast.unwrap();
    let again = figures.standing.unwrap().woken_again;
    assert!(again > 20, "{figures:?}");
    // Unicast WAKEs go to the groups served by unicast, and to the
    // members no slot reached in time: fewer than those woken again.
    let unicast = s.lora.wakes_planned - figures.unicast_meters;
    assert!(
        unicast < again,
        "{unicast} unicast WAKEs, {again} woken again"
    );
}

#[test]
fn a_standing_run_is_reproducible() {
    let s = town(WakeDelivery::Standing);
    let a = serde_json::to_string(&run(&s).report).unwrap();
    let b = serde_json::to_string(&run(&s).report).unwrap();
    assert_eq!(a, b);
}

#[test]
fn standing_sessions_need_per_meter_replanning() {
    let mut s = town(WakeDelivery::Standing);
    s.campaign.replan = Replan::AfterPass;
    let err = rehearse(&s, "town", &Options::default(), &mut |_| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("campaign.wake"), "{err}");
}
