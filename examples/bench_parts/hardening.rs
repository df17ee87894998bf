//! Part H of the bench: what CONTRACT §11's defences cost, each measured as
//! a ratio within one run.
//!
//! - H1: `/healthz` p99 from a fresh client (a new connection per request)
//!   with 1,024 stalled connections held (headers sent with `Content-Length:
//!   1`, no body), against the same with none held. Target: within 2×.
//! - H2: the admin listing with the per-principal rate limiter on (but never
//!   hit) against off, two gateways side by side, alternating 1 s slices.
//!   Target: at least 0.95.
//! - H3: an authorized 1 MiB `POST /api/v1/sessions` (the body read after the
//!   token is accepted) against the same create with a 1 KiB body, creates/s
//!   from one client.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wa_gateway::http::rate_limit::Limit;

use super::{config, load, start, Conn, Load, Summary, Tokens};

/// p50/p99 (µs) of `n` `GET /healthz`, each on a new connection.
async fn fresh_health(addr: SocketAddr, n: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut c = Conn::open(addr).await.expect("connect");
        let (status, _) = c.get("/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    (samples[n / 2], samples[(n * 99 / 100).min(n - 1)])
}

/// Creates `n` stopped sessions in `org` (so the listing has pages to show).
async fn seed_sessions(addr: SocketAddr, token: &str, n: usize) {
    let mut c = Conn::open(addr).await.expect("connect");
    let body = Bytes::from(json!({"label": "h", "start": false}).to_string());
    for _ in 0..n {
        let (st, b) = c.send(Method::POST, "/api/v1/sessions", Some(token), Some(body.clone())).await.expect("create");
        assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    }
}

pub async fn run(dir: &Path, jwks_url: &str, tokens: &Tokens, conns: usize, secs: f64, summary: &mut Summary) {
    println!("\n--- H. Hardening (CONTRACT §11) ---");
    let admin = tokens.super_admin("RS256");
    let owner = tokens.owner("org_h");

    // H1: health under 1,024 stalled connections.
    let gw = start(config(&dir.join("h1"), jwks_url, 10_000, 256), None).await;
    let addr = gw.addr();
    let (p50_idle, p99_idle) = fresh_health(addr, 500).await;
    let mut held = Vec::with_capacity(1024);
    for _ in 0..1024 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let _ = s
            .write_all(b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n")
            .await;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (p50_held, p99_held) = fresh_health(addr, 500).await;
    drop(held);
    let r = p99_held / p99_idle;
    println!("H1 /healthz from a fresh client: none held p50 {p50_idle:.0} µs p99 {p99_idle:.0} µs; 1,024 stalled held p50 {p50_held:.0} µs p99 {p99_held:.0} µs; p99 ratio {r:.2} (target <= 2)");
    summary.add("H1 /healthz p99, none held / 1,024 stalled", format!("{p99_idle:.0} / {p99_held:.0} µs"), "");
    summary.add("H1 p99 ratio held/none", format!("{r:.2}"), "<= 2");
    gw.shutdown().await.expect("shutdown");

    // H2: the limiter on (never hit) against off, side by side.
    let mut off = config(&dir.join("h2-off"), jwks_url, 10_000, 256);
    off.rate_limit = None;
    let mut on = config(&dir.join("h2-on"), jwks_url, 10_000, 256);
    on.rate_limit = Limit::new(1e9, u32::MAX);
    on.auth_failure_limit = Limit::new(1e9, u32::MAX);
    let (gw_off, gw_on) = (start(off, None).await, start(on, None).await);
    seed_sessions(gw_off.addr(), &owner, 200).await;
    seed_sessions(gw_on.addr(), &owner, 200).await;
    let path = "/api/v1/admin/sessions?limit=50";
    let slices = secs.round().max(1.0) as u32;
    let slice = Duration::from_secs_f64(secs) / slices;
    let (mut a, mut b) = (Load::default(), Load::default());
    for _ in 0..slices {
        a.add(load(gw_off.addr(), Method::GET, path, Some(&admin), None, StatusCode::OK, None, conns, slice).await);
        b.add(load(gw_on.addr(), Method::GET, path, Some(&admin), None, StatusCode::OK, None, conns, slice).await);
    }
    let r = b.rps() / a.rps();
    println!("H2 admin list: limiter off {:.0} req/s, on (not hit) {:.0} req/s; ratio {r:.3} (target >= 0.95; {} / {} errors)", a.rps(), b.rps(), a.errors, b.errors);
    summary.add("H2 admin list req/s, limiter off / on", format!("{:.0} / {:.0}", a.rps(), b.rps()), "");
    summary.add("H2 ratio limiter on/off", format!("{r:.3}"), ">= 0.95");
    gw_off.shutdown().await.expect("shutdown");
    gw_on.shutdown().await.expect("shutdown");

    // H3: a 1 MiB authorized create against a 1 KiB one.
    let mut c = config(&dir.join("h3"), jwks_url, 10_000, 256);
    c.rate_limit = None;
    let gw = start(c, None).await;
    let padded = |n: usize| {
        let mut v = br#"{"label":"big","start":false}"#.to_vec();
        v.resize(n, b' ');
        Bytes::from(v)
    };
    let dur = Duration::from_secs_f64(secs.max(2.0));
    let small = load(gw.addr(), Method::POST, "/api/v1/sessions", Some(&owner), Some(padded(1024)), StatusCode::CREATED, None, 1, dur).await;
    let big = load(gw.addr(), Method::POST, "/api/v1/sessions", Some(&owner), Some(padded(1024 * 1024)), StatusCode::CREATED, None, 1, dur).await;
    let per_big = 1e3 / big.rps();
    let per_small = 1e3 / small.rps();
    println!(
        "H3 authorized create, 1 client: 1 KiB body {:.0}/s ({per_small:.2} ms), 1 MiB body {:.0}/s ({per_big:.2} ms); 1 MiB costs {:.2} ms more",
        small.rps(),
        big.rps(),
        per_big - per_small
    );
    summary.add("H3 create 1 KiB / 1 MiB body", format!("{per_small:.2} / {per_big:.2} ms"), "");
    gw.shutdown().await.expect("shutdown");
}
