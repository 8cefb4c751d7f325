//! The engine over real HTTP, where several file fetches really are in
//! flight: a connection cut mid-body ends the pass, and the next pass
//! resumes that file with `Range` and keeps everything else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use otavan_client::EngineConfig;
use otavan_client::transport::{HttpTransport, HttpTransportConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{NEW, OLD, Release, TestMeter, new_engine};

/// What the server saw: (request target, Range start) per file request,
/// and how many connections were opened.
#[derive(Default)]
struct Log {
    fetches: Vec<(String, u64)>,
    connections: usize,
}

/// A keep-alive HTTP/1.1 server for `release` that honours `Range` and
/// cuts the first response for `cut.0` after `cut.1` body bytes.
async fn van(release: &Release, cut: (&str, usize)) -> (SocketAddr, Arc<Mutex<Log>>) {
    let mut routes = HashMap::new();
    routes.insert(
        format!("/manifest.json?current_ver={OLD}"),
        release.manifest_json(OLD),
    );
    for (path, bytes) in release.tree(NEW) {
        routes.insert(format!("/{NEW}/{path}"), bytes);
    }
    routes.insert(format!("/firmware_{NEW}.bin"), release.image(NEW));
    let routes = Arc::new(routes);
    let log = Arc::new(Mutex::new(Log::default()));
    let cut = Arc::new(Mutex::new(Some((cut.0.to_owned(), cut.1))));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_log = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            server_log.lock().unwrap().connections += 1;
            let (routes, log, cut) = (
                Arc::clone(&routes),
                Arc::clone(&server_log),
                Arc::clone(&cut),
            );
            tokio::spawn(async move {
                let _ = serve(socket, &routes, &log, &cut).await;
            });
        }
    });
    (addr, log)
}

/// Answers requests on one connection until it closes or is cut.
async fn serve(
    socket: TcpStream,
    routes: &HashMap<String, Vec<u8>>,
    log: &Mutex<Log>,
    cut: &Mutex<Option<(String, usize)>>,
) -> std::io::Result<()> {
    let mut socket = BufReader::new(socket);
    loop {
        let mut head = Vec::new();
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            if socket.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            head.push(line.clone());
        }
        // A report's body is read and acknowledged.
        let mut body = vec![0; length];
        socket.read_exact(&mut body).await?;
        let target = head[0].split(' ').nth(1).unwrap().to_owned();
        let from: usize = head
            .iter()
            .find_map(|h| {
                h.to_ascii_lowercase()
                    .strip_prefix("range: bytes=")
                    .map(str::to_owned)
            })
            .map_or(0, |range| {
                range.trim().trim_end_matches('-').parse().unwrap()
            });
        let Some(content) = routes.get(&target) else {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await?;
            continue;
        };
        if !target.starts_with("/manifest") {
            log.lock()
                .unwrap()
                .fetches
                .push((target.clone(), from as u64));
        }
        let part = &content[from..];
        let status = if from > 0 {
            format!(
                "206 Partial Content\r\ncontent-range: bytes {from}-{}/{}",
                content.len() - 1,
                content.len()
            )
        } else {
            "200 OK".to_owned()
        };
        let header = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n",
            part.len()
        );
        socket.write_all(header.as_bytes()).await?;
        let cut_here = {
            let mut cut = cut.lock().unwrap();
            match cut.take() {
                Some((path, after)) if path == target => Some(after),
                other => {
                    *cut = other;
                    None
                }
            }
        };
        if let Some(after) = cut_here {
            socket.write_all(&part[..after]).await?;
            socket.flush().await?;
            return Ok(());
        }
        socket.write_all(part).await?;
    }
}

#[tokio::test]
async fn a_cut_among_concurrent_fetches_ends_the_pass_and_the_next_resumes() {
    let release = Release::sample();
    let cut_file = format!("/{NEW}/flash/lib/tariff/tables.py");
    let (addr, log) = van(&release, (&cut_file, 2500)).await;
    let meter = TestMeter::provisioned(&release, OLD);
    let transport = HttpTransport::new(HttpTransportConfig::new(format!("http://{addr}"))).unwrap();
    let mut config = EngineConfig::new("meter-1");
    config.retries = 0;
    let engine = new_engine(meter.meter(), transport, config);

    let error = engine.update().await.unwrap_err();
    assert!(error.to_string().contains("connection"), "{error}");
    meter.assert_at(&release, OLD);
    engine.update().await.unwrap();
    meter.assert_at(&release, NEW);

    let log = log.lock().unwrap();
    assert!(log.connections >= 2, "{} connection(s)", log.connections);
    let cut_fetches: Vec<u64> = log
        .fetches
        .iter()
        .filter(|(path, _)| *path == cut_file)
        .map(|&(_, from)| from)
        .collect();
    assert_eq!(cut_fetches, [0, 2500], "resumed where the cut left it");
}
