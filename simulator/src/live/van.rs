//! The van's server in a live rehearsal, and the meters' link to it.
//!
//! [`VanServer`] is the real otavan server's request handling
//! (`otavan_server::service::handle`) over its real release index and
//! SQLite report store, called in-process: no sockets, so virtual time
//! stays in charge. [`VanTransport`] is the meter's [`Transport`] to it:
//! every byte waits its turn at the meter's share of the access point, and
//! the link fails when the van leaves range or the link drops, mid-body if
//! need be.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HOST, RANGE};
use hyper::{Method, Request, Response};
use otavan_client::transport::response::{
    RangedBody, parse_manifest_body, request_target, status_error,
};
use otavan_client::transport::{Fetched, Sink, Transport, TransportError};
use otavan_protocol::{Manifest, Report, UpdateState, Version};
use otavan_server::body::Body;
use otavan_server::service::{ConnInfo, handle};
use otavan_server::state::Shared;
use tokio::time::sleep_until;

use super::world::World;
use otavan_planning::time::from_secs_f64;

/// The address meters reach the van at.
pub const VAN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 4, 1)), 8000);

/// The real server's request handling, in-process.
#[derive(Clone)]
pub struct VanServer {
    shared: Arc<Shared>,
}

impl VanServer {
    /// Serves `shared` (a loaded release and its report store).
    pub fn new(shared: Arc<Shared>) -> VanServer {
        VanServer { shared }
    }

    /// The server's state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Handles one request from meter `m`.
    async fn call(&self, m: usize, request: Request<Full<Bytes>>) -> Response<Body> {
        let peer = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, (m >> 16) as u8, (m >> 8) as u8, m as u8)),
            40_000,
        );
        let conn = ConnInfo {
            peer,
            local: VAN_ADDR,
        };
        handle(Arc::clone(&self.shared), conn, request).await
    }
}

/// A live meter's link to the van's server.
pub struct VanTransport {
    world: Rc<World>,
    server: VanServer,
    m: usize,
}

impl VanTransport {
    /// Meter `m`'s transport.
    pub fn new(world: Rc<World>, server: VanServer, m: usize) -> VanTransport {
        VanTransport { world, server, m }
    }

    fn get(target: &str, range_from: u64) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(target)
            .header(HOST, VAN_ADDR.to_string());
        if range_from > 0 {
            request = request.header(RANGE, format!("bytes={range_from}-"));
        }
        request.body(Full::default()).expect("a valid request")
    }

    /// Moves `bytes` over the WiFi link at the meter's share of the access
    /// point; fails if the link ends first.
    async fn carry(&self, bytes: usize) -> Result<(), TransportError> {
        let world = &self.world;
        let link = world.logs[self.m]
            .borrow()
            .link
            .ok_or_else(|| TransportError::Connection("not associated with a van".into()))?;
        let now = world.now();
        let done = now + from_secs_f64(bytes as f64 / world.rate(self.m, link.van));
        if done > link.until || now >= link.until {
            sleep_until(world.instant(link.until.max(now))).await;
            world.incident(self.m, link.ends_by);
            return Err(TransportError::Connection(format!(
                "the link to van {} ended ({})",
                link.van,
                link.ends_by.as_str()
            )));
        }
        sleep_until(world.instant(done)).await;
        world.logs[self.m].borrow_mut().bytes += bytes as f64;
        Ok(())
    }

    /// Reads a whole (small) body, carrying it over the link.
    async fn small_body(&self, response: Response<Body>) -> Result<Bytes, TransportError> {
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?
            .to_bytes();
        self.carry(body.len().max(1)).await?;
        Ok(body)
    }
}

impl VanTransport {
    async fn post_report(&self, report: &Report) -> Result<(), TransportError> {
        let json = serde_json::to_vec(report).expect("a report serialises");
        self.carry(json.len() + 200).await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri("/report")
            .header(HOST, VAN_ADDR.to_string())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, json.len())
            .body(Full::new(Bytes::from(json)))
            .expect("a valid request");
        let response = self.server.call(self.m, request).await;
        let status = response.status();
        self.small_body(response).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error(status, "POST /report".into()))
        }
    }
}

impl Transport for VanTransport {
    async fn fetch_manifest(&self, current: &Version) -> Result<Option<Manifest>, TransportError> {
        self.carry(200).await?;
        let target = format!(
            "/manifest.json?current_ver={}",
            percent_encoding::utf8_percent_encode(
                current.as_str(),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let response = self.server.call(self.m, Self::get(&target, 0)).await;
        let status = response.status();
        let body = self.small_body(response).await?;
        if status.as_u16() != 200 {
            return Err(status_error(status, format!("GET {target}")));
        }
        parse_manifest_body(&body)
    }

    async fn fetch(
        &self,
        url: &str,
        from: u64,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, TransportError> {
        let target = request_target(url)?;
        self.carry(200).await?;
        let response = self.server.call(self.m, Self::get(&target, from)).await;
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &hyper::header::HeaderValue| v.as_bytes().to_vec())
        };
        let content_range = header(CONTENT_RANGE);
        let length =
            header(CONTENT_LENGTH).and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok());
        let mut body = RangedBody::begin(
            format!("GET {target}"),
            from,
            response.status().as_u16(),
            content_range.as_deref(),
            length,
            sink,
        )?;
        let mut stream = response.into_body();
        while let Some(frame) = stream.frame().await {
            let frame = frame.map_err(|e| body.cut(&e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if let Err(e) = self.carry(data.len()).await {
                    return Err(body.cut(&e.to_string()));
                }
                body.write(&data, sink)?;
            }
        }
        body.finish()
    }

    async fn send_report(&self, report: &Report) -> Result<(), TransportError> {
        let sent = self.post_report(report).await;
        if sent.is_err() && report.state == UpdateState::Updated {
            // The van left (or the link dropped) between the apply and its
            // report: the meter runs the new version, the van does not know.
            self.world.logs[self.m].borrow_mut().updated_unreported = true;
        }
        sent
    }
}
