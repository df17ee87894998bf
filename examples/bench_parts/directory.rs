//! Part K of the bench: the directory (CONTRACT §12, §13) answers from the
//! data file.
//!
//! - K1: one `working` sim session with 10,000 contacts (set through
//!   `sim/contacts` with names, stored as an address-book sync stores them)
//!   and 1,000 groups (created through `POST …/groups`): p50/p99 of a group
//!   read (`GET …/groups/{id}`, random groups), of the first and the last
//!   contacts page (limit 50) and of the first and the last groups page.
//!   Targets: p99 under 2 ms; last/first ≤ 1.5.
//! - K2 (`bench_parts/wa_group.rs`): one text to a 256-member group through
//!   the real whatsapp-rust client against the fake WhatsApp server.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use wa_gateway::config::ServeConfig;
use wa_gateway::engine::EngineKind;

use super::{latency, owner, start, Conn, Stats, Summary};

const CONTACTS: usize = 10_000;
const GROUPS: usize = 1_000;

fn config(dir: &Path) -> ServeConfig {
    let mut c = ServeConfig::new(dir);
    c.engine = EngineKind::Sim;
    c.rate_limit = None;
    c.auth_failure_limit = None;
    c.directory.lookups_per_hour = u32::MAX;
    c
}

async fn post(c: &mut Conn, path: &str, token: &str, body: Value) -> Value {
    let (st, b) = c.send(Method::POST, path, Some(token), Some(Bytes::from(body.to_string()))).await.expect("POST");
    assert!(st.is_success(), "POST {path}: {st} {}", String::from_utf8_lossy(&b));
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

/// A session created, started, paired and `working`.
async fn working_session(c: &mut Conn, token: &str) -> String {
    let s = post(c, "/api/v1/sessions", token, json!({"label": "k", "start": true})).await;
    let id = s["id"].as_str().expect("id").to_string();
    let t = Instant::now();
    loop {
        let body = Bytes::from(json!({"phoneNumber": "6281100000001"}).to_string());
        let (st, _) = c.send(Method::POST, &format!("/api/v1/sessions/{id}/sim/pair"), Some(token), Some(body)).await.expect("pair");
        if st == StatusCode::OK {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "pair: {st}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let (_, b) = c.get(&format!("/api/v1/sessions/{id}"), Some(token)).await;
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        if v["status"] == "working" {
            return id;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "not working: {v}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Follows `nextCursor` through a list; returns the path of every page.
async fn pages(c: &mut Conn, token: &str, base: &str) -> Vec<String> {
    let mut out = vec![format!("{base}?limit=50")];
    loop {
        let path = out.last().cloned().unwrap_or_default();
        let (st, b) = c.get(&path, Some(token)).await;
        assert_eq!(st, StatusCode::OK, "GET {path}");
        let v: Value = serde_json::from_slice(&b).expect("json");
        match v["nextCursor"].as_str() {
            Some(next) => out.push(format!("{base}?limit=50&cursor={next}")),
            None => return out,
        }
    }
}

fn line(what: &str, s: Stats) -> String {
    format!("{what}: p50 {:.0} µs, p99 {:.0} µs", s.p50, s.p99)
}

pub async fn run(dir: &Path, samples: usize, summary: &mut Summary) {
    println!("\n--- K. Directory reads from the data file (sim engine, in-process) ---");
    let gw = start(config(&dir.join("k1")), None).await;
    let addr: SocketAddr = gw.addr();
    let token = owner(&gw, "org_k");
    let mut c = Conn::open(addr).await.expect("connect");
    let sid = working_session(&mut c, &token).await;

    let t = Instant::now();
    for chunk in 0..CONTACTS / 500 {
        let list: Vec<Value> = (0..500)
            .map(|i| {
                let n = chunk * 500 + i;
                json!({"phoneNumber": format!("62857{n:08}"), "name": format!("Contact {n}"), "pushName": format!("P{n}")})
            })
            .collect();
        post(&mut c, &format!("/api/v1/sessions/{sid}/sim/contacts"), &token, json!({"contacts": list})).await;
    }
    let contacts_base = format!("/api/v1/sessions/{sid}/contacts");
    let t0 = Instant::now();
    let contact_pages = loop {
        let p = pages(&mut c, &token, &contacts_base).await;
        if p.len() >= CONTACTS / 50 || t0.elapsed() > Duration::from_secs(60) {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("  {CONTACTS} contacts stored in {:.1} s ({} pages)", t.elapsed().as_secs_f64(), contact_pages.len());

    let t = Instant::now();
    let mut group_ids = Vec::with_capacity(GROUPS);
    for g in 0..GROUPS {
        let participants: Vec<String> = (0..3).map(|i| format!("62857{:08}", (g * 3 + i) % CONTACTS)).collect();
        let v = post(&mut c, &format!("/api/v1/sessions/{sid}/groups"), &token, json!({"subject": format!("Group {g}"), "participants": participants})).await;
        group_ids.push(v["group"]["id"].as_str().expect("group id").to_string());
    }
    println!("  {GROUPS} groups created in {:.1} s", t.elapsed().as_secs_f64());
    let group_pages = pages(&mut c, &token, &format!("/api/v1/sessions/{sid}/groups")).await;

    // Group reads: random groups, one connection, sequential.
    let mut samples_us = Vec::with_capacity(samples);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = &group_ids[(x % GROUPS as u64) as usize];
        let t = Instant::now();
        let (st, _) = c.get(&format!("/api/v1/sessions/{sid}/groups/{id}"), Some(&token)).await;
        samples_us.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(st, StatusCode::OK);
    }
    let read = Stats::of(samples_us);
    let (cf, cl) = (
        latency(&mut c, &contact_pages[0], &token, samples).await,
        latency(&mut c, contact_pages.last().expect("a page"), &token, samples).await,
    );
    let (gf, gl) = (
        latency(&mut c, &group_pages[0], &token, samples).await,
        latency(&mut c, group_pages.last().expect("a page"), &token, samples).await,
    );
    println!("K1 {}", line("group read (1,000 groups)", read));
    println!("K1 {}; {}; last/first p50 {:.2}", line("contacts first page", cf), line("last page", cl), cl.p50 / cf.p50);
    println!("K1 {}; {}; last/first p50 {:.2}", line("groups first page", gf), line("last page", gl), gl.p50 / gf.p50);
    summary.add("K1 group read p99 (1,000 groups)", format!("{:.0} µs", read.p99), "< 2 ms");
    summary.add("K1 contacts page p99 first / last (10,000)", format!("{:.0} / {:.0} µs", cf.p99, cl.p99), "< 2 ms");
    summary.add("K1 contacts page last/first (p50)", format!("{:.2}", cl.p50 / cf.p50), "<= 1.5");
    summary.add("K1 groups page p99 first / last", format!("{:.0} / {:.0} µs", gf.p99, gl.p99), "< 2 ms");
    summary.add("K1 groups page last/first (p50)", format!("{:.2}", gl.p50 / gf.p50), "<= 1.5");
    gw.shutdown().await.expect("shutdown");
}
