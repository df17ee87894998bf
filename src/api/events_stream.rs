//! The live event stream (CONTRACT §10): `GET /api/v1/events` and
//! `GET /api/v1/admin/events` with `Accept: text/event-stream` answer
//! Server-Sent Events instead of a page.
//!
//! - Each event is `id: <event id>`, `event: <type>`, `data: <the event JSON,
//!   exactly as the listing renders it>`; a `: keepalive` comment goes out
//!   every `sse_heartbeat` (15 s).
//! - The log is the source of truth. A stream remembers only how far it has
//!   read; the store's [`crate::store::events::EventSignal`] wakes it after
//!   each commit that appended events, and it reads what follows from the
//!   data file, a page at a time (each heartbeat reads too, so even a missed
//!   wake-up costs at most one heartbeat of delay, never an event).
//! - `Last-Event-ID` resumes right after that event; without it the stream
//!   starts now (only events committed after the request).
//! - A reader that takes nothing for `sse_stall_timeout` is cut off (see
//!   [`crate::http::body`]); on shutdown every stream ends at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONNECTION};
use tokio::sync::watch;
use ulid::Ulid;

use super::events::{event_value, Filters};
use crate::app::App;
use crate::http::body::{self, StreamWriter};
use crate::http::response::{self, Resp};
use crate::http::{ApiError, Req};
use crate::store::events::{self, Scan};
use crate::store::message_records::Event;

/// Events read from the log per page (and so at most held by a stream).
const PAGE: usize = 100;
/// Chunks (events or heartbeats) queued between a stream and its connection.
const QUEUE: usize = 8;
/// The heartbeat comment.
const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// Whether the request asks for the live stream (`Accept` names
/// `text/event-stream`).
pub fn wanted(req: &Req) -> bool {
    req.headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|m| m.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("text/event-stream"))
    })
}

/// The `Last-Event-ID` header as an event id (`evt_<ULID>`, or the bare ULID).
fn last_event_id(req: &Req) -> Result<Option<u128>, ApiError> {
    let Some(v) = req.headers.get("last-event-id") else { return Ok(None) };
    let bad = || ApiError::invalid("Last-Event-ID", "Last-Event-ID must be an event id (evt_...)");
    let s = v.to_str().map_err(|_| bad())?.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let ulid = s.strip_prefix("evt_").unwrap_or(s);
    Ulid::from_string(ulid).map(|u| Some(u128::from(u))).map_err(|_| bad())
}

/// Answers the live stream of the events `org` may see (every
/// organization's with `None`), under the request's filters. The caller has
/// already been authorized.
pub async fn open(app: Arc<App>, req: &Req, org: Option<String>) -> Result<Resp, ApiError> {
    let mut q = req.query()?;
    let filters = Filters::take(&mut q, org)?;
    q.finish()?;
    let resume = last_event_id(req)?;
    // Subscribe before fixing the start: a commit after the start wakes us.
    let wake = app.store.subscribe_events();
    let start = match resume {
        Some(id) => Some(id),
        None => app.blocking(|s| events::last_id(&s.read()?)).await?,
    };
    let (out, body) = body::channel(QUEUE, app.config.sse_stall_timeout, req.conn.clone());
    tokio::spawn(run(app.clone(), Arc::new(filters), start, wake, out));
    let mut r = response::stream(200, "text/event-stream", body);
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must not buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // A stream ends only on shutdown or trouble: the connection goes with it.
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(r)
}

/// One event as an SSE frame.
fn frame(id: u128, e: &Event) -> Bytes {
    let data = event_value(id, e);
    Bytes::from(format!("id: evt_{}\nevent: {}\ndata: {}\n\n", Ulid::from(id), e.kind, data))
}

/// Counts the stream as open while it lives.
struct OpenStream(Arc<App>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.metrics.event_streams.dec();
    }
}

/// The stream's life: read what follows `pos`, write it, wait for a commit
/// or the heartbeat, until the client leaves, is cut off, or the server
/// shuts down.
async fn run(app: Arc<App>, filters: Arc<Filters>, mut pos: Option<u128>, mut wake: watch::Receiver<u128>, out: StreamWriter) {
    app.metrics.event_streams.inc();
    let _open = OpenStream(app.clone());
    let beat = app.config.sse_heartbeat.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut read = true;
    loop {
        if read {
            let f = filters.clone();
            let scan = app
                .blocking(move |s| events::scan(&s.read()?, f.org.as_deref(), pos, PAGE, PAGE * super::sessions::SCAN_FACTOR, |e| f.keep(e)))
                .await;
            let Scan { events, scanned_to, more } = match scan {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e.cause.as_deref().unwrap_or(&e.message), "event stream: could not read the log; closing the stream");
                    return;
                }
            };
            for (id, e) in &events {
                if out.send(frame(*id, e)).await.is_err() {
                    return;
                }
            }
            pos = scanned_to;
            if more {
                continue;
            }
        }
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() {
                    return;
                }
                // Nothing newer than what we read: no read needed.
                let newest = *wake.borrow_and_update();
                read = pos.is_none_or(|p| newest > p);
            }
            _ = tick.tick() => {
                if out.send(Bytes::from_static(KEEPALIVE)).await.is_err() {
                    return;
                }
                read = true;
            }
            _ = out.ended() => return,
        }
    }
}
