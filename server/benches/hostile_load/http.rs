//! A minimal HTTP/1.1 client over one TCP connection from a chosen source
//! address: what a meter on the van's WiFi (its own DHCP address) does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longest response head accepted, in bytes.
const MAX_HEAD: usize = 16 * 1024;

/// Where the driver's clients connect and which address each comes from.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// The server's address (127.0.0.0/8 only).
    pub server: SocketAddr,
    /// The client's source address.
    pub source: Ipv4Addr,
}

/// The status line and headers of a response, and the body bytes that
/// arrived with them.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, when the response has one.
    pub content_length: Option<u64>,
    /// Body bytes read past the end of the head.
    pub body_start: Vec<u8>,
}

/// Opens a connection from `endpoint.source`, with a receive buffer of
/// `recv_buffer` bytes when given (a meter's small TCP window).
pub async fn connect(endpoint: Endpoint, recv_buffer: Option<u32>) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::new(IpAddr::V4(endpoint.source), 0))?;
    socket.connect(endpoint.server).await
}

/// The request head for `method path` with `Host: host`, closing the
/// connection after the response.
pub fn request_head(method: &str, path: &str, host: &str, body_len: Option<usize>) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(len) = body_len {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str("\r\n");
    head
}

/// Reads the response head (status line and headers).
pub async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let body_start = buf.split_off(end + 4);
            return parse_head(&buf, body_start);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head over 16 KiB",
            ));
        }
    }
}

/// Parses the status code and `Content-Length` out of a response head.
fn parse_head(head: &[u8], body_start: Vec<u8>) -> io::Result<Head> {
    let text = std::str::from_utf8(head)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response head not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let content_length = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok());
    Ok(Head {
        status,
        content_length,
        body_start,
    })
}

/// One request on a fresh connection, reading the whole body; fails on a
/// missing `Content-Length` or a short body.
pub async fn exchange(
    endpoint: Endpoint,
    head: &str,
    body: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let run = async {
        let mut stream = connect(endpoint, None).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let head = read_head(&mut stream).await?;
        let body = read_body(&mut stream, &head).await?;
        Ok((head.status, body))
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")))
}

/// Reads exactly `Content-Length` body bytes (none for 204 and 304).
async fn read_body(stream: &mut TcpStream, head: &Head) -> io::Result<Vec<u8>> {
    if matches!(head.status, 204 | 304) {
        return Ok(Vec::new());
    }
    let len = head
        .content_length
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"))?;
    let mut body = head.body_start.clone();
    let mut chunk = [0u8; 8192];
    while (body.len() as u64) < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "body longer than Content-Length",
        ));
    }
    Ok(body)
}

/// The path part of an absolute `http://host/path` URL.
pub fn url_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    rest.find('/').map(|i| &rest[i..])
}
