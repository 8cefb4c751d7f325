//! A halted campaign's push over a real mosquitto: the canary's WAKEs go
//! out, later waves' never do, and each woken meter without UPDATED gets
//! one CANCEL, never twice.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::otavan;
use crate::pg::PgCluster;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/campaign")
        .join(name)
}

/// A mosquitto on an ephemeral port and a `mosquitto_sub` recording
/// every message under `v3/#`, both killed on drop.
struct Broker {
    broker: Child,
    subscriber: Child,
    port: u16,
    messages: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::TempDir::new().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        let broker = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (.ci/setup)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut subscriber = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "v3/#",
                "-v",
                "-q",
                "1",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("mosquitto_sub is installed (mosquitto-clients)");
        let stdout = subscriber.stdout.take().unwrap();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // mosquitto_sub has subscribed once a retained-free probe arrives.
        let probe = Instant::now() + Duration::from_secs(10);
        loop {
            Command::new("mosquitto_pub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-t",
                    "v3/probe",
                    "-m",
                    "x",
                ])
                .status()
                .unwrap();
            if messages.recv_timeout(Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(Instant::now() < probe, "mosquitto_sub did not subscribe");
        }
        Broker {
            broker,
            subscriber,
            port,
            messages,
            _dir: dir,
        }
    }

    /// Every message received so far (after the probe), waiting a moment
    /// for stragglers.
    fn received(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.messages.recv_timeout(Duration::from_millis(500)) {
            out.push(line);
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.subscriber.kill();
        let _ = self.broker.kill();
        let _ = self.subscriber.wait();
        let _ = self.broker.wait();
    }
}

/// `campaign push` of `plan` to the broker at `port` with `flags`.
fn push(plan: &Path, port: u16, flags: &[&str]) -> String {
    let output = otavan()
        .args([
            "campaign",
            "push",
            "--tts-app",
            "meters@acme",
            "--target",
            "1.1.0",
        ])
        .args(["--mqtt", &format!("mqtt://127.0.0.1:{port}")])
        .args(["--max-late", "3650days", "--min-samples", "3"])
        .arg(plan)
        .args(flags)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The (device, frm_payload) of each recorded downlink.
fn downlinks(messages: &[String]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|line| {
            let (topic, json) = line.split_once(' ').unwrap();
            let device = topic.split('/').nth(3).unwrap().trim_start_matches("eui-");
            let message: serde_json::Value = serde_json::from_str(json).unwrap();
            let payload = message["downlinks"][0]["frm_payload"].as_str().unwrap();
            (device.to_uppercase(), payload.to_owned())
        })
        .collect()
}

#[test]
fn a_failing_canary_halts_later_waves_and_cancels_the_woken_meters() {
    let broker = Broker::start();
    let dir = tempfile::TempDir::new().unwrap();
    let plan = dir.path().join("PLAN.csv");
    let output = otavan()
        .args(["campaign", "plan", "--meters"])
        .arg(example("METERS.csv"))
        .arg("--route")
        .arg(example("ROUTE.csv"))
        .args(["--start", "2025-06-03T06:00:00Z", "--campaign", "7"])
        .args([
            "--target",
            "1.1.0",
            "--waves",
            "canary=20%,50%,100%",
            "--out",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let canary: Vec<String> = std::fs::read_to_string(dir.path().join("WAVES.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(",1,canary"))
        .map(|l| l[..16].to_owned())
        .collect();
    assert_eq!(canary.len(), 4);
    // No reports yet: the canary's four WAKEs, nothing else.
    let stdout = push(&plan, broker.port, &[]);
    assert!(stdout.contains("4 sent, 0 already sent before"), "{stdout}");
    let first = downlinks(&broker.received());
    let mut woken: Vec<String> = first.iter().map(|d| d.0.clone()).collect();
    woken.sort();
    let mut expected = canary.clone();
    expected.sort();
    assert_eq!(woken, expected);
    // The example reports: the canary has 2 updated, 1 failed, 1 still
    // downloading; with --max-failure-rate 5 the gate trips. No WAKE of a
    // later wave goes out; the failed and the downloading meter get a
    // CANCEL for campaign 7 (0x12 0x00 0x07).
    // The fleet database is read too (it has no reports yet), so the
    // halt goes into its halts table by itself.
    let pg = PgCluster::start();
    let url = pg.url();
    let reports = example("REPORTS.csv");
    let reports = reports.to_str().unwrap();
    let flags = ["--reports", reports, "--reports", url.as_str()];
    let stdout = push(&plan, broker.port, &flags);
    assert!(stdout.contains("2 sent, 4 already sent before"), "{stdout}");
    let halted = "SELECT COUNT(*) FROM halts WHERE campaign = 7 AND target = '1.1.0' \
                  AND resumed_at IS NULL AND reason LIKE '%failure rate 33.3 %'";
    assert_eq!(pg.count(halted), 1);
    let second = downlinks(&broker.received());
    assert_eq!(second.len(), 2, "{second:?}");
    for (device, payload) in &second {
        assert_eq!(payload, "EgAH", "{device}");
        assert!(canary.contains(device), "{device}");
    }
    // Pushed again: nothing twice.
    let stdout = push(&plan, broker.port, &flags);
    assert!(stdout.contains("0 sent, 6 already sent before"), "{stdout}");
    assert_eq!(
        pg.count("SELECT COUNT(*) FROM halts"),
        1,
        "one halt, however often pushed"
    );
    assert!(broker.received().is_empty());
    let log = std::fs::read_to_string(dir.path().join("PLAN.csv.decisions")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"decision\":\"halt\"") && l.contains("cancel-")),
        "{log}"
    );
}
