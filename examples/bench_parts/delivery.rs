//! Part X of the bench: webhook delivery (CONTRACT §10), in-process, sim
//! engine, loopback receivers that answer 200 at once.
//!
//! - X1: events/s delivered to one receiver: 100 stopped sessions each
//!   queue 200 messages (each one a `message.status` event) through the
//!   batch route; from the first 202 to the last event received.
//! - X2: latency from an event's commit (its `timestamp`) to the receiver
//!   at a paced 1,000 events/s for 5 s: p50 and p99. Target p99 < 100 ms.
//! - X3: 100 webhooks subscribed to everything, 2,000 events: deliveries/s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use wa_gateway::app::Gateway;
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::EngineKind;
use wa_gateway::store::now_ms;

use super::{start, Conn, Stats, Summary};

/// What a receiver saw: per event id, when it arrived (Unix ms) and the
/// event's own timestamp; and the request count.
#[derive(Default)]
struct Seen {
    first: HashMap<String, (i64, i64)>,
    requests: u64,
}

/// A loopback receiver answering 200 at once.
async fn receiver() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let id = req.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let at = now_ms();
                        let ts = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["timestamp"].as_i64()).unwrap_or(at);
                        if let Ok(mut s) = seen.lock() {
                            s.requests += 1;
                            s.first.entry(id).or_insert((at, ts));
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
    c
}

fn owner(gw: &Gateway, org: &str) -> String {
    let now = now_ms() / 1000;
    let claims = json!({"sub": format!("owner-of-{org}"), "iss": "wa-gateway", "iat": now, "exp": now + 7200,
                        "org_id": org, "org_role": "owner"});
    gw.app.issuer.as_ref().expect("embedded issuer").mint(&claims)
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
    {
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
    {
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
}
