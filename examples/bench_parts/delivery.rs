//! Part X of the bench: webhook delivery (CONTRACT §10), in-process, sim
//! engine, loopback receivers that answer 200 at once.
//!
//! - X1: events/s delivered to one receiver: 100 stopped sessions each
//!   queue 200 messages (each one a `message.status` event) through the
//!   batch route; from the first 202 to the last event received.
//! - X2: latency from an event's commit (its `timestamp`) to the receiver
//!   at a paced 1,000 events/s for 5 s: p50 and p99. Target p99 < 100 ms.
//! - X3: 100 webhooks subscribed to everything, 2,000 events: deliveries/s.
//! - X4: backlog: the receiver answers 503 while `BENCH_X_BACKLOG` events
//!   (default 1,000,000: 1,000 stopped sessions x 1,000 queued messages)
//!   accumulate; VmRSS as they do, then the drain rate once it answers 200.
//! - X5: `BENCH_X_STREAMS` (default 1,000) live SSE streams while events
//!   flow at 100/s for 10 s: VmRSS per open stream (this process holds both
//!   ends: an upper bound), and fan-out latency from an event's commit to
//!   each stream.
//! - X6: fairness between organizations: org B's commit -> receiver
//!   latency (p50, p99) at 100 events/s while org A is idle, then while A's
//!   100 webhooks hang (their endpoint accepts the connection and never
//!   answers) with 500 attempts queued, more than the 256 slots. Target: B's
//!   p99 < 1 s in both.
//!
//! `BENCH_X_PARTS` runs some parts only, named by digit ("4": the backlog
//! alone; X2 shares X1's gateway and runs with it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::EngineKind;
use wa_gateway::store::now_ms;

use super::{owner, rss_mib, start, trim, Conn, Stats, Summary};

/// What a receiver saw: per event id, when it arrived (Unix ms) and the
/// event's own timestamp; and the request count.
#[derive(Default)]
struct Seen {
    first: HashMap<String, (i64, i64)>,
    requests: u64,
    /// Requests answered 503 while down.
    refused: u64,
    /// Record nothing per id (the backlog part counts requests only, so
    /// that its own map does not grow the RSS it measures).
    count_only: bool,
}

/// A loopback receiver answering 200 at once.
async fn receiver() -> (SocketAddr, Arc<Mutex<Seen>>) {
    receiver_down_while(Arc::new(AtomicBool::new(false))).await
}

/// A loopback receiver answering 503 while `down` is set (recording
/// nothing), 200 at once otherwise.
async fn receiver_down_while(down: Arc<AtomicBool>) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            let down = down.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    let down = down.load(Ordering::SeqCst);
                    async move {
                        if down {
                            if let Ok(mut s) = seen.lock() {
                                s.refused += 1;
                            }
                            let mut r = hyper::Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            return Ok::<_, std::convert::Infallible>(r);
                        }
                        let id = req.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let at = now_ms();
                        let ts = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["timestamp"].as_i64()).unwrap_or(at);
                        if let Ok(mut s) = seen.lock() {
                            s.requests += 1;
                            if !s.count_only {
                                s.first.entry(id).or_insert((at, ts));
                            }
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn config(dir: &std::path::Path) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.engine = EngineKind::Sim;
    c.rate_limit = None;
    c.auth_failure_limit = None;
    c.messaging.allow_private_urls = true;
    c.messaging.max_queued = 10_000_000;
    if let Ok(cap) = std::env::var("BENCH_X_CAP").map(|v| v.parse().unwrap_or(64)) {
        c.delivery.max_in_flight_per_webhook = cap;
    }
    c
}

async fn hook(c: &mut Conn, token: &str, url: &str) {
    let body = Bytes::from(json!({"url": url, "events": ["*"]}).to_string());
    let (st, b) = c.send(Method::POST, "/api/v1/webhooks", Some(token), Some(body)).await.expect("webhook");
    assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
}

async fn sessions(c: &mut Conn, token: &str, n: usize) -> Vec<String> {
    let body = Bytes::from(json!({"label": "d", "start": false}).to_string());
    let mut ids = Vec::new();
    for _ in 0..n {
        let (st, b) = c.send(Method::POST, "/api/v1/sessions", Some(token), Some(body.clone())).await.expect("create");
        assert_eq!(st, StatusCode::CREATED);
        ids.push(serde_json::from_slice::<Value>(&b).expect("json")["id"].as_str().expect("id").to_string());
    }
    ids
}

/// Queues `per` messages on `session` in one batch (one event each).
async fn batch(c: &mut Conn, token: &str, session: &str, per: usize) {
    let msgs: Vec<Value> = (0..per).map(|i| json!({"to": "6281234567890", "text": format!("d {i}")})).collect();
    let body = Bytes::from(json!({"messages": msgs}).to_string());
    let (st, b) = c.send(Method::POST, &format!("/api/v1/sessions/{session}/messages/batch"), Some(token), Some(body)).await.expect("batch");
    assert_eq!(st, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&b));
}

async fn until_seen(seen: &Arc<Mutex<Seen>>, n: usize, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if seen.lock().map_or(0, |s| s.first.len()) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

pub async fn run(summary: &mut Summary) {
    println!("\n--- X. Webhook delivery (sim engine, in-process, loopback receivers answering 200) ---");
    // X1: throughput to one receiver.
    if part(1) {
        let dir = tempfile::tempdir().expect("tempdir");
        let gw = start(config(dir.path()), None).await;
        let token = owner(&gw, "org_d1");
        let mut c = Conn::open(gw.addr()).await.expect("connect");
        let (addr, seen) = receiver().await;
        hook(&mut c, &token, &format!("http://{addr}/hook")).await;
        let ids = sessions(&mut c, &token, 100).await;
        let per = 200;
        let total = ids.len() * per;
        let t0 = Instant::now();
        for id in &ids {
            batch(&mut c, &token, id, per).await;
        }
        let queued = t0.elapsed();
        let done = until_seen(&seen, total, Duration::from_secs(300)).await;
        let secs = t0.elapsed().as_secs_f64();
        let got = seen.lock().map_or(0, |s| s.first.len());
        let requests = seen.lock().map_or(0, |s| s.requests);
        if done {
            println!(
                "  X1: {total} events (100 sessions x {per}; queued in {:.2} s) delivered to one receiver in {secs:.2} s = {:.0} events/s ({requests} requests)  (target >= 5,000/s)",
                queued.as_secs_f64(),
                total as f64 / secs
            );
            summary.add("X1 events/s to one receiver", format!("{:.0}/s", total as f64 / secs), ">= 5000/s");
        } else {
            println!("  X1: only {got} of {total} delivered within 300 s");
            summary.add("X1 events/s to one receiver", "timeout", ">= 5000/s");
        }

        // X2: latency at a paced 1,000 events/s (10 per 10 ms, round robin over the sessions).
        let before: std::collections::HashSet<String> = seen.lock().map(|s| s.first.keys().cloned().collect()).unwrap_or_default();
        let t = Instant::now();
        let mut sent = 0usize;
        let mut k = 0usize;
        while t.elapsed() < Duration::from_secs(5) {
            batch(&mut c, &token, &ids[k % ids.len()], 10).await;
            k += 1;
            sent += 10;
            let next = t + Duration::from_millis(10 * k as u64);
            tokio::time::sleep_until(next.into()).await;
        }
        until_seen(&seen, total + sent, Duration::from_secs(60)).await;
        let lat: Vec<f64> = seen
            .lock()
            .map(|s| s.first.iter().filter(|(id, _)| !before.contains(*id)).map(|(_, (at, ts))| (at - ts) as f64).collect())
            .unwrap_or_default();
        let st = Stats::of(lat.clone());
        println!(
            "  X2: {} events at ~1,000/s: commit -> receiver p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms  (target p99 < 100 ms)",
            lat.len(),
            st.p50,
            st.p99,
            lat.iter().cloned().fold(0.0, f64::max)
        );
        summary.add("X2 commit -> receiver p50 / p99 at 1,000/s", format!("{:.0} / {:.0} ms", st.p50, st.p99), "p99 < 100 ms");
        gw.shutdown().await.expect("shutdown");
    }
    // X3: 100 webhooks subscribed to everything.
    if part(3) {
        let dir = tempfile::tempdir().expect("tempdir");
        let gw = start(config(dir.path()), None).await;
        let token = owner(&gw, "org_d3");
        let mut c = Conn::open(gw.addr()).await.expect("connect");
        let (addr, seen) = receiver().await;
        for i in 0..100 {
            hook(&mut c, &token, &format!("http://{addr}/hook{i}")).await;
        }
        let ids = sessions(&mut c, &token, 20).await;
        let per = 100;
        let events = ids.len() * per;
        let t0 = Instant::now();
        for id in &ids {
            batch(&mut c, &token, id, per).await;
        }
        let want = (events * 100) as u64;
        let end = Instant::now() + Duration::from_secs(300);
        while Instant::now() < end && seen.lock().map_or(0, |s| s.requests) < want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        let requests = seen.lock().map_or(0, |s| s.requests);
        println!("  X3: {events} events x 100 webhooks: {requests} deliveries in {secs:.2} s = {:.0} deliveries/s", requests as f64 / secs);
        summary.add("X3 deliveries/s, 100 webhooks", format!("{:.0}/s", requests as f64 / secs), "");
        gw.shutdown().await.expect("shutdown");
    }
    if part(4) {
        backlog(summary).await;
    }
    if part(5) {
        streams(summary).await;
    }
    if part(6) {
        fairness(summary).await;
    }
}

/// A loopback endpoint that accepts connections and never answers (nor reads).
async fn black_hole() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// B's latency (commit -> receiver, ms) over 3 s at 100 events/s: a batch
/// of 5 every 50 ms, round robin over `ids`.
async fn paced(c: &mut Conn, token: &str, ids: &[String], seen: &Arc<Mutex<Seen>>) -> Vec<f64> {
    let before: std::collections::HashSet<String> = seen.lock().map(|s| s.first.keys().cloned().collect()).unwrap_or_default();
    let t = Instant::now();
    let mut k = 0usize;
    while t.elapsed() < Duration::from_secs(3) {
        batch(c, token, &ids[k % ids.len()], 5).await;
        k += 1;
        tokio::time::sleep_until((t + Duration::from_millis(50 * k as u64)).into()).await;
    }
    until_seen(seen, before.len() + k * 5, Duration::from_secs(30)).await;
    seen.lock()
        .map(|s| s.first.iter().filter(|(id, _)| !before.contains(*id)).map(|(_, (at, ts))| (at - ts) as f64).collect())
        .unwrap_or_default()
}

/// X6: one organization's hanging endpoints against another's latency.
async fn fairness(summary: &mut Summary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path()), None).await;
    let (ta, tb) = (owner(&gw, "org_x6_a"), owner(&gw, "org_x6_b"));
    let mut c = Conn::open(gw.addr()).await.expect("connect");
    let hole = black_hole().await;
    for i in 0..100 {
        let body = Bytes::from(json!({"url": format!("http://{hole}/a{i}"), "events": ["message.status"]}).to_string());
        let (st, b) = c.send(Method::POST, "/api/v1/webhooks", Some(&ta), Some(body)).await.expect("webhook");
        assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    }
    let a_ids = sessions(&mut c, &ta, 5).await;
    let (addr, seen) = receiver().await;
    hook(&mut c, &tb, &format!("http://{addr}/b")).await;
    let b_ids = sessions(&mut c, &tb, 10).await;
    let idle = Stats::of(paced(&mut c, &tb, &b_ids, &seen).await);
    // A: one event in each of 5 sessions for each of 100 webhooks: 500 attempts that hang.
    for id in &a_ids {
        batch(&mut c, &ta, id, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = Stats::of(paced(&mut c, &tb, &b_ids, &seen).await);
    println!(
        "  X6: org B commit -> receiver at 100 events/s: A idle p50 {:.0} ms, p99 {:.0} ms; A's 100 endpoints hanging (500 attempts) p50 {:.0} ms, p99 {:.0} ms  (target p99 < 1 s)",
        idle.p50, idle.p99, busy.p50, busy.p99
    );
    summary.add("X6 org B p99, A idle / A's 100 endpoints hanging", format!("{:.0} / {:.0} ms", idle.p99, busy.p99), "< 1000 ms");
    gw.shutdown().await.expect("shutdown");
}

/// Whether part X`n` runs: `BENCH_X_PARTS` lists the parts to run as
/// digits ("4" for the backlog alone); all of them by default.
fn part(n: u32) -> bool {
    std::env::var("BENCH_X_PARTS").map_or(true, |p| p.contains(char::from_digit(n, 10).unwrap_or('?')))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// X4: the backlog stays on disk while the receiver is down, and drains.
async fn backlog(summary: &mut Summary) {
    let total = env_usize("BENCH_X_BACKLOG", 1_000_000);
    if total == 0 {
        return;
    }
    let sessions_n = 1_000.min(total.max(1));
    let per = total / sessions_n;
    let total = per * sessions_n;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    // The receiver is down for minutes: keep retrying every second.
    c.delivery.retry_schedule = vec![Duration::from_secs(1); 1_000];
    let gw = start(c, None).await;
    let token = owner(&gw, "org_d4");
    let mut conn = Conn::open(gw.addr()).await.expect("connect");
    let down = Arc::new(AtomicBool::new(true));
    let (addr, seen) = receiver_down_while(down.clone()).await;
    if let Ok(mut s) = seen.lock() {
        s.count_only = true;
    }
    hook(&mut conn, &token, &format!("http://{addr}/hook")).await;
    let ids = sessions(&mut conn, &token, sessions_n).await;
    trim();
    let (rss0, _) = rss_mib();
    let mut samples = vec![format!("{rss0:.0}")];
    let t0 = Instant::now();
    // 4 clients queue the batches.
    let ids = Arc::new(ids);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (ids, next, token) = (ids.clone(), next.clone(), token.clone());
        let addr = gw.addr();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await.expect("connect");
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(id) = ids.get(i) else { break };
                batch(&mut c, &token, id, per).await;
            }
        }));
    }
    let mut quarter = 1;
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if next.load(Ordering::SeqCst) >= sessions_n * quarter / 4 && quarter < 4 {
            trim();
            samples.push(format!("{:.0}", rss_mib().0));
            quarter += 1;
        }
    }
    for t in tasks {
        t.await.expect("queue task");
    }
    let queued = t0.elapsed().as_secs_f64();
    // Let the dispatcher queue the whole backlog for the webhook.
    tokio::time::sleep(Duration::from_secs(5)).await;
    trim();
    let (rss_full, hwm) = rss_mib();
    samples.push(format!("{rss_full:.0}"));
    let failures = seen.lock().map_or(0, |s| s.refused);
    down.store(false, Ordering::SeqCst);
    let t1 = Instant::now();
    let end = Instant::now() + Duration::from_secs(900);
    let delivered = || seen.lock().map_or(0, |s| s.requests) as usize;
    while delivered() < total && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = delivered() >= total;
    let secs = t1.elapsed().as_secs_f64();
    let got = delivered();
    trim();
    let (rss_after, _) = rss_mib();
    println!(
        "  X4: {total} events ({sessions_n} sessions x {per}) queued in {queued:.1} s while the receiver answered 503 ({failures} refused attempts); \
         VmRSS MiB (after malloc_trim) at 0/25/50/75/100%: {} (+5 s), VmHWM {hwm:.0}",
        samples.join(" / ")
    );
    if done {
        println!(
            "      receiver back: {total} delivered (200s counted, duplicates included) in {secs:.1} s = {:.0} events/s (VmRSS after {rss_after:.0} MiB)  (target >= 5,000/s, RSS flat)",
            total as f64 / secs
        );
        summary.add("X4 backlog VmRSS 0% -> 100% (MiB)", format!("{rss0:.0} -> {rss_full:.0}"), "flat");
        summary.add(format!("X4 backlog drain ({total} events)"), format!("{:.0}/s", total as f64 / secs), ">= 5000/s");
    } else {
        println!("      receiver back: only {got} of {total} delivered within 900 s");
        summary.add(format!("X4 backlog drain ({total} events)"), "timeout", ">= 5000/s");
    }
    gw.shutdown().await.expect("shutdown");
}

/// One live stream: arrival minus commit time (ms) of every event it reads.
async fn stream(addr: SocketAddr, token: String, lat: Arc<Mutex<Vec<f64>>>, open: Arc<std::sync::atomic::AtomicUsize>, stop: Arc<AtomicBool>) {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else { return };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await else { return };
    tokio::spawn(conn);
    let req = hyper::Request::get("/api/v1/events")
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let Ok(resp) = sender.send_request(req).await else { return };
    if resp.status() != StatusCode::OK {
        return;
    }
    open.fetch_add(1, Ordering::SeqCst);
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut mine = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(500), body.frame()).await else { continue };
        let Ok(chunk) = frame.into_data() else { continue };
        let at = now_ms();
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                if let Some(ts) = serde_json::from_str::<Value>(data).ok().and_then(|v| v["timestamp"].as_i64()) {
                    mine.push((at - ts) as f64);
                }
            }
        }
    }
    if let Ok(mut all) = lat.lock() {
        all.extend(mine);
    }
}

/// X5: many live streams.
async fn streams(summary: &mut Summary) {
    let n = env_usize("BENCH_X_STREAMS", 1_000);
    if n == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let gw = start(config(dir.path()), None).await;
    let token = owner(&gw, "org_d5");
    let mut c = Conn::open(gw.addr()).await.expect("connect");
    let ids = sessions(&mut c, &token, 10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss0, _) = rss_mib();
    let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..n {
        tasks.push(tokio::spawn(stream(gw.addr(), token.clone(), lat.clone(), open.clone(), stop.clone())));
    }
    let end = Instant::now() + Duration::from_secs(30);
    while open.load(Ordering::SeqCst) < n && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss1, _) = rss_mib();
    let opened = open.load(Ordering::SeqCst);
    // 100 events/s for 10 s: a batch of 10 every 100 ms.
    let t = Instant::now();
    let mut k = 0u64;
    while t.elapsed() < Duration::from_secs(10) {
        batch(&mut c, &token, &ids[(k as usize) % ids.len()], 10).await;
        k += 1;
        tokio::time::sleep_until((t + Duration::from_millis(100 * k)).into()).await;
    }
    let events = k * 10;
    let want = events as usize * opened;
    // The streams hand over what they read when stopped: give the last
    // events time to arrive first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss2, _) = rss_mib();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let lat = lat.lock().map(|l| l.clone()).unwrap_or_default();
    let st = Stats::of(lat.clone());
    let per = (rss1 - rss0) * 1024.0 / opened.max(1) as f64;
    println!(
        "  X5: {opened} of {n} streams open: VmRSS {rss0:.1} -> {rss1:.1} MiB = {per:.1} KiB per stream (both ends), {rss2:.1} MiB after {events} events at 100/s; \
         {} of {want} deliveries, commit -> stream p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lat.len(),
        st.p50,
        st.p99,
        lat.iter().cloned().fold(0.0, f64::max)
    );
    summary.add(format!("X5 VmRSS per SSE stream ({opened} open)"), format!("{per:.1} KiB"), "");
    summary.add("X5 SSE fan-out commit -> stream p50 / p99", format!("{:.0} / {:.0} ms", st.p50, st.p99), "");
    gw.shutdown().await.expect("shutdown");
}
