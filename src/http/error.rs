//! The one error type every handler returns, and its single mapping to the
//! contract's envelope: `{"error": {"code", "message", "details"}}`.

use std::fmt;

use serde_json::{json, Map, Value};

use crate::auth::AuthError;
use crate::store::StoreError;

/// The contract's error codes (CONTRACT §3), each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidRequest,
    InvalidCursor,
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::Conflict => "conflict",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidRequest | ErrorCode::InvalidCursor => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// A failed request: what the client is told, plus (for 500s) the cause for the log.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
    /// Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// Logged, never sent.
    pub cause: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: Map::new(), headers: Vec::new(), cause: None }
    }

    /// Adds one `details` member.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiError {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 `invalid_request` naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message).detail("field", field)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 400 `invalid_cursor`.
    pub fn invalid_cursor(message: &str) -> ApiError {
        ApiError::new(ErrorCode::InvalidCursor, message).detail("field", "cursor")
    }

    /// 500 `internal`; the cause goes to the log only.
    pub fn internal(cause: impl fmt::Display) -> ApiError {
        let mut e = ApiError::new(ErrorCode::Internal, "internal error");
        e.cause = Some(cause.to_string());
        e
    }

    /// The response body, with the request id in `details` for 500s.
    pub fn body(&self, request_id: &str) -> Value {
        let mut details = self.details.clone();
        if self.code == ErrorCode::Internal {
            details.insert("requestId".into(), request_id.into());
        }
        json!({"error": {"code": self.code.as_str(), "message": self.message, "details": details}})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::DiskFull { free, min } => {
                ApiError::new(ErrorCode::Unavailable, "writes are paused: the data disk is nearly full (reads still work)")
                    .detail("freeBytes", free)
                    .detail("minFreeBytes", min)
                    .header("retry-after", "30")
            }
            e @ StoreError::Failed(_) => ApiError::new(ErrorCode::Unavailable, e.to_string()).header("retry-after", "5"),
            // The write that met the I/O error itself (the store latches it
            // and reopens the file), or a read caught by that reopen: not
            // acknowledged, try again.
            StoreError::Db(e @ (redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed)) => {
                let mut out = ApiError::new(ErrorCode::Unavailable, "the data file could not be written; writes resume once it can")
                    .header("retry-after", "5");
                out.cause = Some(e.to_string());
                out
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(m) => ApiError::new(ErrorCode::Unauthorized, m)
                .header("www-authenticate", r#"Bearer realm="wa-gateway""#),
            AuthError::Forbidden(m) => ApiError::new(ErrorCode::Forbidden, m),
            AuthError::Store(e) => e.into(),
        }
    }
}
