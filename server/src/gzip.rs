//! gzip for the pages people load over the van's WiFi (`GET /` and a
//! meter's page): the crew map of a city-sized plan is 8.6 times smaller
//! compressed (docs/benchmarks.md, "Crew map page weight"). Meters' routes
//! (manifest, files, reports) are never compressed: the Pycom library
//! reads their bytes as they come.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue, VARY};
use hyper::{Request, Response, Version};

use crate::body::Body;

/// Pages shorter than this go as they are (a gzip header and trailer
/// outweigh what little they save).
const MIN_BYTES: usize = 1024;

/// `page`, gzip-compressed when `request` accepts it (its
/// `Accept-Encoding` names `gzip`, `x-gzip` or `*` with a q-value above
/// 0) over HTTP/1.1 or later; `Vary: Accept-Encoding` either way, so that
/// a cache keeps both.
pub fn page<B>(request: &Request<B>, mut page: Response<Body>) -> Response<Body> {
    page.headers_mut()
        .insert(VARY, HeaderValue::from_static("accept-encoding"));
    if request.version() < Version::HTTP_11 || !accepts_gzip(request) {
        return page;
    }
    let Body::Bytes(Some(bytes)) = page.body() else {
        return page;
    };
    if bytes.len() < MIN_BYTES {
        return page;
    }
    let compressed = compress(bytes);
    let headers = page.headers_mut();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    *page.body_mut() = Body::from(compressed);
    page
}

/// Whether `request`'s `Accept-Encoding` takes gzip.
fn accepts_gzip<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let q = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok());
            ["gzip", "x-gzip", "*"]
                .iter()
                .any(|known| name.eq_ignore_ascii_case(known))
                && q.is_some_and(|q| q > 0.0)
        })
}

fn compress(bytes: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("writing to memory does not fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(header: &str) -> bool {
        let request = Request::get("/")
            .header(ACCEPT_ENCODING, header)
            .body(())
            .unwrap();
        accepts_gzip(&request)
    }

    #[test]
    fn accept_encoding_is_read_as_rfc_9110_says() {
        assert!(accepts("gzip"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("deflate, *"));
        assert!(accepts("x-gzip"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.0, br"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzipped"));
        assert!(!accepts("gzip;q=nonsense"));
        assert!(!accepts_gzip(&Request::get("/").body(()).unwrap()));
    }
}
