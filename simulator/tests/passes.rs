//! `campaign.replan = "after-pass"`: the operator plans each pass for the
//! meters the last one missed, as `otavan campaign replan` does.

mod common;

use otavan_sim::live::{LiveOptions, rehearse_live};
use otavan_sim::scenario::Replan;
use otavan_sim::simulation::{Outcome, PassFigures};
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

/// A small town (as tests/rehearse.rs's) driven in `passes` passes, the
/// missed planned again after each.
fn town(passes: u32) -> Scenario {
    let mut s = common::small_town(1500);
    s.van.passes = passes;
    s.campaign.replan = Replan::AfterPass;
    s
}

fn run(scenario: &Scenario, seed: u64) -> Rehearsal {
    let options = Options {
        seed,
        patch_cache: None,
        record_frames: false,
    };
    rehearse(scenario, "test", &options, &mut |_| {}).unwrap()
}

fn per_pass(r: &Rehearsal) -> &[PassFigures] {
    r.report
        .per_pass
        .as_deref()
        .expect("after-pass reports per_pass")
}

#[test]
fn each_pass_plans_the_missed_of_the_last_and_the_figures_add_up() {
    let r = run(&town(3), 5);
    let passes = per_pass(&r);
    assert_eq!(passes.len(), 3, "{passes:?}");
    assert_eq!(r.report.van_passes, 3);
    for (i, p) in passes.iter().enumerate() {
        assert_eq!(p.pass, i as u32 + 1);
        assert_eq!(p.updated + p.missed, p.listed, "{p:?}");
        assert!(p.planned <= p.listed && p.silent <= p.missed, "{p:?}");
        assert!(p.planned > 0, "{p:?}");
    }
    for w in passes.windows(2) {
        assert_eq!(w[1].listed, w[0].missed, "{passes:?}");
    }
    // Every updated meter was on a pass's list, once.
    let updated: u64 = passes.iter().map(|p| p.updated).sum();
    assert_eq!(updated, r.report.updated);
    // The first list is every meter that needs the update and that a
    // gateway hears and a van passes.
    let reachable = r
        .run
        .meters
        .iter()
        .filter(|m| {
            !matches!(
                m.outcome,
                Outcome::AlreadyCurrent
                    | Outcome::Failed(
                        otavan_sim::simulation::Cause::NoLoraCoverage
                            | otavan_sim::simulation::Cause::NeverInRange
                    )
            )
        })
        .count() as u64;
    assert_eq!(passes[0].listed, reachable);
    // The second pass updates some of the first's missed.
    assert!(passes[1].updated > 0, "{passes:?}");
    // Deterministic, byte for byte.
    let again = run(&town(3), 5);
    assert_eq!(
        serde_json::to_vec(&r.report).unwrap(),
        serde_json::to_vec(&again.report).unwrap()
    );
}

#[test]
fn more_passes_update_more_of_the_same_list() {
    let one = run(&town(1), 9);
    let three = run(&town(3), 9);
    // The same meters are listed for the first pass (its contacts differ
    // only where the van turns: the next pass starts where it ended).
    assert_eq!(per_pass(&one)[0].listed, per_pass(&three)[0].listed);
    assert_eq!(per_pass(&one).len(), 1);
    assert_eq!(one.report.updated, per_pass(&one)[0].updated);
    assert!(three.report.updated > one.report.updated);
}

#[test]
fn the_default_replans_each_meter_and_reports_no_per_pass_figures() {
    let mut s = town(3);
    s.campaign.replan = Replan::PerMeter;
    let r = run(&s, 5);
    assert!(r.report.per_pass.is_none());
    assert!(r.run.passes.is_empty());
    let json = serde_json::to_string(&r.report).unwrap();
    assert!(!json.contains("per_pass"), "{json}");
}

#[test]
fn a_live_rehearsal_refuses_after_pass() {
    let error = rehearse_live(&town(2), "test", &LiveOptions::default(), &mut |_| {})
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("campaign.replan") && error.contains("analytic"),
        "{error}"
    );
}
