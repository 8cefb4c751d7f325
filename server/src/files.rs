//! Serving one indexed file: conditional requests, single ranges, HEAD.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, IF_RANGE, RANGE,
};
use hyper::{Response, StatusCode};
use tracing::error;

use crate::body::{Body, Download, FileStream};
use crate::index::IndexedFile;
use crate::metrics::{ConnTap, Downloads};
use crate::range::RangeRequest;
use crate::respond;

/// How to answer a file request.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// HEAD: headers only.
    pub head: bool,
    /// Honour `Range` (not for HTTP/1.0 clients, whose header block must
    /// stay short, and which never send one).
    pub ranges: bool,
}

/// Where a download is registered (see [`crate::metrics::downloads`]).
#[derive(Clone, Copy)]
pub struct Tracking<'a> {
    /// The server's downloads in flight.
    pub downloads: &'a Arc<Downloads>,
    /// The client.
    pub peer: SocketAddr,
    /// The connection's byte counter, when served from a socket.
    pub tap: Option<&'a Arc<ConnTap>>,
}

/// Builds the response for `file`. With `tracking`, a body that sends
/// content is registered as a download.
pub async fn serve(
    file: &Arc<IndexedFile>,
    request: &HeaderMap,
    options: ServeOptions,
    tracking: Option<Tracking<'_>>,
) -> Response<Body> {
    let etag = format!("\"{}\"", file.sha1);
    if header_str(request, IF_NONE_MATCH).is_some_and(|tags| etag_matches(tags, &etag)) {
        return with_file_headers(Response::builder().status(StatusCode::NOT_MODIFIED), &etag)
            .body(Body::empty())
            .expect("valid response");
    }
    // If-Range: resume only if the client holds the same content.
    let range_header = match header_str(request, IF_RANGE) {
        _ if !options.ranges => None,
        Some(tag) if tag != etag => None,
        _ => header_str(request, RANGE),
    };
    let (status, start, len) = match RangeRequest::parse(range_header, file.size) {
        RangeRequest::Full => (StatusCode::OK, 0, file.size),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(CONTENT_RANGE, format!("bytes */{}", file.size))
                .header(CONTENT_LENGTH, 0)
                .body(Body::empty())
                .expect("valid response");
        }
    };
    let mut builder = with_file_headers(Response::builder().status(status), &etag)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len);
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        builder = builder.header(CONTENT_RANGE, format!("bytes {start}-{end}/{}", file.size));
    }
    let register = || tracking.map(|t| t.downloads.start(file, t.peer, len, t.tap));
    let body = if options.head {
        Body::empty()
    } else if let Some(content) = file.cached() {
        let content = content.slice(start as usize..(start + len) as usize);
        match register() {
            Some(guard) => Body::Download(Download::memory(content, guard)),
            None => Body::from(content),
        }
    } else {
        match open(file).await {
            Ok(opened) => match FileStream::new(opened, start, len) {
                Ok(stream) => match register() {
                    Some(guard) => Body::Download(Download::file(stream, guard)),
                    None => Body::File(stream),
                },
                Err(e) => {
                    return respond::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &format!("cannot seek: {e}"),
                    );
                }
            },
            Err(message) => {
                error!(path = %file.disk_path.display(), %message, "cannot serve indexed file");
                return respond::error(StatusCode::INTERNAL_SERVER_ERROR, &message);
            }
        }
    };
    builder.body(body).expect("valid response")
}

/// Opens the file and checks that it is still the size the index recorded,
/// so a release edited in place is refused rather than served half-changed.
async fn open(file: &Arc<IndexedFile>) -> Result<std::fs::File, String> {
    let path = file.disk_path.clone();
    let expected = file.size;
    tokio::task::spawn_blocking(move || {
        let opened = std::fs::File::open(&path).map_err(|e| format!("cannot open file: {e}"))?;
        let size = opened
            .metadata()
            .map_err(|e| format!("cannot stat file: {e}"))?
            .len();
        if size != expected {
            return Err(
                "file changed on disk since it was indexed; reload the server (SIGHUP)".into(),
            );
        }
        Ok(opened)
    })
    .await
    .map_err(|e| format!("file task failed: {e}"))?
}

fn with_file_headers(
    builder: hyper::http::response::Builder,
    etag: &str,
) -> hyper::http::response::Builder {
    builder
        .header(ETAG, etag)
        .header(ACCEPT_RANGES, HeaderValue::from_static("bytes"))
}

fn header_str(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-None-Match` holds `*` or a list of entity tags (weak ones compare
/// weakly, RFC 9110 13.1.2).
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}
