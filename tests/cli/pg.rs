//! A throwaway PostgreSQL cluster per test: Debian's server binaries, a
//! temporary data directory, trust authentication, an ephemeral port on
//! 127.0.0.1, stopped when dropped.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to
//! `nobody` and its commands run through `runuser`. `.ci/setup` installs
//! the package; without it the tests fail and say so.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A running cluster.
pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
    run_as: Option<String>,
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb` and `pg_ctl`.
fn server_binaries() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name);
        version
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin: \
             run .ci/setup (installs Debian's postgresql package)"
        )
    })
}

fn check(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A free port on 127.0.0.1 (bound, then released for the server).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl PgCluster {
    /// initdb + pg_ctl start; panics with the server's log on failure.
    pub fn start() -> PgCluster {
        let bin = server_binaries();
        let dir = TempDir::new().unwrap();
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let run_as = root.then(|| "nobody".to_owned());
        if root {
            let uid = |flag: &str| {
                let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
                check(out, "id nobody").trim().parse::<u32>().unwrap()
            };
            std::os::unix::fs::chown(dir.path(), Some(uid("-u")), Some(uid("-g"))).unwrap();
        }
        let cluster = PgCluster {
            dir,
            bin,
            port: free_port(),
            run_as,
        };
        let data = cluster.data();
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C"])
            .output()
            .unwrap();
        check(out, "initdb");
        cluster.pg_start();
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server binary, run as the cluster's owner.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// The address otavan connects to.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` with psql and returns its unaligned output, trimmed.
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-At",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        check(out, &format!("psql {sql:?}")).trim().to_owned()
    }

    /// `SELECT COUNT(*) ...` as a number.
    pub fn count(&self, sql: &str) -> u64 {
        self.query(sql).parse().unwrap()
    }

    /// Stops the server at once (connections are cut), then starts it
    /// again on the same port.
    pub fn restart(&self) {
        self.stop();
        self.pg_start();
    }

    fn pg_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .unwrap();
        if !out.status.success() {
            panic!(
                "pg_ctl start failed: {}\n{:?}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&log)
            );
        }
    }

    /// Stops the server immediately.
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
