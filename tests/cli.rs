//! The `otavan` binary as an operator runs it: flags, signals, exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn otavan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otavan"))
}

/// A running `otavan serve` and the address it logged.
struct Served {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Served {
    fn start(root: &Path, db: &Path) -> Served {
        let mut child = otavan()
            .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--root"])
            .arg(root)
            .arg("--db")
            .arg(db)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = wait_for(&log, "serving")
            .split("addr=")
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Served { child, addr, log }
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The first log line containing `needle`, waiting up to 30 s.
fn wait_for(log: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn sighup_reindexes_and_sigterm_stops_cleanly() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().join("release");
    write(&root, "1.0.0/flash/main.py", "a");
    let mut served = Served::start(&root, &dir.path().join("van.db"));
    assert_eq!(served.get("/manifest.json?current_ver=1.0.0"), "null");

    write(&root, "1.1.0/flash/main.py", "b");
    served.signal("HUP");
    wait_for(&served.log, "release indexed");
    let manifest = served.get("/manifest.json?current_ver=1.0.0");
    assert!(manifest.contains("\"version\":\"1.1.0\""), "{manifest}");

    served.signal("TERM");
    let status = served.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status}");
}

#[test]
fn every_request_is_logged_once() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().join("release");
    write(&root, "1.0.0/flash/main.py", "a");
    let mut served = Served::start(&root, &dir.path().join("van.db"));
    served.get("/1.0.0/flash/main.py");
    let line = wait_for(&served.log, "request");
    for field in [
        "method=GET",
        "path=\"/1.0.0/flash/main.py\"",
        "status=200",
        "bytes=1",
        "us=",
        "peer=127.0.0.1:",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    served.signal("INT");
    assert!(served.child.wait().unwrap().success());
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let dir = tempfile::TempDir::new().unwrap();
    let output = otavan()
        .args(["serve", "--port", "0", "--root"])
        .arg(dir.path().join("nope"))
        .arg("--db")
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("otavan: cannot read") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn a_target_that_is_not_a_version_is_refused_by_the_flag_parser() {
    let output = otavan()
        .args(["serve", "--root", ".", "--target", "../etc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target"));
}
