//! Multicast WAKE in the analytic model: the planner takes multicast for
//! the groups whose unicast WAKEs would overflow a gateway's duty cycle,
//! and unicast everywhere else.

use std::path::Path;

use otavan_sim::scenario::WakeDelivery;
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

fn town() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/town.toml");
    Scenario::load(&path, &[]).unwrap()
}

fn run(s: &Scenario) -> Rehearsal {
    rehearse(s, "town", &Options::default(), &mut |_| {}).unwrap()
}

/// One gateway for the whole town: the WAKEs of a street in the hour
/// before its pass overflow the gateway's duty cycle, so multicast serves
/// those streets, and fewer meters lose their WAKE.
#[test]
fn multicast_relieves_a_busy_gateway() {
    let mut unicast = town();
    unicast.lora.gateways = 1;
    let mut multicast = unicast.clone();
    multicast.campaign.wake = WakeDelivery::Multicast;
    let (u, m) = (run(&unicast).report, run(&multicast).report);
    let figures = m.multicast.unwrap();
    assert!(figures.multicast_groups > 0, "{figures:?}");
    assert!(figures.multicast_groups < figures.groups, "{figures:?}");
    assert!(
        m.losses.wake_not_delivered * 2 < u.losses.wake_not_delivered,
        "multicast {:?} unicast {:?}",
        m.losses,
        u.losses
    );
    assert!(m.updated > u.updated, "{} vs {}", m.updated, u.updated);
    // The same route and radio: the same limit.
    assert_eq!(m.physical_limit, u.physical_limit);
}

/// Where the gateways keep up, every group is served by unicast: the run
/// is the unicast run.
#[test]
fn with_gateways_to_spare_every_group_stays_unicast() {
    let unicast = town();
    let mut multicast = unicast.clone();
    multicast.campaign.wake = WakeDelivery::Multicast;
    let (u, mut m) = (run(&unicast).report, run(&multicast).report);
    let figures = m.multicast.take().unwrap();
    assert_eq!(figures.multicast_groups, 0, "{figures:?}");
    assert!(figures.unicast_meters > 4000, "{figures:?}");
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        serde_json::to_string(&u).unwrap()
    );
}

#[test]
fn a_multicast_run_is_reproducible() {
    let mut s = town();
    s.lora.gateways = 1;
    s.campaign.wake = WakeDelivery::Multicast;
    let a = serde_json::to_string(&run(&s).report).unwrap();
    let b = serde_json::to_string(&run(&s).report).unwrap();
    assert_eq!(a, b);
}

#[test]
fn multicast_needs_per_meter_replanning() {
    let mut s = town();
    s.campaign.wake = WakeDelivery::Multicast;
    s.campaign.replan = otavan_sim::scenario::Replan::AfterPass;
    let err = rehearse(&s, "town", &Options::default(), &mut |_| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("campaign.wake"), "{err}");
}
