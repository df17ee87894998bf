//! The per-request pipeline, in the order §11 fixes:
//!
//! 1. request id; `Host` required on HTTP/1.1; route by method and path
//!    (`HEAD` is served wherever `GET` is);
//! 2. for `/api/` routes: the failed-auth limit of the client's address, the
//!    bearer token, then the caller's own rate limit — all before one byte
//!    of the body is read (so no `100 Continue` goes out to a stranger);
//! 3. the body, under the size limit and the body timeout;
//! 4. the handler in its own task (a panic becomes a 500 that says only
//!    `internal`); CORS if configured; metrics; one access-log line.
//!
//! A body we decided not to read is left to the connection, which answers
//! and then discards what the client still sends (a lingering close, so the
//! client reads our answer instead of a reset).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::{Method, Request, Version};

use super::conn::{mono_now, ConnState, Phase};
use super::error::{ApiError, ErrorCode};
use super::request::Req;
use super::response::{self, Resp};
use super::router::{self, Match};
use crate::app::App;
use crate::auth::Principal;

/// Largest request body accepted (CONTRACT §6).
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a request ends without a response: the connection is cut instead.
#[derive(Debug)]
pub struct Cutoff(&'static str);

impl std::fmt::Display for Cutoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Cutoff {}

/// A client-sent request id we are willing to echo.
fn sane_request_id(v: Option<&HeaderValue>) -> Option<String> {
    let s = v?.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_string())
}

/// Whether the request carries a body at all.
fn has_body(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(TRANSFER_ENCODING)
        || declared_from(req.headers()).is_some_and(|n| n > 0)
}


/// One request as the access log and the metrics see it.
pub struct Access<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route: &'static str,
    pub status: u16,
    pub latency: Duration,
    pub org: &'a str,
    pub request_id: &'a str,
}

impl Access<'_> {
    /// A request hyper or the connection refused before it was routed.
    pub fn unrouted(status: u16, latency: Duration) -> Access<'static> {
        Access { method: "-", path: "-", route: "unrouted", status, latency, org: "-", request_id: "-" }
    }

    /// One access-log line and the request metrics.
    pub fn log(&self, app: &App) {
        app.metrics.observe_request(self.method, self.route, self.status, self.latency);
        tracing::info!(
            target: "wa_gateway::access",
            method = self.method,
            path = self.path,
            status = self.status,
            latency_ms = %format_args!("{:.3}", self.latency.as_secs_f64() * 1000.0),
            org = self.org,
            request_id = self.request_id,
        );
    }
}

/// Serves one request on `conn`.
pub async fn handle(app: Arc<App>, conn: Arc<ConnState>, req: Request<Incoming>) -> Result<Resp, Cutoff> {
    conn.set_phase(Phase::Handling);
    let started = Instant::now();
    let request_id = sane_request_id(req.headers().get("x-request-id"))
        .unwrap_or_else(|| ulid::Ulid::generate().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let origin = app.cors_origin(req.headers());
    let log_org = Arc::new(OnceLock::new());

    let outcome = respond(&app, &conn, req, &request_id, &log_org, origin.is_some()).await;
    let org = log_org.get().map(String::as_str).unwrap_or("-");
    let (mut resp, route) = match outcome {
        Ok(r) => r,
        Err((cut, route)) => {
            let latency = started.elapsed();
            Access { method: method.as_str(), path: &path, route, status: 408, latency, org, request_id: &request_id }.log(&app);
            return Err(cut);
        }
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    if let Some(origin) = origin {
        h.insert("access-control-allow-origin", origin);
        h.insert("access-control-expose-headers", HeaderValue::from_static("x-request-id, retry-after"));
        h.insert("vary", HeaderValue::from_static("origin"));
    }
    let (status, latency) = (resp.status().as_u16(), started.elapsed());
    Access { method: method.as_str(), path: &path, route, status, latency, org, request_id: &request_id }.log(&app);
    // A streamed answer keeps the connection busy with us: no idle timeout
    // (its heartbeats and the write timeout watch it instead).
    conn.set_phase(if resp.body().is_stream() { Phase::Streaming } else { Phase::Idle });
    Ok(resp)
}

type Outcome = Result<(Resp, &'static str), (Cutoff, &'static str)>;

/// Answers `e` without reading the body; a body left unread closes the
/// connection after the answer.
fn refuse(conn: &ConnState, e: ApiError, request_id: &str, route: &'static str, body_left: bool) -> Outcome {
    if !body_left {
        return Ok((response::error(&e, request_id), route));
    }
    conn.leave_body();
    Ok((response::error(&e.header("connection", "close"), request_id), route))
}

async fn respond(
    app: &Arc<App>,
    conn: &Arc<ConnState>,
    req: Request<Incoming>,
    request_id: &str,
    log_org: &Arc<OnceLock<String>>,
    cors: bool,
) -> Outcome {
    let body_left = has_body(&req);
    if req.version() == Version::HTTP_11 && !req.headers().contains_key(HOST) {
        let e = ApiError::new(ErrorCode::InvalidRequest, "HTTP/1.1 requests must carry a Host header").detail("field", "host");
        return refuse(conn, e, request_id, "unrouted", body_left);
    }
    let path = req.uri().path();
    let (route, id): (&'static router::Route, _) = match router::find(req.method(), path) {
        Match::Found(route, id) => (route, id),
        // A benchmark's fixed response takes the same pipeline as any route
        // (request built, handler task), so comparing an endpoint with it
        // measures exactly that endpoint's own work.
        Match::NotFound if app.extra_static(path).is_some() => (router::static_route(), (None, None)),
        Match::MethodNotAllowed(allowed) => {
            let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            if cors && req.method() == Method::OPTIONS {
                let mut r = response::empty(204);
                let h = r.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    h.insert("access-control-allow-methods", v);
                }
                h.insert("access-control-allow-headers", HeaderValue::from_static("authorization, content-type, x-request-id, idempotency-key"));
                h.insert("access-control-max-age", HeaderValue::from_static("600"));
                return Ok((r, "preflight"));
            }
            let e = ApiError::new(ErrorCode::MethodNotAllowed, format!("{} is not allowed here", req.method()))
                .detail("allowed", allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>())
                .header("allow", allow);
            return refuse(conn, e, request_id, "unmatched", body_left);
        }
        Match::NotFound => return refuse(conn, ApiError::new(ErrorCode::NotFound, "no such route"), request_id, "unmatched", body_left),
    };
    let label = route.pattern;

    let principal = if route.needs_auth() {
        let ip = app.client_ip(conn.peer.ip(), req.headers());
        match admit(app, &req, ip, log_org).await {
            Ok(p) => Some(p),
            Err(e) => return refuse(conn, e, request_id, label, body_left),
        }
    } else {
        None
    };

    let (parts, body) = req.into_parts();
    // A body that carries media counts against the media budget from its
    // first byte: the charge is taken before reading it (CONTRACT §11 cont.).
    let media_charge = if principal.is_some() && body_left && route.max_body > MAX_BODY {
        match app.charge_media(media_charge_for(declared_from(&parts.headers), route.max_body, route.pattern.ends_with("/batch")), app.config.messaging.media_budget_wait).await {
            Ok(c) => Some(c),
            Err(e) => return refuse(conn, e, request_id, label, true),
        }
    } else {
        None
    };
    let body = if principal.is_some() && body_left {
        conn.set_phase(Phase::Body);
        let read = tokio::time::timeout(app.config.timeouts.body, read_body(body, declared_from(&parts.headers), route.max_body)).await;
        conn.set_phase(Phase::Handling);
        match read {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return refuse(conn, e, request_id, label, true),
            Err(_) => return Err((Cutoff("request body not received in time"), label)),
        }
    } else {
        if body_left {
            // Routes without auth take no body: it is never read.
            conn.leave_body();
        }
        Bytes::new()
    };
    let close = body_left && principal.is_none();
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        id: id.0,
        sub_id: id.1,
        request_id: request_id.to_string(),
        log_org: log_org.clone(),
        principal,
        conn: Some(conn.clone()),
        media_charge,
    };
    let result = match tokio::spawn((route.handler)(app.clone(), req)).await {
        Ok(r) => r,
        Err(join) => Err(ApiError::internal(format!("handler panicked: {join}"))),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(cause) = &e.cause {
                tracing::error!(request_id, cause = %cause, "internal error");
            }
            if e.details.contains_key("minFreeBytes") {
                app.metrics.write_refused();
            }
            response::error(&e, request_id)
        }
    };
    if close {
        resp.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok((resp, label))
}

/// What a media-carrying body costs at its peak, charged before it is read:
/// the body itself plus what base64 in it decodes to (3/4 of it), which is
/// held beside the body until the body is dropped. A body of unknown length
/// (chunked) is charged as the route's largest.
/// A batch's items are parsed into a JSON tree first (their strings are
/// copied once), and each item's media is decoded and staged in turn.
pub fn media_charge_for(declared: Option<u64>, max_body: usize, batch: bool) -> u64 {
    let body = declared.unwrap_or(max_body as u64).min(max_body as u64);
    if batch {
        2 * body + (body / 2 * 3).min(2 * crate::messaging::media_fetch::MAX_MEDIA_BYTES as u64)
    } else {
        body + body / 4 * 3
    }
}

fn declared_from(headers: &hyper::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The three gates before a body is read: the address's failed-auth limit,
/// the token, the caller's rate limit.
async fn admit(app: &App, req: &Request<Incoming>, ip: IpAddr, log_org: &OnceLock<String>) -> Result<Principal, ApiError> {
    let now = mono_now();
    if let Err(wait) = app.limits.check_address(ip, now) {
        return Err(app.limited("auth_failures", wait));
    }
    let principal = match app.auth.authenticate(req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            app.metrics.auth_failures.inc();
            app.limits.note_failure(ip, now);
            return Err(e.into());
        }
    };
    if let Some(org) = principal.org_id() {
        let _ = log_org.set(org.to_string());
    }
    if let Err(wait) = app.limits.take(&principal, now) {
        return Err(app.limited("principal", wait));
    }
    Ok(principal)
}

async fn read_body(mut body: Incoming, declared: Option<u64>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(ErrorCode::PayloadTooLarge, format!("request body exceeds {} MiB", max >> 20))
            .detail("maxBytes", max as u64)
    };
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    // A declared length (under the limit, and for media already charged) is
    // allocated once: growing by doubling would hold up to twice the body.
    let first = if max > MAX_BODY { max as u64 } else { 64 * 1024 };
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(first) as usize);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::new(ErrorCode::InvalidRequest, "could not read request body"));
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}
