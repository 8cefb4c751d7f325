//! Running the `otavan` binary and talking to what it serves.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn otavan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otavan"))
}

/// The sample release tree, `examples/releases`.
pub fn sample() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/releases"))
}

/// Runs `otavan ARGS` to completion.
pub fn run<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    otavan().args(args).output().unwrap()
}

/// Runs `otavan ARGS`, which must succeed; its stdout.
pub fn ok<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A running `otavan serve` and the address it logged.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: mpsc::Receiver<String>,
}

impl Served {
    pub fn start(root: &Path, db: &Path) -> Served {
        let patches = db.with_extension("patches");
        Served::start_with(
            root,
            &[
                OsStr::new("--db"),
                db.as_os_str(),
                OsStr::new("--patch-cache"),
                patches.as_os_str(),
            ],
        )
    }

    /// `otavan serve --root ROOT` on 127.0.0.1:0 with `args` added.
    pub fn start_with(root: &Path, args: &[&OsStr]) -> Served {
        let mut child = otavan()
            .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--root"])
            .arg(root)
            .args(args)
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

    pub fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// `POST path` with `body` over HTTP/1.1; the status code.
    pub fn post(&self, path: &str, body: &str) -> u16 {
        let (status, _) = http(self.addr, "POST", path, body);
        status
    }

    /// `GET path` over HTTP/1.1: status and body.
    pub fn fetch(&self, path: &str) -> (u16, String) {
        http(self.addr, "GET", path, "")
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// One request on its own connection: status and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: van\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// A report's JSON.
pub fn report_json(device: &str, state: &str, error: Option<&str>) -> String {
    let mut report = serde_json::json!({
        "device_id": device,
        "from_version": "1.0.0",
        "to_version": "1.1.0",
        "state": state,
    });
    if let Some(error) = error {
        report["error"] = error.into();
    }
    report.to_string()
}

/// The first log line containing `needle`, waiting up to 30 s.
pub fn wait_for(log: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = log
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

pub fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

impl Drop for Served {
    fn drop(&mut self) {
        // A test that did not stop its server must not leave it running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a directory tree (creating `to`).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
