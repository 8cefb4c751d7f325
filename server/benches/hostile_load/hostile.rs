//! Hostile connections: some connect and say nothing, some ask for the
//! firmware and read it a byte a second or not at all. Each reconnects as
//! soon as the server closes it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::sleep;

use crate::Stop;
use crate::http::{self, Endpoint};

/// A slow reader's receive buffer: small, so the server's writes block.
const RECV_BUFFER: u32 = 4 * 1024;
/// How long a client that never reads keeps its connection.
const DEAF_HOLD: Duration = Duration::from_secs(30);
/// Pause before reconnecting, so a refused client does not spin.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

/// How a hostile connection misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Connects and never sends a byte.
    Idle,
    /// Requests the firmware, then reads one byte a second.
    Trickle,
    /// Requests the firmware, then never reads (reconnects every 30 s).
    Deaf,
}

/// What the hostile connections saw, merged.
#[derive(Debug, Default)]
pub struct HostileStats {
    /// Connections opened.
    pub connections: u64,
    /// Connections that failed to open (refused or reset at once).
    pub connect_errors: u64,
}

impl HostileStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: HostileStats) {
        self.connections += other.connections;
        self.connect_errors += other.connect_errors;
    }
}

/// Runs one hostile client, reconnecting whenever the server closes it,
/// until `stop`.
pub async fn run(
    endpoint: Endpoint,
    behaviour: Behaviour,
    firmware_path: String,
    stop: Stop,
) -> HostileStats {
    let mut stats = HostileStats::default();
    while !stop.is_set() {
        match http::connect(endpoint, Some(RECV_BUFFER)).await {
            Ok(stream) => {
                stats.connections += 1;
                tokio::select! {
                    () = misbehave(stream, endpoint, behaviour, &firmware_path) => {}
                    () = stop.wait() => break,
                }
            }
            Err(_) => stats.connect_errors += 1,
        }
        sleep(RECONNECT_PAUSE).await;
    }
    stats
}

/// Holds one connection the way `behaviour` says, returning when the
/// server closes it.
async fn misbehave(mut stream: TcpStream, endpoint: Endpoint, behaviour: Behaviour, path: &str) {
    let head = http::request_head("GET", path, &endpoint.server.to_string(), None);
    match behaviour {
        Behaviour::Idle => wait_for_close(&mut stream).await,
        Behaviour::Trickle => {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut byte = [0u8; 1];
            while let Ok(1) = stream.read(&mut byte).await {
                sleep(Duration::from_secs(1)).await;
            }
        }
        Behaviour::Deaf => {
            if stream.write_all(head.as_bytes()).await.is_ok() {
                // A client that never reads cannot see the server's close
                // behind the unread response: hold the connection for longer
                // than the server's stall timeout, then come back.
                sleep(DEAF_HOLD).await;
            }
        }
    }
}

/// Reads until the server closes (or resets) the connection.
async fn wait_for_close(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
