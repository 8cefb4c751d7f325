//! [`HttpTransport`]: talks plain HTTP (no TLS) to an otavan van server or
//! to the plain Pycom reference server.
//!
//! Like the Pycom device library, every request goes to the configured
//! server: a manifest's absolute URLs only contribute their path and query.
//! Downloads are streamed chunk by chunk into the [`Sink`], so memory use
//! does not depend on file sizes; manifests are read into memory up to a
//! cap. With a report key, reports are signed (`X-Otavan-Signature` over
//! the exact body sent, see `otavan_protocol::report_auth`).

use std::error::Error as _;
use std::fmt::Write as _;
use std::time::Duration;

use otavan_protocol::report_auth::{MeterKey, SIGNATURE_HEADER};
use otavan_protocol::{Manifest, Report, Version};
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{StatusCode, Url};

use super::response::{
    RangedBody, manifest_too_large, parse_manifest_body, request_target, status_error,
};

use super::{Fetched, Sink, Transport, TransportError};

/// Largest manifest body accepted by default (4 MiB).
pub(crate) const DEFAULT_MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// How to reach the van.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTransportConfig {
    /// Base URL of the server, `http://host[:port]` with at most a trailing
    /// `/` (`http://192.168.4.1:8000`).
    pub server: String,
    /// How long establishing a TCP connection may take.
    pub connect_timeout: Duration,
    /// How long the server may stay silent while a response (headers or
    /// body) is being read; applies per read, not to a whole download.
    pub read_timeout: Duration,
    /// Largest manifest body accepted; larger ones are a
    /// [`TransportError::BadResponse`].
    pub max_manifest_bytes: usize,
    /// The meter's report key: reports are signed with it; `None` sends
    /// them unsigned (the van stores them marked `unsigned`).
    pub report_key: Option<MeterKey>,
}

impl HttpTransportConfig {
    /// A configuration for `server` with a 5 s connect timeout, a 10 s read
    /// inactivity timeout and a 4 MiB manifest cap.
    pub fn new(server: impl Into<String>) -> HttpTransportConfig {
        HttpTransportConfig {
            server: server.into(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            report_key: None,
        }
    }
}

/// A [`Transport`] over HTTP/1.x.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    /// `http://host[:port]`, no trailing slash.
    base: String,
    max_manifest_bytes: usize,
    report_key: Option<MeterKey>,
}

impl HttpTransport {
    /// Builds a transport for `config.server`.
    ///
    /// # Errors
    ///
    /// [`TransportError::Connection`] when the server URL is not a plain
    /// `http://host[:port]` URL (other schemes, credentials, a path other
    /// than `/`, a query or a fragment are refused), or when the HTTP
    /// client cannot be built.
    pub fn new(config: HttpTransportConfig) -> Result<HttpTransport, TransportError> {
        let base = validate_base(&config.server).map_err(|why| {
            TransportError::Connection(format!("server URL {:?} {why}", config.server))
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            // The meter talks to the van directly: no proxies from the
            // environment, and no redirects to other hosts.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                TransportError::Connection(format!("cannot build HTTP client: {}", chain(&e)))
            })?;
        Ok(HttpTransport {
            client,
            base,
            max_manifest_bytes: config.max_manifest_bytes,
            report_key: config.report_key,
        })
    }

    /// The server's base URL, `http://host[:port]` without a trailing slash.
    pub fn server(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, TransportError> {
        request.send().await.map_err(|e| {
            TransportError::Connection(format!("{what}: {}", describe(&e, &self.base)))
        })
    }
}

impl Transport for HttpTransport {
    async fn fetch_manifest(&self, current: &Version) -> Result<Option<Manifest>, TransportError> {
        let target = format!(
            "/manifest.json?current_ver={}",
            percent_encode(current.as_str())
        );
        let what = format!("GET {target}");
        let mut response = self
            .send(&what, self.client.get(format!("{}{target}", self.base)))
            .await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(response.status().as_u16(), what));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.max_manifest_bytes {
                        return Err(manifest_too_large(self.max_manifest_bytes));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(TransportError::Connection(format!(
                        "{what}: connection cut after {} bytes ({})",
                        body.len(),
                        describe(&e, &self.base)
                    )));
                }
            }
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
        let what = format!("GET {target}");
        let mut request = self.client.get(format!("{}{target}", self.base));
        if from > 0 {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        let mut response = self.send(&what, request).await?;

        let mut body = RangedBody::begin(
            what,
            from,
            response.status().as_u16(),
            response.headers().get(CONTENT_RANGE).map(|v| v.as_bytes()),
            response.content_length(),
            sink,
        )?;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.write(&chunk, sink)?,
                Ok(None) => break,
                Err(e) => return Err(body.cut(&describe(&e, &self.base))),
            }
        }
        body.finish()
    }

    async fn send_report(&self, report: &Report) -> Result<(), TransportError> {
        let what = "POST /report";
        // The signature covers these exact bytes, so they are sent as they are.
        let body = serde_json::to_vec(report).expect("a report serialises");
        let mut request = self
            .client
            .post(format!("{}/report", self.base))
            .header(CONTENT_TYPE, "application/json");
        if let Some(key) = &self.report_key {
            request = request.header(SIGNATURE_HEADER, key.sign(&body));
        }
        let response = self.send(what, request.body(body)).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error(response.status().as_u16(), what.to_owned()))
        }
    }
}

/// Checks a server base URL; returns it as `http://host[:port]`.
fn validate_base(server: &str) -> Result<String, &'static str> {
    let url = Url::parse(server).map_err(|_| "is not an absolute URL")?;
    if url.scheme() != "http" {
        return Err("is not an http:// URL (TLS is not supported)");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials");
    }
    if url.path() != "/" {
        return Err("must not have a path");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(url.origin().ascii_serialization())
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for a
/// query value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What went wrong with a request, without the full URL (the caller names
/// the path) but with the underlying causes.
fn describe(error: &reqwest::Error, server: &str) -> String {
    let kind = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        format!("cannot connect to {server}")
    } else if error.is_body() || error.is_decode() {
        "reading the body failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let causes = chain(error);
    if causes.is_empty() {
        kind
    } else {
        format!("{kind}: {causes}")
    }
}

/// The messages of an error's sources, joined by `: ` (the top-level
/// reqwest message only repeats the URL).
fn chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_validated() {
        for good in [
            "http://192.168.4.1:8000",
            "http://van.local/",
            "http://[::1]:8000/",
        ] {
            assert!(validate_base(good).is_ok(), "{good}");
        }
        assert_eq!(
            validate_base("http://10.0.0.1:8000/").unwrap(),
            "http://10.0.0.1:8000"
        );
        assert_eq!(
            validate_base("http://van.local:80").unwrap(),
            "http://van.local"
        );
        for bad in [
            "https://van.local",
            "ftp://van.local",
            "van.local:8000",
            "http://van.local/ota",
            "http://van.local/?x=1",
            "http://van.local/#frag",
            "http://user:pw@van.local",
            "",
        ] {
            assert!(validate_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_percent_encoded() {
        assert_eq!(percent_encode("1.2.0-rc.1"), "1.2.0-rc.1");
        assert_eq!(percent_encode("1.2.0+build&x=y"), "1.2.0%2Bbuild%26x%3Dy");
        assert_eq!(percent_encode("1.0é"), "1.0%C3%A9");
    }

    #[test]
    fn manifest_bodies() {
        assert!(parse_manifest_body(b"null").unwrap().is_none());
        assert!(parse_manifest_body(b" \r\nnull\n").unwrap().is_none());
        let manifest =
            parse_manifest_body(br#"{"new":[],"update":[],"delete":[],"version":"1.1.0"}"#)
                .unwrap()
                .unwrap();
        assert_eq!(manifest.version, "1.1.0");
        for bad in [&b""[..], b"nul", b"[]", b"{\"version\": 1}", b"null null"] {
            assert!(
                matches!(
                    parse_manifest_body(bad),
                    Err(TransportError::BadResponse(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
