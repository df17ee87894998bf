//! Response builders: JSON bodies, empty bodies, and the error envelope.

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::error::ApiError;

/// A response body: buffered, or a live stream ([`super::body`]).
pub type Body = super::body::Body;
/// A response.
pub type Resp = Response<Body>;

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A response with raw bytes and a content type.
pub fn bytes(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status(code);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response.
pub fn json(code: u16, value: &impl Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => bytes(code, "application/json", body),
        Err(e) => error(&ApiError::internal(e), ""),
    }
}

/// A response without a body (204).
pub fn empty(code: u16) -> Resp {
    let mut r = Response::new(Body::full(Bytes::new()));
    *r.status_mut() = status(code);
    r
}

/// The error envelope, with the error's extra headers.
pub fn error(e: &ApiError, request_id: &str) -> Resp {
    let body = serde_json::to_vec(&e.body(request_id)).unwrap_or_default();
    let mut r = bytes(e.code.status(), "application/json", body);
    for (name, value) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    r
}

/// A streamed response ([`super::body::channel`]) with a content type.
pub fn stream(code: u16, content_type: &'static str, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = status(code);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
