//! Request routing, the per-request count and log line, and the HTTP/1.0
//! header diet.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_RANGE, DATE, HOST, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode, Version as HttpVersion};
use otavan_protocol::{Report, Version};
use percent_encoding::percent_decode_str;
use tracing::{error, info};

use crate::body::Body;
use crate::files::{self, ServeOptions, Tracking};
use crate::gzip;
use crate::manifest_cache::{Answer, Source};
use crate::metrics::{ConnTap, Route};
use crate::pages;
use crate::respond;
use crate::state::Shared;
use otavan_store::Inserted;

/// Largest accepted `POST /report` body.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;
/// How long a client may take to send a report body.
const REPORT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The two ends of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client.
    pub peer: SocketAddr,
    /// Our side: used for URLs when an HTTP/1.0 request has no Host.
    pub local: SocketAddr,
}

/// Request bodies the service accepts: hyper's `Incoming` from a socket, or
/// any body built in-process (rehearsals call [`handle`] directly).
pub trait RequestBody: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send {}

impl<B> RequestBody for B where B: hyper::body::Body<Data = Bytes, Error: Into<BoxError>> + Send {}

/// The error type request bodies convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Handles one request, counts it and logs it (in-process callers:
/// downloads' progress is counted as their frames are handed out).
pub async fn handle<B: RequestBody>(
    shared: Arc<Shared>,
    conn: ConnInfo,
    request: Request<B>,
) -> Response<Body> {
    handle_tapped(shared, conn, None, request).await
}

/// [`handle`] for a request read from a socket whose writes `tap` counts
/// (see [`crate::metrics::tap`]).
pub async fn handle_tapped<B: RequestBody>(
    shared: Arc<Shared>,
    conn: ConnInfo,
    tap: Option<Arc<ConnTap>>,
    request: Request<B>,
) -> Response<Body> {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let version = request.version();
    let (route, mut response) = route(&shared, conn, tap.as_ref(), request).await;
    finish_headers(&mut response, version);
    let bytes = match method {
        Method::HEAD => 0,
        _ => content_length(&response),
    };
    let status = response.status().as_u16();
    shared.metrics.request(route, status);
    // Downloads count their bytes as they are sent.
    if !matches!(response.body(), Body::Download(_)) {
        shared.metrics.other_bytes(bytes);
    }
    info!(
        target: "otavan::request",
        %method,
        path = uri.path(),
        status,
        bytes,
        us = started.elapsed().as_micros() as u64,
        peer = %conn.peer,
        "request"
    );
    response
}

async fn route<B: RequestBody>(
    shared: &Arc<Shared>,
    conn: ConnInfo,
    tap: Option<&Arc<ConnTap>>,
    request: Request<B>,
) -> (Route, Response<Body>) {
    let read_only = matches!(*request.method(), Method::GET | Method::HEAD);
    let path = request.uri().path();
    match path {
        "/manifest.json" if read_only => (Route::Manifest, manifest(shared, conn, &request)),
        "/reports.csv" if read_only => (Route::ReportsCsv, reports_csv(shared).await),
        "/report" if request.method() == Method::POST => {
            (Route::Report, report(shared, request).await)
        }
        "/" if read_only => (
            Route::Dashboard,
            gzip::page(&request, pages::overview(shared).await),
        ),
        "/metrics" if read_only => (Route::Metrics, pages::metrics(shared)),
        "/manifest.json" | "/reports.csv" | "/" | "/metrics" => {
            (Route::Other, method_not_allowed("GET, HEAD"))
        }
        "/report" => (Route::Other, method_not_allowed("POST")),
        _ if path.starts_with(pages::DEVICES) => match read_only {
            true => (
                Route::Device,
                gzip::page(&request, pages::device(shared, path).await),
            ),
            false => (Route::Other, method_not_allowed("GET, HEAD")),
        },
        _ if read_only => (Route::File, file(shared, conn, tap, &request).await),
        _ => (Route::Other, method_not_allowed("GET, HEAD")),
    }
}

fn manifest<B>(shared: &Shared, conn: ConnInfo, request: &Request<B>) -> Response<Body> {
    let raw = current_ver(request.uri().query());
    let host = match request_host(request, conn) {
        Ok(host) => host,
        Err(message) => return respond::error(StatusCode::BAD_REQUEST, message),
    };
    let release = shared.release.load();
    // A halted target is not offered: "no update", whatever the meter runs.
    if shared.halt_of(release.index.target()).is_some() {
        return respond::content(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(crate::manifest::UP_TO_DATE),
        );
    }
    // Only valid versions are ever cached, so a hit needs no parsing.
    if let Some(body) = release.manifests.cached(&raw, &host) {
        shared.metrics.manifest_cache_hits.inc();
        return respond::content(StatusCode::OK, "application/json", body);
    }
    let current = match raw.as_ref() {
        "" => None,
        text => match Version::parse(text) {
            Ok(version) => Some(version),
            Err(e) => {
                let message = format!("current_ver is not a version: {e}");
                return respond::error(StatusCode::BAD_REQUEST, &message);
            }
        },
    };
    let own_host = is_own_host(&host, conn.local);
    let answer = release
        .manifests
        .answer(&release.index, current.as_ref(), &host, own_host);
    let len = answer.len();
    match answer.source() {
        Some(Source::Cache) => shared.metrics.manifest_cache_hits.inc(),
        Some(Source::Rendered) => shared.metrics.manifest_renders.inc(),
        None => {}
    }
    let body = match answer {
        Answer::Whole(body, _) => Body::from(body),
        Answer::Spliced(parts, _) => Body::Parts(parts.into(), None),
        Answer::Uncached(body, permit) => Body::Parts([body].into(), Some(permit)),
        Answer::Busy => {
            let mut response = respond::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many manifests in flight",
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    respond::with_body(StatusCode::OK, "application/json", len, body)
}

/// Whether `host` (a validated Host header) names the address the
/// connection came in on: what meters use, so it always gets cache entries.
fn is_own_host(host: &str, local: SocketAddr) -> bool {
    let ip = match host.parse::<SocketAddr>() {
        Ok(addr) => addr.ip(),
        Err(_) => match host.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(ip) => ip,
            Err(_) => return false,
        },
    };
    ip == local.ip()
}

/// The raw `current_ver` from a `GET /manifest.json` query string
/// (percent- and `+`-decoded, the first one when repeated); empty when
/// absent (a full install). Public so the fuzz targets and property tests
/// exercise the server's own parsing; the value is still unvalidated text.
pub fn current_ver(query: Option<&str>) -> Cow<'_, str> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "current_ver")
        .map_or(Cow::Borrowed(""), |(_, value)| value)
}

/// The authority manifest URLs point at: the Host header, or our own address
/// for HTTP/1.0 requests that have none. Hosts that could smuggle anything
/// into a URL are refused.
fn request_host<B>(request: &Request<B>, conn: ConnInfo) -> Result<Cow<'_, str>, &'static str> {
    let Some(host) = request.headers().get(HOST) else {
        return Ok(Cow::Owned(conn.local.to_string()));
    };
    let host = host.to_str().map_err(|_| "Host header is not ASCII")?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-:[]_".contains(c);
    if host.is_empty() || host.len() > 255 || !host.chars().all(allowed) {
        return Err("Host header is not a valid host[:port]");
    }
    Ok(Cow::Borrowed(host))
}

async fn file<B>(
    shared: &Shared,
    conn: ConnInfo,
    tap: Option<&Arc<ConnTap>>,
    request: &Request<B>,
) -> Response<Body> {
    let Some(url_path) = decode_path(request.uri().path()) else {
        return respond::error(StatusCode::NOT_FOUND, "not found");
    };
    let release = shared.release.load();
    match release.index.lookup(&url_path) {
        Some(file) => {
            let file = Arc::clone(file);
            drop(release);
            let options = ServeOptions {
                head: request.method() == Method::HEAD,
                ranges: request.version() != HttpVersion::HTTP_10,
            };
            let tracking = Tracking {
                downloads: &shared.metrics.downloads,
                peer: conn.peer,
                tap,
            };
            files::serve(&file, request.headers(), options, Some(tracking)).await
        }
        None => respond::error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The index key for a request path: percent-decoded, leading `/` removed.
/// Paths that do not decode to UTF-8 cannot name an indexed file.
fn decode_path(path: &str) -> Option<String> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    Some(decoded.strip_prefix('/')?.to_owned())
}

async fn report<B: RequestBody>(shared: &Shared, request: Request<B>) -> Response<Body> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REPORT_BYTES as u64) {
        return respond::error(StatusCode::PAYLOAD_TOO_LARGE, "report body over 16 KiB");
    }
    let (parts, body) = request.into_parts();
    let limited = Limited::new(body, MAX_REPORT_BYTES);
    let body = match tokio::time::timeout(REPORT_BODY_TIMEOUT, limited.collect()).await {
        Err(_) => return respond::error(StatusCode::REQUEST_TIMEOUT, "report body too slow"),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return respond::error(StatusCode::PAYLOAD_TOO_LARGE, "report body over 16 KiB");
        }
        Ok(Err(_)) => {
            return respond::error(StatusCode::BAD_REQUEST, "report body could not be read");
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let report: Report = match serde_json::from_slice(&body) {
        Ok(report) => report,
        Err(e) => {
            return respond::error(StatusCode::BAD_REQUEST, &format!("malformed report: {e}"));
        }
    };
    if let Err(e) = report.validate() {
        return respond::error(StatusCode::BAD_REQUEST, &format!("invalid report: {e}"));
    }
    // The signature covers the body's exact bytes, as they arrived.
    let verification = match shared.report_auth.check(&parts.headers, &report, &body) {
        Ok(verification) => verification,
        Err(refused) => {
            shared.metrics.reports_refused.inc();
            info!(device = %report.device_id, reason = %refused.reason, "report refused");
            return respond::error(refused.status, &refused.reason);
        }
    };
    match shared
        .reports
        .insert(
            &report,
            verification,
            SystemTime::now(),
            shared.position.current(),
        )
        .await
    {
        Ok(Inserted::New) => {
            shared.metrics.report_stored(report.state);
            respond::empty(StatusCode::NO_CONTENT)
        }
        // A re-sent report: stored already, and the meter should not send
        // it again.
        Ok(Inserted::Duplicate) => {
            shared.metrics.reports_duplicate.inc();
            respond::empty(StatusCode::NO_CONTENT)
        }
        Err(e) => {
            error!(error = %e, "cannot store report");
            respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "report could not be stored",
            )
        }
    }
}

async fn reports_csv(shared: &Shared) -> Response<Body> {
    match shared.reports.export_csv().await {
        Ok(csv) => respond::content(StatusCode::OK, "text/csv; charset=utf-8", Bytes::from(csv)),
        Err(e) => {
            error!(error = %e, "cannot export reports");
            respond::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reports could not be exported",
            )
        }
    }
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = respond::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// HTTP/1.0 clients (the Pycom library) find the end of the headers only if
/// it falls inside the first 100-byte read, so their responses carry just
/// the length (and range); everyone else also gets a Date.
fn finish_headers(response: &mut Response<Body>, version: HttpVersion) {
    let headers = response.headers_mut();
    if version == HttpVersion::HTTP_10 {
        let length = headers.remove(CONTENT_LENGTH);
        let range = headers.remove(CONTENT_RANGE);
        headers.clear();
        headers.extend(length.map(|v| (CONTENT_LENGTH, v)));
        headers.extend(range.map(|v| (CONTENT_RANGE, v)));
    } else {
        let now = httpdate::fmt_http_date(SystemTime::now());
        headers.insert(
            DATE,
            HeaderValue::from_str(&now).expect("HTTP date is a valid header"),
        );
    }
}

fn content_length(response: &Response<Body>) -> u64 {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}
