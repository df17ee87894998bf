//! The live event stream (CONTRACT §10) over real HTTP with the sim engine:
//! `GET /api/v1/events` and `GET /api/v1/admin/events` with `Accept:
//! text/event-stream`. A raw TCP client reads the stream incrementally
//! (chunked transfer decoding by hand), so a test can stop reading at will.

mod common;

use std::time::{Duration, Instant};

use common::{sim_working_session, wait_status, Http, TestGateway};
use hyper::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use wa_gateway::config::ServeConfig;

/// A sim gateway with a quick heartbeat and stall cut-off, `f` adjusting it.
async fn gateway(f: impl FnOnce(&mut ServeConfig)) -> TestGateway {
    TestGateway::start_with(|c| {
        common::sim_engine(c, 20, 80);
        c.sse_heartbeat = Duration::from_secs(5);
        c.sse_stall_timeout = Duration::from_secs(1);
        f(c);
    })
    .await
}

/// A phone sends `text` to session `id` (a `message.received` event follows).
async fn incoming(h: &Http, t: &str, id: &str, text: &str) {
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/incoming"), Some(t), json!({"from": "6281299999999", "text": text})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
}

/// The `message.received` events of session `id` in the JSON listing, once
/// there are at least `n` of them.
async fn received(h: &Http, t: &str, id: &str, n: usize) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let evs = common::walk(h, &format!("/api/v1/events?type=message.received&sessionId={id}"), t, 100).await;
        if evs.len() >= n {
            return evs;
        }
        assert!(Instant::now() < end, "only {} of {n} events", evs.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One SSE frame.
#[derive(Debug, Clone, Default)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: Option<String>,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("data is JSON")
    }
}

/// A raw HTTP/1.1 client of one stream.
struct Sse {
    io: TcpStream,
    /// Raw bytes after the response head, not yet de-chunked.
    raw: Vec<u8>,
    /// De-chunked text not yet split into frames.
    text: String,
    eof: bool,
}

async fn connect(addr: std::net::SocketAddr, small_buffer: bool) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    if small_buffer {
        sock.set_recv_buffer_size(4096).expect("rcvbuf");
    }
    sock.connect(addr).await.expect("connect")
}

impl Sse {
    /// Opens `path` as a stream; panics unless it answers 200 `text/event-stream`.
    async fn open(gw: &TestGateway, path: &str, token: &str, last_id: Option<&str>) -> Sse {
        Sse::open_with(gw, path, token, last_id, false).await
    }

    async fn open_with(gw: &TestGateway, path: &str, token: &str, last_id: Option<&str>, small_buffer: bool) -> Sse {
        let mut io = connect(gw.addr(), small_buffer).await;
        let resume = last_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        );
        io.write_all(head.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = loop {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), io.read(&mut chunk)).await.expect("head in time").expect("read");
            assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        Sse { io, raw: buf[end..].to_vec(), text: String::new(), eof: false }
    }

    /// Moves every complete chunk of `raw` into `text`.
    fn dechunk(&mut self) {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
            let size_line = String::from_utf8_lossy(&self.raw[..line_end]).to_string();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).expect("chunk size");
            if size == 0 {
                self.eof = true;
                self.raw.clear();
                return;
            }
            let start = line_end + 2;
            if self.raw.len() < start + size + 2 {
                return;
            }
            self.text.push_str(std::str::from_utf8(&self.raw[start..start + size]).expect("utf-8"));
            self.raw.drain(..start + size + 2);
        }
    }

    /// The next frame (events and comments), or `None` at the end of the
    /// stream or after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Bytes that came with the response head are not decoded yet.
            self.dechunk();
            if let Some(i) = self.text.find("\n\n") {
                let block: String = self.text.drain(..i + 2).collect();
                let mut f = Frame::default();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        f.comment = Some(c.trim().to_string());
                    } else if let Some((k, v)) = line.split_once(": ") {
                        match k {
                            "id" => f.id = Some(v.into()),
                            "event" => f.event = Some(v.into()),
                            "data" => f.data = Some(v.into()),
                            other => panic!("unknown field {other}"),
                        }
                    }
                }
                return Some(f);
            }
            if self.eof {
                return None;
            }
            let mut chunk = [0u8; 16384];
            match tokio::time::timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.eof = true;
                    return None;
                }
                Ok(Ok(n)) => {
                    self.raw.extend_from_slice(&chunk[..n]);
                    self.dechunk();
                }
            }
        }
    }

    /// The next event frame (skipping heartbeats); panics if none comes in `wait`.
    async fn event(&mut self, wait: Duration) -> Frame {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.next(left).await {
                Some(f) => f,
                None => panic!("no event within {wait:?} (eof {}, pending raw {:?}, text {:?})", self.eof, String::from_utf8_lossy(&self.raw), self.text),
            };
            if f.comment.is_none() {
                return f;
            }
        }
    }

    /// Every event frame that arrives within `wait`.
    async fn events_for(&mut self, wait: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(f) = self.next(deadline.saturating_duration_since(Instant::now())).await {
            if f.comment.is_none() {
                out.push(f);
            }
        }
        out
    }
}

/// The frame is well formed: its `id:` and `event:` lines name the event its
/// `data:` carries.
fn check_frame(f: &Frame) -> Value {
    let v = f.json();
    assert_eq!(f.id.as_deref(), v["id"].as_str(), "{f:?}");
    assert_eq!(f.event.as_deref(), v["type"].as_str(), "{f:?}");
    assert!(f.id.as_deref().is_some_and(|i| i.starts_with("evt_")), "{f:?}");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_live_in_id_order_rendered_as_the_listing_renders_them() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_live"));
    let id = sim_working_session(h, &t, json!({"label": "sse"})).await;
    let mut s = Sse::open(&gw, &format!("/api/v1/events?sessionId={id}&type=message.received"), &t, None).await;
    // Nothing before the stream opened is replayed (it starts now).
    assert!(s.events_for(Duration::from_millis(300)).await.is_empty());
    let mut latencies = Vec::new();
    let mut got = Vec::new();
    for i in 0..5 {
        incoming(h, &t, &id, &format!("live {i}")).await;
        let f = s.event(Duration::from_secs(3)).await;
        let v = check_frame(&f);
        latencies.push(wa_gateway::store::now_ms() - v["timestamp"].as_i64().unwrap_or(0));
        assert_eq!(v["data"]["text"], format!("live {i}"));
        got.push(v);
    }
    let ids: Vec<&str> = got.iter().map(|v| v["id"].as_str().unwrap_or("")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "id order");
    // `data:` is exactly the event JSON of the listing.
    let listed = received(h, &t, &id, 5).await;
    assert_eq!(got, listed);
    println!("commit-to-reader latency (ms, includes the sim engine): {latencies:?}");
    // The JSON route without the Accept header is unchanged.
    let r = h.get("/api/v1/events", Some(&t)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn last_event_id_resumes_with_nothing_missed_and_nothing_repeated() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_resume"));
    let id = sim_working_session(h, &t, json!({"label": "sse"})).await;
    let path = format!("/api/v1/events?sessionId={id}&type=message.received");
    let mut s = Sse::open(&gw, &path, &t, None).await;
    for i in 0..3 {
        incoming(h, &t, &id, &format!("a{i}")).await;
    }
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..3 {
        seen.push(check_frame(&s.event(Duration::from_secs(3)).await)["id"].as_str().unwrap_or("").into());
    }
    drop(s);
    // Meanwhile, disconnected:
    for i in 0..4 {
        incoming(h, &t, &id, &format!("b{i}")).await;
    }
    received(h, &t, &id, 7).await;
    let last = seen.last().cloned().unwrap_or_default();
    let mut s = Sse::open(&gw, &path, &t, Some(&last)).await;
    for _ in 0..4 {
        seen.push(check_frame(&s.event(Duration::from_secs(3)).await)["id"].as_str().unwrap_or("").into());
    }
    // And live again after the backlog.
    incoming(h, &t, &id, "c0").await;
    let f = s.event(Duration::from_secs(3)).await;
    assert_eq!(check_frame(&f)["data"]["text"], "c0");
    seen.push(f.id.unwrap_or_default());
    assert!(s.events_for(Duration::from_millis(300)).await.is_empty(), "nothing repeated");
    let all = received(h, &t, &id, 8).await;
    let listed: Vec<String> = all.iter().map(|v| v["id"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(seen, listed, "every event exactly once, in order");
    // A bare ULID resumes too; an id that is not one is refused.
    let bare = seen[6].trim_start_matches("evt_").to_string();
    let mut s = Sse::open(&gw, &path, &t, Some(&bare)).await;
    assert_eq!(s.event(Duration::from_secs(3)).await.id.as_deref(), Some(seen[7].as_str()));
    let r = h.send(Method::GET, &path, Some(&t), None, &[("accept", "text/event-stream"), ("last-event-id", "evt_nope")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_request");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_apply_to_the_stream_and_bad_filters_are_400() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_filter"));
    let one = sim_working_session(h, &t, json!({"label": "sse"})).await;
    let two = sim_working_session(h, &t, json!({"label": "sse"})).await;
    let mut by_session = Sse::open(&gw, &format!("/api/v1/events?sessionId={one}"), &t, None).await;
    let mut by_type = Sse::open(&gw, "/api/v1/events?type=session.status", &t, None).await;
    for i in 0..3 {
        incoming(h, &t, &two, &format!("two {i}")).await;
        incoming(h, &t, &one, &format!("one {i}")).await;
    }
    received(h, &t, &two, 3).await;
    received(h, &t, &one, 3).await;
    // A session.status event of session two: only the type stream sees it.
    let r = h.post(&format!("/api/v1/sessions/{two}/stop"), Some(&t), json!({})).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    wait_status(h, &t, &two, "stopped").await;
    let got = by_session.events_for(Duration::from_millis(800)).await;
    let texts: Vec<&str> = got.iter().filter_map(|f| f.data.as_deref()).collect();
    let frames: Vec<Value> = got.iter().map(check_frame).collect();
    assert!(frames.iter().all(|v| v["sessionId"] == one.as_str()), "{texts:?}");
    // The sender's first message also makes it a contact (CONTRACT §12:
    // one contact.updated); the rest are the messages, in order.
    let messages: Vec<&Value> = frames.iter().filter(|v| v["type"] == "message.received").collect();
    assert_eq!((messages.len(), frames.len()), (3, 4), "{texts:?}");
    for (i, v) in messages.iter().enumerate() {
        assert_eq!(v["data"]["text"], format!("one {i}"));
    }
    let got = by_type.events_for(Duration::from_millis(300)).await;
    assert!(!got.is_empty());
    for f in &got {
        let v = check_frame(f);
        assert_eq!(v["type"], "session.status");
        assert_eq!(v["sessionId"], two.as_str());
    }
    // Bad filters: the contract's error envelope, as the JSON route answers.
    let sse = [("accept", "text/event-stream")];
    for (q, field) in [("type=nope", "type"), ("sessionId=zzz", "sessionId"), ("bogus=1", "bogus")] {
        let r = h.send(Method::GET, &format!("/api/v1/events?{q}"), Some(&t), None, &sse).await;
        assert_eq!(r.status, 400, "{q}: {:?}", r.json);
        assert_eq!(r.code(), "invalid_request", "{q}");
        assert_eq!(r.headers["content-type"], "application/json", "{q}");
        assert_eq!(r.json["error"]["details"]["field"], field, "{:?}", r.json);
        assert!(r.json["error"]["message"].is_string(), "{:?}", r.json);
        let json_route = h.get(&format!("/api/v1/events?{q}"), Some(&t)).await;
        assert_eq!(json_route.json, r.json, "the JSON route refuses it the same way");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_arrive_on_a_quiet_stream() {
    let gw = gateway(|c| c.sse_heartbeat = Duration::from_millis(200)).await;
    let t = gw.owner("org_beat");
    let mut s = Sse::open(&gw, "/api/v1/events", &t, None).await;
    let started = Instant::now();
    let mut beats = 0;
    while started.elapsed() < Duration::from_millis(1100) {
        if let Some(f) = s.next(Duration::from_millis(500)).await {
            assert_eq!(f.comment.as_deref(), Some("keepalive"), "{f:?}");
            assert!(f.id.is_none() && f.data.is_none());
            beats += 1;
        }
    }
    assert!((3..=7).contains(&beats), "{beats} heartbeats in 1.1 s at 200 ms");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_see_only_their_own_events_and_the_admin_stream_sees_all() {
    let gw = gateway(|_| {}).await;
    let h = &gw.http;
    let (ta, tb, root) = (gw.owner("org_a"), gw.owner("org_b"), gw.super_admin());
    let a = sim_working_session(h, &ta, json!({"label": "sse"})).await;
    let b = sim_working_session(h, &tb, json!({"label": "sse"})).await;
    let mut sa = Sse::open(&gw, "/api/v1/events?type=message.received", &ta, None).await;
    let mut sb = Sse::open(&gw, "/api/v1/events?type=message.received", &tb, None).await;
    let mut all = Sse::open(&gw, "/api/v1/admin/events?type=message.received", &root, None).await;
    let mut only_b = Sse::open(&gw, "/api/v1/admin/events?type=message.received&organizationId=org_b", &root, None).await;
    for i in 0..3 {
        incoming(h, &ta, &a, &format!("a{i}")).await;
        incoming(h, &tb, &b, &format!("b{i}")).await;
    }
    received(h, &ta, &a, 3).await;
    received(h, &tb, &b, 3).await;
    let wait = Duration::from_millis(600);
    let orgs = |fs: &[Frame]| fs.iter().map(|f| check_frame(f)["organizationId"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    assert_eq!(orgs(&sa.events_for(wait).await), ["org_a"; 3]);
    assert_eq!(orgs(&sb.events_for(wait).await), ["org_b"; 3]);
    assert_eq!(orgs(&only_b.events_for(wait).await), ["org_b"; 3]);
    let mixed = all.events_for(wait).await;
    let mut o = orgs(&mixed);
    o.sort();
    assert_eq!(o, ["org_a", "org_a", "org_a", "org_b", "org_b", "org_b"]);
    let ids: Vec<&str> = mixed.iter().map(|f| f.id.as_deref().unwrap_or("")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "admin stream in id order: {ids:?}");
    // Permissions as the JSON routes: no token, an api-key without
    // messages:read, a non-admin on the admin stream.
    let sse = [("accept", "text/event-stream")];
    let r = h.send(Method::GET, "/api/v1/events", None, None, &sse).await;
    assert_eq!(r.status, 401);
    let k = h.post("/api/v1/api-keys", Some(&ta), json!({"name": "no-read", "permissions": ["sessions:read"]})).await;
    assert_eq!(k.status, 201, "{:?}", k.json);
    let key = k.json["key"].as_str().expect("key").to_string();
    let r = h.send(Method::GET, "/api/v1/events", Some(&key), None, &sse).await;
    let json_route = h.get("/api/v1/events", Some(&key)).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!((r.status, r.code()), (json_route.status, json_route.code()));
    let r = h.send(Method::GET, "/api/v1/admin/events", Some(&ta), None, &sse).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_stops_reading_is_cut_off_while_others_are_served() {
    let gw = gateway(|c| c.sse_stall_timeout = Duration::from_millis(800)).await;
    let (h, t) = (&gw.http, gw.owner("org_slow"));
    let id = sim_working_session(h, &t, json!({"label": "sse"})).await;
    let path = format!("/api/v1/events?sessionId={id}&type=message.received");
    let mut slow = Sse::open_with(&gw, &path, &t, None, true).await;
    let mut brisk = Sse::open(&gw, &path, &t, None).await;
    // Big events (60 KB of text each) fill every buffer between the gateway
    // and the reader that stopped: ~12 MB in all.
    let text = "x".repeat(60_000);
    let started = Instant::now();
    let mut brisk_got = 0;
    let total = 200;
    for _ in 0..total {
        incoming(h, &t, &id, &text).await;
        // The brisk reader keeps up as it goes.
        while let Some(f) = brisk.next(Duration::from_millis(1)).await {
            brisk_got += usize::from(f.comment.is_none());
        }
    }
    while brisk_got < total {
        let f = brisk.next(Duration::from_secs(3)).await.expect("the brisk reader is served");
        brisk_got += usize::from(f.comment.is_none());
    }
    // Give the stalled stream its cut-off, then read what it had buffered:
    // the connection ends before every event reached it.
    let cut_by = Instant::now() + Duration::from_secs(3);
    let metrics = loop {
        let m = h.get("/metrics", None).await;
        let text = String::from_utf8_lossy(&m.body).to_string();
        if text.contains("wa_gateway_connections_cut_total{reason=\"slow_reader\"} 1") || Instant::now() > cut_by {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(metrics.contains("wa_gateway_connections_cut_total{reason=\"slow_reader\"} 1"), "{metrics}");
    let mut slow_got = 0;
    while let Some(f) = slow.next(Duration::from_secs(2)).await {
        slow_got += usize::from(f.comment.is_none());
    }
    assert!(slow.eof, "the stalled stream was closed");
    assert!(slow_got < total, "cut off before the end: {slow_got}");
    // The gateway still serves: health, and the other stream live.
    assert_eq!(h.get("/healthz", None).await.status, 200);
    incoming(h, &t, &id, "after").await;
    assert_eq!(check_frame(&brisk.event(Duration::from_secs(3)).await)["data"]["text"], "after");
    let metrics = String::from_utf8_lossy(&h.get("/metrics", None).await.body).to_string();
    assert!(metrics.contains("wa_gateway_event_streams 1"), "only the brisk stream is open: {metrics}");
    println!("slow reader got {slow_got} of {total}; test took {:?}", started.elapsed());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_open_streams_promptly() {
    let gw = gateway(|c| c.shutdown_timeout = Duration::from_secs(8)).await;
    let t = gw.owner("org_down");
    let mut s = Sse::open(&gw, "/api/v1/events", &t, None).await;
    let started = Instant::now();
    let stopping = tokio::spawn(gw.stop());
    assert!(s.next(Duration::from_secs(3)).await.is_none());
    assert!(s.eof, "the stream ended");
    let _dir = stopping.await.expect("stopped");
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown waited on the stream: {:?}", started.elapsed());
}

/// The directory's events (CONTRACT §12, §13) are on the live stream as
/// they are committed: a presence update of a subscribed contact, and a
/// group change by someone else, each once, with `event:` its type.
#[tokio::test(flavor = "multi_thread")]
async fn directory_events_are_streamed_live() {
    let gw = gateway(|_| {}).await;
    let (h, t) = (&gw.http, gw.owner("org_dir_sse"));
    let id = sim_working_session(h, &t, json!({"label": "dir"})).await;
    let mut sse = Sse::open(&gw, &format!("/api/v1/events?sessionId={id}"), &t, None).await;
    let r = h.post(&format!("/api/v1/sessions/{id}/presence/subscribe"), Some(&t), json!({"contact": "6281233330001"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/presence"), Some(&t), json!({"from": "6281233330001", "status": "available"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let f = sse.event(Duration::from_secs(5)).await;
    assert_eq!(f.event.as_deref(), Some("presence.update"), "{f:?}");
    let v = f.json();
    assert_eq!(v["data"]["status"], "available");
    assert_eq!(v["data"]["contact"]["phoneNumber"], "6281233330001");
    assert_eq!(v["data"]["contact"]["jid"], "6281233330001@s.whatsapp.net");

    let r = h.post(&format!("/api/v1/sessions/{id}/groups"), Some(&t), json!({"subject": "Live", "participants": ["6281233330001"]})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let group = r.json["group"]["id"].as_str().expect("group id").to_string();
    let f = sse.event(Duration::from_secs(5)).await;
    assert_eq!(f.event.as_deref(), Some("group.joined"), "{f:?}");
    assert_eq!(f.json()["data"]["id"], json!(group));
    let r = h.post(&format!("/api/v1/sessions/{id}/sim/group-event"), Some(&t),
        json!({"groupId": group, "action": "subject", "subject": "Renamed", "by": "6281233330001"})).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let f = sse.event(Duration::from_secs(5)).await;
    assert_eq!(f.event.as_deref(), Some("group.updated"), "{f:?}");
    let v = f.json();
    assert_eq!(v["data"]["changes"], json!({"subject": "Renamed"}));
    assert_eq!(v["data"]["by"]["phoneNumber"], "6281233330001");
    assert!(sse.events_for(Duration::from_millis(300)).await.is_empty(), "each event once");
}
