//! Live rehearsals: real client engines, the real LoRaWAN stack and the
//! real server's request handling for a few dozen meters.

use std::path::Path;

use lorawan::keys::AES128;
use lorawan::parser::{DataHeader, DataPayload, FRMPayload, PhyPayload, parse};
use otavan_loranet::DeviceKeys;
use otavan_loranet::keys::eui_hex;
use otavan_protocol::lora::DownlinkCommand;
use otavan_protocol::lora::multicast::McRequest;
use otavan_sim::live::{LiveOptions, rehearse_live};
use otavan_sim::scenario::WakeDelivery;
use otavan_sim::simulation::Outcome;
use otavan_sim::{Options, Scenario};

/// The town example, shrunk to `meters`.
fn town(meters: u32) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/town.toml");
    let mut s = Scenario::load(&path, &[]).unwrap();
    s.fleet.meters = meters;
    s
}

fn options(dir: &Path, seed: u64) -> LiveOptions {
    LiveOptions {
        base: Options {
            seed,
            patch_cache: Some(dir.join("patches")),
            record_frames: false,
        },
        meters: None,
        meters_dir: Some(dir.join("meters")),
        out_dir: dir.join("out"),
        lora_log: Some(dir.join("lora.jsonl")),
        compare: true,
    }
}

#[test]
fn live_meters_update_and_every_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let r = rehearse_live(&town(40), "town", &options(dir.path(), 1), &mut |_| {}).unwrap();
    let live = r.report.live.as_ref().unwrap();
    let checks = &live.checks;
    assert!(checks.passed(), "{checks:?}");
    assert_eq!(live.meters, 40);
    assert_eq!(checks.meters_checked, 40);
    // Every meter that says UPDATED has exactly the target; the others
    // exactly their source.
    assert_eq!(checks.exactly_target, r.report.updated);
    assert_eq!(checks.exactly_source + checks.exactly_target, 40);
    // Each confirmed itself: the van heard it, then its status uplink went
    // out (the client's self-test, not the rehearsal, decided).
    assert_eq!(checks.on_trial, 0);
    assert!(r.report.updated >= 30, "{:?}", r.report.failures);
    assert!(checks.reports_stored >= r.report.updated * 5);
    // Every meter signed every report, and the van verified each one.
    assert_eq!(checks.reports_verified, checks.reports_stored);
    assert_eq!(live.joins, 40);
    assert_eq!(checks.verified_signed_release, 0);
    // The analytic mode on the same meters agrees within a few meters.
    let analytic = r.report.analytic.as_ref().unwrap();
    assert!(
        (analytic.updated_fraction - r.report.updated_fraction).abs() <= 0.1,
        "analytic {} live {}",
        analytic.updated_fraction,
        r.report.updated_fraction
    );
    // The same limit from the same route and radio model, and the live
    // losses add up.
    assert_eq!(analytic.physical_limit, r.report.physical_limit);
    assert!(r.report.physical_limit > 0);
    assert_eq!(
        r.report.updated + r.report.losses.total(),
        r.report.meters - r.report.already_current
    );
    // The meters' directories are gone.
    let meters = std::fs::read_dir(dir.path().join("meters"))
        .unwrap()
        .count();
    assert_eq!(meters, 0);
    // Every LoRaWAN frame, with the session keys to decode it.
    let log = std::fs::read_to_string(dir.path().join("lora.jsonl")).unwrap();
    let frames: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(frames.iter().any(|f| f["kind"] == "join_request"));
    assert!(
        frames
            .iter()
            .any(|f| f["kind"] == "join_accept" && f["app_key"].is_string())
    );
    let downlinks = frames
        .iter()
        .filter(|f| f["direction"] == "down" && f["kind"] != "join_accept")
        .count();
    assert!(downlinks as u64 >= r.report.downlinks_sent);
    assert!(frames.iter().all(|f| f["phy_payload"].is_string()));
}

#[test]
fn a_live_run_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    // Power cuts too: where they land comes from the run's seed.
    let mut s = town(25);
    s.faults.power_cut_per_apply = 0.3;
    let run = |name: &str| {
        let r =
            rehearse_live(&s, "town", &options(&dir.path().join(name), 4), &mut |_| {}).unwrap();
        let mut csv = Vec::new();
        otavan_sim::report::write_meters_csv(&mut csv, &r.fleet, &r.radio, &r.run, &r.losses)
            .unwrap();
        (
            serde_json::to_string(&r.report).unwrap(),
            csv,
            r.report.live.unwrap().power_cuts,
        )
    };
    let (a, b) = (run("a"), run("b"));
    assert!(a.2 > 0, "no power cut to reproduce");
    assert_eq!(a.0, b.0);
    assert!(a.1 == b.1, "meters.csv differs");
}

#[test]
fn power_cuts_and_link_drops_hit_the_real_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = town(30);
    s.faults.power_cut_per_apply = 0.6;
    // A drop every half second on average: the sample update takes a few
    // tenths of a second to download.
    s.faults.link_drops_per_min = 120.0;
    let r = rehearse_live(&s, "town", &options(dir.path(), 2), &mut |_| {}).unwrap();
    let live = r.report.live.as_ref().unwrap();
    assert!(live.power_cuts > 0);
    assert!(r.report.incidents.get("power_cut").copied().unwrap_or(0) > 0);
    assert!(r.report.incidents.get("link_drop").copied().unwrap_or(0) > 0);
    // Whatever was cut, every meter is exactly old or exactly new, and
    // some were updated on a later try.
    assert!(live.checks.passed(), "{:?}", live.checks);
    assert!(live.checks.mismatched.is_empty());
    assert!(r.report.updated > 0);
}

/// Every apply is cut, at the start of a step drawn from the apply's own
/// steps (journal, directories, renames, sync, boot, commit): none
/// commits, so every meter recovers to exactly its source version, every
/// time, and the report store never hears UPDATED. (The client's
/// `a_power_cut_at_the_start_of_any_apply_step_leaves_the_old_version`
/// goes through every step in turn.)
#[test]
fn a_power_cut_in_every_apply_leaves_every_meter_at_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = town(20);
    s.faults.power_cut_per_apply = 1.0;
    let r = rehearse_live(&s, "town", &options(dir.path(), 5), &mut |_| {}).unwrap();
    let live = r.report.live.as_ref().unwrap();
    assert!(live.checks.passed(), "{:?}", live.checks);
    assert_eq!(r.report.updated, 0);
    assert_eq!(live.checks.exactly_source, 20);
    // Meters were cut again on later passes, after each recovery.
    assert!(live.power_cuts > 20, "{} power cuts", live.power_cuts);
    assert_eq!(r.report.incidents["power_cut"], live.power_cuts);
}

#[test]
fn live_mode_needs_a_release_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = town(5);
    s.release.release_dir = None;
    let err = rehearse_live(&s, "town", &options(dir.path(), 1), &mut |_| {})
        .err()
        .unwrap();
    assert!(err.to_string().contains("release_dir"), "{err}");
}

#[test]
fn a_signed_release_is_verified_by_every_meter() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.key");
    let keys = otavan_protocol::descriptor::KeyPair::from_seed([7; 32]);
    std::fs::write(&key, keys.to_file()).unwrap();
    let mut s = town(20);
    s.release.signing_key = Some(key);
    // Power cuts too: the kept descriptor and trusted time go through them.
    s.faults.power_cut_per_apply = 0.3;
    let run = |name: &str| {
        rehearse_live(&s, "town", &options(&dir.path().join(name), 3), &mut |_| {}).unwrap()
    };
    let r = run("a");
    let live = r.report.live.as_ref().unwrap();
    assert!(live.checks.passed(), "{:?}", live.checks);
    assert!(r.report.updated > 10, "{:?}", r.report.failures);
    // Every updated meter verified the chain from the run's root key down
    // to the target's descriptor, recorded its counter and kept the
    // descriptor; unsigned runs record none.
    assert_eq!(live.checks.verified_signed_release, r.report.updated);
    // Signed meters asked the network for the time, and the run is still
    // a function of its scenario and seed.
    let again = run("b");
    assert_eq!(
        serde_json::to_string(&r.report).unwrap(),
        serde_json::to_string(&again.report).unwrap()
    );
}

/// A 16-byte key from the frame log's hex.
fn key(hex_key: &serde_json::Value) -> AES128 {
    let bytes = hex::decode(hex_key.as_str().unwrap()).unwrap();
    AES128(bytes.try_into().unwrap())
}

/// `[campaign] wake = "multicast"`: each meter gets its group and class C
/// window by unicast TS005 setup, then one multicast WAKE per street
/// segment wakes all of its meters, which update through the real code;
/// every WAKE frame decodes with a standard decoder given the group's
/// keys from the frame log.
#[test]
fn one_multicast_wake_per_street_wakes_its_meters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = town(40);
    s.campaign.wake = WakeDelivery::Multicast;
    let mut options = options(dir.path(), 6);
    options.compare = false;
    let r = rehearse_live(&s, "town", &options, &mut |_| {}).unwrap();
    let live = r.report.live.as_ref().unwrap();
    assert!(live.checks.passed(), "{:?}", live.checks);
    let multicast = live.multicast.as_ref().unwrap();
    assert!(multicast.groups >= 2, "{multicast:?}");
    assert!(multicast.grouped_meters >= 30, "{multicast:?}");
    assert_eq!(multicast.wakes_sent, multicast.groups, "{multicast:?}");
    // One frame woke many meters: more meters accepted a WAKE than
    // frames went out.
    assert!(
        multicast.frames.accepted > multicast.wakes_sent,
        "{multicast:?}"
    );
    assert_eq!(multicast.frames.refused, 0, "{multicast:?}");
    assert!(r.report.updated >= 30, "{:?}", r.report.failures);
    assert_eq!(live.checks.exactly_target, r.report.updated);

    let log = std::fs::read_to_string(dir.path().join("lora.jsonl")).unwrap();
    let wakes: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|f| f["window"] == "class_c")
        .collect();
    assert_eq!(wakes.len() as u64, multicast.wakes_sent);
    for frame in &wakes {
        assert!(matches!(
            DownlinkCommand::decode(&payload_of(frame)),
            Ok(DownlinkCommand::Wake(_))
        ));
    }
}

/// The frame log's lines.
fn frame_log(path: &Path) -> Vec<serde_json::Value> {
    let log = std::fs::read_to_string(path).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect()
}

/// A downlink's application payload, as a standard decoder reads it with
/// the keys the frame log gives: MIC checked, decrypted; a multicast
/// frame is unconfirmed and carries no MAC commands.
fn payload_of(frame: &serde_json::Value) -> Vec<u8> {
    let phy = hex::decode(frame["phy_payload"].as_str().unwrap()).unwrap();
    let Ok(PhyPayload::Data(DataPayload::Encrypted(data))) = parse(phy) else {
        panic!("not a data frame: {frame}")
    };
    let fcnt = frame["fcnt"].as_u64().unwrap() as u32;
    if frame["window"] == "class_c" {
        assert!(!data.is_confirmed() && data.fhdr().data().is_empty());
    }
    assert!(
        data.validate_mic(&key(&frame["nwk_s_key"]), fcnt),
        "{frame}"
    );
    let plain = data
        .decrypt(None, Some(&key(&frame["app_s_key"])), fcnt)
        .unwrap();
    let FRMPayload::Data(payload) = plain.frm_payload() else {
        panic!("no payload: {frame}")
    };
    payload.to_vec()
}

/// `[campaign] wake = "standing"`: each meter gets its group and daily
/// slot once, at installation (a unicast StandingSessionReq at its first
/// uplinks); then one multicast WAKE in the group's slot wakes the
/// street, with no unicast WAKE to its meters before the pass. Every
/// frame decodes with a standard decoder and the log's keys; the run is
/// reproducible.
#[test]
fn standing_sessions_wake_each_street_by_one_frame_in_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = town(40);
    s.campaign.wake = WakeDelivery::Standing;
    let mut options = options(dir.path(), 6);
    options.compare = false;
    let r = rehearse_live(&s, "town", &options, &mut |_| {}).unwrap();
    let live = r.report.live.as_ref().unwrap();
    assert!(live.checks.passed(), "{:?}", live.checks);
    assert!(live.multicast.is_none());
    let standing = live.standing.as_ref().unwrap();
    assert!(standing.groups >= 2, "{standing:?}");
    assert!(standing.grouped_meters >= 30, "{standing:?}");
    assert!(
        standing.setup_frames <= standing.grouped_meters,
        "{standing:?}"
    );
    assert!(
        standing.setup_frames + 3 >= standing.grouped_meters,
        "{standing:?}"
    );
    assert!(standing.setup_airtime_s > 0.0, "{standing:?}");
    assert!(standing.wakes_sent >= standing.groups, "{standing:?}");
    assert!(
        standing.frames.accepted > standing.wakes_sent,
        "{standing:?}"
    );
    assert_eq!(standing.frames.refused, 0, "{standing:?}");
    assert!(r.report.updated >= 30, "{:?}", r.report.failures);
    assert_eq!(live.checks.exactly_target, r.report.updated);

    let log = frame_log(&dir.path().join("lora.jsonl"));
    // Each member's group, from its setup frame (FPort 201).
    let mut group_of = std::collections::BTreeMap::new();
    let setups = log
        .iter()
        .filter(|f| f["fport"] == 201 && f["direction"] == "down");
    for frame in setups {
        let requests = McRequest::decode_all(&payload_of(frame)).unwrap();
        let [
            McRequest::GroupSetup(setup),
            McRequest::StandingSession(session),
        ] = &requests[..]
        else {
            panic!("{requests:?}")
        };
        assert_eq!(session.period_s(), 86_400);
        let eui = frame["dev_eui"].as_str().unwrap().to_owned();
        assert!(
            group_of.insert(eui, setup.mc_addr).is_none(),
            "one setup each"
        );
    }
    assert_eq!(group_of.len() as u64, standing.setup_frames);
    // The WAKEs in the slots, and when each group's last went out.
    let mut last_wake = std::collections::BTreeMap::new();
    let wakes: Vec<&serde_json::Value> = log.iter().filter(|f| f["window"] == "class_c").collect();
    assert_eq!(wakes.len() as u64, standing.wakes_sent);
    for frame in wakes {
        assert!(matches!(
            DownlinkCommand::decode(&payload_of(frame)),
            Ok(DownlinkCommand::Wake(_))
        ));
        let addr = u32::from_str_radix(frame["dev_addr"].as_str().unwrap(), 16).unwrap();
        last_wake.insert(addr, frame["time_s"].as_f64().unwrap());
    }
    // No unicast WAKE reached a set-up meter before its group's pass (only
    // a meter the pass missed gets one, for a later pass); most got none,
    // and each of those updated: a frame in its slot woke it.
    let updated: std::collections::BTreeSet<String> = (r.run.meters.iter().enumerate())
        .filter(|(_, meter)| matches!(meter.outcome, Outcome::Updated(_)))
        .map(|(m, _)| eui_hex(&DeviceKeys::simulated(m as u64 + 1).dev_eui))
        .collect();
    let mut without_unicast = 0;
    for (eui, addr) in &group_of {
        let unicast: Vec<f64> = log
            .iter()
            .filter(|f| f["dev_eui"] == eui.as_str() && f["direction"] == "down")
            .filter(|f| f["fport"] == 200)
            .map(|f| f["time_s"].as_f64().unwrap())
            .collect();
        assert!(
            unicast.iter().all(|t| *t > last_wake[addr]),
            "{eui}: {unicast:?}"
        );
        if unicast.is_empty() {
            assert!(updated.contains(eui), "{eui}");
            without_unicast += 1;
        }
    }
    assert!(without_unicast >= 25, "{without_unicast}");

    // The same scenario and seed: the same report, byte for byte.
    let again = rehearse_live(&s, "town", &options, &mut |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&r.report).unwrap(),
        serde_json::to_string(&again.report).unwrap()
    );
}
