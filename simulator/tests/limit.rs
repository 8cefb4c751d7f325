//! The physical limit and the loss split: one straight street worked out by
//! hand, and the split adding up on town-sized runs (analytic and written).

use otavan_planning::limit::Reach;
use otavan_sim::losses::{Loss, Losses};
use otavan_sim::simulation::{Cause, Outcome};
use otavan_sim::{Options, Rehearsal, Scenario, rehearse};

fn rooftop_gateways(s: &mut Scenario) {
    s.lora.path_loss_d0_m = 1000.0;
    s.lora.path_loss_d0_db = 128.95;
    s.lora.path_loss_exponent = 2.32;
    s.lora.shadowing_sigma_db = 7.8;
}

fn run(s: &Scenario, seed: u64) -> Rehearsal {
    let options = Options {
        seed,
        ..Options::default()
    };
    rehearse(s, "limit", &options, &mut |_| {}).unwrap()
}

/// One straight 2 km street driven once at 20 km/h, an access point too
/// big to share: a meter at offset d with range R sees the van while
/// |x_van - x| <= h = sqrt(R^2 - d^2), cut at the street's ends, so its one
/// contact lasts T = (min(L, x + h) - max(0, x - h)) / v, and it is
/// updatable exactly when T - (association + overhead) moves its bytes at
/// its own goodput.
#[test]
fn one_straight_street_matches_the_closed_form() {
    let mut s = Scenario::default();
    rooftop_gateways(&mut s);
    s.fleet.meters = 300;
    s.fleet.streets = 1;
    s.fleet.street_length_m = 2000.0;
    s.fleet.offset_min_m = 2.0;
    s.fleet.offset_max_m = 60.0;
    s.van.passes = 1;
    s.van.speed_kmh = 20.0;
    s.van.ap_capacity_mbps = 100_000.0;
    s.van.ap_max_clients = 10_000;
    s.campaign.duration_days = 3.0;
    let r = run(&s, 7);

    let (length, v) = (2000.0f64, 20.0 / 3.6);
    let street_y = r.fleet.streets_y[0];
    let setup = s.wifi.assoc_median_s + s.wifi.session_overhead_s;
    let sizes = &s.release.sizes;
    let (mut updatable, mut short, mut never) = (0, 0, 0);
    for (m, (spec, profile)) in r.fleet.meters.iter().zip(&r.fleet.profiles).enumerate() {
        let version = r.fleet.versions[usize::from(profile.version)].to_string();
        let expected = match sizes.get(&version) {
            None => Reach::NotCandidate,
            Some(_) if r.radio.sf(m).is_none() => Reach::NotCandidate,
            Some(&bytes) => {
                let (range, d) = (spec.range(), (spec.pos.y - street_y).abs());
                if d >= range {
                    Reach::NeverInRange
                } else {
                    let h = (range * range - d * d).sqrt();
                    let contact = ((length.min(spec.pos.x + h)) - (spec.pos.x - h).max(0.0)) / v;
                    if (contact - setup) * profile.goodput_bps >= bytes as f64 - 1.0 {
                        Reach::Updatable
                    } else {
                        Reach::TooShort
                    }
                }
            }
        };
        assert_eq!(r.reach[m], expected, "meter {m}: {spec:?}, {profile:?}");
        match expected {
            Reach::Updatable => updatable += 1,
            Reach::TooShort => short += 1,
            Reach::NeverInRange => never += 1,
            Reach::NotCandidate => {}
        }
    }
    // The street has all three kinds, so the flags are tested, not assumed.
    assert!(
        updatable > 0 && short > 0 && never > 0,
        "{updatable} {short} {never}"
    );
    assert_eq!(r.report.physical_limit, updatable);
    assert!(r.report.updated <= updatable + 3, "{}", r.report.updated);
    assert_eq!(
        r.report.planning_efficiency,
        Some(r.report.updated as f64 / updatable as f64)
    );
    assert_eq!(r.report.losses.too_short_at_planned_speed, {
        let failed_short = r
            .reach
            .iter()
            .zip(&r.run.meters)
            .filter(|(reach, m)| {
                **reach == Reach::TooShort && matches!(m.outcome, Outcome::Failed(_))
            })
            .count();
        failed_short as u64
    });
}

/// `updated` plus the losses is every meter not already current, meter by
/// meter as in the totals, and meters.csv says the same.
#[test]
fn the_losses_add_up_to_every_meter_not_updated() {
    let mut s = Scenario::default();
    rooftop_gateways(&mut s);
    s.fleet.meters = 1500;
    s.fleet.streets = 6;
    s.fleet.street_length_m = 800.0;
    s.fleet.offset_max_m = 20.0;
    s.lora.gateways = 2;
    s.van.passes = 3;
    s.van.shift_hours = 1.0;
    s.campaign.duration_days = 6.0;
    s.faults.link_drops_per_min = 2.0;
    s.faults.power_cut_per_apply = 0.2;
    for speed in [20.0, 60.0] {
        s.van.speed_kmh = speed;
        let r = run(&s, 3);
        let report = &r.report;
        assert_eq!(
            report.updated + report.losses.total(),
            report.meters - report.already_current,
            "{speed} km/h: {:?}",
            report.losses
        );
        assert_eq!(Losses::count(&r.losses), report.losses);
        for ((loss, meter), reach) in r.losses.iter().zip(&r.run.meters).zip(&r.reach) {
            match meter.outcome {
                Outcome::Updated(_) | Outcome::AlreadyCurrent => assert_eq!(*loss, None),
                Outcome::Failed(Cause::NeverInRange | Cause::NoLoraCoverage) => {
                    assert_eq!(*loss, Some(Loss::NotReachable))
                }
                Outcome::Failed(_) if *reach == Reach::Updatable => assert!(matches!(
                    loss,
                    Some(Loss::WakeNotDelivered | Loss::Faults | Loss::MissedByPlan)
                )),
                Outcome::Failed(_) => assert!(matches!(
                    loss,
                    Some(Loss::NotReachable | Loss::TooShortAtPlannedSpeed)
                )),
            }
        }
        assert!(report.physical_limit > 0);
        assert!(
            report.losses.faults > 0,
            "{speed} km/h: {:?}",
            report.losses
        );

        let dir = tempfile::tempdir().unwrap();
        otavan_sim::output::write(dir.path(), &s, &r).unwrap();
        let mut csv = csv::Reader::from_path(dir.path().join("meters.csv")).unwrap();
        let column = csv
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "loss")
            .unwrap();
        let mut from_csv = Vec::new();
        for row in csv.records() {
            let row = row.unwrap();
            from_csv.push(row[column].to_string());
        }
        let expected: Vec<String> = r
            .losses
            .iter()
            .map(|l| l.map_or("", Loss::as_str).to_string())
            .collect();
        assert_eq!(from_csv, expected);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["physical_limit"], report.physical_limit);
        for key in [
            "not_reachable",
            "too_short_at_planned_speed",
            "wake_not_delivered",
            "faults",
            "missed_by_plan",
        ] {
            assert!(json["losses"][key].is_u64(), "{key}");
        }
    }
}
