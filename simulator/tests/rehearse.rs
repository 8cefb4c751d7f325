//! Whole rehearsals through the library: determinism, monotonicity in the
//! van's speed, the gateways' duty cycle, faults and resume.

mod common;

use std::path::Path;

use otavan_sim::radio::verify_duty_cycle;
use otavan_sim::simulation::{Cause, Outcome};
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

/// A small town with explicit update sizes (no release tree needed).
fn town(meters: u32) -> Scenario {
    common::small_town(meters)
}

fn run(scenario: &Scenario, seed: u64) -> Rehearsal {
    let options = Options {
        seed,
        patch_cache: None,
        record_frames: true,
    };
    rehearse(scenario, "test", &options, &mut |_| {}).unwrap()
}

fn report_bytes(r: &Rehearsal) -> Vec<u8> {
    serde_json::to_vec_pretty(&r.report).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_report_byte_for_byte() {
    let s = town(1500);
    let a = run(&s, 42);
    let b = run(&s, 42);
    assert_eq!(report_bytes(&a), report_bytes(&b));
    let dir = tempfile::tempdir().unwrap();
    let files_a = otavan_sim::output::write(&dir.path().join("a"), &s, &a).unwrap();
    otavan_sim::output::write(&dir.path().join("b"), &s, &b).unwrap();
    for file in files_a {
        let name = file.file_name().unwrap();
        let other = dir.path().join("b").join(name);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            std::fs::read(&other).unwrap(),
            "{}",
            name.to_string_lossy()
        );
    }
    let c = run(&s, 43);
    assert_ne!(report_bytes(&a), report_bytes(&c));
    assert!(a.report.updated > 0, "{:?}", a.report.failures);
}

#[test]
fn a_faster_van_with_one_pass_never_updates_more_meters() {
    let mut s = town(1500);
    s.van.passes = 1;
    s.van.shift_hours = 8.0;
    for seed in [1, 2, 3] {
        let mut previous = u64::MAX;
        for speed in [5.0, 10.0, 20.0, 35.0, 60.0] {
            s.van.speed_kmh = speed;
            let updated = run(&s, seed).report.updated;
            assert!(
                updated <= previous,
                "seed {seed}: {speed} km/h updates {updated}, slower {previous}"
            );
            previous = updated;
        }
        assert!(previous > 0 || s.van.speed_kmh > 50.0);
    }
}

#[test]
fn gateways_never_exceed_their_duty_cycle() {
    // Many meters, one gateway, long uplink intervals: WAKEs crowd the
    // gateway and it must refuse some.
    let mut s = town(6000);
    s.lora.gateways = 1;
    s.fleet.uplink_intervals = [("30m".to_string(), 1.0)].into_iter().collect();
    let r = run(&s, 7);
    let frames = r.radio.frames();
    assert_eq!(frames.len() as u64, r.report.downlinks_sent);
    assert!(frames.len() > 500, "{}", frames.len());
    verify_duty_cycle(frames).unwrap();
    // The RX2 sub-band carried some of them when RX1's was resting.
    assert!(frames.iter().any(|f| f.band == Some(4)));
    assert!(frames.iter().any(|f| f.band == Some(2)));
}

#[test]
fn a_power_cut_keeps_the_meter_old_until_a_later_pass() {
    let mut s = town(800);
    s.faults.power_cut_per_apply = 1.0;
    let r = run(&s, 3);
    assert_eq!(r.report.updated, 0);
    assert!(r.report.failures.get("power_cut").copied().unwrap_or(0) > 0);

    s.faults.power_cut_per_apply = 0.5;
    let r = run(&s, 3);
    let cut = r.report.incidents.get("power_cut").copied().unwrap_or(0);
    assert!(cut > 0);
    // Meters whose first apply was cut updated on a later pass.
    let retried = r
        .run
        .meters
        .iter()
        .filter(|m| matches!(m.outcome, Outcome::Updated(_)) && m.sessions >= 2)
        .count();
    assert!(retried > 0);
}

#[test]
fn a_dropped_link_resumes_on_the_next_pass_without_downloading_twice() {
    let mut s = town(800);
    s.faults.link_drops_per_min = 4.0;
    s.faults.power_cut_per_apply = 0.0;
    s.van.speed_kmh = 5.0;
    s.release.sizes = [("1.0.0".to_string(), 600_000)].into_iter().collect();
    let r = run(&s, 5);
    assert!(r.report.incidents.get("link_drop").copied().unwrap_or(0) > 0);
    let mut resumed = 0;
    for m in &r.run.meters {
        match m.outcome {
            Outcome::Updated(_) => {
                // Exactly the update, however many sessions it took.
                assert!((m.bytes - 600_000.0).abs() < 1.0, "{}", m.bytes);
                resumed += usize::from(m.sessions >= 2);
            }
            _ => assert!(m.bytes <= 600_000.0 + 1.0),
        }
    }
    assert!(resumed > 0);
}

#[test]
fn failures_name_their_causes() {
    // Meters far from every street the van drives, and no LoRa at all.
    let mut s = town(300);
    s.fleet.streets = 1;
    s.fleet.offset_min_m = 400.0;
    s.fleet.offset_max_m = 450.0;
    let r = run(&s, 1);
    assert_eq!(r.report.updated, 0);
    assert_eq!(
        r.report.failures.get(Cause::NeverInRange.as_str()),
        Some(&300)
    );

    let mut s = town(300);
    s.lora.tx_power_dbm = -60.0;
    let r = run(&s, 1);
    assert_eq!(r.report.failures.get("no_lora_coverage"), Some(&300));
    assert!(r.report.fuota_baseline.updated_fraction < 1e-9);
}

#[test]
fn sizes_come_from_the_release_tree_with_or_without_deltas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let cache = tempfile::tempdir().unwrap();
    let mut s = town(10);
    s.base_dir = root;
    s.release.release_dir = Some("releases".into());
    s.fleet.versions = [("1.0.0".to_string(), 1.0)].into_iter().collect();
    let with = otavan_sim::release::update_sizes(&s, Some(cache.path().into())).unwrap();
    s.release.deltas = false;
    let without = otavan_sim::release::update_sizes(&s, Some(cache.path().into())).unwrap();
    assert_eq!(with.target.to_string(), "1.1.0");
    let v = otavan_protocol::Version::parse("1.0.0").unwrap();
    let (a, b) = (with.bytes[&v], without.bytes[&v]);
    // The full image is 16 KiB; its patch is smaller (and the manifest with
    // a patch entry a little longer).
    assert!(b > a + 8_000, "with deltas {a}, without {b}");
    assert!(b > 16_384);
}
