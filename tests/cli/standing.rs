//! `otavan campaign plan --wake standing` on the example inventory: daily
//! slots, installation setups, slot WAKEs, a second campaign reusing the
//! groups, and bad standing files refused by line.

use std::collections::HashMap;
use std::path::Path;

use otavan_protocol::device_time::DeviceTime;
use otavan_protocol::lora::Wake;
use otavan_protocol::lora::multicast::McRequest;

use crate::common::otavan;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/campaign")
        .join(name)
        .display()
        .to_string()
}

/// Two days before the example's drive (2025-06-03 from 09:00).
const START: &str = "2025-06-01T06:00:00Z";
/// The first midnight after it, Unix seconds.
const FIRST_DAY: i64 = 1_748_822_400;

fn plan_standing(dir: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    otavan()
        .args(["campaign", "plan", "--meters"])
        .arg(example("METERS.csv"))
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(["--start", START, "--campaign", "7", "--target", "1.1.0"])
        .args(["--wake", "standing", "--out"])
        .arg(dir.join(out))
        .args(extra)
        .output()
        .unwrap()
}

/// GROUPS.csv's rows as column maps.
fn rows(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn unix(text: &str) -> i64 {
    otavan_campaign::clock::parse(text)
        .unwrap()
        .unix_timestamp()
}

fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn campaign_plan_wake_standing_sets_groups_up_once_and_wakes_them_in_their_slots() {
    let dir = tempfile::TempDir::new().unwrap();
    let stdout = succeeded(&plan_standing(dir.path(), "PLAN.csv", &[]));
    assert!(
        stdout.contains("standing: 3 group(s), 14 meter(s) set up now, 0 already standing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("each member listens 0.35 J a day"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(dir.path().join("GROUPS.csv")).unwrap();
    assert!(
        text.starts_with(
            "kind,mc_addr,dev_eui,enqueue_at,send_by,transmit_at,fport,payload_hex,slot_s\n"
        ),
        "{text}"
    );
    let rows = rows(&dir.path().join("GROUPS.csv"));
    let mut slot_of: HashMap<String, i64> = HashMap::new();
    let mut set_up = Vec::new();
    for row in &rows {
        let slot: i64 = row["slot_s"].parse().unwrap();
        assert!((0..86_400).contains(&slot), "{row:?}");
        assert_eq!(*slot_of.entry(row["mc_addr"].clone()).or_insert(slot), slot);
        let payload = hex::decode(&row["payload_hex"]).unwrap();
        match row["kind"].as_str() {
            "standing" => {
                assert_eq!(row["fport"], "201");
                let requests = McRequest::decode_all(&payload).unwrap();
                let (McRequest::GroupSetup(setup), McRequest::StandingSession(session)) =
                    (&requests[0], &requests[1])
                else {
                    panic!("{requests:?}")
                };
                assert_eq!(format!("{:08X}", setup.mc_addr), row["mc_addr"]);
                assert_eq!((session.period_s(), session.window_s()), (86_400, 8));
                // The first slot is the group's next after the start.
                let first = DeviceTime {
                    gps_seconds: session.first_slot,
                    fraction: 0,
                }
                .to_unix()
                .as_secs() as i64;
                assert_eq!(first, FIRST_DAY + slot, "{row:?}");
                set_up.push(row["dev_eui"].clone());
            }
            "wake" => {
                assert_eq!(row["fport"], "200");
                let wake = Wake::decode(&payload).unwrap();
                assert_eq!(wake.campaign, 7);
                // In the slot's 8 s window, on the last two days.
                let at = unix(&row["transmit_at"]);
                let into_slot = (at - slot).rem_euclid(86_400);
                assert!((0..8).contains(&into_slot), "{row:?}");
                assert!((FIRST_DAY..FIRST_DAY + 2 * 86_400).contains(&at), "{row:?}");
                // The window it opens is the van's pass (09:00 on, the
                // window a minute before the first contact).
                let opens = at + 3 + i64::from(wake.delay.secs());
                let drive = FIRST_DAY + 86_400 + 9 * 3600;
                assert!((drive - 120..drive + 7200).contains(&opens), "{row:?}");
            }
            other => panic!("{other}: {row:?}"),
        }
    }
    assert_eq!(set_up.len(), 14);
    // The woken meters have no unicast WAKE left.
    let plan = std::fs::read_to_string(dir.path().join("PLAN.csv")).unwrap();
    assert!(set_up.iter().all(|d| !plan.contains(d.as_str())), "{plan}");

    // The next campaign keeps every meter's group, key and slot: no setup.
    let keys_before = std::fs::read_to_string(dir.path().join("GROUPKEYS.csv")).unwrap();
    std::fs::create_dir(dir.path().join("next")).unwrap();
    let groups = dir.path().join("GROUPS.csv").display().to_string();
    let stdout = succeeded(&plan_standing(
        dir.path(),
        "next/PLAN.csv",
        &["--standing-groups", &groups],
    ));
    assert!(
        stdout.contains("0 meter(s) set up now, 14 already standing"),
        "{stdout}"
    );
    let next = self::rows(&dir.path().join("next/GROUPS.csv"));
    assert!(next.iter().all(|r| r["kind"] != "standing"), "{next:?}");
    let members: Vec<&HashMap<String, String>> =
        next.iter().filter(|r| r["kind"] == "member").collect();
    assert_eq!(members.len(), 14);
    for m in members {
        let first = rows.iter().find(|r| r["dev_eui"] == m["dev_eui"]).unwrap();
        assert_eq!(
            (&first["mc_addr"], &first["slot_s"]),
            (&m["mc_addr"], &m["slot_s"])
        );
    }
    assert!(next.iter().any(|r| r["kind"] == "wake"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("next/GROUPKEYS.csv")).unwrap(),
        keys_before
    );
}

#[test]
fn bad_standing_groups_are_refused_by_line_and_nothing_is_written() {
    let dir = tempfile::TempDir::new().unwrap();
    succeeded(&plan_standing(dir.path(), "PLAN.csv", &[]));
    let good = std::fs::read_to_string(dir.path().join("GROUPS.csv")).unwrap();
    let bad = dir.path().join("BAD.csv");
    let refused = |text: &str, keys: &Path| {
        std::fs::write(&bad, text).unwrap();
        let output = plan_standing(
            dir.path(),
            "NEXT.csv",
            &[
                "--standing-groups",
                bad.to_str().unwrap(),
                "--standing-keys",
                keys.to_str().unwrap(),
            ],
        );
        assert!(!output.status.success());
        assert!(!dir.path().join("NEXT.csv").exists());
        // push refuses the same file before it connects or keeps any
        // progress: nothing is sent.
        let push = otavan()
            .args(["campaign", "push"])
            .arg(dir.path().join("PLAN.csv"))
            .args(["--tts-app", "meters@acme", "--gateway", "gw"])
            .args(["--mqtt", "mqtt://127.0.0.1:1", "--groups"])
            .arg(&bad)
            .arg("--group-keys")
            .arg(keys)
            .output()
            .unwrap();
        assert!(!push.status.success());
        let push_error = String::from_utf8_lossy(&push.stderr);
        assert!(!push_error.contains("cannot publish"), "{push_error}");
        assert!(!dir.path().join("PLAN.csv.progress").exists());
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let keys = dir.path().join("GROUPKEYS.csv");
    // No keys file.
    let error = refused(&good, &dir.path().join("LOST.csv"));
    assert!(
        error.contains("cannot read") && error.contains("LOST.csv"),
        "{error}"
    );
    // A slot out of the day, on line 2.
    let lines: Vec<&str> = good.lines().collect();
    let out_of_day = format!(
        "{}\n{},86400\n{}\n",
        lines[0],
        lines[1].rsplit_once(',').unwrap().0,
        lines[2..].join("\n")
    );
    let error = refused(&out_of_day, &keys);
    assert!(error.contains("BAD.csv"), "{error}");
    assert!(
        error.contains("line 2: slot_s \"86400\" is not a whole second of the day"),
        "{error}"
    );
    // A meter in two groups: the first setup again, as a member of the
    // last group.
    let first: Vec<&str> = lines[1].split(',').collect();
    let last: Vec<&str> = lines[lines.len() - 1].split(',').collect();
    let twice = format!("{good}member,{},{},,,,,,{}\n", last[1], first[2], last[8]);
    let error = refused(&twice, &keys);
    assert!(
        error.contains(&format!(
            "line {}: {} is already in group {} on line 2",
            lines.len() + 1,
            first[2],
            first[1]
        )),
        "{error}"
    );
    // A keys file others may read.
    let open = dir.path().join("OPEN.csv");
    std::fs::copy(&keys, &open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = refused(&good, &open);
    assert!(error.contains("readable by others (mode 644)"), "{error}");
    // A group whose keys are not in the keys file.
    std::fs::write(
        dir.path().join("EMPTY.csv"),
        "mc_addr,mc_key,app_s_key,nwk_s_key\n",
    )
    .unwrap();
    let empty = dir.path().join("EMPTY.csv");
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o600)).unwrap();
    let error = refused(&good, &empty);
    assert!(
        error.contains(&format!("line 2: group {} has no keys in", first[1])),
        "{error}"
    );
}

/// `push --dry-run` of a standing plan: every setup on FPort 201, then
/// each slot WAKE to its multicast device at its absolute time (The
/// Things Stack), or as a gRPC call at that time (ChirpStack).
#[test]
fn push_of_a_standing_plan_lists_setups_then_the_slot_wakes() {
    let dir = tempfile::TempDir::new().unwrap();
    succeeded(&plan_standing(dir.path(), "PLAN.csv", &[]));
    let push = |server: &[&str]| {
        otavan()
            .args(["campaign", "push"])
            .arg(dir.path().join("PLAN.csv"))
            .args(server)
            .args(["--gateway", "0016c001f153a14c", "--dry-run", "--groups"])
            .arg(dir.path().join("GROUPS.csv"))
            .output()
            .unwrap()
    };
    let stdout = succeeded(&push(&["--tts-app", "meters@acme"]));
    let todo: Vec<&str> = stdout.lines().filter(|l| l.starts_with("todo ")).collect();
    let rows = rows(&dir.path().join("GROUPS.csv"));
    let wakes: Vec<_> = rows.iter().filter(|r| r["kind"] == "wake").collect();
    let setups = todo
        .iter()
        .filter(|l| l.contains(r#""f_port":201"#))
        .count();
    assert_eq!(setups, 14, "{stdout}");
    for wake in &wakes {
        let at = format!(r#""absolute_time":"{}""#, wake["transmit_at"]);
        let line = todo
            .iter()
            .position(|l| {
                l.contains(&format!("/devices/mc-{}/down/push", wake["mc_addr"])) && l.contains(&at)
            })
            .unwrap_or_else(|| panic!("{wake:?}: {stdout}"));
        // After every setup of its group.
        let last_setup = rows
            .iter()
            .filter(|r| r["kind"] == "standing" && r["mc_addr"] == wake["mc_addr"])
            .filter_map(|r| {
                todo.iter()
                    .position(|l| l.contains(&format!("eui-{}", r["dev_eui"].to_lowercase())))
            })
            .max()
            .unwrap();
        assert!(line > last_setup, "{stdout}");
    }
    let cs = succeeded(&push(&[
        "--chirpstack-app",
        "app",
        "--chirpstack-api",
        "http://127.0.0.1:1",
    ]));
    let grpc: Vec<&str> = cs.lines().filter(|l| l.contains(" grpc:")).collect();
    assert_eq!(grpc.len(), wakes.len(), "{cs}");
    for wake in &wakes {
        assert!(
            grpc.iter().any(|l| l.starts_with(&format!(
                "todo {} grpc:api.MulticastGroupService/List",
                wake["transmit_at"]
            ))),
            "{cs}"
        );
    }
}

/// A meter in no group yet (its row gone from the earlier GROUPS.csv) is
/// set up in a new group, at a new address and a slot no known group
/// holds; the others keep theirs.
#[test]
fn a_new_meter_gets_a_new_group_and_slot_and_the_known_ones_keep_theirs() {
    let dir = tempfile::TempDir::new().unwrap();
    succeeded(&plan_standing(dir.path(), "PLAN.csv", &[]));
    let text = std::fs::read_to_string(dir.path().join("GROUPS.csv")).unwrap();
    let first = rows(&dir.path().join("GROUPS.csv"));
    let gone = first.iter().find(|r| r["kind"] == "standing").unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.contains(gone["dev_eui"].as_str()))
        .map(|l| format!("{l}\n"))
        .collect();
    let earlier = dir.path().join("EARLIER.csv");
    std::fs::write(&earlier, kept).unwrap();
    std::fs::create_dir(dir.path().join("next")).unwrap();
    let stdout = succeeded(&plan_standing(
        dir.path(),
        "next/PLAN.csv",
        &[
            "--standing-groups",
            earlier.to_str().unwrap(),
            "--standing-keys",
            dir.path().join("GROUPKEYS.csv").to_str().unwrap(),
        ],
    ));
    assert!(
        stdout.contains("1 meter(s) set up now, 13 already standing"),
        "{stdout}"
    );
    let next = rows(&dir.path().join("next/GROUPS.csv"));
    let setups: Vec<_> = next.iter().filter(|r| r["kind"] == "standing").collect();
    assert_eq!(setups.len(), 1, "{next:?}");
    assert_eq!(setups[0]["dev_eui"], gone["dev_eui"]);
    let known: Vec<(&String, &String)> = first
        .iter()
        .map(|r| (&r["mc_addr"], &r["slot_s"]))
        .collect();
    assert!(
        known
            .iter()
            .all(|(a, s)| *a != &setups[0]["mc_addr"] && *s != &setups[0]["slot_s"]),
        "{setups:?}"
    );
    assert_eq!(next.iter().filter(|r| r["kind"] == "member").count(), 13);
    let keys = std::fs::read_to_string(dir.path().join("next/GROUPKEYS.csv")).unwrap();
    assert_eq!(keys.lines().count(), 1 + 3 + 1, "{keys}");
}
