//! `replan`'s logic on a street driven one day and again the next.

use super::*;
use crate::clock;
use crate::reports_csv;

/// Metres per degree of latitude (the projection's).
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

fn at(text: &str) -> OffsetDateTime {
    clock::parse(text).unwrap()
}

/// An east-west street along latitude 0, 2226 m, driven from 09:00 at
/// 18 km/h.
fn street() -> Vec<Waypoint> {
    vec![
        Waypoint {
            line: 2,
            lat: 0.0,
            lon: 0.0,
            time: Some(at("2025-06-02T09:00:00Z")),
        },
        Waypoint {
            line: 3,
            lat: 0.0,
            lon: 0.02,
            time: None,
        },
    ]
}

fn eui(n: u8) -> DevEui {
    DevEui([0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0, n])
}

/// An indoor meter 10 m off the street, `x_m` along it, hourly.
fn meter(n: u8, x_m: f64) -> Meter {
    Meter {
        line: u64::from(n) + 1,
        dev_eui: eui(n),
        lat: 10.0 / M_PER_DEG,
        lon: x_m / M_PER_DEG,
        install: "indoor".into(),
        uplink_interval_s: 3600,
        version: Some("1.0.0".parse().unwrap()),
        last_uplink: None,
        root_key: None,
    }
}

fn settings(start: &str, campaign: u16) -> Settings {
    Settings {
        speed_kmh: 18.0,
        campaign,
        target: Some("2.0.0".parse().unwrap()),
        ..Settings::new(at(start))
    }
}

/// Meters 1 to 4 at 1500, 400, 1100 and 700 m: the first day's plan.
fn first_day() -> (Vec<Meter>, Vec<PlanRow>) {
    let meters = vec![
        meter(1, 1500.0),
        meter(2, 400.0),
        meter(3, 1100.0),
        meter(4, 700.0),
    ];
    let plan = plan::plan(&meters, &street(), &settings("2025-06-02T06:00:00Z", 7)).unwrap();
    assert_eq!(plan.rows.len(), 4);
    (meters, plan.rows)
}

fn reports(rows: &str) -> Reports {
    let text =
        format!("time,device_id,from_version,to_version,state,error,source,verified\n{rows}");
    reports_csv::parse(std::path::Path::new("REPORTS.csv"), text.as_bytes()).unwrap()
}

#[test]
fn the_missed_are_planned_again_for_the_next_day_in_route_order() {
    let (meters, old) = first_day();
    // 1 updated, 2 failed, 3 said it runs 2.0.0 over LoRa, 4 said nothing.
    let reports = reports(
        "2025-06-02T09:05:00.000Z,70B3D57ED0000001,1.0.0,2.0.0,UPDATED,,van,verified\n\
         2025-06-02T09:02:00.000Z,70B3D57ED0000002,1.0.0,2.0.0,FAILED,timeout,van,verified\n\
         2025-06-02T09:30:00.000Z,70B3D57ED0000003,2.0.0,2.0.0,UPDATED,,lora,network\n\
         2025-06-02T09:31:00.000Z,70B3D57ED0000009,1.0.0,2.0.0,UPDATED,,van,verified\n",
    );
    let shift = next_shift(&old, &street(), None, None).unwrap();
    // The old shift ends with meter 1's contact, around 09:05; the van
    // leaves again at 09:00 the next day.
    let end = old_shift_end(&old).unwrap();
    assert_eq!(shift.start, end);
    assert!(end > at("2025-06-02T09:04:00Z") && end < at("2025-06-02T09:07:00Z"));
    assert_eq!(shift.waypoints[0].time, Some(at("2025-06-03T09:00:00Z")));
    let mut s = settings("2025-06-02T06:00:00Z", 8);
    s.start = shift.start;
    let next = replan(&old, &reports, &meters, &shift.waypoints, &s).unwrap();
    let planned: Vec<DevEui> = next.rows.iter().map(|r| r.dev_eui).collect();
    // Route order: 400 m before 700 m.
    assert_eq!(planned, [eui(2), eui(4)]);
    assert!(next.rows.iter().all(|r| r.wake.campaign == 8));
    assert!(
        next.rows
            .iter()
            .all(|r| r.expected_contact_at > at("2025-06-03T09:00:00Z")
                && r.enqueue_at >= shift.start)
    );
    assert_eq!(
        next.summary,
        ReplanSummary {
            tally: Tally {
                listed: 4,
                done: 2,
                missed: 2,
                silent: 1,
                planned_again: 2,
                not_reachable: 0,
                at_target: 0,
            },
            report_rows: 4,
            reported_outside_plan: 1,
        }
    );
}

#[test]
fn a_meter_the_next_shift_cannot_reach_is_counted() {
    let (meters, old) = first_day();
    let shift = next_shift(&old, &street(), None, None).unwrap();
    // The van only drives the first 800 m of the street the next day.
    let mut short = shift.waypoints.clone();
    short[1].lon = 800.0 / M_PER_DEG;
    let mut s = settings("2025-06-02T06:00:00Z", 8);
    s.start = shift.start;
    let next = replan(&old, &Reports::default(), &meters, &short, &s).unwrap();
    let t = next.summary.tally;
    assert_eq!(
        (t.missed, t.silent, t.planned_again, t.not_reachable),
        (4, 4, 2, 2)
    );
    assert_eq!(next.plan.never_in_range, 2);
}

#[test]
fn a_status_uplink_gives_the_phase_of_a_missed_meter() {
    // A daily meter without last_uplink cannot be planned (its interval
    // is longer than a window); its WIFI_JOIN_FAILED status at 09:40:00
    // says its uplinks fall at 09:40.
    let mut daily = meter(5, 900.0);
    daily.uplink_interval_s = 86_400;
    let mut old = first_day().1;
    old.truncate(1);
    old[0].dev_eui = daily.dev_eui;
    let shift = next_shift(&old, &street(), None, None).unwrap();
    let mut s = settings("2025-06-02T06:00:00Z", 8);
    s.start = shift.start;
    let run =
        |reports: &Reports| replan(&old, reports, &[daily.clone()], &shift.waypoints, &s).unwrap();
    let silent = run(&Reports::default());
    assert_eq!(
        (
            silent.summary.tally.planned_again,
            silent.plan.interval_too_long
        ),
        (0, 1)
    );
    let heard = run(&reports(
        "2025-06-02T09:40:00.000Z,70B3D57ED0000005,1.0.0,1.0.0,WIFI_JOIN_FAILED,,lora,network\n",
    ));
    assert_eq!(
        (heard.summary.tally.planned_again, heard.plan.phase_known),
        (1, 1)
    );
    // The van passes at about 09:03 the next day: the WAKE rides on this
    // day's 09:40 uplink, queued before it, with a delay of about 23 h.
    let row = &heard.rows[0];
    assert!(
        row.enqueue_at >= shift.start && row.enqueue_at < at("2025-06-02T09:40:00Z"),
        "{}",
        row.enqueue_at
    );
    assert!(
        row.wake.delay.secs() > 23 * 3600,
        "{}",
        row.wake.delay.secs()
    );
}

#[test]
fn done_means_at_the_target_by_name_or_tag() {
    let target: Version = "2.0.0".parse().unwrap();
    let tag = format!("tag:{}", VersionTag::of(&target));
    let report = |state, to_version: &str| MeterReport {
        line: 2,
        time: at("2025-06-02T09:00:00Z"),
        state,
        to_version: to_version.into(),
        error: String::new(),
        authenticated: true,
    };
    let cases = [
        (StoredState::Van(UpdateState::Updated), "2.0.0", true),
        (StoredState::Van(UpdateState::Updated), "1.9.0", false),
        (StoredState::Van(UpdateState::Downloading), "2.0.0", false),
        (StoredState::Van(UpdateState::Failed), "2.0.0", false),
        (StoredState::Lora(OtaResult::Updated), &tag, true),
        (StoredState::Lora(OtaResult::AlreadyCurrent), "2.0.0", true),
        (StoredState::Lora(OtaResult::Reverted), "1.0.0", false),
        (StoredState::Lora(OtaResult::WifiJoinFailed), "1.0.0", false),
    ];
    for (state, version, done) in cases {
        assert_eq!(
            is_done(&report(state, version), Some(&target)),
            done,
            "{state} {version}"
        );
    }
    assert!(is_done(
        &report(StoredState::Van(UpdateState::Updated), "1.9.0"),
        None
    ));
    assert!(is_done(
        &report(StoredState::Lora(OtaResult::AlreadyCurrent), "1.9.0"),
        None
    ));
    assert!(!is_done(
        &report(StoredState::Lora(OtaResult::Refused), "1.9.0"),
        None
    ));
}

#[test]
fn the_old_campaign_another_target_or_an_unknown_meter_is_refused() {
    let (meters, old) = first_day();
    let shift = next_shift(&old, &street(), None, None).unwrap();
    let run = |s: &Settings, meters: &[Meter]| {
        replan(&old, &Reports::default(), meters, &shift.waypoints, s)
            .unwrap_err()
            .to_string()
    };
    let error = run(&settings("2025-06-02T12:00:00Z", 7), &meters);
    assert!(error.contains("--campaign 7 is the old plan's"), "{error}");
    let mut s = settings("2025-06-02T12:00:00Z", 8);
    s.target = Some("2.0.1".parse().unwrap());
    let error = run(&s, &meters);
    assert!(
        error.contains("--target 2.0.1") && error.contains("is not the old plan's target"),
        "{error}"
    );
    s.target = None;
    let error = run(&s, &meters);
    assert!(error.contains("give its --target"), "{error}");
    let error = run(&settings("2025-06-02T12:00:00Z", 8), &meters[1..]);
    assert!(
        error.contains("1 meter(s) of the old plan are not in METERS.csv: 70B3D57ED0000001"),
        "{error}"
    );
}

#[test]
fn the_shift_moves_every_time_by_the_same_amount() {
    let (_, old) = first_day();
    let mut route = street();
    route[1].time = Some(at("2025-06-02T09:10:00Z"));
    // Given: leave at 14:00 the same day.
    let shift = next_shift(&old, &route, None, Some(at("2025-06-02T14:00:00Z"))).unwrap();
    let times: Vec<_> = shift.waypoints.iter().map(|w| w.time).collect();
    assert_eq!(
        times,
        [
            Some(at("2025-06-02T14:00:00Z")),
            Some(at("2025-06-02T14:10:00Z"))
        ]
    );
    // A later --start moves the default departure by whole days.
    let shift = next_shift(&old, &route, Some(at("2025-06-04T10:00:00Z")), None).unwrap();
    assert_eq!(shift.waypoints[0].time, Some(at("2025-06-05T09:00:00Z")));
    assert_eq!(shift.start, at("2025-06-04T10:00:00Z"));
    // A route without times needs --shift-start, and gets it.
    let mut untimed = street();
    untimed[0].time = None;
    let error = next_shift(&old, &untimed, None, None).unwrap_err();
    assert!(error.to_string().contains("give --shift-start"), "{error}");
    let shift = next_shift(&old, &untimed, None, Some(at("2025-06-03T08:00:00Z"))).unwrap();
    assert_eq!(
        shift.waypoints.iter().map(|w| w.time).collect::<Vec<_>>(),
        [Some(at("2025-06-03T08:00:00Z")), None]
    );
    // Times after an untimed first waypoint cannot be moved.
    untimed[1].time = Some(at("2025-06-02T09:10:00Z"));
    let error = next_shift(&old, &untimed, None, Some(at("2025-06-03T08:00:00Z"))).unwrap_err();
    assert!(error.to_string().contains("ROUTE.csv line 3"), "{error}");
}
