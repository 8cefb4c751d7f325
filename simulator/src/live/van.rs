//! The van's server in a live rehearsal, and the meters' link to it.
//!
//! [`VanServer`] is the real otavan server's request handling
//! (`otavan_server::local::LocalServer`, the same routing as a socket's)
//! over its real release index and SQLite report store, called
//! in-process: no sockets, so virtual time
//! stays in charge. [`VanTransport`] is the meter's [`Transport`] to it:
//! every byte waits its turn at the meter's share of the access point, and
//! the link fails when the van leaves range or the link drops, mid-body if
//! need be.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use otavan_client::transport::response::{
    RangedBody, parse_manifest_body, request_target, status_error,
};
use otavan_client::transport::{Fetched, Sink, Transport, TransportError};
use otavan_planning::time::from_secs_f64;
use otavan_protocol::report_auth::MeterKey;
use otavan_protocol::{Manifest, Report, UpdateState, Version};
use otavan_server::local::{LocalResponse, LocalServer};
use otavan_server::state::Shared;
use tokio::time::sleep_until;

use super::world::LiveWorld;

/// The address meters reach the van at.
pub const VAN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 4, 1)), 8000);

/// The real server's request handling, in-process.
#[derive(Clone)]
pub struct VanServer {
    local: LocalServer,
}

impl VanServer {
    /// Serves `shared` (a loaded release and its report store).
    pub fn new(shared: Arc<Shared>) -> VanServer {
        VanServer {
            local: LocalServer::new(shared, VAN_ADDR),
        }
    }

    /// The server's state.
    pub fn shared(&self) -> &Arc<Shared> {
        self.local.shared()
    }

    /// Meter `m`'s address on the van's network.
    fn peer(m: usize) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, (m >> 16) as u8, (m >> 8) as u8, m as u8)),
            40_000,
        )
    }
}

/// A live meter's link to the van's server.
pub struct VanTransport {
    world: Rc<LiveWorld>,
    server: VanServer,
    m: usize,
    report_key: MeterKey,
}

impl VanTransport {
    /// Meter `m`'s transport, signing its reports with `report_key`.
    pub fn new(
        world: Rc<LiveWorld>,
        server: VanServer,
        m: usize,
        report_key: MeterKey,
    ) -> VanTransport {
        VanTransport {
            world,
            server,
            m,
            report_key,
        }
    }

    async fn get(&self, target: &str, range_from: u64) -> LocalResponse {
        let peer = VanServer::peer(self.m);
        self.server.local.get(peer, target, range_from).await
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
    async fn small_body(&self, response: LocalResponse) -> Result<Bytes, TransportError> {
        let body = response
            .into_bytes()
            .await
            .map_err(|e| TransportError::Connection(e.to_string()))?;
        self.carry(body.len().max(1)).await?;
        Ok(body)
    }

    async fn post_report(&self, report: &Report) -> Result<(), TransportError> {
        // Signed over these exact bytes, as the HTTP transport does.
        let json = serde_json::to_vec(report).expect("a report serialises");
        let signature = self.report_key.sign(&json);
        self.carry(json.len() + 200).await?;
        let peer = VanServer::peer(self.m);
        let response = self
            .server
            .local
            .post_json(peer, "/report", json, Some(&signature))
            .await;
        let status = response.status();
        self.small_body(response).await?;
        if (200..300).contains(&status) {
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
        let response = self.get(&target, 0).await;
        let status = response.status();
        let body = self.small_body(response).await?;
        if status != 200 {
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
        let mut response = self.get(&target, from).await;
        let mut body = RangedBody::begin(
            format!("GET {target}"),
            from,
            response.status(),
            response.content_range(),
            response.content_length(),
            sink,
        )?;
        while let Some(chunk) = response.next_chunk().await {
            let data = chunk.map_err(|e| body.cut(&e.to_string()))?;
            if let Err(e) = self.carry(data.len()).await {
                return Err(body.cut(&e.to_string()));
            }
            body.write(&data, sink)?;
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
