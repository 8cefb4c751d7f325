//! Small response builders shared by the routes.

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::body::Body;

/// A response with `content` and its type.
pub fn content(status: StatusCode, content_type: &'static str, content: Bytes) -> Response<Body> {
    with_body(status, content_type, content.len(), Body::from(content))
}

/// A response whose body `body` already holds, `len` bytes long.
pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    len: usize,
    body: Body,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, len)
        .body(body)
        .expect("valid response")
}

/// A JSON error: `{"error": message}`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    content(status, "application/json", Bytes::from(body))
}

/// A bodiless response.
pub fn empty(status: StatusCode) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("valid response")
}
