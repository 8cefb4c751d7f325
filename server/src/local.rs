//! Requests from inside the process: the live rehearsal's van answers its
//! simulated meters through the very routing, counters, log line and
//! report store a socket's requests go through ([`crate::service::handle`]),
//! without a socket, so virtual time stays in charge. Callers see plain
//! statuses, headers and chunks of bytes, never HTTP-library types: only
//! this crate knows hyper.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HOST, RANGE};
use hyper::{Method, Request, Response};
use otavan_protocol::report_auth::SIGNATURE_HEADER;

use crate::body::Body;
use crate::service::{ConnInfo, handle};
use crate::state::Shared;

/// The server's request handling, called in-process.
#[derive(Clone)]
pub struct LocalServer {
    shared: Arc<Shared>,
    local: SocketAddr,
}

impl LocalServer {
    /// Serves `shared` (a loaded release and its report store) as if
    /// listening on `local` (requests carry it as their `Host`).
    pub fn new(shared: Arc<Shared>, local: SocketAddr) -> LocalServer {
        LocalServer { shared, local }
    }

    /// The server's state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `GET target` (path and query) from `peer`, from byte `range_from`
    /// on (`0`: the whole body, no `Range` header).
    pub async fn get(&self, peer: SocketAddr, target: &str, range_from: u64) -> LocalResponse {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(target)
            .header(HOST, self.local.to_string());
        if range_from > 0 {
            request = request.header(RANGE, format!("bytes={range_from}-"));
        }
        self.call(peer, request.body(Full::default())).await
    }

    /// `POST target` with a JSON `body` from `peer`, and the meter's
    /// report signature (the `X-Otavan-Signature` value) when it signs.
    pub async fn post_json(
        &self,
        peer: SocketAddr,
        target: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> LocalResponse {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target)
            .header(HOST, self.local.to_string())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len());
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        self.call(peer, request.body(Full::new(Bytes::from(body))))
            .await
    }

    async fn call(
        &self,
        peer: SocketAddr,
        request: Result<Request<Full<Bytes>>, hyper::http::Error>,
    ) -> LocalResponse {
        let request = request.expect("a request built from a valid target and headers");
        let conn = ConnInfo {
            peer,
            local: self.local,
        };
        LocalResponse(handle(Arc::clone(&self.shared), conn, request).await)
    }
}

/// An answer from a [`LocalServer`], its body read chunk by chunk.
pub struct LocalResponse(Response<Body>);

impl LocalResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.0.status().as_u16()
    }

    /// The `Content-Length` header, if present and a number.
    pub fn content_length(&self) -> Option<u64> {
        std::str::from_utf8(self.header(CONTENT_LENGTH.as_str())?)
            .ok()?
            .parse()
            .ok()
    }

    /// The `Content-Range` header's bytes, if present.
    pub fn content_range(&self) -> Option<&[u8]> {
        self.header(CONTENT_RANGE.as_str())
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        Some(self.0.headers().get(name)?.as_bytes())
    }

    /// The next chunk of the body (`None` at its end); an error when the
    /// server could not read what it was sending.
    pub async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.0.body_mut().frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some(Ok(data)),
                    Err(_trailers) => continue,
                },
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// The whole body.
    ///
    /// # Errors
    ///
    /// When the server could not read what it was sending.
    pub async fn into_bytes(self) -> io::Result<Bytes> {
        Ok(self.0.into_body().collect().await?.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::state::{IndexSettings, Release};
    use otavan_store::VanId;
    use otavan_store::reports::ReportStore;
    use otavan_store::sqlite::SqliteBackend;

    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 40_000);
    const VAN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 4, 1)), 8000);

    fn sample() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/releases")
    }

    #[tokio::test]
    async fn answers_like_a_socket_would() {
        let dir = tempfile::tempdir().unwrap();
        let settings = IndexSettings {
            root: sample(),
            target: None,
            exclude: Vec::new(),
            preload_bytes: u64::MAX,
            manifest_cache_bytes: crate::manifest_cache::DEFAULT_BUDGET,
            patch_cache: None,
        };
        let release = Release::load(&settings).unwrap();
        let store = Arc::new(ReportStore::open(&dir.path().join("van.db")).unwrap());
        let van_id = VanId::new("test-van").unwrap();
        let backend = SqliteBackend::new(Arc::clone(&store), van_id, "van.db".into()).inline();
        let van = LocalServer::new(
            Arc::new(Shared::new(release, Arc::new(backend), settings)),
            VAN,
        );

        let manifest = van.get(PEER, "/manifest.json?current_ver=1.0.0", 0).await;
        assert_eq!(manifest.status(), 200);
        let body = manifest.into_bytes().await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.contains("http://192.168.4.1:8000/1.1.0/"), "{text}");
        // A range: 206, Content-Range, and exactly the bytes asked for.
        let image = std::fs::read(sample().join("firmware_1.1.0.bin")).unwrap();
        let mut ranged = van.get(PEER, "/firmware_1.1.0.bin", 100).await;
        assert_eq!(ranged.status(), 206);
        assert_eq!(ranged.content_length(), Some(image.len() as u64 - 100));
        let expected_range = format!("bytes 100-{}/{}", image.len() - 1, image.len());
        assert_eq!(ranged.content_range(), Some(expected_range.as_bytes()));
        let mut got = Vec::new();
        while let Some(chunk) = ranged.next_chunk().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, image[100..]);
        // Reports reach the store; malformed ones are refused.
        let report =
            br#"{"device_id":"m1","from_version":"1.0.0","to_version":"1.1.0","state":"UPDATED"}"#;
        assert_eq!(
            van.post_json(PEER, "/report", report.to_vec(), None)
                .await
                .status(),
            204
        );
        assert_eq!(
            van.post_json(PEER, "/report", b"{".to_vec(), None)
                .await
                .status(),
            400
        );
        assert_eq!(store.count().unwrap(), 1);
        assert_eq!(van.get(PEER, "/../etc/passwd", 0).await.status(), 404);
    }
}
