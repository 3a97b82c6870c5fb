//! Response building: the body type, JSON and error responses, image responses with their
//! caching headers, conditional requests and byte ranges.

use crate::error::Error;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use std::time::SystemTime;

/// The response body type: whole bytes (nearly every answer), or a stream (ZIP downloads).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// A body of these bytes.
pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body (HEAD).
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A `200 OK` streamed from `chunks` (each an `Ok` piece of the body, or the error that cuts
/// it short), with its type and `Content-Disposition`, never cached.
pub fn stream(
    content_type: &str,
    disposition: &str,
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> Response<Body> {
    let frames = futures_util::stream::unfold(chunks, |mut rx| async move {
        rx.recv()
            .await
            .map(|c| (c.map(hyper::body::Frame::data), rx))
    });
    let body = http_body_util::StreamBody::new(frames).boxed_unsync();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, hv(content_type))
        .header(header::CONTENT_DISPOSITION, hv(disposition))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .unwrap_or_else(|_| {
            let mut r = Response::new(empty());
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
}

/// Headers common to image responses.
#[derive(Debug, Clone)]
pub struct ImageMeta<'a> {
    pub content_type: &'a str,
    pub etag: &'a str,
    pub last_modified: Option<SystemTime>,
    pub cache_control: &'a str,
    /// A CDN-only caching header (`CDN-Cache-Control` or the like): name and value.
    pub cdn_cache_control: Option<(&'a str, &'a str)>,
    pub vary_accept: bool,
    /// `Content-Disposition` (a download), when asked for.
    pub content_disposition: Option<&'a str>,
    pub x_cache: Option<&'static str>,
    pub accept_ranges: bool,
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn base(status: StatusCode, meta: &ImageMeta<'_>) -> http::response::Builder {
    let mut b = Response::builder()
        .status(status)
        .header(header::ETAG, hv(meta.etag))
        .header(header::CACHE_CONTROL, hv(meta.cache_control))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // An image opened directly (or a polyglot file) can run nothing.
        .header(header::CONTENT_SECURITY_POLICY, "default-src 'none'");
    if let Some(t) = meta.last_modified {
        b = b.header(header::LAST_MODIFIED, hv(&httpdate::fmt_http_date(t)));
    }
    if let Some((name, value)) = meta.cdn_cache_control {
        if let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) {
            b = b.header(name, hv(value));
        }
    }
    if meta.vary_accept {
        b = b.header(header::VARY, "Accept");
    }
    if let Some(d) = meta.content_disposition {
        b = b.header(header::CONTENT_DISPOSITION, hv(d));
    }
    if let Some(x) = meta.x_cache {
        b = b.header("x-cache", x);
    }
    if meta.accept_ranges {
        b = b.header(header::ACCEPT_RANGES, "bytes");
    }
    b
}

fn finish(b: http::response::Builder, body: Bytes) -> Response<Body> {
    b.body(full(body)).unwrap_or_else(|_| {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// A 200 (or 206 with `range = Some((start, end_inclusive, total))`) image response. HEAD gets the
/// same headers and no body.
pub fn image(
    meta: &ImageMeta<'_>,
    body: Bytes,
    range: Option<(u64, u64, u64)>,
    head: bool,
) -> Response<Body> {
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut b = base(status, meta)
        .header(header::CONTENT_TYPE, hv(meta.content_type))
        .header(header::CONTENT_LENGTH, body.len());
    if let Some((s, e, total)) = range {
        b = b.header(header::CONTENT_RANGE, hv(&format!("bytes {s}-{e}/{total}")));
    }
    finish(b, if head { Bytes::new() } else { body })
}

/// A `200 OK` with the headers of an earlier answer of these bytes (the request memo's).
pub fn with_headers(headers: http::HeaderMap, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.headers_mut() = headers;
    r
}

/// A HEAD answer whose length is known without reading the body.
pub fn image_head(meta: &ImageMeta<'_>, len: u64) -> Response<Body> {
    let b = base(StatusCode::OK, meta)
        .header(header::CONTENT_TYPE, hv(meta.content_type))
        .header(header::CONTENT_LENGTH, len);
    finish(b, Bytes::new())
}

/// 304 Not Modified: validators and caching headers, no body.
pub fn not_modified(meta: &ImageMeta<'_>) -> Response<Body> {
    finish(base(StatusCode::NOT_MODIFIED, meta), Bytes::new())
}

/// A JSON response.
/// A `200 OK` JSON response.
pub fn json_ok(value: &serde_json::Value, cache_control: &str) -> Response<Body> {
    json(StatusCode::OK, value, cache_control)
}

/// A `201 Created` JSON response.
pub fn json_created(value: &serde_json::Value, cache_control: &str) -> Response<Body> {
    json(StatusCode::CREATED, value, cache_control)
}

/// `503 Service Unavailable` with a JSON body (`/ready` while a dependency is down).
pub fn json_unavailable(value: &serde_json::Value) -> Response<Body> {
    json(StatusCode::SERVICE_UNAVAILABLE, value, "no-store")
}

/// `202 Accepted` with a JSON body.
pub fn json_accepted(value: &serde_json::Value, cache_control: &str) -> Response<Body> {
    json(StatusCode::ACCEPTED, value, cache_control)
}

pub fn json(status: StatusCode, value: &serde_json::Value, cache_control: &str) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, hv(cache_control))
        .header(header::CONTENT_LENGTH, body.len());
    finish(b, Bytes::from(body))
}

/// A file built into the binary (the docs page and its script): `200 OK` with its type, an
/// ETag of the version, `Cache-Control` and a `Content-Security-Policy` that allows only this
/// origin.
pub fn asset(content_type: &str, body: &'static [u8], cache_control: &str) -> Response<Body> {
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, hv(content_type))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, hv(cache_control))
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        )
        .header(header::CONTENT_LENGTH, body.len());
    finish(b, Bytes::from_static(body))
}

/// A file of the web interface: `200 OK` with its type, its `ETag`, `Cache-Control`, and the
/// pages' strict `Content-Security-Policy` (this origin only, no inline script or style); `304`
/// when `if_none_match` has the ETag. HEAD gets no body.
pub fn ui_file(
    content_type: &str,
    body: Bytes,
    etag: &str,
    cache_control: &str,
    if_none_match_header: Option<&str>,
    head: bool,
) -> Response<Body> {
    let fresh = if_none_match(if_none_match_header, etag);
    let b = Response::builder()
        .status(if fresh {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, hv(content_type))
        .header(header::ETAG, hv(etag))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, hv(cache_control))
        .header(header::REFERRER_POLICY, "same-origin")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        );
    if fresh || head {
        let b = b.header(header::CONTENT_LENGTH, if fresh { 0 } else { body.len() });
        return finish(b, Bytes::new());
    }
    let b = b.header(header::CONTENT_LENGTH, body.len());
    finish(b, body)
}

/// The reason phrase of a status (`404` → `Not Found`).
pub fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// Plain text (metrics).
pub fn text(body: String) -> Response<Body> {
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .header(header::CACHE_CONTROL, "no-store");
    finish(b, Bytes::from(body))
}

/// `200 OK`, `text/plain; charset=utf-8`, with a `Cache-Control`.
pub fn plain(body: String, cache_control: &str) -> Response<Body> {
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, hv(cache_control))
        .header(header::CONTENT_LENGTH, body.len());
    finish(b, Bytes::from(body))
}

/// 302 Found to `location`, never cached.
pub fn redirect(location: &str) -> Response<Body> {
    let b = Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, hv(location))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, 0);
    finish(b, Bytes::new())
}

/// The error response: JSON body, `Cache-Control: no-store`, plus `Retry-After` for 503 and
/// `Content-Range` for 416. HEAD gets no body.
pub fn error(e: &Error, head: bool) -> Response<Body> {
    error_cached(e, head, "no-store")
}

/// An error's status with an image body instead of JSON (a placeholder), never cached.
pub fn error_image(e: &Error, content_type: &str, body: Bytes, head: bool) -> Response<Body> {
    let b = Response::builder()
        .status(e.status())
        .header(header::CONTENT_TYPE, hv(content_type))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_LENGTH, body.len());
    finish(b, if head { Bytes::new() } else { body })
}

/// `error` with another `Cache-Control` (a 404 that caches may keep briefly).
pub fn error_cached(e: &Error, head: bool, cache_control: &str) -> Response<Body> {
    let mut r = json(e.status(), &e.body(), cache_control);
    let h = r.headers_mut();
    match e {
        Error::Busy => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        Error::RangeNotSatisfiable { len } => {
            h.insert(header::CONTENT_RANGE, hv(&format!("bytes */{len}")));
        }
        Error::MethodNotAllowed { allow } => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        Error::RateLimited { retry_after } => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        Error::Unauthorized(_) => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    if head {
        *r.body_mut() = empty();
    }
    r
}

/// Does `If-None-Match` match `etag`? (weak comparison, `*` matches anything)
pub fn if_none_match(header: Option<&str>, etag: &str) -> bool {
    let Some(h) = header else { return false };
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    h.split(',').any(|t| t.trim() == "*" || strip(t) == want)
}

/// `If-Modified-Since` (used only when there is no `If-None-Match`): not modified since?
pub fn not_modified_since(header: Option<&str>, last_modified: Option<SystemTime>) -> bool {
    match (
        header.and_then(|h| httpdate::parse_http_date(h).ok()),
        last_modified,
    ) {
        (Some(since), Some(lm)) => crate::util::clock::secs(lm) <= crate::util::clock::secs(since),
        _ => false,
    }
}

/// The outcome of a `Range` header against a body of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReq {
    /// No (usable) range: send everything.
    Full,
    /// `start..=end`.
    Partial(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parse a single `bytes=` range. Multiple ranges and malformed headers are ignored (200).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeReq {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeReq::Full;
    };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeReq::Full;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeReq::Unsatisfiable,
            Some(n) if len == 0 => {
                let _ = n;
                RangeReq::Unsatisfiable
            }
            Some(n) => RangeReq::Partial(len.saturating_sub(n), len - 1),
            None => RangeReq::Full,
        },
        (start, end) => {
            let Some(s) = num(start) else {
                return RangeReq::Full;
            };
            let e = if end.is_empty() {
                Some(len.saturating_sub(1))
            } else {
                match num(end) {
                    Some(e) if e >= s => Some(e.min(len.saturating_sub(1))),
                    Some(_) => return RangeReq::Full,
                    None => return RangeReq::Full,
                }
            };
            match e {
                Some(e) if s < len => RangeReq::Partial(s, e),
                _ => RangeReq::Unsatisfiable,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeReq::Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeReq::Partial(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeReq::Partial(5, 9));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeReq::Partial(7, 9));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeReq::Partial(0, 9));
        assert_eq!(
            parse_range(Some("bytes=8-100"), 10),
            RangeReq::Partial(8, 9)
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeReq::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeReq::Full);
        assert_eq!(parse_range(Some("bytes=5-1"), 10), RangeReq::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeReq::Full);
        assert_eq!(parse_range(Some("bytes=x-1"), 10), RangeReq::Full);
    }

    #[test]
    fn etag_matching() {
        assert!(if_none_match(Some("\"abc\""), "\"abc\""));
        assert!(if_none_match(Some("W/\"abc\", \"x\""), "\"abc\""));
        assert!(if_none_match(Some("*"), "\"abc\""));
        assert!(!if_none_match(Some("\"abd\""), "\"abc\""));
        assert!(!if_none_match(None, "\"abc\""));
    }
}
