//! The accept loop and the per-request pipeline.
//!
//! Per connection: a cap on open connections (a semaphore; accept waits when it
//! is full), a header read timeout, a header size limit. Per request: request
//! id, routing, body limit, the handler in its own task (a panic becomes a 500
//! that says only `internal`), CORS if configured, metrics, one log line.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::error::{ApiError, ErrorCode};
use super::request::Req;
use super::response::{self, Resp};
use super::router::{self, Match};
use crate::app::App;

/// Largest request body accepted (CONTRACT §6).
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest request head (start line and headers); beyond it hyper answers 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and drains in-flight requests, then returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Starts serving `app` on `listener` in the background.
pub fn start(app: Arc<App>, listener: TcpListener) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let (tx, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(app.config.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = rx.changed() => break,
            };
            let stream = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = rx.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            let header_timeout = app.config.header_timeout;
            let conn_app = app.clone();
            let svc = service_fn(move |req| handle(conn_app.clone(), req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_header_size(MAX_HEADER_BYTES)
                .max_headers(100)
                .serve_connection(TokioIo::new(stream), svc);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        }
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                tracing::warn!("shutdown: connections still open after 10 s, closing them");
            }
        }
    });
    Ok(RunningServer { addr, shutdown: tx, task })
}

/// A client-sent request id we are willing to echo.
fn sane_request_id(v: Option<&HeaderValue>) -> Option<String> {
    let s = v?.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_string())
}

/// How much of an over-limit body we read and discard before answering 413.
///
/// A client streaming a body is still writing when we decide; if we answered
/// and closed at once, it would see a broken pipe instead of our 413 (the
/// same "lingering close" nginx does). Beyond this, or after
/// [`DRAIN_TIME`], we answer and close anyway.
const DRAIN_MAX: u64 = 8 * 1024 * 1024;
/// The longest we spend discarding an over-limit body.
const DRAIN_TIME: Duration = Duration::from_secs(2);

async fn read_body(mut body: Incoming, declared: Option<u64>) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(ErrorCode::PayloadTooLarge, "request body exceeds 1 MiB")
            .detail("maxBytes", MAX_BODY as u64)
            .header("connection", "close".to_string())
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        if declared.is_some_and(|n| n <= DRAIN_MAX) {
            let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut body, DRAIN_MAX)).await;
        }
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(64 * 1024) as usize);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "could not read request body"));
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut body, DRAIN_MAX)).await;
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Reads and discards a body we answer without using, within the drain bounds.
async fn discard_body(mut body: Incoming) {
    if !hyper::body::Body::is_end_stream(&body) {
        let _ = tokio::time::timeout(DRAIN_TIME, drain(&mut body, DRAIN_MAX)).await;
    }
}

/// Reads and discards up to `max` more bytes of `body`.
async fn drain(body: &mut Incoming, max: u64) {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > max {
                return;
            }
        }
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let started = Instant::now();
    let request_id = sane_request_id(req.headers().get("x-request-id"))
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let origin = app.cors_origin(req.headers());
    let log_org = Arc::new(OnceLock::new());

    let (mut resp, route) = respond(&app, req, &request_id, &log_org, origin.is_some()).await;

    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    if let Some(origin) = origin {
        h.insert("access-control-allow-origin", origin);
        h.insert("access-control-expose-headers", HeaderValue::from_static("x-request-id, retry-after"));
        h.insert("vary", HeaderValue::from_static("origin"));
    }
    let status = resp.status().as_u16();
    let latency = started.elapsed();
    app.metrics.observe_request(method.as_str(), route, status, latency);
    tracing::info!(
        target: "wa_gateway::access",
        method = %method,
        path = %path,
        status,
        latency_ms = %format_args!("{:.3}", latency.as_secs_f64() * 1000.0),
        org = log_org.get().map(String::as_str).unwrap_or("-"),
        request_id = %request_id,
    );
    Ok(resp)
}

async fn respond(
    app: &Arc<App>,
    req: Request<Incoming>,
    request_id: &str,
    log_org: &Arc<OnceLock<String>>,
    cors: bool,
) -> (Resp, &'static str) {
    let path = req.uri().path();
    let (handler, route_label, id): (router::Handler, &'static str, _) = match router::find(req.method(), path) {
        Match::Found(route, id) => (route.handler, route.pattern, id),
        // A benchmark's fixed response takes the same pipeline as any route
        // (body read, request built, handler task), so comparing an endpoint
        // with it measures exactly that endpoint's own work.
        Match::NotFound if app.extra_static(path).is_some() => (serve_extra_static, "static", None),
        Match::MethodNotAllowed(allowed) => {
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if cors && req.method() == Method::OPTIONS {
                let mut r = response::empty(204);
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    h.insert("access-control-allow-methods", v);
                }
                h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type, x-request-id"));
                h.insert("access-control-max-age", HeaderValue::from_static("600"));
                return (r, "preflight");
            }
            let e = ApiError::new(ErrorCode::MethodNotAllowed, format!("{} is not allowed here", req.method()))
                .detail("allowed", allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>())
                .header("allow", allow);
            discard_body(req.into_body()).await;
            return (response::error(&e, request_id), "unmatched");
        }
        Match::NotFound => {
            let e = ApiError::new(ErrorCode::NotFound, "no such route");
            discard_body(req.into_body()).await;
            return (response::error(&e, request_id), "unmatched");
        }
    };
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match read_body(body, declared).await {
        Ok(b) => b,
        Err(e) => return (response::error(&e, request_id), route_label),
    };
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        id,
        request_id: request_id.to_string(),
        log_org: log_org.clone(),
    };
    let result = match tokio::spawn(handler(app.clone(), req)).await {
        Ok(r) => r,
        Err(join) => Err(ApiError::internal(format!("handler panicked: {join}"))),
    };
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(cause) = &e.cause {
                tracing::error!(request_id, cause = %cause, "internal error");
            }
            response::error(&e, request_id)
        }
    };
    (resp, route_label)
}

fn serve_extra_static(app: Arc<App>, req: Req) -> router::HandlerFuture {
    Box::pin(async move {
        let body = app.extra_static(&req.path).unwrap_or_default();
        Ok(response::bytes(200, "application/json", body))
    })
}
