//! HTTP: a hand-built router on hyper 1 (HTTP/1.1), request/response helpers,
//! the error envelope, and the server loop (limits, timeouts, shutdown, logs).

pub mod body;
pub mod conn;
pub mod error;
pub mod json;
pub mod limits;
pub mod pipeline;
pub mod rate_limit;
pub mod request;
pub mod response;
pub mod router;
pub mod server;

pub use error::{ApiError, ErrorCode};
pub use request::{Query, Req};
pub use response::Resp;
